"""Motion generator: reproducibility, physics consistency, tremor truth, sensor model, truth schema."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import signal
from tremorlift.twin.motion import generator as motion
from tremorlift.twin.motion.generator import MotionSource, generate
from tremorlift.twin.motion.sensor import GRAVITY_MPS2

RATE_HZ = 200.0


@pytest.fixture(scope="module")
def cache() -> dict[tuple[str, int, bool, str], motion.Scenario]:
    return {}


def gen(
    cache: dict, name: str, seed: int = 3, short: bool = True, imu: str = "icm42688"
) -> motion.Scenario:
    key = (name, seed, short, imu)
    if key not in cache:
        cache[key] = generate(name, seed, sample_rate_hz=RATE_HZ, imu=imu, short=short)
    return cache[key]


def kin(rec: motion.DeviceRecording) -> motion.Kinematics:
    assert rec.kinematics is not None
    return rec.kinematics


def reps_of(truth: dict) -> list[dict]:
    return [r for s in truth["sets"] for r in s["reps"]]


def idx(t_s: float, rate_hz: float = RATE_HZ) -> int:
    return int(round(t_s * rate_hz))


def _quat_chain(gyro_radps: np.ndarray, rate_hz: float) -> np.ndarray:
    """Unit quaternions (x, y, z, w) q_k = q_{k-1} * exp(w_k dt / 2), q_0 = identity, with the
    trapezoid of the body-frame rates over each step."""
    from scipy.spatial.transform import Rotation

    steps = (
        Rotation.from_rotvec(0.5 * (gyro_radps[1:] + gyro_radps[:-1]) / rate_hz).as_quat().tolist()
    )
    out = np.empty((gyro_radps.shape[0], 4))
    x, y, z, w = 0.0, 0.0, 0.0, 1.0
    out[0] = (x, y, z, w)
    for i, (bx, by, bz, bw) in enumerate(steps, start=1):
        x, y, z, w = (
            w * bx + x * bw + y * bz - z * by,
            w * by - x * bz + y * bw + z * bx,
            w * bz + x * by - y * bx + z * bw,
            w * bw - x * bx - y * by - z * bz,
        )
        out[i] = (x, y, z, w)
    return out


def quat_integrate(gyro_radps: np.ndarray, rate_hz: float, r0: np.ndarray) -> np.ndarray:
    """Orientation (world-from-sensor matrices) integrated from body-frame rates."""
    from scipy.spatial.transform import Rotation

    rel = Rotation.from_quat(_quat_chain(gyro_radps, rate_hz))
    return np.einsum("ij,njk->nik", r0, rel.as_matrix())


# --- reproducibility ---------------------------------------------------------------------------


def test_same_seed_same_data_and_different_seeds_differ() -> None:
    a = generate("demo", 11, short=True)
    b = generate("demo", 11, short=True)
    c = generate("demo", 12, short=True)
    da, db, dc = a.devices[0], b.devices[0], c.devices[0]
    assert np.array_equal(da.accel_mps2, db.accel_mps2)
    assert np.array_equal(da.gyro_radps, db.gyro_radps)
    assert da.truth == db.truth
    assert da.truth != dc.truth
    n = min(da.t_s.size, dc.t_s.size)
    assert not np.allclose(da.accel_mps2[:n], dc.accel_mps2[:n])


def test_seeds_vary_the_physiology(cache: dict) -> None:
    """Rep counts/velocities, durations and tremor levels differ between seeds."""
    mvs, durations = set(), set()
    for seed in range(4):
        truth = gen(cache, "curl-3x10", seed).devices[0].truth
        durations.add(truth["duration_s"])
        mvs.add(reps_of(truth)[0]["mean_concentric_velocity_mps"])
    assert len(mvs) == 4 and len(durations) == 4


# --- physics -------------------------------------------------------------------------------------


def test_still_sensor_reads_gravity(cache: dict) -> None:
    for name in ("squat-5x5", "bench-to-failure", "curl-3x10"):
        rec = gen(cache, name).devices[0]
        first_move = min(
            [e["t_s"] for e in rec.truth["events"]] + [s["start_s"] for s in rec.truth["sets"]]
        )
        still = slice(0, idx(min(first_move, 2.0)))
        clean = np.linalg.norm(kin(rec).accel_true_mps2[still], axis=1)
        assert np.all(np.abs(clean - GRAVITY_MPS2) < 0.25)  # only the small baseline tremor
        measured = np.linalg.norm(rec.accel_mps2[still], axis=1)
        assert abs(np.median(measured) - GRAVITY_MPS2) < 0.5  # bias <= 20 mg/axis + scale errors
        assert np.all(np.abs(kin(rec).gyro_true_radps[still]) < 0.05)


def test_accel_is_rotated_world_acceleration_plus_gravity(cache: dict) -> None:
    rec = gen(cache, "curl-3x10").devices[0]
    k = kin(rec)
    expected = np.einsum(
        "nji,nj->ni", k.rot_world_from_sensor, k.acc_mps2 + [0.0, 0.0, GRAVITY_MPS2]
    )
    # Tremor and the grip/strap vibration floor are the only additions (curls have no impacts).
    resid = k.accel_true_mps2 - k.tremor_accel_mps2 - k.floor_accel_mps2 - expected
    assert np.max(np.abs(resid)) < 1e-9


@pytest.mark.parametrize(
    "name", ["squat-5x5", "bench-to-failure", "curl-3x10", "deadlift-3x5", "squat-forearm"]
)
def test_integrated_world_acceleration_matches_truth_velocity(cache: dict, name: str) -> None:
    rec = gen(cache, name).devices[0]
    k = kin(rec)
    reps = reps_of(rec.truth)
    assert reps
    for r in reps:
        a, b = idx(r["concentric_start_s"]), idx(r["concentric_end_s"])
        az = k.acc_mps2[a : b + 1, 2]
        v = np.concatenate(([0.0], np.cumsum(0.5 * (az[1:] + az[:-1])) / RATE_HZ))  # starts at rest
        assert abs(np.mean(v) - r["mean_concentric_velocity_mps"]) < 0.01
        assert abs(np.max(v) - r["peak_velocity_mps"]) < 0.02
        assert abs(np.sum(v) / RATE_HZ - r["rom_m"]) < 0.01
        assert r["peak_velocity_mps"] > r["mean_concentric_velocity_mps"] > 0.05
        assert r["start_s"] <= r["concentric_start_s"] < r["concentric_end_s"] <= r["end_s"]


def test_gyro_integrates_to_the_generators_orientation(cache: dict) -> None:
    rec = gen(cache, "curl-3x10").devices[0]
    k = kin(rec)
    est = quat_integrate(k.gyro_true_radps, RATE_HZ, k.rot_world_from_sensor[0])
    # Gravity seen through the integrated orientation matches the generator's own.
    g_est = est[:, 2, :]  # world z in sensor axes = third row of R
    g_true = k.rot_world_from_sensor[:, 2, :]
    err_rad = np.arccos(np.clip(np.sum(g_est * g_true, axis=1), -1, 1))
    assert np.max(err_rad) < math.radians(1.0)


def _rotation_angle(gyro: np.ndarray) -> float:
    """Net rotation (rad) over a stretch of body-frame rates."""
    q = _quat_chain(gyro, RATE_HZ)[-1]
    return float(2.0 * math.atan2(float(np.linalg.norm(q[:3])), abs(float(q[3]))))


def test_curl_turns_the_forearm_about_two_radians(cache: dict) -> None:
    """A curl rep turns the forearm by the lifter's elbow excursion (1.90-2.20 rad) plus 0.3 rad
    supination, both times the rep's depth (0.92-1.06): 1.76-2.34 rad net (docs/motion-model.md).
    Gyro bias and the strap's rocking add a few hundredths either way."""
    rec = gen(cache, "curl-3x10").devices[0]
    turns = []
    for r in reps_of(rec.truth):
        a, b = idx(r["concentric_start_s"]), idx(r["concentric_end_s"])
        turns.append(_rotation_angle(rec.gyro_radps[a : b + 1]))
    assert all(1.72 < x < 2.4 for x in turns), turns
    assert 1.85 < float(np.median(turns)) < 2.3  # a typical rep: about two radians


