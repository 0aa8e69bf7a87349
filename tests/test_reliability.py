"""Interruption, concurrency, awkward paths, read-only input, a full disk, odd protocol files:
the previous output always survives, and the next run completes without a manual clean."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sdkfactory
from conftest import Built, consume, finish, must_build, run_driver, start, wait_for


def snapshot(out: Path) -> bytes:
    return (out / "build-manifest.json").read_bytes()


def assert_intact(out: Path, before: bytes) -> None:
    assert snapshot(out) == before
    m = json.loads(before)
    for o in m["outputs"]:
        assert (out / o["path"]).stat().st_size == o["size"]


def staging_left(out: Path) -> bool:
    return any(out.parent.glob(f".{out.name}.staging*"))


@pytest.fixture()
def previous(small_built: Built, tmp_path: Path) -> tuple[Path, bytes]:
    """An output folder holding a good earlier build."""
    out = tmp_path / "out"
    shutil.copytree(small_built.out, out)
    return out, snapshot(out)


@pytest.fixture()
def busy_sdk(small_sdk: Path, tmp_path: Path) -> Path:
    """The small SDK under a new version: its own build folder, so the sdk phase has real work."""
    copy = tmp_path / "sdk" / f"FTAPI4CPP_0.9.{time.monotonic_ns()}"
    shutil.copytree(small_sdk, copy)
    return copy


@pytest.mark.parametrize("sig,phase", [(signal.SIGINT, "sdk"), (signal.SIGTERM, "sdk"), (signal.SIGKILL, "sdk"),
                                       (signal.SIGKILL, "install"), (signal.SIGKILL, "publish"), (signal.SIGTERM, "publish")])
def test_kill_at_a_phase_keeps_previous_output(sig: int, phase: str, previous: tuple[Path, bytes], busy_sdk: Path, small_sdk: Path,
                                               tmp_path: Path) -> None:
    out, before = previous
    sdk = busy_sdk if phase == "sdk" else small_sdk  # killing a compile needs a compile to kill
    args = ("--os", "linux", "--sdk", str(sdk), "--out", str(out))
    seen: list[str] = []
    if phase == "sdk":
        proc = start(*args)
        wait_for(proc, "sdk: ", seen)  # compiling
    else:
        proc = start(*args, env={"OPEND_BUILD_PAUSE_BEFORE": f"{phase}:{tmp_path / 'never'}"})
        wait_for(proc, f"paused before {phase}", seen)
    proc.send_signal(sig)
    rc = finish(proc, seen)
    assert rc != 0
    if sig != signal.SIGKILL:  # a catchable signal cleans up after itself
        assert rc == 130 and "Traceback" not in "".join(seen)
        assert not staging_left(out)
    assert_intact(out, before)
    # the next run completes without a manual clean
    must_build(*args, summary=tmp_path / "s.json")
    assert not staging_left(out)
    assert json.loads(snapshot(out))["sdk_version"] == sdk.name.split("_", 1)[1]


def test_sigint_stops_a_driver_that_inherited_it_ignored(tmp_path: Path) -> None:
    """A driver started in the background (`&`, nohup, a CI step) inherits SIGINT as ignored; it
    installs its own handling, so SIGINT still stops it with 130 and nothing published."""
    out = tmp_path / "out"
    proc = start("--os", "linux", "--out", str(out), env={"OPEND_BUILD_PAUSE_BEFORE": f"inputs:{tmp_path / 'never'}",
                                                             "OPEND_BUILD_CACHE": str(tmp_path / "cache")}, sigint=signal.SIG_IGN)
    seen: list[str] = []
    wait_for(proc, "paused before inputs", seen)
    proc.send_signal(signal.SIGINT)
    assert finish(proc, seen, timeout=60) == 130, "".join(seen)
    assert "interrupted; the previous output is unchanged" in "".join(seen) and not out.exists()


def test_two_first_runs_on_one_new_sdk_archive_both_succeed(small_zip: Path, tmp_path: Path) -> None:
    """Two drivers started together on an archive the cache has never seen (different outputs, one
    cache): both unpack it, one rename wins, and the other takes the winner's folder."""
    release = tmp_path / "go"
    env = {"OPEND_BUILD_PAUSE_BEFORE": f"inputs:{release}", "OPEND_BUILD_CACHE": str(tmp_path / "cache")}
    procs = [start("inputs", "--sdk", str(small_zip), env=env) for _ in range(2)]
    seen: list[list[str]] = [[], []]
    for proc, lines in zip(procs, seen):
        wait_for(proc, "paused before inputs", lines)
    release.touch()
    assert [finish(p, lines, timeout=300) for p, lines in zip(procs, seen)] == [0, 0], seen
    assert len(list((tmp_path / "cache" / "sdk").iterdir())) == 1


