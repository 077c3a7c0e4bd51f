"""Probe settings, from keyword arguments or from the environment ``deskprof run`` sets.

The environment is how settings reach an unmodified application and every process it
starts (uvicorn ``--workers`` spawns fresh interpreters that inherit it). A bad value
never stops the target: the default is used and the problem logged.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger("deskprof.probe")

ENV_DIR = "DESKPROF_PROBE_DIR"
ENV_KEEP_PARAMS = "DESKPROF_PROBE_KEEP_PARAMS"
ENV_SQLCOMMENTER = "DESKPROF_PROBE_SQLCOMMENTER"
ENV_ENABLED = "DESKPROF_PROBE_ENABLED"
ENV_MAX_BYTES = "DESKPROF_PROBE_MAX_BYTES"
ENV_MAX_RECORDS = "DESKPROF_PROBE_MAX_RECORDS"
# where the deskprof package lives, for a target interpreter that does not have it
ENV_PKG_PATH = "DESKPROF_PROBE_PKG_PATH"

DEFAULT_MAX_BYTES = 256 * 1024**2  # per process file
DEFAULT_MAX_RECORDS = 20_000  # buffered between flushes (4 per second): ~80k records/s
FLUSH_INTERVAL_S = 0.25

_SIZE = re.compile(r"\s*(\d+)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """``"1048576"``, ``"64M"``, ``"1GiB"`` → bytes; ValueError otherwise."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (try 268435456, 256M or 1G)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def env_flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    log.warning("deskprof probe: ignoring %s=%r (use 1 or 0)", name, value)
    return default


def _env_size(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return max(0, parse_size(value))
    except ValueError as exc:
        log.warning("deskprof probe: ignoring %s: %s", name, exc)
        return default


@dataclass(frozen=True)
class ProbeConfig:
    """Everything the probe can be told; ``out_dir=None`` means "not configured"."""

    out_dir: str | None = None
    keep_parameters: bool = False
    sqlcommenter: bool = False
    enabled: bool = True
    max_bytes: int = DEFAULT_MAX_BYTES
    max_records: int = DEFAULT_MAX_RECORDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProbeConfig:
        env = os.environ if env is None else env
        return cls(
            out_dir=env.get(ENV_DIR) or None,
            keep_parameters=env_flag(env, ENV_KEEP_PARAMS, False),
            sqlcommenter=env_flag(env, ENV_SQLCOMMENTER, False),
            enabled=env_flag(env, ENV_ENABLED, True),
            max_bytes=_env_size(env, ENV_MAX_BYTES, DEFAULT_MAX_BYTES),
            max_records=_env_size(env, ENV_MAX_RECORDS, DEFAULT_MAX_RECORDS),
        )

    def to_env(self) -> dict[str, str]:
        """The environment that gives a child process these settings."""
        env = {
            ENV_KEEP_PARAMS: "1" if self.keep_parameters else "0",
            ENV_SQLCOMMENTER: "1" if self.sqlcommenter else "0",
            ENV_ENABLED: "1" if self.enabled else "0",
            ENV_MAX_BYTES: str(self.max_bytes),
            ENV_MAX_RECORDS: str(self.max_records),
        }
        if self.out_dir:
            env[ENV_DIR] = self.out_dir
        return env
