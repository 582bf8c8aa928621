"""What ``streamfuse eval`` does, as one library call: run, print the table, write JSON, images and plot."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from streamfuse.evaluation.images import ImageSaver
from streamfuse.evaluation.plot import plot_chroma_psnr
from streamfuse.evaluation.report import markdown_table, results_document, summarize, write_json
from streamfuse.evaluation.runner import EvalConfig, run_eval


def evaluate(
    cfg: EvalConfig,
    json_path: str | Path | None = None,
    images_dir: str | Path | None = None,
    plot_path: str | Path | None = None,
    command: str = "",
    out: TextIO | None = None,
    progress: TextIO | None = None,
) -> dict:
    """Run the protocols, print the markdown table of means, and write the requested files; returns the document.

    The table goes to ``out`` (default stdout) and one progress line per dataset and scale to ``progress``
    (default stderr).
    """
    out = out if out is not None else sys.stdout
    progress = progress if progress is not None else sys.stderr
    if cfg.protocols == ("oldfilm",):
        from streamfuse.evaluation.oldfilm import evaluate_oldfilm

        methods = None if cfg.engines == EvalConfig().engines else cfg.engines
        return evaluate_oldfilm(
            methods, cfg.data, json_path, images_dir, cfg.quick, True, cfg.engine_options, command, out
        )
    if cfg.protocols == ("scsr",):
        from streamfuse.evaluation.scsr import DEFAULT_METHODS, SCALES, evaluate_scsr

        methods = DEFAULT_METHODS if cfg.engines == EvalConfig().engines else cfg.engines
        scales = SCALES if cfg.scales == EvalConfig().scales else cfg.scales
        return evaluate_scsr(methods, cfg.data, scales, cfg.quick, cfg.engine_options, json_path, images_dir, command)
    if cfg.protocols == ("nir",):
        from streamfuse.evaluation.nir import DEFAULT_ENGINES, evaluate_nir

        engines = DEFAULT_ENGINES if cfg.engines == EvalConfig().engines else cfg.engines
        return evaluate_nir(
            engines, cfg.data, cfg.quick, json_path, images_dir, cfg.engine_options, command, out, progress
        )
    saver = ImageSaver(images_dir) if images_dir is not None else None
    seen: dict[tuple, int] = {}
    start = time.perf_counter()

    def on_result(case, record, image):
        if saver is not None:
            saver(case, record, image)
        key = (case.dataset, case.scale)
        if progress is not None and key not in seen:
            seen[key] = 1
            print(
                f"[{time.perf_counter() - start:6.1f}s] {case.protocol} {case.dataset} x{case.scale:g}",
                file=progress,
                flush=True,
            )

    records = run_eval(cfg, on_result=on_result)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    document = results_document(records, command, settings)
    document["seconds"] = round(time.perf_counter() - start, 1)
    print(markdown_table(summarize(records)), file=out)
    print(f"{len(records)} results in {document['seconds']} s", file=out)
    if json_path is not None:
        write_json(json_path, document)
        print(f"wrote {json_path}", file=out)
    if plot_path is None and json_path is not None:
        plot_path = Path(json_path).with_suffix(".png")
    if plot_path is not None and records:
        try:
            print(f"wrote {plot_chroma_psnr(document['records'], plot_path)}", file=out)
        except ImportError:
            print("plot skipped: matplotlib is not installed (pip install 'streamfuse[eval]')", file=out)
    if saver is not None:
        print(f"wrote {len(saver.written)} side-by-side images to {images_dir}", file=out)
    return document