def test_unpack_takes_a_folder_another_run_renamed_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The losing side of that race, made certain: while this run writes its copy, another renames
    its own into place; the rename then fails, the other's copy stays, and ours is gone."""
    from opend_build import archives

    tree = tmp_path / "FTAPI4CPP_1.0" / "Include" / "Proto"
    tree.mkdir(parents=True)
    (tree / "Common.proto").write_text('syntax = "proto2";\n')
    archive = sdkfactory.zip_tree(tmp_path / "FTAPI4CPP_1.0", tmp_path / "x.zip")
    dest = tmp_path / "sdk" / "abc"
    write = archives._write_entries

    def other_run_wins(*a: object) -> None:
        write(*a)  # type: ignore[arg-type]
        dest.mkdir(parents=True)
        (dest / "theirs").write_text("the other run's copy")

    monkeypatch.setattr(archives, "_write_entries", other_run_wins)
    assert archives.extract(archive, dest) == dest
    assert [p.name for p in dest.iterdir()] == ["theirs"] and [p.name for p in dest.parent.iterdir()] == ["abc"]


def test_kill_during_protobuf_then_resume(small_clang: Built) -> None:
    """The clang build (test_toolchains) was SIGKILLed while protobuf compiled: nothing was
    published, and the next run finished the build instead of starting it again."""
    assert small_clang.killed is not None
    rc, output, out_existed = small_clang.killed
    assert rc == -signal.SIGKILL and not out_existed
    assert 0 < small_clang.summary["phases"]["protobuf"]["compiled"] < 100


def test_awkward_paths(small_sdk: Path, tmp_path: Path) -> None:
    """Spaces and Chinese in the SDK path and the output path (the whole suite runs under such a HOME)."""
    assert " " in str(Path.home()) and "家" in str(Path.home())  # conftest sets HOME for the whole session
    sdk = tmp_path / "路径 with space" / small_sdk.name
    shutil.copytree(small_sdk, sdk)
    out = tmp_path / "输出 dir" / "FTAPI"
    must_build("--os", "linux", "--sdk", str(sdk), "--out", str(out), summary=tmp_path / "s.json")
    cache = Path(os.environ.get("OPEND_BUILD_CACHE") or Path.home() / ".cache" / "opend-build")
    assert (cache / "build").is_dir()
    assert "library ok" in consume(out, "FTAPI", tmp_path / "consumer 消费")


def test_second_driver_on_the_same_output_fails_clearly_or_waits(previous: tuple[Path, bytes], small_sdk: Path, tmp_path: Path) -> None:
    out, before = previous
    release = tmp_path / "release"
    args = ("--os", "linux", "--sdk", str(small_sdk), "--out", str(out))
    seen: list[str] = []
    a = start(*args, env={"OPEND_BUILD_PAUSE_BEFORE": f"publish:{release}"})
    wait_for(a, "paused before publish", seen)
    b = run_driver(*args, "--lock-timeout", "0")
    assert b.returncode == 10, b.output
    assert f"pid {a.pid}" in b.stderr and "Traceback" not in b.output
    assert_intact(out, before)  # A has staged its output but not published it yet
    c = start(*args, "--lock-timeout", "120")
    c_seen: list[str] = []
    wait_for(c, f"waiting for pid {a.pid}", c_seen)
    release.touch()
    assert finish(a, seen) == 0, "".join(seen)
    assert finish(c, c_seen) == 0, "".join(c_seen)
    m = json.loads(snapshot(out))
    for o in m["outputs"]:  # one whole output, never a mix
        assert (out / o["path"]).stat().st_size == o["size"]


