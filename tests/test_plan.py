"""The plan is pure and printable: --dry-run shows every step with its full command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_driver

from opend_build import options, sdk
from opend_build.inputs import resolve
from opend_build.plan import Tools, default_out, make_plan, toolchain_tag
from opend_build.platforms import Toolchain
from opend_build.steps import Action

TOOLS = Tools("/opt/cmake/bin/cmake", "/opt/bin/ninja")
GCC = Toolchain(os="linux", compiler="gcc", cxx="/usr/bin/g++", version="12.2.0", bin_dir="Bin/Linux")


def plan_for(*argv: str, cwd: Path = Path("/work")):  # type: ignore[no-untyped-def]
    opts = options.parse(["--os", "linux", *argv])
    return make_plan(opts, GCC, resolve(opts, os.environ), Path("/cache"), TOOLS, cwd)


def test_default_plan_steps_in_order() -> None:
    plan = plan_for()
    assert [s.phase for s in plan.steps] == ["inputs"] * 4 + ["protobuf"] * 3 + ["sdk"] * 2 + ["install"] * 4 + ["publish"]
    assert plan.out == Path("/work/out/FTAPI4CPP-linux-gcc-protobuf3.5.1-release")  # GCC here names no arch
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


@pytest.mark.parametrize("argv, name", [
    ([], "FTAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-release"),  # the plain default on an x86-64 machine
    (["--build-type", "Debug"], "FTAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-debug"),
    (["--brand", "moomoo"], "MMAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-release"),
    (["--compiler", "clang"], "FTAPI4CPP-linux-x86_64-clang-libcxx-protobuf3.5.1-release"),
    (["--cxx11-abi", "0"], "FTAPI4CPP-linux-x86_64-gcc-abi0-protobuf3.5.1-release"),
    (["--cxx11-abi", "1"], "FTAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-release"),  # the compiler's default: the same interface
    (["--protobuf", "29.0"], "FTAPI4CPP-linux-x86_64-gcc-protobuf29.0-release"),
    (["--protobuf", "3.21.12"], "FTAPI4CPP-linux-x86_64-gcc-protobuf3.21.12-release"),
    (["--arch", "aarch64"], "FTAPI4CPP-linux-aarch64-gcc-protobuf3.5.1-release"),
    (["--channel", "open"], "FTAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-release"),  # no SDK: the open channel is the default anyway
    (["--os", "windows", "--compiler", "mingw"], "FTAPI4CPP-windows-x86_64-mingw-protobuf3.5.1-release"),
    (["--os", "windows"], "FTAPI4CPP-windows-x64-msvc-md-protobuf3.5.1-release"),
    (["--os", "windows", "--arch", "x86", "--runtime", "MT"], "FTAPI4CPP-windows-x86-msvc-mt-protobuf3.5.1-release"),
    (["--os", "macos"], "FTAPI4CPP-macos-universal2-appleclang-protobuf3.5.1-release"),
    (["--os", "macos", "--arch", "arm64"], "FTAPI4CPP-macos-arm64-appleclang-protobuf3.5.1-release"),
])
def test_one_output_folder_per_configuration(argv: list[str], name: str) -> None:
    from opend_build.platforms import linux, toolchain_for

    if linux.host_arch() != "x86_64":
        pytest.skip("the table names an x86-64 build machine's folders")
    opts = options.parse(["--os", "linux", *argv] if "--os" not in argv else argv)
    plan = make_plan(opts, toolchain_for(opts), resolve(opts, os.environ), Path("/cache"), TOOLS, Path("/w"))
    assert plan.out == Path("/w/out") / name and plan.configuration == name


def test_the_folder_name_is_one_pure_function() -> None:
    assert default_out("FTAPI", "linux", "x86_64", "gcc", "3.5.1", "Release") == Path("out/FTAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-release")
    assert default_out("MMAPI", "linux", "x86_64", "gcc", "3.5.1", "Debug", "open").name == "MMAPI4CPP-linux-x86_64-gcc-protobuf3.5.1-debug-channel-open"
    assert [toolchain_tag("clang", "libc++"), toolchain_tag("gcc", "", 0), toolchain_tag("msvc", runtime="MT"), toolchain_tag("gcc", toolchain_file=True),
            toolchain_tag("appleclang", "libc++")] == ["clang-libcxx", "gcc-abi0", "msvc-mt", "toolchainfile", "appleclang"]


def test_the_open_channel_over_an_sdks_own_is_another_configuration(small_sdk: Path) -> None:
    from opend_build.platforms import toolchain_for

    names = []
    for argv in ([], ["--channel", "open"], ["--channel", "auto"]):
        opts = options.parse(["--os", "linux", "--sdk", str(small_sdk), *argv])
        names.append(make_plan(opts, toolchain_for(opts), resolve(opts, os.environ), Path("/cache"), TOOLS, Path("/w")).configuration)
    assert names[0] == names[2] and names[1] == names[0] + "-channel-open", names


def test_publishing_over_another_configuration_is_refused(tmp_path: Path) -> None:
    """An output whose manifest names another configuration is not replaced: the dry run (and the
    real run, before anything runs) exits 2 with the folder this configuration would get."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "build-manifest.json").write_text(json.dumps({"configuration": "FTAPI4CPP-linux-x86_64-clang-libcxx-protobuf3.5.1-release"}))
    env = {"OPEND_BUILD_CACHE": str(tmp_path / "c")}
    r = run_driver("--os", "linux", "--out", str(out), "--dry-run", env=env)
    assert r.returncode == 2 and "holds the output of another configuration (FTAPI4CPP-linux-x86_64-clang-libcxx-protobuf3.5.1-release)" in r.stderr, r.output
    assert "out/FTAPI4CPP-linux-" in r.stderr and "nothing in it was touched" in r.stderr
    real = run_driver("--os", "linux", "--out", str(out), env=env)
    assert real.returncode == 2 and "another configuration" in real.stderr and sorted(p.name for p in out.iterdir()) == ["build-manifest.json"]
    same = run_driver("--os", "linux", "--compiler", "clang", "--out", str(out), "--dry-run", env=env)
    assert same.returncode == 0, same.output


