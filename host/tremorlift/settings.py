"""Per-exercise settings in a TOML file in the user's config folder.

Layout (every key optional)::

    [default]
    goal = "strength"            # power | strength | hypertrophy (10 / 20 / 30 % velocity loss)
    placement = "forearm"        # wrist | forearm | thigh | shank
    stop_policy = "one-more"     # one-more | at-limit: the stop a rep after the warn, or at once
    feedback.speech = false      # haptic | sound | speech | screen: true/false

Feedback switches: ``haptic`` buzzes the wearable on warn and stop, ``sound`` plays a tone and
``speech`` speaks the alert on the laptop; ``screen`` shows the live dashboard during ``collect``
(off: one plain line per event, as ``--no-ui`` gives).

    [exercise.squat]
    vl_threshold_pct = 25.0      # explicit velocity-loss threshold, % (wins over a goal)
    placement = "thigh"
    load_kg = 100.0              # the load lifted, kg (collect --load-kg wins)

Precedence, lowest to highest: built-in values, ``[default]``, ``[exercise.NAME]``, command-line
flags. The velocity-loss limit comes from the highest layer that sets ``goal`` or
``vl_threshold_pct``; within one layer ``vl_threshold_pct`` wins.

The folder is platformdirs' user config dir, or ``$TREMORLIFT_CONFIG_DIR``. The file is read
with tomllib and written by the small writer below (the values are only strings, numbers and
booleans), atomically (``store.files.write_atomic``). A file that cannot be read or
parsed is reported as one error and never rewritten.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tremorlift import paths
from tremorlift.analysis import GOALS, PLACEMENTS
from tremorlift.analysis.alerts import DEFAULT_GOAL, DEFAULT_STOP_POLICY, STOP_POLICIES
from tremorlift.errors import UserError

FILE_NAME = "config.toml"

# The [feedback] switches (not collect.feedback's delivery channels, which include the bell).
FEEDBACK_SWITCHES = ("haptic", "sound", "speech", "screen")
KEYS = ("goal", "vl_threshold_pct", "placement", "stop_policy", "load_kg") + tuple(
    f"feedback.{c}" for c in FEEDBACK_SWITCHES
)
MAX_LOAD_KG = 1000.0  # above any lift on record: a larger number is a typing error
# The velocity-loss threshold every command accepts (config, collect, analyze), in %. Below 1 %
# a limit sits inside the rep-to-rep noise of a measured mean concentric velocity, so the first
# slightly slower rep would stop the set; at about 80 % loss a set has reached failure in the
# lifts studied (squat and bench press end near their minimal velocity threshold well before
# that), so a larger limit would never fire.
VL_THRESHOLD_MIN_PCT = 1.0
VL_THRESHOLD_MAX_PCT = 80.0
BUILT_IN: dict[str, Any] = {
    "goal": DEFAULT_GOAL,
    "vl_threshold_pct": None,
    "placement": None,
    "stop_policy": DEFAULT_STOP_POLICY,
    "load_kg": None,
    "feedback.haptic": True,
    "feedback.sound": True,
    "feedback.speech": True,
    "feedback.screen": True,
}
EXERCISE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


@dataclass(frozen=True)
class Settings:
    """The settings in effect for one exercise. ``sources`` says where each key came from:
    ``built-in``, ``[default]``, ``[exercise.NAME]`` or ``flag``."""

    exercise: str | None
    goal: str | None
    vl_threshold_pct: float | None
    placement: str | None
    haptic: bool
    sound: bool
    speech: bool
    screen: bool  # the live dashboard in collect (off: one line per event)
    sources: dict[str, str] = field(default_factory=dict)
    stop_policy: str = DEFAULT_STOP_POLICY  # one-more | at-limit (analysis.alerts)
    load_kg: float | None = None  # the load lifted, kg

    @property
    def threshold_pct(self) -> float:
        """The velocity-loss limit the engine will use, %."""
        from tremorlift.analysis.alerts import threshold_pct

        return threshold_pct(self.goal, self.vl_threshold_pct)

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``analysis.Engine`` (exercise, goal, vl_threshold_pct, placement)."""
        return {
            "exercise": self.exercise,
            "goal": self.goal,
            "vl_threshold_pct": self.vl_threshold_pct,
            "placement": self.placement,
        }

    def value(self, key: str) -> Any:
        return getattr(self, key.removeprefix("feedback."))


