"""The loop driver: the lifecycle order every node relies on, over the in-memory transport."""

from __future__ import annotations

import pytest

from streamfuse.nodes import loop
from streamfuse.nodes.common import Reporter, StopFlag
from streamfuse.transport import MemoryInbox


class Recorder(loop.Operator):
    """Counts to ``until`` messages, and writes down every lifecycle call."""

    drain_on_stop = True

    def __init__(self, inbox: MemoryInbox, until: int = 3, fail_at: int | None = None) -> None:
        self.inbox, self.until, self.fail_at = inbox, until, fail_at
        self.calls: list[str] = []
        self.seen = 0
        self.reporter = Reporter("test", enabled=False)

    @property
    def done(self) -> bool:
        return self.seen >= self.until

    def step(self, msg) -> None:
        if msg is not None:
            self.seen += 1
            self.calls.append(f"step {msg[1][0].decode()}")
            if self.seen == self.fail_at:
                raise RuntimeError("boom")

    def stopping(self) -> None:
        self.calls.append("stopping")

    def summary(self) -> dict:
        self.calls.append(f"summary closed={self.inbox.closed}")
        return {"seen": self.seen}

    def end_streams(self, stop) -> None:
        self.calls.append(f"end_streams closed={self.inbox.closed}")

    def close(self) -> None:
        self.calls.append("close")


def filled(n: int) -> MemoryInbox:
    inbox = MemoryInbox(["in"])
    for i in range(n):
        inbox.sender("in").send([str(i).encode()], block=True)
    return inbox


def test_done_operator_reports_then_closes_its_inbox_then_ends_its_streams() -> None:
    inbox = filled(5)
    op = Recorder(inbox)
    assert loop.run(op, inbox, StopFlag(), poll_ms=10) == {"seen": 3}
    assert op.calls == ["step 0", "step 1", "step 2", "summary closed=False", "end_streams closed=True", "close"]


def test_stop_drains_what_arrived_then_calls_stopping() -> None:
    inbox = filled(2)
    stop = StopFlag()
    stop.set()
    op = Recorder(inbox, until=10)
    assert loop.run(op, inbox, stop, poll_ms=10) == {"seen": 2}
    assert op.calls[:3] == ["step 0", "step 1", "stopping"]


def test_close_runs_even_when_a_step_raises() -> None:
    inbox = filled(3)
    op = Recorder(inbox, fail_at=2)
    with pytest.raises(RuntimeError, match="boom"):
        loop.run(op, inbox, StopFlag(), poll_ms=10)
    assert op.calls[-1] == "close"
