"""Start-up hook of processes run by ``deskprof run`` (this directory is first on PYTHONPATH).

Python's ``site`` imports the first ``sitecustomize`` on the path at every interpreter
start, including uvicorn's spawned workers, which inherit PYTHONPATH. This one registers
the probe's import hooks (``deskprof.probe.autoinstrument``), then runs the
``sitecustomize`` it shadows, if there is one, so the environment's own start-up code
still runs. Nothing here may stop the target from starting: problems are one line on
stderr.
"""

import importlib
import os
import sys

_HERE = os.path.dirname(os.path.realpath(__file__))


def _start_probe() -> None:
    try:
        from deskprof.probe import autoinstrument
    except ImportError:
        # the target's interpreter does not have deskprof: use the copy deskprof run named
        extra = os.environ.get("DESKPROF_PROBE_PKG_PATH")
        if not extra:
            raise
        sys.path.append(extra)
        from deskprof.probe import autoinstrument
    autoinstrument.bootstrap()


def _chain() -> None:
    """Import the next ``sitecustomize`` on the path (the one this file shadows)."""
    mine = sys.modules.pop("sitecustomize", None)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]
    try:
        importlib.import_module("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
        if mine is not None:  # there was none to chain to: this one stays the module
            sys.modules["sitecustomize"] = mine
    finally:
        sys.path[:] = saved


try:
    _start_probe()
except Exception as _exc:
    print(f"deskprof probe: not started in pid {os.getpid()}: {_exc!r}", file=sys.stderr)

try:
    _chain()
except Exception as _exc:
    print(f"deskprof probe: the shadowed sitecustomize failed: {_exc!r}", file=sys.stderr)
