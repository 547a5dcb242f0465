"""The paired-devices file, the collector's pairing policy and the errors that say "pair first"
(tremorlift.transport.pairing, tremorlift.transport.ble); the history index's permissions."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from bleak.exc import BleakDBusError, BleakError, BleakGATTProtocolError
from tremorlift.cli import main
from tremorlift.errors import UserError
from tremorlift.transport import pairing
from tremorlift.transport.ble import PairingRequired, is_security_refusal


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TREMORLIFT_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture
def open_umask():
    old = os.umask(0o000)  # the most permissive: modes must not depend on the user's umask
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_record_load_refresh_forget(open_umask) -> None:
    assert pairing.load_paired() == []
    t = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)
    a = pairing.record_paired("f3:12:34:56:1a:2b", "TL-1A2B", now=t)
    pairing.record_paired("C1:00:00:00:00:02", "TL-0002", twin=True, now=t)
    path = pairing.paired_path()
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert a == pairing.PairedWearable(
        "F3:12:34:56:1A:2B", "TL-1A2B", "2026-11-22T02:00:00Z", False
    )
    # Pairing the same wearable again refreshes its entry (moved to the end), never duplicates.
    later = pairing.record_paired("F3:12:34:56:1A:2B", "TL-1A2B", now=t + dt.timedelta(days=1))
    assert [w.name for w in pairing.load_paired()] == ["TL-0002", "TL-1A2B"]
    assert pairing.load_paired()[-1].paired_utc == later.paired_utc == "2026-11-23T02:00:00Z"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert pairing.forget("tl-0002") is not None and pairing.forget("TL-0002") is None
    assert [w.address for w in pairing.load_paired()] == ["F3:12:34:56:1A:2B"]
    assert _mode(path) == 0o600


@pytest.mark.parametrize("text", ["{", "[]", '{"version": 2, "wearables": []}', '{"version": 1}'])
def test_damaged_paired_file_is_one_clear_error(text: str) -> None:
    path = pairing.paired_path()
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(UserError, match="paired-devices file"):
        pairing.load_paired()
    before = path.read_text()
    with pytest.raises(UserError):
        pairing.record_paired("C1:00:00:00:00:01", "TL-0001")
    assert path.read_text() == before  # nothing written half-way


def _found(name: str, address: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, address=address)


def test_only_paired_keeps_the_users_wearables() -> None:
    found = [_found("TL-AAAA", "C1:00:00:00:AA:AA"), _found("TL-BBBB", "C1:00:00:00:BB:BB")]
    with pytest.raises(UserError, match="tremorlift pair --simulate squat-5x5"):
        pairing.only_paired(found, "squat-5x5")  # type: ignore[arg-type]
    pairing.record_paired("C1:00:00:00:BB:BB", "TL-BBBB")
    assert [w.name for w in pairing.only_paired(found)] == ["TL-BBBB"]  # type: ignore[arg-type]
    with pytest.raises(
        UserError, match=r"none of your paired wearables \(TL-BBBB\).*seen: TL-AAAA"
    ):
        pairing.only_paired(found[:1])  # type: ignore[arg-type]


def test_link_options_pair_named_unpaired_wearables_and_twin_links_on_demand() -> None:
    lines: list[str] = []
    kw = {"name": "TL-AAAA", "address": "C1:00:00:00:AA:AA", "emit": lines.append}
    named = pairing.link_options(named=True, twin=False, **kw)
    assert named["pair"] and not named["pair_on_demand"] and named["name"] == "TL-AAAA"
    plain = pairing.link_options(named=False, twin=False, **kw)
    assert not plain["pair"] and not plain["pair_on_demand"]
    assert pairing.link_options(named=False, twin=True, **kw)["pair_on_demand"]
    # A named wearable paired on connect becomes one of the user's; --any ones do not.
    plain["on_paired"](SimpleNamespace(name="TL-AAAA"))
    assert pairing.load_paired() == []
    named["on_paired"](SimpleNamespace(name="TL-AAAA"))
    assert [w.address for w in pairing.load_paired()] == ["C1:00:00:00:AA:AA"]
    assert lines == ["TL-AAAA: paired", "TL-AAAA: paired"]
    assert not pairing.link_options(named=True, twin=False, **kw)["pair"]  # known now


def test_security_refusals_are_recognised() -> None:
    assert is_security_refusal(BleakGATTProtocolError(0x0F))
    assert is_security_refusal(BleakGATTProtocolError(0x05))
    assert not is_security_refusal(BleakGATTProtocolError(0x03))  # write not permitted
    assert is_security_refusal(BleakDBusError("org.bluez.Error.NotPermitted", ["Not paired"]))
    assert not is_security_refusal(BleakDBusError("org.bluez.Error.Failed", ["Operation failed"]))
    assert not is_security_refusal(BleakError("disconnected"))
    assert issubclass(PairingRequired, UserError)


def test_choose_a_wearable_to_pair() -> None:
    a, b = _found("TL-AAAA", "C1:00:00:00:AA:AA"), _found("TL-BBBB", "C1:00:00:00:BB:BB")
    assert pairing.choose([a], None) is a  # type: ignore[list-item]
    assert pairing.choose([a, b], "c1:00:00:00:bb:bb") is b  # type: ignore[list-item]
    with pytest.raises(UserError, match=r"2 wearables in range \(TL-AAAA, TL-BBBB\): choose one"):
        pairing.choose([a, b], None)  # type: ignore[list-item]
    with pytest.raises(UserError, match="not found"):
        pairing.choose([a], "TL-CCCC")  # type: ignore[list-item]
    with pytest.raises(UserError, match="no tremorlift wearable found"):
        pairing.choose([], None)


def test_pair_cli_list_and_forget(capsys) -> None:
    assert main(["pair", "--list"]) == 0
    assert "no paired wearable" in capsys.readouterr().out
    pairing.record_paired("C1:00:00:00:AA:AA", "TL-AAAA", twin=True)
    assert main(["pair", "--list"]) == 0
    assert "TL-AAAA" in capsys.readouterr().out
    assert main(["pair", "--forget", "TL-BBBB"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["pair", "--forget", "TL-AAAA"]) == 0
    assert pairing.load_paired() == []
    assert main(["pair", "--simulate", "no-such-scenario"]) == 2


def test_collect_without_paired_wearable_refuses_before_anything_starts(tmp_path, capsys) -> None:
    session = tmp_path / "s.tlsession"
    assert main(["collect", "--no-ui", "--session", str(session)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`tremorlift pair`" in err[0] and "--any" in err[0]
    assert not session.exists()


def test_history_index_is_created_for_the_user_only(tmp_path, open_umask) -> None:
    from tremorlift.coach.history import index_path, load_history, register_session

    summary = {"created_utc": "2026-11-22T02:00:00Z", "created_unix_s": 1.0, "exercises": {}}
    register_session(tmp_path / "a.tlsession", summary)
    assert _mode(index_path()) == 0o600
    assert len(load_history()) == 1
    assert load_history()[0]["created_utc"] == "2026-11-22T02:00:00Z"


def test_names_limbs_and_placements_are_recorded_and_inferred() -> None:
    t = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)
    a = pairing.record_paired("C1:00:00:00:AA:AA", "TL-AAAA", label="left-forearm", now=t)
    assert (a.label, a.limb, a.placement, a.shown_name) == (
        "left-forearm", "left", "forearm", "left-forearm"
    )  # fmt: skip
    b = pairing.record_paired("C1:00:00:00:BB:BB", "TL-BBBB", label="Rechts", limb="right")
    assert (b.limb, b.placement) == ("right", None)
    pairing.record_paired("C1:00:00:00:CC:CC", "TL-CCCC")
    assert pairing.sensor_names() == {
        "C1:00:00:00:AA:AA": ("left-forearm", "left"),
        "C1:00:00:00:BB:BB": ("Rechts", "right"),
        "C1:00:00:00:CC:CC": ("TL-CCCC", None),
    }
    # Pairing again without a name keeps the name; found (and forgotten) by its name too.
    again = pairing.record_paired("c1:00:00:00:aa:aa", "TL-AAAA")
    assert (again.label, again.limb, again.placement) == ("left-forearm", "left", "forearm")
    assert pairing.find(pairing.load_paired(), "", "LEFT-FOREARM") == again
    # A file written before names existed still loads, and unnamed entries stay without the keys.
    text = pairing.paired_path().read_text()
    assert '"label": "Rechts"' in text and text.count('"label"') == 2
    assert pairing.forget("left-forearm") == again


def test_rename_a_paired_wearable() -> None:
    pairing.record_paired("C1:00:00:00:AA:AA", "TL-AAAA", label="left-forearm")
    pairing.record_paired("C1:00:00:00:BB:BB", "TL-BBBB")
    r = pairing.rename("left-forearm", "right-forearm")
    assert (r.label, r.limb, r.placement, r.address) == (
        "right-forearm", "right", "forearm", "C1:00:00:00:AA:AA"
    )  # fmt: skip
    r = pairing.rename("right-forearm", "bar-arm")  # says no side: the side is kept
    assert (r.label, r.limb) == ("bar-arm", "right")
    r = pairing.rename("TL-BBBB", None, limb="left", placement="thigh")
    assert (r.label, r.limb, r.placement) == (None, "left", "thigh")
    with pytest.raises(UserError, match="already the name of bar-arm"):
        pairing.rename("TL-BBBB", "BAR-ARM")
    with pytest.raises(UserError, match="already the name of TL-BBBB"):
        pairing.rename("bar-arm", "tl-bbbb")
    with pytest.raises(UserError, match="not in the paired list"):
        pairing.rename("TL-ZZZZ", "x")
    assert [w.shown_name for w in pairing.load_paired()] == ["bar-arm", "TL-BBBB"]


@pytest.mark.parametrize(
    ("name", "limb", "message"),
    [
        ("left forearm", None, "not a usable name"),
        ("left-forearm\n", None, "not a usable name"),
        ("left\u200bforearm", None, "not a usable name"),
        ("-left", None, "not a usable name"),
        ("left--arm", None, "not a usable name"),
        ("gauche-avant-bras-très", None, "not a usable name"),
        ("x" * 25, None, "not a usable name"),
        ("", None, "must not be empty"),
        ("C1:00:00:00:AA:AA", None, "not a usable name"),
        ("c1-00-00-00-aa-aa", None, "looks like a Bluetooth address"),
        ("left-forearm", "right", "says left, but --limb says right"),
    ],
)
def test_bad_names_are_refused_with_one_line(name, limb, message, capsys) -> None:
    with pytest.raises(UserError, match=message):
        pairing.label_settings(name, limb, None)
    argv = ["pair", "--device", "TL-AAAA", f"--name={name}"] + (["--limb", limb] if limb else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.split()[0] in err[0]
    assert pairing.load_paired() == []  # nothing written, no radio started


def test_damaged_name_fields_are_refused() -> None:
    path = pairing.paired_path()
    path.parent.mkdir(parents=True)
    row = '{"address": "C1:00:00:00:AA:AA", "name": "TL-AAAA", "paired_utc": "x"'
    for bad in ('"limb": "middle"', '"label": "a b"', '"placement": 3'):
        path.write_text(f'{{"version": 1, "wearables": [{row}, {bad}}}]}}')
        with pytest.raises(UserError, match="damaged paired-devices file"):
            pairing.load_paired()


def test_pair_cli_names_renames_and_lists(capsys) -> None:
    pairing.record_paired("C1:00:00:00:AA:AA", "TL-AAAA", twin=True)
    pairing.record_paired("C1:00:00:00:BB:BB", "TL-BBBB")
    assert main(["pair", "--device", "tl-aaaa", "--name", "left-thigh"]) == 0
    assert "renamed: left-thigh (TL-AAAA, C1:00:00:00:AA:AA, left thigh)" in capsys.readouterr().out
    assert main(["pair", "--device", "TL-BBBB", "--name", "right-thigh"]) == 0
    assert main(["pair", "--device", "left-thigh", "--name", "right-thigh"]) == 2
    assert "already the name of right-thigh" in capsys.readouterr().err
    assert main(["pair", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "limb", "placement", "wearable", "address", "paired"]
    assert out[1].split()[:5] == ["left-thigh", "left", "thigh", "TL-AAAA", "C1:00:00:00:AA:AA"]
    assert out[1].endswith("(twin)")
    assert out[2].split()[:4] == ["right-thigh", "right", "thigh", "TL-BBBB"]
    assert main(["pair", "--forget", "right-thigh"]) == 0
    assert "forgot right-thigh (TL-BBBB" in capsys.readouterr().out
    assert pairing.sensor_names() == {"C1:00:00:00:AA:AA": ("left-thigh", "left")}
    # Over USB serial the address is the port: the name the wearable reports finds it.
    assert pairing.sensor_name("c1:00:00:00:aa:aa", "TL-XXXX") == ("left-thigh", "left")
    assert pairing.sensor_name("/dev/ttyACM0", "tl-aaaa") == ("left-thigh", "left")
    assert pairing.sensor_name("/dev/ttyACM0", "TL-CCCC") == ("TL-CCCC", None)
