"""Small streaming DSP helpers shared by the analysis modules (pure numpy/scipy, no I/O)."""

from __future__ import annotations

import numpy as np
from scipy import signal


class StreamingSos:
    """Causal IIR filter in second-order sections whose state carries across blocks.

    The first block primes the state at steady state for its first sample, so a constant
    input (gravity, a gyro offset) produces no start-up transient.
    """

    def __init__(self, sos: np.ndarray, n_channels: int) -> None:
        self._sos = sos
        self._zi_unit = signal.sosfilt_zi(sos)  # (n_sections, 2)
        self._n_channels = n_channels
        self._zi: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Filters ``x`` of shape (N, n_channels) along axis 0."""
        if x.shape[0] == 0:
            return x.copy()
        if self._zi is None:
            # (n_sections, 2, n_channels): one state per channel.
            self._zi = self._zi_unit[:, :, None] * x[0][None, None, :]
        y, self._zi = signal.sosfilt(self._sos, x, axis=0, zi=self._zi)
        return y


def parabolic_peak_hz(freqs_hz: np.ndarray, power: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Refines argmax bins ``index`` (one per row of ``power``) by a parabola through log-power."""
    rows = np.arange(power.shape[0])
    i = np.clip(index, 1, power.shape[1] - 2)
    lp = np.log(power + 1e-30)
    a, b, c = lp[rows, i - 1], lp[rows, i], lp[rows, i + 1]
    den = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / den, 0.0)
    offset = np.clip(offset, -0.5, 0.5)
    df = freqs_hz[1] - freqs_hz[0]
    return freqs_hz[i] + offset * df


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encoding of a boolean mask: (starts, stops, values), stops exclusive."""
    n = mask.size
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=bool)
    change = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [n]))
    return starts, stops, mask[starts]


def run_lengths(mask: np.ndarray, carried: int) -> tuple[np.ndarray, int]:
    """Consecutive True samples up to and including each sample, continuing ``carried`` from the
    previous block; and the count to carry into the next block."""
    idx = np.arange(mask.size)
    last_false = np.maximum.accumulate(np.where(~mask, idx, -1))
    run = np.where(last_false >= 0, idx - last_false, idx + 1 + carried)
    run[~mask] = 0
    return run, int(run[-1]) if run.size else carried


def principal_axis(z: np.ndarray) -> np.ndarray:
    """Unit direction of largest spread of ``z`` (N, k) about its mean: the top eigenvector of
    the k x k scatter matrix (cheaper than an SVD of z). Its sign is arbitrary."""
    zc = z - z.mean(axis=0)
    return np.linalg.eigh(zc.T @ zc)[1][:, -1]


class StreamingBoxcar:
    """Causal moving average over ``n`` samples whose history carries across blocks (the
    first sample is taken as the value before the stream, like ``StreamingSos``)."""

    def __init__(self, n: int, n_channels: int) -> None:
        self._n = max(1, int(n))
        self._tail: np.ndarray | None = None  # last n - 1 samples, (n - 1, n_channels)
        self._n_channels = n_channels

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 0:
            return x.copy()
        if self._tail is None:
            self._tail = np.repeat(x[:1], self._n - 1, axis=0)
        full = np.vstack((self._tail, x))
        c = np.cumsum(np.vstack((np.zeros((1, full.shape[1])), full)), axis=0)
        y = (c[self._n :] - c[: -self._n]) / self._n
        self._tail = full[full.shape[0] - (self._n - 1) :] if self._n > 1 else full[:0]
        return y
