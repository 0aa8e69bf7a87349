"""Real builds with other toolchains on this machine: clang + libc++, the old libstdc++ ABI, CMake 3.2x.
Each uses the small SDK (three protocol files); doctor tells the libraries apart."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Built, consume, run_driver

CLANG_CONSUMER = ["-DCMAKE_CXX_COMPILER=clang++", "-DCMAKE_CXX_FLAGS=-stdlib=libc++", "-DCMAKE_EXE_LINKER_FLAGS=-stdlib=libc++"]


def nm(lib: Path) -> str:
    return subprocess.run(["nm", "-C", str(lib)], capture_output=True, text=True, check=True).stdout


def test_clang_libcxx_build_links_a_libcxx_consumer(small_clang: Built, tmp_path: Path) -> None:
    lib = small_clang.out / "Bin/Linux/libFTAPI.a"
    symbols = nm(lib)
    assert "std::__1::" in symbols and "std::__cxx11::" not in symbols
    assert "std::__1::" in nm(small_clang.out / "Bin/Linux/libprotobuf.a")
    m = json.loads((small_clang.out / "build-manifest.json").read_text())
    assert m["toolchain"]["compiler_id"] == "Clang" and "-stdlib=libc++" in " ".join(m["toolchain"]["flags"])
    out = consume(small_clang.out, "FTAPI", tmp_path / "consumer", extra=CLANG_CONSUMER)
    assert "round-trip ok" in out and "library ok" in out


def test_old_abi_build(small_abi0: Built, small_built: Built, tmp_path: Path) -> None:
    old, new = nm(small_abi0.out / "Bin/Linux/libFTAPI.a"), nm(small_built.out / "Bin/Linux/libFTAPI.a")
    assert "std::__cxx11::" not in old and "std::__cxx11::" in new
    m = json.loads((small_abi0.out / "build-manifest.json").read_text())
    assert "_GLIBCXX_USE_CXX11_ABI=0" in " ".join(m["toolchain"]["flags"])
    out = consume(small_abi0.out, "FTAPI", tmp_path / "consumer", extra=["-DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0"])
    assert "library ok" in out


@pytest.mark.parametrize(
    "which,args,expect",
    [
        ("small_built", [], ["libstdc++ (new __cxx11 ABI)", "-> links as is", "verdict: the prebuilt libraries link"]),
        ("small_abi0", [], ["libstdc++ (old ABI)", "needs rebuild: built against libstdc++ (old ABI), this toolchain uses libstdc++ (new __cxx11 ABI)"]),
        ("small_clang", [], ["libc++", "needs rebuild: built against libc++"]),
        ("small_clang", ["--compiler", "clang"], ["libc++", "-> links as is"]),
        ("small_abi0", ["--cxx11-abi", "0"], ["libstdc++ (old ABI)", "-> links as is"]),
    ],
)
def test_doctor_tells_the_abis_apart(which: str, args: list[str], expect: list[str], request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(which)
    r = run_driver("doctor", "--sdk", str(built.out), *args)
    assert r.returncode == 0, r.output
    lib_line = next(line for line in r.stdout.splitlines() if "libFTAPI.a" in line)
    for e in expect:
        assert e in (r.stdout if e.startswith("verdict") else lib_line), r.stdout
    assert "ELF x86_64" in lib_line
    assert "protobuf: the prebuilt libraries were made for 3.5.1; this machine has protobuf 3.21.12 installed" in r.stdout
    assert "if your application links protobuf 3.21.12, it cannot also link 3.5.1" in r.stdout and "--protobuf system" in r.stdout


def test_doctor_checks_this_machine_alone(tmp_path: Path) -> None:
    """What the machine has: the compiler, cmake, ninja, and the protobuf CMake would find (here a
    fake one of ours, so the test needs no protobuf installed); a protoc of another version is named."""
    from test_protobuf import system_like

    r = run_driver("doctor", env=system_like(tmp_path / "usr"))
    assert r.returncode == 0, r.output
    for needle in ("this machine (linux):", "C++ compiler: ", "cmake: ", "ninja: ", "sccache: ",
                   f"protobuf headers: 3.21.12 in {tmp_path}/usr/include", f"protoc: 3.21.12 at {tmp_path}/usr/bin/protoc",
                   "--protobuf system builds the SDK against this protobuf 3.21.12", "verdict: this machine builds the SDK"):
        assert needle in r.stdout, r.stdout
    mixed = run_driver("doctor", env=system_like(tmp_path / "mixed", protoc_says="libprotoc 3.19.0"))
    assert "mismatch: protoc 3.19.0 cannot generate code for the 3.21.12 headers" in mixed.stdout, mixed.output


@pytest.mark.build
def test_doctor_finds_the_hosts_debian_protobuf_and_libcxx() -> None:
    """On the suite's machine (tests/run.py installs libprotobuf-dev, protobuf-compiler, clang, libc++)."""
    r = run_driver("doctor")
    assert "protobuf headers: 3.21.12 in /usr/include" in r.stdout and "protoc: 3.21.12 at " in r.stdout, r.output
    clang = run_driver("doctor", "--compiler", "clang")
    assert clang.returncode == 0 and "libc++: clang builds with -stdlib=libc++" in clang.stdout, clang.output


def test_doctor_reads_an_sdk_archive(small_abi0: Built, tmp_path: Path) -> None:
    archive = shutil.make_archive(str(tmp_path / "FTAPI4CPP_0.0.1"), "zip", small_abi0.out.parent, small_abi0.out.name)
    r = run_driver("doctor", "--sdk", archive)
    assert r.returncode == 0, r.output
    assert "needs rebuild" in r.stdout


def test_cmake_3_2x_builds_release(small_release: Built, tmp_path: Path) -> None:
    """CMake 3.2x (Debian's) and a Release build: the suite's one optimised build of the driver."""
    m = json.loads((small_release.out / "build-manifest.json").read_text())
    assert m["toolchain"]["cmake_version"].startswith("3.2"), m["toolchain"]["cmake_version"]
    assert "-O3" in m["toolchain"]["flags"] and small_release.summary["build_type"] == "Release"
    assert "library ok" in consume(small_release.out, "FTAPI", tmp_path / "consumer")
