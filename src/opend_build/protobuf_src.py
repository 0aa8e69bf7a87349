"""protobuf's C++ source, the one place it is found, described and unpacked: which archive
members belong to it, a digest of its content, the folder it is unpacked into, and the unpacking.

A protobuf build folder is keyed by this digest, not by the bytes of the archive that carried
the source: the same sources from the SDK's protobuf-all-3.5.1.tar.gz, from an unpacked folder or
from grpcio-tools' copy share one build, while a patched copy (io_win32.cc differs between the
release and grpcio-tools) gets its own.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from . import archives
from .errors import ProtobufSourceError

SUFFIXES = (".h", ".cc", ".inc")


def member(p: PurePosixPath) -> PurePosixPath | None:
    """The path below src/ of a protobuf C++ source file inside an archive, or None."""
    parts = p.parts
    for i in range(1, len(parts) - 2):
        if parts[i - 1] == "src" and parts[i : i + 2] == ("google", "protobuf") and p.suffix in SUFFIXES:
            return PurePosixPath(*parts[i:])
    return None


VERSION_HEADERS = ("google/protobuf/stubs/common.h", "google/protobuf/port_def.inc")


# protobuf 22 and later need abseil and utf8_range. grpcio-tools' sdists carry the three side by
# side under third_party/; a pin with layout "bundle" is unpacked as these three folders.
BUNDLE_PARTS = ("abseil-cpp/absl/", "protobuf/src/google/protobuf/", "protobuf/third_party/utf8_range/")
BUNDLE_SUFFIXES = (".h", ".cc", ".inc", ".c")


def bundle_member(subdir: str) -> Callable[[PurePosixPath], PurePosixPath | None]:
    """Selects the bundle's C and C++ sources below `subdir` of an archive, by their path there."""
    prefix = PurePosixPath(subdir).parts

    def select(p: PurePosixPath) -> PurePosixPath | None:
        if p.parts[: len(prefix)] != prefix or p.suffix not in BUNDLE_SUFFIXES:
            return None
        rel = PurePosixPath(*p.parts[len(prefix) :])
        return rel if str(rel).startswith(BUNDLE_PARTS) else None

    return select


def digest_bundle_dir(folder: Path) -> str:
    return _digest((f.relative_to(folder).as_posix(), f.read_bytes()) for f in sorted(folder.rglob("*")) if f.is_file())


def _digest(items: Iterator[tuple[str, bytes]], headers: dict[str, bytes] | None = None) -> str:
    """The digest of (name, content) pairs; the version headers among them are kept in `headers`."""
    entries = []
    for name, data in items:
        entries.append((name, hashlib.sha256(data).hexdigest()))
        if headers is not None and name in VERSION_HEADERS:
            headers[name] = data
    entries.sort()
    return hashlib.sha256("".join(f"{n}\0{h}\n" for n, h in entries).encode()).hexdigest()


def protoc_numbering(version: str) -> str:
    """A protobuf version as protoc (and the plan, the manifest, CMake's checks) numbers it. 3.x
    numbers its runtime like protoc (3.21.12); from 22 on the runtime calls itself 4.22.x, 5.29.x
    where protoc says 22.x, 29.x; a trailing .0 past two parts says nothing (29.0.0 is 29.0)."""
    parts = [int(x) for x in re.findall(r"\d+", version)]
    if len(parts) > 2 and 3 < parts[0] < 22:
        parts = parts[1:]
    while len(parts) > 2 and parts[-1] == 0:
        parts.pop()
    return ".".join(map(str, parts))


def runtime_from_headers(common_h: str | None, port_def: str | None) -> str | None:
    """The version the headers give their runtime (PROTOBUF_VERSION 5029000 is 5.29.0)."""
    for text, name in ((port_def, "PROTOBUF_VERSION"), (common_h, "GOOGLE_PROTOBUF_VERSION")):
        m = re.search(rf"^#define {name} (\d+)\s*$", text or "", re.M)
        if m:
            n = int(m.group(1))
            return f"{n // 1_000_000}.{n // 1000 % 1000}.{n % 1000}"
    return None


def version_from_headers(common_h: str | None, port_def: str | None) -> str | None:
    """protoc's numbering of the protobuf whose headers these are (PROTOBUF_VERSION 5029000 is 29.0)."""
    runtime = runtime_from_headers(common_h, port_def)
    if runtime is None:
        return None
    return runtime if int(runtime.split(".")[0]) <= 3 else protoc_numbering(runtime)


