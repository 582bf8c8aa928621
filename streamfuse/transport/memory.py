"""In-memory twin of the ZeroMQ links, for unit tests of node logic without sockets.

It keeps the contract of ``transport.base`` as the real links do: bounded queues (``maxsize``) that a non-blocking
send finds full, blocking sends that wake up to check ``stop`` and never wait forever, ``recv`` that waits up to
``timeout_ms`` and takes busy links in turn, and a closed inbox whose links then look full to senders.
Messages are copied to bytes on send, as they would be on a socket.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from streamfuse.transport.base import Inbox, Sender, StopCheck, deadline
from streamfuse.transport.zmq import DEFAULTS

_WAKE_S = DEFAULTS.send_timeout_ms / 1000  # how often a blocked send looks at its stop check


class MemoryInbox(Inbox):
    """One bounded queue per link (``maxsize`` 0: unbounded), read together; ``sender(link)`` gives a send end."""

    def __init__(self, links: list[str], maxsize: int = 0) -> None:
        self.queues: dict[str, deque] = {name: deque() for name in links}
        self.maxsize = maxsize
        self.closed = False
        self._cond = threading.Condition()
        self._turn = 0

    def sender(self, link: str) -> MemorySender:
        """The sending end of one of this inbox's links."""
        if link not in self.queues:
            raise KeyError(f"no link {link!r} in this inbox; links: {', '.join(self.queues)}")
        return MemorySender(self, link)

    def _has_room(self, link: str) -> bool:
        return not self.closed and (self.maxsize <= 0 or len(self.queues[link]) < self.maxsize)

    def put(self, link: str, parts: list, block: bool, stop: StopCheck) -> bool:
        """Queue one message on ``link``; the Sender contract (see ``transport.base``)."""
        with self._cond:
            while not self._has_room(link):
                if not block or stop():
                    return False
                self._cond.wait(_WAKE_S)
            self.queues[link].append(parts)
            self._cond.notify_all()
            return True

    def _pop(self, wanted: list[str]) -> tuple[str, list] | None:
        self._turn = (self._turn + 1) % len(wanted)
        for name in wanted[self._turn :] + wanted[: self._turn]:
            if self.queues[name]:
                self._cond.notify_all()  # a blocked sender may have room now
                return name, self.queues[name].popleft()
        return None

    def recv(self, timeout_ms: int, links: set[str] | None = None) -> tuple[str, list] | None:
        wanted = sorted(links if links is not None else self.queues)
        end = time.monotonic() + max(0, timeout_ms) / 1000
        with self._cond:
            while not self.closed:
                msg = self._pop(wanted)
                left = end - time.monotonic()
                if msg is not None or left <= 0:
                    return msg
                self._cond.wait(left)
        return None

    def pending(self, link: str) -> int:
        """Messages queued on ``link`` and not read yet."""
        with self._cond:
            return len(self.queues[link])

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class MemorySender(Sender):
    """The sending end of one MemoryInbox link."""

    def __init__(self, inbox: MemoryInbox, link: str) -> None:
        self.inbox = inbox
        self.link = link

    def send(self, parts: list, block: bool, stop: StopCheck | None = None) -> bool:
        copied = [p.tobytes() if hasattr(p, "tobytes") else bytes(p) for p in parts]
        return self.inbox.put(
            self.link, copied, block, stop if stop is not None else deadline(DEFAULTS.unattended_send_s)
        )

    def wait_consumed(self, timeout_s: float, stop: StopCheck | None = None) -> bool:
        """Queued messages outlive their sender here (unlike on a socket), so nothing can be lost: True at once."""
        return True
