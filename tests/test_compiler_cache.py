"""--cache sccache: the plan, and for real: Redis on loopback as the shared cache, two fresh build
roots standing for two machines. The second takes every compile from the cache and its outputs
are byte-identical to the first's."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
from conftest import must_build, run_driver
from test_plan import TOOLS

from opend_build import compiler_cache, options
from opend_build.inputs import resolve
from opend_build.plan import Tools, make_plan
from opend_build.platforms import Toolchain, toolchain_for
from opend_build.steps import Action

STATS = {"stats": {"compile_requests": 10, "requests_not_cacheable": 1, "cache_hits": {"counts": {"C/C++": 7}},
                   "cache_misses": {"counts": {"C/C++": 2}}}, "cache_location": "Redis: redis://127.0.0.1:6379/"}


def test_stats_and_hit_rate() -> None:
    s = compiler_cache.parse_stats(json.dumps(STATS))
    assert (s.requests, s.hits, s.misses, s.not_cacheable) == (10, 7, 2, 1)
    assert round(s.hit_rate, 1) == 77.8 and "7/9 compiles from cache (77.8%)" in s.line()


def test_backend_is_named_and_secrets_hidden() -> None:
    assert compiler_cache.backend({}).startswith("local disk")
    assert compiler_cache.backend({"SCCACHE_DIR": "/c"}) == "local disk (/c)"
    assert compiler_cache.backend({"SCCACHE_REDIS_ENDPOINT": "redis://u:secret@cache:6379"}) == "redis (SCCACHE_REDIS_ENDPOINT=redis://***@cache:6379)"
    assert compiler_cache.backend({"SCCACHE_GHA_ENABLED": "on"}).startswith("github actions cache")
    assert "s3" in compiler_cache.backend({"SCCACHE_BUCKET": "b"})


def plan_with_cache(*argv: str, target: str = "linux"):  # type: ignore[no-untyped-def]
    opts = options.parse(["--os", target, "--cache", "sccache", *argv])
    tc = Toolchain("linux", "gcc", "/usr/bin/g++", "12", "Bin/Linux") if target == "linux" else toolchain_for(opts)
    return make_plan(opts, tc, resolve(opts, os.environ), Path("/cache"), Tools(TOOLS.cmake, TOOLS.ninja, "/opt/bin/sccache"), Path("/w"))


def test_plan_runs_compiles_through_this_builds_own_server() -> None:
    plan = plan_with_cache()
    configures = [s for s in plan.steps if s.kind == "configure"]
    assert all("-DCMAKE_CXX_COMPILER_LAUNCHER=/opt/bin/sccache" in s.argv for s in configures)
    env = dict(plan.cache_env)
    assert env["SCCACHE_SERVER_UDS"].endswith(".sock") and len(env["SCCACHE_SERVER_UDS"]) < 100
    assert "/cache" in env["SCCACHE_BASEDIRS"].split(":")  # build folders and unpacked inputs leave the key
    builds = [s for s in plan.steps if s.kind == "build"]
    assert all(dict(s.env)["SCCACHE_SERVER_UDS"] == env["SCCACHE_SERVER_UDS"] for s in builds)
    titles = [(s.phase, s.action) for s in plan.steps if s.kind == "action"]
    assert titles.index(("cache", Action.SCCACHE_START)) < titles.index(("cache", Action.SCCACHE_STATS)) < titles.index(("publish", Action.PUBLISH))
    without = make_plan(options.parse(["--os", "linux"]), Toolchain("linux", "gcc", "/usr/bin/g++", "12", "Bin/Linux"),
                        resolve(options.parse(["--os", "linux"]), os.environ), Path("/cache"), TOOLS, Path("/w"))
    assert not without.cache_env and not any("LAUNCHER" in a for s in without.steps for a in s.argv)


def test_windows_plan_uses_a_port() -> None:
    env = dict(plan_with_cache(target="windows").cache_env)
    assert "SCCACHE_SERVER_UDS" not in env and 40000 <= int(env["SCCACHE_SERVER_PORT"]) < 60000
    assert ";" in env["SCCACHE_BASEDIRS"]


def test_dry_run_names_the_backend(tmp_path: Path) -> None:
    r = run_driver("--os", "linux", "--cache", "sccache", "--dry-run", "-v", env={"SCCACHE_REDIS_ENDPOINT": "redis://h:1", "OPEND_BUILD_CACHE": str(tmp_path)})
    assert r.returncode == 0, r.output
    assert "compiler cache: sccache, backend redis (SCCACHE_REDIS_ENDPOINT=redis://h:1)" in r.stdout
    assert "CMAKE_CXX_COMPILER_LAUNCHER=" in r.stdout


def redis_keys(url: str) -> int:
    host, port = url.removeprefix("redis://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
        reply = s.recv(64)
    assert reply.startswith(b":"), reply
    return int(reply[1:].split(b"\r\n")[0])


def digests(out: Path) -> dict[str, str]:
    files = [*sorted((out / "Bin/Linux").iterdir()), *sorted((out / "Include/Proto").glob("*.pb.*"))]
    return {f.relative_to(out).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_sccache_over_redis_shares_objects_between_two_build_roots(redis_url: str, small_sdk: Path, tmp_path: Path) -> None:
    """Machine two has its own cache root and its cmake somewhere else, so even its build folders
    are named differently from machine one's."""
    from opend_build import tools

    elsewhere = tmp_path / "machine two" / "tools"
    elsewhere.mkdir(parents=True)
    (elsewhere / "cmake").symlink_to(tools.cmake(os.environ))
    builds = []
    for machine, cmake in (("machine one", tools.cmake(os.environ)), ("machine two", str(elsewhere / "cmake"))):
        root = tmp_path / machine
        env = {"OPEND_BUILD_CACHE": str(root / "cache"), "SCCACHE_REDIS_ENDPOINT": redis_url, "OPEND_BUILD_CMAKE": cmake}
        r = must_build("--os", "linux", "--sdk", str(small_sdk), "--cache", "sccache", "--out", str(root / "out"),
                       summary=root / "summary.json", env=env)
        builds.append((root / "out", r))
    (first_out, first), (second_out, second) = builds
    c1, c2 = first.summary["compiler_cache"], second.summary["compiler_cache"]  # type: ignore[index]
    print(f"\nsccache over Redis: first root {c1['hits']}/{c1['hits'] + c1['misses']} hits, second root {c2['hits']}/{c2['hits'] + c2['misses']} ({c2['hit_rate']}%)")
    assert redis_url in c2["location"] and redis_keys(redis_url) >= c1["misses"] > 30  # protobuf's and the classes' objects
    assert c2["misses"] == 0 and c2["hits"] == c1["hits"] + c1["misses"] and c2["hit_rate"] == 100.0
    # Ninja ran every compile again in the fresh root; sccache answered each from Redis.
    for phase in ("protobuf", "sdk"):
        assert second.summary["phases"][phase]["compiled"] == first.summary["phases"][phase]["compiled"] > 0  # type: ignore[index]
    assert "sccache:" in second.stdout and "compiles from cache (100.0%)" in second.stdout
    assert digests(second_out) == digests(first_out)
    folders = [sorted(p.name for p in (tmp_path / m / "cache" / "build").iterdir() if p.is_dir()) for m in ("machine one", "machine two")]
    assert not set(folders[0]) & set(folders[1])  # no build folder name in common: the hits did not depend on them


@pytest.mark.build  # starts a real sccache server against a backend that never answers (10 s)
def test_unreachable_backend_fails_clearly(small_sdk: Path, tmp_path: Path) -> None:
    """A shared cache that cannot be reached stops the build before any compile, saying what to check."""
    r = run_driver("--os", "linux", "--sdk", str(small_sdk), "--cache", "sccache", "--out", str(tmp_path / "out"),
                   env={"SCCACHE_REDIS_ENDPOINT": "redis://127.0.0.1:9", "OPEND_BUILD_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 6, r.output
    assert "sccache could not start" in r.stderr and "SCCACHE_" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()