@pytest.mark.parametrize("name", ["bench-to-failure", "squat-forearm", "overhead-press"])
def test_pressing_lifts_barely_rotate_the_forearm(cache: dict, name: str) -> None:
    rec = gen(cache, name).devices[0]
    for r in reps_of(rec.truth):
        a, b = idx(r["concentric_start_s"]), idx(r["concentric_end_s"])
        assert _rotation_angle(rec.gyro_radps[a : b + 1]) < 0.25
        assert r["rom_m"] > 0.3  # yet the forearm travels with the bar


def test_velocity_declines_towards_failure(cache: dict) -> None:
    rec = gen(cache, "bench-to-failure", short=False).devices[0]
    last_set = rec.truth["sets"][-1]["reps"]
    first = max(r["mean_concentric_velocity_mps"] for r in last_set[:2])
    assert last_set[-1]["mean_concentric_velocity_mps"] < 0.7 * first
    durations = [r["concentric_end_s"] - r["concentric_start_s"] for r in last_set]
    assert durations[-1] > 1.4 * durations[0]


def test_unrack_and_rerack_are_small_moves(cache: dict) -> None:
    rec = gen(cache, "squat-5x5").devices[0]
    z = kin(rec).pos_m[:, 2]
    kinds = [e["kind"] for e in rec.truth["events"]]
    assert "unrack" in kinds and "rerack" in kinds
    for e in rec.truth["events"]:
        if e["kind"] in ("unrack", "rerack"):
            seg = z[idx(e["t_s"]) : idx(e["t_s"] + 1.2)]
            assert np.ptp(seg) < 0.15


