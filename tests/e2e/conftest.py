import pytest


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path, monkeypatch):
    """Keep the collector's data and config folders inside the test's own folder."""
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TREMORLIFT_CONFIG_DIR", str(tmp_path / "config"))
