"""SBOMs of an output, SPDX 2.3 and CycloneDX 1.5 (JSON), derived from its build-manifest.json
alone (one source of truth). Pure: a manifest in, documents out.

What they list: the output itself (every file with its checksums), the SDK or the pinned PyPI
packages it was built from, protobuf (and abseil, utf8_range when built), the channel (the
vendor's binary or opend-build's own), the system libraries linked (OpenSSL, zlib) with the
version CMake found, and the compiler and CMake as the tools that made it. Nothing in them
depends on when or where the build ran: no timestamps but SOURCE_DATE_EPOCH's (recorded in the
manifest), identifiers derived from content.

`root` names the files where a package puts the output: a wheel's SBOMs (in .dist-info/sboms/,
PEP 770) name them by their paths in the wheel (opend_build/cpp/Bin/Linux/...).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any

PREFIX = "sbom."  # the files' names in the output: sbom.spdx.json, sbom.cdx.json
SPDX_NAME = "sbom.spdx.json"
CYCLONEDX_NAME = "sbom.cdx.json"
NAMESPACE = uuid.UUID("6f1c2d4e-9a0b-4c5d-8e7f-0a1b2c3d4e5f")  # opend-build's, for name-based UUIDs


class Component:
    """One thing the output is made from, in the terms both formats share."""

    def __init__(self, ref: str, name: str, version: str, kind: str, purl: str = "", sha256: str = "", note: str = "") -> None:
        self.ref, self.name, self.version, self.kind, self.purl, self.sha256, self.note = ref, name, version, kind, purl, sha256, note


def _ref(text: str) -> str:
    """An identifier both formats accept: letters, digits, '.' and '-'."""
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in text)


def components(m: dict[str, Any]) -> list[Component]:
    inputs = m.get("inputs", {})
    found: list[Component] = []
    if inputs.get("origin") == "sdk":
        lib = m["lib"]
        found.append(Component("sdk", f"{lib}4CPP", m["sdk_version"], "library", f"pkg:generic/{m['brand']}/{lib}4CPP@{m['sdk_version']}",
                               inputs.get("sdk_sha256") or "", "the vendor's SDK, as given to --sdk"))
    for p in inputs.get("packages", []):
        found.append(Component(_ref(f"pypi-{p['project']}"), p["project"], p["version"], "library", f"pkg:pypi/{p['project']}@{p['version']}",
                               p["sha256"], f"PyPI sdist {p['filename']}, {p['subdir']}"))
    pb = inputs.get("protobuf", {})
    if m.get("protobuf_version"):
        built = pb.get("provider") == "build"
        found.append(Component("protobuf", "protobuf", m["protobuf_version"], "library", f"pkg:github/protocolbuffers/protobuf@v{m['protobuf_version']}",
                               "", f"{'built from source and linked statically' if built else 'installed, linked by the application'}: {pb.get('origin', '')}"))
        if built and int(m["protobuf_version"].split(".")[0]) >= 22:
            found.append(Component("abseil-cpp", "abseil-cpp", "", "library", "pkg:github/abseil/abseil-cpp", "", "built into libprotobuf"))
            found.append(Component("utf8-range", "utf8_range", "", "library", "pkg:github/protocolbuffers/utf8_range", "", "built into libprotobuf"))
    ch = m.get("channel") or {}
    if ch.get("kind") == "open":
        found.append(Component("channel", f"{m['lib']}Channel (opend-build open channel)", m["tool"]["version"], "library",
                               f"pkg:generic/opend-build/channel@{m['tool']['version']}", ch.get("sha256") or "", ch.get("file") or ""))
    elif ch.get("kind") == "vendor":
        found.append(Component("channel", f"{m['lib']}Channel (vendor binary)", m["sdk_version"], "library",
                               f"pkg:generic/{m['brand']}/{m['lib']}Channel@{m['sdk_version']}", ch.get("sha256") or "", ch.get("file") or "the SDK's source"))
    for lib in m.get("linked", []):
        found.append(Component(_ref(lib["name"]), lib["name"], lib["version"], "library", f"pkg:generic/{lib['name']}@{lib['version']}", "",
                               "from the build machine, found by CMake"))
    return found


def _created(m: dict[str, Any]) -> str:
    epoch = int(m.get("reproducibility", {}).get("source_date_epoch") or 0)
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _content_id(m: dict[str, Any], root: str) -> str:
    return hashlib.sha256("".join(f"{root}{o['path']}\0{o['sha256']}\n" for o in m["outputs"]).encode()).hexdigest()


def _tools(m: dict[str, Any]) -> list[tuple[str, str]]:
    tc = m.get("toolchain", {})
    tools = [("opend-build", m["tool"]["version"])]
    if tc.get("compiler_id"):
        tools.append((str(tc["compiler_id"]), str(tc.get("compiler_version") or "")))
    if tc.get("cmake_version"):
        tools.append(("CMake", str(tc["cmake_version"])))
    return tools


def _root(root: str) -> str:
    return root.strip("/") + "/" if root.strip("/") else ""


def spdx(m: dict[str, Any], root: str = "") -> dict[str, Any]:
    name = f"{m['lib']}4CPP-{m['os']}-{m['build_type'].lower()}"
    root = _root(root)
    files = [{"SPDXID": f"SPDXRef-File-{i}", "fileName": f"./{root}{o['path']}",
              "checksums": [{"algorithm": "SHA1", "checksumValue": o["sha1"]}, {"algorithm": "SHA256", "checksumValue": o["sha256"]}]}
             for i, o in enumerate(m["outputs"], 1)]
    verification = hashlib.sha1("".join(sorted(o["sha1"] for o in m["outputs"])).encode()).hexdigest()  # noqa: S324 - SPDX's rule
    main = {"SPDXID": "SPDXRef-Package-output", "name": name, "versionInfo": m["sdk_version"], "downloadLocation": "NOASSERTION",
            "filesAnalyzed": True, "packageVerificationCode": {"packageVerificationCodeValue": verification},
            "hasFiles": [f["SPDXID"] for f in files], "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION", "primaryPackagePurpose": "LIBRARY",
            "comment": f"built by opend-build {m['tool']['version']} for {m['os']}, {m['build_type']}"}
    packages = [main]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": main["SPDXID"]}]
    for c in components(m):
        pkg: dict[str, Any] = {"SPDXID": f"SPDXRef-Package-{c.ref}", "name": c.name, "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
                               "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "copyrightText": "NOASSERTION",
                               "primaryPackagePurpose": "LIBRARY" if c.kind == "library" else "APPLICATION"}
        if c.version:
            pkg["versionInfo"] = c.version
        if c.sha256:
            pkg["checksums"] = [{"algorithm": "SHA256", "checksumValue": c.sha256}]
        if c.purl:
            pkg["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": c.purl}]
        if c.note:
            pkg["comment"] = c.note
        packages.append(pkg)
        relationships.append({"spdxElementId": main["SPDXID"], "relationshipType": "DEPENDS_ON", "relatedSpdxElement": pkg["SPDXID"]})
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": name,
        "documentNamespace": f"https://spdx.org/spdxdocs/opend-build/{name}-{_content_id(m, root)[:32]}",
        "creationInfo": {"created": _created(m), "creators": [f"Tool: {t}-{v}" if v else f"Tool: {t}" for t, v in _tools(m)]},
        "packages": packages, "files": files, "relationships": relationships,
    }


def cyclonedx(m: dict[str, Any], root: str = "") -> dict[str, Any]:
    name = f"{m['lib']}4CPP-{m['os']}-{m['build_type'].lower()}"
    root = _root(root)
    comps: list[dict[str, Any]] = []
    for c in components(m):
        comp: dict[str, Any] = {"type": c.kind, "bom-ref": c.ref, "name": c.name}
        if c.version:
            comp["version"] = c.version
        if c.purl:
            comp["purl"] = c.purl
        if c.sha256:
            comp["hashes"] = [{"alg": "SHA-256", "content": c.sha256}]
        if c.note:
            comp["description"] = c.note
        comps.append(comp)
    files = [{"type": "file", "bom-ref": f"file-{i}", "name": f"{root}{o['path']}", "hashes": [{"alg": "SHA-256", "content": o["sha256"]}]}
             for i, o in enumerate(m["outputs"], 1)]
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid5(NAMESPACE, _content_id(m, root))}",
        "metadata": {"timestamp": _created(m),
                     "tools": {"components": [{"type": "application", "name": t, **({"version": v} if v else {})} for t, v in _tools(m)]},
                     "component": {"type": "library", "bom-ref": "output", "name": name, "version": m["sdk_version"]}},
        "components": comps + files,
        "dependencies": [{"ref": "output", "dependsOn": [c["bom-ref"] for c in comps + files]}],
    }


def documents(m: dict[str, Any], root: str = "") -> dict[str, dict[str, Any]]:
    return {SPDX_NAME: spdx(m, root), CYCLONEDX_NAME: cyclonedx(m, root)}