def test_the_dry_run_reads_like_a_plan(tmp_path: Path, open_inputs: dict[str, Path]) -> None:
    """What this run would do: the inputs the session fetched are up to date in its cache, the
    configures run; lines wrapped, a closing line; -v adds every command and the skip rules."""
    r = run_driver("--os", "linux", "--dry-run", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("plan: FTAPI") and max(len(line) for line in lines) <= 120, max(lines, key=len)
    assert "  [inputs] fetch futu_api-10.11.7108.tar.gz: skip: up to date (the cached download matches its sha256)" in lines
    assert "  [install] install into staging: run" in lines
    assert lines[-2].startswith("end of plan: 14 steps, ") and "nothing was run (--dry-run); -v shows each command" in r.stdout
    assert "skipped when" not in r.stdout and "-DOPEND_LIB=" not in r.stdout  # rules and commands: -v
    v = run_driver("--os", "linux", "--dry-run", "-v", "--out", str(tmp_path / "o"))
    assert "-DOPEND_LIB=FTAPI" in v.stdout and "    this run: skip: up to date (the cached download matches its sha256)" in v.stdout
    assert "  probes run: " in v.stdout and v.stdout.rstrip().splitlines()[-1].startswith("end of plan: 14 steps")
    summary = run_driver("--os", "linux", "--dry-run", "--out", str(tmp_path / "o"), "--summary-json", str(tmp_path / "s.json"))
    assert summary.returncode == 0 and f"--summary-json {tmp_path / 's.json'} not written: a dry run builds nothing" in summary.stdout
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "o").exists()


def test_a_dry_run_with_a_missing_system_protobuf_shows_the_plan(tmp_path: Path) -> None:
    """No protobuf headers (an empty folder mounted over /usr/include/google, in a user namespace):
    the dry run prints the plan with what is missing first; the run exits 4."""
    import subprocess
    import sys

    from conftest import ROOT

    empty = tmp_path / "empty"
    empty.mkdir()
    hide = ["unshare", "-rm", "sh", "-c", 'mount --bind "$0" /usr/include/google && exec "$@"', str(empty), sys.executable, str(ROOT / "build.py"),
            "--os", "linux", "--protobuf", "system", "--out", str(tmp_path / "o")]
    dry = subprocess.run([*hide, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.splitlines()[1].startswith("  missing on this machine: --protobuf system: no protobuf is installed here"), dry.stdout
    assert "[sdk] configure FTAPI: run" in dry.stdout
    real = subprocess.run(hide, capture_output=True, text=True, timeout=120)
    assert real.returncode == 4 and "apt-get install libprotobuf-dev protobuf-compiler" in real.stderr, real.stderr
