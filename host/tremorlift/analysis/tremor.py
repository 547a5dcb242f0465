"""Windowed tremor spectra, computed incrementally per block.

Each hop (0.5 s) one Welch segment of 2 s is transformed; a window's spectrum is the mean of
its last three segments, i.e. Welch over a 3 s window with 75 % segment overlap. Every
segment is transformed once, all of a block's segments in one batched FFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tremorlift.analysis.dsp import parabolic_peak_hz

SEGMENT_S = 2.0
HOP_S = 0.5
SEGMENTS_PER_WINDOW = 3
WINDOW_S = SEGMENT_S + (SEGMENTS_PER_WINDOW - 1) * HOP_S  # 3 s
BIN_HZ = 0.25  # zero-padded resolution
TREMOR_BAND_HZ = (3.0, 15.0)
MOVING_TREMOR_BAND_HZ = (5.0, 15.0)
SLOW_BAND_HZ = (3.0, 7.0)
PHYSIOLOGICAL_BAND_HZ = (8.0, 12.0)
FATIGUE_SLOW_BAND_HZ = (4.0, 6.0)
SWAY_BAND_HZ = (1.0, 3.0)
VOLUNTARY_BAND_HZ = (0.5, 3.0)
PEAK_HALF_WIDTH_HZ = 1.0


@dataclass
class TremorWindows:
    """Features of the windows that ended in one block (arrays of equal length)."""

    t_end_s: np.ndarray
    rms_mps2: np.ndarray  # accelerometer RMS in the 3-15 Hz band
    peak_hz: np.ndarray  # accelerometer peak in 3-15 Hz
    sway_peak_hz: np.ndarray  # accelerometer peak in 1-3 Hz
    concentration: np.ndarray  # power within +-1 Hz of the peak / band power
    moving_peak_hz: np.ndarray  # peak in 5-15 Hz (above a lift's own harmonics)
    moving_concentration: np.ndarray
    p_slow: np.ndarray  # (m/s^2)^2 in 3-7 Hz
    p_phys: np.ndarray  # 8-12 Hz
    p_fatigue_slow: np.ndarray  # 4-6 Hz
    p_sway: np.ndarray  # 1-3 Hz
    p_voluntary: np.ndarray  # 0.5-3 Hz
    entropy: np.ndarray  # normalised spectral entropy of the 3-15 Hz band, 0..1
    gyro_rms_radps: np.ndarray  # gyroscope RMS in 3-15 Hz
    gyro_peak_hz: np.ndarray
    tsi_hz: np.ndarray  # tremor stability index: IQR of cycle-to-cycle frequency change
    power_1s: np.ndarray  # (H, k) mean of the extra power channels over the last second
    disp_rms_m: (
        np.ndarray
    )  # displacement-equivalent RMS of 0.5-3 Hz acceleration (voluntary movement)

    def __len__(self) -> int:
        return int(self.t_end_s.size)


class TremorSpectra:
    """Consumes high-passed accelerometer and gyroscope blocks (N, 3) each."""

    def __init__(
        self,
        sample_rate_hz: float,
        tsi_min_rms_mps2: float = 0.0,
        tsi_min_concentration: float = 0.0,
    ) -> None:
        self.fs = sample_rate_hz
        self.tsi_min_rms_mps2 = tsi_min_rms_mps2
        self.tsi_min_concentration = tsi_min_concentration
        self.seg_n = int(round(SEGMENT_S * sample_rate_hz))
        self.hop_n = int(round(HOP_S * sample_rate_hz))
        self.win_n = self.seg_n + (SEGMENTS_PER_WINDOW - 1) * self.hop_n
        self.nfft = max(self.seg_n, int(round(sample_rate_hz / BIN_HZ)))
        self.freqs_hz = np.fft.rfftfreq(self.nfft, 1.0 / sample_rate_hz)
        self.df = self.freqs_hz[1]
        w = np.hanning(self.seg_n)
        self._window = w
        # One-sided density scaling: integrating the PSD over frequency gives the variance.
        self._scale = 2.0 / (sample_rate_hz * float(np.sum(w * w)))
        self._ring = np.zeros((0, 0))
        self._count = 0  # samples seen
        self._t_ring = np.zeros(0)
        self._prev_psd: np.ndarray | None = None  # (<=2, nf, 2) last segment spectra
        f = self.freqs_hz
        with np.errstate(divide="ignore"):
            self._disp_gain = np.where(f > 0, 1.0 / np.maximum(2 * np.pi * f, 1e-9) ** 4, 0.0)
        self._m = {
            name: (f >= lo) & (f <= hi)
            for name, (lo, hi) in {
                "band": TREMOR_BAND_HZ,
                "moving": MOVING_TREMOR_BAND_HZ,
                "slow": SLOW_BAND_HZ,
                "phys": PHYSIOLOGICAL_BAND_HZ,
                "fslow": FATIGUE_SLOW_BAND_HZ,
                "sway": SWAY_BAND_HZ,
                "vol": VOLUNTARY_BAND_HZ,
            }.items()
        }

    def samples_to_next_window(self) -> int:
        """How many more samples complete the next window (the caller may hold back smaller
        amounts and pass them later in one call: the result is the same)."""
        first = self._count + 1
        k0 = max(self.seg_n, ((first + self.hop_n - 1) // self.hop_n) * self.hop_n)
        return k0 - self._count

    def update(
        self, t_s: np.ndarray, accel_hp: np.ndarray, gyro_hp: np.ndarray, power: np.ndarray
    ) -> TremorWindows:
        """``power``: (N, k) instantaneous band powers (squared band-passed signals) whose
        one-second means are reported per hop, centred half a second before the hop."""
        x = np.hstack((accel_hp, gyro_hp, power))
        data = x if self._ring.shape[0] == 0 else np.vstack((self._ring, x))
        tdat = np.concatenate((self._t_ring, t_s))
        n_new = x.shape[0]
        first = self._count + 1
        last = self._count + n_new
        self._count = last
        # Global sample counts at which a segment ends (one per hop).
        k0 = max(self.seg_n, ((first + self.hop_n - 1) // self.hop_n) * self.hop_n)
        ends_global = np.arange(k0, last + 1, self.hop_n)
        keep = self.win_n
        offset = last - data.shape[0]  # global count of data[0] minus one
        if ends_global.size == 0:
            self._ring = data[-keep:]
            self._t_ring = tdat[-keep:]
            return _empty_windows()
        ends = ends_global - offset  # exclusive local end indices
        idx = ends[:, None] + np.arange(-self.seg_n, 0)[None, :]
        segs = data[idx][:, :, 0:6]  # (H, seg_n, 6)
        segs = segs - segs.mean(axis=1, keepdims=True)
        spec = np.fft.rfft(segs * self._window[None, :, None], n=self.nfft, axis=1)
        pw = (spec.real**2 + spec.imag**2) * self._scale
        psd = np.stack((pw[:, :, 0:3].sum(axis=2), pw[:, :, 3:6].sum(axis=2)), axis=2)  # (H, nf, 2)
        hist = psd if self._prev_psd is None else np.concatenate((self._prev_psd, psd), axis=0)
        n_hist_prev = 0 if self._prev_psd is None else self._prev_psd.shape[0]
        csum = np.cumsum(np.concatenate((np.zeros((1,) + hist.shape[1:]), hist), axis=0), axis=0)
        hi = np.arange(n_hist_prev, hist.shape[0]) + 1
        lo = np.maximum(hi - SEGMENTS_PER_WINDOW, 0)
        win_psd = (csum[hi] - csum[lo]) / (hi - lo)[:, None, None]
        self._prev_psd = hist[-(SEGMENTS_PER_WINDOW - 1) :].copy()
        t_end = tdat[ends - 1]
        n1 = int(round(self.fs))
        pw_cum = np.cumsum(np.vstack((np.zeros((1, data.shape[1] - 6)), data[:, 6:])), axis=0)
        power_1s = (pw_cum[ends] - pw_cum[np.maximum(ends - n1, 0)]) / n1
        feats = self._features(win_psd, t_end, data, ends, power_1s)
        self._ring = data[-keep:]
        self._t_ring = tdat[-keep:]
        return feats

    def _features(
        self,
        psd: np.ndarray,
        t_end: np.ndarray,
        data: np.ndarray,
        ends: np.ndarray,
        power_1s: np.ndarray,
    ) -> TremorWindows:
        pa, pg = psd[:, :, 0], psd[:, :, 1]
        m, f, df = self._m, self.freqs_hz, self.df
        band = m["band"]
        bidx = np.flatnonzero(band)
        p_band = pa[:, band].sum(axis=1) * df
        i_peak = bidx[np.argmax(pa[:, band], axis=1)]
        peak_hz = parabolic_peak_hz(f, pa, i_peak)
        sidx = np.flatnonzero(m["sway"])
        sway_peak_hz = parabolic_peak_hz(f, pa, sidx[np.argmax(pa[:, m["sway"]], axis=1)])
        near = (np.abs(f[None, :] - peak_hz[:, None]) <= PEAK_HALF_WIDTH_HZ) & band[None, :]
        conc = (pa * near).sum(axis=1) * df / np.maximum(p_band, 1e-30)
        # The same for the band above voluntary movement's harmonics (used while moving).
        mband = m["moving"]
        midx = np.flatnonzero(mband)
        p_mband = pa[:, mband].sum(axis=1) * df
        mpeak_hz = parabolic_peak_hz(f, pa, midx[np.argmax(pa[:, mband], axis=1)])
        mnear = (np.abs(f[None, :] - mpeak_hz[:, None]) <= PEAK_HALF_WIDTH_HZ) & mband[None, :]
        mconc = (pa * mnear).sum(axis=1) * df / np.maximum(p_mband, 1e-30)
        q = pa[:, band] / np.maximum(pa[:, band].sum(axis=1, keepdims=True), 1e-30)
        entropy = -(q * np.log(q + 1e-30)).sum(axis=1) / np.log(q.shape[1])
        g_band = pg[:, band].sum(axis=1) * df
        g_peak = parabolic_peak_hz(f, pg, bidx[np.argmax(pg[:, band], axis=1)])
        rms = np.sqrt(p_band)
        tsi = np.full(rms.size, np.nan)
        want = np.flatnonzero(
            (rms >= self.tsi_min_rms_mps2)
            & ((conc >= self.tsi_min_concentration) | (mconc >= self.tsi_min_concentration))
        )
        if want.size:  # only windows that can be tremor: the cycle analysis is the costly part
            tsi[want] = self._tsi(data, ends[want], peak_hz[want])
        return TremorWindows(
            t_end_s=t_end,
            rms_mps2=rms,
            peak_hz=peak_hz,
            sway_peak_hz=sway_peak_hz,
            concentration=conc,
            moving_peak_hz=mpeak_hz,
            moving_concentration=mconc,
            p_slow=pa[:, m["slow"]].sum(axis=1) * df,
            p_phys=pa[:, m["phys"]].sum(axis=1) * df,
            p_fatigue_slow=pa[:, m["fslow"]].sum(axis=1) * df,
            p_sway=pa[:, m["sway"]].sum(axis=1) * df,
            p_voluntary=pa[:, m["vol"]].sum(axis=1) * df,
            entropy=entropy,
            gyro_rms_radps=np.sqrt(g_band),
            gyro_peak_hz=g_peak,
            tsi_hz=tsi,
            power_1s=power_1s,
            disp_rms_m=np.sqrt((pa[:, m["vol"]] * self._disp_gain[m["vol"]]).sum(axis=1) * df),
        )

    def _tsi(self, data: np.ndarray, ends: np.ndarray, peak_hz: np.ndarray) -> np.ndarray:
        """IQR of cycle-to-cycle changes of the tremor frequency on the dominant accelerometer axis,
        band-limited around each window's peak (zero-phase inside the window)."""
        n = min(self.win_n, int(ends.min()))
        idx = ends[:, None] + np.arange(-n, 0)[None, :]
        seg = data[idx][:, :, 0:3]
        seg = seg - seg.mean(axis=1, keepdims=True)
        axis = np.argmax(seg.var(axis=1), axis=1)
        x = seg[np.arange(seg.shape[0]), :, axis]
        spec = np.fft.rfft(x, axis=1)
        fr = np.fft.rfftfreq(n, 1.0 / self.fs)
        keep = np.abs(fr[None, :] - peak_hz[:, None]) <= 2.0
        y = np.fft.irfft(spec * keep, n=n, axis=1)
        out = np.full(x.shape[0], np.nan)
        for i in range(y.shape[0]):  # per window (2 per second), not per sample
            s = np.signbit(y[i])
            up = np.flatnonzero(s[:-1] & ~s[1:])
            if up.size < 4:
                continue
            a, b = y[i, up], y[i, up + 1]
            tc = up + a / (a - b)  # linear interpolation of the crossing
            inst_hz = self.fs / np.diff(tc)
            dfreq = np.diff(inst_hz)
            q75, q25 = np.percentile(dfreq, [75, 25])
            out[i] = q75 - q25
        return out


def _empty_windows() -> TremorWindows:
    e = np.zeros(0)
    return TremorWindows(e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, np.zeros((0, 3)), e)
