"""Find and describe an OpenD C++ SDK (FTAPI4CPP / MMAPI4CPP), as a folder or an archive.

`describe` is pure: it works on the list of relative paths in the tree (read from the folder or
from the archive's table of contents), so a plan can be made without unpacking anything.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import archives
from .errors import SdkError
from .protobuf_src import VERSION_HEADERS


def _brand_table() -> tuple[dict[str, str], str]:
    """The one brand table, kept in inputs.json beside the pins (the Conan recipe reads it there
    too): brand -> library name, and the brand built without an SDK."""
    data = json.loads((Path(__file__).resolve().parent / "inputs.json").read_text(encoding="utf-8"))["brands"]
    return dict(data["libraries"]), str(data["default"])


BRANDS, DEFAULT_BRAND = _brand_table()
PROTOBUF_ARCHIVE = re.compile(r"^protobuf(-all|-cpp)?-\d+\.\d+\.\d+\.(tar\.gz|tgz|zip)$", re.I)
VERSION = re.compile(r"(\d+(?:\.\d+){1,3})")
COMPILED = (".cpp", ".cc", ".c", ".cxx")


@dataclass(frozen=True)
class SdkTree:
    """What an SDK holds, as paths relative to its root (posix strings)."""

    root: str  # the SDK root inside the folder/archive: "", or up to two folders down
    brand: str  # "futu" | "moomoo"
    version: str
    protos: tuple[str, ...]  # Include/Proto/*.proto
    headers: tuple[str, ...]  # Include/**, our own build's inputs (no generated .pb.*, no google/)
    sources: tuple[str, ...]  # Src/<Lib>/** compilable files
    channel_sources: tuple[str, ...]  # Src/<Lib>Channel/** (10.x builds the channel from source)
    protobuf: str | None  # Src/protobuf-all-x.y.z.tar.gz, or a src/ folder holding google/protobuf
    channel: tuple[str, ...]  # Bin/**/ *Channel* libraries (closed binaries shipped by the vendor)
    cmake_project: bool = False  # a top-level CMakeLists.txt (10.x): noted, never used
    protobuf_headers: tuple[str, ...] = ()  # an unpacked protobuf: which of its version headers the tree holds

    @property
    def lib(self) -> str:
        return BRANDS[self.brand]


def paths_of(names: list[str]) -> list[PurePosixPath]:
    return [PurePosixPath(n.rstrip("/")) for n in names if n.strip("/")]


def find_root(paths: list[PurePosixPath], brand: str | None = None) -> str:
    """The SDK root: the folder with Include/Proto/*.proto, at the top or up to two folders down
    (the vendor's multi-language download: FTAPI-<ver>/FTAPI4CPP/ beside FTAPI4J, ...). When the
    tree holds both brands' C++ SDKs, `brand` picks one."""
    roots = sorted(
        {str(PurePosixPath(*p.parts[:-3])) for p in paths if 3 <= len(p.parts) <= 5 and p.parts[-3:-1] == ("Include", "Proto") and p.suffix == ".proto"}
    )
    if len(roots) > 1:
        named = {b: [r for r in roots if PurePosixPath(r).name.upper().startswith(lib)] for b, lib in BRANDS.items()}
        if brand is not None and len(named[brand]) == 1:
            roots = named[brand]
        elif brand is None and sum(1 for r in named.values() if r) > 1:
            raise SdkError(f"the archive holds more than one C++ SDK ({', '.join(roots)})", "pass " + " or ".join(f"--brand {b}" for b in BRANDS) + " to pick one")
        elif len(set(len(PurePosixPath(r).parts) for r in roots)) > 1:
            roots = [min(roots, key=lambda r: len(PurePosixPath(r).parts))]  # the shallowest is the SDK; deeper ones are copies inside it
    if roots:
        return "" if roots[0] == "." else roots[0]
    found = found_at_top(paths)
    if any(len(p.parts) in (1, 2) and p.name == "Include" for p in paths) or any("Include" in p.parts[:2] for p in paths):
        raise SdkError(f"the SDK has no Include/Proto/*.proto (found: {found})", "point --sdk at an FTAPI4CPP/MMAPI4CPP folder or archive as downloaded")
    raise SdkError(f"no OpenD C++ SDK found: expected Include/Proto/*.proto at the top or up to two folders down, found: {found}",
                   "point --sdk at an FTAPI4CPP/MMAPI4CPP folder or archive as downloaded, or the vendor's FTAPI-<version> download")


def found_at_top(paths: list[PurePosixPath], most: int = 6) -> str:
    """What a tree holds at its top (folders with a slash), for messages: 'CMakeLists.txt, src/, ...'."""
    top = sorted({p.parts[0] + ("/" if len(p.parts) > 1 else "") for p in paths})
    if not top:
        return "nothing (an empty folder or archive)"
    return ", ".join(top[:most]) + (f" (+{len(top) - most})" if len(top) > most else "")


def detect_brand(root_name: str, rel: list[PurePosixPath]) -> str | None:
    votes = set()
    for brand, lib in BRANDS.items():
        if any(p.parts[:2] == ("Src", lib) for p in rel) or PurePosixPath("Include", f"{lib}.h") in rel:
            votes.add(brand)
    if len(votes) == 1:
        return votes.pop()
    for brand, lib in BRANDS.items():
        if root_name.upper().startswith(lib):
            return brand
    return None


def describe(names: list[str], container_name: str, brand_override: str | None = None) -> SdkTree:
    paths = paths_of(names)
    root = find_root(paths, brand_override)
    rp = PurePosixPath(root) if root else None
    n = len(rp.parts) if rp else 0
    rel = [PurePosixPath(*p.parts[n:]) for p in paths if len(p.parts) > n and (rp is None or p.parts[:n] == rp.parts)]
    root_name = rp.name if rp else container_name
    brand = brand_override or detect_brand(root_name, rel)
    if brand is None:
        raise SdkError("cannot tell whether this SDK is " + " or ".join(f"{b}'s ({lib})" for b, lib in BRANDS.items()),
                       "pass " + " or ".join(f"--brand {b}" for b in BRANDS))
    lib = BRANDS[brand]
    # FTAPI4CPP_9.4.5418/, or the download's FTAPI-9.4.5418/FTAPI4CPP/, or the archive's name
    m = next((v for part in reversed(rp.parts if rp else ()) if (v := VERSION.search(part))), None) or VERSION.search(container_name)
    protos = sorted(str(p) for p in rel if len(p.parts) == 3 and p.parts[:2] == ("Include", "Proto") and p.suffix == ".proto")
    headers = sorted(
        str(p)
        for p in rel
        if p.parts[0] == "Include"
        and p.suffix in (".h", ".hpp", ".proto")
        and "google" not in p.parts
        and not p.name.endswith((".pb.h", ".pb.cc"))
    )
    compiled = [p for p in rel if p.parts[0] == "Src" and p.suffix in COMPILED]
    sources = sorted(str(p) for p in compiled if p.parts[:2] == ("Src", lib))
    channel_sources = sorted(str(p) for p in compiled if len(p.parts) > 2 and is_channel(p.parts[1]))
    protobuf = None
    for p in rel:
        if len(p.parts) == 2 and p.parts[0] == "Src" and PROTOBUF_ARCHIVE.match(p.name):
            protobuf = str(p)
            break
    if protobuf is None:
        for p in rel:  # an unpacked protobuf release: Src/protobuf-x.y.z/src/google/protobuf/message.h
            if p.parts[0] == "Src" and p.parts[-3:] == ("google", "protobuf", "message.h"):
                protobuf = str(PurePosixPath(*p.parts[:-3]))
                break
    channel = sorted(str(p) for p in rel if p.parts[0] == "Bin" and is_channel(p.name) and p.suffix in (".so", ".dylib", ".dll", ".lib"))
    # C++ sources anywhere else under Src/ belong to a shape we do not know: building without them
    # would ship a library that silently lacks code, so refuse and say what was found.
    pb_parts = PurePosixPath(protobuf).parts[:2] if protobuf else ()
    unknown = sorted(str(p) for p in compiled if p.parts[:2] not in (("Src", lib), pb_parts) and str(p) not in channel_sources)
    if unknown:
        shown = ", ".join(unknown[:3]) + (f" (+{len(unknown) - 3})" if len(unknown) > 3 else "")
        raise SdkError(f"unrecognised SDK shape: C++ sources outside Src/{lib}/ and Src/{lib}Channel/: {shown}",
                       f"opend-build builds Src/{lib}/ (the SDK) and Src/{lib}Channel/ (a channel built from source); "
                       "move the sources there, or report this SDK version's layout")
    pb_headers = tuple(h for h in VERSION_HEADERS if protobuf and not PROTOBUF_ARCHIVE.match(PurePosixPath(protobuf).name)
                       and PurePosixPath(protobuf, h) in rel)
    return SdkTree(root, brand, m.group(1) if m else "unknown", tuple(protos), tuple(headers), tuple(sources), tuple(channel_sources),
                   protobuf, tuple(channel), PurePosixPath("CMakeLists.txt") in rel, pb_headers)


def list_tree(path: Path, limits: archives.Limits = archives.LIMITS) -> list[str]:
    """Relative posix paths of every file in an SDK folder or archive."""
    if path.is_dir():
        out = []
        for dirpath, dirnames, filenames in os.walk(path, onerror=_raise):
            dirnames.sort()
            rel = Path(dirpath).relative_to(path)
            out.extend((rel / f).as_posix() for f in sorted(filenames))
        return out
    if archives.is_archive(path):
        entries = archives.list_entries(path)
        archives.check_entries(entries, *limits)  # refuse a hostile archive before anything else
        return [archives.safe_relpath(e.name).as_posix() for e in entries if e.kind == "file"]  # "./a/b" is a/b
    raise SdkError(f"{path} is neither a folder nor a .zip/.7z/.tar.gz archive", "point --sdk at an SDK folder or archive")


def _raise(exc: OSError) -> None:
    raise SdkError(f"cannot read {exc.filename}: {exc.strerror}", "check the permissions of the SDK folder") from exc


def open_sdk(path: Path, brand_override: str | None = None, limits: archives.Limits = archives.LIMITS) -> SdkTree:
    if not path.exists():
        raise SdkError(f"--sdk {path} does not exist", "give the path of an FTAPI4CPP/MMAPI4CPP folder or archive")
    if not os.access(path, os.R_OK):
        raise SdkError(f"--sdk {path} is not readable", "check its permissions")
    name = path.name
    for suffix in archives.ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return describe(list_tree(path, limits), name, brand_override)


# Where the vendor keeps each OS's prebuilt libraries, most preferred first.
BIN_FOLDERS = {"linux": ("Ubuntu16.04", "Centos7", "Linux"), "macos": ("Mac",), "windows": ("Windows-x64", "Windows")}
CHANNEL_SUFFIXES = {"linux": (".so",), "macos": (".dylib",), "windows": (".dll", ".lib")}


def is_channel(name: str) -> bool:
    """The vendor's closed channel library: FTAPIChannel, MMAPIChannel, or moomoo's APIChannel
    (libAPIChannel.dylib, FAQ Q7), with or without a lib prefix."""
    stem = PurePosixPath(name).stem.removeprefix("lib")
    return stem.endswith("APIChannel")


def channel_for(target_os: str, channel: tuple[str, ...], build_type: str = "Release", arch: str | None = None) -> tuple[str, ...]:
    """The vendor's channel libraries for one target, as the SDK ships them: Bin/<Linux folder>/,
    Bin/Mac/[<Config>/], Bin/Windows[-x64]/<Config>/ (the .dll and its import library .lib)."""
    if target_os == "linux" and arch not in (None, "x86_64"):
        return ()  # the vendor's Linux binaries are x86-64: none serves an aarch64 (cross) build
    folders = BIN_FOLDERS[target_os]
    if target_os == "windows":
        folders = ("Windows-x64",) if (arch or "x64") == "x64" else ("Windows",)
    for folder in folders:
        for below in ((build_type,), ()):  # the build type's own folder first, then a flat one
            found = tuple(c for c in channel if PurePosixPath(c).parts[1:-1] == (folder, *below)
                          and c.endswith(CHANNEL_SUFFIXES[target_os]) and is_channel(c))
            if found:
                return found
    return ()


def import_closure(proto_dir: Path, names: list[str]) -> list[str]:
    """`names` (.proto files in `proto_dir`) and every file they import, transitively."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for line in (proto_dir / name).read_text(encoding="utf-8").splitlines():
            if line.startswith("import "):
                todo.append(line.split('"')[1])
    return sorted(found)
