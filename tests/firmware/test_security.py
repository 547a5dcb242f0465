"""Pairing and bonding in the firmware (docs/protocol.md, 9): encrypted control, the STATUS
ENCRYPTED flag, and the bond keys the BLE stack hands to the application to keep on flash.

CPython against the fake `bluetooth` (which refuses unencrypted writes to a write-encrypted
characteristic as NimBLE does, and raises _IRQ_GET_SECRET / _IRQ_SET_SECRET on request);
on_micropython/security/check_bonds.py repeats the bond file round trip under real MicroPython.
"""

import os

import pytest
import rig as R
from test_runtime_mpy import run_mpy
from tremorlift_fw import config, protocol
from tremorlift_fw.bonds import SEC_TYPE_OUR, SEC_TYPE_PEER, BondStore

P = protocol
CONTROL_UUID = "7a1f0003-4c3b-4e0c-9b5a-2d8e6f1c3a70"
# NimBLE's key for a peer: address type byte + 6 address bytes.
PEER_A = bytes((1, 0x11, 0x22, 0x33, 0x44, 0x55, 0xC6))
PEER_B = bytes((1, 0x21, 0x22, 0x33, 0x44, 0x55, 0xC7))


def value(tag, n=80):
    return bytes((tag + i) & 0xFF for i in range(n))


def test_defaults_encrypt_control_and_bond_with_secure_connections():
    assert config.REQUIRE_ENCRYPTED_CONTROL is True
    rig = R.Rig()
    assert rig.ble.handles[CONTROL_UUID][1] & 0x1000  # FLAG_WRITE_ENCRYPTED
    cfg = rig.ble._config
    assert (cfg["bond"], cfg["le_secure"], cfg["mitm"], cfg["io"]) == (True, True, False, 3)


def test_unpaired_write_is_refused_and_a_paired_one_answered():
    rig = R.Rig()
    rig.connect(encrypt=False)
    # Reads stay open: INFO and STATUS are there for anyone.
    assert rig.ble.values[rig.h_info][:2] == bytes((1, P.MSG_INFO))
    assert rig.ble.values[rig.h_status][:2] == bytes((1, P.MSG_STATUS))
    assert rig.ble.write_control(rig.h_control, R.command(P.OP_BUZZ, 1, bytes((1, 100)))) == 0x0F
    rig.app.service()
    rig.collect()
    assert rig.responses == [] and rig.ble.refused_writes == 1
    assert not rig.app.status_flags() & P.ST_ENCRYPTED
    assert rig.pwm.duty_u16() == 0  # nothing buzzed
    rig.ble.encrypt(True)
    resp = rig.command(R.command(P.OP_STATUS_NOW, 2))
    assert resp[2:5] == bytes((P.OP_STATUS_NOW, 2, P.RES_OK))


def test_status_shows_encrypted_as_soon_as_the_link_is_and_clears_on_disconnect():
    rig = R.Rig()
    rig.connect(encrypt=False)
    rig.run_ms(1200)  # past the first periodic status
    rig.statuses.clear()
    rig.ble.encrypt(True)
    rig.step(10)  # well before the next periodic status
    rig.collect()
    assert rig.statuses, "encryption must publish STATUS at once"
    assert rig.statuses[-1][2] & P.ST_ENCRYPTED
    assert rig.ble.values[rig.h_status][2] & P.ST_ENCRYPTED
    assert rig.app.ble.bonded
    rig.ble.disconnect()
    rig.app.service()
    assert not rig.app.status_flags() & P.ST_ENCRYPTED
    rig.connect(encrypt=False)
    assert not rig.app.status_flags() & P.ST_ENCRYPTED


def test_secrets_without_a_store_are_refused():
    rig = R.Rig()
    assert rig.ble.set_secret(SEC_TYPE_PEER, PEER_A, value(1)) is False
    assert rig.ble.get_secret(SEC_TYPE_PEER, 0) is None


def test_bond_keys_go_to_flash_from_the_loop_and_come_back_after_a_reset(tmp_path):
    path = str(tmp_path / "bonds.bin")
    store = BondStore(path, max_peers=4)
    rig = R.Rig(bond_store=store)
    assert not os.path.exists(path)  # nothing touches the file system until keys arrive
    assert rig.ble.set_secret(SEC_TYPE_PEER, PEER_A, value(1)) is True
    assert rig.ble.set_secret(SEC_TYPE_OUR, PEER_A, value(2)) is True
    assert not os.path.exists(path), "no flash write inside the stack's callback"
    assert rig.ble.get_secret(SEC_TYPE_PEER, 0, PEER_A) == value(1)
    rig.app.service()
    assert os.path.getsize(path) > 0 and not store.dirty
    # The board resets: a fresh store loaded from the file answers the stack as before,
    # by key and by index (NimBLE walks the peers by index at start-up).
    again = BondStore(path, max_peers=4)
    assert again.load() == 2
    rig2 = R.Rig(bond_store=again)
    assert rig2.ble.get_secret(SEC_TYPE_OUR, 0, PEER_A) == value(2)
    assert rig2.ble.get_secret(SEC_TYPE_PEER, 0) == value(1)
    assert rig2.ble.get_secret(SEC_TYPE_PEER, 1) is None
    assert rig2.ble.get_secret(SEC_TYPE_PEER, 0, PEER_B) is None
    # A re-pairing replaces the peer's keys; a delete (value None) removes them.
    assert rig2.ble.set_secret(SEC_TYPE_PEER, PEER_A, value(9)) is True
    assert rig2.ble.get_secret(SEC_TYPE_PEER, 0, PEER_A) == value(9) and len(again) == 2
    assert rig2.ble.set_secret(SEC_TYPE_PEER, PEER_A, None) is True
    assert rig2.ble.set_secret(SEC_TYPE_PEER, PEER_A, None) is False  # nothing left to delete
    rig2.app.service()
    reloaded = BondStore(path)
    assert reloaded.load() == 1 and reloaded.get(SEC_TYPE_OUR, 0, PEER_A) == value(2)


