"""The command line's conventions: PATH and scenarios in the README, a truthful demo, one
threshold range, `config --exercise` in either place, one `--json`, human text off stdout when
JSON is on it, errors on stderr, `simulate` to stdout, no colour on request, `scan` without an
adapter."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from tremorlift.cli import build_parser, main
from tremorlift.commands._checks import VL_THRESHOLD_MAX_PCT, VL_THRESHOLD_MIN_PCT
from tremorlift.twin.motion.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("scan", "pair", "collect", "simulate", "analyze", "report", "history", "export")


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREMORLIFT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NO_COLOR", "")  # restored after each test (--no-color sets it)


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


# ------------------------------------------------------------------ README, help, make demo
def test_readme_quick_start_puts_tremorlift_on_path_and_lists_the_scenarios() -> None:
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start") : text.index("## Commands")]
    assert "source .venv/bin/activate" in quick
    # Once activated, the command is called by its name everywhere (no mixed spellings).
    assert ".venv/bin/tremorlift" not in text
    table = text[text.index("| scenario | sensor |") :]
    for name in SCENARIOS:
        assert f"| `{name}` |" in table, name


def test_collect_help_lists_every_scenario_and_no_help_shows_a_double_percent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help(["collect"], capsys)
    listing = text[text.index("scenarios (--simulate SCENARIO):") :]
    for name, spec in SCENARIOS.items():
        assert re.search(rf"^  {re.escape(name)} +{spec.placement} ", listing, re.M), name
    assert f"{VL_THRESHOLD_MIN_PCT:g}-{VL_THRESHOLD_MAX_PCT:g} %" in text
    for argv in (
        [],
        *([c] for c in COMMANDS),
        ["config"],
        ["config", "set"],
        ["config", "unset"],
    ):
        out = _help(argv, capsys)
        assert "%%" not in out, argv
    assert "(explicit velocity-loss limit, %)" in " ".join(_help(["config"], capsys).split())


def test_help_builds_without_the_twin() -> None:
    # Building the parser (every command line does) must not load the motion generator: the
    # scenario list is read only when the help is printed.
    code = (
        "import sys; from tremorlift.cli import build_parser; build_parser(); "
        "print('tremorlift.twin.motion.scenarios' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_make_demo_labels_the_exercise_the_demo_scenario_lifts() -> None:
    from tremorlift.twin.motion import generator

    make = (ROOT / "Makefile").read_text()
    recipe = make[make.index("\ndemo:") :].split("\n\n")[0].replace("\\\n", " ")
    argv = shlex.split(recipe[recipe.index("collect") :].splitlines()[0])
    scenario = argv[argv.index("--simulate") + 1]
    exercise = argv[argv.index("--exercise") + 1]
    truth = generator.generate(scenario, 0, keep_kinematics=False).devices[0].truth
    lifted = {s["exercise"] for s in truth["sets"] if s["kind"] == "dynamic"}
    assert lifted == {exercise} == {"bench"}


# ------------------------------------------------------------------ config and thresholds
@pytest.mark.parametrize(
    "argv",
    [
        ["config", "--exercise", "squat", "set", "vl_threshold_pct", "25"],
        ["config", "set", "--exercise", "squat", "vl_threshold_pct", "25"],
    ],
)
def test_config_exercise_before_or_after_the_action(argv: list[str], tmp_path: Path) -> None:
    assert main(argv) == 0
    doc = tomllib.loads((tmp_path / "cfg" / "config.toml").read_text())
    assert doc["exercise"] == {"squat": {"vl_threshold_pct": 25.0}}
    assert doc.get("default", {}) == {}  # not [default]
    assert main(["config", "--exercise", "squat", "unset", "vl_threshold_pct"]) == 0
    doc = tomllib.loads((tmp_path / "cfg" / "config.toml").read_text())
    assert doc.get("default", {}) == {} and doc.get("exercise", {}).get("squat", {}) == {}


def test_config_exercise_given_twice_differently_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["config", "--exercise", "squat", "set", "--exercise", "bench", "goal", "power"]
    assert main(argv) == 2
    assert "squat and bench" in capsys.readouterr().err
    assert not (tmp_path / "cfg").exists()


@pytest.mark.parametrize("pct", ["0.5", "81", "95"])
def test_one_threshold_range_for_collect_analyze_and_config(
    pct: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("t,ax,ay,az,gx,gy,gz\n")
    for argv in (
        ["collect", "--simulate", "demo", "--any", "--no-ui", "--vl-threshold", pct],
        ["analyze", str(csv), "--vl-threshold", pct],
        ["config", "set", "vl_threshold_pct", pct],
    ):
        assert main(argv) == 2, argv
        (line,) = capsys.readouterr().err.splitlines()
        assert "between 1 and 80 %" in line, argv
    assert main(["config", "set", "vl_threshold_pct", "80"]) == 0
    assert main(["config", "set", "vl_threshold_pct", "1"]) == 0
    # A value written into the file by hand meets the same range.
    (tmp_path / "cfg" / "config.toml").write_text(f"[default]\nvl_threshold_pct = {pct}\n")
    capsys.readouterr()
    assert main(["config"]) == 2
    assert "between 1 and 80 %" in capsys.readouterr().err


# ------------------------------------------------------------------ --json, stdout, stderr
def test_json_option_means_the_same_on_every_command() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    seen = {}
    for name in ("scan", "analyze", "history"):
        (opt,) = [a for a in sub.choices[name]._actions if a.dest == "json"]
        seen[name] = (opt.nargs, opt.const, opt.metavar)
    assert set(seen.values()) == {("?", "-", "OUT")}


def _fake_scan(monkeypatch: pytest.MonkeyPatch, found: list[Any] | Exception) -> None:
    from tremorlift.transport import ble

    async def discover(timeout: float, **kwargs: Any) -> Any:
        if isinstance(found, Exception):
            raise found
        return {w[0].address: w for w in found}

    monkeypatch.setattr(ble.BleakScanner, "discover", discover)


def test_scan_json_to_stdout_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tremorlift.transport import ble

    wearable = ble.FoundWearable(
        name="TL-00A1", address="AA:BB:CC:00:00:A1", rssi_dbm=-60, protocol_version=1,
        battery_pct=80, status_flags=0, device=None,
    )  # fmt: skip
    monkeypatch.setattr(ble, "_parse_advert", lambda d, adv: wearable)
    _fake_scan(monkeypatch, [(type("D", (), {"address": wearable.address})(), None)])
    assert main(["scan", "--timeout", "0.5", "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [
        {"name": "TL-00A1", "address": "AA:BB:CC:00:00:A1", "rssi_dbm": -60,
         "battery_pct": 80, "protocol_version": 1}
    ]  # fmt: skip
    assert main(["scan", "--timeout", "0.5", "--json"]) == 0  # no OUT: stdout as well
    assert json.loads(capsys.readouterr().out)[0]["name"] == "TL-00A1"
    dest = tmp_path / "found.json"
    assert main(["scan", "--timeout", "0.5", "--json", str(dest)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(dest.read_text())[0]["address"] == "AA:BB:CC:00:00:A1"
    assert main(["scan", "--timeout", "0.5"]) == 0
    assert "TL-00A1" in capsys.readouterr().out


def test_scan_without_an_adapter_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bleak.exc import BleakError

    _fake_scan(monkeypatch, BleakError("[Errno 2] No such file or directory"))
    assert main(["scan", "--timeout", "0.5"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("tremorlift: error: Bluetooth is not available")
    for hint in ("systemctl status bluetooth", "bluetoothctl power on", "`bluetooth` group"):
        assert hint in line


def test_simulate_writes_csv_to_stdout_without_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "--scenario", "curl-3x10", "--short", "--rate", "50"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "t,ax,ay,az,gx,gy,gz"
    rows = [list(map(float, x.split(","))) for x in lines[1:]]
    assert len(rows) > 1000 and all(len(r) == 7 for r in rows)
    assert rows[1][0] - rows[0][0] == pytest.approx(1 / 50)
    assert f"{len(rows)} samples" in err and list(tmp_path.iterdir()) == []
    assert main(["simulate", "--scenario", "two-sensors", "--short", "--out", "-"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--device" in err
    assert main(["simulate", "--scenario", "two-sensors", "--short", "--device", "right"]) == 0
    assert capsys.readouterr().out.startswith("t,ax,ay,az,gx,gy,gz\n")


def _fake_collect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The live session replaced by one that logs two lines (one an in-session error) and
    returns a summary: what `collect` does with its output streams is under test here."""
    from tremorlift.collect import setup

    async def collect(cfg: Any, emit: Any, ui: Any = None, hook: Any = None) -> dict[str, Any]:
        emit("     0.1 s  TL-00A1: streaming at 200 Hz")
        emit("     2.0 s  TL-00A1: [Errno 5] link error; reconnecting")
        return {
            "transport": "ble-twin", "devices": [{}], "samples_received": 400,
            "samples_lost": 0, "frames_corrupt": 0, "reconnects": 1, "duration_s": 2.0,
            "recovery": {"samples_lost_in_transit": 0}, "session": str(tmp_path / "s.tl"),
            "ended_by": "duration", "final": None,
        }  # fmt: skip

    monkeypatch.setattr(setup, "collect", collect)


