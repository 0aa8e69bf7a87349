"""Safe unpacking of .zip, .7z and .tar.* archives.

Every entry is checked before anything is written: no absolute paths, drive letters, backslashes
or '..' components; no links, devices or FIFOs (an SDK needs none); no setuid/setgid bits; and the
entry count and total unpacked size are bounded. Extraction goes into a fresh temporary sibling
folder that is renamed into place only when complete, so an interrupted unpack leaves nothing
half-written behind.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple, TypeVar

from .errors import DiskError, SdkError, UnsafeArchiveError

T = TypeVar("T")

MAX_ENTRIES = 200_000
MAX_TOTAL_BYTES = 8 * 1024**3

ARCHIVE_SUFFIXES = (".zip", ".7z", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


@dataclass(frozen=True)
class Entry:
    name: str  # as stored in the archive
    size: int
    kind: str  # "file", "dir" or "other"
    mode: int = 0o644
    index: int = 0  # position in the archive, to read the member back without looking it up by name


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def safe_relpath(name: str) -> PurePosixPath:
    """The relative path an entry may be written to, or UnsafeArchiveError."""
    if "\\" in name:
        raise UnsafeArchiveError(f"archive entry {name!r} contains a backslash")
    if "\x00" in name:
        raise UnsafeArchiveError(f"archive entry {name!r} contains a NUL byte")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"archive entry {name!r} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchiveError(f"archive entry {name!r} points outside the archive ('..')")
    if not parts:
        raise UnsafeArchiveError(f"archive entry {name!r} has an empty name")
    return PurePosixPath(*parts)


def is_root(name: str) -> bool:
    """The archive's own top folder ("." or "./"), which `tar -C dir .` stores first."""
    return not [p for p in name.split("/") if p not in ("", ".")] and not name.startswith("/")


def check_entries(entries: list[Entry], max_entries: int, max_bytes: int) -> None:
    if len(entries) > max_entries:
        raise UnsafeArchiveError(
            f"archive holds {len(entries)} entries, more than the limit of {max_entries}",
            "check that this is the SDK archive; raise OPEND_BUILD_MAX_ENTRIES if it really is",
        )
    total = 0
    for e in entries:
        if e.kind == "dir" and is_root(e.name):
            continue  # `tar czf x.tar.gz -C dir .` stores the folder itself as "./": nothing to write
        safe_relpath(e.name)
        if e.kind == "other":
            raise UnsafeArchiveError(f"archive entry {e.name!r} is a link or device file, which an SDK never needs")
        # A file's setuid/setgid bit is a hostile archive's mark. A folder's set-group-ID bit is
        # what a tarball made inside a shared folder carries (grpcio-tools 1.54.3's top folder):
        # folders are made by the extractor, never with the archive's modes, so it has no effect.
        if e.mode & (stat.S_ISUID | stat.S_ISGID) and not (e.kind == "dir" and e.mode & stat.S_ISUID == 0):
            raise UnsafeArchiveError(f"archive entry {e.name!r} carries a setuid/setgid bit")
        total += max(e.size, 0)
        if total > max_bytes:
            raise UnsafeArchiveError(
                f"archive unpacks to more than {max_bytes} bytes",
                "check that this is the SDK archive; raise OPEND_BUILD_MAX_BYTES if it really is",
            )


class Limits(NamedTuple):
    """What an archive may hold: entries, and bytes unpacked."""

    entries: int
    bytes: int


LIMITS = Limits(MAX_ENTRIES, MAX_TOTAL_BYTES)


def limits(env: Mapping[str, str]) -> Limits:
    """The limits, as the environment `env` raises (or the test suite lowers) them."""
    return Limits(int(env.get("OPEND_BUILD_MAX_ENTRIES", MAX_ENTRIES)), int(env.get("OPEND_BUILD_MAX_BYTES", MAX_TOTAL_BYTES)))


# --- format adapters: list entries, then stream selected files ----------------------------------


def _tar_entries(tf: tarfile.TarFile) -> list[Entry]:
    out = []
    for i, m in enumerate(tf.getmembers()):
        kind = "file" if m.isfile() else "dir" if m.isdir() else "other"
        out.append(Entry(m.name, m.size, kind, m.mode, i))
    return out


def _zip_entries(zf: zipfile.ZipFile) -> list[Entry]:
    out = []
    for n, i in enumerate(zf.infolist()):
        mode = (i.external_attr >> 16) & 0xFFFF
        kind = "dir" if i.is_dir() else "file"
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            kind = "other"  # a symlink or device stored by a Unix zip tool
        out.append(Entry(i.filename, i.file_size, kind, mode & 0o7777, n))
    return out


def list_entries(archive: Path) -> list[Entry]:
    """The entries of an archive, read without unpacking anything."""
    try:
        name = archive.name.lower()
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                return _zip_entries(zf)
        if name.endswith(".7z"):
            return _7z_entries(archive)
        with tarfile.open(archive) as tf:
            return _tar_entries(tf)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise SdkError(f"{archive} is not a readable archive: {exc}", "download it again") from exc
    except OSError as exc:
        raise SdkError(f"cannot read {archive}: {exc.strerror or exc}", "check the path and its permissions") from exc


