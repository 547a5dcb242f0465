"""Runs the paradigma tremor pipeline on one gyroscope recording (inside .venv-paradigma).

Usage: paradigma_runner.py IN.npz OUT.json. IN holds t_s (N,) and gyro_dps (N, 3). OUT gets the
per-window results (start time, tremor call, peak frequency) and the processing time.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from importlib.resources import files

import numpy as np
import pandas as pd
from paradigma.config import IMUConfig, TremorConfig
from paradigma.pipelines.tremor_pipeline import detect_tremor, extract_tremor_features
from paradigma.preprocessing import preprocess_imu_data


def main() -> int:
    src, dst = sys.argv[1], sys.argv[2]
    data = np.load(src)
    t = data["t_s"]
    g = data["gyro_dps"]
    logging.disable(logging.CRITICAL)
    t0 = time.perf_counter()
    imu = IMUConfig()
    df = pd.DataFrame(
        {imu.time_colname: t, **{c: g[:, k] for k, c in enumerate(imu.gyroscope_colnames)}}
    )
    df = preprocess_imu_data(df, imu, sensor="gyroscope", watch_side="left")
    cfg = TremorConfig("features")
    feats = extract_tremor_features(df, cfg)
    cfg = TremorConfig("classification")
    clf = files("paradigma") / "assets" / "tremor_detection_clf_package.pkl"
    out = detect_tremor(feats, cfg, str(clf))
    elapsed = time.perf_counter() - t0
    res = {
        "elapsed_s": elapsed,
        "window_s": TremorConfig().window_length_s,
        "start_s": out[cfg.time_colname].astype(float).tolist(),
        "tremor": out["pred_tremor_checked"].astype(int).tolist(),
        "tremor_any": out["pred_tremor_logreg"].astype(int).tolist(),
        "peak_hz": out["freq_peak"].astype(float).tolist(),
    }
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(res, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
