"""build-manifest.json: what went in (with sha256), what toolchain made it, what came out."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import __version__, elf, file_api, sbom
from .plan import mapped

NAME = "build-manifest.json"


def _digests(path: Path) -> tuple[str, str]:
    """sha256 (what the manifest compares) and SHA-1 (what SPDX requires of every file), one read."""
    h256, h1 = hashlib.sha256(), hashlib.sha1()  # noqa: S324 - SPDX's mandatory file checksum, not security
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h256.update(chunk)
            h1.update(chunk)
    return h256.hexdigest(), h1.hexdigest()


def _tree(root: Path, known: dict[str, dict[str, object]] | None = None) -> list[dict[str, object]]:
    """Every file under `root` with its digests; those of `known` (by path) are taken as they are."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            rel = p.relative_to(root).as_posix()
            if rel in (known or {}):
                out.append((known or {})[rel])
            elif rel != NAME and not rel.startswith(sbom.PREFIX):
                sha256, sha1 = _digests(p)
                out.append({"path": rel, "sha256": sha256, "sha1": sha1, "size": p.stat().st_size})
    return out


def unchanged(published: Path, staging: Path) -> dict[str, dict[str, object]]:
    """The published output's manifest entries for the files staging still shares with it (the
    same inode: the install found them up to date) that were not written after that manifest:
    their digests stand, so an edit hashes only what it changed."""
    try:
        written = (published / NAME).stat().st_mtime_ns
        entries = json.loads((published / NAME).read_text(encoding="utf-8"))["outputs"]
    except (OSError, ValueError, KeyError):
        return {}
    kept: dict[str, dict[str, object]] = {}
    for e in entries:
        try:
            a, b = (published / e["path"]).stat(), (staging / e["path"]).stat()
        except (OSError, KeyError, TypeError):
            continue
        if (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev) and a.st_size == e.get("size") and a.st_mtime_ns <= written and {"sha256", "sha1"} <= set(e):
            kept[e["path"]] = e
    return kept


