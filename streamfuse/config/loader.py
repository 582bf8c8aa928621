"""rig.yaml -> validated RigConfig. Every error names the file, the line and the key, and nothing starts."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml

from streamfuse.config.schema import RigConfig
from streamfuse.errors import ConfigError
from streamfuse.size import parse_size


def load_config(path: str | Path) -> RigConfig:
    """Load and validate a rig.yaml file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        text = p.read_text()
        node = yaml.compose(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if node is None:
        raise ConfigError(f"{p}: the file is empty; see configs/demo.yaml for an example")
    _refuse_training_config(node, p)
    conv = _Converter(p)
    cfg = conv.convert(node, RigConfig, "")
    cfg.source_file = str(p)
    cfg.key_lines = conv.lines
    check_rig(cfg, p)
    run_prelaunch_checks(cfg)
    return cfg


def load_yaml_dataclass(path: str | Path, cls: type) -> Any:
    """Load any schema dataclass (e.g. a batch jobs file) from YAML with the rig rules: file:line: key errors,
    unknown keys refused, paths resolved against the file's folder and checked."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"file not found: {p}")
    try:
        node = yaml.compose(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if node is None:
        raise ConfigError(f"{p}: the file is empty")
    return _Converter(p).convert(node, cls, "")


def config_from_dict(
    data: dict, base_dir: str | Path = ".", name: str = "<dict>", prelaunch: bool = False
) -> RigConfig:
    """Validate a plain dict (built in code) with the same rules as a YAML file; ``prelaunch`` adds the media checks."""
    node = yaml.compose(yaml.safe_dump(data, sort_keys=False))
    conv = _Converter(Path(base_dir) / name)
    cfg = conv.convert(node, RigConfig, "")
    cfg.source_file = name
    check_rig(cfg, Path(name))
    if prelaunch:
        run_prelaunch_checks(cfg)
    return cfg


# Checks that need more than the config itself (engines, media files, encoders) live in the layers that know those
# things and register here (streamfuse.preflight), so config/ imports nothing above it. load_config runs them all:
# every error names file:line: key, and nothing starts.
PrelaunchCheck = Callable[[RigConfig], None]
_PRELAUNCH_CHECKS: list[PrelaunchCheck] = []


def register_prelaunch_check(check: PrelaunchCheck) -> PrelaunchCheck:
    """Add a check that load_config runs after the schema checks; it raises ConfigError (see :func:`key_error`)."""
    if check not in _PRELAUNCH_CHECKS:
        _PRELAUNCH_CHECKS.append(check)
    return check


def run_prelaunch_checks(cfg: RigConfig) -> None:
    """Run every registered pre-launch check on a validated config."""
    for check in _PRELAUNCH_CHECKS:
        check(cfg)


def key_error(cfg: RigConfig, key: str, problem: str) -> ConfigError:
    """A ConfigError in the loader's form, ``file:line: key 'a.b' problem``, with the line of the nearest key known."""
    line, probe = None, key
    while probe and line is None:
        line = cfg.key_lines.get(probe)
        probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]
    where = f"{cfg.source_file}:{line}:" if line else f"{cfg.source_file}:"
    return ConfigError(f"{where} key '{key}' {problem}")


TRAINING_KEYS = {"model", "epochs", "steps_per_epoch", "lr", "batch"}


