"""A locustfile: managers exporting the ticket list as CSV in a closed loop.

Each simulated manager logs in once (``admin1@opendesk.test``), then exports
``EXPORT_PATH`` every ``WAIT_S`` seconds, each request named ``NAME`` and carrying an
``X-Request-ID`` so the probe's SQL joins the measured requests. Usable as it is
(``deskprof capture --workload profiling/deskprof/workloads/export_locustfile.py``);
:func:`deskprof.lab.export_locustfile` writes a copy with other settings (the three
assignments below are replaced, so keep each on one line).
"""

import uuid

from locust import HttpUser, constant, task

EXPORT_PATH = "/tickets/export.csv"
NAME = "GET /tickets/export.csv"
WAIT_S = 0.2


class Manager(HttpUser):
    wait_time = constant(WAIT_S)

    def on_start(self) -> None:
        login = {"email": "admin1@opendesk.test", "password": "opendesk"}
        token = self.client.post("/auth/login", json=login, name="POST /auth/login")
        self.client.headers["Authorization"] = "Bearer " + token.json()["token"]

    @task
    def export(self) -> None:
        headers = {"X-Request-ID": uuid.uuid4().hex}
        self.client.get(EXPORT_PATH, name=NAME, headers=headers)
