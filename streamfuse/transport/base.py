"""The transport contract every link implementation keeps: a Sender per outgoing link, an Inbox per node.

Nodes only see these two interfaces, so their logic runs unchanged over ZeroMQ (``transport.zmq``) or over the
in-memory twin (``transport.memory``) that unit tests use. The contract both keep:

- ``Sender.send(parts, block=False)`` never waits: it returns False (the caller counts a drop) when the link is full.
- ``Sender.send(parts, block=True, stop=...)`` waits for room, waking up every few milliseconds to check ``stop()``;
  it returns False once ``stop()`` is true. Without a ``stop`` check it gives up after
  ``SocketDefaults.unattended_send_s``, so no send can block forever.
- ``Inbox.recv(timeout_ms, links)`` returns the next message of one of ``links`` (taking busy links in turn), or None
  after ``timeout_ms`` (0: do not wait).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable

StopCheck = Callable[[], bool]
"""A callable that turns true when the caller should give up waiting (a stop request or a deadline)."""


def deadline(seconds: float) -> StopCheck:
    """A stop check that turns true ``seconds`` from now."""
    end = time.monotonic() + seconds
    return lambda: time.monotonic() > end


class Sender(ABC):
    """The sending end of a link."""

    @abstractmethod
    def send(self, parts: list, block: bool, stop: StopCheck | None = None) -> bool:
        """Send one multipart message; False when it was not sent (non-blocking and full, or stopped while waiting)."""

    @abstractmethod
    def wait_consumed(self, timeout_s: float, stop: StopCheck | None = None) -> bool:
        """After the last message: wait until nothing sent can be lost any more; False on timeout or stop."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the link."""


class Inbox(ABC):
    """The receiving ends of a node's links, polled together."""

    @abstractmethod
    def recv(self, timeout_ms: int, links: set[str] | None = None) -> tuple[str, list] | None:
        """Next message from any of ``links`` (all when None) as (link, parts), or None after the timeout."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the links; later sends to them find them full."""