def _refuse_training_config(node: yaml.Node, path: Path) -> None:
    """A training YAML handed to `run` gets told what it is, instead of 'unknown key'."""
    if not isinstance(node, yaml.MappingNode):
        return
    keys = {k.value: k for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    found = sorted(TRAINING_KEYS & set(keys))
    if "cameras" not in keys and len(found) >= 2:
        first = min((keys[k] for k in found), key=lambda n: n.start_mark.line)
        raise ConfigError(
            f"{path}:{first.start_mark.line + 1}: key '{first.value}' this is a training config (it has "
            f"{', '.join(found)}), not a rig config; use `streamfuse train <engine> --config {path}`, "
            "or give `run` a rig YAML such as configs/demo.yaml"
        )


class _Converter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        self.lines: dict[str, int] = {}  # key path -> line, for checks made after conversion

    def fail(self, node: yaml.Node, key: str, problem: str) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else "?"
        where = f" key '{key}'" if key else ""
        return ConfigError(f"{self.path}:{line}:{where} {problem}")

    def convert(self, node: yaml.Node, tp: Any, key: str, meta: dict | None = None) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if _is_null(node) and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.convert(node, inner[0], key, meta)
        if dataclasses.is_dataclass(tp):
            return self.dataclass(node, tp, key)
        if origin is Literal:
            value = self.scalar(node, str, key)
            if value not in args:
                raise self.fail(node, key, f"must be one of {', '.join(map(str, args))}, got {value!r}")
            return value
        if origin is list:
            if not isinstance(node, yaml.SequenceNode):
                raise self.fail(node, key, "must be a list")
            return [self.convert(n, args[0], f"{key}[{i}]") for i, n in enumerate(node.value)]
        if origin is dict:
            if not isinstance(node, yaml.MappingNode):
                raise self.fail(node, key, "must be a mapping")
            out = {}
            for k_node, v_node in node.value:
                k = self.scalar(k_node, str, key)
                self.lines[_join(key, k)] = k_node.start_mark.line + 1
                out[k] = self.any(v_node) if args[1] is object else self.convert(v_node, args[1], _join(key, k))
            return out
        if origin is tuple:
            if key.endswith("size") or args == (int, int) and isinstance(node, yaml.ScalarNode):
                return self.size(node, key)
            if not isinstance(node, yaml.SequenceNode) or len(node.value) != len(args):
                raise self.fail(node, key, f"must be a list of {len(args)} numbers")
            return tuple(self.convert(n, a, key) for n, a in zip(node.value, args, strict=True))
        value = self.scalar(node, tp, key)
        if meta and "path" in meta and value is not None:
            value = self.path_value(node, key, value, meta["path"])
        return value

    def dataclass(self, node: yaml.Node, cls: type, key: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, f"must be a mapping ({cls.__doc__.splitlines()[0]})")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        values: dict[str, Any] = {}
        for k_node, v_node in node.value:
            name = self.scalar(k_node, str, key)
            self.lines[_join(key, name)] = k_node.start_mark.line + 1
            if name not in fields:
                raise self.fail(k_node, _join(key, name), f"unknown key; allowed here: {', '.join(fields)}")
            values[name] = self.convert(v_node, hints[name], _join(key, name), dict(fields[name].metadata))
        for name, f in fields.items():
            if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise self.fail(node, _join(key, name), "is required but missing")
        return cls(**values)

    def scalar(self, node: yaml.Node, tp: type, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(
                node,
                key,
                f"must be a {tp.__name__}, not a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}",
            )
        value = yaml.safe_load(node.value) if node.style is None else node.value
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if tp is str and node.style is None and not isinstance(value, str):
            value = node.value  # unquoted 0 or 1.5 given for a string field: keep the text
        if not isinstance(value, tp) or (tp in (int, float) and isinstance(value, bool)):
            raise self.fail(node, key, f"must be a {tp.__name__}, got {node.value!r}")
        return value

    def size(self, node: yaml.Node, key: str) -> tuple[int, int]:
        text = self.scalar(node, str, key)
        try:
            return parse_size(text)
        except ValueError:
            raise self.fail(node, key, f"must look like 768x576, got {text!r}") from None

    def path_value(self, node: yaml.Node, key: str, value: str, kind: str) -> str:
        p = Path(value).expanduser()
        if not p.is_absolute():
            p = self.base / p
        if kind == "file" and not p.is_file() or kind == "any" and not p.exists():
            raise self.fail(node, key, f"file not found: {p}")
        return str(p)

    def any(self, node: yaml.Node) -> Any:
        return yaml.safe_load(yaml.serialize(node))


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def check_rig(cfg: RigConfig, path: Path) -> None:
    """Cross-field rules that the types alone cannot express."""
    monos = cfg.mono_cameras
    if not monos:
        raise ConfigError(f"{path}: key 'cameras' needs at least one camera with role: mono (or nir)")
    if not cfg.color_cameras and set(monos) - set(cfg.nir_cameras):
        raise ConfigError(f"{path}: key 'cameras' needs a camera with role: color as the mono camera's reference")
    _check_array(cfg, path, monos)
    for name, cam in cfg.cameras.items():
        key = f"cameras.{name}"
        if cam.source == "synthetic" and cfg.synthetic is None:
            raise ConfigError(f"{path}: key '{key}.source' is synthetic but the config has no 'synthetic' section")
        need = {"file": "path", "v4l2": "device", "rtsp": "url"}.get(cam.source)
        if need and getattr(cam, need) is None:
            raise ConfigError(f"{path}: key '{key}.{need}' is required for source: {cam.source}")
        if cam.fps <= 0:
            raise ConfigError(f"{path}: key '{key}.fps' must be > 0")
    if cfg.synthetic is not None:
        s = cfg.synthetic
        if s.scale < 1:
            raise ConfigError(f"{path}: key 'synthetic.scale' must be >= 1, got {s.scale}")
        if not 0 < s.color_fps_ratio <= 1:
            raise ConfigError(f"{path}: key 'synthetic.color_fps_ratio' must be in (0, 1], got {s.color_fps_ratio}")
        if s.parallax.drift_period_s <= 0:
            raise ConfigError(f"{path}: key 'synthetic.parallax.drift_period_s' must be > 0")
        if s.parallax.homography is not None and (
            len(s.parallax.homography) != 3 or any(len(r) != 3 for r in s.parallax.homography)
        ):
            raise ConfigError(f"{path}: key 'synthetic.parallax.homography' must be a 3x3 matrix")
    for link in cfg.endpoints:
        if link not in cfg.cameras and link != "output":
            raise ConfigError(f"{path}: key 'endpoints.{link}' names no camera; use a camera name or 'output'")
    if not cfg.outputs:
        raise ConfigError(f"{path}: key 'outputs' is empty; add at least one, e.g. - path: out/video.mp4")
    for i, out in enumerate(cfg.outputs):
        if Path(out.path).suffix.lower() not in (".mp4", ".mkv", ".mov"):
            raise ConfigError(f"{path}: key 'outputs[{i}].path' must end in .mp4, .mkv or .mov")
        if out.keyframe_s <= 0:
            raise ConfigError(f"{path}: key 'outputs[{i}].keyframe_s' must be > 0")
    if cfg.sync.max_reference_age_ms <= 0 or cfg.sync.tolerance_ms < 0:
        raise ConfigError(f"{path}: key 'sync' needs max_reference_age_ms > 0 and tolerance_ms >= 0")


def _check_array(cfg: RigConfig, path: Path, monos: list[str]) -> None:
    """Camera arrays: every mono camera gets a colour partner (named, or the nearest by position), and every
    output names a mono camera. The chosen partner is written into the config, so every node sees the same pairs."""
    colours = cfg.color_cameras
    for name in monos:
        cam = cfg.cameras[name]
        if not colours:  # an NIR camera alone (night): no partner, the engine's learned prior
            continue
        if cam.partner is not None:
            if cam.partner not in colours:
                raise ConfigError(
                    f"{path}: key 'cameras.{name}.partner' must name a color camera ({', '.join(colours)}), "
                    f"got {cam.partner!r}"
                )
            continue
        placed = [c for c in colours if cfg.cameras[c].position is not None]
        if len(colours) > 1 and (cam.position is None or len(placed) < len(colours)):
            raise ConfigError(
                f"{path}: key 'cameras.{name}.partner' is needed: the rig has {len(colours)} colour cameras; name one, "
                "or give every camera a position so the nearest is chosen"
            )
        if len(colours) == 1:
            cam.partner = colours[0]
        else:
            cam.partner = min(placed, key=lambda c: math.dist(cfg.cameras[c].position, cam.position))
    for i, out in enumerate(cfg.outputs):
        if out.camera is not None and out.camera not in monos:
            raise ConfigError(
                f"{path}: key 'outputs[{i}].camera' must name a mono camera ({', '.join(monos)}), got {out.camera!r}"
            )
        if out.camera is None and not out.mosaic:
            out.camera = monos[0]


def dump_config(cfg: RigConfig, path: str | Path) -> None:
    """Write a config back to YAML (used to hand a config built in code to node processes)."""

    def plain(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: plain(v, k) for k, v in value.items() if k not in ("source_file", "key_lines")}
        if isinstance(value, (list, tuple)):
            if key == "size" and len(value) == 2:
                return f"{value[0]}x{value[1]}"
            return [plain(v) for v in value]
        return value

    Path(path).write_text(yaml.safe_dump(plain(dataclasses.asdict(cfg)), sort_keys=False))