def test_two_sensors_share_the_timeline_with_mild_asymmetry(cache: dict) -> None:
    sc = gen(cache, "two-sensors")
    left, right = sc.device("left"), sc.device("right")
    assert left.t_s.size == right.t_s.size
    tl, tr = left.truth, right.truth
    assert [(s["start_s"], s["end_s"]) for s in tl["sets"]] == [
        (s["start_s"], s["end_s"]) for s in tr["sets"]
    ]
    ratio = [a["rom_m"] / b["rom_m"] for a, b in zip(reps_of(tl), reps_of(tr), strict=True)]
    assert all(0.85 < q < 1.18 for q in ratio)
    assert not np.allclose(ratio, 1.0, atol=0.005)
    assert not np.allclose(left.accel_mps2, right.accel_mps2)


# --- tremor --------------------------------------------------------------------------------------


def _band(freq_hz: float) -> tuple[float, float]:
    if freq_hz < 3.5:
        return 0.8, 3.5
    if freq_hz < 7.5:
        return 3.0, 7.5
    return 7.0, 13.0


def test_tremor_spans_have_the_stated_frequency(cache: dict) -> None:
    """A span's truth frequency is the frequency of the tremor rendered into the signal.

    Measured on the error-free sensor signal (motion, gravity and tremor) without the grip/strap
    floor: the floor is a separate component that is not tremor, and in hand-held sets its 10-13
    Hz resonance is often the recording's largest 7-13 Hz peak (docs/motion-model.md). The
    sensor chain (linear filters, white noise) cannot move a spectral peak."""
    errors, causes = [], set()
    for name in ("rest-tremor", "wall-sit", "single-leg-balance", "bench-to-failure", "demo"):
        for seed in (1, 2):
            rec = gen(cache, name, seed, short=False, imu="mpu6050").devices[0]
            sig = kin(rec).accel_true_mps2 - kin(rec).floor_accel_mps2
            for sp in rec.truth["tremor_spans"]:
                if sp["end_s"] - sp["start_s"] < 4.0:
                    continue
                lo, hi = _band(sp["freq_hz"])
                sos = signal.butter(4, [lo, hi], btype="bandpass", fs=RATE_HZ, output="sos")
                a, b = idx(sp["start_s"]), idx(sp["end_s"])
                pad = idx(2.0)  # filter a little more than the span, then cut the span out
                lo_i = max(0, a - pad)
                x = signal.sosfiltfilt(sos, sig[lo_i : b + pad], axis=0)[a - lo_i : b - lo_i]
                f, p = signal.periodogram(
                    x - x.mean(0), fs=RATE_HZ, nfft=int(RATE_HZ / 0.02), axis=0, window="hann"
                )
                band = (f >= lo) & (f <= hi)
                peak = f[band][np.argmax(p[band].sum(axis=1))]
                errors.append(abs(peak - sp["freq_hz"]))
                causes.add(sp["cause"])
    assert {"rest", "fatigue", "instability"} <= causes
    errors_arr = np.array(errors)
    # Frequency wanders and (with fatigue) drifts inside a span: nearly all peaks within 0.2 Hz.
    assert np.mean(errors_arr <= 0.2) >= 0.9, errors
    assert np.max(errors_arr) < 0.5


