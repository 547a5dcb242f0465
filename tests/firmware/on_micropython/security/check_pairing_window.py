# The pairing window under real MicroPython (tests/mpy/run.mjs), with firmware/lib,
# host/tremorlift/twin/board and tests/firmware/fakes on sys.path. The fake stack raises the
# key-store and encryption events NimBLE raises: a new pairing offers keys (_IRQ_SET_SECRET
# sec_types 1 and 2) before the link is reported encrypted and bonded; a bonded host
# re-encrypts with no new keys. Prints "PAIRING WINDOW OK" at the end; a failure raises.

import rig as R
from tremorlift_fw import config
from tremorlift_fw import protocol as P
from tremorlift_fw.bonds import BondStore

try:
    import machine_emulation as M
except ImportError:
    from tremorlift.twin.board import machine_emulation as M


def check(cond, what):
    if not cond:
        raise AssertionError(what)


HOST_A = b"\xaa\x01\x02\x03\x04\x05"
HOST_B = b"\xbb\x01\x02\x03\x04\x05"
HOST_C = b"\xcc\x01\x02\x03\x04\x05"


def key(addr):
    return b"\x01" + addr


def pair(rig, addr, bond=True):
    """A host connects and pairs ("Just Works"); returns the key-store answers."""
    rig.ble.connect(addr=addr)
    rig.app.service()
    answers = []
    if bond:
        for sec_type in (2, 1):
            answers.append(rig.ble.set_secret(sec_type, key(addr), bytes(40)))
    rig.ble.encrypt(True, bonded=bond)
    rig.app.service()
    return answers


def reconnect_bonded(rig, addr):
    rig.ble.connect(addr=addr)
    rig.app.service()
    rig.ble.encrypt(True, bonded=True)
    rig.app.service()


def status_now(rig):
    return rig.command(R.command(P.OP_STATUS_NOW, 9))[4]


def leave(rig):
    rig.ble.disconnect()
    rig.app.service()


def wait_ms(rig, ms):
    for _ in range(ms // 1000):
        rig.clock.advance_ms(1000)
        rig.app.service()


button = M.Pin(0, M.Pin.IN, M.Pin.PULL_UP)
bonds = BondStore("/bonds-window.bin", 4)
rig = R.Rig(bond_store=bonds, pair_button=button)
check(config.PAIRING_WINDOW_MS == 60_000, "a 60 s window")

# 1. Within the first 60 s after power-on a new host pairs, is kept, and is answered.
check(pair(rig, HOST_A) == [True, True], "host A's keys stored")
check(status_now(rig) == P.RES_OK and not rig.ble.disconnect_requests, "host A answered")
check(rig.app.status_flags() & P.ST_ENCRYPTED, "host A's link encrypted")
leave(rig)

# 2. The window closes 60 s after power-on.
wait_ms(rig, 61_000)
check(not rig.app.pairing_open, "closed after 60 s")

# 3. A host bonded before still gets in: it re-encrypts with its stored keys.
reconnect_bonded(rig, HOST_A)
check(status_now(rig) == P.RES_OK and not rig.ble.disconnect_requests, "bonded host answered")
leave(rig)

# 4. A new host's pairing is refused: keys not kept, commands NOT_AUTHORISED, link dropped.
check(pair(rig, HOST_B) == [False, False], "host B's keys refused")
check(status_now(rig) == P.RES_NOT_AUTHORISED, "host B's command refused")
check(rig.ble.disconnect_requests == 1, "host B disconnected")
check(not rig.app.status_flags() & P.ST_ENCRYPTED, "host B's link not shown encrypted")
check(bonds.peers() == [key(HOST_A)], "only host A bonded")
leave(rig)

# 5. Pairing without bonding (no keys offered) is a new host too.
pair(rig, HOST_C, bond=False)
check(status_now(rig) == P.RES_NOT_AUTHORISED, "unbonded pairing refused")
check(rig.ble.disconnect_requests == 2, "host C disconnected")
leave(rig)

# 6. A press of the button opens the window again for 60 s: host B pairs now.
button.drive(0)
rig.app.service()
button.drive(1)
rig.app.service()
check(rig.app.pairing_open, "open again after a press")
check(pair(rig, HOST_B) == [True, True], "host B's keys stored after the press")
check(status_now(rig) == P.RES_OK, "host B answered after the press")
leave(rig)
wait_ms(rig, 61_000)
check(not rig.app.pairing_open, "closed 60 s after the press")
check(pair(rig, HOST_C) == [False, False], "host C refused again")
check(status_now(rig) == P.RES_NOT_AUTHORISED, "host C's command refused")
leave(rig)
check(bonds.peers() == [key(HOST_A), key(HOST_B)], "hosts A and B bonded")
print("refused pairings:", rig.app.ble.pairings_refused)
print("PAIRING WINDOW OK")
