"""Hostile archives: a corpus of crafted .tar/.zip/.7z files and generated entry names.
None may write outside its extraction folder; each is refused with the unsafe-archive exit code."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pytest
from conftest import run_driver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opend_build import archives
from opend_build.errors import SdkError, UnsafeArchiveError

PROTO = b'syntax = "proto2";\npackage Common;\nmessage A { optional int32 x = 1; }\n'
SDK_OK = [("FTAPI4CPP_1.0/Include/Proto/Common.proto", PROTO), ("FTAPI4CPP_1.0/Include/FTAPI.h", b"")]


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, **kw: object) -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type = kind
    i.size = int(kw.pop("size", 1)) if kind == tarfile.REGTYPE else 0  # type: ignore[arg-type]
    for k, v in kw.items():
        setattr(i, k, v)
    return i


def _zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def _zip_symlink(path: Path) -> Path:
    info = zipfile.ZipInfo("FTAPI4CPP_1.0/Include/Proto/link.proto")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip(path, [*SDK_OK, (info, b"/etc/passwd")])


def _zip_raw_name(path: Path, name: str) -> Path:
    """A zip whose stored name is exactly `name` (zipfile would rewrite backslashes on Windows only)."""
    placeholder = "FTAPI4CPP_1.0/Include/Proto/XXXX.proto"
    _zip(path, [*SDK_OK, (placeholder, PROTO)])
    data = path.read_bytes().replace(placeholder.encode(), name.encode().ljust(len(placeholder), b"_")[: len(placeholder)])
    path.write_bytes(data)
    return path


def _7z(path: Path, entries: list[tuple[str, bytes]], symlink: bool = False) -> Path:
    src = path.with_suffix(".src")
    src.mkdir()
    with py7zr.SevenZipFile(path, "w") as z:
        for i, (name, data) in enumerate(entries):
            f = src / f"f{i}"
            f.write_bytes(data)
            z.write(f, name)
        if symlink:
            os.symlink("/etc/passwd", src / "lnk")
            z.write(src / "lnk", "FTAPI4CPP_1.0/Include/Proto/lnk.proto")
    return path


HOSTILE = {
    "tar-absolute": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, ("/tmp/opend-evil", b"x")]),
    "tar-dotdot": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, ("../evil", b"x")]),
    "tar-nested-dotdot": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, ("FTAPI4CPP_1.0/Include/../../../evil", b"x")]),
    "tar-dot-dotdot": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, ("./../evil", b"x")]),
    "tar-symlink-out": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, _info("FTAPI4CPP_1.0/Include/Proto/x.proto", tarfile.SYMTYPE, linkname="/etc/passwd")]),
    "tar-symlink-then-write": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, _info("FTAPI4CPP_1.0/up", tarfile.SYMTYPE, linkname=".."), ("FTAPI4CPP_1.0/up/evil", b"x")]),
    "tar-hardlink-out": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, _info("FTAPI4CPP_1.0/hl", tarfile.LNKTYPE, linkname="/etc/passwd")]),
    "tar-char-device": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, _info("FTAPI4CPP_1.0/null", tarfile.CHRTYPE, devmajor=1, devminor=3)]),
    "tar-block-device": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, _info("FTAPI4CPP_1.0/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)]),
    "tar-fifo": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, _info("FTAPI4CPP_1.0/fifo", tarfile.FIFOTYPE)]),
    "tar-setuid": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, _info("FTAPI4CPP_1.0/Bin/run", mode=0o4755)]),
    "tar-setgid": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, _info("FTAPI4CPP_1.0/Bin/run", mode=0o2755)]),
    "tar-setuid-folder": lambda p: _tar(p / "a.tar.gz", [_info("FTAPI4CPP_1.0/Bin", tarfile.DIRTYPE, mode=0o4755), *SDK_OK]),
    "tar-backslash": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, ("..\\..\\evil", b"x")]),
    "tar-drive-letter": lambda p: _tar(p / "a.tar.gz", [*SDK_OK, ("C:/Windows/evil", b"x")]),
    "tar-plain-dotdot": lambda p: _tar(p / "a.tar", [*SDK_OK, ("..", b"x")], "w"),
    "tar-xz-dotdot": lambda p: _tar(p / "a.tar.xz", [*SDK_OK, ("x/../../evil", b"x")], "w:xz"),
    "zip-dotdot": lambda p: _zip(p / "a.zip", [*SDK_OK, ("../evil", b"x")]),
    "zip-absolute": lambda p: _zip(p / "a.zip", [*SDK_OK, ("/tmp/opend-evil", b"x")]),
    "zip-symlink": lambda p: _zip_symlink(p / "a.zip"),
    "zip-backslash": lambda p: _zip_raw_name(p / "a.zip", "..\\..\\evil"),
    "zip-drive-letter": lambda p: _zip_raw_name(p / "a.zip", "C:\\evil"),
    "7z-dotdot": lambda p: _7z(p / "a.7z", [(n, d) for n, d in SDK_OK] + [("../evil", b"x")]),
    "7z-symlink": lambda p: _7z(p / "a.7z", list(SDK_OK), symlink=True),
}


def outside_files(root: Path, allowed: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_relative_to(allowed) and p.name.endswith("evil")]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused(case: str, tmp_path: Path) -> None:
    made = tmp_path / "made"
    made.mkdir()
    archive = HOSTILE[case](made)
    dest = tmp_path / "box" / "x"
    with pytest.raises(UnsafeArchiveError):
        archives.extract(archive, dest)
    assert not dest.exists()  # nothing half-unpacked is left
    assert not (tmp_path / "box").exists() or not any((tmp_path / "box").iterdir())
    assert not outside_files(tmp_path, made)
    assert not Path("/tmp/opend-evil").exists()


@pytest.mark.parametrize("case", ["tar-dotdot", "zip-symlink", "7z-dotdot", "tar-char-device"])
def test_driver_refuses_hostile_sdk_with_exit_9(case: str, tmp_path: Path) -> None:
    made = tmp_path / "made"
    made.mkdir()
    r = run_driver("--os", "linux", "--sdk", str(HOSTILE[case](made)), "--out", str(tmp_path / "out"), env={"OPEND_BUILD_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 9, r.output
    assert "Traceback" not in r.output and r.stderr.startswith("error: archive entry")
    assert not (tmp_path / "out").exists()


def test_too_many_entries(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [*SDK_OK, *((f"FTAPI4CPP_1.0/f{i}", b"x") for i in range(20))])
    with pytest.raises(UnsafeArchiveError, match="entries"):
        archives.extract(archive, tmp_path / "x", limits=archives.limits({"OPEND_BUILD_MAX_ENTRIES": "10"}))


def test_too_many_bytes(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", [*SDK_OK, ("FTAPI4CPP_1.0/big", b"\0" * 100_000)])  # compresses to ~100 bytes
    with pytest.raises(UnsafeArchiveError, match="bytes"):
        archives.extract(archive, tmp_path / "x", limits=archives.limits({"OPEND_BUILD_MAX_BYTES": "1000"}))


def test_entry_larger_than_declared_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zip whose central directory understates a member's size: unpacking stops at the stated size."""
    archive = _zip(tmp_path / "a.zip", [*SDK_OK, ("FTAPI4CPP_1.0/big", b"A" * 5000)])
    data = archive.read_bytes()
    stated = (5000).to_bytes(4, "little")
    archive.write_bytes(data.replace(stated, (50).to_bytes(4, "little")))
    with pytest.raises((UnsafeArchiveError, SdkError, zipfile.BadZipFile)):
        archives.extract(archive, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_good_archive_unpacks(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", SDK_OK)
    dest = archives.extract(archive, tmp_path / "x")
    assert (dest / "FTAPI4CPP_1.0/Include/Proto/Common.proto").read_bytes() == PROTO


def test_a_set_group_id_folder_is_harmless(tmp_path: Path) -> None:
    """grpcio-tools 1.54.3's sdist (the pinned protobuf 3.21.12) has a drwxr-sr-x top folder; the
    extractor makes folders itself, with its own modes."""
    archive = _tar(tmp_path / "a.tar.gz", [_info("FTAPI4CPP_1.0", tarfile.DIRTYPE, mode=0o2755), *SDK_OK])
    dest = archives.extract(archive, tmp_path / "x")
    assert (dest / "FTAPI4CPP_1.0/Include/Proto/Common.proto").read_bytes() == PROTO
    assert not (dest / "FTAPI4CPP_1.0").stat().st_mode & 0o2000


NAME_PARTS = st.sampled_from(["..", ".", "", "a", "Proto", "C:", "\\", "..\\", "/", "x.proto", "名字", " ", "~", "$HOME"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(NAME_PARTS, min_size=1, max_size=6), lead=st.sampled_from(["", "/", "./", "../"]))
def test_generated_names_never_escape(parts: list[str], lead: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("h")
    name = lead + "/".join(parts)
    try:
        archive = _tar(base / "a.tar", [(name, b"x")], "w")
    except (ValueError, UnicodeError):
        return
    dest = base / "box" / "x"
    try:
        archives.extract(archive, dest)
    except UnsafeArchiveError:
        assert not dest.exists()
        return
    for f in base.rglob("*"):
        assert f == base / "a.tar" or f.is_relative_to(base / "box"), f


@pytest.mark.parametrize("name,flags,inside", [("sdk.tar.gz", "czf", "parent"), ("sdk.tgz", "czf", "parent"), ("sdk.tar.xz", "cJf", "parent"),
                                               ("sdk.tar", "cf", "parent"), ("sdk.tar.gz", "czf", "contents")])
def test_tar_of_a_folder_with_its_dot_entry_is_accepted(name: str, flags: str, inside: str, small_sdk: Path, tmp_path: Path) -> None:
    """`tar czf sdk.tar.gz -C dir .` stores "./" and every path under "./": accepted (the SDK's
    protobuf tarball inside it is read by its path too), in each tar format the driver takes; a
    file entry named "." stays refused."""
    import subprocess

    folder = small_sdk.parent if inside == "parent" else small_sdk
    archive = tmp_path / name
    subprocess.run(["tar", flags, str(archive), "-C", str(folder), "."], check=True)
    names = [e.name for e in archives.list_entries(archive)]
    assert names[0] in (".", "./") and all(n.startswith("./") for n in names[1:]), names[:3]
    r = run_driver("--os", "linux", "--sdk", str(archive), "--dry-run", env={"OPEND_BUILD_CACHE": str(tmp_path / "cache")})
    # (an archive of the SDK's contents has no folder, nor a file name, to tell its version by)
    assert r.returncode == 0 and ("plan: FTAPI (futu 9.4.5418)" if inside == "parent" else "plan: FTAPI (futu ") in r.stdout, r.output
    dest = archives.extract(archive, tmp_path / "x")
    top = dest / small_sdk.name if inside == "parent" else dest
    assert (top / "Include/Proto/Common.proto").is_file()
    with pytest.raises(UnsafeArchiveError, match="empty name"):
        archives.check_entries([archives.Entry(".", 1, "file", 0o644, 0)], 10, 10)
