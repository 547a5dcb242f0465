"""Per-exercise settings: the TOML file, precedence, validation and the `config` command."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from tremorlift.cli import main
from tremorlift.errors import UserError
from tremorlift.settings import ConfigFile, config_path, effective_settings


@pytest.fixture(autouse=True)
def cfg_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cfg"
    monkeypatch.setenv("TREMORLIFT_CONFIG_DIR", str(d))
    return d


def test_built_in_defaults_without_a_file(cfg_dir: Path) -> None:
    s = effective_settings(None)
    assert (s.goal, s.vl_threshold_pct, s.placement) == ("strength", None, None)
    assert (s.haptic, s.sound, s.speech, s.screen) == (True, True, True, True)
    assert s.threshold_pct == 20.0 and s.sources["goal"] == "built-in"
    assert not cfg_dir.exists()  # reading never creates anything


def test_set_unset_and_precedence(cfg_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "set", "goal", "power"]) == 0
    assert main(["config", "set", "feedback.speech", "off"]) == 0
    assert main(["config", "set", "--exercise", "Squat", "vl_threshold_pct", "25"]) == 0
    assert main(["config", "set", "--exercise", "squat", "placement", "thigh"]) == 0
    doc = tomllib.loads(config_path().read_text())
    assert doc == {
        "default": {"goal": "power", "feedback": {"speech": False}},
        "exercise": {"squat": {"vl_threshold_pct": 25.0, "placement": "thigh"}},
    }
    d = effective_settings(None)
    assert (
        d.threshold_pct == 10.0
        and d.speech is False
        and d.sources["feedback.speech"] == "[default]"
    )
    sq = effective_settings("squat")
    # The exercise's explicit threshold replaces the default goal; other defaults still apply.
    assert (sq.goal, sq.vl_threshold_pct, sq.threshold_pct) == (None, 25.0, 25.0)
    assert sq.placement == "thigh" and sq.speech is False
    assert sq.sources["vl_threshold_pct"] == "[exercise.squat]"
    # Command-line flags win over the file; None means "not given".
    fl = effective_settings(
        "squat", {"goal": "hypertrophy", "placement": None, "speech": "on", "feedback.sound": False}
    )
    assert (fl.goal, fl.vl_threshold_pct, fl.threshold_pct) == ("hypertrophy", None, 30.0)
    assert fl.placement == "thigh" and fl.speech is True and fl.sound is False
    assert fl.sources["goal"] == "flag" and fl.engine_kwargs() == {
        "exercise": "squat", "goal": "hypertrophy", "vl_threshold_pct": None, "placement": "thigh"
    }  # fmt: skip
    capsys.readouterr()
    assert main(["config", "--exercise", "squat"]) == 0
    out = capsys.readouterr().out
    assert "vl_threshold_pct   25" in out and "from [exercise.squat]" in out
    assert "velocity-loss limit in effect: 25 %" in out
    assert main(["config", "unset", "--exercise", "squat", "vl_threshold_pct"]) == 0
    assert effective_settings("squat").threshold_pct == 10.0
    assert main(["config", "unset", "--exercise", "squat", "placement"]) == 0
    assert "exercise" not in tomllib.loads(config_path().read_text())  # empty table dropped
    assert main(["config", "unset", "goal"]) == 0
    assert main(["config", "unset", "goal"]) == 2  # not set any more


def test_path_command(cfg_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(cfg_dir / "config.toml")


@pytest.mark.parametrize(
    "argv",
    [
        ["config", "set", "colour", "red"],
        ["config", "set", "goal", "speed"],
        ["config", "set", "vl_threshold_pct", "0"],
        ["config", "set", "vl_threshold_pct", "100"],
        ["config", "set", "vl_threshold_pct", "nan"],
        ["config", "set", "vl_threshold_pct", "lots"],
        ["config", "set", "placement", "ankle"],
        ["config", "set", "feedback.sound", "loud"],
        ["config", "set", "feedback.smell", "on"],
        ["config", "set", "--exercise", "bad name!", "goal", "power"],
        ["config", "--exercise", "x" * 41],
    ],
)
def test_bad_keys_and_values_exit_2_and_write_nothing(
    argv: list[str], cfg_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tremorlift: error: ") and err.count("\n") == 1
    assert not cfg_dir.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"[default\ngoal = 'power'\n",  # not TOML
        b"[default]\ngoal = 'sprint'\n",  # bad value
        b"[default]\nspeed = 3\n",  # unknown key
        b"[profile]\nx = 1\n",  # unknown table
        b"\xff\xfe[default]\n",  # not UTF-8
    ],
)
def test_a_bad_file_is_one_error_and_left_untouched(
    content: bytes, cfg_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_dir.mkdir()
    path = cfg_dir / "config.toml"
    path.write_bytes(content)
    for argv in (["config"], ["config", "set", "goal", "power"], ["config", "unset", "goal"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err
    assert path.read_bytes() == content
    assert sorted(p.name for p in cfg_dir.iterdir()) == ["config.toml"]  # no temp files left
    with pytest.raises(UserError):
        effective_settings("squat")


def test_an_unreadable_file_is_one_error(cfg_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cfg_dir / "config.toml").mkdir(parents=True)  # a folder where the file should be
    assert main(["config"]) == 2
    assert "cannot read the settings file" in capsys.readouterr().err


def test_writer_round_trips_and_escapes(cfg_dir: Path) -> None:
    cfg = ConfigFile(cfg_dir / "config.toml")
    cfg.default = {"goal": "strength", "feedback.haptic": False, "vl_threshold_pct": 12.5}
    cfg.exercises = {"bench-press": {"placement": "forearm"}, "empty": {}}
    cfg.save()
    back = ConfigFile.load(cfg.path)
    assert back.default == cfg.default and back.exercises == {
        "bench-press": {"placement": "forearm"}
    }
    from tremorlift.settings import _toml_value

    assert tomllib.loads("x = " + _toml_value('a "quoted" \\ value'))["x"] == 'a "quoted" \\ value'


def test_bad_overrides_are_user_errors() -> None:
    with pytest.raises(UserError, match="goal"):
        effective_settings(None, {"goal": "fast"})
    with pytest.raises(UserError, match="unknown setting"):
        effective_settings(None, {"volume": 3})


def test_stop_policy_and_load_per_exercise(
    cfg_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = effective_settings(None)
    assert (d.stop_policy, d.load_kg) == ("one-more", None)
    assert main(["config", "set", "--exercise", "squat", "stop_policy", "at-limit"]) == 0
    assert main(["config", "set", "--exercise", "squat", "load_kg", "102.5"]) == 0
    doc = tomllib.loads(config_path().read_text())
    assert doc["exercise"]["squat"] == {"stop_policy": "at-limit", "load_kg": 102.5}
    sq = effective_settings("squat")
    assert (sq.stop_policy, sq.load_kg) == ("at-limit", 102.5)
    assert sq.sources["load_kg"] == "[exercise.squat]"
    # collect's --load-kg and --stop-policy win over the file
    fl = effective_settings("squat", {"load_kg": 60.0, "stop_policy": "one-more"})
    assert (fl.stop_policy, fl.load_kg) == ("one-more", 60.0)
    assert effective_settings("bench").load_kg is None  # per exercise, not the default
    capsys.readouterr()
    assert main(["config", "--exercise", "squat"]) == 0
    out = capsys.readouterr().out
    assert "stop_policy" in out and "at-limit" in out and "102.5" in out
    for key, bad in (("stop_policy", "never"), ("load_kg", "-5"), ("load_kg", "heavy")):
        assert main(["config", "set", "load_kg" if key == "load_kg" else key, bad]) == 2
    assert "one-more" in capsys.readouterr().err
