"""The oldest Linux an output runs on: the symbol versions its ELF files need, read from their bytes.

A dynamic ELF file (an executable or a shared object) lists, per library it needs, the symbol
versions it was linked against (section .gnu.version_r, type SHT_GNU_verneed): libc.so.6 ->
GLIBC_2.17, GLIBC_2.34, ... The newest GLIBC_ version there is the oldest glibc that loads the file.

Read in Python rather than from `objdump -p` or `readelf -V`: binutils is not on every machine
that builds or checks an output (macOS has neither tool for ELF), the text of those tools differs
between versions, and the section's layout is small and fixed (ELF gABI and the LSB's symbol
versioning chapter). Pure functions over bytes.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

SHT_GNU_VERNEED = 0x6FFFFFFE
GLIBC = re.compile(r"^GLIBC_(\d+(?:\.\d+)+)$")
GLIBCXX = re.compile(r"^GLIBCXX_(\d+(?:\.\d+)+)$")


def is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def version_needs(data: bytes) -> dict[str, list[str]]:
    """Library -> the symbol versions this ELF file needs of it, in file order; {} for a file that
    needs none (a static executable, an object file, an archive) or is not ELF."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return {}
    wide, little = data[4] == 2, data[5] == 1
    end = "<" if little else ">"

    def u(fmt: str, off: int) -> tuple[int, ...]:
        return struct.unpack_from(end + fmt, data, off)

    if wide:
        shoff, = u("Q", 0x28)
        shentsize, shnum = u("HH", 0x3A)
        section = "IIQQQQIIQQ"  # name type flags addr offset size link info align entsize
    else:
        shoff, = u("I", 0x20)
        shentsize, shnum = u("HH", 0x2E)
        section = "IIIIIIIIII"
    if shoff == 0 or shoff + shnum * shentsize > len(data):
        return {}
    headers = [u(section, shoff + i * shentsize) for i in range(shnum)]
    needs: dict[str, list[str]] = {}
    for h in headers:
        if h[1] != SHT_GNU_VERNEED or h[6] >= shnum:
            continue
        strtab = headers[h[6]][4]  # sh_link: the string table the entries name into (.dynstr)

        pos, left = h[4], h[7]  # sh_info: the number of Verneed entries
        while left > 0 and pos + 16 <= len(data):
            _version, count, file_off, aux, next_off = u("HHIII", pos)  # Elf_Verneed: the same in 32 and 64 bits
            names = needs.setdefault(_string(data, strtab + file_off), [])
            apos = pos + aux
            for _ in range(count):
                _hash, _flags, _other, name_off, anext = u("IHHII", apos)  # Elf_Vernaux
                names.append(_string(data, strtab + name_off))
                if anext == 0:
                    break
                apos += anext
            left -= 1
            if next_off == 0:
                break
            pos += next_off
    return needs


def _string(data: bytes, start: int) -> str:
    return data[start : data.index(b"\0", start)].decode("ascii", errors="replace")


def _newest(names: list[str], pattern: re.Pattern[str]) -> str | None:
    found = [m.group(1) for n in names if (m := pattern.match(n))]
    return max(found, key=version_key) if found else None


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def glibc_needed(data: bytes) -> str | None:
    """The newest GLIBC_x.y this file needs (of any library: libc, libm, libpthread carry them), or None."""
    return _newest([v for vs in version_needs(data).values() for v in vs], GLIBC)


def glibcxx_needed(data: bytes) -> str | None:
    """The newest GLIBCXX_x.y.z (libstdc++) this file needs, or None (static libstdc++, libc++, C)."""
    return _newest([v for vs in version_needs(data).values() for v in vs], GLIBCXX)


def floor(root: Path, paths: list[str]) -> dict[str, object] | None:
    """What `paths` (relative to `root`) need of the system, from their dynamic ELF files: the
    newest glibc and libstdc++ symbol versions, and which file needs each. None when none of
    them is a dynamic ELF file that needs a GLIBC_ version (a macOS or Windows output; archives)."""
    by_file: dict[str, str] = {}
    cxx: dict[str, str] = {}
    for rel in paths:
        p = root / rel
        if not p.is_file() or not is_elf(p):
            continue
        data = p.read_bytes()
        if g := glibc_needed(data):
            by_file[rel] = g
        if c := glibcxx_needed(data):
            cxx[rel] = c
    if not by_file:
        return None
    newest = max(by_file.values(), key=version_key)
    newest_cxx = max(cxx.values(), key=version_key) if cxx else None
    return {
        "glibc": newest,
        "glibc_needed_by": sorted(f for f, v in by_file.items() if v == newest),
        "files": dict(sorted(by_file.items())),
        "libstdcxx": newest_cxx,
        "how": "the newest GLIBC_ (and GLIBCXX_) symbol version the output's executables and shared objects need (.gnu.version_r)",
    }


def this_glibc() -> str | None:
    """This machine's glibc version ('2.36'), or None where the C library is not glibc."""
    import os
    import platform

    try:
        said = os.confstr("CS_GNU_LIBC_VERSION") or ""  # 'glibc 2.36'
    except (ValueError, OSError, AttributeError):
        said = ""
    m = re.match(r"glibc (\d+(?:\.\d+)+)", said)
    if m:
        return m.group(1)
    lib, version = platform.libc_ver()
    return version if lib == "glibc" and version else None
