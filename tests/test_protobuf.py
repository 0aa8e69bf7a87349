"""--protobuf: the SDK built against the protobuf the application already uses.

Pure parts (version numbering, language levels, plans for every OS and choice) run in seconds;
real builds use the small test SDK in Debug: Debian's libprotobuf-dev 3.21.12 (`system`, which
tests/run.py installs), the pinned 3.21.12 built from PyPI's grpcio-tools 1.54.3, and that build's
install prefix given as a folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import OFFLINE, ROOT, Built, conan_home, consume, must_build, ok, run, run_driver, script

from opend_build import protobuf, tools
from opend_build.errors import ProtobufSourceError

COMMON_H = "#define GOOGLE_PROTOBUF_VERSION {n}\n"
PORT_DEF = "#ifdef PROTOBUF_VERSION\n#error PROTOBUF_VERSION was previously defined\n#endif\n#define PROTOBUF_VERSION {n}\n"


# --- numbering and language levels ------------------------------------------------------------


def test_versions_read_from_headers() -> None:
    assert protobuf.version_from_headers(COMMON_H.format(n=3005001), None) == "3.5.1"
    assert protobuf.version_from_headers(COMMON_H.format(n=3021012), PORT_DEF.format(n=3021012)) == "3.21.12"
    # from 22 on the runtime is 4.x/5.x/6.x while protoc says 22.x ... 35.x
    assert protobuf.version_from_headers(None, PORT_DEF.format(n=5029000)) == "29.0"
    assert protobuf.version_from_headers(None, PORT_DEF.format(n=6035001)) == "35.1"
    assert protobuf.version_from_headers("", "") is None
    assert protobuf.protoc_version("libprotoc 3.21.12\n") == "3.21.12" and protobuf.protoc_version("libprotoc 29.0") == "29.0"
    assert protobuf.same_version("29.0", "29.0.0") and not protobuf.same_version("3.21.12", "3.5.1")


def test_cmake_is_handed_every_spelling_of_an_installed_protobufs_version(tmp_path: Path) -> None:
    """CMake's check of an installed protobuf compares what it finds with the driver's list: the
    plan's numbering first, then a config package's and the runtime's (its headers')."""
    from opend_build import options, protobuf_src
    from opend_build.inputs import cmake_entries, resolve

    assert protobuf_src.spellings("29.0", "5.29.0") == ("29.0", "29.0.0", "5.29.0")
    assert protobuf_src.spellings("3.21.12", "3.21.12") == ("3.21.12",)
    assert protobuf_src.runtime_from_headers(None, PORT_DEF.format(n=5029000)) == "5.29.0"
    prefix = tmp_path / "pb29"
    (prefix / "include/google/protobuf").mkdir(parents=True)
    (prefix / "lib").mkdir()
    (prefix / "include/google/protobuf/message.h").write_text("")
    (prefix / "include/google/protobuf/port_def.inc").write_text(PORT_DEF.format(n=5029000))
    entries = cmake_entries(resolve(options.parse(["--os", "linux", "--protobuf", str(prefix)]), {"OPEND_BUILD_CACHE": str(tmp_path / "cache")}))
    assert entries["OPEND_PROTOBUF_VERSION"] == "29.0" and entries["OPEND_PROTOBUF_VERSIONS"] == "29.0;29.0.0;5.29.0"
    assert "OPEND_PROTOBUF_VERSIONS" not in cmake_entries(resolve(options.parse(["--os", "linux"]), {"OPEND_BUILD_CACHE": str(tmp_path / "cache")}))
    assert "_opend_protobuf_norm" not in (ROOT / "cmake/OpenDFindProtobuf.cmake").read_text()  # the rule is the driver's alone


def test_language_level_follows_protobuf() -> None:
    # 22 and later: 17, not the 14 their headers accept: abseil's ABI follows the standard
    assert [protobuf.cxx_standard(v) for v in ("3.5.1", "3.21.12", "22.0", "29.0", "30.0", "35.1")] == [11, 11, 17, 17, 17, 17]
    assert protobuf.language_level(11, "gcc") == "gnu++11" and protobuf.language_level(14, "msvc") == "C++14"


# --- plans ----------------------------------------------------------------------------------------


def fake_prefix(root: Path, version_define: str, protoc: str) -> Path:
    """An installed protobuf's shape (headers, lib/, protoc where its packager puts it): enough for
    a plan, which reads the headers' version and never runs anything."""
    inc = root / "include" / "google" / "protobuf"
    (inc / "stubs").mkdir(parents=True)
    (inc / "message.h").write_text("// message.h\n")
    (inc / "port_def.inc").write_text(version_define)
    (root / "lib").mkdir()
    (root / protoc).parent.mkdir(parents=True, exist_ok=True)
    (root / protoc).write_text("")
    return root