def test_tremor_span_rms_matches_the_tremor_component(cache: dict) -> None:
    rec = gen(cache, "rest-tremor", 1, short=False).devices[0]
    spans = rec.truth["tremor_spans"]
    assert spans
    for sp in spans:
        tr = kin(rec).tremor_accel_mps2[idx(sp["start_s"]) : idx(sp["end_s"])]
        total = math.sqrt(np.mean(np.sum(tr**2, axis=1)))
        # The component's own RMS; the baseline physiological tremor adds a little on top.
        assert sp["rms_mps2"] <= total * 1.02 + 1e-3
        assert total < sp["rms_mps2"] * 1.15 + 0.05
        assert 3.0 <= sp["freq_hz"] <= 7.0 and sp["cause"] == "rest"
        assert sp["rms_mps2"] >= motion.TREMOR_SPAN_MIN_RMS_MPS2 * 0.5


def test_rest_tremor_is_not_exertion_and_fatigue_tremor_rises_through_a_hold(cache: dict) -> None:
    rec = gen(cache, "rest-tremor", 2, short=False).devices[0]
    first_set = rec.truth["sets"][0]["start_s"]
    rest_spans = [s for s in rec.truth["tremor_spans"] if s["cause"] == "rest"]
    assert rest_spans and all(s["end_s"] <= first_set for s in rest_spans)

    rec = gen(cache, "wall-sit", 2, short=False).devices[0]
    hold = rec.truth["sets"][0]
    assert hold["kind"] == "hold" and hold["reps"] == []
    sos = signal.butter(4, [7.0, 13.0], btype="bandpass", fs=RATE_HZ, output="sos")
    x = signal.sosfiltfilt(sos, rec.accel_mps2, axis=0)
    a, b = idx(hold["start_s"]), idx(hold["end_s"])
    q = (b - a) // 5
    early = np.sqrt(np.mean(np.sum(x[a + 20 : a + q] ** 2, axis=1)))
    late = np.sqrt(np.mean(np.sum(x[b - q : b] ** 2, axis=1)))
    assert late > 1.5 * early


def test_tremor_is_in_both_accel_and_gyro(cache: dict) -> None:
    rec = gen(cache, "rest-tremor", 1, short=False).devices[0]
    sp = max(rec.truth["tremor_spans"], key=lambda s: s["end_s"] - s["start_s"])
    sos = signal.butter(4, [3.0, 7.5], btype="bandpass", fs=RATE_HZ, output="sos")
    a, b = idx(sp["start_s"]), idx(sp["end_s"])
    for data in (rec.accel_mps2, rec.gyro_radps):
        x = signal.sosfiltfilt(sos, data, axis=0)[a:b]
        f, p = signal.periodogram(x, fs=RATE_HZ, nfft=int(RATE_HZ / 0.05), axis=0)
        peak = f[np.argmax(p.sum(axis=1))]
        assert abs(peak - sp["freq_hz"]) < 0.3
    # Angular amplitude consistent with a lever of 0.1-0.3 m: omega ~ a / (L * 2 pi f).
    ga = np.sqrt(np.mean(np.sum(signal.sosfiltfilt(sos, rec.gyro_radps, axis=0)[a:b] ** 2, axis=1)))
    expected = sp["rms_mps2"] / (2 * math.pi * sp["freq_hz"])
    assert expected / 0.35 < ga < expected / 0.08


# --- sensor model --------------------------------------------------------------------------------


