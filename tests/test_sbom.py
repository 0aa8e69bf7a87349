"""SBOMs beside every output (SPDX 2.3 and CycloneDX 1.5), derived from build-manifest.json and
checked by the formats' own validators from PyPI (spdx-tools, cyclonedx-python-lib), not by our
reading of the schemas."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Built

from opend_build import sbom


def spdx_problems(doc: dict[str, Any], tmp_path: Path) -> list[str]:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    f = tmp_path / "doc.spdx.json"
    f.write_text(json.dumps(doc))
    return [m.validation_message for m in validate_full_spdx_document(parse_file(str(f)))]


def cyclonedx_problem(doc: dict[str, Any]) -> object:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(doc))


def check_package(manifest: dict[str, Any], files: dict[str, str], spdx: dict[str, Any], cdx: dict[str, Any], tmp_path: Path, root: str = "") -> None:
    """The SBOMs a package carries (a wheel, a Conan package): the validators accept them, they are
    what sbom.py derives from the package's own build-manifest.json (`manifest`; its files under
    `root`), and they name every file of its SDK tree with the sha256 it has in the package
    (`files`: path -> sha256), leaving out only the manifest and the SBOMs themselves."""
    files = {path: sha for path, sha in files.items() if path != f"{root}build-manifest.json"}
    assert spdx_problems(spdx, tmp_path) == [] and cyclonedx_problem(cdx) is None
    assert spdx == sbom.spdx(manifest, root) and cdx == sbom.cyclonedx(manifest, root)
    named = {f["fileName"].removeprefix("./"): f["checksums"][1]["checksumValue"] for f in spdx["files"]}
    tree = {path: sha for path, sha in files.items() if path.startswith(root) and path not in (f"{root}{sbom.SPDX_NAME}", f"{root}{sbom.CYCLONEDX_NAME}")}
    assert named == tree and len(named) > 20
    assert {c["name"]: c["hashes"][0]["content"] for c in cdx["components"] if c["type"] == "file"} == tree
    assert "protobuf" in {p["name"] for p in spdx["packages"]}


MANIFEST: dict[str, Any] = {
    "tool": {"name": "opend-build", "version": "0.1.0"}, "brand": "futu", "lib": "FTAPI", "sdk_version": "9.4.5418",
    "protobuf_version": "29.0", "os": "linux", "build_type": "Release",
    "inputs": {"origin": "sdk", "sdk_sha256": "ab" * 32,
               "packages": [{"project": "grpcio_tools", "version": "1.70.0", "filename": "grpcio_tools-1.70.0.tar.gz", "sha256": "cd" * 32,
                             "subdir": "grpcio_tools-1.70.0/third_party"}],
               "protobuf": {"provider": "build", "version": "29.0", "origin": "PyPI grpcio_tools 1.70.0"}},
    "toolchain": {"compiler_id": "GNU", "compiler_version": "12.2.0", "cmake_version": "4.4.0"},
    "channel": {"kind": "vendor", "file": "Bin/Linux/libFTAPIChannel.so", "sha256": "ef" * 32},
    "linked": [{"name": "openssl", "version": "3.0.19"}],
    "reproducibility": {"source_date_epoch": "1764547200"},
    "outputs": [{"path": "Bin/Linux/libFTAPI.a", "sha256": "01" * 32, "sha1": "02" * 20},
                {"path": "Bin/Linux/libFTAPIChannel.so", "sha256": "ef" * 32, "sha1": "03" * 20},
                {"path": "Include/Proto/Qot_Sub.pb.h", "sha256": "04" * 32, "sha1": "05" * 20}],
}


def test_documents_validate_and_list_what_went_in(tmp_path: Path) -> None:
    docs = sbom.documents(MANIFEST)
    spdx, cdx = docs[sbom.SPDX_NAME], docs[sbom.CYCLONEDX_NAME]
    assert spdx_problems(spdx, tmp_path) == [] and cyclonedx_problem(cdx) is None
    purls = {ref["referenceLocator"] for p in spdx["packages"] for ref in p.get("externalRefs", [])}
    assert purls == {"pkg:generic/futu/FTAPI4CPP@9.4.5418", "pkg:pypi/grpcio_tools@1.70.0", "pkg:github/protocolbuffers/protobuf@v29.0",
                     "pkg:github/abseil/abseil-cpp", "pkg:github/protocolbuffers/utf8_range", "pkg:generic/futu/FTAPIChannel@9.4.5418",
                     "pkg:generic/openssl@3.0.19"}
    assert {c["name"] for c in cdx["components"] if c["type"] == "file"} == {o["path"] for o in MANIFEST["outputs"]}
    assert [f["checksums"][1]["checksumValue"] for f in spdx["files"]] == [o["sha256"] for o in MANIFEST["outputs"]]
    assert spdx["creationInfo"]["created"] == cdx["metadata"]["timestamp"] == "2025-12-01T00:00:00Z"
    assert "Tool: GNU-12.2.0" in spdx["creationInfo"]["creators"] and "Tool: CMake-4.4.0" in spdx["creationInfo"]["creators"]


def test_documents_follow_from_the_manifest_alone() -> None:
    """The same manifest gives the same bytes; another output file gives another identity."""
    assert json.dumps(sbom.documents(MANIFEST)) == json.dumps(sbom.documents(copy.deepcopy(MANIFEST)))
    other = copy.deepcopy(MANIFEST)
    other["outputs"][0]["sha256"] = "ff" * 32
    a, b = sbom.documents(MANIFEST), sbom.documents(other)
    assert a[sbom.SPDX_NAME]["documentNamespace"] != b[sbom.SPDX_NAME]["documentNamespace"]
    assert a[sbom.CYCLONEDX_NAME]["serialNumber"] != b[sbom.CYCLONEDX_NAME]["serialNumber"]


def test_a_wheels_documents_name_the_files_by_their_paths_in_the_wheel(tmp_path: Path) -> None:
    """PEP 770's .dist-info/sboms/ describe the wheel: the same documents, the files under the
    folder the wheel keeps the SDK in, and identities of their own."""
    plain, wheel = sbom.documents(MANIFEST), sbom.documents(MANIFEST, "opend_build/cpp")
    assert spdx_problems(wheel[sbom.SPDX_NAME], tmp_path) == [] and cyclonedx_problem(wheel[sbom.CYCLONEDX_NAME]) is None
    assert [f["fileName"] for f in wheel[sbom.SPDX_NAME]["files"]] == [f"./opend_build/cpp/{o['path']}" for o in MANIFEST["outputs"]]
    assert [c["name"] for c in wheel[sbom.CYCLONEDX_NAME]["components"] if c["type"] == "file"] == [f"opend_build/cpp/{o['path']}" for o in MANIFEST["outputs"]]
    assert wheel[sbom.SPDX_NAME]["packages"] == plain[sbom.SPDX_NAME]["packages"]
    assert wheel[sbom.SPDX_NAME]["documentNamespace"] != plain[sbom.SPDX_NAME]["documentNamespace"]
    assert wheel[sbom.CYCLONEDX_NAME]["serialNumber"] != plain[sbom.CYCLONEDX_NAME]["serialNumber"]


def test_the_validators_do_reject(tmp_path: Path) -> None:
    """The checks above can fail: a file without its SHA-1, a component without a type."""
    docs = sbom.documents(MANIFEST)
    spdx = copy.deepcopy(docs[sbom.SPDX_NAME])
    spdx["files"][0]["checksums"] = spdx["files"][0]["checksums"][1:]
    assert spdx_problems(spdx, tmp_path)
    cdx = copy.deepcopy(docs[sbom.CYCLONEDX_NAME])
    del cdx["components"][0]["type"]
    assert cyclonedx_problem(cdx) is not None


@pytest.mark.parametrize("fixture", ["small_built", "default_futu"])
def test_every_output_carries_valid_sboms(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    built: Built = request.getfixturevalue(fixture)
    manifest = json.loads((built.out / "build-manifest.json").read_text())
    spdx = json.loads((built.out / sbom.SPDX_NAME).read_text())
    cdx = json.loads((built.out / sbom.CYCLONEDX_NAME).read_text())
    assert spdx_problems(spdx, tmp_path) == [] and cyclonedx_problem(cdx) is None
    assert len(spdx["files"]) == len(manifest["outputs"]) and spdx == sbom.spdx(manifest) and cdx == sbom.cyclonedx(manifest)
    names = {p["name"] for p in spdx["packages"]}
    assert "protobuf" in names and ("FTAPI4CPP" in names if fixture == "small_built" else {"futu-api", "grpcio-tools"} <= names)
