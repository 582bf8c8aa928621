"""The run's console: log lines never run into the status line, the last line is the summary's, and the summary
reads at a glance (references in words, only outputs that were written)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from streamfuse.config import synthetic_rig_config
from streamfuse.nodes.launcher.report import (
    Console,
    NodeRecord,
    NodeStats,
    ProgressConsole,
    build_summary,
    final_line,
    format_summary,
    reference_text,
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def nodes(frames: int) -> dict[str, NodeRecord]:
    return {"encode": NodeRecord("encode", NodeStats(frames=frames, fps=9.5))}


def test_log_lines_go_above_the_status_line_on_a_terminal() -> None:
    term = Terminal()
    console = Console(term)
    console.update(1.0, nodes(10), {})
    console.log("fuse WARNING something happened\n")
    console.update(1.5, nodes(12), {})
    text = term.getvalue()
    # the status line is cleared before the log line, which ends with a newline, and drawn again after it
    assert "\r\x1b[K" + "fuse WARNING something happened\n" + "   1.0s | encode 10f 9.5fps" in text
    assert text.endswith("\r\x1b[K   1.5s | encode 12f 9.5fps")
    assert "fps" + "fuse" not in text  # never on one line


def test_logging_of_the_launcher_goes_through_the_console() -> None:
    term = Terminal()
    console = Console(term)
    handler = logging.StreamHandler(term)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        console.update(0.5, nodes(3), {})
        with console.logs_above():
            logging.getLogger("streamfuse.run").warning("node mono died")
        assert handler.stream is term  # restored
    finally:
        root.removeHandler(handler)
    assert "\r\x1b[Knode mono died\n   0.5s | encode 3f" in term.getvalue()


def test_off_a_terminal_the_status_line_prints_once_per_5_s() -> None:
    out = io.StringIO()
    console = Console(out)
    for t in (0.0, 0.5, 1.0, 4.9, 5.0, 5.5):
        console.update(t, nodes(int(t * 10)), {})
    lines = out.getvalue().splitlines()
    assert [line.split("s |")[0].strip() for line in lines] == ["0.0", "5.0"]


def _summary(tmp_path: Path, frames: list[int], write: list[bool]) -> dict:
    outs = [tmp_path / f"o{i}.mp4" for i in range(len(frames))]
    for out, exists in zip(outs, write, strict=True):
        if exists:
            out.write_bytes(b"x")
    cfg = synthetic_rig_config((160, 120), engine="naive", output=str(outs[0]))
    enc = {"frames": frames, "outputs": [str(o) for o in outs], "fps": 9.0}
    fuse = {"sync": {"colour_frames": 12, "references_prepared": 5, "fresh": 5, "reused": 40, "fallback_last": 3}}
    records = {
        "encode": NodeRecord("encode", NodeStats(frames=40), summary=enc, exit_code=0),
        "fuse": NodeRecord("fuse", summary=fuse, exit_code=0),
        "capture:mono": NodeRecord("mono", summary={"sent": 48, "corrupt_frames": 2}, exit_code=0),
    }
    return build_summary(cfg, records, {}, {}, [], None, 5.25)


def test_only_written_outputs_are_listed(tmp_path: Path) -> None:
    s = _summary(tmp_path, [48, 0], [True, False])
    assert s["outputs"] == [str(tmp_path / "o0.mp4")]
    assert s["outputs_not_written"] == [str(tmp_path / "o1.mp4")]
    text = format_summary(s)
    assert "o1.mp4" not in text.split("not written")[0]


def test_final_line_is_the_summarys_and_references_are_words(tmp_path: Path) -> None:
    s = _summary(tmp_path, [48], [True])
    # the encoder's last stats line said 40 frames; the summary knows it wrote 48
    assert final_line(s).startswith("done after 5.2 s: 48 frames in, 48 out, 9.0 fps; ")
    assert reference_text(s["sync"]) == (
        "5 of 12 colour frames used; mono frames: 5 fresh, 40 reused, 3 stale (3 fallback last)"
    )
    assert s["stale_reference_frames"] == 3 and s["corrupt_frames_skipped"] == 2
    text = format_summary(s)
    assert "{" not in text  # no raw dicts
    assert "damaged input  2 frames skipped" in text
    term = Terminal()
    console = Console(term)
    console.update(5.0, nodes(40), {})
    console.finish(s)
    assert term.getvalue().endswith("\r\x1b[K" + final_line(s) + "\n")


def test_progress_console_counts_to_the_true_total(tmp_path: Path) -> None:
    out = io.StringIO()
    console = ProgressConsole(48, out)
    console.update(1.0, nodes(40), {})
    console.log("a log line")
    console.finish(_summary(tmp_path, [48], [True]))
    text = out.getvalue()
    assert "40/48" in text and "48/48" in text and "a log line" in text