@pytest.mark.parametrize("imu", ["mpu6050", "icm42688"])
def test_output_is_quantised_and_saturates(cache: dict, imu: str) -> None:
    rec = gen(cache, "squat-5x5", imu=imu).devices[0]
    lsb_a = 8.0 * GRAVITY_MPS2 / 32768
    lsb_g = math.radians(1000.0) / 32768
    counts = rec.accel_mps2 / lsb_a
    assert np.allclose(counts, np.rint(counts), atol=1e-6)
    assert np.allclose(rec.gyro_radps / lsb_g, np.rint(rec.gyro_radps / lsb_g), atol=1e-6)
    assert np.max(np.abs(rec.accel_mps2)) <= 8.0 * GRAVITY_MPS2
    # Racking impacts are several g on top of the motion: a 40-90 Hz ringing, which at a 200 Hz
    # ODR the ICM-42688-P's low-pass (ODR/4 = 50 Hz) mostly removes; at 1 kHz both chips pass it
    # (250/260 Hz).
    fast = {
        range_g: generate(
            "squat-5x5",
            3,
            sample_rate_hz=1000.0,
            imu=imu,
            short=True,
            accel_range_g=range_g,
            keep_kinematics=False,
        )
        .devices[0]
        .accel_mps2
        for range_g in (8.0, 2.0)
    }
    assert np.max(np.linalg.norm(fast[8.0], axis=1)) > 2.0 * GRAVITY_MPS2
    # A +-2 g range clips them at full scale (int16: -32768..32767 counts).
    lsb_2g = 2.0 * GRAVITY_MPS2 / 32768
    assert 32767 * lsb_2g - 1e-9 <= np.max(np.abs(fast[2.0])) <= 32768 * lsb_2g + 1e-9


def test_noise_level_follows_the_datasheet_density(cache: dict) -> None:
    levels = {}
    for imu in ("mpu6050", "icm42688"):
        rec = gen(cache, "squat-5x5", imu=imu).devices[0]
        still = slice(0, idx(2.0))
        resid = rec.accel_mps2[still] - kin(rec).accel_true_mps2[still]
        levels[imu] = float(np.std(resid - resid.mean(0)))
    # MPU-6050 400 ug/rtHz vs ICM-42688-P 70 ug/rtHz over their bandwidths.
    assert 0.01 < levels["mpu6050"] < 0.05
    assert levels["icm42688"] < levels["mpu6050"] / 3


# --- truth schema --------------------------------------------------------------------------------

_REP_KEYS = {
    "start_s",
    "end_s",
    "concentric_start_s",
    "concentric_end_s",
    "mean_concentric_velocity_mps",
    "peak_velocity_mps",
    "rom_m",
}


@pytest.mark.parametrize("name", list(motion.SCENARIOS))
def test_truth_schema(cache: dict, name: str) -> None:
    sc = gen(cache, name, seed=5)
    spec = motion.SCENARIOS[name]
    assert [d.name for d in sc.devices] == [d for d, _ in spec.devices]
    for rec in sc.devices:
        truth = json.loads(json.dumps(rec.truth))
        assert set(truth) == {
            "scenario",
            "seed",
            "sample_rate_hz",
            "device",
            "placement",
            "imu",
            "duration_s",
            "sets",
            "tremor_spans",
            "events",
        }
        assert (
            truth["scenario"] == name and truth["seed"] == 5 and truth["sample_rate_hz"] == RATE_HZ
        )
        assert truth["device"] == rec.name and truth["placement"] in motion.PLACEMENTS
        assert truth["imu"] == "icm42688"
        assert abs(truth["duration_s"] - rec.t_s.size / RATE_HZ) < 0.01
        assert 20.0 < truth["duration_s"] < 400.0
        assert rec.accel_mps2.shape == (rec.t_s.size, 3) and rec.gyro_radps.shape == (
            rec.t_s.size,
            3,
        )
        assert truth["sets"]
        prev_end = 0.0
        for s in truth["sets"]:
            assert set(s) == {"kind", "exercise", "start_s", "end_s", "reps"}
            assert s["kind"] in ("dynamic", "hold") and isinstance(s["exercise"], str)
            assert prev_end <= s["start_s"] < s["end_s"] <= truth["duration_s"]
            prev_end = s["end_s"]
            assert (s["kind"] == "hold") == (s["reps"] == [])
            for r in s["reps"]:
                assert set(r) == _REP_KEYS
                assert s["start_s"] <= r["start_s"] < r["end_s"] <= s["end_s"]
                assert all(isinstance(r[k], float) for k in _REP_KEYS)
        for sp in truth["tremor_spans"]:
            assert set(sp) == {"start_s", "end_s", "freq_hz", "rms_mps2", "cause"}
            assert sp["cause"] in ("fatigue", "instability", "rest", "other")
            assert 0 <= sp["start_s"] < sp["end_s"] <= truth["duration_s"]
            assert 0.5 < sp["freq_hz"] < 15 and sp["rms_mps2"] > 0
        for e in truth["events"]:
            assert set(e) == {"t_s", "kind"} and e["kind"] in ("unrack", "rerack", "fidget", "walk")


