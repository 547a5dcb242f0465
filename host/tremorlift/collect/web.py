"""The live page for a phone at the rack (``tremorlift collect --web [HOST:]PORT``).

The only importer of aiohttp (the HTTP and WebSocket server) and of segno (the QR code). The
server runs in the collector's own event loop: the collector's event stream
(``Collector.listeners``) is handed to every open page over a WebSocket as it is published. A
page that (re)connects first gets the live state (``Collector.state_dict()``, with each sensor's
set or rest timer), then the events published after it.

The page (``collect/webpage/``: one HTML file, one stylesheet, one script) is served from the
package and loads nothing from elsewhere, so it works on a LAN without internet.

On a loopback address the page is at ``/`` and requests must name a loopback host (no DNS
rebinding from a web site). On any other address, every URL starts with an unguessable token
(``/<token>/``): without it the answer is 403, and paths unknown under it are 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import secrets
import socket
import time
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import segno
from aiohttp import WSMsgType, web

from tremorlift.collect.event_stream import dumps
from tremorlift.errors import UserError

# The page's files, served as they are shipped (collect/webpage/).
PAGE_FILES = {
    "": ("index.html", "text/html"),
    "app.css": ("app.css", "text/css"),
    "app.js": ("app.js", "text/javascript"),
}
WS_PATH = "events"
# Messages queued for one page before it counts as gone (a phone that went to sleep).
CLIENT_QUEUE_MAX = 1000
# A page's WebSocket is pinged this often; one that stops answering is closed.
HEARTBEAT_S = 10.0
# On close, how long the server waits for each page to be sent what was published before.
DRAIN_ON_CLOSE_S = 1.0
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
LOOPBACK_NAMES = ("localhost",)


def parse_web_spec(spec: str) -> tuple[str, int]:
    """``[HOST:]PORT`` as given to ``--web``: HOST defaults to 127.0.0.1, an IPv6 address is
    written in brackets ([::1]:8080); PORT 0 takes a free port."""
    host, sep, port_text = spec.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        host = "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise UserError(
            f"--web takes [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080, got {spec!r}"
        ) from None
    if not 0 <= port <= 65535:
        raise UserError(f"--web: the port must be between 0 and 65535, got {port}")
    if host not in LOOPBACK_NAMES:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UserError(
                f"--web: {host!r} is not an IP address (give this machine's address, "
                "e.g. 0.0.0.0:8080 for every network, or a port alone for this machine only)"
            ) from None
    return host, port


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    return ipaddress.ip_address(host).is_loopback


def new_token() -> str:
    """The secret in a LAN page's URL (128 bits)."""
    return secrets.token_urlsafe(16)


