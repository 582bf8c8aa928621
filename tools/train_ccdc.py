"""Train a CCDC model: the same as `streamfuse train ccdc --config CONFIG [--resume] [--export DIR]`."""

from __future__ import annotations

import sys

from streamfuse.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "ccdc", *sys.argv[1:]]))
