"""The live page's server (collect/web.py) and the JSON-lines event stream (collect/event_stream.py):
addresses, the token, 403 and 404, the state-then-events order on (re)connect, and the files."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
from types import SimpleNamespace

import aiohttp
import pytest
from tremorlift.cli import main
from tremorlift.collect import web
from tremorlift.collect.event_stream import EventLines, check_events_target, dumps
from tremorlift.errors import UserError


class FakeCollector:
    """What the server reads of a Collector: listeners, channels' names, the state, the clock."""

    def __init__(self, names=("left", "right")) -> None:
        self.listeners: list = []
        self.channels = [SimpleNamespace(stats=SimpleNamespace(name=n)) for n in names]
        self.session = SimpleNamespace(host_s=lambda: 12.5)
        self.time_scale = 1.0
        self.rep = 0

    def state_dict(self) -> dict:
        lift = {"name": "", "limb": None, "rep_number": self.rep, "velocity_loss_pct": 25.0}
        return {
            "devices": [{"name": ch.stats.name, "state": "streaming"} for ch in self.channels],
            "lifts": [dict(lift, name=ch.stats.name) for ch in self.channels],
            "alerts": [], "vl_threshold_pct": 20.0,
        }  # fmt: skip

    def publish(self, event: dict) -> None:
        for listener in self.listeners:
            listener(event)


def run(coro):
    return asyncio.run(coro)


async def _get(url: str, **kw) -> tuple[int, str, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, allow_redirects=False, **kw) as r:
            return r.status, await r.text(), dict(r.headers)


# ---------------------------------------------------------------- addresses
@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("8080", ("127.0.0.1", 8080)),
        ("0", ("127.0.0.1", 0)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("192.168.1.20:9000", ("192.168.1.20", 9000)),
        ("[::1]:8080", ("::1", 8080)),
        ("localhost:81", ("localhost", 81)),
    ],
)
def test_web_spec(spec, want):
    assert web.parse_web_spec(spec) == want


@pytest.mark.parametrize("spec", ["", "abc", "80800", "-1", "my-laptop:8080", "1.2.3:80"])
def test_bad_web_spec_is_one_clear_error(spec):
    with pytest.raises(UserError, match="--web"):
        web.parse_web_spec(spec)


def test_only_loopback_goes_without_a_token():
    assert web.is_loopback("127.0.0.1") and web.is_loopback("::1") and web.is_loopback("localhost")
    assert not web.is_loopback("0.0.0.0") and not web.is_loopback("192.168.1.20")
    with pytest.raises(ValueError):
        web.WebServer("0.0.0.0", 0)
    a, b = web.new_token(), web.new_token()
    assert a != b and len(a) >= 22 and re.fullmatch(r"[A-Za-z0-9_-]+", a)


def test_lan_announcement_has_the_secret_address_and_a_qr_code():
    server = web.WebServer("0.0.0.0", 8123, token="s3cret-token")
    text = server.announcement()
    first = text.splitlines()[0]
    assert first.startswith("live page: http://") and first.endswith(":8123/s3cret-token/")
    assert "0.0.0.0" not in first  # the address a phone can reach
    qr = [line for line in text.splitlines() if "\u2580" in line or "\u2584" in line]
    # A version-2 code at least (25 modules) with its quiet zone, two rows per line.
    assert len(qr) >= 14 and len({len(line) for line in qr}) == 1
    local = web.WebServer("127.0.0.1", 8124).announcement()
    assert local == "live page: http://127.0.0.1:8124/"


# ---------------------------------------------------------------- HTTP
def test_loopback_page_files_404_and_foreign_host():
    async def go():
        async with web.WebServer("127.0.0.1", 0) as server:
            base = f"http://127.0.0.1:{server.port}"
            status, html, headers = await _get(base + "/")
            assert status == 200 and "<title>tremorlift live</title>" in html
            assert "script-src 'self'" in headers["Content-Security-Policy"]
            for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
                status, _, headers = await _get(f"{base}/{name}")
                assert status == 200 and headers["Content-Type"].startswith(kind)
            for bad in ("/nope", "/app.js/x", "/../setup.py", "/index.html"):
                assert (await _get(base + bad))[0] == 404, bad
            # A web site whose name was rebound to 127.0.0.1 does not get the page.
            status, _, _ = await _get(base + "/", headers={"Host": "evil.example"})
            assert status == 403

    run(go())


def test_lan_page_needs_the_token():
    async def go():
        # Bound on loopback for the test; a token makes it behave as a LAN page.
        async with web.WebServer("127.0.0.1", 0, token="tok-123") as server:
            base = f"http://127.0.0.1:{server.port}"
            for path in ("/", "/app.js", "/events", "/tok-12/", "/tok-1234/", "/TOK-123/"):
                assert (await _get(base + path))[0] == 403, path
            assert (await _get(base + "/tok-123/"))[0] == 200
            assert (await _get(base + "/tok-123/app.js"))[0] == 200
            status, _, headers = await _get(base + "/tok-123")
            assert status == 302 and headers["Location"] == "/tok-123/"
            assert (await _get(base + "/tok-123/nope"))[0] == 404
            assert server.url == f"http://127.0.0.1:{server.port}/tok-123/"

    run(go())


def test_a_busy_port_is_one_clear_error():
    async def go():
        async with web.WebServer("127.0.0.1", 0) as first:
            with pytest.raises(UserError, match="cannot listen"):
                await web.WebServer("127.0.0.1", first.port).start()

    run(go())


