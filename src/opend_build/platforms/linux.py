"""Linux: g++ with -std=gnu++11 (the SDK's own choice), or clang with libc++ (--compiler clang).

--arch other than this machine's cross-compiles with Debian's cross g++ (aarch64-linux-gnu-g++,
package g++-aarch64-linux-gnu): the Toolchain then carries the build machine's own toolchain as
`host`, which builds the protoc that generates the code; the target's libraries (OpenSSL for the
open channel: libssl-dev:arm64) come from Debian's multiarch folders, never the host's.
"""

from __future__ import annotations

import platform
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ToolchainError, UsageError
from . import Toolchain

if TYPE_CHECKING:
    from ..host import Probe
    from ..settings import Options

# Target processor -> Debian's multiarch triplet (the cross compilers' prefix) and dpkg architecture.
ARCHS = {"x86_64": ("x86_64-linux-gnu", "amd64"), "aarch64": ("aarch64-linux-gnu", "arm64")}
# The options Linux takes and their choices.
OPTIONS: dict[str, tuple[str, ...] | None] = {"--compiler": ("gcc", "clang"), "--cxx11-abi": ("0", "1"), "--arch": tuple(ARCHS),
                                              "--toolchain-file": None}

INSTALL_HINT = {
    "gcc": "install a C++ compiler, e.g. 'apt-get install g++', or set CXX",
    "clang": "install clang and libc++, e.g. 'apt-get install clang libc++-dev libc++abi-dev'",
}


def host_arch() -> str:
    """This machine's processor, as --arch names it."""
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def target_arch(options: Options) -> str:
    """The processor a Linux build targets: --arch, else the toolchain file's CMAKE_SYSTEM_PROCESSOR, else this machine's."""
    if options.arch:
        return options.arch
    if options.toolchain_file is not None and options.toolchain_file.is_file():
        return _cmake_set(options.toolchain_file.read_text(encoding="utf-8", errors="replace"), "CMAKE_SYSTEM_PROCESSOR") or host_arch()
    return host_arch()


def cross_arch(options: Options) -> str:
    """The target processor of a cross build (--arch other than this machine's, or a toolchain
    file), "" for a native one: as toolchain() decides."""
    if options.os != "linux" or not (options.arch or options.toolchain_file):
        return ""
    arch = target_arch(options)
    return arch if options.toolchain_file is not None or arch != host_arch() else ""


def target_lib_dirs(arch: str, prefix: Path) -> list[Path]:
    """Where a prefix keeps the target's libraries: Debian's multiarch folder (lib/aarch64-linux-gnu),
    then lib/ (a cross prefix of its own)."""
    return [*([prefix / "lib" / ARCHS[arch][0]] if arch in ARCHS else []), prefix / "lib"]


def multiarch_hint(arch: str, package: str) -> str:
    dpkg = ARCHS[arch][1] if arch in ARCHS else arch
    return f"dpkg --add-architecture {dpkg} && apt-get update && apt-get install {package}:{dpkg}"


def cross_hint(arch: str) -> str:
    return f"install the cross compiler: apt-get install g++-{ARCHS[arch][0]}"


def openssl_hint(arch: str) -> str:
    return multiarch_hint(arch, "libssl-dev")


def openssl_install(arch: str, cross: bool) -> str:
    """The line that installs the open channel's OpenSSL for the target (doctor and the summary say it)."""
    return openssl_hint(arch) if cross else "apt-get install libssl-dev"


def target_has_openssl(arch: str, root: Path = Path("/")) -> bool:
    """Debian multiarch: the target's libcrypto and its configuration header (libssl-dev:<arch>)."""
    triplet = ARCHS[arch][0]
    lib = root / "usr" / "lib" / triplet
    return any((lib / f"libcrypto.{ext}").is_file() for ext in ("so", "a")) and (root / "usr/include" / triplet / "openssl" / "configuration.h").is_file()


def _find_cross(arch: str, probe: Probe) -> tuple[str, str]:
    triplet = ARCHS[arch][0]
    cxx, c = probe.which(f"{triplet}-g++"), probe.which(f"{triplet}-gcc")
    if cxx is None:
        raise ToolchainError(f"--arch {arch}: no cross compiler {triplet}-g++ on PATH", cross_hint(arch))
    return cxx, c or ""


def find(compiler: str, probe: Probe) -> str:
    """The C++ compiler `--compiler` names, on the PATH planning is given (CXX first, for gcc)."""
    candidates = ["clang++"] if compiler == "clang" else ["g++", "c++"]
    env_cxx = (probe.env or {}).get("CXX")
    if env_cxx and compiler != "clang":
        candidates.insert(0, env_cxx)
    for name in candidates:
        found = probe.which(name)
        if found:
            return found
    raise ToolchainError(f"no C++ compiler found (looked for {', '.join(candidates)})", INSTALL_HINT[compiler])


def _version(cxx: str, probe: Probe) -> str:
    try:
        return probe.compiler_version(cxx)
    except OSError as exc:
        raise ToolchainError(f"cannot run the C++ compiler {cxx}: {exc.strerror}", INSTALL_HINT["gcc"]) from exc