# ============================================================================ location


def config_dir() -> Path:
    return paths.config_dir()


def config_path() -> Path:
    return config_dir() / FILE_NAME


# ============================================================================ validation


def check_exercise(name: str) -> str:
    n = name.strip().lower()
    if not EXERCISE_NAME.match(n):
        raise UserError(
            f"bad exercise name {name!r}: use 1-40 letters, digits, '-' or '_' (e.g. squat, bench-press)"
        )
    return n


def check_key(key: str) -> str:
    if key not in KEYS:
        raise UserError(f"unknown setting {key!r} (known: {', '.join(KEYS)})")
    return key


def parse_value(key: str, value: Any) -> Any:
    """A setting's value from text (command line) or from TOML; UserError if it is not allowed."""
    check_key(key)
    if key == "goal":
        if not isinstance(value, str) or value.lower() not in GOALS:
            raise UserError(f"goal must be one of {', '.join(GOALS)}, got {value!r}")
        return value.lower()
    if key == "placement":
        if not isinstance(value, str) or value.lower() not in PLACEMENTS:
            raise UserError(f"placement must be one of {', '.join(PLACEMENTS)}, got {value!r}")
        return value.lower()
    if key == "stop_policy":
        if not isinstance(value, str) or value.lower() not in STOP_POLICIES:
            raise UserError(f"stop_policy must be one of {', '.join(STOP_POLICIES)}, got {value!r}")
        return value.lower()
    if key == "load_kg":
        if isinstance(value, bool):
            raise UserError(f"load_kg must be a number of kg, got {value!r}")
        try:
            kg = float(value)
        except (TypeError, ValueError):
            raise UserError(f"load_kg must be a number of kg, got {value!r}") from None
        if not (math.isfinite(kg) and 0.0 <= kg <= MAX_LOAD_KG):
            raise UserError(f"load_kg must be between 0 and {MAX_LOAD_KG:g} kg, got {value!r}")
        return kg
    if key == "vl_threshold_pct":
        if isinstance(value, bool):
            raise UserError(f"vl_threshold_pct must be a number, got {value!r}")
        try:
            pct = float(value)
        except (TypeError, ValueError):
            raise UserError(f"vl_threshold_pct must be a number, got {value!r}") from None
        if not (math.isfinite(pct) and VL_THRESHOLD_MIN_PCT <= pct <= VL_THRESHOLD_MAX_PCT):
            raise UserError(
                f"vl_threshold_pct must be between {VL_THRESHOLD_MIN_PCT:g} and "
                f"{VL_THRESHOLD_MAX_PCT:g} %, got {value!r}"
            )
        return pct
    # feedback.<channel>
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise UserError(f"{key} must be on or off (true/false), got {value!r}")


# ============================================================================ file


