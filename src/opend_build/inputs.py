"""Where every input of a build comes from, decided before anything runs.

`resolve` reads (lists the SDK, hashes archives) but writes nothing; the fetch and unpack work it
calls for is returned as plan steps, so a --dry-run shows it and the runner does it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import archives, protobuf_src, sources
from .errors import ProtobufSourceError
from .options import Options
from .sdk import BRANDS, SdkTree, channel_for, open_sdk


@dataclass(frozen=True)
class Prepare:
    """A fetch/unpack action for the runner: name of the action and its arguments."""

    action: str  # "fetch" | "unpack_pin" | "unpack_sdk" | "unpack_protobuf"
    title: str
    args: tuple[tuple[str, str], ...]


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
    protobuf_src: Path  # folder holding google/protobuf
    protobuf_id: str
    channel_libs: tuple[Path, ...]
    prepare: tuple[Prepare, ...]
    record: dict[str, object] = field(default_factory=dict)  # for the manifest


def _args(**kw: object) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(v)) for k, v in kw.items())


def _default(options: Options) -> Inputs:
    pins = sources.load_pins()
    brand = options.brand or "futu"
    proto_pin, pb_pin = pins[brand], pins["protobuf"]
    prepare = (
        Prepare("fetch", f"fetch {proto_pin.filename}", _args(pin=brand)),
        Prepare("unpack_pin", f"unpack {proto_pin.subdir}/*.proto", _args(pin=brand, suffix=".proto")),
        *_protobuf_pin_steps(pins),
    )
    return Inputs(
        brand=brand,
        lib=BRANDS[brand],
        version=proto_pin.version,
        origin="pypi",
        identity=f"pypi:{proto_pin.project}=={proto_pin.version}:{proto_pin.sha256}",
        proto_dir=sources.extracted_path(proto_pin),
        include_dir=None,
        source_dir=None,
        protobuf_src=protobuf_unpack_dir(pb_pin.src_digest),
        protobuf_id=f"src:{pb_pin.src_digest}",
        channel_libs=(),
        prepare=prepare,
        record={
            "origin": "pypi",
            "packages": [_pin_record(proto_pin), _pin_record(pb_pin)],
        },
    )


def _pin_record(pin: sources.Pin) -> dict[str, str]:
    return {"project": pin.project, "version": pin.version, "filename": pin.filename, "sha256": pin.sha256, "subdir": pin.subdir}


def _protobuf_pin_steps(pins: dict[str, sources.Pin]) -> tuple[Prepare, ...]:
    # Unpacked by content digest, like an SDK's protobuf tarball: equal sources share one folder
    # and therefore one protobuf build.
    pb = pins["protobuf"]
    return (
        Prepare("fetch", f"fetch {pb.filename}", _args(pin="protobuf")),
        Prepare("unpack_protobuf", f"unpack protobuf sources from {pb.filename}",
                _args(archive=sources.download_path(pb), dest=protobuf_unpack_dir(pb.src_digest), digest=pb.src_digest)),
    )


def find_protobuf_src(folder: Path) -> Path | None:
    """The folder holding google/protobuf/message.h: the folder itself, its src/, or one level down."""
    for cand in (folder, folder / "src", *sorted(folder.glob("*/src")), *sorted(folder.glob("*/third_party/protobuf/src"))):
        if (cand / "google" / "protobuf" / "message.h").is_file():
            return cand
    return None


def protobuf_unpack_dir(digest: str) -> Path:
    return sources.cache_root() / "sources" / f"protobuf-{digest[:16]}"


def _protobuf_from(path: Path, prepare: list[Prepare], digest: str | None = None) -> tuple[Path, str]:
    """(src folder, identity) for --protobuf or the SDK's Src/protobuf-*: an archive or a folder.

    The identity is the digest of the C++ sources, so equal sources share one protobuf build."""
    if archives.is_archive(path):
        digest = digest or protobuf_src.digest_archive(path)
        dest = protobuf_unpack_dir(digest)
        prepare.append(Prepare("unpack_protobuf", f"unpack protobuf sources from {path.name}", _args(archive=path, dest=dest, digest=digest)))
        return dest, f"src:{digest}"
    src = find_protobuf_src(path)
    if src is None:
        raise ProtobufSourceError(
            f"{path} holds no protobuf source (no google/protobuf/message.h in it, its src/ or one folder down)",
            "give --protobuf a protobuf-all-3.5.1.tar.gz or its unpacked folder",
        )
    return src, f"dir:{src}"  # a folder may change under us: keep its build apart, Ninja tracks edits


def _from_sdk(options: Options, sdk_path: Path) -> Inputs:
    tree: SdkTree = open_sdk(sdk_path, options.brand)
    prepare: list[Prepare] = []
    if sdk_path.is_dir():
        root = sdk_path / tree.root if tree.root else sdk_path
        sdk_sha = ""
    else:
        sdk_sha = sources.sha256_file(sdk_path)
        unpacked = sources.cache_root() / "sdk" / f"{sdk_sha[:16]}"
        prepare.append(Prepare("unpack_sdk", f"unpack {sdk_path.name}", _args(archive=sdk_path, dest=unpacked)))
        root = unpacked / tree.root if tree.root else unpacked

    if options.protobuf is not None:
        pb_src, pb_id = _protobuf_from(options.protobuf, prepare)
        pb_record: dict[str, str] = {"protobuf": str(options.protobuf)}
    elif tree.protobuf is not None:
        inner = root / tree.protobuf
        if not archives.is_archive(inner):
            pb_src, pb_id = inner, f"dir:{inner}"  # an unpacked src/ folder inside the SDK
        elif sdk_path.is_dir():
            pb_src, pb_id = _protobuf_from(inner, prepare)
        else:
            member = str(PurePosixPath(tree.root, tree.protobuf)) if tree.root else tree.protobuf
            pb_src, pb_id = _protobuf_from(inner, prepare, archives.digest_member(sdk_path, member, protobuf_src.digest_stream))
        pb_record = {"protobuf": tree.protobuf}
    else:
        raise ProtobufSourceError(
            "the SDK holds no protobuf source (Src/protobuf-all-*.tar.gz)",
            "pass --protobuf <protobuf-all-3.5.1.tar.gz or folder>, or build the default without --sdk",
        )
    has_src = bool(tree.sources)
    return Inputs(
        brand=tree.brand,
        lib=tree.lib,
        version=tree.version,
        origin=str(sdk_path),
        identity=f"sdk:{tree.lib}:{tree.version}:{'full' if has_src else 'proto'}",
        proto_dir=root / "Include" / "Proto",
        include_dir=root / "Include",
        source_dir=root / "Src" / tree.lib if has_src else None,
        protobuf_src=pb_src,
        protobuf_id=pb_id,
        channel_libs=tuple(root / c for c in channel_for(options.os, tree.channel)),
        prepare=tuple(prepare),
        record={"origin": "sdk", "sdk": str(sdk_path), "sdk_sha256": sdk_sha or None, "sdk_root": tree.root, **pb_record},
    )


def resolve(options: Options) -> Inputs:
    return _from_sdk(options, options.sdk) if options.sdk else _default(options)


def cmake_entries(inputs: Inputs) -> dict[str, str]:
    """The CMake cache entries that point the project at these inputs."""
    return {
        "OPEND_LIB": inputs.lib,
        "OPEND_SDK_VERSION": inputs.version,
        "OPEND_PROTO_DIR": inputs.proto_dir.as_posix(),
        "OPEND_INCLUDE_DIR": inputs.include_dir.as_posix() if inputs.include_dir else "",
        "OPEND_SOURCE_DIR": inputs.source_dir.as_posix() if inputs.source_dir else "",
        "OPEND_PROTOBUF_SOURCE_DIR": inputs.protobuf_src.as_posix(),
        "OPEND_CHANNEL_LIBS": ";".join(c.as_posix() for c in inputs.channel_libs),
    }