def test_read_only_sdk(small_sdk: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro" / small_sdk.name
    ro.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(small_sdk), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")
        must_build("--os", "linux", "--sdk", str(ro), "--out", str(tmp_path / "out"), summary=tmp_path / "s.json")
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_full_disk_keeps_previous_output(small_built: Built, small_sdk: Path, tmp_path: Path) -> None:
    disk = tmp_path / "small disk"
    disk.mkdir()
    used = sum(f.stat().st_size for f in small_built.out.rglob("*") if f.is_file())
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={used + 4 * 1024 * 1024}", "tmpfs", str(disk)], check=True)
    try:
        out = disk / "out"
        # copied without their mtimes: the install finds none of them up to date and writes every
        # file anew beside the output's (staging's links to them do not save the space)
        shutil.copytree(small_built.out, out, copy_function=shutil.copy)
        before = snapshot(out)
        r = run_driver("--os", "linux", "--sdk", str(small_sdk), "--out", str(out))
        assert r.returncode == 11, r.output
        assert "no space left" in r.stderr.lower() and "Traceback" not in r.output
        assert_intact(out, before)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_odd_but_valid_protocol_files(open_inputs, protobuf_tarball: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """UTF-8 BOM, CRLF line ends and non-UTF-8 bytes in comments: protoc 3.5.1 accepts each, so must we."""
    sdk = sdkfactory.make_sdk(tmp_path, "futu", open_inputs["futu"], protobuf_tarball, version="0.1.1", with_src=False, only=["Common.proto"])
    proto = sdk / "Include/Proto"
    (proto / "Bom.proto").write_bytes(b'\xef\xbb\xbfsyntax = "proto2";\npackage Bom;\nimport "Common.proto";\nmessage A { optional int32 x = 1; }\n')
    (proto / "Crlf.proto").write_bytes(b'syntax = "proto2";\r\npackage Crlf;\r\nmessage A {\r\n  optional string s = 1;\r\n}\r\n')
    (proto / "Latin1.proto").write_bytes(b'syntax = "proto2";\npackage Latin1;\n// caf\xe9 \xff\xfe\nmessage A { optional int32 x = 1; }\n')
    out = tmp_path / "out"
    must_build("--os", "linux", "--sdk", str(sdk), "--out", str(out), summary=tmp_path / "s.json")
    for stem in ("Bom", "Crlf", "Latin1"):
        assert (out / "Include/Proto" / f"{stem}.pb.h").is_file()


def test_import_cycle_is_reported(open_inputs, protobuf_tarball: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sdk = sdkfactory.make_sdk(tmp_path, "futu", open_inputs["futu"], protobuf_tarball, version="0.1.2", with_src=False, only=["Common.proto"])
    proto = sdk / "Include/Proto"
    (proto / "CycleA.proto").write_text('syntax = "proto2";\npackage CycleA;\nimport "CycleB.proto";\nmessage A { optional int32 x = 1; }\n')
    (proto / "CycleB.proto").write_text('syntax = "proto2";\npackage CycleB;\nimport "CycleA.proto";\nmessage B { optional int32 x = 1; }\n')
    r = run_driver("--os", "linux", "--sdk", str(sdk), "--out", str(tmp_path / "out"))
    assert r.returncode == 5, r.output
    assert "Cycle" in r.stderr and ".proto" in r.stderr and "Traceback" not in r.output


def test_staging_keeps_only_what_the_install_laid_out(tmp_path: Path) -> None:
    """Staging starts as links to the output's files; a file the install no longer lays out (a
    .proto removed from the SDK, say) leaves it, and the manifest's own files are never linked."""
    from opend_build import runner

    out, staging, build = tmp_path / "out", tmp_path / ".out.staging", tmp_path / "build"
    for rel in ("Include/Proto/A.pb.h", "Include/Proto/Gone.pb.h", "build-manifest.json", "sbom.spdx.json"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(rel)
    runner._act_link_out(str(out), str(staging))
    assert sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()) == ["Include/Proto/A.pb.h", "Include/Proto/Gone.pb.h"]
    assert (staging / "Include/Proto/A.pb.h").stat().st_ino == (out / "Include/Proto/A.pb.h").stat().st_ino
    build.mkdir()
    (build / "install_manifest.txt").write_text(f"{staging / 'Include/Proto/A.pb.h'}\n{staging / 'lib/New.cmake'}\n")
    runner._act_prune_staging(str(staging), str(build))
    assert sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")) == ["Include", "Include/Proto", "Include/Proto/A.pb.h"]
    assert (out / "Include/Proto/Gone.pb.h").read_text() == "Include/Proto/Gone.pb.h"  # the output itself is untouched
