"""Redis-backed read cache with write invalidation.

Keys carry a generation number; every ticket write bumps it, so a cached report is never
served after a write that could change it, without having to find and delete keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import redis


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


class ReadCache:
    """JSON values cached under a namespace, invalidated wholesale by ``invalidate()``."""

    def __init__(self, client: redis.Redis, ttl_s: int, prefix: str) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.generation_key = f"{prefix}:cache:generation"

    def _key(self, namespace: str, params: dict[str, Any]) -> str:
        generation = int(self.client.get(self.generation_key) or 0)
        digest = hashlib.sha1(
            json.dumps(params, sort_keys=True, default=str).encode(), usedforsecurity=False
        ).hexdigest()[:16]
        return f"{self.prefix}:cache:{namespace}:g{generation}:{digest}"

    def get_or_compute(
        self, namespace: str, params: dict[str, Any], compute: Callable[[], Any]
    ) -> Any:
        key = self._key(namespace, params)
        cached = self.client.get(key)
        if cached is not None:
            return json.loads(cached)
        value = compute()
        self.client.set(key, json.dumps(value, default=str), ex=self.ttl_s)
        return value

    def invalidate(self) -> None:
        """Called on every ticket or comment write."""
        self.client.incr(self.generation_key)
