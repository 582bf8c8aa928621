"""Capture node logic over the in-memory transport, with an injected source: order, truth, drops, reconnects."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from streamfuse.errors import SourceError
from streamfuse.nodes import common, loop
from streamfuse.nodes.capture import CaptureNode, CaptureParams
from streamfuse.nodes.common import StopFlag
from streamfuse.nodes.ports import TRUTH_STREAM_FLAG, Port
from streamfuse.sources import CapturedFrame, Source
from streamfuse.transport import MemoryInbox
from streamfuse.wire import decode_frame

MS = 1_000_000


class ListSource(Source):
    """A source of n grey frames 33 ms apart (optionally with truth), that may fail after ``fail_after`` frames."""

    def __init__(self, n: int, truth: bool = False, live: bool = False, fail_after: int | None = None) -> None:
        self.n, self.truth, self.live, self.fail_after = n, truth, live, fail_after
        self.closed = False

    def frames(self) -> Iterator[CapturedFrame]:
        for i in range(self.n):
            if self.fail_after is not None and i == self.fail_after:
                raise SourceError("camera unplugged")
            rgb = np.full((8, 8, 3), i, np.uint8) if self.truth else None
            yield CapturedFrame(i * 33 * MS, np.full((8, 8), i, np.uint8), rgb)

    def close(self) -> None:
        self.closed = True


def drain(inbox: MemoryInbox) -> list:
    out = []
    while (msg := inbox.recv(0)) is not None:
        out.append(decode_frame(msg[1]))
    return out


def test_offline_sends_every_frame_in_order_truth_first_then_the_end_marker() -> None:
    inbox = MemoryInbox(["mono"])
    source = ListSource(5, truth=True)
    node = CaptureNode(CaptureParams("mono", Port("mono", "mono", 1)), lambda: source, inbox.sender("mono"), StopFlag())
    summary = loop.run(node, None, node.stop)
    got = drain(inbox)
    frames = [(h.stream, h.seq) for h, _ in got if not h.eos]
    assert frames == [(s, i) for i in range(5) for s in (1 | TRUTH_STREAM_FLAG, 1)]  # the truth goes first
    assert got[-1][0].eos and got[-1][0].seq == 5
    assert [h.ts_ns for h, _ in got if h.stream == 1 and not h.eos] == [i * 33 * MS for i in range(5)]
    assert summary["sent"] == 5 and summary["dropped"] == 0 and source.closed


def test_transform_is_applied_to_every_frame() -> None:
    inbox = MemoryInbox(["mono"])
    params = CaptureParams("mono", Port("mono", "mono", 1))
    node = CaptureNode(params, lambda: ListSource(2), inbox.sender("mono"), StopFlag(), transform=lambda im: 255 - im)
    loop.run(node, None, node.stop)
    images = [f for h, f in drain(inbox) if not h.eos]
    assert [int(f[0, 0]) for f in images] == [255, 254]


def test_live_link_that_is_full_drops_and_counts(monkeypatch) -> None:
    monkeypatch.setattr(common, "LIVE_DRAIN_S", 0.2)  # the end marker finds the link full too: give up soon
    inbox = MemoryInbox(["mono"], maxsize=2)
    params = CaptureParams("mono", Port("mono", "mono", 1), live=True, epoch_ns=0)  # frames long due: no pacing
    node = CaptureNode(params, lambda: ListSource(6), inbox.sender("mono"), StopFlag())
    summary = loop.run(node, None, node.stop)
    assert summary["sent"] == 2 and summary["dropped"] == 4  # nobody reads: the rest found the link full


def test_offline_stop_request_ends_the_node_without_waiting_for_the_reader() -> None:
    inbox = MemoryInbox(["mono"], maxsize=1)
    stop = StopFlag()
    node = CaptureNode(
        CaptureParams("mono", Port("mono", "mono", 1)), lambda: ListSource(50), inbox.sender("mono"), stop
    )
    node.step()  # one frame fills the link; the next blocking send waits for room or a stop
    stop.set()
    summary = loop.run(node, None, stop)
    assert summary["sent"] == 1


def test_live_source_that_fails_is_reopened_and_counted() -> None:
    opened = []

    def reopen() -> Source:
        opened.append(ListSource(3, live=True, fail_after=2 if not opened else None))
        return opened[-1]

    inbox = MemoryInbox(["mono"])
    params = CaptureParams("mono", Port("mono", "mono", 1), live=True, reconnect=True)
    node = CaptureNode(params, reopen, inbox.sender("mono"), StopFlag())
    summary = loop.run(node, None, node.stop)
    assert len(opened) == 2 and summary["source_failures"] == 1
    assert summary["sent"] == 5 and all(s.closed for s in opened)