def dry(*args: str) -> str:
    r = run_driver(*args, "--dry-run", "-v")
    assert r.returncode == 0, r.output
    return r.stdout


def test_pinned_version_is_honoured_without_an_sdk() -> None:
    """It used to be silently ignored: --protobuf 3.21.12 built 3.5.1."""
    out = dry("--os", "linux", "--protobuf", "3.21.12")
    assert "protobuf: 3.21.12, built from source: PyPI grpcio-tools 1.54.3" in out
    assert "fetch grpcio-tools-1.54.3.tar.gz" in out and "grpcio-tools-1.12.1" not in out
    assert "gnu++11" in out.splitlines()[1] and "-DOPEND_CXX_STANDARD=11" in out


def system_like(root: Path, version: int = 3021012, protoc_says: str = "libprotoc 3.21.12") -> dict[str, str]:
    """An environment whose installed protobuf is a fake prefix of ours, found where CMake looks
    (CMAKE_PREFIX_PATH), its protoc first on PATH: plans need no protobuf on the host."""
    prefix = fake_prefix(root, PORT_DEF.format(n=version), "bin/protoc")
    (prefix / "bin" / "protoc").write_text(f"#!/bin/sh\necho '{protoc_says}'\n")
    (prefix / "bin" / "protoc").chmod(0o755)
    return {"CMAKE_PREFIX_PATH": str(prefix), "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_system_plan_builds_and_ships_no_protobuf(tmp_path: Path) -> None:
    env = system_like(tmp_path / "usr")
    r = run_driver("--os", "linux", "--protobuf", "system", "--dry-run", "-v", env=env)
    out = r.stdout
    assert r.returncode == 0, r.output
    assert "protobuf: 3.21.12, installed, not built or shipped: system" in out and f"protoc {tmp_path}/usr/bin/protoc" in out
    assert "[protobuf]" not in out  # no protobuf steps at all
    assert "-DOPEND_PROTOBUF_PROVIDER=installed" in out and "-DOPEND_PROTOBUF_VERSION=3.21.12" in out
    assert f"-DProtobuf_PROTOC_EXECUTABLE={tmp_path}/usr/bin/protoc" in out  # the configure takes the protoc the plan names


def test_macos_plan_with_a_homebrew_prefix(tmp_path: Path) -> None:
    prefix = fake_prefix(tmp_path / "opt" / "protobuf", PORT_DEF.format(n=5029000), "bin/protoc")
    out = dry("--os", "macos", "--protobuf", str(prefix))
    assert f"protobuf: 29.0, installed, not built or shipped: {prefix}" in out and f"protoc {prefix}/bin/protoc" in out
    assert "gnu++17" in out.splitlines()[1] and "-DOPEND_CXX_STANDARD=17" in out
    assert f"-DOPEND_PROTOBUF_PREFIX={prefix}" in out and "find_package(Protobuf)" in out


def test_windows_plan_with_a_vcpkg_prefix(tmp_path: Path) -> None:
    prefix = fake_prefix(tmp_path / "vcpkg" / "installed" / "x64-windows", PORT_DEF.format(n=3021012), "tools/protobuf/protoc.exe")
    (prefix / "share" / "protobuf").mkdir(parents=True)
    (prefix / "share" / "protobuf" / "protobuf-config.cmake").write_text("")
    out = dry("--os", "windows", "--protobuf", str(prefix))
    assert "protobuf: 3.21.12, installed" in out and f"protoc {prefix}/tools/protobuf/protoc.exe" in out
    assert "C++14" in out.splitlines()[1]  # MSVC has no C++11 mode: 14 is its least
    assert "-DOPEND_PROTOBUF_PROVIDER=installed" in out and "-DOPEND_CXX_STANDARD=11" in out


def test_foreign_system_plan_leaves_the_version_to_the_build_host() -> None:
    out = dry("--os", "windows", "--protobuf", "system")
    assert "installed, not built or shipped: system (found on the build host" in out
    assert "language level of the protobuf found on the build host" in out and "-DOPEND_PROTOBUF_VERSION= " in out


# --- bad inputs: exit 4, one line, nothing half-built -------------------------------------------


@pytest.mark.parametrize("value, needle", [
    ("9.9.9", "--protobuf 9.9.9: no pinned source of that version (available: 3.5.1, 3.21.12, 29.0)"),
    ("{tmp}/nowhere", "no such file or folder"),
    ("{tmp}", "holds no protobuf"),
])
def test_bad_protobuf_values(value: str, needle: str, tmp_path: Path) -> None:
    r = run_driver("--os", "linux", "--protobuf", value.format(tmp=tmp_path), "--out", str(tmp_path / "out"))
    assert r.returncode == 4, r.output
    assert needle in r.stderr and r.stderr.count("\n") == 2 and "Traceback" not in r.output  # error line + what to do
    assert not (tmp_path / "out").exists()


def test_system_without_protobuf_names_the_debian_packages(tmp_path: Path) -> None:
    with pytest.raises(ProtobufSourceError) as e:
        protobuf.installed(None, [tmp_path / "include"], None)
    assert "no protobuf is installed here" in e.value.message and "apt-get install libprotobuf-dev protobuf-compiler" in (e.value.hint or "")


# --- real builds ---------------------------------------------------------------------------------


def nm_defined(archive_or_binary: Path) -> str:
    return subprocess.run(["nm", "-C", "--defined-only", str(archive_or_binary)], capture_output=True, text=True).stdout


def own_proto_app(prefix: Path, work: Path, extra: list[str] | None = None) -> tuple[Path, str]:
    """tests/data/own_proto: the application's own .proto and the SDK's classes in one binary."""
    cmake = tools.cmake(os.environ)
    ok(run([cmake, "-S", str(ROOT / "tests/data/own_proto"), "-B", str(work), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={tools.ninja(os.environ)}",
            f"-DCMAKE_PREFIX_PATH={prefix}", *(extra or [])]))
    ok(run([cmake, "--build", str(work)]))
    exe = work / "own_proto"
    return exe, ok(run([str(exe)]))


def test_system_protobuf_links_one_runtime(small_system: Built, tmp_path: Path) -> None:
    out = small_system.out
    bins = sorted(p.name for p in (out / "Bin/Linux").iterdir())
    assert bins == ["libFTAPI.a", "libFTAPIChannel.so"]  # no libprotobuf, no protoc
    assert not (out / "Include/google").exists()
    manifest = json.loads((out / "build-manifest.json").read_text())
    assert manifest["protobuf_version"] == "3.21.12" and manifest["inputs"]["protobuf"]["provider"] == "installed"
    # the generated classes came from Debian's protoc 3.21.12
    assert "#if PROTOBUF_VERSION < 3021000" in (out / "Include/Proto/Qot_Sub.pb.h").read_text()
    # the summary says what Include/ holds: no protobuf headers
    assert "Include/ (SDK headers, Proto/*.pb.h)" in small_system.result.stdout, small_system.result.stdout
    exe, stdout = own_proto_app(out, tmp_path / "app")
    assert "own message ok" in stdout and "Qot_Sub ok" in stdout and "GOOGLE_PROTOBUF_VERSION 3021012" in stdout
    # one protobuf runtime: Debian's shared libprotobuf, nothing of 3.5.1 linked in
    libs = ok(run(["ldd", str(exe)]))
    assert [line.split()[0] for line in libs.splitlines() if "libprotobuf" in line] == ["libprotobuf.so.32"]
    assert "google::protobuf::MessageLite::ParseFromString" not in nm_defined(exe)
    assert "3005001" not in (out / "Include/Proto/Qot_Sub.pb.h").read_text()


def test_system_protobuf_code_shares_unity_batches(open_inputs: dict[str, Path], work: Path, tmp_path: Path) -> None:
    """protoc 3.21's code defines `schemas` and `file_default_instances` in every .pb.cc: renamed
    around each include, small files share a batch (four here: one unit, not four) and the
    library defines the same external symbols as the files compiled one by one."""
    import sdkfactory

    sdk = sdkfactory.make_sdk(work / "sdk-batched", "futu", open_inputs["futu"], None, version="9.4.5418", with_src=False,
                              only=["Common.proto", "KeepAlive.proto", "Verification.proto", "InitConnect.proto"])
    out = work / "out" / "system-batched"
    r = must_build("--os", "linux", "--sdk", str(sdk), "--protobuf", "system", "--out", str(out), summary=tmp_path / "s.json")
    assert r.summary is not None
    build = Path(str(r.summary["log"]).removesuffix(".log"))
    batches = sorted(re.findall(r'#include ".*/Proto/(\w+)\.pb\.cc"', f.read_text()) for f in (build / "CMakeFiles/opend_sdk.dir/Unity").glob("unity_*.cxx"))
    assert batches == [["Common", "InitConnect", "KeepAlive", "Verification"]], batches
    gen = build / "generated/Proto"
    alone = ""
    for stem in batches[0]:
        obj = tmp_path / f"{stem}.o"
        ok(run(["c++", "-std=gnu++11", "-c", "-I", str(gen), str(gen / f"{stem}.pb.cc"), "-o", str(obj)]))
        alone += nm_defined(obj)

    def external(nm: str) -> set[str]:
        return {line.split(" ", 2)[2] for line in nm.splitlines() if line[17:19] in ("T ", "D ", "R ", "B ", "V ", "W ")}

    ours = external(nm_defined(out / "Bin/Linux/libFTAPIProto.a"))
    assert external(alone) == ours and any("descriptor_table_InitConnect_2eproto" in s for s in ours)


def test_system_protobuf_output_verifies(small_system: Built) -> None:
    r = run_driver("verify", "--out", str(small_system.out))
    assert r.returncode == 0, r.output


def test_system_protobuf_second_run_is_a_no_op(small_system: Built, small_sdk: Path, work: Path) -> None:
    r = must_build("--os", "linux", "--sdk", str(small_sdk), "--protobuf", "system", "--out", str(small_system.out), summary=work / "system-noop.json")
    assert r.summary is not None and r.summary["out_up_to_date"] is True
    assert r.summary["phases"]["sdk"]["compiled"] == 0 and "protobuf" not in r.summary["phases"]


def test_a_changed_environment_is_seen_by_a_configured_build_folder(small_system: Built, small_sdk: Path, tmp_path: Path) -> None:
    """The configure skip compares what the configure reads of the environment, not only its own
    arguments: with the build folder warm, a changed CMAKE_PREFIX_PATH configures afresh (and
    recompiles nothing), and another protoc first on PATH is refused (exit 4) as with a cold one."""
    out = tmp_path / "out"
    args = ("--os", "linux", "--sdk", str(small_sdk), "--protobuf", "system", "--out", str(out))
    r = must_build(*args, summary=tmp_path / "s.json", env={"CMAKE_PREFIX_PATH": str(tmp_path / "nothing here")})
    assert "configuring afresh" in r.stdout and r.summary is not None and r.summary["phases"]["sdk"]["compiled"] == 0, r.stdout
    before = (out / "build-manifest.json").read_bytes()
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "protoc").write_text("#!/bin/sh\necho 'libprotoc 3.19.0'\n")
    (fake / "protoc").chmod(0o755)
    refused = run_driver(*args, env={"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
    assert refused.returncode == 4, refused.output
    assert "3.19.0" in refused.stderr and "3.21.12" in refused.stderr and (out / "build-manifest.json").read_bytes() == before
    # and back: the shared build folder is configured as the other tests expect it
    must_build(*args, summary=tmp_path / "s2.json")


def test_pinned_3_21_12_builds_and_verifies(small_pb321: Built) -> None:
    out = small_pb321.out
    assert small_pb321.summary["protobuf_version"] == "3.21.12"
    assert "Bin/Linux/libprotobuf.a" in small_pb321.summary["binaries"]
    assert "GOOGLE_PROTOBUF_VERSION 3021012" in (out / "Include/google/protobuf/stubs/common.h").read_text()
    stdout = consume(out, "FTAPI", out.parent / "consumer-321")
    assert "round-trip ok" in stdout and "library ok" in stdout
    r = run_driver("verify", "--out", str(out))
    assert r.returncode == 0, r.output


def test_pinned_29_0_builds_with_abseil_and_verifies(small_pb29: Built) -> None:
    """protobuf 29.0 and the abseil-cpp and utf8_range it needs, from one pinned sdist, built by our
    own rules into one libprotobuf.a; the SDK at C++17; a C++17 consumer links it and verify passes."""
    out = small_pb29.out
    assert small_pb29.summary["protobuf_version"] == "29.0"
    assert json.loads((out / "build-manifest.json").read_text())["toolchain"]["cxx_standard"] == "17"
    assert "#if PROTOBUF_VERSION != 5029000" in (out / "Include/Proto/Qot_Sub.pb.h").read_text()  # 29's exact-version check
    assert (out / "Include/absl/strings/string_view.h").is_file() and (out / "Include/utf8_range.h").is_file()
    defined = nm_defined(out / "Bin/Linux/libprotobuf.a")
    assert "absl::lts_20240722::" in defined and "utf8_range_IsValid" in defined  # one archive to link
    stdout = consume(out, "FTAPI", out.parent / "consumer-29")
    assert "round-trip ok" in stdout and "library ok" in stdout
    r = run_driver("verify", "--out", str(out))
    assert r.returncode == 0, r.output


def pb_prefix_of(*args: str) -> Path:
    """The shared protobuf prefix the plan for these options installs into: an installed protobuf
    (include/, lib/, bin/protoc) to reuse."""
    from opend_build import cli, options

    return cli.build_plan(options.parse(["--os", "linux", *args, "--build-type", "Debug"]), os.environ).protobuf_build / "prefix"


def test_installed_prefix_from_a_folder(small_pb321: Built, small_sdk: Path, work: Path, tmp_path: Path) -> None:
    prefix = pb_prefix_of("--sdk", str(small_sdk), "--protobuf", "3.21.12")
    assert protobuf.is_installed_prefix(prefix)
    out = work / "out" / "small-prefix-321"
    r = must_build("--os", "linux", "--sdk", str(small_sdk), "--protobuf", str(prefix), "--out", str(out), summary=work / "small-prefix-321.json")
    assert r.summary is not None and r.summary["protobuf_version"] == "3.21.12" and r.summary["phases"].get("protobuf") is None
    assert "Bin/Linux/libprotobuf.a" not in r.summary["binaries"]
    exe, stdout = own_proto_app(out, tmp_path / "app")
    assert "GOOGLE_PROTOBUF_VERSION 3021012" in stdout and "Qot_Sub ok" in stdout
    assert "libprotobuf" not in ok(run(["ldd", str(exe)]))  # the prefix's static libprotobuf, linked once
    assert nm_defined(exe).count(" T google::protobuf::MessageLite::ParseFromString(") == 1
    v = run_driver("verify", "--out", str(out))
    assert v.returncode == 0, v.output


def test_protoc_of_another_version_is_refused(small_pb321: Built, default_futu: Built, small_sdk: Path, tmp_path: Path) -> None:
    """protobuf-compiler from one place and libprotobuf-dev from another: refused when planning,
    before anything is configured (the configure's own check stays behind it)."""
    mixed = tmp_path / "mixed prefix"
    shutil.copytree(pb_prefix_of("--sdk", str(small_sdk), "--protobuf", "3.21.12"), mixed, symlinks=True)
    shutil.copy2(pb_prefix_of() / "bin" / "protoc", mixed / "bin" / "protoc")  # protoc 3.5.1
    out = tmp_path / "out"
    r = run_driver("--os", "linux", "--sdk", str(small_sdk), "--protobuf", str(mixed), "--out", str(out))
    assert r.returncode == 4, r.output
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"error: --protobuf {mixed}: its protoc ") and "protobuf 3.5.1" in first and "3.21.12" in first, r.stderr
    assert "what to do: install one version of both" in r.stderr
    assert "compile" not in r.stdout.split("configure")[-1]  # nothing compiled
    assert not out.exists()


# --- packaging routes ----------------------------------------------------------------------------


def test_conan_builds_against_the_graphs_protobuf(project_copy: Path, small_zip: Path, small_sdk: Path, small_pb321: Built, tmp_path: Path) -> None:
    """protobuf/3.21.12 in the test's own Conan cache (the PyPI 3.21.12 build, packaged as a team
    would package its protobuf), then ours with -o "*:protobuf=3.21.12", offline."""
    conan = script("conan")
    env = {**conan_home(tmp_path / "conan home"), **OFFLINE,
           "OPEND_TEST_PROTOBUF_PREFIX": str(pb_prefix_of("--sdk", str(small_sdk), "--protobuf", "3.21.12"))}
    recipe = tmp_path / "protobuf recipe"  # export-pkg writes its environment scripts beside the recipe
    shutil.copytree(ROOT / "tests/data/conan_protobuf", recipe)
    ok(run([conan, "export-pkg", str(recipe), "--version", "3.21.12"], env))
    created = ok(run([conan, "create", str(project_copy), "-o", "*:protobuf=3.21.12"], {**env, "OPEND_SDK": str(small_zip)}))
    assert "round-trip ok" in created and "library ok" in created  # test_package linked and ran
    deps = [p.read_text() for p in (project_copy / "test_package").rglob("FTAPI-*-data.cmake")]
    assert deps and all("lib/cmake/FTAPI/FTAPIStandard.cmake" in d for d in deps)  # the C++ standard reaches Conan's targets
    assert "opend-build: protobuf 3.21.12 (protobuf's CMake config" in created  # CMakeDeps' config for the graph's protobuf
    listed = json.loads(run([conan, "list", "opend-sdk/9.4.5418:*", "--format=json"], env).stdout)
    (revs,) = [r for r in listed["Local Cache"]["opend-sdk/9.4.5418"]["revisions"].values()]
    (package_id, info), = revs["packages"].items()
    assert info["info"]["options"] == {"brand": "futu", "protobuf": "3.21.12", "openssl": "system"}
    assert any(r.startswith("protobuf/3.21") for r in info["info"]["requires"])
    folder = Path(ok(run([conan, "cache", "path", f"opend-sdk/9.4.5418:{package_id}"], env)).strip())
    assert (folder / "Bin/Linux/libFTAPI.a").is_file()
    assert not (folder / "Bin/Linux/libprotobuf.a").exists() and not (folder / "Include/google").exists()  # one runtime: the graph's


def test_pip_wheel_takes_the_protobuf_choice_from_the_environment(project_copy: Path, small_zip: Path, tmp_path: Path) -> None:
    env = {"OPEND_SDK": str(small_zip), "OPEND_PROTOBUF": "system", "SKBUILD_CMAKE_BUILD_TYPE": "Debug"}
    ok(run([sys.executable, "-m", "pip", "wheel", str(project_copy), "--no-deps", "-w", str(tmp_path / "dist")], env))
    (wheel,) = (tmp_path / "dist").glob("opend_build-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "opend_build/cpp/Bin/Linux/libFTAPI.a" in names and "opend_build/cpp/Bin/Linux/libprotobuf.a" not in names
    assert "opend_build/inputs.json" in names  # the driver's pins and brand table ship with its modules
    config = zipfile.ZipFile(wheel).read("opend_build/cpp/lib/cmake/FTAPI/FTAPIConfig.cmake").decode()
    assert "find_dependency(Protobuf)" in config and "set(_opend_ships_protobuf OFF)" in config
