"""Which twin runs a --simulate session (tremorlift.twin.runtime), and what the summary says."""

from __future__ import annotations

import pytest
from tremorlift.cli import main
from tremorlift.errors import UserError
from tremorlift.twin import runtime
from tremorlift.twin.micropython import build


@pytest.fixture
def built(monkeypatch):
    monkeypatch.setattr(build, "available", lambda: None)


@pytest.fixture
def not_built(monkeypatch):
    monkeypatch.setattr(build, "available", lambda: "the MicroPython twin is not built (x)")


def test_micropython_by_default_where_built(built):
    assert runtime.choose(None) == ("micropython", None)
    assert runtime.choose(None, transport="serial") == ("micropython", None)
    assert runtime.choose("micropython", fault_kinds=["reboot", "disconnect", "drop"]) == (
        "micropython",
        None,
    )


def test_cpython_when_asked_without_a_note(built):
    assert runtime.choose("cpython", speed=4.0) == ("cpython", None)


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"speed": 4.0}, "real time only (speed 4 asked)"),
        ({"fault_kinds": ["reboot", "i2c-error"]}, "faults i2c-error reach into the board"),
    ],
)
def test_the_cpython_twin_runs_instead_and_says_why(built, kw, says):
    kind, note = runtime.choose(None, **kw)
    assert kind == "cpython"
    assert note is not None and note.startswith("the CPython twin runs") and says in note
    with pytest.raises(UserError, match="--twin micropython cannot run"):
        runtime.choose("micropython", **kw)


def test_not_built_falls_back_by_default_and_refuses_when_asked(not_built):
    kind, note = runtime.choose(None)
    assert kind == "cpython" and note is not None and "not built" in note
    with pytest.raises(UserError, match="not built"):
        runtime.choose("micropython")
    with pytest.raises(UserError, match="unknown twin runtime"):
        runtime.choose("wasm")


def test_twin_info_names_runtime_host_and_interval():
    class Radio:
        connection_interval_ms = 15.0

    class Build:
        version = "1.29.0-preview"

    class MpFleet:
        runtime = "micropython"
        build = Build()
        radio = Radio()

    class CpFleet:
        radio = None

    assert runtime.twin_info(MpFleet()) == {
        "runtime": "micropython",
        "micropython_version": "1.29.0-preview",
        "ble_host": "nimble",
        "connection_interval_ms": 15.0,
    }
    assert runtime.twin_info(CpFleet()) == {
        "runtime": "cpython",
        "micropython_version": None,
        "ble_host": "emulated",
        "connection_interval_ms": None,
    }


def test_cli_twin_micropython_at_speed_is_one_clear_error(built, tmp_path, capsys):
    argv = ["collect", "--simulate", "squat-5x5", "--twin", "micropython", "--speed", "4",
            "--any", "--no-ui", "--session", str(tmp_path / "s.tlsession")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "real time only" in err[0], err
    assert not (tmp_path / "s.tlsession").exists()
    assert main(["collect", "--twin", "cpython", "--any", "--no-ui"]) == 2
    assert "--twin needs --simulate" in capsys.readouterr().err
