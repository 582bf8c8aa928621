"""Export a trained dual-lens network to ONNX and write its engine folder (manifest, weights, graph).

Usage:
    python tools/export_duallens.py --train /tmp/dl/duallens --config duallens --out engines/duallens

The graph has dynamic height and width (multiples of the manifest's ``pad_multiple``); the disparity range
is the config's ``max_disp`` (candidates are unrolled into the graph). ONNX Runtime and torch must agree
within ``PARITY_TOL`` on a random input, or the export fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from streamfuse.models.duallens_arch import CONFIGS, build_model, pad_multiple
from streamfuse.runtime.factory import create_executor

PARITY_TOL = 2e-3  # max |torch − ORT| on CbCr in [0, 1] (= 0.5 of one 8-bit level)
OPSET = 17


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs(net: torch.nn.Module, h: int, w: int, g: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    inputs = {"y": torch.rand(1, 1, h, w, generator=g), "ref": torch.rand(1, 3, h, w, generator=g)}
    if net.candidate:
        inputs["cand"] = torch.rand(1, 2, h, w, generator=g)
    return inputs


def export(net: torch.nn.Module, path: Path, h: int = 64, w: int = 96) -> None:
    """Write the ONNX graph: inputs y (1,1,H,W), ref (1,3,H,W) [, cand (1,2,H,W)], output cbcr (1,2,H,W)."""
    net.eval()
    inputs = _inputs(net, h, w)
    dyn = {2: "height", 3: "width"}
    torch.onnx.export(
        net,
        tuple(inputs.values()),
        str(path),
        input_names=list(inputs),
        output_names=["cbcr"],
        dynamic_axes={**{k: dyn for k in inputs}, "cbcr": dyn},
        opset_version=OPSET,
        dynamo=False,
    )


def parity(net: torch.nn.Module, onnx_path: Path, h: int, w: int, seed: int = 0) -> float:
    """Max |torch − ONNX Runtime| on one random input of size (h, w)."""
    inputs = _inputs(net, h, w, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = net(*inputs.values()).numpy()
    got = create_executor(onnx_path).run({k: v.numpy() for k, v in inputs.items()})["cbcr"]
    return float(np.abs(want - got).max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, help="training folder with weights.pt and train.json")
    ap.add_argument("--config", default="duallens", choices=sorted(CONFIGS))
    ap.add_argument("--out", required=True, help="engine folder to write (e.g. engines/duallens)")
    ap.add_argument("--metrics", help="optional JSON file of evaluation results to record in the manifest")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    train_dir, out = Path(args.train), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    training = json.loads((train_dir / "train.json").read_text())
    arch = dict(training.get("arch") or CONFIGS[args.config])  # the architecture the weights were trained with
    net = build_model(arch)
    net.load_state_dict(torch.load(train_dir / "weights.pt", map_location="cpu"))
    net.eval()
    shutil.copyfile(train_dir / "weights.pt", out / "weights.pt")
    onnx_path = out / f"{args.config}.onnx"
    export(net, onnx_path)
    m = pad_multiple(arch)
    err = max(parity(net, onnx_path, 2 * m, 3 * m), parity(net, onnx_path, 3 * m, 2 * m, seed=1))
    if err > PARITY_TOL:
        print(f"ONNX parity failed: max |torch - ORT| = {err:.2e} > {PARITY_TOL:.0e}", file=sys.stderr)
        return 1
    manifest = {
        "engine": args.config,
        "paper": "duallens-mono-color-colorization.md (Dong et al., AAAI 2019)",
        "arch": arch,
        "pad_multiple": m,
        "inputs": {
            "y": "mono luma (1,1,H,W) in [0,1]",
            "ref": "reference YCbCr at the mono size (1,3,H,W) in [0,1]",
            **({"cand": "guided-engine CbCr (1,2,H,W) in [0,1]"} if arch.get("candidate") else {}),
        },
        "outputs": {"cbcr": "chroma (1,2,H,W) in [0,1]"},
        "weights": "weights.pt",
        "onnx": onnx_path.name,
        "sha256": {"weights.pt": sha256(out / "weights.pt"), onnx_path.name: sha256(onnx_path)},
        "onnx_parity_max_abs": err,
        "opset": OPSET,
        "training": training,
    }
    if args.metrics:
        manifest["metrics"] = json.loads(Path(args.metrics).read_text())
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {out} (parity {err:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
