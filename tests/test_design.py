"""The design's promises, as facts: every action has one handler, the plan states every skip and
check the run applies, planning reads only what it is given, --dry-run needs no toolchain, and
progress names the .proto files a unity batch compiles."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import Built, run_driver

from opend_build import options, runner
from opend_build.inputs import resolve
from opend_build.plan import Tools, make_plan
from opend_build.platforms import Toolchain
from opend_build.steps import SKIP_CONFIGURED, SKIP_PUBLISHED, Action

GCC = Toolchain("linux", "gcc", "/usr/bin/g++", "12", "Bin/Linux")


def test_every_action_has_exactly_one_handler() -> None:
    assert set(runner.ACTIONS) == set(Action)


def test_dry_run_states_every_skip_and_check(tmp_path: Path) -> None:
    r = run_driver("--os", "linux", "--dry-run", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.output
    out = r.stdout
    assert out.count(f"({SKIP_CONFIGURED})") == 2  # protobuf's and the SDK's configure
    assert out.count(f"({SKIP_PUBLISHED})") == 3  # install, write the manifest, publish
    for needle in ("  out: ", "else exit 2 before anything runs", "  locks: ", "  log: ", "skipped when the cached download matches its sha256"):
        assert needle in out, needle
    assert not (tmp_path / "o").exists()


def test_planning_takes_the_environment_as_an_argument(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SCCACHE_REDIS_ENDPOINT", raising=False)
    opts = options.parse(["--os", "linux", "--cache", "sccache"])

    def plan(env: dict[str, str]) -> str:
        return make_plan(opts, GCC, resolve(opts), Path("/cache"), Tools("cmake", "ninja", "/opt/sccache"), Path("/w"), env=env).render()

    assert "backend redis (SCCACHE_REDIS_ENDPOINT=redis://cache:6379)" in plan({"SCCACHE_REDIS_ENDPOINT": "redis://cache:6379"})
    monkeypatch.setenv("SCCACHE_REDIS_ENDPOINT", "redis://elsewhere:1")  # the process's environment is not read
    assert "backend local disk (sccache's default folder)" in plan({})
    # where the inputs are unpacked follows the environment given, too
    moved = resolve(opts, {"OPEND_BUILD_CACHE": "/elsewhere/cache"})
    assert moved.proto_dir.is_relative_to("/elsewhere/cache") and moved.protobuf.src is not None and moved.protobuf.src.is_relative_to("/elsewhere/cache")
    assert all(dict(s.args).get("dest", "/elsewhere/cache").startswith("/elsewhere/cache") for s in moved.prepare)


def test_dry_run_needs_no_toolchain(tmp_path: Path) -> None:
    """On a host without clang, --compiler clang --dry-run prints the plan and says what is missing;
    the real run stops with exit 6 before anything runs."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("cc", "c++"):  # nothing named clang++ on this PATH
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bare / tool)  # type: ignore[arg-type]
    env = {"PATH": f"{bare}{os.pathsep}{Path(sys.executable).parent}"}
    r = run_driver("--os", "linux", "--compiler", "clang", "--dry-run", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.output
    assert "plan: FTAPI" in r.stdout and "missing on this machine: no C++ compiler found (looked for clang++)" in r.stdout
    real = run_driver("--os", "linux", "--compiler", "clang", "--out", str(tmp_path / "o"), env=env)
    assert real.returncode == 6 and "clang++" in real.stderr and not (tmp_path / "o").exists()


def test_dry_run_without_cmake_and_ninja_lists_them(tmp_path: Path) -> None:
    """Neither on PATH nor importable from PyPI's packages (hidden by modules of the same name that
    fail to import): the dry run still prints the plan and names them; the real run exits 6."""
    hide = tmp_path / "hide"
    hide.mkdir()
    for module in ("cmake", "ninja"):
        (hide / f"{module}.py").write_text("raise ImportError('hidden by the test')\n")
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("cc", "c++", "g++"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), bare / tool)  # type: ignore[arg-type]
    env = {"PATH": str(bare), "PYTHONPATH": str(hide)}
    r = run_driver("--os", "linux", "--dry-run", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.output
    assert "plan: FTAPI" in r.stdout and "missing on this machine: cmake not found" in r.stdout and "missing on this machine: ninja not found" in r.stdout
    real = run_driver("--os", "linux", "--out", str(tmp_path / "o"), env=env)
    assert real.returncode == 6 and "cmake not found" in real.stderr and not (tmp_path / "o").exists()


def test_steps_carry_the_paths_planning_chose(open_inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetch and unpack steps name the files they read and write in the cache planning was given;
    the runner takes those, whatever cache the process's own environment would name."""
    from opend_build import sources

    planned, elsewhere = tmp_path / "planned", tmp_path / "elsewhere"
    inputs = resolve(options.parse(["--os", "linux"]), {"OPEND_BUILD_CACHE": str(planned)})
    fetch, unpack = inputs.prepare[0], inputs.prepare[1]
    pin = sources.load_pins()["futu"]
    assert dict(fetch.args)["dest"] == str(planned / "downloads" / pin.filename)
    assert dict(unpack.args)["archive"] == dict(fetch.args)["dest"] and dict(unpack.args)["dest"] == str(inputs.proto_dir)
    # the download is already there (from the session's cache), so nothing is fetched from the network
    (planned / "downloads").mkdir(parents=True)
    shutil.copy2(sources.download_path(pin, sources.cache_root()), planned / "downloads" / pin.filename)
    monkeypatch.setenv("OPEND_BUILD_CACHE", str(elsewhere))
    runner.Runner(None).execute((fetch, unpack), tmp_path / "log")
    assert (inputs.proto_dir / "Qot_Sub.proto").is_file() and not elsewhere.exists()


def test_progress_names_the_protos_of_a_unity_batch(small_built: Built) -> None:
    assert runner.short("Building CXX object CMakeFiles/opend_sdk.dir/Unity/unity_batch3_cxx.cxx.o",
                        {"batch3": ["Qot_Sub", "Qot_GetKL", "Qot_GetTicker", "Qot_GetRT"]}) == "compile Qot_Sub, Qot_GetKL (+2)"
    assert runner.short("Building CXX object CMakeFiles/opend_sdk_sources.dir/Packet.cpp.o", {}) == "compile Packet.cpp"
    # the real build folder says which .proto files each batch holds, as its configure wrote it
    build_dir = Path(str(small_built.summary["log"])).with_suffix("")
    batches = runner.unity_batches(str(build_dir))
    assert sorted(p for protos in batches.values() for p in protos) == ["Common", "Qot_Common", "Qot_Sub"]


def test_inputs_runs_its_steps_through_the_runner() -> None:
    """`build.py inputs` (how CMake configured by Conan or pip gets its inputs): the runner's
    progress on stderr, only the CMake script on stdout."""
    r = run_driver("inputs", "--brand", "futu")
    assert r.returncode == 0, r.output
    assert "==> [1/4] inputs: fetch " in r.stderr
    assert all(line.startswith("set(OPEND_") for line in r.stdout.strip().splitlines()), r.stdout


def test_archive_digests_are_remembered_by_size_and_mtime(small_zip: Path, tmp_path: Path) -> None:
    """Planning an SDK archive reads it whole once (its sha256, the protobuf tarball inside it);
    later plans of the same file take the digests remembered in the cache, a changed file not."""
    sdk = Path(shutil.copy2(small_zip, tmp_path / small_zip.name))
    env = {"OPEND_BUILD_CACHE": str(tmp_path / "cache")}
    memos = tmp_path / "cache" / "digests"
    first = run_driver("--os", "linux", "--sdk", str(sdk), "--dry-run", env=env)
    assert first.returncode == 0, first.output
    assert len(list(memos.iterdir())) == 2  # the archive's sha256, and its protobuf source's digest
    again = run_driver("--os", "linux", "--sdk", str(sdk), "--dry-run", env=env)
    assert again.stdout == first.stdout and len(list(memos.iterdir())) == 2
    os.utime(sdk, (1_600_000_000, 1_600_000_000))
    third = run_driver("--os", "linux", "--sdk", str(sdk), "--dry-run", env=env)
    assert third.stdout == first.stdout and len(list(memos.iterdir())) == 4
