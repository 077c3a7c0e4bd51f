"""A live PostgreSQL log, read back and joined to the probe's requests.

Starts a private cluster from the installed server binaries (logging every statement to
csvlog and jsonlog), sends OpenDesk traffic through it with the probe's sqlcommenter on,
and checks the log agrees with what the probe recorded in-process.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from deskprof.analysis.attribution import add_endpoint
from deskprof.analysis.pglog import read_pglog
from deskprof.probe.reader import read_probe_dir
from tests.fixtures.pglog.make_fixture import drive_opendesk, missing_reason, private_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_live_log_joins_to_probe_requests(tmp_path: Path, redis_url: str) -> None:
    with private_cluster() as cluster:
        sent = drive_opendesk(cluster.url(), redis_url, tmp_path / "probe")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (cluster.logs(".csv") and cluster.logs(".json")):
            time.sleep(0.1)
        records = read_probe_dir(tmp_path / "probe")
        requests = add_endpoint(pd.DataFrame(records["requests"]))
        probe_queries = pd.DataFrame(records["queries"])
        csv = pd.concat([read_pglog(f, requests=requests) for f in cluster.logs(".csv")])
        json = pd.concat([read_pglog(f, requests=requests) for f in cluster.logs(".json")])

    assert len(csv) == len(json) > 0
    assert csv["fingerprint_id"].tolist() == json["fingerprint_id"].tolist()
    ours = csv[csv["request_id"].isin(sent)]
    commented = ours[ours["attributed_by"] == "comment"]
    expected = probe_queries[probe_queries["request_id"].isin(sent)]
    assert commented["request_id"].value_counts().to_dict() == (
        expected["request_id"].value_counts().to_dict()
    )
    assert {"GET /tickets", "GET /tickets/{ticket_id}"} <= set(commented["endpoint"])
    # the server's durations and the probe's agree on the DB time per request, roughly: the
    # probe's include the driver's round trip, so they are never much smaller
    server_ms = commented.groupby("request_id")["duration_ns"].sum() / 1e6
    probe_ms = expected.groupby("request_id")["duration_ns"].sum() / 1e6
    assert (server_ms <= probe_ms.reindex(server_ms.index) * 1.5 + 5).all()
