"""Which protobuf the SDK is built against: what `--protobuf` means, and the facts that follow from
a protobuf's version (the C++ language level, the version protoc must report).

Two providers:
- "build": a protobuf source (the pinned PyPI copy of a version, the SDK's Src/protobuf-*, or a
  source folder or archive) built by cmake/protobuf into a prefix shared by every SDK build of the
  same toolchain; the output ships that libprotobuf and protoc.
- "installed": a protobuf already installed (the system's, or a prefix: a Conan or vcpkg install
  folder, a Homebrew prefix, the user's own build), found by CMake's find_package(Protobuf).
  Nothing of protobuf is built or shipped: the output links the consumer's protobuf::libprotobuf.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import archives, host, protobuf_src, sources
from .errors import ProtobufSourceError
from .protobuf_src import protoc_numbering, runtime_from_headers, version_from_headers
from .settings import host_os
from .steps import Action, Present, Step, action_step

if TYPE_CHECKING:
    from .settings import Options

SYSTEM = "system"
PINNED_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
DEBIAN_PACKAGES = "libprotobuf-dev protobuf-compiler"


@dataclass(frozen=True)
class Protobuf:
    """The protobuf of one build, as the plan shows it and the build folders are keyed by it."""

    provider: str  # "build" | "installed"
    version: str  # protoc's numbering (3.5.1, 3.21.12, 29.0); "" when only the build host can tell
    origin: str  # where it comes from, in words
    identity: str  # what the build folders are keyed by
    src: Path | None = None  # build: the folder holding google/protobuf
    prefix: Path | None = None  # installed: the prefix; None: the system's (CMake's default search)
    protoc: Path | None = None  # installed: the protoc next to those headers, when known here
    pin: str = ""  # build from a pinned PyPI source: the pin's name in inputs.json
    abseil: Path | None = None  # build, 22 and later: the abseil-cpp folder (holding absl/)
    utf8_range: Path | None = None  # build, 22 and later: the utf8_range folder
    steps: tuple[Step, ...] = ()  # build: what fetches and unpacks its source (the plan's input steps)
    include: Path | None = None  # installed: the folder holding google/protobuf
    host_protoc: Path | None = None  # installed, cross builds: this machine's protoc, which generates (OPEND_HOST_PROTOC)
    runtime: str = ""  # installed: the version its headers give the runtime (5.29.0 where protoc says 29.0)
    missing: str = ""  # --dry-run --protobuf system: what this machine lacks of it (the plan's head names it; the run exits 4)

    @property
    def cxx_standard(self) -> int | None:
        return cxx_standard(self.version) if self.version else None


def cxx_standard(version: str) -> int:
    """The C++ standard the SDK is built with for a protobuf: 3.x with C++11 (the SDK's gnu++11).
    From 22 on, C++17: 22 to 29 would accept 14 (port_def.inc asserts it) and 30 on need 17, but
    their abseil changes its ABI with the standard (absl::string_view is std::string_view from 17
    on), so code built with 14 does not link with a consumer on 17, today's compilers' default."""
    return 11 if int(version.split(".")[0]) <= 3 else 17


def language_level(standard: int | None, compiler: str) -> str:
    """How the plan names the language level: gnu++NN for g++ and clang (extensions on, as the
    SDK's own build); for MSVC, whose least is C++14 (it has no C++11 mode), C++NN."""
    if standard is None:
        return "language level of the protobuf found on the build host (gnu++11 for 3.x, 17 from 22 on)"
    return f"C++{max(standard, 14)}" if compiler == "msvc" else f"gnu++{standard}"


def _version_headers(include_dir: Path) -> tuple[str | None, str | None]:
    base = include_dir / "google" / "protobuf"

    def read(p: Path) -> str | None:
        return p.read_text(encoding="utf-8", errors="replace") if p.is_file() else None

    return read(base / "stubs" / "common.h"), read(base / "port_def.inc")


def version_in(include_dir: Path) -> str | None:
    return version_from_headers(*_version_headers(include_dir))


def protoc_version(output: str) -> str | None:
    """'libprotoc 3.21.12' -> '3.21.12'."""
    m = re.search(r"libprotoc (\d+(?:\.\d+)+)", output)
    return m.group(1) if m else None


def same_version(a: str, b: str) -> bool:
    """protoc 29.0, headers 29.0.0 and the runtime's 5.29.0 are one version."""
    return protoc_numbering(a) == protoc_numbering(b)


def is_installed_prefix(folder: Path) -> bool:
    """An installed protobuf (include/google/protobuf and a lib/), told apart from a source tree
    (src/google/protobuf, or google/protobuf at the top) by its content."""
    return (folder / "include" / "google" / "protobuf" / "message.h").is_file() and (folder / "lib").is_dir()


def protoc_in(prefix: Path, exe_suffix: str = "") -> Path | None:
    """Where prefixes keep protoc: bin/ (a plain install, Conan, Homebrew), tools/protobuf/ (vcpkg)."""
    for cand in (prefix / "bin" / f"protoc{exe_suffix}", prefix / "tools" / "protobuf" / f"protoc{exe_suffix}"):
        if cand.is_file():
            return cand
    return None


def installed(prefix: Path | None, include_dirs: list[Path], protoc: Path | None) -> Protobuf:
    """An installed protobuf: a prefix, or (prefix None) the system's, whose headers were looked
    for in `include_dirs` and whose protoc is `protoc`."""
    where = str(prefix) if prefix is not None else SYSTEM
    include = next((d for d in include_dirs if (d / "google" / "protobuf" / "message.h").is_file()), None)
    if include is None:
        if prefix is None:
            raise ProtobufSourceError(
                "--protobuf system: no protobuf is installed here (no google/protobuf/message.h in " + ", ".join(map(str, include_dirs)) + ")",
                f"install it (Debian/Ubuntu: apt-get install {DEBIAN_PACKAGES}), or pass --protobuf DIR or a version",
            )
        raise ProtobufSourceError(f"--protobuf {prefix}: no protobuf installed there (no include/google/protobuf/message.h)",
                                  "give an installed protobuf prefix (include/, lib/, bin/protoc) or a protobuf source folder or archive")
    headers = _version_headers(include)  # read once: protoc's numbering and the runtime's come from the same text
    version = version_from_headers(*headers)
    if version is None:
        raise ProtobufSourceError(f"cannot read the protobuf version of {include}/google/protobuf", "is this a complete protobuf install?")
    return Protobuf("installed", version, f"{where} (protobuf {version}, headers in {include})", f"installed:{where}:{version}",
                    prefix=prefix, protoc=protoc, include=include, runtime=runtime_from_headers(*headers) or "")


def unknown_version(value: str, available: list[str]) -> ProtobufSourceError:
    return ProtobufSourceError(
        f"--protobuf {value}: no pinned source of that version (available: {', '.join(available)})",
        "pass one of those, 'system', an installed protobuf prefix, or a protobuf source folder or archive",
    )


def system_prefixes(env: dict[str, str], target_os: str) -> list[Path]:
    """Where CMake looks for an installed protobuf: CMAKE_PREFIX_PATH, then the system prefixes."""
    found = [Path(p) for p in env.get("CMAKE_PREFIX_PATH", "").split(os.pathsep) if p]
    return [*found, Path("/usr/local"), Path("/usr"), *([Path("/opt/homebrew")] if target_os == "macos" else [])]


def which_protoc(env: Mapping[str, str]) -> Path | None:
    """The protoc CMake's FindProtobuf would find on the PATH of `env`."""
    found = host.which("protoc", env)
    return Path(found) if found else None


def run_protoc_version(protoc: Path, probe: host.Probe) -> str | None:
    try:
        return protoc_version(probe.version_line(str(protoc)))
    except OSError:
        return None


def system_include(env: dict[str, str], target_os: str) -> Path | None:
    """The include folder of the protobuf installed on this machine, where CMake would find it."""
    return next((p / "include" for p in system_prefixes(env, target_os) if (p / "include/google/protobuf/message.h").is_file()), None)


def describe_system(env: dict[str, str], target_os: str, probe: host.Probe) -> list[str]:
    """What doctor says of the protobuf installed on this machine, one fact a line."""
    include = system_include(env, target_os)
    protoc = which_protoc(env)
    headers = version_in(include) if include else None
    said = [f"protobuf headers: {headers} in {include}" if include else f"protobuf headers: none installed (Debian: apt-get install {DEBIAN_PACKAGES})"]
    protoc_v = run_protoc_version(protoc, probe) if protoc else None
    said.append(f"protoc: {protoc_v or 'unknown version'} at {protoc}" if protoc else "protoc: none on PATH")
    if headers and protoc_v and not same_version(headers, protoc_v):
        said.append(f"mismatch: protoc {protoc_v} cannot generate code for the {headers} headers; --protobuf system would be refused")
    elif headers and protoc_v:
        said.append(f"--protobuf system builds the SDK against this protobuf {headers}")
    return said


def installed_version(env: dict[str, str], target_os: str) -> str | None:
    include = system_include(env, target_os)
    return version_in(include) if include else None


# --- where the protobuf comes from: --protobuf, the SDK's own source, or the pinned default -----


def _pinned(name: str, pins: dict[str, sources.Pin], cache: Path) -> Protobuf:
    """A pinned protobuf source from PyPI, unpacked by content digest like an SDK's protobuf
    tarball: equal sources share one folder and therefore one protobuf build. From 22 on the pin
    is a bundle: protobuf with the abseil-cpp and utf8_range it needs, side by side."""
    pin = pins[name]
    dest = protobuf_src.unpack_dir(pin.src_digest, cache)
    bundle = pin.layout == "bundle"
    steps = (
        sources.fetch_step(name, pin, cache),
        action_step("inputs", f"unpack protobuf{' with abseil-cpp and utf8_range' if bundle else ''} sources from {pin.filename}", Action.UNPACK_PROTOBUF,
                    Present(str(dest)), archive=sources.download_path(pin, cache), dest=dest, digest=pin.src_digest, bundle=pin.subdir if bundle else ""),
    )
    origin = f"PyPI {pin.project} {pin.version} ({pin.filename}, sha256 {pin.sha256[:12]}...)"
    if bundle:
        return Protobuf("build", pin.protobuf_version, origin, f"src:{pin.src_digest}", src=dest / "protobuf" / "src", pin=name,
                        abseil=dest / "abseil-cpp", utf8_range=dest / "protobuf" / "third_party" / "utf8_range", steps=steps)
    return Protobuf("build", pin.protobuf_version, origin, f"src:{pin.src_digest}", src=dest, pin=name, steps=steps)


def _system(options: Options, env: Mapping[str, str], probe: host.Probe) -> Protobuf:
    """The protobuf installed on this machine, looked for where CMake looks: CMAKE_PREFIX_PATH,
    then the system prefixes. On another OS's --dry-run only the build host can tell."""
    if options.os != host_os():
        return Protobuf("installed", "", "system (found on the build host by find_package(Protobuf))", "installed:system")
    prefixes = system_prefixes(dict(env), options.os)
    try:
        found = installed(None, [p / "include" for p in prefixes], which_protoc(env))
        arch = _cross_arch(options)
        return for_cross(found, arch, [d for p in prefixes for d in _target_lib_dirs(arch, p)], env, probe) if arch else same_protoc(found, probe)
    except ProtobufSourceError as exc:
        if not options.dry_run:
            raise
        # A dry run still shows the plan, and what the real run would stop at (exit 4) at its top.
        return Protobuf("installed", "", "system (not usable on this machine: see 'missing' above)", "installed:system",
                        missing=f"{exc.message} ({exc.hint})" if exc.hint else exc.message)


def same_protoc(found: Protobuf, probe: host.Probe) -> Protobuf:
    """An installed protobuf whose protoc (the one the plan hands the configure) is of another
    version than its headers is refused now, as the configure would refuse it (OpenDFindProtobuf.cmake)."""
    if found.protoc is None:
        return found
    protoc_v = run_protoc_version(found.protoc, probe)
    if protoc_v and not same_version(protoc_v, found.version):
        what = "--protobuf system" if found.prefix is None else f"--protobuf {found.prefix}"
        raise ProtobufSourceError(f"{what}: its protoc {found.protoc} is protobuf {protoc_v}, its headers ({found.include}) {found.version}: "
                                  "the generated code must match the runtime it links",
                                  f"install one version of both (Debian: apt-get install {DEBIAN_PACKAGES}), or put a protoc {found.version} first on PATH")
    return found


def _cross_arch(options: Options) -> str:
    from .platforms import linux

    return linux.cross_arch(options)


def _target_lib_dirs(arch: str, prefix: Path) -> list[Path]:
    from .platforms import linux

    return linux.target_lib_dirs(arch, prefix)


def pc_version(pc: Path) -> str | None:
    """The Version: of a pkg-config file (protobuf.pc), or None."""
    m = re.search(r"^Version:\s*(\S+)", pc.read_text(encoding="utf-8", errors="replace"), re.M) if pc.is_file() else None
    return m.group(1) if m else None


ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}


def for_cross(found: Protobuf, arch: str, lib_dirs: list[Path], env: Mapping[str, str], probe: host.Probe) -> Protobuf:
    """An installed protobuf for a cross build: its library is the target's (Debian: libprotobuf-dev:arm64
    in /usr/lib/aarch64-linux-gnu; the headers in /usr/include are every architecture's), and the protoc
    that generates is this machine's (protobuf-compiler, on PATH), of the same version as that library."""
    from .platforms import linux

    what = "--protobuf system" if found.prefix is None else f"--protobuf {found.prefix}"
    package = f"libprotobuf-dev:{linux.ARCHS[arch][1]}" if arch in linux.ARCHS else f"libprotobuf for {arch}"
    lib = next((d / f"libprotobuf.{ext}" for d in lib_dirs for ext in ("so", "a") if (d / f"libprotobuf.{ext}").is_file()), None)
    if lib is None:
        raise ProtobufSourceError(f"{what} --arch {arch}: no {arch} libprotobuf (looked in {', '.join(map(str, lib_dirs))})",
                                  f"install the target's: {linux.multiarch_hint(arch, 'libprotobuf-dev')}" if found.prefix is None
                                  else f"give a protobuf prefix built for {arch} (lib/libprotobuf.so or .a)")
    with open(lib, "rb") as f:
        head = f.read(20) if lib.suffix == ".so" else b""
    machine = ELF_MACHINES.get(int.from_bytes(head[18:20], "little" if head[5:6] == b"\x01" else "big")) if head[:4] == b"\x7fELF" else None
    if machine and machine != arch:
        raise ProtobufSourceError(f"{what} --arch {arch}: {lib} is a {machine} library, not {arch}",
                                  f"install the target's ({package}) or give a prefix built for {arch}")
    lib_version = pc_version(lib.parent / "pkgconfig" / "protobuf.pc") or found.version
    protoc = which_protoc(env)
    if protoc is None:
        raise ProtobufSourceError(f"{what} --arch {arch}: no protoc on PATH to generate the code with (the {arch} one cannot run here)",
                                  f"install this machine's protoc of protobuf {lib_version} (Debian: apt-get install protobuf-compiler) or put it on PATH")
    protoc_v = run_protoc_version(protoc, probe)
    for name, version in ((f"this machine's protoc {protoc}", protoc_v), (f"the headers ({found.origin})", found.version)):
        if not version or not same_version(version, lib_version):
            raise ProtobufSourceError(
                f"{what} --arch {arch}: {name} is protobuf {version or 'of an unknown version'}, the {arch} library {lib} is {lib_version}: "
                "the generated code must match the runtime it links",
                f"install one version of both (Debian: apt-get install protobuf-compiler {package}, which apt keeps at one version), "
                f"or put a protoc {lib_version} first on PATH, or drop --protobuf (protobuf is then built for both machines from one source)")
    where = "system" if found.prefix is None else str(found.prefix)
    return replace(found, origin=f"{where} (protobuf {lib_version}: the {arch} library {lib}, headers in {found.include}; this machine's protoc {protoc} generates)",
                   identity=f"{found.identity}:{arch}", protoc=protoc, host_protoc=protoc)


def choose(options: Options, sdk_protobuf: Protobuf | None, pins: dict[str, sources.Pin], env: Mapping[str, str],
           cache: Path, digests: sources.Digests, probe: host.Probe) -> Protobuf:
    """--protobuf, or without it the SDK's own protobuf source, or the pinned default; the steps
    that fetch and unpack its source come with it (`Protobuf.steps`)."""
    value = options.protobuf
    if value is None:
        return sdk_protobuf or _pinned("protobuf", pins, cache)
    if value == SYSTEM:
        return _system(options, env, probe)
    if PINNED_VERSION.match(value):
        if f"protobuf-{value}" not in pins:
            raise unknown_version(value, sources.protobuf_versions(pins))
        return _pinned(f"protobuf-{value}", pins, cache)
    path = host.expand(Path(value), env)
    if not path.exists():
        raise ProtobufSourceError(f"--protobuf {value}: no such file or folder",
                                  f"pass a version ({', '.join(sources.protobuf_versions(pins))}), 'system', an installed prefix, or a protobuf source")
    if path.is_dir() and is_installed_prefix(path):
        if arch := _cross_arch(options):  # a prefix built for the target: its protoc cannot run here
            return for_cross(installed(path, [path / "include"], None), arch, _target_lib_dirs(arch, path), env, probe)
        found = installed(path, [path / "include"], protoc_in(path, ".exe" if options.os == "windows" else ""))
        return same_protoc(found, probe) if options.os == host_os() else found
    return source(path, cache, digests)


def source(path: Path, cache: Path, digests: sources.Digests, described: tuple[str, str | None] | None = None) -> Protobuf:
    """A protobuf source to build: an archive (unpacked by a step) or a folder.

    An archive is known by the digest of its C++ sources, so equal sources share one protobuf
    build; a folder may change under us, so its build stays apart and Ninja tracks its edits."""
    if archives.is_archive(path):
        digest, version = described or digests.get(path, "protobuf", lambda: protobuf_src.describe_archive(path))
        if not version:
            raise ProtobufSourceError(f"{path.name}: cannot read the protobuf version (no GOOGLE_PROTOBUF_VERSION or PROTOBUF_VERSION in its headers)",
                                      "give a complete protobuf source archive, a version, or 'system'")
        dest = protobuf_src.unpack_dir(digest, cache)
        unpack = action_step("inputs", f"unpack protobuf sources from {path.name}", Action.UNPACK_PROTOBUF, Present(str(dest)), archive=path, dest=dest,
                             digest=digest)
        return Protobuf("build", version, f"{path}", f"src:{digest}", src=dest, steps=(unpack,))
    src = protobuf_src.find_src(path)
    if src is not None and not version_in(src):
        raise ProtobufSourceError(f"{src}: cannot read the protobuf version (no GOOGLE_PROTOBUF_VERSION or PROTOBUF_VERSION in its headers)",
                                  "give a complete protobuf source, a version, or 'system'")
    if src is None:
        raise ProtobufSourceError(
            f"{path} holds no protobuf (no google/protobuf/message.h in it, its src/ or one folder down, and no include/ and lib/ of an installed one)",
            "give --protobuf a protobuf source archive or folder, an installed prefix, a version, or 'system'",
        )
    return Protobuf("build", version_in(src) or "", str(src), f"dir:{src}", src=src)
