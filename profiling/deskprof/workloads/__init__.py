"""Load generator scenarios (Locust files) that the capture runs against a target."""

from pathlib import Path

OPENDESK_LOCUSTFILE = Path(__file__).with_name("opendesk.py")
RECORDER_PLUGIN = Path(__file__).with_name("recorder_plugin.py")
SCENARIOS = ("mixed", "agent", "customer", "manager", "ticket_list")
