"""A FastAPI app whose own threads block inside C calls, as real servers' do (a job
runner sleeping, a listener in ``select``, a worker waiting on a lock or a socket):
py-spy shows the app function as the leaf of each, since the C call has no Python frame.
``/work`` burns CPU in Python. ``uvicorn tests.apps.idle_threads_app:app``."""

from __future__ import annotations

import select
import socket
import threading
import time

from fastapi import FastAPI

app = FastAPI()
_keep: list[socket.socket] = []  # the socket pairs stay open while the app runs


def sleeping_job() -> None:
    while True:
        time.sleep(0.5)


def selecting_listener() -> None:
    reader, writer = socket.socketpair()
    _keep.extend((reader, writer))
    while True:
        select.select([reader], [], [], 5.0)


def receiving_worker() -> None:
    reader, writer = socket.socketpair()
    _keep.extend((reader, writer))
    reader.recv(1)  # nobody writes: blocked in C for the app's life


def locked_worker() -> None:
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # never released: blocked in C


IDLE_THREADS = {
    "sleeping-job": sleeping_job,
    "selecting-listener": selecting_listener,
    "receiving-worker": receiving_worker,
    "locked-worker": locked_worker,
}
for name, target in IDLE_THREADS.items():
    threading.Thread(target=target, name=name, daemon=True).start()


@app.get("/work")
def work() -> dict[str, int]:
    total = 0
    for i in range(200_000):
        total += i * i % 7
    return {"total": total}
