"""Probe settings from the environment, and the environment ``deskprof run`` gives a child."""

from __future__ import annotations

import os

import pytest

from deskprof.probe.bootstrap import BOOTSTRAP_DIR, PACKAGE_ROOT, launch_environment
from deskprof.probe.config import (
    DEFAULT_MAX_BYTES,
    ENV_DIR,
    ENV_KEEP_PARAMS,
    ENV_MAX_BYTES,
    ENV_PKG_PATH,
    ProbeConfig,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 1048576), ("64M", 64 * 1024**2), ("1GiB", 1024**3), (" 2k ", 2048)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "1.5G", "-3"])
def test_parse_size_refuses_what_is_not_a_size(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_bad_environment_values_fall_back_to_defaults_instead_of_stopping_the_target(caplog):
    config = ProbeConfig.from_env(
        {ENV_DIR: "/tmp/x", ENV_KEEP_PARAMS: "maybe", ENV_MAX_BYTES: "huge"}
    )
    assert config.out_dir == "/tmp/x"
    assert config.keep_parameters is False
    assert config.max_bytes == DEFAULT_MAX_BYTES
    assert "ignoring" in caplog.text


def test_settings_survive_the_trip_through_the_environment():
    config = ProbeConfig(out_dir="/d", keep_parameters=True, sqlcommenter=True, enabled=False)
    assert ProbeConfig.from_env(config.to_env()) == config
    assert ProbeConfig.from_env({}).out_dir is None


def test_launch_environment_puts_the_bootstrap_first_once_and_keeps_the_rest():
    base = {"PYTHONPATH": f"/app{os.pathsep}/lib", "OTHER": "kept"}
    env = launch_environment(ProbeConfig(out_dir="/probe"), base)
    assert env["PYTHONPATH"].split(os.pathsep) == [BOOTSTRAP_DIR, "/app", "/lib"]
    assert env["OTHER"] == "kept" and env[ENV_DIR] == "/probe"
    assert env[ENV_PKG_PATH] == PACKAGE_ROOT
    assert os.path.isdir(os.path.join(PACKAGE_ROOT, "deskprof", "probe"))
    again = launch_environment(ProbeConfig(out_dir="/probe"), env)
    assert again["PYTHONPATH"] == env["PYTHONPATH"]
    assert base == {"PYTHONPATH": f"/app{os.pathsep}/lib", "OTHER": "kept"}  # not modified
