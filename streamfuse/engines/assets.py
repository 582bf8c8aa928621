"""Shipped engine assets: where they live, and the one :class:`EngineManifest` every learned engine is loaded from.

An engine folder holds ``manifest.json``, the ONNX graph(s) and ``weights.pt``. ``streamfuse.train.export``
writes it; :func:`load_engine_manifest` reads it back and verifies the sha256 of every file it names, so a
truncated download, a hand-edited graph or a stale copy fails at load time with one line naming the file.

Example:
    >>> manifest, folder = load_engine_manifest("ccdc")  # doctest: +SKIP
    >>> folder / manifest.graphs["model"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamfuse.checksum import sha256_file
from streamfuse.engines.base import EngineError

MANIFEST = "manifest.json"
SCHEMA = 2  # version of the manifest layout; 1 was the per-engine layouts before EngineManifest


def engines_dir() -> Path:
    """Folder of the shipped engine assets: the installed ``streamfuse_engines`` package or the repo's engines/."""
    try:
        import streamfuse_engines

        return Path(streamfuse_engines.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parents[2] / "engines"


@dataclass(kw_only=True)
class TrainingRun:
    """How an engine was trained: what the training loop hands the export, kept in the manifest."""

    command: str = ""
    """The command that trained and exported it."""
    train_config: dict[str, Any] = field(default_factory=dict)
    """Every training config value (the YAML after defaults), and ``config_file``."""
    epochs: int = 0
    minutes: float = 0.0
    """Training time, summed over resumed sessions."""
    device: str = "cpu"
    validation: dict[str, float] = field(default_factory=dict)
    """Validation metrics of the exported checkpoint on the held-aside split, and its ``epoch``."""
    data: dict[str, Any] = field(default_factory=dict)
    """The training data's manifest: sources, synthesis options, held-aside split."""


@dataclass(kw_only=True)
class EngineManifest(TrainingRun):
    """What an exported learned engine is: its network, its files and how it was made (plus its TrainingRun).

    Written by ``streamfuse.train.export.export_engine``; read by :func:`load_engine_manifest`.
    """

    engine: str
    """Engine family that trained it (the ``streamfuse train ENGINE`` name), e.g. ``ccdc``."""
    arch: dict[str, Any]
    """Architecture config: rebuilds the torch module with the family's ``build_model(arch)``."""
    graphs: dict[str, str]
    """ONNX graph per role (``{"model": "model.onnx"}``; ``"reference"`` for a per-reference graph)."""
    pad_multiple: int
    """Height and width fed to the graphs must be multiples of this."""
    sha256: dict[str, str]
    """Hex sha256 of every file in the folder that the engine reads (graphs and weights)."""
    weights: str = "weights.pt"
    """The torch weights (``{"model": state_dict, "arch": arch}``), for the torch backend and fine-tuning."""
    classical_stage: dict[str, Any] | None = None
    """Settings of the classical stage the network was trained on (e.g. the ``guided`` alignment), if any."""
    options: dict[str, Any] = field(default_factory=dict)
    """Engine defaults chosen after training (e.g. ccdc's ``detail``)."""
    params: int = 0
    opset: int = 0
    parity: dict[str, float] = field(default_factory=dict)
    """ONNX Runtime vs torch per graph: largest difference in 8-bit output levels (the export gate is <= 1)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Benchmark results measured after export (``streamfuse eval``), with their command."""
    tensorrt: dict[str, Any] = field(default_factory=dict)
    """Hints for TensorRT shape profiles (``input_scales``), read by ``streamfuse.runtime.trt_manifest``."""
    notes: dict[str, Any] = field(default_factory=dict)
    """Free-form history (selection decisions, earlier runs)."""
    schema: int = SCHEMA

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/manifest.json``."""
        path = Path(folder) / MANIFEST
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str | Path = MANIFEST) -> EngineManifest:
        """Build from parsed JSON; an old or unknown layout is an error naming the file and the fix."""
        names = {f.name for f in dataclasses.fields(cls)}
        if raw.get("schema") != SCHEMA:
            raise EngineError(
                f"{source}: manifest schema {raw.get('schema', 1)} is not {SCHEMA}; re-export the engine "
                "with `streamfuse train ENGINE --config FILE --resume --export DIR`"
            )
        unknown = sorted(set(raw) - names)
        if unknown:
            raise EngineError(f"{source}: unknown manifest key(s) {', '.join(unknown)}")
        try:
            return cls(**raw)
        except TypeError as exc:
            raise EngineError(f"{source}: incomplete manifest ({exc})") from exc

    def files(self) -> list[str]:
        """Every file the engine reads: its graphs and its weights."""
        return list(dict.fromkeys([*self.graphs.values(), *([self.weights] if self.weights else [])]))

    def reexport_hint(self, folder: Path) -> str:
        """How to rebuild this folder: the run's config re-exported from its checkpoint."""
        config = self.train_config.get("config_file") or "FILE"
        return f"re-export it with `streamfuse train {self.engine} --config {config} --resume --export {folder}`"

    def verify(self, folder: str | Path) -> None:
        """Check that every engine file exists and matches its recorded sha256.

        Raises:
            EngineError: one line naming the first missing or mismatching file and how to re-export it.
        """
        folder = Path(folder)
        for name in self.files():
            path = folder / name
            expected = self.sha256.get(name)
            if expected is None:
                raise EngineError(f"{path}: no sha256 recorded in {folder / MANIFEST}; {self.reexport_hint(folder)}")
            if not path.is_file():
                raise EngineError(f"{path}: file missing; {self.reexport_hint(folder)}")
            actual = sha256_file(path)
            if actual != expected:
                raise EngineError(
                    f"{path}: sha256 {actual[:12]}… does not match the manifest's {expected[:12]}… "
                    f"(corrupt or replaced); {self.reexport_hint(folder)}"
                )


def engine_folder(model: str | Path) -> Path:
    """A shipped model name (folder under engines/) or a folder path -> the folder."""
    return Path(model) if Path(model).is_dir() else engines_dir() / str(model)


def load_engine_manifest(model: str | Path, engine: str | None = None) -> tuple[EngineManifest, Path]:
    """Read and verify ``<model>/manifest.json``; return the manifest and its folder.

    Args:
        model: a shipped model name (folder under engines/) or a folder path.
        engine: the family the caller runs (e.g. ``"ccdc"``); a manifest of another family is an error.

    Raises:
        EngineError: no manifest, an unreadable or old one, another family's, or a missing/corrupt file.
    """
    folder = engine_folder(model)
    path = folder / MANIFEST
    if not path.is_file():
        how = f"`streamfuse train {engine} --config FILE --export {folder}`" if engine else "`streamfuse train`"
        raise EngineError(
            f"no model at {folder} ({MANIFEST} missing); train one with {how}, "
            "or reinstall streamfuse to get the shipped weights"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read {path}: {exc}") from exc
    manifest = EngineManifest.from_dict(raw, path)
    if engine is not None and manifest.engine != engine:
        raise EngineError(f"{path}: a {manifest.engine!r} model, not a {engine!r} one; load it with that engine")
    manifest.verify(folder)
    return manifest, folder
