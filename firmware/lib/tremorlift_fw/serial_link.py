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

# A classic ESP32 has no USB of its own: its boards (DevKitC and the like) reach USB through a
# UART bridge (CP2102, CH340) at the REPL's 115200 baud, 8N1: 11 520 bytes/s at most. The S3
# and C3 have a USB serial port built in, far faster than any stream here.
UART_BRIDGE_BAUD = const(115200)
UART_BRIDGE_BYTES_PER_S = UART_BRIDGE_BAUD // 10
# Kept free on the UART for the status messages, the REPL's output and timing slack.
_UART_MARGIN_PCT = const(90)


def stream_bytes_per_s(odr_hz, frame_max_age_ms):
    """Bytes/s a stream at odr_hz needs on serial: 12 bytes a sample, plus per frame (as many
    samples as frame_max_age_ms holds, up to 19) its 16-byte header, CRC, COBS code byte and
    delimiter, plus one STATUS message (44 bytes + 5) a second."""
    spf = odr_hz * frame_max_age_ms // 1000
    if spf > protocol.MAX_SAMPLES:
        spf = protocol.MAX_SAMPLES
    if spf < 1:
        spf = 1
    frame_overhead = protocol.HEADER_BYTES + 2 + 1 + 1
    frames_per_s = (odr_hz + spf - 1) // spf
    return (
        odr_hz * protocol.SAMPLE_BYTES + frames_per_s * frame_overhead + protocol.STATUS_BYTES + 5
    )


def fits_link(odr_hz, frame_max_age_ms, link_bytes_per_s):
    """True if the stream fits a serial link of link_bytes_per_s (None: no known limit)."""
    if link_bytes_per_s is None:
        return True
    need = stream_bytes_per_s(odr_hz, frame_max_age_ms)
    return need * 100 <= link_bytes_per_s * _UART_MARGIN_PCT


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
