"""Locust scenarios for OpenDesk (a locustfile; run by ``deskprof.capturing.workload``).

The scenarios are the table in ``scenarios.py`` (``DESKPROF_SCENARIO``, default
``mixed``); the requests and their recording are ``client.py``. Closed loop: each of the
scenario's roles is a user class with think time. Open loop (``DESKPROF_RATE`` > 0): one
user sends requests at a fixed arrival rate whatever the server does, and latency counts
from the intended send time, so a stalled server cannot hide its queue (no coordinated
omission).
"""

from __future__ import annotations

import itertools
import os
import time
from typing import ClassVar

import gevent
from locust import FastHttpUser, User, between, events
from locust.env import Environment

from deskprof.workloads.client import RECORDER, OpenDeskClient, login_email
from deskprof.workloads.control import CONTROL_ENV
from deskprof.workloads.scenarios import BY_NAME, Role, Scenario

SCENARIO = os.environ.get("DESKPROF_SCENARIO", "mixed")
RATE = float(os.environ.get("DESKPROF_RATE", "0") or 0)
NO_RESPONSE_AT_END = "no response before the run ended"
STOP_GRACE_S = float(os.environ.get("DESKPROF_STOP_GRACE_S", "10"))  # = --stop-timeout
CONTROL = None  # trial windows from the experiment runner (controlled.py), when asked
if os.environ.get(CONTROL_ENV) == "1":
    from deskprof.workloads.controlled import Controller

    CONTROL = Controller.from_env()
    RECORDER.tags = CONTROL.tags


@events.init.add_listener
def _start_flusher(environment: Environment, **_kwargs) -> None:
    def loop() -> None:
        while True:
            gevent.sleep(2)
            RECORDER.flush()

    gevent.spawn(loop)
    if CONTROL is not None:
        gevent.spawn(CONTROL.loop, environment.runner.quit)


@events.quitting.add_listener
def _final_flush(**_kwargs) -> None:
    """Give requests still in flight the stop grace to answer (open-loop arrivals are not
    Locust users, so its stop timeout does not wait for them), then record the rest."""
    deadline = time.monotonic() + STOP_GRACE_S
    while RECORDER.still_waiting() and time.monotonic() < deadline:
        gevent.sleep(0.02)
    RECORDER.abandon(NO_RESPONSE_AT_END)
    RECORDER.flush()


class OpenDeskUser(OpenDeskClient, FastHttpUser):
    """Logs in as its role's kind of account when it starts."""

    abstract = True
    scenario: Scenario = BY_NAME.get(SCENARIO, BY_NAME["mixed"])

    def on_start(self) -> None:
        self.setup_client(login_email(self.login))
        self.ready()

    def ready(self) -> None:
        """Under trial control, do the setup requests now, outside every window."""
        if CONTROL is not None:
            self.prepare(self.scenario.actions())
            CONTROL.user_ready()


def _task(action: str):
    def run(user: OpenDeskUser) -> None:
        if CONTROL is not None:
            CONTROL.run_task(user, action)
        else:
            getattr(user, action)()

    run.__name__ = action
    return run


def role_class(role: Role, scenario: Scenario) -> type[User]:
    """The closed-loop Locust user class of ``role``."""
    return type(
        role.user_class,
        (OpenDeskUser,),
        {
            "__module__": __name__,
            "login": role.login,
            "scenario": scenario,
            "weight": role.weight,
            "wait_time": between(*role.wait_s),
            "tasks": {_task(action): weight for action, weight in role.actions.items()},
        },
    )


class OpenLoopBase(OpenDeskUser):
    """Sends requests at DESKPROF_RATE per second, each in its own greenlet."""

    abstract = True
    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.setup_client(login_email(self.scenario.open_login))
        self.ready()
        self.actions = list(self.scenario.open_actions)
        self.weights = list(self.scenario.open_actions.values())
        self.started = time.monotonic()
        self.epoch_at_start = time.time_ns()
        self.counter = itertools.count()

    def next_action(self):
        return getattr(self, self.rng.choices(self.actions, self.weights)[0])

    def tasks_step(self) -> None:
        if CONTROL is not None:
            CONTROL.serve_open_loop(self.next_action)
            return
        k = next(self.counter)
        due = self.started + k / RATE
        delay = due - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        intended_ns = self.epoch_at_start + int(k / RATE * 1e9)
        gevent.spawn(self.next_action(), intended_ns)

    tasks: ClassVar = [tasks_step]


def user_classes(scenario: str, rate: float) -> list[type[User]]:
    """What Locust runs for ``scenario``: the open-loop user at a rate, else one class per
    role (built for the scenario, named as the table says)."""
    if rate > 0:
        attrs = {"__module__": __name__, "scenario": BY_NAME[scenario]}
        return [type("OpenLoopUser", (OpenLoopBase,), attrs)]
    found = BY_NAME[scenario]
    return [role_class(role, found) for role in found.roles]


def _select_user_classes() -> None:
    """Locust runs every User subclass in the locustfile's namespace: only the scenario's."""
    for cls in user_classes(SCENARIO, RATE):
        globals()[cls.__name__] = cls


_select_user_classes()
