"""Options shared by the whole suite (pytest only reads pytest_addoption from the root conftest)."""


def pytest_addoption(parser):
    # Hardware-in-the-loop tests (tests/hil) run only when a board is given.
    parser.addoption(
        "--port",
        default=None,
        help="serial port of a tremorlift board running the firmware (enables tests marked hil)",
    )
