"""The --inject fault spec: parsed strictly, refused with the bad part named."""

from __future__ import annotations

import pytest
from tremorlift.cli import main
from tremorlift.errors import UserError
from tremorlift.twin.radio.faults import Fault, check_faults, parse_inject


def test_parses_every_kind():
    faults = parse_inject(
        "disconnect@20:5, drop=0.05,corrupt=0.01,i2c-error=0.02,fifo-overflow@30,reboot@40/2"
    )
    assert faults == [
        Fault("disconnect", at_s=20.0, duration_s=5.0),
        Fault("drop", probability=0.05),
        Fault("corrupt", probability=0.01),
        Fault("i2c-error", probability=0.02),
        Fault("fifo-overflow", at_s=30.0),
        Fault("reboot", at_s=40.0, device=1),
    ]
    assert [f.spec() for f in faults] == [
        "disconnect@20:5", "drop=0.05", "corrupt=0.01", "i2c-error=0.02", "fifo-overflow@30", "reboot@40/2",
    ]  # fmt: skip


def test_disconnect_has_a_default_outage():
    (f,) = parse_inject("disconnect@1.5")
    assert f.at_s == 1.5 and f.duration_s == 2.0


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("", "empty"),
        ("drop=0.05,,reboot@3", "empty item"),
        ("explode@3", "'explode'"),
        ("drop@3", "'drop'"),
        ("reboot=0.5", "'reboot'"),
        ("drop=1.5", "'drop=1.5'"),
        ("drop=-0.1", "'drop=-0.1'"),
        ("reboot@3:2", "'reboot@3:2'"),
        ("disconnect@3:0", "'disconnect@3:0'"),
        ("disconnect@-3", "'disconnect@-3'"),
        ("disconnect@3s", "'disconnect@3s'"),
        ("reboot@3/0", "'reboot@3/0'"),
        ("drop=0.1,drop=0.2", "drop= given more than once"),
    ],
)
def test_bad_specs_name_the_bad_part(spec, named):
    with pytest.raises(UserError) as exc:
        parse_inject(spec)
    assert named in str(exc.value)


def test_faults_the_transport_cannot_have_are_refused():
    check_faults(parse_inject("corrupt=0.01,reboot@2"), serial=True)
    with pytest.raises(UserError, match="needs --serial"):
        check_faults(parse_inject("corrupt=0.01"), serial=False)
    with pytest.raises(UserError, match="BLE"):
        check_faults(parse_inject("disconnect@3"), serial=True)


def test_cli_refuses_inject_without_simulate(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp_path))
    assert main(["collect", "--inject", "reboot@3", "--no-ui"]) == 2
    assert "--inject needs --simulate" in capsys.readouterr().err
    assert main(["collect", "--simulate", "squat-5x5", "--inject", "reboot@3x", "--no-ui"]) == 2
    assert "'reboot@3x'" in capsys.readouterr().err
    assert main(["collect", "--simulate", "squat-5x5", "--inject", "corrupt=0.1", "--no-ui"]) == 2
    assert list(tmp_path.iterdir()) == []  # refused before anything was created
