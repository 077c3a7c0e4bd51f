"""``python -m deskprof``: the same command as the ``deskprof`` script."""

import sys

from deskprof.cli import main

sys.exit(main())
