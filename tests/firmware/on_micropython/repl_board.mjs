// A stand-in board for the flash tool's test: MicroPython's REPL (WebAssembly port) on
// stdin/stdout, the way a board's USB serial port presents it to mpremote.
//
//   node tests/firmware/on_micropython/repl_board.mjs      (the test bridges a pty to it)
//
// Three things a board does that this port's REPL does not: a soft reset (Ctrl-D) prints
// "soft reboot" and comes back at the REPL it was in (the interpreter and its files are
// kept here); machine.reset() restarts the board: its start banner, then /main.py if there
// is one, then the normal REPL (files kept, like a board's flash); and raw-paste mode is
// declined ("R\x00") so mpremote uses plain raw mode.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

let muted = false;
const out = (data) => {
  if (!muted) process.stdout.write(data);
};
const mp = await loadMicroPython({
  heapsize: 8 * 1024 * 1024,
  stdout: out,
  stderr: out,
  linebuffer: false,
});
const CTRL_A = 0x01, CTRL_B = 0x02, CTRL_E = 0x05;
const RAW_PASTE = [CTRL_E, 0x41, 0x01]; // Ctrl-E 'A' Ctrl-A: request raw-paste mode
let raw = false;
let held = []; // bytes that may be the start of a raw-paste request
const queue = [];
let busy = false;

// This port reports Emscripten's errno numbers (ENOENT is 44); a board reports MicroPython's
// (ENOENT is 2), and mpremote tells "no such file" from other failures by that number.
mp.runPython(`
import builtins, os
_ERRNO = {44: 2, 20: 17, 54: 20, 31: 21, 55: 39, 28: 22, 2: 13}
def _board_errno(fn):
    def call(*args):
        try:
            return fn(*args)
        except OSError as e:
            raise OSError(_ERRNO.get(e.errno, e.errno))
    return call
for _name in ("stat", "listdir", "ilistdir", "mkdir", "rmdir", "remove", "rename", "chdir"):
    if hasattr(os, _name):
        setattr(os, _name, _board_errno(getattr(os, _name)))
builtins.open = _board_errno(builtins.open)
del _name, _board_errno
class _Machine:
    @staticmethod
    def reset():
        open("/.hard_reset", "w").close()
        raise SystemExit
import sys
sys.modules["machine"] = _Machine
del _Machine
`);
mp.replInit();

async function feed(c) {
  if (c === CTRL_A) raw = true;
  if (c === CTRL_B) raw = false;
  const forcedExit = await mp.replProcessCharWithAsyncify(c);
  let hard = false;
  try {
    mp.FS.unlink("/.hard_reset");
    hard = true;
  } catch (e) { /* a soft reset */ }
  if (forcedExit && hard) {
    // machine.reset(): the start banner, /main.py, then the normal REPL.
    raw = false;
    muted = false;
    out("ets Jun  8 2016 00:22:57\r\nrst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n");
    let main = null;
    try { main = mp.FS.readFile("/main.py", { encoding: "utf8" }); } catch (e) { /* none */ }
    if (main !== null) {
      try { await mp.runPythonAsync(main); } catch (e) { /* printed on stderr */ }
    }
    mp.replInit();
  } else if (forcedExit) {
    // A fresh REPL, as after a reset (the old line buffer is gone), in the same mode.
    out("MPY: soft reboot\r\n");
    muted = raw;
    mp.replInit();
    if (raw) {
      await mp.replProcessCharWithAsyncify(CTRL_A);
      muted = false;
      out("raw REPL; CTRL-B to exit\r\n>");
    }
  }
}

async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const c = queue.shift();
    if (raw && c === RAW_PASTE[held.length]) {
      held.push(c);
      if (held.length === RAW_PASTE.length) {
        held = [];
        out(new Uint8Array([0x52, 0x00])); // "R\x00": raw paste not supported
      }
      continue;
    }
    for (const h of held) await feed(h);
    held = [];
    await feed(c);
  }
  busy = false;
}

process.stdin.on("data", (data) => {
  for (const c of data) queue.push(c);
  pump();
});
// The port closed (the test ended): the board goes away with it.
process.stdin.on("end", () => process.exit(0));
