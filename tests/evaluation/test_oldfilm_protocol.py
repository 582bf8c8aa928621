"""The oldfilm protocol: cases, baselines, per-case records with tCE on clips, retrieval trials, the table, the
JSON and the side-by-side pictures, on small generated cases (the real run reads opencv-doc and package stills)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import moving_frames, textured_scene

from streamfuse.data.oldfilm import damage_clip, damage_photo, reference_view
from streamfuse.evaluation import oldfilm
from streamfuse.evaluation.oldfilm import OldFilmCase, case_record, denoise, evaluate_oldfilm, retrieval_trials


def _cases() -> list[OldFilmCase]:
    cases = []
    for s in range(3):
        img = textured_scene(96, 128, seed=s)
        rng = np.random.default_rng(s)
        cases.append(
            OldFilmCase(
                "still", "stills", f"s{s}", [damage_photo(img, rng)], [img], reference_view(img, rng, jitter=0.0)
            )
        )
    for d in range(2):
        frames = moving_frames(9, 96, 128, speed=1 + d)
        cases.append(
            OldFilmCase(
                "clip",
                f"video{d}",
                "shot0000",
                damage_clip(frames[1:], np.random.default_rng(d)),
                frames[1:],
                frames[0],
            )
        )
    return cases


def test_denoise_baseline_removes_grain():
    img = textured_scene(96, 128)
    grey = np.clip(img[..., 1].astype(float) + np.random.default_rng(0).normal(0, 12, (96, 128)), 0, 255).astype(
        np.uint8
    )
    err_before = np.abs(grey.astype(float) - img[..., 1]).mean()
    assert np.abs(denoise(grey).astype(float) - img[..., 1]).mean() < 0.8 * err_before


def test_records_score_clips_with_tce_and_stills_without():
    cases = _cases()
    grey = oldfilm.make_method("grey")
    still, clip = case_record(cases[0], "grey", grey(cases[0]), 1.0), case_record(cases[3], "grey", grey(cases[3]), 1.0)
    assert still["tce"] is None and clip["tce"] > 0
    assert 5 < still["psnr_rgb"] < 40 and clip["kind"] == "clip"


def test_retrieval_trials_hold_the_right_reference_and_nine_decoys_of_other_scenes():
    cases = _cases()
    for i, (case, cand) in enumerate(retrieval_trials(cases)):
        assert cand[0] == i and len(cand) == 1 + min(9, len(cases) - 1)
        assert all(cases[j].dataset != case.dataset or cases[j].kind == "still" for j in cand[1:])
        assert i not in cand[1:]


@pytest.mark.parametrize("methods", [("grey", "denoise+guided", "pikfix")])
def test_protocol_run_writes_table_json_and_pictures(tmp_path, monkeypatch, capsys, methods):
    cases = _cases()
    monkeypatch.setattr(oldfilm, "still_cases", lambda: iter(cases[:3]))
    monkeypatch.setattr(oldfilm, "clip_cases", lambda data=None, shots=4: iter(cases[3:]))
    doc = evaluate_oldfilm(methods, json_path=tmp_path / "r.json", images_dir=tmp_path / "img")
    table = capsys.readouterr().out
    assert "| all | pikfix |" in table and "retrieval:" in table
    saved = json.loads((tmp_path / "r.json").read_text())
    assert len(saved["records"]) == len(cases) * len(methods)
    pooled = {r["engine"]: r for r in doc["summary"] if r["kind"] == "all"}
    assert pooled["pikfix"]["psnr_rgb"] > pooled["denoise+guided"]["psnr_rgb"] > 0
    assert pooled["grey"]["tce"] is not None
    assert 0.0 <= doc["retrieval"]["rate"] <= 1.0 and doc["retrieval"]["n"] == len(cases)
    assert len(list((tmp_path / "img").glob("oldfilm_*.png"))) >= 3