def build(plan, build_dir: Path, out_dir: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    # What `verify --reproduce` needs: the arguments, the date, and that build paths are mapped out.
    data = describe(plan.inputs, plan.os, plan.build_type, build_dir, out_dir, {"compiler": plan.toolchain.compiler, **_arch(plan.toolchain)},
                    {"argv": list(plan.reproduce), "source_date_epoch": plan.source_date_epoch or None,
                     "path_maps": not plan.sccache, "toolchain_key": plan.toolchain.key()}, plan.toolchain.deployment_target,
                    maps=plan.path_maps, known=unchanged(plan.out, out_dir))
    # Which configuration made it (the default folder's name): a build of another one refuses to publish over it.
    return {**data, "configuration": plan.configuration}


def describe(inputs, target_os: str, build_type: str, build_dir: Path, out_dir: Path,  # type: ignore[no-untyped-def]
             toolchain: dict[str, object], reproducibility: dict[str, object], deployment_target: str = "",
             maps: tuple[tuple[str, str], ...] = (), known: dict[str, dict[str, object]] | None = None) -> dict[str, object]:
    """The manifest of the install tree `out_dir`, made from `inputs` in `build_dir`: the driver's
    build (`build`), or `cmake --install` of a configure without the driver (pip, Conan). The
    compile flags are recorded with the folders of `maps` (the plan's) under their fixed names, so
    the manifest, like the objects, does not say where the checkout, cache or build folders were."""
    files = [{"path": f"Include/{e['path']}", "sha256": e["sha256"]} for e in _tree(build_dir / "Include")]
    for src in (inputs.source_dir, inputs.channel_source_dir):
        if src is not None:
            files += [{"path": f"Src/{src.name}/{e['path']}", "sha256": e["sha256"]} for e in _tree(src)]
    version_file = build_dir / "generated" / "protobuf-version.txt"
    outputs = _tree(out_dir, known)
    return {
        "manifest_version": 1,
        "tool": {"name": "opend-build", "version": __version__},
        "brand": inputs.brand,
        "lib": inputs.lib,
        "sdk_version": inputs.version,
        "protobuf_version": version_file.read_text().strip() if version_file.exists() else None,
        "os": target_os,
        "build_type": build_type,
        "inputs": {**inputs.record, "protobuf_source": inputs.protobuf.identity, "files": files},
        "toolchain": {**toolchain, **_mapped_flags(file_api.toolchain_facts(build_dir, "opend_sdk"), maps)},
        "channel": channel_record(out_dir, inputs.lib, outputs, inputs.channel, inputs.channel_why),
        "linked": linked(out_dir, inputs.lib),
        "runs_on": runs_on(target_os, out_dir, [str(o["path"]) for o in outputs], str(toolchain.get("arch") or ""), deployment_target),
        "reproducibility": reproducibility,
        "outputs": outputs,
    }


def _mapped_flags(facts: dict[str, object], maps: tuple[tuple[str, str], ...]) -> dict[str, object]:
    flags = facts.get("flags")
    return {**facts, "flags": [mapped(f, maps) for f in flags]} if isinstance(flags, list) else facts


def _usage(out_dir: Path, lib: str) -> dict[str, object]:
    usage_file = out_dir / "lib" / "cmake" / lib / f"{lib}Usage.json"
    return json.loads(usage_file.read_text(encoding="utf-8")) if usage_file.is_file() else {}  # type: ignore[no-any-return]


def linked(out_dir: Path, lib: str) -> list[dict[str, str]]:
    """The build machine's libraries the output links (OpenSSL for the open channel or the 10.x
    sources, zlib), with the versions CMake found."""
    usage = _usage(out_dir, lib)
    return [{"name": name, "version": str(usage[key])} for name, key in (("openssl", "openssl_version"), ("zlib", "zlib_version")) if usage.get(key)]


def runs_on(target_os: str, out_dir: Path, paths: list[str], arch: str, deployment_target: str) -> dict[str, object] | None:
    """The oldest system the outputs load on. Linux: the newest glibc (and libstdc++) symbol
    version the executables and shared objects need, read from their bytes (elf.py). macOS: the
    deployment target the configure set (CMAKE_OSX_DEPLOYMENT_TARGET), which every object carries
    as its minimum OS version. Windows: None (no such floor is recorded)."""
    if target_os == "macos":
        return {"macos": deployment_target, "how": "the deployment target the configure set (CMAKE_OSX_DEPLOYMENT_TARGET)"} if deployment_target else None
    if target_os != "linux":
        return None
    found = elf.floor(out_dir, paths)
    return {**found, "arch": arch} if found else None


def runs_on_line(floor: dict[str, object] | None) -> str:
    """The manifest's runs_on in words: 'x86_64 Linux with glibc 2.34 or newer (GLIBC_2.34:
    Bin/Linux/protoc), libstdc++ GLIBCXX_3.4.30 or newer'; '' when the manifest records none."""
    if not floor:
        return ""
    if floor.get("macos"):
        return f"macOS {floor['macos']} or newer (the deployment target)"
    needed_by = ", ".join(floor.get("glibc_needed_by") or [])  # type: ignore[arg-type]
    line = f"{floor.get('arch') or ''} Linux with glibc {floor['glibc']} or newer".lstrip()
    line += f" (GLIBC_{floor['glibc']}: {needed_by})" if needed_by else ""
    return line + (f", libstdc++ GLIBCXX_{floor['libstdcxx']} or newer" if floor.get("libstdcxx") else "")


def _arch(toolchain) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Linux: the target architecture, and for a cross build the build machine's."""
    if not toolchain.arch:
        return {}
    return {"arch": toolchain.arch, "cross": toolchain.cross, **({"host_arch": toolchain.host.arch} if toolchain.host else {})}


def channel_record(out_dir: Path, lib: str, outputs: list[dict[str, object]], planned: str, why: str) -> dict[str, object]:
    """Which channel shipped (as the installed package's usage file says: open, vendor or none),
    its file and sha256, and what the plan chose and why."""
    usage = _usage(out_dir, lib)
    path = f"{usage['channel_dir']}/{usage['channel']}" if usage.get("channel") else None
    sha = next((o["sha256"] for o in outputs if o["path"] == path), None)
    return {"kind": usage.get("channel_kind", "none"), "file": path, "sha256": sha, "planned": planned, "why": why}


def write(plan, build_dir: Path, out_dir: Path) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Write the manifest into `out_dir`; what was written."""
    data = build(plan, build_dir, out_dir)
    _write(data, out_dir)
    return data


def _write(data: dict[str, object], out_dir: Path, sboms: Path | None = None, root: str = "") -> None:
    (out_dir / NAME).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for folder, names in ((out_dir, ""), *(((sboms, root),) if sboms is not None else ())):
        folder.mkdir(parents=True, exist_ok=True)
        for name, doc in sbom.documents(data, names).items():  # derived from the manifest: one source of truth
            (folder / name).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_installed(inputs, target_os: str, build_type: str, build_dir: Path, prefix: Path,  # type: ignore[no-untyped-def]
                    source_date_epoch: str, sboms: Path | None = None, root: str = "") -> dict[str, object]:
    """`cmake --install` of a configure without the driver (the pip wheel, the Conan package):
    the install tree gets the manifest and SBOMs a build.py output has; `sboms` is a second place
    for the SBOMs (a wheel's .dist-info/sboms), naming the files from the wheel's root (`root`).
    Not rebuilt by `verify --reproduce`: such a configure maps no build paths out and its flags
    are the package manager's."""
    data = describe(inputs, target_os, build_type, build_dir, prefix, {},
                    {"argv": None, "source_date_epoch": source_date_epoch or None, "path_maps": False, "toolchain_key": None})
    _write(data, prefix, sboms, root)
    return data


def read(out_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out_dir / NAME).read_text(encoding="utf-8"))  # type: ignore[no-any-return]
