"""The SDK as the vendor ships it: the every-language download (FTAPI-<ver>/FTAPI4CPP/ beside
FTAPI4J/...) as .zip and .7z, both brands' C++ SDKs in one tree, and libraries that link into a
shared object (position-independent)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import sdkfactory
from conftest import Built, consume, must_build, run_driver


def download(root: Path, *sdks: Path) -> Path:
    """The vendor's download unpacked: FTAPI-9.4.5418/ with the C++ SDKs and the other languages."""
    top = root / "FTAPI-9.4.5418"
    for sdk in sdks:
        shutil.copytree(sdk, top / sdk.name.split("_")[0])  # FTAPI4CPP_9.4.5418 -> FTAPI4CPP
    for other in ("FTAPI4J", "FTAPI4NET", "FTAPI4PY"):
        (top / other).mkdir()
        (top / other / "README.txt").write_text(f"{other}: not C++\n")
    return top


@pytest.mark.parametrize("kind", ["zip", "7z"])
def test_every_language_download_builds(kind: str, small_sdk: Path, small_built: Built, work: Path, tmp_path: Path) -> None:
    top = download(tmp_path / "unpacked", small_sdk)
    archive = {"zip": sdkfactory.zip_tree, "7z": sdkfactory.sevenzip_tree}[kind](top, tmp_path / f"FTAPI-9.4.5418.{kind}")
    plan = run_driver("--os", "linux", "--sdk", str(archive), "--dry-run", "-v")
    assert plan.returncode == 0, plan.output
    assert "plan: FTAPI (futu 9.4.5418)" in plan.stdout
    out = work / "out" / f"download-{kind}"
    r = must_build("--os", "linux", "--sdk", str(archive), "--out", str(out), summary=tmp_path / "s.json")
    assert r.summary is not None and r.summary["sdk_version"] == "9.4.5418"
    assert json.loads((out / "build-manifest.json").read_text())["inputs"]["sdk_root"] == "FTAPI-9.4.5418/FTAPI4CPP"
    # the same SDK as the small one: its generated classes were reused, only Src/FTAPI compiled again
    assert r.summary["phases"]["sdk"]["generated"] == 0
    assert "library ok" in consume(out, "FTAPI", tmp_path / "consumer")


def test_download_with_both_brands_needs_brand(small_sdk: Path, moomoo_sdk: Path, tmp_path: Path) -> None:
    top = download(tmp_path / "unpacked", small_sdk, moomoo_sdk)
    r = run_driver("--os", "linux", "--sdk", str(top), "--dry-run")
    assert r.returncode == 3, r.output
    assert "holds more than one C++ SDK" in r.stderr and "--brand" in r.stderr and "Traceback" not in r.output
    moomoo = run_driver("--os", "linux", "--sdk", str(top), "--brand", "moomoo", "--dry-run", "-v")
    assert moomoo.returncode == 0, moomoo.output
    assert "plan: MMAPI (moomoo " in moomoo.stdout and "MMAPI4CPP/Include/Proto" in moomoo.stdout


