"""The scsr protocol: sizes that survive round-trip scaling, area-downsampled luma input, elastic references,
colourfulness, the baselines, pooled summaries and the acceptance lines."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.color import luma
from streamfuse.evaluation import scsr


@pytest.mark.parametrize("scale", [2.0, 3.3, 4.0])
def test_fit_size_round_trips(scale: float) -> None:
    for n in (576, 768, 480, 299):
        m = scsr.fit_size(n, scale)
        assert m <= n and round(round(m / scale) * scale) == m and n - m < 34


def test_protocol_input_is_area_downsampled_luma() -> None:
    truth = textured_scene(120, 160)
    cropped, mono = scsr.protocol_input(truth, 3.3)
    assert mono.shape == (round(cropped.shape[0] / 3.3), round(cropped.shape[1] / 3.3))
    want = cv2.resize(luma(cropped), (mono.shape[1], mono.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.array_equal(mono, want)


def test_elastic_warp_is_seeded_and_moves_pixels() -> None:
    img = textured_scene(96, 128)
    a = scsr.elastic_warp(img, np.random.default_rng(5))
    b = scsr.elastic_warp(img, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.shape == img.shape
    assert np.abs(a.astype(int) - img).mean() > 1.0


def test_colourfulness() -> None:
    grey = np.full((20, 20, 3), 128, np.uint8)
    assert scsr.colourfulness(grey) == pytest.approx(0.0)
    red_green = np.zeros((20, 20, 3), np.uint8)
    red_green[:, :10, 0] = 200
    red_green[:, 10:, 1] = 200
    # rg = ±200 (std 200, mean 0), yb = 100 (std 0, mean 100): M = 200 + 0.3·100
    assert scsr.colourfulness(red_green) == pytest.approx(230.0, rel=1e-6)


def _still_folder(tmp_path: Path) -> Path:
    for i, name in enumerate(scsr.HELD_ASIDE[:2]):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(textured_scene(150, 200, seed=i), cv2.COLOR_RGB2BGR))
    return tmp_path


def test_baselines_on_stills(tmp_path: Path) -> None:
    folder = _still_folder(tmp_path)
    cases = list(scsr.still_cases(folder, (2.0, 3.3)))
    assert len(cases) == 4 and all(c.ref.shape == c.truth.shape for c in cases)
    grey, guided = scsr.Method("bicubic-grey"), scsr.Method("bicubic+guided")
    for case in cases:
        g = grey(case)
        assert g.shape == case.truth.shape and np.array_equal(g[..., 0], g[..., 2])
        assert guided(case).shape == case.truth.shape


def test_summary_pools_and_acceptance_lines() -> None:
    def rec(dataset, engine, rgb, col):
        return {"dataset": dataset, "scale": 2, "engine": engine, "psnr_rgb": rgb, "psnr_cbcr": 40.0, "ssim": 0.9,
                "ms": 1.0, "colourfulness": col, "colourfulness_truth": 20.0}  # fmt: skip

    records = [
        rec("a", "bicubic-grey", 30.0, 0.0), rec("b", "bicubic-grey", 32.0, 0.0),
        rec("a", "bicubic+guided", 31.0, 18.0), rec("b", "bicubic+guided", 33.0, 18.0),
        rec("a", "scsnet", 31.2, 18.0), rec("b", "scsnet", 34.0, 18.0),
        rec("a", "scsnet-auto", 31.5, 12.0), rec("b", "scsnet-auto", 33.5, 12.0),
    ]  # fmt: skip
    rows = scsr.summarize_scsr(records)
    pooled = {r["engine"]: r for r in rows if r["dataset"] == "pooled"}
    assert pooled["scsnet"]["psnr_rgb"] == pytest.approx(32.6) and pooled["scsnet"]["n"] == 2
    lines = scsr.acceptance(rows)
    assert any(line.startswith("x2 scsnet: +0.60 dB") and line.endswith(": met") for line in lines)
    assert any(
        line.startswith("x2 scsnet-auto: +1.50 dB") and "60%" in line and line.endswith(": met") for line in lines
    )
    assert "| pooled | x2 | scsnet |" in scsr.scsr_table(rows)
