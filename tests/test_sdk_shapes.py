"""The SDK as the vendor ships it: the every-language download (FTAPI-<ver>/FTAPI4CPP/ beside
FTAPI4J/...) as .zip and .7z, both brands' C++ SDKs in one tree, and libraries that link into a
shared object (position-independent)."""

from __future__ import annotations

import json
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
    plan = run_driver("--os", "linux", "--sdk", str(archive), "--dry-run")
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
    moomoo = run_driver("--os", "linux", "--sdk", str(top), "--brand", "moomoo", "--dry-run")
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
    r = run_driver("--os", "linux", "--out", str(theirs), "--dry-run")
    assert r.returncode == 2, r.output
    assert "plan: FTAPI" in r.stdout and "was not made by opend-build" in r.stderr
    assert (theirs / "notes.txt").read_text() == "someone's work\n" and sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]
