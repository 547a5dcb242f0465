"""USB serial transport (docs/protocol.md, 8).

Device -> host: every message as COBS(message + CRC-16 LE) + 0x00 (protocol.serial_encode).
Host -> device: ASCII command lines '>' hex(command + CRC) '\\n' (protocol.LineDecoder).

SerialLink works on any port object with write(buf) and a non-blocking readinto(buf) that
returns the bytes read (0 or None when nothing is waiting). UsbSerialPort is that port on
the board: sys.stdout.buffer out, sys.stdin polled with select so reading never blocks.
"""

from micropython import const

from . import protocol

_RX_CHUNK = const(64)
_MAX_MESSAGE = const(256)


class UsbSerialPort:
    """The board's USB serial (REPL) port; Ctrl-C keeps working since commands are ASCII."""

    def __init__(self):
        import select
        import sys

        self._in = sys.stdin
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._one = bytearray(1)

    def write(self, buf):
        self._out.write(buf)

    def readinto(self, buf):
        n = 0
        size = len(buf)
        one = self._one
        # ipoll reuses its result tuple; one byte per read so a read never waits.
        while n < size:
            ready = False
            for _ in self._poll.ipoll(0):
                ready = True
            if not ready:
                break
            if not self._in.buffer.readinto(one):
                break
            buf[n] = one[0]
            n += 1
        return n


class SerialLink:
    def __init__(self, port, max_line=600):
        self.port = port
        self.decoder = protocol.LineDecoder(max_line)
        self._out = bytearray(protocol.serial_encoded_max(_MAX_MESSAGE))
        out = memoryview(self._out)
        # A view per encoded length, made once: write() gets exactly the frame's bytes.
        self._out_views = [out[:k] for k in range(len(self._out) + 1)]
        self._rx = bytearray(_RX_CHUNK)
        self.messages_sent = 0
        self.bad_lines = 0

    def send(self, msg, n):
        """Frame msg[0:n] and write it to the port."""
        k = protocol.serial_encode(msg, n, self._out)
        self.port.write(self._out_views[k])
        self.messages_sent += 1

    def poll_commands(self, handle):
        """Read what is waiting; call handle(command, n) per good line, handle(None, -1) per bad one."""
        n = self.port.readinto(self._rx)
        if not n:
            n = 0
            if not self.decoder.pending:
                return
        decoder = self.decoder
        r = decoder.feed(self._rx, n)
        while r != 0:
            if r > 0:
                handle(decoder.command, r)
            else:
                self.bad_lines += 1
                handle(None, -1)
            r = decoder.feed(self._rx, 0)
