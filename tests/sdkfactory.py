"""Assembles test SDKs in the FTAPI4CPP / MMAPI4CPP shape from the real open inputs.

Protocol files come from the pinned futu-api / moomoo-api packages, protobuf's source from the
pinned grpcio-tools copy laid out as the official protobuf-all-3.5.1.tar.gz. Src/<Lib> and the
public headers are small stand-ins written for these tests (data/standin). The vendor's stale
generated files are imitated by headers that #error when included: a build that picks them up
instead of its own fails.
"""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

from opend_build.sdk import BRANDS as LIBS

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parents[1]
STALE = '#error "stale vendor-generated header: the build must use its own"\n'
BOM = b"\xef\xbb\xbf"


def standin(name: str, lib: str) -> str:
    return (DATA / "standin" / name).read_text(encoding="utf-8").replace("@LIB@", lib)


def protobuf_release_tarball(protobuf_src: Path, dest: Path) -> Path:
    """protobuf-all-3.5.1.tar.gz in the release's layout (protobuf-3.5.1/src/google/...), byte-stable."""
    if dest.exists():
        return dest
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_500_000_000, 0o644
            tf.addfile(info, io.BytesIO(data))

        # The release's own cmake/ (which CMake 4 refuses) and autotools files: present, never used.
        add_bytes("protobuf-3.5.1/cmake/CMakeLists.txt", b"cmake_minimum_required(VERSION 3.1.3)\nproject(protobuf C CXX)\n")
        add_bytes("protobuf-3.5.1/autogen.sh", b"#!/bin/sh\nexit 1\n")
        for f in sorted(protobuf_src.rglob("*")):
            if f.is_file():
                add_bytes(f"protobuf-3.5.1/src/{f.relative_to(protobuf_src).as_posix()}", f.read_bytes())
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return dest


def channel_library(lib: str, dest: Path) -> Path:
    """A stand-in for the vendor's closed lib<Lib>Channel.so: a real shared library with a C API."""
    src = dest.with_suffix(".c")
    src.write_text(f"int {lib}Channel_Version(void) {{ return 1; }}\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(dest), str(src)], check=True)
    src.unlink()
    return dest


# The five protocol files in which moomoo's set differs from futu's.
MOOMOO_DIFFERS = ["Qot_GetIpoList.proto", "Qot_OptionScreen.proto", "Qot_StockScreen.proto", "Qot_WarrantScreen.proto", "Verification.proto"]


def make_sdk(
    dest: Path,
    brand: str,
    protos: Path,
    protobuf_tarball: Path | None,
    *,
    version: str = "10.11.7108",
    with_src: bool = True,
    only: list[str] | None = None,
    conn: bool = False,
) -> Path:
    """An SDK folder <dest>/<Lib>4CPP_<version> and its path. With `conn`, its Src/<Lib> also holds
    a connection wrapper over the channel's C API (as the vendor's <Lib>_Conn), and Include/ the
    channel's declarations (opend-build's own, ABI-identical to the vendor's)."""
    lib = LIBS[brand]
    root = dest / f"{lib}4CPP_{version}"
    inc = root / "Include"
    (inc / "Proto").mkdir(parents=True)
    for p in sorted(protos.glob("*.proto")):
        if only is None or p.name in only:
            shutil.copy2(p, inc / "Proto" / p.name)
    (inc / "Proto" / "Common.pb.h").write_text(STALE)
    (inc / "google" / "protobuf").mkdir(parents=True)
    (inc / "google" / "protobuf" / "message.h").write_text(STALE)
    # the vendor's protobuf 3.5.1 headers, which doctor reads the version from
    (inc / "google" / "protobuf" / "stubs").mkdir()
    (inc / "google" / "protobuf" / "stubs" / "common.h").write_text(STALE + "#define GOOGLE_PROTOBUF_VERSION 3005001\n")
    # The vendor's headers start with a UTF-8 byte order mark and reach the generated classes
    # through aggregator headers: FTAPI.h -> FTAPI_Define.h -> Include_Proto.h -> Proto/*.pb.h.
    stems = sorted(p.stem for p in (inc / "Proto").glob("*.proto"))
    headers = {
        f"{lib}.h": standin("API.h", lib),
        f"{lib}_Define.h": standin("API_Define.h", lib),
        "Include_Proto.h": "#pragma once\n" + "".join(f'#include "Proto/{stem}.pb.h"\n' for stem in stems),
        "Include_3rd_protobuf.h": '#pragma once\n#include "google/protobuf/message.h"\n#include "google/protobuf/util/json_util.h"\n',
    }
    for name, text in headers.items():
        (inc / name).write_bytes(BOM + text.encode("utf-8"))
    if with_src:
        src = root / "Src" / lib
        src.mkdir(parents=True)
        for name in ("Packet.cpp", "Qot.cpp", *(("Conn.cpp",) if conn else ())):
            (src / name).write_text(standin(name, lib))
        if conn:
            (inc / f"{lib}_Conn.h").write_bytes(BOM + standin("Conn.h", lib).encode("utf-8"))
            for header in ("FTAPIChannel.h", "FTAPIChannel_Define.h"):
                (inc / header).write_bytes(BOM + (ROOT / "channel" / "include" / header).read_bytes())
    if protobuf_tarball is not None:
        (root / "Src").mkdir(exist_ok=True)
        shutil.copy2(protobuf_tarball, root / "Src" / "protobuf-all-3.5.1.tar.gz")
    (root / "Bin" / "Ubuntu16.04").mkdir(parents=True)
    channel_library(lib, root / "Bin" / "Ubuntu16.04" / f"lib{lib}Channel.so")
    (root / "Sample").mkdir()
    (root / "Sample" / "README.txt").write_text("samples live here in the real SDK\n")
    return root


def make_sdk_10(dest: Path, brand: str, protos: Path, *, version: str = "10.2.6208", only: list[str] | None = None) -> Path:
    """The 10.x generation's shape as far as it is known (no copy is public): a top-level
    CMakeLists.txt of the vendor's (never used by opend-build), no protobuf source and no channel
    binary, and the channel as source in Src/<Lib>Channel/, which includes OpenSSL."""
    lib = LIBS[brand]
    root = make_sdk(dest, brand, protos, None, version=version, only=only)
    shutil.rmtree(root / "Bin")
    (root / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.10)\nproject(FTAPI)\noption(API_GEN_PROTO \"\" ON)\n"
                                         "option(API_BUILD_EXAMPLE \"\" OFF)\nset(API_THIRD_LIB_DIR \"\" CACHE PATH \"\")\n")
    (root / "Include" / f"{lib}Channel.h").write_bytes(BOM + standin("Channel.h", lib).encode("utf-8"))
    (root / "Src" / f"{lib}Channel").mkdir()
    (root / "Src" / f"{lib}Channel" / f"{lib}Channel.cpp").write_text(standin("Channel.cpp", lib))
    return root


def zip_tree(root: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(root.rglob("*")):
            zf.write(f, f.relative_to(root.parent).as_posix())
    return dest


def tar_tree(root: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        tf.add(root, arcname=root.name)
    return dest


def sevenzip_tree(root: Path, dest: Path) -> Path:
    import py7zr

    with py7zr.SevenZipFile(dest, "w") as z:
        z.writeall(root, arcname=root.name)
    return dest