def spellings(version: str, runtime: str = "") -> tuple[str, ...]:
    """Every way one protobuf version is written where CMake meets it, the plan's (protoc's)
    first: protoc's 29.0, a config package's 29.0.0, and the runtime's 5.29.0 from its headers
    (CMake's FindProtobuf and protobuf's own config report that one). CMake compares what it finds
    with these, so the numbering rule stays here."""
    names = [version, *([f"{version}.0"] if version.count(".") == 1 else []), *([runtime] if runtime else [])]
    return tuple(dict.fromkeys(names))


def version_of(headers: dict[str, bytes]) -> str | None:
    def text(name: str) -> str | None:
        return headers[name].decode("utf-8", "replace") if name in headers else None

    return version_from_headers(*(text(n) for n in VERSION_HEADERS))


def version_in_archive(archive: Path, members: dict[str, str]) -> str | None:
    """The version of an unpacked protobuf inside an archive (an SDK's Src/protobuf-3.5.1/src/),
    read from its version headers: `members` maps each header's name below src/ to its member."""
    return version_of({name: archives.digest_member(archive, m, lambda _n, stream: stream.read()) for name, m in members.items()})


def digest_dir(src: Path) -> str:
    """Digest of google/protobuf/**.{h,cc,inc} under a src/ folder."""
    base = src / "google" / "protobuf"
    return _digest((f.relative_to(src).as_posix(), f.read_bytes()) for f in base.rglob("*") if f.is_file() and f.suffix in SUFFIXES)


def _tar_items(tf: tarfile.TarFile) -> Iterator[tuple[str, bytes]]:
    for m in tf:
        rel = member(PurePosixPath(m.name)) if m.isfile() else None
        if rel is not None:
            f = tf.extractfile(m)
            if f is not None:
                yield str(rel), f.read()


def describe_stream(name: str, stream: IO[bytes]) -> tuple[str, str | None]:
    """(digest, version) of the protobuf sources in an archive given as a (possibly unseekable) stream."""
    headers: dict[str, bytes] = {}
    lower = name.lower()
    if lower.endswith(".zip"):
        with zipfile.ZipFile(stream) as zf:
            digest = _digest(((str(r), zf.read(i)) for i in zf.infolist() if (r := member(PurePosixPath(i.filename))) is not None and not i.is_dir()), headers)
    else:
        with tarfile.open(fileobj=stream, mode="r|*") as tf:
            digest = _digest(_tar_items(tf), headers)
    return digest, version_of(headers)


def describe_archive(path: Path) -> tuple[str, str | None]:
    with open(path, "rb") as f:
        return describe_stream(path.name, f)


def unpack(archive: str, dest: str, digest: str, bundle: str = "", limits: archives.Limits = archives.LIMITS) -> None:
    """protobuf's C++ sources, or with `bundle` (the folder inside the archive) protobuf, abseil-cpp
    and utf8_range side by side; checked against the digest the folder is named after."""
    d = Path(dest)
    d.parent.mkdir(parents=True, exist_ok=True)
    archives.extract(Path(archive), d, bundle_member(bundle) if bundle else member, limits)
    src = d / "protobuf" / "src" if bundle else d
    if not (src / "google" / "protobuf" / "message.h").is_file():
        shutil.rmtree(d, ignore_errors=True)
        raise ProtobufSourceError(
            f"{Path(archive).name} holds no protobuf C++ source (src/google/protobuf/message.h)",
            "give --protobuf a protobuf source archive or folder, a version, or 'system'",
        )
    if (digest_bundle_dir(d) if bundle else digest_dir(d)) != digest:  # the folder name promises this content
        shutil.rmtree(d, ignore_errors=True)
        raise ProtobufSourceError(f"the protobuf sources unpacked from {Path(archive).name} are not the ones planned", "run again")


def find_src(folder: Path) -> Path | None:
    """The folder holding google/protobuf/message.h: the folder itself, its src/, or one level down."""
    for cand in (folder, folder / "src", *sorted(folder.glob("*/src")), *sorted(folder.glob("*/third_party/protobuf/src"))):
        if (cand / "google" / "protobuf" / "message.h").is_file():
            return cand
    return None


def unpack_dir(digest: str, cache: Path) -> Path:
    return cache / "sources" / f"protobuf-{digest[:16]}"
