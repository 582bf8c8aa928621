"""The ``streamfuse`` command line: thin wrappers over library calls, one ``_add_*`` + ``_cmd_*`` pair per command.

Every command that fails on user input prints one line naming the problem and the fix, and exits non-zero.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

log = logging.getLogger("streamfuse")


class UserError(Exception):
    """An error caused by user input: printed as one line, exit status 2."""


def _parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' into (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 768x576, got {text!r}") from exc
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def _engine_options(pairs: list[str]) -> dict:
    """Parse repeated ``--opt key=value`` into engine options (values parsed as YAML scalars)."""
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--opt expects key=value, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


# --- colorize -------------------------------------------------------------------------------------------


def _add_colorize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("colorize", help="colorize one mono image with one colour reference image")
    p.add_argument("--engine", default="guided", help="engine registry name (default: guided)")
    p.add_argument("--mono", required=True, help="mono image (any format OpenCV reads; colour is converted to luma)")
    p.add_argument("--ref", required=True, help="colour reference image (may be smaller than the mono image)")
    p.add_argument("-o", "--output", required=True, help="output image path")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="engine option (repeatable)")
    p.set_defaults(func=_cmd_colorize)


def _cmd_colorize(args: argparse.Namespace) -> int:
    from streamfuse.engines import load_engine
    from streamfuse.imageio import read_gray, read_rgb, write_rgb

    engine = load_engine(args.engine, **_engine_options(args.opt))
    mono = read_gray(args.mono)
    ref = read_rgb(args.ref)
    out = engine.colorize(mono, engine.prepare_reference(ref))
    write_rgb(args.output, out)
    print(f"wrote {args.output} ({out.shape[1]}x{out.shape[0]}, engine {args.engine})")
    return 0


# --- registry of commands -------------------------------------------------------------------------------

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_colorize,
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to generate the command docs)."""
    parser = argparse.ArgumentParser(
        prog="streamfuse", description="Fuse a high-resolution mono camera with a low-resolution colour camera."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamfuse`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    from streamfuse.errors import USER_ERRORS

    try:
        return int(args.func(args) or 0)
    except (UserError, *USER_ERRORS) as exc:
        print(f"streamfuse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
