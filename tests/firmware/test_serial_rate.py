"""USB serial through a UART bridge: the firmware and the collector agree on what 1 kHz needs,
and `tremorlift collect --serial` refuses a rate the bridge cannot carry before streaming.

(The firmware's own refusal on the board is checked under MicroPython: test_board_time_mpy.py,
serial_uart.)"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from tremorlift.cli import main
from tremorlift.transport import serial as host_serial
from tremorlift_fw import config
from tremorlift_fw import serial_link as fw_serial


@pytest.mark.parametrize("odr_hz", [50, 100, 200, 400, 500, 1000])
def test_host_and_firmware_count_the_same_bytes(odr_hz: int) -> None:
    need = host_serial.stream_bytes_per_s(odr_hz)
    assert need == fw_serial.stream_bytes_per_s(odr_hz, config.FRAME_MAX_AGE_MS)
    fits_fw = fw_serial.fits_link(
        odr_hz, config.FRAME_MAX_AGE_MS, fw_serial.UART_BRIDGE_BYTES_PER_S
    )
    fits_host = need <= host_serial.UART_BYTES_PER_S * host_serial.UART_STREAM_SHARE
    assert fits_fw == fits_host == (odr_hz < 1000)


def test_one_khz_needs_more_than_a_115200_baud_uart() -> None:
    assert host_serial.stream_bytes_per_s(1000) == 13109  # 13.1 kB/s
    assert host_serial.UART_BYTES_PER_S == 11520  # 11.5 kB/s


@dataclass
class _PortInfo:
    device: str
    vid: int | None
    pid: int | None


def test_collect_serial_refuses_1khz_on_a_uart_bridge_before_streaming(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = [_PortInfo("/dev/ttyUSB7", 0x10C4, 0xEA60), _PortInfo("/dev/ttyACM7", 0x303A, 0x1001)]
    monkeypatch.setattr(host_serial.list_ports, "comports", lambda: ports)
    assert main(["collect", "--serial", "/dev/ttyUSB7", "--rate", "1000", "--no-ui"]) == 2
    err = capsys.readouterr().err
    assert "CP210x" in err and "13.1 kB/s" in err and "--rate 500" in err
    assert len(err.strip().splitlines()) == 1
    # Native USB (ESP32-S3's own port) is not held to the UART's rate: the check passes and the
    # run goes on to open the port, which does not exist here.
    assert main(["collect", "--serial", "/dev/ttyACM7", "--rate", "1000", "--no-ui"]) == 2
    err = capsys.readouterr().err
    assert "bridge" not in err and "no such serial port" in err
    assert host_serial.uart_bridge("/dev/ttyUSB7") == "CP210x"
    assert host_serial.uart_bridge("/dev/ttyACM7") is None
