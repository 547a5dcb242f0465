"""The session file's schema and identity (docs/session-format.md), shared by the writer
(``store/session.py``) and the reader (``store/reader.py``)."""

from __future__ import annotations

FORMAT_VERSION = 1
APPLICATION = "tremorlift-session"
# SQLite's application_id header field (offset 68): lets `file` and readers tell a session from
# any other SQLite database without a query. ASCII "TLs1".
APPLICATION_ID = 0x544C7331

SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE devices (
    device    INTEGER PRIMARY KEY,
    address   TEXT NOT NULL UNIQUE,
    name      TEXT,
    placement TEXT,
    added_s   REAL NOT NULL
);
CREATE TABLE infos (
    device               INTEGER NOT NULL REFERENCES devices(device),
    boot                 INTEGER NOT NULL,
    host_s               REAL NOT NULL,
    raw                  BLOB NOT NULL,
    name                 TEXT NOT NULL,
    fw_version           TEXT NOT NULL,
    imu_kind             INTEGER NOT NULL,
    board                INTEGER NOT NULL,
    odr_hz               INTEGER NOT NULL,
    accel_range_g        INTEGER NOT NULL,
    gyro_range_dps       INTEGER NOT NULL,
    dlpf_hz              INTEGER NOT NULL,
    accel_lsb_per_g      INTEGER NOT NULL,
    gyro_lsb_per_dps_x10 INTEGER NOT NULL,
    samples_per_frame    INTEGER NOT NULL,
    ring_frames          INTEGER NOT NULL,
    att_mtu              INTEGER NOT NULL,
    boot_id              INTEGER NOT NULL
);
CREATE INDEX infos_by_device ON infos(device, host_s);
CREATE TABLE frames (
    device             INTEGER NOT NULL REFERENCES devices(device),
    boot               INTEGER NOT NULL,
    seq                INTEGER NOT NULL,
    host_s             REAL NOT NULL,
    first_sample_index INTEGER NOT NULL,
    n_samples          INTEGER NOT NULL,
    flags              INTEGER NOT NULL,
    raw                BLOB NOT NULL,
    PRIMARY KEY (device, boot, seq)
) WITHOUT ROWID;
CREATE TABLE statuses (
    device  INTEGER NOT NULL REFERENCES devices(device),
    boot    INTEGER NOT NULL,
    host_s  REAL NOT NULL,
    raw     BLOB NOT NULL,
    boot_id INTEGER NOT NULL,
    flags   INTEGER NOT NULL
);
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    device INTEGER REFERENCES devices(device),
    host_s REAL NOT NULL,
    kind   TEXT NOT NULL,
    data   TEXT NOT NULL
);
CREATE TABLE analysis (
    id     INTEGER PRIMARY KEY,
    device INTEGER REFERENCES devices(device),
    host_s REAL NOT NULL,
    kind   TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE TABLE stats (
    id     INTEGER PRIMARY KEY,
    device INTEGER REFERENCES devices(device),
    host_s REAL NOT NULL,
    data   TEXT NOT NULL
);
"""

TABLES = ("meta", "devices", "infos", "frames", "statuses", "events", "analysis", "stats")