def _flatten(table: Mapping[str, Any], where: str, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        if k == "feedback" and isinstance(v, dict):
            for ck, cv in v.items():
                out[f"feedback.{ck}"] = cv
        else:
            out[k] = v
    for k, v in out.items():
        if k not in KEYS:
            raise UserError(f"{path}: [{where}]: unknown setting {k!r} (known: {', '.join(KEYS)})")
        try:
            out[k] = parse_value(k, v)
        except UserError as exc:
            raise UserError(f"{path}: [{where}]: {exc}") from None
    return out


@dataclass
class ConfigFile:
    """The file's content as flat tables: ``default`` and ``exercises[name]``, key -> value."""

    path: Path
    default: dict[str, Any] = field(default_factory=dict)
    exercises: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> ConfigFile:
        """The file at ``path`` (default: :func:`config_path`); empty if it does not exist."""
        p = config_path() if path is None else path
        try:
            text = p.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return cls(p)
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UserError(f"{p}: cannot read the settings file ({why})") from None
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{p}: not valid TOML ({exc}); fix it or delete it") from None
        cfg = cls(p)
        for top, val in doc.items():
            if top == "default" and isinstance(val, dict):
                cfg.default = _flatten(val, "default", p)
            elif top == "exercise" and isinstance(val, dict):
                for name, table in val.items():
                    if not isinstance(table, dict) or not EXERCISE_NAME.match(name):
                        raise UserError(f"{p}: [exercise.{name}] is not a valid exercise table")
                    cfg.exercises[name] = _flatten(table, f"exercise.{name}", p)
            else:
                raise UserError(f"{p}: unknown entry {top!r} (only [default] and [exercise.NAME])")
        return cfg

    def table(self, exercise: str | None) -> dict[str, Any]:
        if exercise is None:
            return self.default
        return self.exercises.setdefault(exercise, {})

    def dumps(self) -> str:
        lines = ["# tremorlift settings: edit here or with `tremorlift config set/unset`.", ""]
        tables = [("default", self.default)] + [
            (f"exercise.{n}", t) for n, t in sorted(self.exercises.items()) if t
        ]
        for header, table in tables:
            if not table and header != "default":
                continue
            lines.append(f"[{header}]")
            for k in KEYS:  # a fixed order keeps diffs of the file small
                if k in table:
                    lines.append(f"{k} = {_toml_value(table[k])}")
            lines.append("")
        return "\n".join(lines)

    def save(self) -> None:
        """Write atomically (``store.files.write_atomic``), creating the folder if needed."""
        from tremorlift.store.files import write_atomic

        text = self.dumps()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"{self.path}: cannot write the settings file ({exc.strerror or exc})"
            ) from None
        write_atomic(self.path, text)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


# ============================================================================ effective


def effective_settings(
    exercise: str | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    path: Path | None = None,
) -> Settings:
    """The settings in effect for ``exercise`` (None: the defaults). ``overrides`` are the
    command line's: same keys as the file (``goal``, ``vl_threshold_pct``, ``placement``,
    ``feedback.<channel>``, or the bare channel name); None values mean "not given"."""
    ex = check_exercise(exercise) if exercise else None
    cfg = ConfigFile.load(path)
    flags: dict[str, Any] = {}
    for k, v in (overrides or {}).items():
        if v is None:
            continue
        key = f"feedback.{k}" if k in FEEDBACK_SWITCHES else k
        flags[key] = parse_value(key, v)
    layers: list[tuple[str, dict[str, Any]]] = [("built-in", BUILT_IN), ("[default]", cfg.default)]
    if ex is not None:
        layers.append((f"[exercise.{ex}]", cfg.exercises.get(ex, {})))
    layers.append(("flag", flags))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, layer in layers:
        if "goal" in layer or "vl_threshold_pct" in layer:
            # The velocity-loss limit is one setting: a layer that names either replaces both.
            values["goal"] = layer.get("goal")
            values["vl_threshold_pct"] = layer.get("vl_threshold_pct")
            sources["goal"] = sources["vl_threshold_pct"] = name
        for k in KEYS:
            if k in layer and k not in ("goal", "vl_threshold_pct"):
                values[k] = layer[k]
                sources[k] = name
    return Settings(
        exercise=ex,
        goal=values["goal"],
        vl_threshold_pct=values["vl_threshold_pct"],
        placement=values["placement"],
        haptic=values["feedback.haptic"],
        sound=values["feedback.sound"],
        speech=values["feedback.speech"],
        screen=values["feedback.screen"],
        sources=sources,
        stop_policy=values["stop_policy"],
        load_kg=values["load_kg"],
    )
