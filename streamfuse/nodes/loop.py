"""The one loop driver every node runs: operators hold the logic, this owns the order of the lifecycle.

An operator declares its ports and does its work in ``step`` (one message, or one tick for a source). The driver:

1. calls ``step`` with the next message of the ports the operator ``wants`` (or None after the poll interval;
   a source without inputs gets None every time) until the operator is ``done`` or a stop is requested;
2. on a stop, hands over what already arrived when ``drain_on_stop`` is set, then calls ``stopping``;
3. takes the ``summary`` and reports it, closes the inbox (upstream senders waiting for us may now leave), sends
   the end-of-stream markers (``end_streams``), and always calls ``close``.

Node logic is therefore tested over the in-memory transport by calling ``run`` (or ``step``) directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from streamfuse.nodes.common import Reporter, StopFlag
from streamfuse.nodes.ports import Port
from streamfuse.transport import DEFAULTS, Inbox

Message = tuple[str, list]


class Operator(ABC):
    """A node's logic without sockets: declared ports, one ``step``, a summary."""

    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()
    drain_on_stop: bool = False
    """On a stop, step through the messages that already arrived before ``stopping``."""
    reporter: Reporter

    @property
    @abstractmethod
    def done(self) -> bool:
        """The operator has finished its work (end of input)."""

    def wanted(self) -> set[str] | None:
        """The input links to read now (None: all); offline backpressure stops reading a link by leaving it out."""
        return None

    @abstractmethod
    def step(self, msg: Message | None) -> None:
        """Handle one message from an input port (a source operator gets None and produces the next frame)."""

    def stopping(self) -> None:  # noqa: B027 - optional hook
        """A stop was requested: finish or keep what is held instead of losing it."""

    @abstractmethod
    def summary(self) -> dict:
        """What the node reports when it ends."""

    def end_streams(self, stop: StopFlag) -> None:  # noqa: B027 - optional hook
        """Send end-of-stream markers on the output ports and stay until they were read."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sources, writers and senders; runs however the loop ended."""


def run(op: Operator, inbox: Inbox | None, stop: StopFlag, poll_ms: int = DEFAULTS.poll_ms) -> dict:
    """Drive ``op`` until it is done or ``stop()`` turns true; returns (and reports) its summary."""
    try:
        while not stop() and not op.done:
            op.step(inbox.recv(poll_ms, op.wanted()) if inbox is not None else None)
        if stop():
            if inbox is not None and op.drain_on_stop:
                while (msg := inbox.recv(0)) is not None:
                    op.step(msg)
            op.stopping()
        summary = op.summary()
        op.reporter.emit("summary", **summary)
        if inbox is not None:
            inbox.close()
        op.end_streams(stop)
    finally:
        op.close()
    return summary
