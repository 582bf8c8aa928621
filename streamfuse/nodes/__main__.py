"""``python -m streamfuse.nodes ROLE``: one node of a run, as the launcher spawns it (not a user command).

The launcher hands over the run's config already validated (``nodes.handoff``), so nothing is parsed twice.
Stats and the summary go to stdout as JSON lines; a user error ends the node with one line on stderr and exit
status 2 (which the launcher does not retry); any other failure prints its traceback and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

USER_ERROR_EXIT = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m streamfuse.nodes", description=__doc__.splitlines()[0])
    p.add_argument("role", choices=["capture", "fuse", "encode"])
    p.add_argument("--config", required=True, help="the run's config as written by streamfuse.nodes.handoff")
    p.add_argument("--run-dir", required=True, help="folder of the run's default ipc endpoints")
    p.add_argument("--name", help="capture: the camera")
    p.add_argument("--frames", type=int, help="capture: stop after this many frames")
    p.add_argument("--epoch-ns", type=int, help="capture, live mode: wall-clock ns of frame time 0")
    p.add_argument("--rig-file", help="the rig.yaml this run came from (shown in ps; not read)")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def run_role(args: argparse.Namespace) -> dict:
    """Run the node ``args.role`` on the handed-over config until it is done."""
    from streamfuse.nodes.handoff import read_config

    cfg = read_config(args.config)
    if args.role == "capture":
        from streamfuse.nodes.capture import run_capture_node

        return run_capture_node(cfg, args.name, args.run_dir, args.frames, args.epoch_ns)
    if args.role == "fuse":
        from streamfuse.nodes.fuse import run_fuse_node

        return run_fuse_node(cfg, args.run_dir)
    from streamfuse.nodes.encode import run_encode_node

    return run_encode_node(cfg, args.run_dir)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    from streamfuse.errors import USER_ERRORS

    try:
        run_role(args)
    except USER_ERRORS as exc:
        print(f"streamfuse node {args.role}: error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT
    # Done: a stop request that arrives now (the launcher stopping what is upstream of a finished node) must not
    # kill the interpreter while it exits, which Python's default SIGINT would do (exit status -2).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
