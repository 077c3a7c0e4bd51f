"""The directory ``deskprof run`` puts first on ``PYTHONPATH`` (it holds ``sitecustomize``).

A package only so that it ships with deskprof; Python never imports it by this name in
the target: it imports ``sitecustomize`` from this directory at start-up.
"""

from __future__ import annotations

import os

BOOTSTRAP_DIR = os.path.dirname(os.path.abspath(__file__))