def lan_address() -> str:
    """This machine's address on its default route (a UDP socket is pointed at a documentation
    address; nothing is sent), or its host name when it has none."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        address = str(s.getsockname()[0])
        if not ipaddress.ip_address(address).is_unspecified:
            return address
    return socket.gethostname()


def qr_text(url: str) -> str:
    """``url`` as a QR code for a terminal (two rows per character, dark on light)."""
    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def _load_page() -> dict[str, bytes]:
    folder = resources.files("tremorlift.collect").joinpath("webpage")
    return {name: folder.joinpath(file).read_bytes() for name, (file, _) in PAGE_FILES.items()}


class WebServer:
    """The live page's server: :meth:`start` binds it (before any wearable is found, so the
    page can be opened at once), :meth:`attach` gives it the session's collector,
    :meth:`close` ends it after sending each page the last events."""

    def __init__(
        self, host: str, port: int, *, token: str | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        if token is None and not is_loopback(host):
            raise ValueError("a page on a non-loopback address needs a token")
        self.host = host
        self.port = port
        self.token = token
        self.announce = announce  # told the page's address (and QR code) once it listens
        self.collector: Any = None  # collect.collector.Collector once attached
        self.ended = False
        self._seq = 0
        self._clients: set[_Client] = set()
        # device -> {"phase": "set"|"rest", "since_session_s", "kind", "set_start_session_s",
        # "number", "tremor_session_s"}: what a page that connects needs for its clocks
        self._timers: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self._page = _load_page()

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise UserError(f"--web {self.host}:{self.port}: cannot listen there: {exc}") from None
        if self.port == 0:  # the port the system gave
            self.port = int(self._runner.addresses[0][1])
        if self.announce is not None:
            self.announce(self.announcement())

    def attach(self, collector: Any) -> None:
        """From now on the collector's events go to every page; pages open now redraw."""
        self.collector = collector
        collector.listeners.append(self.on_event)
        for client in list(self._clients):
            client.put(self._state_message())

    async def close(self) -> None:
        self.ended = True
        if self._clients:
            await asyncio.gather(
                *(c.drained(DRAIN_ON_CLOSE_S) for c in list(self._clients)),
                return_exceptions=True,
            )
        for client in list(self._clients):
            await client.ws.close(code=1001, message=b"session ended")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_path(self) -> str:
        return "/" if self.token is None else f"/{self.token}/"

    @property
    def url(self) -> str:
        """The page's address as the lifter opens it (this machine's LAN address for 0.0.0.0)."""
        host = self.host
        if ipaddress.ip_address(host if host not in LOOPBACK_NAMES else "127.0.0.1").is_unspecified:
            host = lan_address() if self.token is not None else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.base_path}"

    def announcement(self, qr: bool = True) -> str:
        """What ``collect`` prints: the page's address, and for a LAN page its QR code."""
        lines = [f"live page: {self.url}"]
        if self.token is not None:
            lines.append(
                "open it on a phone on the same network (the address holds the page's secret; "
                "anyone with it sees the session live):"
            )
            if qr:
                lines.append(qr_text(self.url).rstrip("\n"))
        return "\n".join(lines)

    # ------------------------------------------------------------------ the event stream
    def on_event(self, event: dict[str, Any]) -> None:
        """A listener of ``Collector.listeners``: stamps, queues for every page, returns."""
        published_unix_ms = time.time() * 1000.0
        self._seq += 1
        device = event.get("device")
        timer = self._timers.setdefault(device, {}) if device is not None else {}
        if event["type"] == "set_start":
            timer.update(
                phase="set", since_session_s=event["session_s"], kind=event.get("kind"),
                set_start_session_s=event["session_s"], number=event.get("set"),
            )  # fmt: skip
        elif event["type"] == "set_end":
            timer.update(phase="rest", since_session_s=event["session_s"])
        elif event["type"] == "tremor":
            timer["tremor_session_s"] = event["session_s"]
        elif event["type"] == "session_end":
            self.ended = True
        message = {
            "kind": "event", "seq": self._seq, "index": self._device_index(device),
            "published_unix_ms": published_unix_ms, "event": event,
        }  # fmt: skip
        text = dumps(message)
        for client in list(self._clients):
            client.put(text)

    def _device_index(self, device: str | None) -> int | None:
        if device is None or self.collector is None:
            return None
        for i, ch in enumerate(self.collector.channels):
            if ch.stats.name == device:
                return i
        return None

    def _state_message(self) -> str:
        """The live state now: what a page draws first."""
        from tremorlift.analysis.alerts import ZONES, zone  # noqa: PLC0415

        collector = self.collector
        state = collector.state_dict() if collector is not None else None
        if state is not None:
            for lift in state["lifts"]:
                loss = lift.get("velocity_loss_pct")
                lift["zone"] = zone(loss) if loss is not None else None
        session_s = collector.session.host_s() if collector is not None else None
        message = {
            "kind": "state", "seq": self._seq, "state": state, "session_s": session_s,
            "time_scale": getattr(collector, "time_scale", 1.0), "timers": self._timers,
            "zones": [[upper, name] for upper, name in ZONES], "ended": self.ended,
            "sent_unix_ms": time.time() * 1000.0,
        }  # fmt: skip
        return dumps(message)

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._host_allowed(request):
            raise web.HTTPForbidden(text="forbidden\n")
        path = request.path
        if self.token is not None:
            first, _, rest = path[1:].partition("/")
            if not secrets.compare_digest(first.encode(), self.token.encode()):
                raise web.HTTPForbidden(
                    text="forbidden: this page needs the address collect printed\n"
                )
            if "/" not in path[1:]:  # /<token> without the slash: the page's relative URLs need it
                raise web.HTTPFound(self.base_path)
        else:
            rest = path[1:]
        if rest == WS_PATH:
            return await self._websocket(request)
        entry = PAGE_FILES.get(rest)
        if entry is None:
            raise web.HTTPNotFound(text="not found\n")
        return web.Response(
            body=self._page[rest],
            content_type=entry[1],
            charset="utf-8",
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    def _host_allowed(self, request: web.Request) -> bool:
        """On loopback, only requests to a loopback name (a web site that rebinds its own name
        to 127.0.0.1 is refused); a WebSocket only from the page's own origin."""
        host = request.host.rsplit(":", 1)[0].strip("[]") if request.host else ""
        if self.token is None:
            try:
                if not is_loopback(host):
                    return False
            except ValueError:
                return False
        origin = request.headers.get("Origin")
        if origin is not None and request.path.endswith("/" + WS_PATH):
            return urlsplit(origin).netloc == request.host
        return True

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        await ws.prepare(request)
        client = _Client(ws)
        # Registered before the state is taken: no event is missed; the page skips the events
        # the state already holds by their sequence number.
        self._clients.add(client)
        client.put(self._state_message())
        sender = asyncio.create_task(client.send_loop())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and msg.data == "state":
                    client.put(self._state_message())  # the page asks again (e.g. woke up)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._clients.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws


class _Client:
    """One open page: a bounded queue of JSON texts and the task that sends them in order."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(CLIENT_QUEUE_MAX)
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing: asyncio.Future[bool] | None = None

    def put(self, text: str) -> None:
        if self._closing is not None:
            return
        try:
            self.queue.put_nowait(text)
            self._idle.clear()
        except asyncio.QueueFull:  # a page that stopped reading: it redraws from the state
            self._closing = asyncio.ensure_future(self.ws.close(code=1011, message=b"too slow"))

    async def send_loop(self) -> None:
        while True:
            text = await self.queue.get()
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return
            if self.queue.empty():
                self._idle.set()

    async def drained(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
