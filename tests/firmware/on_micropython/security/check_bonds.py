# BondStore under real MicroPython: keys set through the IRQ path, saved (temporary file +
# os.rename over the old file), reloaded, bounded. Prints "BONDS OK" at the end.
import os

from tremorlift_fw.bonds import SEC_TYPE_OUR, SEC_TYPE_PEER, BondStore

PATH = "/bonds-test.bin"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def value(tag):
    return bytes([(tag + i) & 0xFF for i in range(84)])


store = BondStore(PATH, 2)
check(store.load() == 0, "a missing file is an empty store")
peers = [bytes([1, 0, 0, 0, 0, 0, k]) for k in range(3)]
for k in range(3):
    check(store.set(SEC_TYPE_PEER, memoryview(peers[k]), memoryview(value(k))), "set peer")
    check(store.set(SEC_TYPE_OUR, memoryview(peers[k]), memoryview(value(k + 50))), "set our")
check(store.peers() == peers[1:], "oldest peer forgotten")
check(store.save(), "first save")
check(store.set(SEC_TYPE_PEER, peers[2], value(7)), "re-pair")
check(store.save(), "save over the old file")
check(PATH[1:] in os.listdir("/") and (PATH[1:] + ".tmp") not in os.listdir("/"), "files")
again = BondStore(PATH, 2)
check(again.load() == 4, "reloaded " + str(len(again)))
check(again.get(SEC_TYPE_PEER, 0, memoryview(peers[2])) == value(7), "by key")
check(again.get(SEC_TYPE_OUR, 1, None) == value(52), "by index")
check(again.get(SEC_TYPE_PEER, 2, None) is None, "past the end")
print("BONDS OK")
