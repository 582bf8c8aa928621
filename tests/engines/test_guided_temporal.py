"""guided-temporal: frame-wise it is guided; on the stream path it chains flow through the mono frames."""

from __future__ import annotations

import numpy as np
from conftest import moving_frames

from streamfuse.color import luma
from streamfuse.data.degrade import downsample
from streamfuse.engines import load_engine
from streamfuse.evaluation.stream import run_stream, score_clip


def test_frame_wise_calls_are_exactly_guided() -> None:
    frames = moving_frames(6, speed=3)
    ref = downsample(frames[0], 4)
    guided, temporal = load_engine("guided"), load_engine("guided-temporal")
    for t in (1, 5):
        a = guided.colorize(luma(frames[t]), guided.prepare_reference(ref))
        b = temporal.colorize(luma(frames[t]), temporal.prepare_reference(ref))
        np.testing.assert_array_equal(a, b)


def test_stream_without_chain_is_guided_and_with_chain_uses_it() -> None:
    frames = moving_frames(13, speed=3)
    plain, _ = run_stream(load_engine("guided", seed_flow=False), frames, 4, 6)
    off, _ = run_stream(load_engine("guided-temporal", chain=False, seed_flow=False), frames, 4, 6)
    for a, b in zip(plain, off, strict=True):
        np.testing.assert_array_equal(a, b)
    eng = load_engine("guided-temporal", seed_flow=False)
    stream = eng.open_stream()
    used = []
    for t, frame in enumerate(frames):
        if t % 6 == 0:
            stream.push_reference(downsample(frame, 4))
            assert "chain" not in stream.memory  # the chain restarts at every reference
        st = eng.temporal_align(luma(frame), stream.state, stream.memory)
        used.append(None if st.use_chain is None else float(st.use_chain.mean()))
    assert used[0] is None and used[6] is None and used[1] is not None
    assert max(u for u in used if u is not None) > 0.05  # the chained flow wins somewhere on a pan
    chained, _ = run_stream(eng, frames, 4, 6)
    assert score_clip(chained, frames, 6)["psnr_cbcr"] > 25.0
