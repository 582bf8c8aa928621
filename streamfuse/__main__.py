"""``python -m streamfuse`` runs the command line."""

import sys

from streamfuse.cli import main

sys.exit(main())
