"""Builds from an SDK in the vendor's shape, as a folder and as archives, for both brands."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import sdkfactory
from conftest import Built, consume, must_build

from opend_build.sdk import BRANDS


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode) + str(p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("brand,lib", sorted(BRANDS.items()))
def test_sdk_build_makes_the_full_library(brand: str, lib: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    built: Built = request.getfixturevalue(f"sdk_{brand}")
    out = built.out
    assert (out / "Bin/Linux" / f"lib{lib}.a").is_file()
    assert not (out / "Bin/Linux" / f"lib{lib}Proto.a").exists()
    assert (out / "Bin/Linux" / f"lib{lib}Channel.so").is_file()  # the vendor's channel, shipped beside
    symbols = subprocess.run(["nm", "-C", str(out / "Bin/Linux" / f"lib{lib}.a")], capture_output=True, text=True).stdout
    assert f"{lib}::PackRequest" in symbols  # from Src/<Lib>
    assert "Qot_Sub::Request::Request()" in symbols  # from the generated classes
    assert (out / "Include" / f"{lib}.h").is_file()
    # the vendor's stale generated headers were replaced by ours, not copied
    assert "stale vendor-generated header" not in (out / "Include/Proto/Common.pb.h").read_text()
    assert "stale vendor-generated header" not in (out / "Include/google/protobuf/message.h").read_text()
    m = json.loads((out / "build-manifest.json").read_text())
    assert m["brand"] == brand and m["sdk_version"] == "10.11.7108"
    assert len([f for f in m["inputs"]["files"] if f["path"].endswith(".proto")]) == len(list((out / "Include/Proto").glob("*.proto")))
    assert any(f["path"] == f"Src/{lib}/Packet.cpp" for f in m["inputs"]["files"])
    stdout = consume(out, lib, tmp_path / "consumer")
    assert "round-trip ok" in stdout and "library ok" in stdout


def test_sdk_is_never_modified(futu_sdk: Path, work: Path) -> None:
    before = tree_digest(futu_sdk)
    must_build("--os", "linux", "--sdk", str(futu_sdk), "--out", str(work / "out" / "sdk-futu-again"), summary=work / "again.json")
    assert tree_digest(futu_sdk) == before


@pytest.mark.parametrize("kind", ["zip", "7z", "tar.gz"])
def test_sdk_archive_builds_the_same(kind: str, sdk_futu: Built, futu_sdk: Path, work: Path) -> None:
    make = {"zip": sdkfactory.zip_tree, "7z": sdkfactory.sevenzip_tree, "tar.gz": sdkfactory.tar_tree}[kind]
    archive = make(futu_sdk, work / f"{futu_sdk.name}.{kind}")
    out = work / "out" / f"sdk-futu-{kind}"
    r = must_build("--os", "linux", "--sdk", str(archive), "--out", str(out), summary=work / f"{kind}.json")
    # Same SDK, same build folder: the archive reuses the folder's work.
    assert r.summary["phases"]["sdk"]["generated"] == 0  # type: ignore[index]
    a = {o["path"]: o["sha256"] for o in json.loads((out / "build-manifest.json").read_text())["outputs"]}
    b = {o["path"]: o["sha256"] for o in json.loads((sdk_futu.out / "build-manifest.json").read_text())["outputs"]}
    assert a == b


def _import_graph_dependents(proto_dir: Path, name: str) -> set[str]:
    """Files that (transitively) import `name`, and name itself."""
    imports = {p.name: {line.split('"')[1] for line in p.read_text(encoding="utf-8").splitlines() if line.startswith("import ")} for p in proto_dir.glob("*.proto")}
    found, frontier = {name}, {name}
    while frontier:
        frontier = {f for f, deps in imports.items() if deps & frontier} - found
        found |= frontier
    return found


def test_incremental_rebuilds_only_what_depends(futu_sdk: Path, sdk_futu: Built, tmp_path: Path) -> None:
    copy = tmp_path / futu_sdk.name  # same SDK identity -> the shared build folder
    shutil.copytree(futu_sdk, copy)
    out = tmp_path / "out"
    args = ("--os", "linux", "--sdk", str(copy), "--out", str(out))
    must_build(*args, summary=tmp_path / "0.json")

    noop_summary = must_build(*args, summary=tmp_path / "1.json").summary
    assert noop_summary is not None and noop_summary["out_up_to_date"] is True
    noop = noop_summary["phases"]
    assert (noop["protobuf"]["compiled"], noop["sdk"]["generated"], noop["sdk"]["compiled"]) == (0, 0, 0)
    assert "install" not in noop and "publish" not in noop

    # mtime-only touch: protoc reruns, output identical, nothing recompiles
    proto = copy / "Include/Proto/Qot_GetIpoList.proto"
    os.utime(proto)
    touched = must_build(*args, summary=tmp_path / "2.json").summary["phases"]["sdk"]  # type: ignore[index]
    assert touched["compiled"] == 0

    # a real edit: that file and its importers regenerate and recompile, nothing else
    expected = _import_graph_dependents(copy / "Include/Proto", "Qot_Sub.proto")
    text = (copy / "Include/Proto/Qot_Sub.proto").read_text(encoding="utf-8")
    (copy / "Include/Proto/Qot_Sub.proto").write_text(text.replace("message S2C\n{\n", "message S2C\n{\n\toptional int32 opendTestField = 99;\n"), encoding="utf-8")
    inodes = {f.relative_to(out).as_posix(): f.stat().st_ino for f in out.rglob("*") if f.is_file()}
    edited = must_build(*args, summary=tmp_path / "3.json").summary["phases"]["sdk"]  # type: ignore[index]
    assert edited["generated"] == len(expected)
    # the install replaced what changed and kept the rest (hard links from the previous output)
    replaced = sorted(rel for rel, ino in inodes.items() if (out / rel).stat().st_ino != ino)
    assert replaced == ["Bin/Linux/libFTAPI.a", "Include/Proto/Qot_Sub.pb.cc", "Include/Proto/Qot_Sub.pb.h", "Include/Proto/Qot_Sub.proto",
                        "build-manifest.json", "sbom.cdx.json", "sbom.spdx.json"], replaced
    outputs = json.loads((out / "build-manifest.json").read_text())["outputs"]
    assert all(hashlib.sha256((out / o["path"]).read_bytes()).hexdigest() == o["sha256"] for o in outputs) and len(outputs) == len(inodes) - 3
    # nothing imports Qot_Sub: one translation unit (the unity batch holding Qot_Sub.pb.cc) plus
    # the two SDK sources that include Qot_Sub.pb.h through <Lib>.h
    assert expected == {"Qot_Sub.proto"}
    assert edited["compiled"] == 3
    assert "opendTestField" in (out / "Include/Proto/Qot_Sub.pb.h").read_text()

    # and back, so the shared build folder matches the shared SDK again
    (copy / "Include/Proto/Qot_Sub.proto").write_text(text, encoding="utf-8")
    must_build(*args, summary=tmp_path / "4.json")


def test_noop_leaves_the_output_alone_until_something_changes(small_sdk: Path, tmp_path: Path) -> None:
    """A run that rebuilds nothing skips install and publish, unless the output was touched or the
    build folder moved on for another output since."""
    sdk = tmp_path / small_sdk.name  # same SDK identity -> the shared build folder
    shutil.copytree(small_sdk, sdk)
    one, two = tmp_path / "one", tmp_path / "two"

    def build(out: Path, name: str) -> dict:  # type: ignore[type-arg]
        r = must_build("--os", "linux", "--sdk", str(sdk), "--out", str(out), summary=tmp_path / f"{name}.json")
        assert r.summary is not None
        return r.summary

    build(one, "first")
    before = tree_digest(one)
    assert build(one, "noop")["out_up_to_date"] is True
    assert tree_digest(one) == before  # not even an mtime changed

    header = one / "Include/Proto/Qot_Sub.pb.h"
    header.unlink()
    assert build(one, "deleted")["out_up_to_date"] is False
    assert header.is_file()
    text = header.read_text()
    header.write_text(text + "// mine\n")
    assert build(one, "edited out")["out_up_to_date"] is False
    assert header.read_text() == text

    # the shared build folder moves on for another output: the first one is not "up to date"
    proto = sdk / "Include/Proto/Qot_Sub.proto"
    original = proto.read_text(encoding="utf-8")
    proto.write_text(original.replace("message S2C\n{\n", "message S2C\n{\n\toptional int32 opendNoopField = 98;\n"), encoding="utf-8")
    assert build(two, "two")["out_up_to_date"] is False
    assert "opendNoopField" in (two / "Include/Proto/Qot_Sub.pb.h").read_text()
    assert build(one, "one again")["out_up_to_date"] is False
    assert "opendNoopField" in header.read_text()
    proto.write_text(original, encoding="utf-8")
    assert build(one, "back")["out_up_to_date"] is False
    assert "opendNoopField" not in header.read_text()
    assert build(two, "two again")["out_up_to_date"] is False
    assert "opendNoopField" not in (two / "Include/Proto/Qot_Sub.pb.h").read_text()
    assert build(two, "two noop")["out_up_to_date"] is True
