"""Where tremorlift keeps the user's files (platformdirs), with environment overrides.

``TREMORLIFT_DATA_DIR`` and ``TREMORLIFT_CONFIG_DIR`` replace the platform folders; tests and
CI use them so nothing touches the real home folder.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import platformdirs

APP_NAME = "tremorlift"
SESSION_SUFFIX = ".tlsession"


def data_dir() -> Path:
    override = os.environ.get("TREMORLIFT_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def config_dir() -> Path:
    override = os.environ.get("TREMORLIFT_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))


def sessions_dir() -> Path:
    return data_dir() / "sessions"


def new_session_path(now: dt.datetime | None = None) -> Path:
    """A fresh session file name in the sessions folder (the folder is created, mode 0700)."""
    folder = sessions_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stamp}{SESSION_SUFFIX}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{stamp}-{n}{SESSION_SUFFIX}"
    return path
