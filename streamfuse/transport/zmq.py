"""ZeroMQ links: socket defaults in one place, endpoints, CURVE.

Socket pattern: every link is PUSH (upstream, connects) -> PULL (downstream, binds).
- PUSH/PULL gives backpressure: when the receiver's queue and the sender's high-water mark are full, a blocking send
  waits. Offline mode sends blocking, so no frame is ever dropped and the slowest stage paces the source.
- Live mode sends non-blocking with a small high-water mark: a frame that finds the queue full is dropped at once and
  counted, so a slow consumer never builds latency or memory. The receiver also keeps only the newest mono frame.
- PUB/SUB was rejected: it drops silently at the high-water mark, which would break the offline guarantee.
- The downstream side binds, so an upstream node that dies and restarts reconnects to the same address by itself.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from streamfuse.config.schema import EndpointConfig, RigConfig
from streamfuse.errors import ConfigError
from streamfuse.transport.base import Inbox, Sender, StopCheck, deadline

log = logging.getLogger("streamfuse.transport")


@dataclass(frozen=True)
class SocketDefaults:
    """Every socket option streamfuse sets, in one place."""

    live_hwm: int = 2
    """Messages queued per link in live mode (each side); small, so stale frames are dropped, not queued."""
    offline_hwm: int = 8
    """Messages queued per link in offline mode; backpressure beyond this."""
    linger_ms: int = 2000
    """Live mode: how long close() may wait to flush queued messages."""
    offline_linger_ms: int = -1
    """Offline mode: close() waits until every queued message reached the peer (nothing is lost at the end)."""
    poll_ms: int = 100
    """Poll interval of node loops, so stop requests are seen promptly."""
    send_timeout_ms: int = 100
    """Blocking sends wake up this often to check for stop requests."""
    reconnect_ms: int = 100
    """First reconnect delay after a peer vanishes."""
    reconnect_max_ms: int = 1000
    """Largest reconnect delay (exponential backoff)."""
    unattended_send_s: float = 30.0
    """A blocking send given no stop check gives up after this long (nothing blocks forever)."""
    peer_gone_s: float = 10.0
    """A blocking send gives up when the receiver disconnected this long ago and has not come back."""


DEFAULTS = SocketDefaults()


def default_endpoint(run_dir: str | Path, link: str) -> EndpointConfig:
    """The ipc endpoint of a link inside a run folder."""
    return EndpointConfig(url=f"ipc://{Path(run_dir) / link}.sock")


def endpoint_for(cfg: RigConfig, link: str, run_dir: str | Path) -> EndpointConfig:
    """The configured endpoint of a link, or its ipc default."""
    return cfg.endpoints.get(link) or default_endpoint(run_dir, link)


def _is_loopback_bind(url: str) -> bool:
    host = url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a hostname: reachable from outside


def _load_keypair(path: str) -> tuple[bytes, bytes | None]:
    import zmq.auth

    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read CURVE key file {path}: {exc}; create keys with `streamfuse keygen`") from None


class ZmqContext:
    """One zmq.Context per process, plus the CURVE authenticator when a bound link needs it."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self._auth = None

    def _apply_defaults(self, sock: zmq.Socket, hwm: int) -> None:
        sock.setsockopt(zmq.LINGER, DEFAULTS.linger_ms)
        sock.setsockopt(zmq.RECONNECT_IVL, DEFAULTS.reconnect_ms)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, DEFAULTS.reconnect_max_ms)
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.RCVHWM, hwm)

    def bind_pull(self, ep: EndpointConfig, hwm: int, max_message_bytes: int) -> zmq.Socket:
        """A PULL socket bound to ``ep``; CURVE server when keys are configured."""
        sock = self.ctx.socket(zmq.PULL)
        self._apply_defaults(sock, hwm)
        sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)  # oversized messages never reach memory
        self._secure_server(sock, ep)
        if ep.url.startswith("ipc://"):
            Path(ep.url[len("ipc://") :]).parent.mkdir(parents=True, exist_ok=True)
        try:
            sock.bind(ep.url)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise ConfigError(f"cannot bind {ep.url}: {exc}; is another node already using it?") from None
        return sock

    def connect_push(self, ep: EndpointConfig, hwm: int) -> tuple[zmq.Socket, zmq.Socket]:
        """A PUSH socket connected to ``ep`` (CURVE client when keys are configured), and a monitor socket that
        reports when the peer connects (handshake done) and when it disconnects."""
        sock = self.ctx.socket(zmq.PUSH)
        self._apply_defaults(sock, hwm)
        sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue frames for a peer that is not connected
        sock.setsockopt(zmq.SNDTIMEO, DEFAULTS.send_timeout_ms)
        if ep.client_secret_key or ep.server_public_key:
            if not (ep.client_secret_key and ep.server_public_key):
                raise ConfigError(f"endpoint {ep.url}: CURVE needs both client_secret_key and server_public_key")
            public, secret = _load_keypair(ep.client_secret_key)
            server_public, _ = _load_keypair(ep.server_public_key)
            if secret is None:
                raise ConfigError(f"{ep.client_secret_key} holds no secret key; use the .key_secret file")
            sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server_public
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.connect(ep.url)
        return sock, monitor

    def _secure_server(self, sock: zmq.Socket, ep: EndpointConfig) -> None:
        if not ep.server_secret_key:
            if ep.url.startswith("tcp://") and not _is_loopback_bind(ep.url):
                if not ep.insecure:
                    raise ConfigError(
                        f"refusing to bind {ep.url} without CURVE: frames would be open to the network; set "
                        "server_secret_key + authorized_clients (see `streamfuse keygen`), or insecure: true"
                    )
                log.warning("binding %s WITHOUT encryption or authentication (insecure: true)", ep.url)
            return
        public, secret = _load_keypair(ep.server_secret_key)
        if secret is None:
            raise ConfigError(f"{ep.server_secret_key} holds no secret key; use the .key_secret file")
        if self._auth is None:
            from zmq.auth.thread import ThreadAuthenticator

            self._auth = ThreadAuthenticator(self.ctx)
            self._auth.start()
        if ep.authorized_clients:
            self._auth.configure_curve(domain="*", location=ep.authorized_clients)
        else:
            raise ConfigError(
                f"endpoint {ep.url}: CURVE server needs authorized_clients (a folder of client .key files)"
            )
        sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, True

    def close(self) -> None:
        if self._auth is not None:
            self._auth.stop()
        self.ctx.term()