def test_collect_log_and_errors_on_stderr_summary_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_collect(monkeypatch, tmp_path)
    assert main(["collect", "--simulate", "demo", "--any", "--no-ui"]) == 0
    out, err = capsys.readouterr()
    assert "link error" in err and "streaming at" in err
    assert "link error" not in out and "streaming" not in out
    assert "session recorded to" in out and "400 samples received" in out


def test_collect_summary_json_on_stdout_keeps_stdout_pure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_collect(monkeypatch, tmp_path)
    assert main(["collect", "--simulate", "demo", "--any", "--no-ui", "--summary-json", "-"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["samples_received"] == 400  # nothing but the JSON
    assert "session recorded to" in err and "400 samples received" in err and "link error" in err


def test_collect_events_on_stdout_moves_the_human_lines_to_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_collect(monkeypatch, tmp_path)
    assert main(["collect", "--simulate", "demo", "--any", "--no-ui", "--events", "-"]) == 0
    out, err = capsys.readouterr()
    assert all(json.loads(line) for line in out.splitlines())  # JSON lines only (none here)
    assert "session recorded to" in err and "400 samples received" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["scan", "--timeout", "0"],
        ["pair", "--forget", "nobody"],
        ["collect", "--simulate", "no-such-scenario", "--any"],
        ["simulate", "--scenario", "nope"],
        ["analyze", "missing.csv"],
        ["report", "missing.tlsession"],
        ["history", "--remove", "missing.tlsession"],
        ["export", "missing.tlsession"],
        ["config", "set", "goal", "fast"],
    ],
)
def test_every_command_reports_an_error_on_stderr_only(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("tremorlift: error: ") and err.count("\n") == 1


# ------------------------------------------------------------------ colour
def _coloured(text: str) -> bool:
    """Any ANSI select-graphic-rendition code that sets a foreground or background colour."""
    codes = {int(c) for m in re.findall(r"\x1b\[([0-9;]*)m", text) for c in m.split(";") if c}
    colours = {*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)}
    return bool(codes & colours)


class _Tty:
    """A terminal-like stream for rich."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("not a real terminal")


def _draw(no_color: bool = False) -> str:
    from tremorlift.collect.dashboard import Dashboard
    from tremorlift.collect.live import LiveAlert, LiveState

    stream = _Tty()
    state = LiveState(
        vl_threshold_pct=20.0, alerts=[LiveAlert(1.0, "stop", "velocity_loss", "end")]
    )
    with Dashboard(stream, no_color=no_color) as dash:  # type: ignore[arg-type]
        dash.update(state)
    return stream.text


def test_no_color_option_and_environment_turn_colour_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    assert _coloured(_draw())  # coloured by default on a terminal
    assert not _coloured(_draw(no_color=True))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not _coloured(_draw())  # the environment alone
    monkeypatch.setenv("NO_COLOR", "")
    assert main(["--no-color", "config", "path"]) == 0  # the top-level option sets it
    from tremorlift.commands._output import no_color

    assert no_color() and not _coloured(_draw())