def test_full_length_durations_and_demo() -> None:
    truths = {
        name: generate(name, 7, keep_kinematics=False).devices[0].truth
        for name in ("demo", "squat-5x5", "mixed-workout")
    }
    durations = {name: t["duration_s"] for name, t in truths.items()}
    assert 60.0 <= durations["demo"] <= 95.0
    assert all(60.0 <= d <= 370.0 for d in durations.values())
    demo = truths["demo"]
    assert [s["kind"] for s in demo["sets"]] == ["dynamic", "dynamic", "hold"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="valid: .*squat-5x5"):
        generate("jumping-jacks", 1)
    with pytest.raises(ValueError, match="sample rate"):
        generate("demo", 1, sample_rate_hz=20.0)
    with pytest.raises(ValueError, match="imu"):
        generate("demo", 1, imu="bmi270")


# --- MotionSource ---------------------------------------------------------------------------------


def test_motion_source_replays_and_loops() -> None:
    src = MotionSource("demo", 4, sample_rate_hz=100.0, short=True).prepare()
    rec = generate("demo", 4, sample_rate_hz=100.0, short=True).devices[0]
    n = rec.t_s.size
    row = src(10)
    assert len(row) == 6 and all(isinstance(v, float) for v in row)
    assert np.allclose(row, np.concatenate([rec.accel_mps2[10], rec.gyro_radps[10]]))
    assert src(n + 10) == row  # loops
    stop = MotionSource.from_recording(rec, loop=False)
    assert stop(n + 1000) == stop(n - 1)
    with pytest.raises(ValueError):
        stop.set_sample_rate(200.0)
    src.set_sample_rate(50.0)  # the emulated chip's ODR changed
    slow = generate("demo", 4, sample_rate_hz=50.0, short=True).devices[0]
    assert np.allclose(src(10), np.concatenate([slow.accel_mps2[10], slow.gyro_radps[10]]))
    assert len(src._samples) == slow.t_s.size


def test_motion_source_reseeds_each_loop_without_growing() -> None:
    src = MotionSource("demo", 4, sample_rate_hz=50.0, reseed_each_loop=True, short=True)
    first = src(0)
    n0 = len(src._samples)
    second_loop = src(n0)  # first sample of the next repetition (seed 5)
    nxt = generate("demo", 5, sample_rate_hz=50.0, short=True).devices[0]
    assert np.allclose(second_loop, np.concatenate([nxt.accel_mps2[0], nxt.gyro_radps[0]]))
    assert len(src._samples) == nxt.t_s.size  # only the current repetition is held
    assert src(0) == first  # going back re-renders from the start


def test_truth_does_not_depend_on_the_output_rate() -> None:
    """The twin takes truth from a 200 Hz render and the signal from one at the chip's ODR."""
    a = generate("demo", 8, sample_rate_hz=200.0, keep_kinematics=False).devices[0].truth
    b = generate("demo", 8, sample_rate_hz=500.0, keep_kinematics=False).devices[0].truth
    assert a["events"] == b["events"] and a["duration_s"] == b["duration_s"]
    assert [(s["start_s"], s["end_s"]) for s in a["sets"]] == [
        (s["start_s"], s["end_s"]) for s in b["sets"]
    ]
    for ra, rb in zip(reps_of(a), reps_of(b), strict=True):
        assert abs(ra["mean_concentric_velocity_mps"] - rb["mean_concentric_velocity_mps"]) < 0.005
        assert abs(ra["rom_m"] - rb["rom_m"]) < 0.005
    assert len(a["tremor_spans"]) == len(b["tremor_spans"]) > 0
    for sa, sb in zip(a["tremor_spans"], b["tremor_spans"], strict=True):
        assert abs(sa["start_s"] - sb["start_s"]) < 0.02 and abs(sa["end_s"] - sb["end_s"]) < 0.02
        assert abs(sa["freq_hz"] - sb["freq_hz"]) < 0.05
        assert abs(sa["rms_mps2"] / sb["rms_mps2"] - 1.0) < 0.05
