"""Fusion node logic over the in-memory transport: order, reference reuse, bad input, live dropping."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamfuse.config import config_from_dict
from streamfuse.engines import load_engine
from streamfuse.nodes import loop
from streamfuse.nodes.common import StopFlag
from streamfuse.nodes.fuse import FuseNode, FuseParams
from streamfuse.nodes.ports import TRUTH_STREAM_FLAG
from streamfuse.transport import MemoryInbox
from streamfuse.wire import HEADER, decode_frame, encode_eos, encode_frame

MS = 1_000_000


def rig(video: Path, mode: str = "offline") -> object:
    return config_from_dict(
        {
            "mode": mode,
            "synthetic": {"video": str(video), "scale": 4},
            "cameras": {
                "mono": {"role": "mono", "source": "synthetic"},
                "color": {"role": "color", "source": "synthetic"},
            },
            "outputs": [{"path": "unused.mp4"}],
        }
    )


def run_node(cfg, messages: list[tuple[str, list]]) -> tuple[FuseNode, list]:
    inbox = MemoryInbox(["mono", "color"])
    out = MemoryInbox(["output"])
    for link, parts in messages:
        inbox.sender(link).send(parts, block=True)
    node = FuseNode(FuseParams.from_rig(cfg), load_engine("naive"), out.sender("output"), StopFlag())
    loop.run(node, inbox, node.stop, poll_ms=10)
    results = []
    while (msg := out.recv(0)) is not None:
        results.append(decode_frame(msg[1]))
    return node, results


def mono_msg(seq: int, ts: int) -> tuple[str, list]:
    return "mono", list(encode_frame(np.full((64, 80), seq, np.uint8), 1, seq, ts))


def colour_msg(seq: int, ts: int) -> tuple[str, list]:
    return "color", list(encode_frame(np.full((16, 20, 3), (200, 50, 50), np.uint8), 2, seq, ts))


def test_offline_keeps_every_frame_in_order_and_reuses_references(small_video: Path) -> None:
    msgs = [colour_msg(0, 0), colour_msg(1, 132 * MS)]
    msgs += [mono_msg(i, i * 33 * MS) for i in range(8)]
    msgs += [("mono", list(encode_eos(1, 8))), ("color", list(encode_eos(2, 2)))]
    node, results = run_node(rig(small_video), msgs)
    frames = [(h, f) for h, f in results if not h.eos]
    assert [h.seq for h, _ in frames] == list(range(8))
    assert [h.ts_ns for h, _ in frames] == [i * 33 * MS for i in range(8)]
    assert results[-1][0].eos
    assert node.engine.reference_calls == 2
    assert frames[0][1][..., 0].mean() > frames[0][1][..., 2].mean()  # the red reference coloured it


def test_bad_messages_are_dropped_and_counted_and_good_frames_still_fused(small_video: Path) -> None:
    good_header, _ = encode_frame(np.zeros((64, 80), np.uint8), 1, 0, 0)
    bad = [
        ("mono", [b"garbage"]),  # wrong part count
        ("mono", [b"x" * 10, b""]),  # truncated header
        ("mono", [good_header, b"\0" * 10]),  # wrong buffer size
        ("mono", [HEADER.pack(b"SF", 9, 1, 0, 0, 1, 0, 0, 0, 4, 4), b"\0" * 16]),  # bad version
        ("mono", [HEADER.pack(b"SF", 1, 1, 0, 0, 1, 0, 0, 0, 10**6, 10**6), b""]),  # absurd dims
        ("mono", list(encode_frame(np.zeros((8, 8, 3), np.uint8), 1, 0, 0))),  # colour frame on the mono link
        ("color", list(encode_frame(np.zeros((8, 8), np.uint8), 2, 0, 0))),  # mono frame on the colour link
        ("mono", list(encode_frame(np.zeros((8, 8), np.uint8), 7, 0, 0))),  # unknown stream id
    ]
    msgs = [colour_msg(0, 0), *bad, mono_msg(0, 0), mono_msg(1, 33 * MS), mono_msg(1, 40 * MS)]  # last: duplicate
    msgs += [("mono", list(encode_eos(1, 2))), ("color", list(encode_eos(2, 1)))]
    node, results = run_node(rig(small_video), msgs)
    assert node.rejects == {
        "bad_part_count": 1,
        "bad_header_size": 1,
        "bad_size": 1,
        "bad_version": 1,
        "oversized": 1,
        "bad_pixfmt": 2,
        "bad_stream": 1,
        "stale_seq": 1,
    }
    assert len([r for r in results if not r[0].eos]) == 2


def test_live_mode_keeps_only_the_newest_mono_frame(small_video: Path) -> None:
    msgs = [colour_msg(0, 0)] + [mono_msg(i, i * 33 * MS) for i in range(5)] + [("mono", list(encode_eos(1, 5)))]
    inbox = MemoryInbox(["mono", "color"])
    out = MemoryInbox(["output"])
    for link, parts in msgs:
        inbox.sender(link).send(parts, block=True)
    node = FuseNode(
        FuseParams.from_rig(rig(small_video, "live")), load_engine("naive"), out.sender("output"), StopFlag()
    )
    for _ in range(len(msgs)):  # deliver everything before processing, as a slow node would see it
        node.handle(*inbox.recv(0))
    node.process_ready()
    assert node.counts["stale_mono_dropped"] == 4
    header, _ = decode_frame(out.recv(0)[1])
    assert header.seq == 0 and header.ts_ns == 4 * 33 * MS  # the newest frame was fused


def test_ground_truth_gives_a_psnr(small_video: Path) -> None:
    truth = np.zeros((64, 80, 3), np.uint8)
    truth[:] = (200, 50, 50)
    msgs = [colour_msg(0, 0), ("mono", list(encode_frame(truth, 1 | TRUTH_STREAM_FLAG, 0, 0))), mono_msg(0, 0)]
    msgs += [("mono", list(encode_eos(1, 1))), ("color", list(encode_eos(2, 1)))]
    node, _ = run_node(rig(small_video), msgs)
    assert len(node.psnr) == 1 and node.psnr[0] > 20


def test_prepare_reference_runs_once_per_colour_frame_through_the_engine_stream(small_video: Path) -> None:
    msgs = [colour_msg(i, i * 132 * MS) for i in range(4)]  # colour at a quarter of the mono rate
    msgs += [mono_msg(i, i * 33 * MS) for i in range(16)]
    msgs += [("mono", list(encode_eos(1, 16))), ("color", list(encode_eos(2, 4)))]
    node, results = run_node(rig(small_video), msgs)
    assert len([r for r in results if not r[0].eos]) == 16
    assert node.engine.reference_calls == 4  # not once per mono frame
    assert node.stream.references == 4 and node.stream.frames == 16  # one engine stream for the camera pair
    assert node.tracker.counts["references_prepared"] == 4
    assert node.tracker.counts["fresh"] == 4 and node.tracker.counts["reused"] == 12