class ZmqSender(Sender):
    """PUSH end of a link."""

    def __init__(self, zctx: ZmqContext, ep: EndpointConfig, live: bool) -> None:
        self.sock, self._monitor = zctx.connect_push(ep, DEFAULTS.live_hwm if live else DEFAULTS.offline_hwm)
        self.sock.setsockopt(zmq.LINGER, DEFAULTS.linger_ms if live else DEFAULTS.offline_linger_ms)
        self.url = ep.url
        self._gone_since: float | None = None  # when the receiver disconnected (None: connected, or not yet seen)

    def _peer_events(self, timeout_ms: int = 0) -> None:
        """Read the monitor: the receiver connected (handshake done) or went away."""
        from zmq.utils.monitor import recv_monitor_message

        while self._monitor.poll(timeout_ms):
            event = recv_monitor_message(self._monitor)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self._gone_since = self._gone_since or time.monotonic()
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._gone_since = None
            timeout_ms = 0

    def send(self, parts: list, block: bool, stop: StopCheck | None = None) -> bool:
        """Send; blocking sends retry until delivered, ``stop()`` turns true, or the receiver has been gone for
        ``peer_gone_s`` (see ``transport.base``)."""
        stop = stop if stop is not None else deadline(DEFAULTS.unattended_send_s)
        while True:
            try:
                self.sock.send_multipart(parts, flags=0 if block else zmq.NOBLOCK, copy=False)
                return True
            except zmq.Again:
                if not block or stop():
                    return False
                self._peer_events()
                if self._gone_since is not None and time.monotonic() - self._gone_since > DEFAULTS.peer_gone_s:
                    log.warning("the receiver at %s went away and has not come back; nothing reads this link", self.url)
                    return False

    def wait_consumed(self, timeout_s: float, stop: StopCheck | None = None) -> bool:
        """After the end-of-stream marker: wait until the receiver closes its end, i.e. it has read everything.

        ZeroMQ drops messages still queued on the receiving side when the sender disconnects first, so an
        offline sender stays connected until then. Returns False on timeout or stop.
        """
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not (stop is not None and stop()):
            self._peer_events(DEFAULTS.poll_ms)
            if self._gone_since is not None:
                return True
        return False

    def close(self, abandon: bool = False) -> None:
        """Close; queued messages are still delivered (offline: however long that takes) unless ``abandon``."""
        self.sock.disable_monitor()
        self._monitor.close(linger=0)
        self.sock.close(linger=0 if abandon else None)


class ZmqInbox(Inbox):
    """PULL ends of a node's links, bound, polled together."""

    def __init__(self, zctx: ZmqContext, endpoints: dict[str, EndpointConfig], live: bool, max_message_bytes: int):
        hwm = DEFAULTS.live_hwm if live else DEFAULTS.offline_hwm
        self.socks = {name: zctx.bind_pull(ep, hwm, max_message_bytes) for name, ep in endpoints.items()}
        self._names = {s: n for n, s in self.socks.items()}
        self._pollers: dict[frozenset, zmq.Poller] = {}
        self._turn = 0

    def _poller(self, links: frozenset) -> zmq.Poller:
        poller = self._pollers.get(links)
        if poller is None:
            poller = zmq.Poller()
            for name in links:
                poller.register(self.socks[name], zmq.POLLIN)
            self._pollers[links] = poller
        return poller

    def recv(self, timeout_ms: int, links: set[str] | None = None) -> tuple[str, list] | None:
        wanted = frozenset(links) if links is not None else frozenset(self.socks)
        order = sorted(wanted)  # ready sockets first, taking turns, so that a busy link cannot starve another
        self._turn = (self._turn + 1) % len(order)
        for name in order[self._turn :] + order[: self._turn]:
            try:
                return name, self.socks[name].recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                pass
        ready = dict(self._poller(wanted).poll(timeout_ms))
        for sock in ready:
            try:
                return self._names[sock], sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                continue
        return None

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close(linger=0)