def test_store_is_bounded_oldest_peer_forgotten_and_oversized_keys_refused(tmp_path):
    store = BondStore(str(tmp_path / "b.bin"), max_peers=2)
    peers = [bytes((1, 0, 0, 0, 0, 0, k)) for k in range(3)]
    for k, peer in enumerate(peers):
        assert store.set(SEC_TYPE_PEER, peer, value(k))
        assert store.set(SEC_TYPE_OUR, peer, value(k + 100))
    assert store.peers() == peers[1:] and store.evictions == 1
    assert store.get(SEC_TYPE_PEER, 0, peers[0]) is None
    assert store.set(SEC_TYPE_PEER, peers[2], bytes(256)) is False
    assert store.set(SEC_TYPE_PEER, bytes(17), value(0)) is False
    assert store.save()
    assert os.path.getsize(store.path) <= 4 + 4 * (3 + 7 + 80)


@pytest.mark.parametrize(
    "damage",
    [b"", b"XXXX" + bytes(20), "truncate", "oversized"],
    ids=["empty", "magic", "cut", "big"],
)
def test_damaged_bond_file_loads_what_is_whole(tmp_path, damage):
    path = str(tmp_path / "b.bin")
    store = BondStore(path, max_peers=4)
    store.set(SEC_TYPE_PEER, PEER_A, value(1))
    store.set(SEC_TYPE_PEER, PEER_B, value(2))
    store.save()
    with open(path, "rb") as f:
        data = f.read()
    if damage == "truncate":
        data = data[:-10]  # the second record is cut short
        expect = 1
    elif damage == "oversized":
        data = data + bytes(100_000)  # a zero record ends the good part; the rest is not read
        expect = 2
    else:
        data = damage
        expect = 0
    with open(path, "wb") as f:
        f.write(data)
    again = BondStore(path, max_peers=4)
    assert again.load() == expect
    assert again.load_errors == 1
    assert BondStore(str(tmp_path / "missing.bin")).load() == 0


def test_failed_flash_write_is_counted_not_raised(tmp_path):
    store = BondStore(str(tmp_path / "no-such-dir" / "b.bin"))
    store.set(SEC_TYPE_PEER, PEER_A, value(1))
    assert store.save() is False and store.save_errors == 1
    assert store.get(SEC_TYPE_PEER, 0, PEER_A) == value(1)  # still answered from RAM


@pytest.mark.mpy
def test_bond_file_round_trip_under_micropython():
    out = run_mpy("tests/firmware/on_micropython/security/check_bonds.py", heap_mib=8)
    assert "BONDS OK" in out


IRK_KEY = b"irk"
SEC_TYPE_OUR_IRK = 10  # NimBLE's own identity key (modbluetooth_nimble.c, load_irk)


def test_the_wearables_own_irk_is_not_a_paired_host(tmp_path):
    path = str(tmp_path / "bonds.bin")
    store = BondStore(path, max_peers=4)
    assert store.set(SEC_TYPE_OUR_IRK, IRK_KEY, value(1, 16))
    hosts = [bytes((1, 0x30 + i, 0x22, 0x33, 0x44, 0x55, 0xC0)) for i in range(5)]
    for i, host in enumerate(hosts[:4]):
        assert store.set(SEC_TYPE_PEER, host, value(10 + i))
    # Four hosts fit beside the IRK; none was forgotten for it.
    assert store.peers() == hosts[:4] and store.evictions == 0
    assert store.get(SEC_TYPE_OUR_IRK, 0, IRK_KEY) == value(1, 16)
    # A fifth host forgets the oldest host, never the IRK.
    assert store.set(SEC_TYPE_PEER, hosts[4], value(20))
    assert store.peers() == hosts[1:] and store.evictions == 1
    assert store.get(SEC_TYPE_OUR_IRK, 0, IRK_KEY) == value(1, 16)
    # A new IRK (the stack made one) replaces the old one and evicts no host.
    assert store.set(SEC_TYPE_OUR_IRK, IRK_KEY, value(2, 16))
    assert store.peers() == hosts[1:] and store.evictions == 1
    assert store.save()
    again = BondStore(path, max_peers=4)
    again.load()
    assert again.peers() == hosts[1:]
    assert again.get(SEC_TYPE_OUR_IRK, 0, IRK_KEY) == value(2, 16)
