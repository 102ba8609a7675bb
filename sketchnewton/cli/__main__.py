"""``python -m sketchnewton.cli`` (as ``python -m sketchnewton``)."""

import sys

from . import main

sys.exit(main())