def _7z_entries(archive: Path) -> list[Entry]:
    py7zr = _py7zr()
    try:
        with py7zr.SevenZipFile(archive) as z:
            out = []
            for f in z.list():
                kind = "dir" if f.is_directory else "file"
                if getattr(f, "is_symlink", False):
                    kind = "other"
                out.append(Entry(f.filename, f.uncompressed or 0, kind))
            return out
    except py7zr.exceptions.ArchiveError as exc:  # type: ignore[attr-defined]
        raise SdkError(f"{archive} is not a readable 7z archive: {exc}", "download it again") from exc


def _py7zr():  # type: ignore[no-untyped-def]
    try:
        import py7zr
    except ImportError as exc:  # pragma: no cover - py7zr is a dependency
        raise SdkError("reading .7z archives needs py7zr", "pip install py7zr") from exc
    return py7zr


def _copy_stream(src, dest: Path, limit: int) -> int:  # type: ignore[no-untyped-def]
    written = 0
    with open(dest, "xb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise UnsafeArchiveError(f"archive entry {dest.name!r} unpacks larger than it claims")
            out.write(chunk)
    return written


def _iter_selected(entries: list[Entry], select: Callable[[PurePosixPath], PurePosixPath | None]) -> Iterator[tuple[Entry, PurePosixPath]]:
    for e in entries:
        if e.kind != "file":
            continue
        rel = select(safe_relpath(e.name))
        if rel is not None:
            yield e, rel


def extract(
    archive: Path,
    dest: Path,
    select: Callable[[PurePosixPath], PurePosixPath | None] = lambda p: p,
    limits: Limits = LIMITS,
) -> Path:
    """Unpack the files `select` maps to a relative path (None skips) into `dest`, atomically.

    `dest` appears complete or not at all. Destinations are named by their content: when another
    run renames its copy into place first, that copy is kept and ours dropped.
    """
    max_entries, max_bytes = limits
    entries = list_entries(archive)
    check_entries(entries, max_entries, max_bytes)
    chosen = list(_iter_selected(entries, select))
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        _write_entries(archive, chosen, tmp, max_bytes)
        os.replace(tmp, dest)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if dest.is_dir() and exc.errno != 28:
            return dest  # another run unpacked the same content first
        if exc.errno == 28:  # ENOSPC
            raise DiskError(f"no space left while unpacking {archive.name} into {dest.parent}", "free disk space and run again") from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _target(root: Path, rel: PurePosixPath) -> Path:
    target = root.joinpath(*rel.parts)
    # Belt and braces: whatever the name checks allowed must still resolve inside root.
    if not str(target.resolve()).startswith(str(root.resolve()) + os.sep):
        raise UnsafeArchiveError(f"archive entry {rel} would land outside {root}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise UnsafeArchiveError(f"archive entry {rel} collides with a file of the same name") from exc
    if target.exists():
        raise UnsafeArchiveError(f"archive holds {rel} twice, or as both a file and a folder")
    return target


def _write_entries(archive: Path, chosen: list[tuple[Entry, PurePosixPath]], root: Path, max_bytes: int) -> None:
    name = archive.name.lower()
    budget = max_bytes
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for e, rel in chosen:
                with zf.open(infos[e.index]) as src:
                    budget -= _copy_stream(src, _target(root, rel), min(e.size, budget))
    elif name.endswith(".7z"):
        _write_7z(archive, chosen, root)
    else:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for e, rel in chosen:
                src = tf.extractfile(members[e.index])
                if src is None:
                    continue
                with src:
                    budget -= _copy_stream(src, _target(root, rel), min(e.size, budget))


def _write_7z(archive: Path, chosen: list[tuple[Entry, PurePosixPath]], root: Path) -> None:
    py7zr = _py7zr()
    wanted = {e.name: rel for e, rel in chosen}
    if not wanted:
        return
    staging = root / ".7z-raw"
    with py7zr.SevenZipFile(archive) as z:
        z.extract(path=staging, targets=list(wanted))
    for name, rel in wanted.items():
        src = staging.joinpath(*safe_relpath(name).parts)
        if src.is_symlink() or not src.is_file():
            raise UnsafeArchiveError(f"archive entry {name!r} did not unpack as a plain file")
        os.replace(src, _target(root, rel))
    shutil.rmtree(staging)



def digest_member(archive: Path, name: str, digest: Callable[[str, IO[bytes]], T]) -> T:
    """`digest(name, stream)` over one file inside an archive, streamed: nothing is written to disk."""
    lower = archive.name.lower()
    if lower.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf, zf.open(name) as src:
            return digest(name, src)
    if lower.endswith(".7z"):
        import io

        py7zr = _py7zr()
        with py7zr.SevenZipFile(archive) as z:
            data = _7z_read(z, name)
        return digest(name, io.BytesIO(data))
    with tarfile.open(archive) as tf:
        # By its path, whether the archive spells it with a leading "./" (tar -C dir .) or not.
        wanted = safe_relpath(name)
        member = next((m for m in tf.getmembers() if not is_root(m.name) and safe_relpath(m.name) == wanted), None)
        src = tf.extractfile(member) if member is not None else None
        if src is None:
            raise SdkError(f"{name} in {archive} is not a file")
        with src:
            return digest(name, src)


def _7z_read(z, name: str) -> bytes:  # type: ignore[no-untyped-def]
    """One member's bytes from a py7zr archive (API differs across py7zr versions)."""
    if hasattr(z, "read"):
        for _, bio in z.read(targets=[name]).items():
            return bio.read()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        z.extract(path=tmp, targets=[name])
        return Path(tmp, name).read_bytes()
