"""Dataset manifests: what a dataset folder holds, where every piece came from, and how it was made.

Every dataset maker (synthetic sequences, real-video clips, stereo, ...) writes one ``manifest.json`` with
``write_manifest``, which refuses benchmark sources, so a trainer can name its data and a test can prove that
no benchmark file or package stereo pair was ever trained on.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from streamfuse.data.benchmark import BENCHMARK_EXCLUDE, DataError, check_not_benchmark

MANIFEST_NAME = "manifest.json"


@dataclass
class DatasetManifest:
    """A dataset folder's manifest.json.

    ``sequences`` lists the stored items (one dict per file, with at least ``file`` and ``split``); ``sources``
    names every still, video or clip the items were made from; ``counts`` holds sizes such as clips and frames.
    """

    kind: str = "synthetic-video"  # synthetic-video, real-clips, stereo, ...
    sequences: list[dict] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    seed: int = 0
    exclusion_list: list[str] = field(default_factory=lambda: list(BENCHMARK_EXCLUDE))
    seconds: float = 0.0
    counts: dict = field(default_factory=dict)
    command: str = ""
    created: str = ""


def write_manifest(folder: str | Path, manifest: DatasetManifest) -> Path:
    """Write ``folder/manifest.json``; raises DataError (and writes nothing) if a source is benchmark data."""
    check_not_benchmark(manifest.sources)
    check_not_benchmark(str(item.get("source", "")) for item in manifest.sequences)
    if not manifest.created:
        manifest.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if not manifest.command:
        manifest.command = " ".join(sys.argv)
    path = Path(folder) / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(manifest), indent=1) + "\n")
    return path


def load_manifest(folder: str | Path, hint: str = "") -> DatasetManifest:
    """Read a dataset folder's manifest.json (older manifests without ``kind`` read as synthetic video)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{path} not found; {hint or f'create the dataset with `streamfuse synth --out {folder}`'}")
    raw = json.loads(path.read_text())
    known = {f.name for f in fields(DatasetManifest)}
    return DatasetManifest(**{k: v for k, v in raw.items() if k in known})