def test_static_libraries_link_into_a_shared_object(small_built: Built, tmp_path: Path) -> None:
    """Every object of libFTAPI.a and libprotobuf.a is position-independent: the linker takes them
    whole into a .so (the vendor's prebuilt libFTAPI.a fails this: 'recompile with -fPIC')."""
    out = small_built.out
    assert json.loads((out / "build-manifest.json").read_text())["toolchain"]["position_independent"] is True
    src = tmp_path / "plugin.cpp"
    src.write_text('#include "Proto/Qot_Sub.pb.h"\nextern "C" int plugin_size() { Qot_Sub::Request r; r.mutable_c2s()->set_issuborunsub(true); return (int)r.ByteSizeLong(); }\n')
    lib = tmp_path / "libplugin.so"
    r = subprocess.run(["g++", "-shared", "-fPIC", "-std=gnu++17", "-o", str(lib), str(src), f"-I{out / 'Include'}", f"-I{out / 'Include/Proto'}",
                        "-Wl,--whole-archive", str(out / "Bin/Linux/libFTAPI.a"), str(out / "Bin/Linux/libprotobuf.a"), "-Wl,--no-whole-archive",
                        "-pthread"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "plugin_size" in subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True).stdout


def test_dry_run_reports_an_out_it_would_refuse(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("someone's work\n")
    r = run_driver("--os", "linux", "--out", str(theirs), "--dry-run", "-v")
    assert r.returncode == 2, r.output
    assert "plan: FTAPI" in r.stdout and "was not made by opend-build" in r.stderr
    assert (theirs / "notes.txt").read_text() == "someone's work\n" and sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]


def vendor_bins(root: Path, lib: str, channel: dict[str, str]) -> Path:
    """An SDK's Bin/ as the vendor lays it out for macOS and Windows (names only: plans read names)."""
    for config in ("Debug", "Release"):
        (root / "Bin/Mac" / config).mkdir(parents=True)
        for name in (f"lib{lib}.a", "libprotobuf.a", channel["mac"]):
            (root / "Bin/Mac" / config / name).write_bytes(b"stand-in")
        for folder in ("Windows", "Windows-x64"):
            for name in (f"{channel['win']}.dll", f"{channel['win']}.lib"):
                (root / "Bin" / folder / config).mkdir(parents=True, exist_ok=True)
                (root / "Bin" / folder / config / name).write_bytes(b"stand-in")
            for rt in ("MD", "MT"):
                (root / "Bin" / folder / config / rt).mkdir()
                for name in (f"{lib}.lib", "libprotobuf.lib"):
                    (root / "Bin" / folder / config / rt / name).write_bytes(b"stand-in")
    return root


@pytest.fixture(scope="module")
def shaped_sdks(small_sdk: Path, moomoo_sdk: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("shaped")
    futu = vendor_bins(Path(shutil.copytree(small_sdk, base / small_sdk.name)), "FTAPI", {"mac": "libFTAPIChannel.dylib", "win": "FTAPIChannel"})
    moomoo = vendor_bins(Path(shutil.copytree(moomoo_sdk, base / moomoo_sdk.name)), "MMAPI", {"mac": "libAPIChannel.dylib", "win": "MMAPIChannel"})
    return {"futu": futu, "moomoo": moomoo}


def sdk_defines(*argv: str) -> dict[str, str]:
    """The -D entries of a plan's SDK configure step, as the runner would pass them."""
    from opend_build import options
    from opend_build.inputs import resolve
    from opend_build.plan import Tools, make_plan
    from opend_build.platforms import toolchain_for

    opts = options.parse([*argv, "--dry-run"])
    plan = make_plan(opts, toolchain_for(opts), resolve(opts, os.environ), Path("/cache"), Tools("cmake", "ninja"), Path("/w"))
    configure = next(s.argv for s in plan.steps if s.kind == "configure" and s.phase == "sdk")
    return dict(a[2:].split("=", 1) for a in configure if a.startswith("-D"))


@pytest.mark.parametrize("brand,build_type,channel", [
    ("futu", "Debug", "libFTAPIChannel.dylib"), ("futu", "Release", "libFTAPIChannel.dylib"), ("moomoo", "Release", "libAPIChannel.dylib")])
def test_macos_plan_takes_the_channel_of_its_build_type(shaped_sdks: dict[str, Path], brand: str, build_type: str, channel: str) -> None:
    sdk = shaped_sdks[brand]
    d = sdk_defines("--os", "macos", "--sdk", str(sdk), "--build-type", build_type)
    assert d["OPEND_CHANNEL_LIBS"] == str(sdk / "Bin/Mac" / build_type / channel)  # one dylib, not both
    assert d["OPEND_BIN_DIR"] == d["OPEND_CHANNEL_DIR"] == f"Bin/Mac/{build_type}"


@pytest.mark.parametrize("arch,folder", [("x64", "Windows-x64"), ("x86", "Windows")])
@pytest.mark.parametrize("build_type,runtime", [("Debug", "MD"), ("Release", "MT")])
def test_windows_plan_takes_the_dll_and_its_import_library(shaped_sdks: dict[str, Path], arch: str, folder: str, build_type: str, runtime: str) -> None:
    sdk = shaped_sdks["futu"]
    d = sdk_defines("--os", "windows", "--sdk", str(sdk), "--arch", arch, "--build-type", build_type, "--runtime", runtime)
    where = sdk / "Bin" / folder / build_type
    assert d["OPEND_CHANNEL_LIBS"].split(";") == [str(where / "FTAPIChannel.dll"), str(where / "FTAPIChannel.lib")]
    assert d["OPEND_BIN_DIR"] == f"Bin/{folder}/{build_type}/{runtime}"  # FTAPI.lib, libprotobuf.lib
    assert d["OPEND_CHANNEL_DIR"] == f"Bin/{folder}/{build_type}"  # FTAPIChannel.dll and .lib, as the vendor has them
    moomoo = sdk_defines("--os", "windows", "--sdk", str(shaped_sdks["moomoo"]), "--arch", arch, "--build-type", build_type)
    assert "MMAPIChannel.dll" in moomoo["OPEND_CHANNEL_LIBS"]


def test_package_names_the_libraries_as_the_vendor_does() -> None:
    """What MSVC builds and the package links: FTAPI.lib, libprotobuf.lib (the headers' #pragma
    comment(lib, ...) names), the channel a SHARED IMPORTED target with its import library."""
    from conftest import ROOT

    top = (ROOT / "CMakeLists.txt").read_text()
    assert 'PREFIX "lib"' not in top
    assert "OUTPUT_NAME libprotobuf" in (ROOT / "cmake/protobuf/CMakeLists.txt").read_text()
    config = (ROOT / "cmake/OpenDConfig.cmake.in").read_text()
    assert "add_library(@OPEND_LIB@::Channel SHARED IMPORTED)" in config and "IMPORTED_IMPLIB" in config


@pytest.mark.parametrize("argv", [
    ["--os", "linux"], ["--os", "macos", "--build-type", "Debug"], ["--os", "macos"],
    ["--os", "windows", "--arch", "x86", "--runtime", "MT"], ["--os", "windows", "--build-type", "Debug"],
    ["--os", "windows", "--compiler", "mingw", "--build-type", "Debug"]])
def test_configures_without_the_driver_get_its_bin_folder(argv: list[str], tmp_path: Path) -> None:
    """pip wheel (and any configure the driver does not make) lays out Bin/ as the driver would for
    that OS, build type, arch and runtime: `build.py inputs` hands CMake the platform modules'
    answer (it used to put everything in Bin/Linux everywhere, then repeated the rule in CMake)."""
    from conftest import ROOT

    from opend_build import options, tools
    from opend_build.platforms import toolchain_for

    opts = options.parse(argv)
    tc = toolchain_for(opts)
    r = run_driver("inputs", *argv)
    assert r.returncode == 0, r.output
    script = tmp_path / "inputs.cmake"
    script.write_text(f"{r.stdout}\nmessage(\"${{OPEND_BIN_DIR}}|${{OPEND_CHANNEL_DIR}}\")\n")
    c = subprocess.run([tools.cmake(os.environ), "-P", str(script)], capture_output=True, text=True)
    assert c.returncode == 0 and c.stderr.strip().splitlines()[-1] == f"{tc.bin_dir}|{tc.channel_dir}", c.stderr
    assert (ROOT / "cmake" / "OpenDInputs.cmake").read_text().count("--build-type") == 1


def test_no_op_skip_needs_ninja(tmp_path: Path) -> None:
    """The publish record skips install only where Ninja's log tells that nothing ran; with the
    Visual Studio generator an edited .proto rebuilt by MSBuild must reach the output."""
    from opend_build import options, published
    from opend_build.inputs import resolve
    from opend_build.plan import Tools, make_plan
    from opend_build.platforms import toolchain_for

    for target, expect in (("linux", True), ("windows", False)):
        opts = options.parse(["--os", target, "--out", str(tmp_path / target / "out"), "--dry-run"])
        plan = make_plan(opts, toolchain_for(opts), resolve(opts, os.environ), tmp_path / target / "cache", Tools("cmake", "ninja"), tmp_path)
        plan.out.mkdir(parents=True)
        (plan.out / "build-manifest.json").write_text("{}")
        published.remember(plan)
        assert published.up_to_date(plan) is expect, (target, plan.toolchain.generator)


def with_unpacked_protobuf(small_sdk: Path, folder: str, dest: Path) -> Path:
    """A copy of the small SDK whose protobuf is unpacked as Src/<folder>/ instead of the tarball."""
    import tarfile

    sdk = Path(shutil.copytree(small_sdk, dest / folder / small_sdk.name))
    tarball = sdk / "Src" / "protobuf-all-3.5.1.tar.gz"
    with tarfile.open(tarball) as tf:
        tf.extractall(dest / folder / "unpacked", filter="data")
    shutil.move(str(dest / folder / "unpacked" / "protobuf-3.5.1"), str(sdk / "Src" / folder))
    tarball.unlink()
    return sdk


PACK = {"zip": sdkfactory.zip_tree, "7z": sdkfactory.sevenzip_tree, "tar.gz": sdkfactory.tar_tree}


@pytest.fixture(scope="module")
def protobuf_shapes(small_sdk: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The small SDK with each protobuf shape the vendor ships: the tarball, protobuf-3.5.1/, protobuf/."""
    tmp = tmp_path_factory.mktemp("pbshapes")
    return {"tarball": small_sdk, **{folder: with_unpacked_protobuf(small_sdk, folder, tmp) for folder in ("protobuf-3.5.1", "protobuf")}}


@pytest.mark.parametrize("kind", ["folder", *PACK])
@pytest.mark.parametrize("shape", ["tarball", "protobuf-3.5.1", "protobuf"])
def test_every_archive_format_plans_each_protobuf_shape(kind: str, shape: str, protobuf_shapes: dict[str, Path], tmp_path: Path) -> None:
    """Whatever the SDK comes in, its own protobuf is planned from the SDK alone: an unpacked one
    inside an archive is read where the SDK's unpack step will put it (it is not on disk yet)."""
    from opend_build import options
    from opend_build.inputs import resolve

    root = protobuf_shapes[shape]
    sdk = root if kind == "folder" else PACK[kind](root, tmp_path / f"{root.name}.{kind}")
    inputs = resolve(options.parse(["--os", "linux", "--sdk", str(sdk), "--dry-run"]), {"OPEND_BUILD_CACHE": str(tmp_path / "cache")})
    pb = inputs.protobuf
    assert (pb.provider, pb.version) == ("build", "3.5.1")
    unpacks = [s.action.value for s in inputs.prepare if s.action is not None and s.action.value.startswith("unpack")]
    assert unpacks == ([] if kind == "folder" else ["unpack_sdk"]) + (["unpack_protobuf"] if shape == "tarball" else [])
    if shape != "tarball":
        assert pb.src is not None and pb.src.parts[-2:] == (shape, "src")
        if kind != "folder":
            assert pb.src.is_relative_to(tmp_path / "cache" / "sdk") and not pb.src.exists()


def test_unpacked_protobuf_in_an_sdk_archive_builds(protobuf_shapes: dict[str, Path], work: Path, tmp_path: Path) -> None:
    """Some SDK versions carry protobuf unpacked (Src/protobuf-3.5.1/) instead of the tarball; as a
    .zip it builds (its own protobuf build, from the unpacked SDK)."""
    sdk = sdkfactory.zip_tree(protobuf_shapes["protobuf-3.5.1"], tmp_path / "FTAPI4CPP_9.4.5418.zip")
    out = work / "out" / "unpacked-protobuf-zip"
    r = must_build("--os", "linux", "--sdk", str(sdk), "--out", str(out), summary=tmp_path / "s.json")
    assert r.summary is not None and r.summary["protobuf_version"] == "3.5.1"
    assert "library ok" in consume(out, "FTAPI", tmp_path / "consumer")


@pytest.fixture(scope="module")
def sdk_10(open_inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sdkfactory.make_sdk_10(tmp_path_factory.mktemp("sdk10"), "futu", open_inputs["futu"],
                                  only=["Common.proto", "Qot_Common.proto", "Qot_Sub.proto"])


def test_10x_generation_builds_the_channel_from_source_with_openssl(sdk_10: Path, small_built: Built, work: Path, tmp_path: Path) -> None:
    """The 10.x shape: a vendor CMakeLists.txt (not used), no protobuf source (the pinned default is
    built), the channel as source in Src/FTAPIChannel/ including <openssl/sha.h>: it is compiled into
    libFTAPI.a, OpenSSL is found by CMake and found again by the package, and the consumer runs it."""
    plan = run_driver("--os", "linux", "--sdk", str(sdk_10), "--dry-run", "-v")
    assert plan.returncode == 0, plan.output
    assert "note: the SDK's own CMakeLists.txt is not used" in plan.stdout
    assert "note: the SDK carries no protobuf source: the pinned default 3.5.1 is built" in plan.stdout
    assert f"sources: {sdk_10 / 'Src' / 'FTAPI'}, {sdk_10 / 'Src' / 'FTAPIChannel'} compiled into libFTAPI" in plan.stdout
    out = work / "out" / "sdk-10"
    r = must_build("--os", "linux", "--sdk", str(sdk_10), "--out", str(out), summary=tmp_path / "s.json")
    assert r.summary is not None and r.summary["sdk_version"] == "10.2.6208"
    usage = json.loads((out / "lib/cmake/FTAPI/FTAPIUsage.json").read_text())
    assert usage["third_party"] == ["OpenSSL"] and usage["system_libs"] == ["ssl", "crypto"] and usage["channel"] == ""
    assert usage["protobuf_file"] == "libprotobuf.a" and usage["protobuf_defines"] == ["HAVE_PTHREAD"]  # from the libprotobuf target itself
    assert "find_dependency(${_opend_pkg})" in (out / "lib/cmake/FTAPI/FTAPIConfig.cmake").read_text()
    symbols = subprocess.run(["nm", "--defined-only", str(out / "Bin/Linux/libFTAPI.a")], capture_output=True, text=True).stdout
    assert " T FTAPIChannel_BodySHA1" in symbols and " T FTAPIChannel_Init" in symbols
    assert not list((out / "Bin").rglob("*Channel.so"))  # no closed binary: nothing to ship
    seen = consume(out, "FTAPI", tmp_path / "consumer")
    assert "library ok" in seen and "channel ok: SHA-1 by OpenSSL" in seen


def test_conan_links_the_graphs_openssl(sdk_10: Path, project_copy: Path, tmp_path: Path) -> None:
    """-o "*:openssl=<version>": the 10.x sources are built against the Conan graph's OpenSSL (this
    machine's, packaged as a team packages its own), and the package's usage file becomes component
    requirements on openssl::ssl and openssl::crypto instead of library names; the test_package links
    them through the package and runs the channel's SHA-1."""
    import re

    from conftest import OFFLINE, ROOT, conan_home, ok, run, script

    conan = script("conan")
    env = {**conan_home(tmp_path / "conan home"), **OFFLINE}
    version = re.search(r'OPENSSL_VERSION_STR "([^"]+)"', Path("/usr/include/openssl/opensslv.h").read_text()).group(1)  # type: ignore[union-attr]
    recipe = tmp_path / "openssl recipe"  # export-pkg writes its environment scripts beside the recipe
    shutil.copytree(ROOT / "tests/data/conan_openssl", recipe)
    ok(run([conan, "export-pkg", str(recipe), "--version", version], env))
    created = ok(run([conan, "create", str(project_copy), "--version", "10.2.6208", "-o", f"*:openssl={version}"], {**env, "OPEND_SDK": str(sdk_10)}))
    assert "Component target declared 'OpenSSL::SSL'" in created  # the build found the graph's OpenSSL through CMakeDeps
    assert "library ok" in created and "channel ok: SHA-1 by OpenSSL" in created  # test_package linked it through the package and ran
    deps = "".join(p.read_text() for p in (project_copy / "test_package").rglob("FTAPI-*-data.cmake"))
    assert re.search(r"FTAPI_FTAPI_DEPENDENCIES_\w+ FTAPI::protobuf OpenSSL::SSL OpenSSL::Crypto\)", deps), deps  # targets, not -lssl -lcrypto


def test_missing_openssl_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    """When the SDK's sources include OpenSSL and CMake finds none, configure stops with our line,
    which the driver turns into exit 6 (toolchain missing) naming the package to install."""
    from opend_build import tools
    from opend_build.diagnose import diagnose
    from opend_build.errors import ToolchainError

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "a.cpp").write_text("#include <openssl/sha.h>\n")
    (tmp_path / "CMakeLists.txt").write_text(
        f'cmake_minimum_required(VERSION 3.21)\nproject(p CXX)\ninclude("{root.as_posix()}/cmake/OpenDThirdParty.cmake")\n'
        'add_library(u INTERFACE)\nopend_link_third_party(u "${CMAKE_CURRENT_SOURCE_DIR}/a.cpp" pk tg lb)\n')
    r = subprocess.run([tools.cmake(os.environ), "-S", str(tmp_path), "-B", str(tmp_path / "b"), "-DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    err = diagnose((r.stdout + r.stderr).splitlines(), "configure FTAPI", r.returncode, tmp_path / "log", None)
    assert isinstance(err, ToolchainError) and err.exit_code == 6, err
    assert err.message == "the SDK's sources include OpenSSL headers and CMake finds no OpenSSL"
    assert "libssl-dev" in err.hint


@pytest.mark.parametrize("shape", ["no-proto", "sources-elsewhere"])
def test_unrecognised_shape_is_one_line_naming_what_was_found(shape: str, small_sdk: Path, tmp_path: Path) -> None:
    if shape == "no-proto":  # a tree of another shape entirely: say what is there and what was looked for
        sdk = tmp_path / "FTAPI4CPP_11.0"
        for name in ("CMakeLists.txt", "src/api.cpp", "include/api.h", "proto/Qot_Sub.proto"):
            (sdk / name).parent.mkdir(parents=True, exist_ok=True)
            (sdk / name).write_text("x\n")
        needles = ["expected Include/Proto/*.proto", "found: CMakeLists.txt, include/, proto/, src/"]
    else:  # sources the driver would silently leave out
        sdk = Path(shutil.copytree(small_sdk, tmp_path / small_sdk.name))
        (sdk / "Src" / "api").mkdir()
        (sdk / "Src" / "api" / "Client.cpp").write_text("int x;\n")
        needles = ["unrecognised SDK shape: C++ sources outside Src/FTAPI/ and Src/FTAPIChannel/: Src/api/Client.cpp"]
    r = run_driver("--os", "linux", "--sdk", str(sdk), "--out", str(tmp_path / "out"))
    assert r.returncode == 3, r.output
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "Traceback" not in r.output
    assert all(n in lines[0] for n in needles), lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, channel, vendor_libs", [
    (["--os", "linux"], "vendor", 1),  # the SDK ships Bin/Ubuntu16.04/libFTAPIChannel.so
    (["--os", "linux", "--channel", "open"], "open", 0),
    (["--os", "linux", "--channel", "vendor"], "vendor", 1),
    (["--os", "macos"], "auto", 0),  # no Bin/Mac in the small SDK: the open channel
])
def test_channel_choice(argv: list[str], channel: str, vendor_libs: int, small_sdk: Path) -> None:
    from opend_build import options
    from opend_build.inputs import cmake_entries, resolve

    inputs = resolve(options.parse([*argv, "--sdk", str(small_sdk), "--dry-run"]), os.environ)
    assert inputs.channel == channel and len(inputs.channel_libs) == vendor_libs
    assert cmake_entries(inputs)["OPEND_CHANNEL"] == channel


def test_vendor_channel_where_there_is_none_is_exit_3(small_sdk: Path) -> None:
    for argv in (["--os", "linux"], ["--os", "macos", "--sdk", str(small_sdk)]):
        r = run_driver(*argv, "--channel", "vendor", "--dry-run", "-v")
        assert r.returncode == 3 and "--channel vendor: " in r.stderr, r.output
    plan = run_driver("--os", "linux", "--dry-run", "-v")
    assert "  channel: auto: opend-build's open channel (no SDK)" in plan.stdout and "-DOPEND_CHANNEL=auto" in plan.stdout


@pytest.mark.parametrize("record, target, arch, cross, line", [
    ({"kind": "open", "file": "Bin/Linux/libFTAPIChannel.so", "planned": "auto"}, "linux", "x86_64", False,
     "open, Bin/Linux/libFTAPIChannel.so (opend-build's open channel)"),
    ({"kind": "vendor", "file": "Bin/Ubuntu16.04/libFTAPIChannel.so", "planned": "vendor"}, "linux", "x86_64", False,
     "vendor, Bin/Ubuntu16.04/libFTAPIChannel.so (the SDK's own)"),
    ({"kind": "none", "file": None, "planned": "auto"}, "linux", "x86_64", False,
     "none: OpenSSL's libcrypto 3 was not found; install it: Debian/Ubuntu: apt-get install libssl-dev, then run again"),
    ({"kind": "none", "file": None, "planned": "auto"}, "linux", "aarch64", True,
     "none: no aarch64 OpenSSL libcrypto 3 was found; install it: dpkg --add-architecture arm64 && apt-get update && "
     "apt-get install libssl-dev:arm64, then run again"),
    ({"kind": "none", "file": None, "planned": "auto"}, "macos", "", False,
     "none: OpenSSL's libcrypto 3 was not found; install it: brew install openssl@3, and OPENSSL_ROOT_DIR=$(brew --prefix openssl@3), then run again"),
])
def test_the_summarys_channel_line(record: dict[str, object], target: str, arch: str, cross: bool, line: str) -> None:
    from opend_build.summary import channel_line, channel_summary

    c = channel_summary(record, target, arch, cross)
    assert channel_line(c) == line and c["implicit"] == (record["kind"] == "none")