# ---------------------------------------------------------------- the event stream
def test_a_page_gets_the_state_first_then_the_events_in_order():
    async def go():
        collector = FakeCollector()
        async with web.WebServer("127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}/events"
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(url) as ws:
                    waiting = json.loads((await ws.receive()).data)
                    assert waiting["kind"] == "state" and waiting["state"] is None

                    server.attach(collector)
                    assert collector.listeners == [server.on_event]
                    state = json.loads((await ws.receive()).data)
                    assert state["kind"] == "state" and state["seq"] == 0
                    assert [d["name"] for d in state["state"]["devices"]] == ["left", "right"]
                    assert state["state"]["lifts"][0]["zone"] == "high"  # 25 % loss
                    assert state["session_s"] == 12.5 and state["zones"][-1][0] is None

                    collector.publish(
                        {"type": "set_start", "session_s": 13.0, "device": "right", "set": 1}
                    )
                    collector.publish({"type": "rep", "session_s": 14.0, "device": "right", "rep": 1,
                                       "velocity_mps": math.nan})  # fmt: skip
                    a = json.loads((await ws.receive()).data)
                    b = json.loads((await ws.receive()).data)
                    assert (a["seq"], a["index"], a["event"]["type"]) == (1, 1, "set_start")
                    assert (b["seq"], b["event"]["rep"], b["event"]["velocity_mps"]) == (2, 1, None)
                    assert b["published_unix_ms"] >= a["published_unix_ms"]

                # A page that comes back gets the state with the timers and where the stream is.
                collector.rep = 1
                collector.publish(
                    {"type": "set_end", "session_s": 20.0, "device": "right", "set": 1}
                )
                async with http.ws_connect(url) as ws:
                    again = json.loads((await ws.receive()).data)
                    assert again["seq"] == 3 and again["state"]["lifts"][1]["rep_number"] == 1
                    assert again["timers"]["right"] == {
                        "phase": "rest", "since_session_s": 20.0, "set_start_session_s": 13.0,
                        "number": 1, "kind": None,
                    }  # fmt: skip
                    collector.publish({"type": "session_end", "session_s": 21.0})
                    end = json.loads((await ws.receive()).data)
                    assert end["seq"] == 4 and end["index"] is None
                    await server.close()
                    closed = await ws.receive()
                    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

    run(go())


def test_a_websocket_from_another_origin_is_refused():
    async def go():
        async with web.WebServer("127.0.0.1", 0) as server:
            url = f"http://127.0.0.1:{server.port}/events"
            status, _, _ = await _get(url, headers={"Origin": "http://evil.example"})
            assert status == 403

    run(go())


def test_the_page_loads_nothing_from_elsewhere():
    files = web._load_page()
    assert set(files) == set(web.PAGE_FILES)
    for name, body in files.items():
        text = body.decode()
        assert not re.search(r"https?://|//[a-z0-9]", text, re.I), name
        assert "@import" not in text and "url(" not in text, name


# ---------------------------------------------------------------- --events
def test_event_lines_are_strict_json_one_per_line(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLines(str(path)) as lines:
        lines({"type": "rep", "velocity_mps": 0.5, "span": (1.0, 2.0)})
        lines({"type": "tremor", "peak_hz": math.inf})
    text = path.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 2
    assert [json.loads(x) for x in text.splitlines()] == [
        {"type": "rep", "velocity_mps": 0.5, "span": [1.0, 2.0]},
        {"type": "tremor", "peak_hz": None},
    ]
    assert dumps({"a": math.nan}) == '{"a":null}'


def test_events_target_checks(tmp_path):
    check_events_target("-")
    check_events_target(str(tmp_path / "new.jsonl"))
    (tmp_path / "old.jsonl").write_text("kept\n")
    with pytest.raises(UserError, match="already exists"):
        check_events_target(str(tmp_path / "old.jsonl"))
    with pytest.raises(UserError, match="does not exist"):
        check_events_target(str(tmp_path / "no" / "x.jsonl"))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    check_events_target(str(fifo))  # a named pipe is written to, not replaced


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--events", "-", "--summary-json", "-"], "both write to stdout"),
        (["--events", "/nonexistent-folder/e.jsonl"], "does not exist or is not writable"),
        (["--web", "laptop:8080"], "is not an IP address"),
        (["--web", "99999"], "between 0 and 65535"),
    ],
)
def test_collect_rejects_bad_events_and_web(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TREMORLIFT_DATA_DIR", str(tmp_path))
    assert main(["collect", "--simulate", "demo", "--any", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_page_that_stops_reading_is_dropped_not_waited_for(monkeypatch):
    monkeypatch.setattr(web, "CLIENT_QUEUE_MAX", 3)

    async def go():
        collector = FakeCollector()
        async with web.WebServer("127.0.0.1", 0) as server:
            server.attach(collector)
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(f"ws://127.0.0.1:{server.port}/events") as ws:
                    while not server._clients:
                        await asyncio.sleep(0.01)
                    (client,) = server._clients
                    # Published with no pause for the sender: the page falls 7 behind.
                    for i in range(10):
                        collector.publish({"type": "link", "session_s": float(i), "device": "left"})
                    assert client.queue.qsize() == 3 and client._closing is not None
                    closed = await ws.receive()
                    while closed.type == aiohttp.WSMsgType.TEXT:  # what was queued, then the close
                        closed = await ws.receive()
                    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1011

    run(go())