def _check_libcxx(cxx: str, probe: Probe) -> None:
    """clang without libc++ fails deep inside CMake's compiler check; say what to install instead."""
    if not probe.compiles(cxx, ["-stdlib=libc++"], "#include <string>\nint main() { return std::string(\"ok\").size() == 2 ? 0 : 1; }\n"):
        raise ToolchainError(f"{cxx} cannot build with libc++ (-stdlib=libc++)", INSTALL_HINT["clang"])


def toolchain(options: Options, probe: Probe) -> Toolchain:
    if options.toolchain_file is not None:
        return _from_file(options, options.toolchain_file, probe)
    arch = options.arch or host_arch()
    if arch != host_arch():
        return _cross(options, arch, probe)
    return _native(options, probe)


def _cross(options: Options, arch: str, probe: Probe) -> Toolchain:
    """The target's toolchain, with the build machine's own as `host` (it builds the protoc that runs here)."""
    if options.compiler == "clang":
        raise ToolchainError(f"--arch {arch}: cross builds use Debian's cross g++ for now, not clang", "drop --compiler clang")
    host = _native(replace(options, arch=None), probe)
    triplet = ARCHS[arch][0]
    cxx, c = _find_cross(arch, probe) if probe.live else (f"{triplet}-g++", f"{triplet}-gcc")
    version = _version(cxx, probe) if probe.live else "(probed on the build host)"
    notes = [f"cross build for {arch} on this {host_arch()} machine: protoc for {host_arch()} generates the code; "
             f"the {arch} programs run here under qemu-{arch} -L /usr/{triplet}"]
    if options.cxx11_abi is not None:
        notes.append(f"_GLIBCXX_USE_CXX11_ABI={options.cxx11_abi}")
    if probe.live and not target_has_openssl(arch):
        notes.append(f"the {arch} OpenSSL is not installed (no libcrypto in /usr/lib/{triplet}): the open channel is not built "
                     f"(to build it: {openssl_hint(arch)})")
    # pkg-config would hand FindOpenSSL the host's library folder: it reads the target's .pc files only.
    env = (("PKG_CONFIG_LIBDIR", f"/usr/lib/{triplet}/pkgconfig:/usr/share/pkgconfig"),)
    return Toolchain(os="linux", compiler="gcc", cxx=cxx, version=version, bin_dir="Bin/Linux", cxx11_abi=options.cxx11_abi,
                     arch=arch, c=c, library_architecture=triplet, host=host, env=env, notes=tuple(notes))


def _cmake_set(text: str, name: str) -> str:
    """The value a toolchain file gives `name` with a plain set(NAME value), or ""."""
    m = re.search(rf'^\s*set\s*\(\s*{name}\s+"?([^")\s]+)"?', text, re.M | re.I)
    return m.group(1) if m else ""


def _from_file(options: Options, path: Path, probe: Probe) -> Toolchain:
    """A user's CMake toolchain file: it names the compilers and the target; the driver passes it as
    it is (CMAKE_TOOLCHAIN_FILE) and builds protobuf for this machine too, whose protoc generates."""
    import hashlib

    data = path.read_bytes()
    text = data.decode("utf-8", errors="replace")
    arch = options.arch or _cmake_set(text, "CMAKE_SYSTEM_PROCESSOR")
    if not arch:
        raise UsageError(f"--toolchain-file {path}: it sets no CMAKE_SYSTEM_PROCESSOR", "name the target with --arch (x86_64 or aarch64)")
    named = _cmake_set(text, "CMAKE_CXX_COMPILER")
    host = _native(replace(options, arch=None, toolchain_file=None), probe)
    cxx, version = named or "(the toolchain file's)", "(from the toolchain file)"
    if probe.live and named and "$" not in named:
        found = probe.which(named)
        if found is None:
            raise ToolchainError(f"--toolchain-file {path}: its CMAKE_CXX_COMPILER {named} is not found",
                                 cross_hint(arch) if arch in ARCHS and arch != host_arch() else "install it, or fix the toolchain file")
        cxx, version = found, _version(found, probe)
    return Toolchain(os="linux", compiler="gcc", cxx=cxx, version=version, bin_dir="Bin/Linux", cxx11_abi=options.cxx11_abi, arch=arch, host=host,
                     toolchain_file=str(path), toolchain_digest=hashlib.sha256(data).hexdigest(),
                     notes=(f"cross build with the toolchain file {path} (for {arch}): protoc for {host_arch()} generates the code",))


def _native(options: Options, probe: Probe) -> Toolchain:
    compiler = options.compiler or "gcc"
    cxx = find(compiler, probe) if probe.live else ("clang++" if compiler == "clang" else "g++")
    if probe.live and compiler == "clang":
        _check_libcxx(cxx, probe)
    version = _version(cxx, probe) if probe.live else "(probed on the build host)"
    notes = (f"_GLIBCXX_USE_CXX11_ABI={options.cxx11_abi}",) if options.cxx11_abi is not None else ()
    return Toolchain(os="linux", compiler=compiler, cxx=cxx, version=version, bin_dir="Bin/Linux",
                     stdlib="libc++" if compiler == "clang" else "", cxx11_abi=options.cxx11_abi, arch=host_arch(), notes=notes)
