"""deskprof: CPU, memory and SQL of OpenDesk, tied to the endpoint that caused them.

The public surface a notebook needs is re-exported here as it is built.
"""

from deskprof.errors import DeskprofError

__version__ = "0.1.0"
__all__ = ["DeskprofError", "__version__"]
