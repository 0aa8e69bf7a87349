"""Where every input of a build comes from, decided before anything runs.

`resolve` reads (lists the SDK, hashes archives) but writes nothing; the fetch and unpack work it
calls for is returned as plan steps, so a --dry-run shows it and the runner does it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import archives, protobuf, protobuf_src, sources
from .errors import ProtobufSourceError
from .options import Options, host_os
from .protobuf import Protobuf
from .sdk import BRANDS, SdkTree, channel_for, open_sdk
from .steps import SKIP_PRESENT, Action, Step, action_step

SKIP_VERIFIED = "skipped when the cached download matches its sha256"


def _fetch(title: str, pin: str) -> Step:
    return action_step("inputs", title, Action.FETCH, SKIP_VERIFIED, pin=pin)


@dataclass(frozen=True)
class Inputs:
    brand: str
    lib: str
    version: str
    origin: str  # "pypi" or the SDK path as given
    identity: str  # what a build folder is keyed by: which SDK, not its exact bytes
    proto_dir: Path
    include_dir: Path | None
    source_dir: Path | None
    protobuf: Protobuf
    channel_libs: tuple[Path, ...]
    prepare: tuple[Step, ...]  # fetch and unpack: the plan's first steps
    channel_source_dir: Path | None = None  # Src/<Lib>Channel/, compiled into lib<Lib> (10.x)
    notes: tuple[str, ...] = ()
    record: dict[str, object] = field(default_factory=dict)  # for the manifest


def _default(options: Options) -> Inputs:
    pins = sources.load_pins()
    brand = options.brand or "futu"
    proto_pin = pins[brand]
    prepare = [
        _fetch(f"fetch {proto_pin.filename}", brand),
        action_step("inputs", f"unpack {proto_pin.subdir}/*.proto", Action.UNPACK_PIN, SKIP_PRESENT, pin=brand, suffix=".proto"),
    ]
    pb = _protobuf(options, None, prepare, pins)
    return Inputs(
        brand=brand,
        lib=BRANDS[brand],
        version=proto_pin.version,
        origin="pypi",
        identity=f"pypi:{proto_pin.project}=={proto_pin.version}:{proto_pin.sha256}",
        proto_dir=sources.extracted_path(proto_pin),
        include_dir=None,
        source_dir=None,
        protobuf=pb,
        channel_libs=(),
        prepare=tuple(prepare),
        record={"origin": "pypi", "packages": [_pin_record(proto_pin), *_protobuf_packages(pb, pins)], "protobuf": _protobuf_record(pb)},
    )


def _pin_record(pin: sources.Pin) -> dict[str, str]:
    return {"project": pin.project, "version": pin.version, "filename": pin.filename, "sha256": pin.sha256, "subdir": pin.subdir}


def _protobuf_packages(pb: Protobuf, pins: dict[str, sources.Pin]) -> list[dict[str, str]]:
    return [_pin_record(pins[pb.pin])] if pb.pin else []


def _protobuf_record(pb: Protobuf) -> dict[str, str]:
    return {"provider": pb.provider, "version": pb.version, "origin": pb.origin, "identity": pb.identity}


def _pinned_protobuf(name: str, pins: dict[str, sources.Pin], prepare: list[Step]) -> Protobuf:
    """A pinned protobuf source from PyPI, unpacked by content digest like an SDK's protobuf
    tarball: equal sources share one folder and therefore one protobuf build. From 22 on the pin
    is a bundle: protobuf with the abseil-cpp and utf8_range it needs, side by side."""
    pin = pins[name]
    dest = protobuf_unpack_dir(pin.src_digest)
    bundle = pin.layout == "bundle"
    prepare += [
        _fetch(f"fetch {pin.filename}", name),
        action_step("inputs", f"unpack protobuf{' with abseil-cpp and utf8_range' if bundle else ''} sources from {pin.filename}", Action.UNPACK_PROTOBUF,
                    SKIP_PRESENT, archive=sources.download_path(pin), dest=dest, digest=pin.src_digest, bundle=pin.subdir if bundle else ""),
    ]
    origin = f"PyPI {pin.project} {pin.version} ({pin.filename}, sha256 {pin.sha256[:12]}...)"
    if bundle:
        return Protobuf("build", pin.protobuf_version, origin, f"src:{pin.src_digest}", src=dest / "protobuf" / "src", pin=name,
                        abseil=dest / "abseil-cpp", utf8_range=dest / "protobuf" / "third_party" / "utf8_range")
    return Protobuf("build", pin.protobuf_version, origin, f"src:{pin.src_digest}", src=dest, pin=name)


def _system_protobuf(options: Options) -> Protobuf:
    """The protobuf installed on this machine, looked for where CMake looks: CMAKE_PREFIX_PATH,
    then the system prefixes. On another OS's --dry-run only the build host can tell."""
    if options.os != host_os():
        return Protobuf("installed", "", "system (found on the build host by find_package(Protobuf))", "installed:system")
    prefixes = protobuf.system_prefixes(dict(os.environ), options.os)
    return protobuf.installed(None, [p / "include" for p in prefixes], protobuf.which_protoc())


