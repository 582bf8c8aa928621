"""Export a CCDC checkpoint (best.pt/last.pt) to an engine folder: weights.pt, ONNX graphs, manifest.json.

Usage: python tools/export_ccdc.py runs/ccdc/best.pt engines/ccdc [--info extra.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamfuse.train.export import export_checkpoint


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoint")
    p.add_argument("out_dir")
    p.add_argument("--info", help="JSON file merged into the manifest (data, command, metrics, ...)")
    args = p.parse_args()
    info = json.loads(Path(args.info).read_text()) if args.info else None
    manifest = export_checkpoint(args.checkpoint, args.out_dir, info)
    print(f"exported {args.checkpoint} -> {args.out_dir} ({manifest['params']} parameters)")


if __name__ == "__main__":
    main()
