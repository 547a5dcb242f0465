"""Tremor episodes: which tremor windows show tremor, and how runs of them become episodes.

Every window of ``tremor.TremorSpectra`` (one per 0.5 s hop) is read here: its tremor amplitude
above the person's ever-present level (the baseline, learnt from the first still seconds), its
sway, and whether it is tremor. What counts as tremor is relative to the person and the context
(docs/analysis-output.md): in a set, ``TREMOR_FACTOR`` times the set's first seconds; outside sets,
while moving or within ``REST_AFTER_EXERTION_S`` of exertion, ``TREMOR_FACTOR`` times the ambient
level of the same kind of window (moving or still); only a limb truly at rest is judged on the
absolute floor. The tracker also keeps when exertion last ended: the engine reports reps and
holds, and it sees sustained vigorous movement the rep counter did not count.

Runs of tremor (or, in a hold, sway) windows become episodes with a cause: ``fatigue`` under
load, ``instability`` for sway in a hold, ``rest`` for a persisting 3-7 Hz rhythm at rest,
``other`` for the rest. The first rest episode raises the one ``rest_tremor`` notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tremorlift.analysis.events import Event, alert_event
from tremorlift.analysis.tremor import HOP_S, TremorWindows

# ---- the person's baseline (the ever-present physiological tremor and sensor noise)
# Eight still windows (4 s of hops over the warm-up) give a stable median.
BASELINE_WINDOWS = 8
# A warm-up that was not quiet would teach a level so high that real tremor is subtracted away:
# above this the baseline is capped (a still strap-worn sensor reads about 0.04 m/s^2).
BASELINE_MAX_RMS_MPS2 = 0.07
# Amplitudes are floored here where they are divided or logged: at or below the baseline the
# estimate is noise, and a log of ~0 would dominate a growth fit or a ratio.
BASELINE_FLOOR_MPS2 = 0.02

# ---- is this window tremor?
# Below this 0.5-3 Hz displacement-equivalent RMS there is no voluntary movement: the window is
# still, and the tremor band is 3-15 Hz instead of 5-15 Hz.
STATIC_DISP_M = 0.02
# The absolute floor for a limb truly at rest, about the modal amplitude of normal postural hand
# tremor (0.01 g); also the least amplitude whose cycle-to-cycle stability index means anything.
TREMOR_MIN_RMS_MPS2 = 0.09
# A rhythm concentrates its power near the spectral peak (share within +-1 Hz of it); the
# leakage of a lift, impacts and strap wobble spread theirs.
TREMOR_MIN_CONCENTRATION = 0.3
# A peak on the band's lower edge (3 Hz) is the skirt of slower movement, not a rhythm.
TREMOR_MIN_PEAK_HZ = 3.3
# Tremor is TREMOR_FACTOR times the level this person shows anyway in the same context: a
# strap-worn sensor on a hand gripping a load reads about 0.4 m/s^2 in 3-15 Hz (median over the
# real wrist sets), ten times a still sensor, so an absolute floor would call every set tremor.
TREMOR_FACTOR = 2.0
# A set's own level is the median of its first seconds (before fatigue can raise it).
SET_REFERENCE_S = 6.0
# The ambient level is the median of the last minute of windows of the same kind; a minute also
# keeps a set's first seconds for a set the rep counter recognises up to 20 s late.
AMBIENT_S = 60.0
# Fewer windows than this (3 s) do not make a level.
AMBIENT_MIN_WINDOWS = 6
# Tremor doubling against a set's first reps or a hold's first seconds is fatigue tremor (a
# tremor index of log10(2)).
TREMOR_INDEX_FACTOR = 2.0

# ---- rest tremor
# Parkinsonian rest tremor lies at 3-7 Hz (the ever-present physiological tremor at 8-12 Hz);
# the lower edge as for any tremor peak.
REST_BAND_HZ = (3.3, 7.0)
# At rest a small 3-7 Hz oscillation counts as tremor only when it is clearly rhythmic ...
REST_MIN_CONCENTRATION = 0.45
# ... and above the noise of a still sensor.
REST_TREMOR_MIN_RMS_MPS2 = 0.02
# Tremor after exertion is not rest tremor for this long (post-effort tremor is raised for
# minutes to hours; algorithms.md, Lippold).
REST_AFTER_EXERTION_S = 120.0
# Rest tremor comes and goes: it persists, and the episode's cause is "rest", when such episodes
# add up to REST_MIN_S within the last REST_WINDOW_S.
REST_MIN_S = 5.0
REST_WINDOW_S = 30.0
# The band of the "rest" cause (the episode's median peak; wider than the per-window test).
REST_CAUSE_BAND_HZ = (3.0, 7.0)

# ---- sway (instability): 1-3 Hz accelerometer RMS in a hold
# Sway is judged on the absolute floor of tremor at rest (it has no per-person level yet) ...
SWAY_MIN_RMS_MPS2 = 0.09
# ... and walking (strides at 0.8-1 Hz) is not sway.
SWAY_MIN_PEAK_HZ = 1.2

# ---- exertion the rep counter did not see (crunches it could not count, carrying, a sprint)
# VIGOROUS_WINDOWS windows in a row (6 s) moving this much (0.5-3 Hz displacement-equivalent
# RMS, well above the STATIC_DISP_M of any movement).
VIGOROUS_DISP_M = 0.05
VIGOROUS_WINDOWS = 12

# ---- episodes
# One window without tremor (0.5 s) does not split an episode: an amplitude near the floor
# flickers across it.
EPISODE_MAX_GAP_WINDOWS = 1
# Shorter runs (fewer than three windows) are too brief to tell a rhythm from a transient.
EPISODE_MIN_S = 1.5
# An episode spans its windows' centres plus half a hop each side, trimmed by this much.
EPISODE_EDGE_S = 0.0
# Per episode, set or hold at most this many windows are kept (~33 min), the oldest dropped, so
# memory stays bounded over a session-long episode.
MAX_WINDOWS_KEPT = 4000

# ---- causes
# Under load, tremor that grows by this ratio (mean of the last third over the first third) ...
FATIGUE_GROWTH_RATIO = 1.3
# ... or whose peak slows by this much ...
FATIGUE_SLOWING_HZ = 0.5
# ... or whose 4-6 Hz share of the 3-7 and 8-12 Hz power rises by this much is fatigue.
FATIGUE_SLOW_SHARE_RISE = 0.1
# An episode under load shorter than this many windows shows no trend: it counts as fatigue.
FATIGUE_MIN_WINDOWS = 6
# Under load, a steady peak in this band is the physiological tremor of a strained muscle.
LOADED_PHYSIOLOGICAL_BAND_HZ = (7.0, 13.0)
# Sway in at least half of an episode's windows during exertion makes it instability.
INSTABILITY_MIN_SWAY_SHARE = 0.5


@dataclass
class TremorReading:
    """One tremor window as the trackers see it (amplitudes above the baseline)."""

    t_end_s: float
    center_s: float  # the one-second band powers are centred half a second before the end
    static: bool  # no voluntary movement (STATIC_DISP_M)
    band_amp_mps2: float  # tremor-band amplitude (3-15 Hz still, 5-15 Hz moving)
    amp_mps2: float  # what counts: band_amp_mps2, or a small rest rhythm's own amplitude
    sway_amp_mps2: float  # 1-3 Hz amplitude (0 where it is a stronger tremor's leakage)
    peak_hz: float  # spectral peak of the band in use
    sway_peak_hz: float
    tremor: bool
    sway: bool  # sway during a hold


@dataclass
class _Episode:
    first_center_s: float
    last_center_s: float
    rms: list[float]
    peak_hz: list[float]
    slow_share: list[float]
    p_slow: list[float]
    p_phys: list[float]
    entropy: list[float]
    tsi: list[float]
    exertion: bool
    static_all: bool
    sway_votes: int = 0
    misses: int = 0
    n: int = 0


def _nanmedian(x: list[float]) -> float | None:
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    return round(float(np.median(a)), 4) if a.size else None


class EpisodeTracker:
    """Reads tremor windows (``read``) and follows runs of tremor into episodes (``track``);
    ``finish`` closes the episode in progress. Owns the baseline, the ambient and set reference
    levels and the time exertion last ended; ``episodes`` are the closed ones, in order."""

    def __init__(self) -> None:
        self.episodes: list[dict[str, Any]] = []
        self.baseline_mps2: float | None = None
        self.last_exertion_end_s = -np.inf
        self._baseline_p: list[tuple[float, float, float]] = []
        self._baseline_done = False
        self._base_p_trem = 0.0
        self._base_p_sway = 0.0
        self._base_p_mov = 0.0
        self._recent_amp: list[tuple[float, float, bool]] = []  # (window end, amp, static)
        self._set_ref: float | None = None
        self._vigorous_run = 0
        self._episode: _Episode | None = None
        self._rest_flagged = False
        self._rest_like: list[tuple[float, float]] = []  # (end, duration) of 3-7 Hz rest episodes

    # ------------------------------------------------------------------ what the engine reports
    def new_set(self) -> None:
        """A dynamic set started: its reference level is learnt afresh."""
        self._set_ref = None

    def exertion_ended(self, t_s: float) -> None:
        """A rep or a hold ended at ``t_s``."""
        self.last_exertion_end_s = t_s

    # ------------------------------------------------------------------ per window
    def read(
        self, w: TremorWindows, i: int, *, set_start_s: float | None, holding: bool
    ) -> TremorReading:
        """Window ``i`` of ``w``, in a dynamic set that began at ``set_start_s`` (None: none),
        with or without a hold in progress."""
        t_end = float(w.t_end_s[i])
        p_trem, p_sway, p_mov = (float(x) for x in w.power_1s[i])
        static = float(w.disp_rms_m[i]) < STATIC_DISP_M
        self._learn_baseline(p_trem, p_sway, p_mov, static)
        if static:
            conc, peak = float(w.concentration[i]), float(w.peak_hz[i])
            p_est = p_trem * min(1.0, conc) - self._base_p_trem
        else:
            # Voluntary movement leaks into the low band: measure above 5 Hz, and only the
            # power concentrated around the spectral peak (the lift's leakage is broadband).
            conc, peak = float(w.moving_concentration[i]), float(w.moving_peak_hz[i])
            p_est = p_mov * min(1.0, conc) - self._base_p_mov
        amp = float(np.sqrt(max(0.0, p_est)))
        sway_amp = float(np.sqrt(max(0.0, p_sway - self._base_p_sway)))
        if sway_amp < amp:
            sway_amp = 0.0  # leakage of a stronger tremor through the sway filter's skirt
        self._note_exertion(t_end, float(w.disp_rms_m[i]), static)
        self._recent_amp.append((t_end, amp, static))
        while self._recent_amp and self._recent_amp[0][0] < t_end - AMBIENT_S:
            self._recent_amp.pop(0)
        floor = TREMOR_MIN_RMS_MPS2
        ref = self._reference_level(t_end, static, set_start_s)
        if ref is not None:
            floor = max(floor, TREMOR_FACTOR * ref)
        tremor = amp >= floor and conc >= TREMOR_MIN_CONCENTRATION and peak >= TREMOR_MIN_PEAK_HZ
        at_rest = (
            static and not holding and t_end - self.last_exertion_end_s > REST_AFTER_EXERTION_S
        )
        counted = amp
        if at_rest and not tremor:
            rest_amp = _rest_rhythm(p_trem, conc, peak)
            if rest_amp is not None:
                tremor, counted = True, rest_amp
        sway = (
            holding
            and static
            and sway_amp >= SWAY_MIN_RMS_MPS2
            and w.sway_peak_hz[i] >= SWAY_MIN_PEAK_HZ
        )
        return TremorReading(
            t_end,
            t_end - 0.5,
            static,
            amp,
            counted,
            sway_amp,
            peak,
            float(w.sway_peak_hz[i]),
            tremor,
            sway,
        )

    def track(self, w: TremorWindows, i: int, r: TremorReading, exertion: bool) -> list[Event]:
        """Extends the episode in progress with window ``i`` (``r``), or closes it after
        EPISODE_MAX_GAP_WINDOWS windows without tremor. ``exertion``: a set or hold is on."""
        if r.tremor or r.sway:
            use_sway = r.sway and (not r.tremor or r.sway_amp_mps2 > r.amp_mps2)
            self._extend(w, i, r, exertion, use_sway)
            return []
        if self._episode is not None:
            self._episode.misses += 1
            if self._episode.misses > EPISODE_MAX_GAP_WINDOWS:
                return self._close()
        return []

    def finish(self) -> list[Event]:
        return self._close()

    # ------------------------------------------------------------------ levels
    def _learn_baseline(self, p_trem: float, p_sway: float, p_mov: float, static: bool) -> None:
        """The ever-present tremor and sensor noise, from the first still seconds (warm-up);
        later tremor is measured above it."""
        if self._baseline_done or not static:
            return
        self._baseline_p.append((p_trem, p_sway, p_mov))
        if len(self._baseline_p) >= BASELINE_WINDOWS:
            arr = np.array(self._baseline_p)
            self._base_p_trem = min(float(np.median(arr[:, 0])), BASELINE_MAX_RMS_MPS2**2)
            self._base_p_sway = min(float(np.median(arr[:, 1])), BASELINE_MAX_RMS_MPS2**2)
            self._base_p_mov = min(float(np.median(arr[:, 2])), BASELINE_MAX_RMS_MPS2**2)
            self.baseline_mps2 = float(np.sqrt(self._base_p_trem))
            self._baseline_done = True
            self._baseline_p = []

    def _note_exertion(self, t_end: float, disp_rms_m: float, static: bool) -> None:
        """Sustained vigorous movement is exertion even when no set was counted."""
        self._vigorous_run = (
            self._vigorous_run + 1 if (not static and disp_rms_m >= VIGOROUS_DISP_M) else 0
        )
        if self._vigorous_run >= VIGOROUS_WINDOWS:
            self.last_exertion_end_s = max(self.last_exertion_end_s, t_end)

    def _reference_level(
        self, t_end: float, static: bool, set_start_s: float | None
    ) -> float | None:
        """The tremor-band level this person shows anyway in this context (None: judge on the
        absolute floor, for a limb truly at rest)."""
        if set_start_s is not None:
            if self._set_ref is None:
                start = set_start_s
                first = [
                    a for (t, a, _) in self._recent_amp if start <= t <= start + SET_REFERENCE_S
                ]
                if len(first) >= AMBIENT_MIN_WINDOWS or t_end > start + SET_REFERENCE_S + 1.0:
                    self._set_ref = float(np.median(first)) if first else None
            if self._set_ref is not None:
                return self._set_ref
        if static and t_end - self.last_exertion_end_s > REST_AFTER_EXERTION_S:
            return None
        same = [a for (t, a, st) in self._recent_amp if st == static and t >= t_end - AMBIENT_S]
        if len(same) >= AMBIENT_MIN_WINDOWS:
            return float(np.median(same))
        # Moving, with too little seen yet to know this person's level: nothing counts yet.
        return None if static else float("inf")

    # ------------------------------------------------------------------ episodes
    def _extend(
        self, w: TremorWindows, i: int, r: TremorReading, exertion: bool, sway: bool
    ) -> None:
        center = r.center_s
        band = float(w.p_slow[i] + w.p_phys[i]) or 1e-30
        e = self._episode
        if e is None:
            e = self._episode = _Episode(
                center, center, [], [], [], [], [], [], [], exertion, r.static
            )
        e.last_center_s = center
        e.misses = 0
        e.n += 1
        e.exertion = e.exertion or exertion
        e.static_all = e.static_all and r.static
        e.sway_votes += int(sway)
        e.rms.append(r.sway_amp_mps2 if sway else r.amp_mps2)
        e.peak_hz.append(float(w.sway_peak_hz[i]) if sway else float(w.peak_hz[i]))
        e.slow_share.append(float(w.p_fatigue_slow[i]) / band)
        e.p_slow.append(float(w.p_slow[i]))
        e.p_phys.append(float(w.p_phys[i]))
        e.entropy.append(float(w.entropy[i]))
        e.tsi.append(float(w.tsi_hz[i]))
        # Bound the per-episode lists (an episode could last the whole session).
        if len(e.rms) > MAX_WINDOWS_KEPT:
            for lst in (e.rms, e.peak_hz, e.slow_share, e.p_slow, e.p_phys, e.entropy, e.tsi):
                del lst[0]

    def _close(self) -> list[Event]:
        e = self._episode
        self._episode = None
        if e is None:
            return []
        start = max(0.0, e.first_center_s - HOP_S / 2 + EPISODE_EDGE_S)
        end = e.last_center_s + HOP_S / 2 - EPISODE_EDGE_S
        if end - start < EPISODE_MIN_S:
            return []
        cause = self._cause(e, start)
        k = max(1, len(e.rms) // 3)
        ep = {
            "start_s": round(start, 3),
            "end_s": round(end, 3),
            "peak_hz": round(float(np.median(e.peak_hz)), 3),
            "rms_mps2": round(float(np.median(e.rms)), 4),
            "rms_max_mps2": round(float(np.max(e.rms)), 4),
            "growth_ratio": round(
                float(np.mean(e.rms[-k:])) / max(float(np.mean(e.rms[:k])), 1e-9), 3
            ),
            "power_3_7_hz_m2ps4": round(float(np.median(e.p_slow)), 6),
            "power_8_12_hz_m2ps4": round(float(np.median(e.p_phys)), 6),
            "spectral_entropy": round(float(np.median(e.entropy)), 4),
            "tremor_stability_index_hz": _nanmedian(e.tsi),
            "cause": cause,
        }
        self.episodes.append(ep)
        out = [Event(end, "tremor_episode", dict(ep))]
        if cause == "rest" and not self._rest_flagged:
            self._rest_flagged = True
            out.append(
                alert_event(
                    end,
                    "info",
                    "rest_tremor",
                    f"rhythmic {ep['peak_hz']:.1f} Hz tremor at rest, not after exertion. This is not a diagnosis; "
                    "if it persists, consider seeing a doctor",
                )
            )
        return out

    def _cause(self, e: _Episode, start: float) -> str:
        if e.sway_votes >= INSTABILITY_MIN_SWAY_SHARE * e.n and e.exertion:
            return "instability"
        peak = float(np.median(e.peak_hz))
        if e.exertion:
            return _loaded_cause(e, peak)
        duration_s = e.last_center_s - e.first_center_s + HOP_S
        if (
            e.static_all
            and REST_CAUSE_BAND_HZ[0] <= peak <= REST_CAUSE_BAND_HZ[1]
            and start - self.last_exertion_end_s > REST_AFTER_EXERTION_S
        ):
            # Rest tremor comes and goes: it persists when such episodes add up to REST_MIN_S
            # within the last REST_WINDOW_S.
            end = e.last_center_s + HOP_S / 2
            self._rest_like = [(t, d) for t, d in self._rest_like if t >= end - REST_WINDOW_S]
            self._rest_like.append((end, duration_s))
            if sum(d for _, d in self._rest_like) >= REST_MIN_S:
                return "rest"
        return "other"


def _rest_rhythm(p_trem: float, conc: float, peak_hz: float) -> float | None:
    """At rest a clearly rhythmic 3-7 Hz oscillation counts even when small (the ever-present
    physiological tremor sits at 8-12 Hz, so it is not this): its amplitude, or None."""
    if not (REST_BAND_HZ[0] <= peak_hz <= REST_BAND_HZ[1] and conc >= REST_MIN_CONCENTRATION):
        return None
    rest_amp = float(np.sqrt(p_trem * conc))
    return rest_amp if rest_amp >= REST_TREMOR_MIN_RMS_MPS2 else None


def _loaded_cause(e: _Episode, peak_hz: float) -> str:
    """During a set or hold: growing, slowing, or with a 4-6 Hz part emerging is fatigue, and so
    is a steady physiological tremor of a strained muscle."""
    k = max(1, len(e.rms) // 3)
    grows = np.mean(e.rms[-k:]) >= FATIGUE_GROWTH_RATIO * np.mean(e.rms[:k])
    slowing = np.mean(e.peak_hz[:k]) - np.mean(e.peak_hz[-k:]) >= FATIGUE_SLOWING_HZ
    slow_emerging = (
        np.mean(e.slow_share[-k:]) >= np.mean(e.slow_share[:k]) + FATIGUE_SLOW_SHARE_RISE
    )
    if grows or slowing or slow_emerging or len(e.rms) < FATIGUE_MIN_WINDOWS:
        return "fatigue"
    lo, hi = LOADED_PHYSIOLOGICAL_BAND_HZ
    return "fatigue" if lo <= peak_hz <= hi else "other"