def _protobuf(options: Options, sdk_protobuf: Protobuf | None, prepare: list[Step], pins: dict[str, sources.Pin]) -> Protobuf:
    """--protobuf, or without it the SDK's own protobuf source, or the pinned default."""
    value = options.protobuf
    if value is None:
        return sdk_protobuf or _pinned_protobuf("protobuf", pins, prepare)
    if value == protobuf.SYSTEM:
        return _system_protobuf(options)
    if protobuf.PINNED_VERSION.match(value):
        if f"protobuf-{value}" not in pins:
            raise protobuf.unknown_version(value, sources.protobuf_versions(pins))
        return _pinned_protobuf(f"protobuf-{value}", pins, prepare)
    path = Path(value).expanduser().absolute()
    if not path.exists():
        raise ProtobufSourceError(f"--protobuf {value}: no such file or folder",
                                  f"pass a version ({', '.join(sources.protobuf_versions(pins))}), 'system', an installed prefix, or a protobuf source")
    if path.is_dir() and protobuf.is_installed_prefix(path):
        return protobuf.installed(path, [path / "include"], protobuf.protoc_in(path, ".exe" if options.os == "windows" else ""))
    return _protobuf_source(path, prepare)


def find_protobuf_src(folder: Path) -> Path | None:
    """The folder holding google/protobuf/message.h: the folder itself, its src/, or one level down."""
    for cand in (folder, folder / "src", *sorted(folder.glob("*/src")), *sorted(folder.glob("*/third_party/protobuf/src"))):
        if (cand / "google" / "protobuf" / "message.h").is_file():
            return cand
    return None


def protobuf_unpack_dir(digest: str) -> Path:
    return sources.cache_root() / "sources" / f"protobuf-{digest[:16]}"


def _protobuf_source(path: Path, prepare: list[Step], described: tuple[str, str | None] | None = None) -> Protobuf:
    """A protobuf source to build: an archive (unpacked by a step) or a folder.

    An archive is known by the digest of its C++ sources, so equal sources share one protobuf
    build; a folder may change under us, so its build stays apart and Ninja tracks its edits."""
    if archives.is_archive(path):
        digest, version = described or protobuf_src.describe_archive(path)
        dest = protobuf_unpack_dir(digest)
        prepare.append(action_step("inputs", f"unpack protobuf sources from {path.name}", Action.UNPACK_PROTOBUF, SKIP_PRESENT, archive=path, dest=dest, digest=digest))
        return Protobuf("build", version or "", f"{path}", f"src:{digest}", src=dest)
    src = find_protobuf_src(path)
    if src is None:
        raise ProtobufSourceError(
            f"{path} holds no protobuf (no google/protobuf/message.h in it, its src/ or one folder down, and no include/ and lib/ of an installed one)",
            "give --protobuf a protobuf source archive or folder, an installed prefix, a version, or 'system'",
        )
    return Protobuf("build", protobuf.version_in(src) or "", str(src), f"dir:{src}", src=src)


def sdk_location(sdk_path: Path, tree: SdkTree) -> tuple[Path, str, tuple[Step, ...]]:
    """Where the SDK's root will be on disk, its archive's sha256 ("" for a folder), and the step
    that unpacks an archive into the cache (once per content: the folder is named by the sha256)."""
    if sdk_path.is_dir():
        return (sdk_path / tree.root if tree.root else sdk_path), "", ()
    sdk_sha = sources.sha256_file(sdk_path)
    unpacked = sources.cache_root() / "sdk" / f"{sdk_sha[:16]}"
    step = action_step("inputs", f"unpack {sdk_path.name}", Action.UNPACK_SDK, SKIP_PRESENT, archive=sdk_path, dest=unpacked)
    return (unpacked / tree.root if tree.root else unpacked), sdk_sha, (step,)


