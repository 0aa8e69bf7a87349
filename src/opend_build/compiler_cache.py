"""--cache sccache: a compiler cache shared between build folders, machines and CI runs.

Each build talks to a private sccache server (its own socket), started and stopped by the runner,
so the backend chosen in the environment is the one used (a server already running for someone
else may have another), and the hit rate printed is this build's. The backend is sccache's own
setting: local disk by default, or Redis, S3, GCS, the GitHub Actions cache, WebDAV... through
sccache's environment variables. Paths under the base folders are stripped from the cache key,
so two machines with different home or checkout folders share entries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# sccache's remote backends, by the variable that selects each (first match wins, as in sccache).
BACKENDS = (
    ("SCCACHE_REDIS_ENDPOINT", "redis"),
    ("SCCACHE_REDIS_CLUSTER_ENDPOINTS", "redis cluster"),
    ("SCCACHE_REDIS", "redis"),
    ("SCCACHE_MEMCACHED_ENDPOINT", "memcached"),
    ("SCCACHE_BUCKET", "s3"),
    ("SCCACHE_GCS_BUCKET", "gcs"),
    ("SCCACHE_AZURE_CONNECTION_STRING", "azure"),
    ("SCCACHE_GHA_ENABLED", "github actions cache"),
    ("SCCACHE_WEBDAV_ENDPOINT", "webdav"),
    ("SCCACHE_OSS_BUCKET", "oss"),
)
SECRET_HINTS = ("PASSWORD", "TOKEN", "KEY", "CONNECTION_STRING")


def backend(env: Mapping[str, str]) -> str:
    """'redis (SCCACHE_REDIS_ENDPOINT=redis://...)' or 'local disk (...)': what the plan shows."""
    for var, name in BACKENDS:
        value = env.get(var)
        if value:
            shown = "<set>" if any(h in var for h in SECRET_HINTS) else _without_password(value)
            return f"{name} ({var}={shown})"
    folder = env.get("SCCACHE_DIR") or "sccache's default folder"
    return f"local disk ({folder})"


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def server_env(key: str, base_dirs: list[Path], host_os: str, tmp: Path) -> tuple[tuple[str, str], ...]:
    """Environment that points the compiles at this build's own server and strips base folders.

    On Unix the server listens on a socket named after the build folder's key (short, so it fits
    the 108-byte limit of socket paths); Windows has no sockets for sccache, so a port is derived."""
    sep = ";" if host_os == "windows" else ":"
    env = [("SCCACHE_BASEDIRS", sep.join(str(d) for d in base_dirs))]
    if host_os == "windows":
        port = 40000 + int(hashlib.sha256(key.encode()).hexdigest(), 16) % 20000
        env.append(("SCCACHE_SERVER_PORT", str(port)))
    else:
        env.append(("SCCACHE_SERVER_UDS", str(tmp / f"opend-sccache-{key[:12]}.sock")))
    # A server of ours that nobody stops (the driver was SIGKILLed) goes away on its own.
    env.append(("SCCACHE_IDLE_TIMEOUT", "600"))
    return tuple(env)


@dataclass(frozen=True)
class Stats:
    requests: int  # compiles sccache was asked to do
    hits: int
    misses: int
    not_cacheable: int
    location: str  # where sccache says the cache is, e.g. 'Redis: redis://127.0.0.1:6379/'

    @property
    def hit_rate(self) -> float:
        done = self.hits + self.misses
        return 100.0 * self.hits / done if done else 0.0

    def line(self) -> str:
        return f"{self.hits}/{self.hits + self.misses} compiles from cache ({self.hit_rate:.1f}%), {self.not_cacheable} not cacheable; {self.location}"

    def as_dict(self) -> dict[str, object]:
        return {"requests": self.requests, "hits": self.hits, "misses": self.misses,
                "not_cacheable": self.not_cacheable, "hit_rate": round(self.hit_rate, 1), "location": self.location}


def parse_stats(text: str) -> Stats:
    """`sccache --show-stats --stats-format=json` -> Stats."""
    data = json.loads(text)
    stats = data["stats"]

    def total(name: str) -> int:
        value = stats.get(name, 0)
        if isinstance(value, dict):
            return sum(int(v) for v in value.get("counts", {}).values())
        return int(value)

    return Stats(
        requests=total("compile_requests"),
        hits=total("cache_hits"),
        misses=total("cache_misses"),
        not_cacheable=total("requests_not_cacheable"),
        location=str(data.get("cache_location", "")),
    )
