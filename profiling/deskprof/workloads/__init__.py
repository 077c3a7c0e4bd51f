"""Load generator scenarios (Locust files) that the capture runs against a target."""

from pathlib import Path

from deskprof.workloads.scenarios import SCENARIOS, Scenario, scenario

OPENDESK_LOCUSTFILE = Path(__file__).with_name("opendesk.py")
RECORDER_PLUGIN = Path(__file__).with_name("recorder_plugin.py")

__all__ = ["OPENDESK_LOCUSTFILE", "RECORDER_PLUGIN", "SCENARIOS", "Scenario", "scenario"]
