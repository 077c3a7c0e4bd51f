"""OpenDesk, the reference helpdesk service that deskprof profiles.

A faithful first version, planted problems included; ``opendesk.config.FIX_NAMES``
lists the switch that fixes each one.
"""

__version__ = "1.0.0"