def _from_sdk(options: Options, sdk_path: Path) -> Inputs:
    tree: SdkTree = open_sdk(sdk_path, options.brand)
    root, sdk_sha, unpack = sdk_location(sdk_path, tree)
    prepare: list[Step] = list(unpack)

    sdk_protobuf = None
    if tree.protobuf is not None and options.protobuf is None:
        inner = root / tree.protobuf
        if not archives.is_archive(inner):
            sdk_protobuf = _protobuf_source(inner, prepare)  # an unpacked src/ folder inside the SDK
        elif sdk_path.is_dir():
            sdk_protobuf = _protobuf_source(inner, prepare)
        else:
            member = str(PurePosixPath(tree.root, tree.protobuf)) if tree.root else tree.protobuf
            sdk_protobuf = _protobuf_source(inner, prepare, archives.digest_member(sdk_path, member, protobuf_src.describe_stream))
    pins = sources.load_pins()
    pb = _protobuf(options, sdk_protobuf, prepare, pins)
    notes = []
    if tree.protobuf is None and options.protobuf is None:
        notes.append(f"the SDK carries no protobuf source: the pinned default {pb.version} is built (--protobuf chooses another)")
    if tree.cmake_project:
        notes.append("the SDK's own CMakeLists.txt is not used: its sources are built by opend-build's rules")
    has_src = bool(tree.sources)
    channel_src = PurePosixPath(tree.channel_sources[0]).parts[:2] if tree.channel_sources else None
    return Inputs(
        brand=tree.brand,
        lib=tree.lib,
        version=tree.version,
        origin=str(sdk_path),
        identity=f"sdk:{tree.lib}:{tree.version}:{'full' if has_src else 'proto'}{'+channel' if channel_src else ''}",
        proto_dir=root / "Include" / "Proto",
        include_dir=root / "Include",
        source_dir=root / "Src" / tree.lib if has_src else None,
        protobuf=pb,
        channel_libs=tuple(root / c for c in channel_for(options.os, tree.channel, options.build_type, options.arch)),
        prepare=tuple(prepare),
        channel_source_dir=root.joinpath(*channel_src) if channel_src else None,
        notes=tuple(notes),
        record={"origin": "sdk", "sdk": str(sdk_path), "sdk_sha256": sdk_sha or None, "sdk_root": tree.root, "protobuf": _protobuf_record(pb),
                "packages": _protobuf_packages(pb, pins)},
    )


def resolve(options: Options) -> Inputs:
    return _from_sdk(options, options.sdk) if options.sdk else _default(options)


def cmake_entries(inputs: Inputs) -> dict[str, str]:
    """The CMake cache entries that point the project at these inputs."""
    pb = inputs.protobuf
    return {
        "OPEND_LIB": inputs.lib,
        "OPEND_SDK_VERSION": inputs.version,
        "OPEND_PROTO_DIR": inputs.proto_dir.as_posix(),
        "OPEND_INCLUDE_DIR": inputs.include_dir.as_posix() if inputs.include_dir else "",
        "OPEND_SOURCE_DIR": inputs.source_dir.as_posix() if inputs.source_dir else "",
        "OPEND_CHANNEL_SOURCE_DIR": inputs.channel_source_dir.as_posix() if inputs.channel_source_dir else "",
        "OPEND_PROTOBUF_PROVIDER": pb.provider,
        "OPEND_PROTOBUF_SOURCE_DIR": pb.src.as_posix() if pb.src else "",
        "OPEND_ABSEIL_SOURCE_DIR": pb.abseil.as_posix() if pb.abseil else "",
        "OPEND_UTF8_RANGE_SOURCE_DIR": pb.utf8_range.as_posix() if pb.utf8_range else "",
        "OPEND_PROTOBUF_PREFIX": pb.prefix.as_posix() if pb.prefix else "",
        "OPEND_PROTOBUF_VERSION": pb.version,
        "OPEND_CXX_STANDARD": str(pb.cxx_standard or ""),
        "OPEND_CHANNEL_LIBS": ";".join(c.as_posix() for c in inputs.channel_libs),
    }
