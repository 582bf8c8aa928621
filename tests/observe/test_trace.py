"""The latency trace: node part files merge into one Chrome trace whose stages line up per frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamfuse.observe.trace import STAGES, TraceRecorder, frame_id, merge, stage_spans


def test_parts_merge_into_a_chrome_trace_with_linked_stages(tmp_path: Path) -> None:
    capture = TraceRecorder(tmp_path / "capture.jsonl", "capture:mono")
    fuse = TraceRecorder(tmp_path / "fuse.jsonl", "fuse")
    t = 1_000_000_000
    for seq in range(3):
        ts = seq * 33_000_000
        capture.span("capture", "mono", ts, t, t + 1000, seq=seq)
        capture.span("send", "mono", ts, t + 1000, t + 2000)
        for i, stage in enumerate(STAGES[2:]):
            fuse.span(stage, "mono", ts, t + 3000 + i * 1000, t + 3500 + i * 1000)
    capture.close()
    fuse.close()
    out = tmp_path / "trace.json"
    assert merge([tmp_path / "capture.jsonl", tmp_path / "fuse.jsonl"], out) == 3 * len(STAGES)

    data = json.loads(out.read_text())
    names = {e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M"}
    assert names == {"capture:mono", "fuse"}
    frames = stage_spans(out)
    assert len(frames) == 3
    for stages in frames.values():
        assert list(stages) == list(STAGES)  # sorted by time, every stage once
        starts = [stages[s]["ts"] for s in STAGES]
        assert starts == sorted(starts)
        assert stages["capture"]["dur"] == pytest.approx(1.0)  # microseconds
    flows = [e for e in data["traceEvents"] if e["ph"] in "stf"]
    assert {e["ph"] for e in flows} == {"s", "t", "f"}
    assert {e["id"] for e in flows} == {frame_id("mono", s * 33_000_000) for s in range(3)}


def test_a_recorder_without_a_path_records_nothing(tmp_path: Path) -> None:
    rec = TraceRecorder(None, "fuse")
    rec.span("engine", "mono", 0, 0, 1)
    rec.close()
    assert not rec.enabled
    assert list(tmp_path.iterdir()) == []


def test_a_cut_part_file_loses_only_its_last_line(tmp_path: Path) -> None:
    rec = TraceRecorder(tmp_path / "enc.jsonl", "encode")
    rec.span("encode", "mono", 5, 10, 20)
    rec.close()
    with (tmp_path / "enc.jsonl").open("a") as fh:
        fh.write('{"ph": "X", "name": "enc')  # a node killed mid-write
    assert merge([tmp_path / "enc.jsonl"], tmp_path / "t.json") == 1


def test_unknown_stage_is_refused(tmp_path: Path) -> None:
    rec = TraceRecorder(tmp_path / "x.jsonl", "fuse")
    with pytest.raises(ValueError, match="stages: capture"):
        rec.span("decode", "mono", 0, 0, 1)
    rec.close()
