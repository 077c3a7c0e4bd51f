"""The Jupyter edge's pure parts: parameters to a target, launch specs, lessons."""

from __future__ import annotations

import shlex
import sys

import pytest

from deskprof import lab
from deskprof.errors import DeskprofError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, []),
        ("", []),
        (12345, [12345]),
        ("12345", [12345]),
        ("12345, 12346", [12345, 12346]),
        ("12345 12346", [12345, 12346]),
        ("[12345, 12346]", [12345, 12346]),
        ([12345, "12346"], [12345, 12346]),
    ],
)
def test_parse_pids_accepts_what_papermill_may_pass(given, expected):
    assert lab.parse_pids(given) == expected


@pytest.mark.parametrize("given", ["abc", "12,x", [1.5], [-3], "0", True, ["12 13"]])
def test_parse_pids_refuses_what_is_not_a_pid_in_one_line(given):
    with pytest.raises(DeskprofError, match="pgrep") as info:
        lab.parse_pids(given)
    assert "\n" not in str(info.value)


def test_reference_launch_gives_capture_and_variant_what_they_take(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    launch = lab.reference_launch(8123, fixes="eager_loading", database_url=db, workers=2)
    assert launch.url == "http://127.0.0.1:8123"
    kwargs = launch.capture_kwargs()
    assert set(kwargs) == {"url", "launch", "launch_env"}
    assert shlex.split(kwargs["launch"]) == [
        sys.executable, "-m", "opendesk", "serve", "--port", "8123", "--workers", "2",
    ]  # fmt: skip
    assert kwargs["launch_env"] == {"OPENDESK_DATABASE_URL": db, "OPENDESK_FIXES": "eager_loading"}
    kwargs["launch_env"]["X"] = "1"
    assert "X" not in launch.env, "callers get a copy"

    variant = launch.variant("candidate", OPENDESK_FIXES="all")
    assert variant.kind == "launch" and variant.name == "candidate"
    assert variant.env == {"OPENDESK_DATABASE_URL": db, "OPENDESK_FIXES": "all"}
    # the runner fills {python} and {port}; the worker count is already in
    assert variant.command == "{python} -m opendesk serve --port {port} --workers 2"


def test_reference_launch_picks_a_free_port_and_passes_redis(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    launch = lab.reference_launch(database_url=db, redis_url="redis://127.0.0.1:6379/3")
    assert 0 < launch.port < 65536
    assert launch.env["OPENDESK_REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert launch.env["OPENDESK_FIXES"] == "none"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fixes": "eager_loding"}, "unknown fix name"),
        ({"workers": 0}, "workers"),
        ({"workers": "2"}, "workers"),
        ({"port": 70000}, "port"),
    ],
)
def test_reference_launch_refuses_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(DeskprofError, match=message):
        lab.reference_launch(database_url=f"sqlite:///{tmp_path / 'x'}", **kwargs)


def test_reference_database_refuses_an_unknown_size():
    with pytest.raises(DeskprofError, match="unknown data size 'huge'; choose one of small"):
        lab.reference_database("huge")


def test_sqlite_files_per_size_under_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DESKPROF_DATA_DIR", str(tmp_path))
    assert lab.sqlite_path("small") == tmp_path / "opendesk-small.sqlite3"
    assert lab.sqlite_path("demo") == tmp_path / "opendesk.sqlite3", "shared with make demo"
    bundle = lab.capture_dir("01 CPU: tickets!")
    assert bundle.parent == tmp_path / "captures" and bundle.name.endswith("-01-cpu-tickets")
    assert not bundle.exists()


def test_attach_parameters_give_an_attach_target():
    target = lab.target_from_parameters(
        "http://127.0.0.1:8000/", "101,102", database_url="postgresql://ro@replica/db"
    )
    assert not target.reference
    assert target.capture_kwargs() == {"url": "http://127.0.0.1:8000", "pids": [101, 102]}
    assert target.database_url == "postgresql://ro@replica/db"
    assert "PIDs 101, 102" in target.describe()


def test_empty_url_starts_the_reference_service(monkeypatch):
    seeded = []
    monkeypatch.setattr(
        lab,
        "reference_database",
        lambda size, database_url=None: seeded.append(size) or "sqlite:///s",
    )
    target = lab.target_from_parameters("", None, size="small", fixes="all", workers=2, port=8001)
    assert seeded == ["small"] and target.reference
    assert target.database_url == "sqlite:///s"
    assert target.capture_kwargs()["launch_env"]["OPENDESK_FIXES"] == "all"
    assert target.capture_kwargs()["url"] == target.url == "http://127.0.0.1:8001"


@pytest.mark.parametrize(
    ("url", "pids", "message"),
    [
        ("", "123", "pids were given without url"),
        ("http://127.0.0.1:8000", "", "needs the PIDs"),
        ("127.0.0.1:8000", "123", "http\\(s\\) URL"),
    ],
)
def test_inconsistent_parameters_say_what_to_set(url, pids, message):
    with pytest.raises(DeskprofError, match=message):
        lab.target_from_parameters(url, pids)


def test_a_lesson_fails_on_the_reference_service_and_is_reported_on_staging(capsys):
    staging = lab.LabTarget("http://10.0.0.5:8000", [7])
    assert staging.check(False, "the SLA loop is on top", "found json.dumps") is False
    assert "DOES NOT hold (found json.dumps)" in capsys.readouterr().out
    reference = lab.LabTarget("http://127.0.0.1:1", [], lab.ReferenceLaunch(1))
    assert reference.check(True, "the SLA loop is on top") is True
    with pytest.raises(AssertionError, match="the SLA loop is on top: not on the reference"):
        reference.check(False, "the SLA loop is on top")
