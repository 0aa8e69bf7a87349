"""The plan is pure and printable: --dry-run shows every step with its full command line."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import run_driver

from opend_build import options, sdk
from opend_build.inputs import resolve
from opend_build.plan import Tools, default_out, make_plan
from opend_build.platforms import Toolchain
from opend_build.steps import Action

TOOLS = Tools("/opt/cmake/bin/cmake", "/opt/bin/ninja")
GCC = Toolchain(os="linux", compiler="gcc", cxx="/usr/bin/g++", version="12.2.0", bin_dir="Bin/Linux")


def plan_for(*argv: str, cwd: Path = Path("/work")):  # type: ignore[no-untyped-def]
    opts = options.parse(["--os", "linux", *argv])
    return make_plan(opts, GCC, resolve(opts, os.environ), Path("/cache"), TOOLS, cwd)


def test_default_plan_steps_in_order() -> None:
    plan = plan_for()
    assert [s.phase for s in plan.steps] == ["inputs"] * 4 + ["protobuf"] * 3 + ["sdk"] * 2 + ["install"] * 2 + ["publish"]
    assert plan.out == Path("/work") / default_out("FTAPI", "linux", "Release")
    configure = plan.steps[7]
    assert configure.argv[:2] == ("/opt/cmake/bin/cmake", "-S")
    assert "-DOPEND_LIB=FTAPI" in configure.argv and "-DCMAKE_BUILD_TYPE=Release" in configure.argv
    assert "-DCMAKE_MAKE_PROGRAM=/opt/bin/ninja" in configure.argv


def test_build_folders_are_keyed() -> None:
    release, debug, moomoo = plan_for(), plan_for("--build-type", "Debug"), plan_for("--brand", "moomoo")
    assert release.sdk_build != debug.sdk_build and release.protobuf_build != debug.protobuf_build
    assert release.protobuf_build == moomoo.protobuf_build  # one protobuf serves both brands
    assert release.sdk_build != moomoo.sdk_build
    clang = make_plan(options.parse(["--os", "linux"]), Toolchain("linux", "clang", "/usr/bin/clang++", "14", "Bin/Linux"), resolve(options.parse(["--os", "linux"]), os.environ), Path("/cache"), TOOLS, Path("/w"))
    assert clang.protobuf_build != release.protobuf_build


def test_jobs_and_out_reach_the_commands() -> None:
    plan = plan_for("-j", "3", "--out", "/tmp/o")
    builds = [s for s in plan.steps if s.kind == "build"]
    assert all(s.argv[-2:] == ("--parallel", "3") for s in builds)
    assert plan.steps[-1].action is Action.PUBLISH and plan.steps[-1].args == (("staging", "/tmp/.o.staging"), ("out", "/tmp/o"))


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    r = run_driver("--os", "linux", "--dry-run", "--out", str(tmp_path / "o"), env={"OPEND_BUILD_CACHE": str(tmp_path / "c")})
    assert r.returncode == 0, r.output
    assert "[protobuf] configure protobuf" in r.stdout and "--cpp" not in r.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


def test_describe_sdk_tree_one_level_down() -> None:
    names = ["MMAPI4CPP_9.2.5108/Include/Proto/Common.proto", "MMAPI4CPP_9.2.5108/Include/MMAPI.h",
             "MMAPI4CPP_9.2.5108/Src/MMAPI/a.cpp", "MMAPI4CPP_9.2.5108/Src/protobuf-all-3.5.1.tar.gz",
             "MMAPI4CPP_9.2.5108/Bin/Mac/libAPIChannel.dylib", "MMAPI4CPP_9.2.5108/Bin/Centos7/libMMAPIChannel.so"]
    t = sdk.describe(names, "download")
    assert (t.root, t.brand, t.version, t.protobuf) == ("MMAPI4CPP_9.2.5108", "moomoo", "9.2.5108", "Src/protobuf-all-3.5.1.tar.gz")
    assert t.sources == ("Src/MMAPI/a.cpp",)
    assert sdk.channel_for("macos", t.channel) == ("Bin/Mac/libAPIChannel.dylib",)
    assert sdk.channel_for("linux", t.channel) == ("Bin/Centos7/libMMAPIChannel.so",)
