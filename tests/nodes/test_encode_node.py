"""Encoder node logic over the in-memory transport, with injected writers: routing, end markers, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamfuse.nodes import loop
from streamfuse.nodes.common import StopFlag
from streamfuse.nodes.encode import EncodeNode, EncodeParams
from streamfuse.transport import MemoryInbox
from streamfuse.wire import Limits, encode_eos, encode_frame


class ListWriter:
    def __init__(self, name: str) -> None:
        self.path = Path(name)
        self.frames = 0
        self.written: list[tuple[int, int]] = []
        self.closed = False

    def write(self, rgb: np.ndarray, ts_ns: int) -> None:
        self.frames += 1
        self.written.append((int(rgb[0, 0, 0]), ts_ns))

    def close(self) -> None:
        self.closed = True


def fused(stream: int, seq: int) -> list:
    return list(encode_frame(np.full((8, 8, 3), seq, np.uint8), stream, seq, seq * 1000))


def run(messages: list[list], writers: int = 2, stop: StopFlag | None = None) -> tuple[dict, list[ListWriter]]:
    inbox = MemoryInbox(["output"])
    for parts in messages:
        inbox.sender("output").send(parts, block=True)
    out = [ListWriter(f"out{i}.mp4") for i in range(writers)]
    stop = stop or StopFlag()
    node = EncodeNode(EncodeParams(Limits()), out, stop)
    return loop.run(node, inbox, stop, poll_ms=10), out


def test_each_stream_goes_to_its_writer_and_the_end_markers_finish_the_node() -> None:
    msgs = [fused(0, 0), fused(1, 0), fused(0, 1), fused(1, 1), list(encode_eos(0, 2)), list(encode_eos(1, 2))]
    summary, writers = run(msgs)
    assert [w.written for w in writers] == [[(0, 0), (1, 1000)]] * 2
    assert summary["frames"] == [2, 2] and summary["outputs"] == ["out0.mp4", "out1.mp4"]
    assert all(w.closed for w in writers)


def test_bad_messages_are_counted_and_gaps_are_reported() -> None:
    grey = list(encode_frame(np.zeros((8, 8), np.uint8), 0, 0, 0))
    msgs = [[b"junk"], grey, fused(5, 0), fused(0, 0), fused(0, 3), list(encode_eos(0, 4))]
    summary, writers = run(msgs, writers=1)
    assert summary["rejected"] == {"bad_part_count": 1, "bad_stream": 2}
    assert summary["gaps"] == 2 and writers[0].frames == 2


def test_a_stop_records_what_already_arrived_then_finalizes() -> None:
    stop = StopFlag()
    stop.set()
    summary, writers = run([fused(0, 0), fused(0, 1)], writers=1, stop=stop)  # no end marker ever comes
    assert summary["frames"] == [2] and writers[0].closed
