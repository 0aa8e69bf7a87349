"""Bad input: one clear line, its own exit code, no traceback, nothing lost."""

from __future__ import annotations

import http.server
import os
import shutil
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import sdkfactory
from conftest import Built, run_driver

from opend_build import errors, options


def assert_clean_failure(r, code: int, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert r.returncode == code, r.output
    assert "Traceback" not in r.output
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("error: ")
    for n in needles:
        assert n in r.stderr, r.stderr


def test_exit_codes_are_distinct() -> None:
    codes = [c.exit_code for c in errors.EXIT_CODES]
    assert len(codes) == len(set(codes))


def test_missing_sdk(tmp_path: Path) -> None:
    assert_clean_failure(run_driver("--os", "linux", "--sdk", str(tmp_path / "nope")), 3, "does not exist")


def test_archive_without_sdk(tmp_path: Path) -> None:
    z = tmp_path / "notes.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("README.txt", "not an SDK")
    assert_clean_failure(run_driver("--os", "linux", "--sdk", str(z)), 3, "no OpenD C++ SDK found")


def test_corrupt_archive(tmp_path: Path) -> None:
    z = tmp_path / "FTAPI4CPP_1.0.zip"
    z.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert_clean_failure(run_driver("--os", "linux", "--sdk", str(z)), 3, "not a readable archive")


def test_sdk_without_include_proto(tmp_path: Path) -> None:
    root = tmp_path / "FTAPI4CPP_1.0"
    (root / "Include").mkdir(parents=True)
    (root / "Include" / "FTAPI.h").write_text("")
    assert_clean_failure(run_driver("--os", "linux", "--sdk", str(root)), 3, "Include/Proto")


def test_unknown_brand(tmp_path: Path, open_inputs) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "SomeSDK"
    (root / "Include" / "Proto").mkdir(parents=True)
    shutil.copy(open_inputs["futu"] / "Common.proto", root / "Include" / "Proto")
    assert_clean_failure(run_driver("--os", "linux", "--sdk", str(root)), 3, "--brand")


def test_protobuf_archive_without_source(tmp_path: Path, open_inputs) -> None:  # type: ignore[no-untyped-def]
    bogus = tmp_path / "protobuf-all-3.5.1.tar.gz"
    import tarfile

    with tarfile.open(bogus, "w:gz") as tf:
        (tmp_path / "x.txt").write_text("x")
        tf.add(tmp_path / "x.txt", "protobuf-3.5.1/README.md")
    sdk = sdkfactory.make_sdk(tmp_path / "s", "futu", open_inputs["futu"], bogus, only=["Common.proto"])
    assert_clean_failure(run_driver("--os", "linux", "--sdk", str(sdk), "--out", str(tmp_path / "o")), 4, "protobuf")


def test_foreign_os_needs_dry_run() -> None:
    r = run_driver("--os", "windows")
    assert_clean_failure(r, 12, "--dry-run")
    if options.host_os() == "linux":  # the hint's command line is one that works here
        assert "(Windows from Linux: --os windows --compiler mingw)" in r.stderr


@pytest.mark.parametrize("argv, code, needle", [
    (["--lock-timeout", "-5"], 2, "--lock-timeout must be 0 or more seconds, not -5.0"),
    (["presets", "--sdk", "/nonexistent"], 3, "--sdk /nonexistent does not exist"),
    (["--channel", "none"], 2, "invalid choice"),
])
def test_small_refusals(argv: list[str], code: int, needle: str) -> None:
    assert_clean_failure(run_driver(*argv, "--dry-run") if argv[0] != "presets" else run_driver(*argv), code, needle)


def test_channel_auto_is_the_default_by_its_name(tmp_path: Path) -> None:
    """The plan prints `channel: auto`; --channel auto is taken and plans exactly the default."""
    plain = run_driver("--os", "linux", "--dry-run", "-v", "--out", str(tmp_path / "o"))
    auto = run_driver("--os", "linux", "--dry-run", "-v", "--channel", "auto", "--out", str(tmp_path / "o"))
    assert auto.returncode == 0 and "  channel: auto: " in auto.stdout and auto.stdout == plain.stdout, auto.output


def test_version_and_the_name_help_gives_the_command() -> None:
    from opend_build import __version__

    r = run_driver("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"opend-build {__version__}", r.output
    helped = run_driver("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python build.py "), helped.stdout[:80]
    bad = run_driver("--bogus")
    assert bad.returncode == 2 and "run 'python build.py --help' for the options" in bad.stderr
    assert [options.prog_name(a) for a in ("build.py", "/x/build.py", "/venv/bin/opend-build", "/site/opend_build/__main__.py")] == [
        "python build.py", "python build.py", "opend-build", "python -m opend_build"]
    assert options.parser(options.prog_name("/venv/bin/opend-build")).format_usage().startswith("usage: opend-build ")


@pytest.mark.parametrize("argv", [["--dry-run"], ["doctor"]])
def test_a_closed_stdout_is_a_quiet_exit(argv: list[str]) -> None:
    """`... | head`: the reader goes away first (closed here before the driver writes): exit 0, no error."""
    import subprocess

    from conftest import ROOT

    proc = subprocess.Popen([sys.executable, str(ROOT / "build.py"), "--os", "linux", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0 and err == "", err


def test_bad_option() -> None:
    assert_clean_failure(run_driver("--os", "linux", "--jobs", "0"), 2, "--jobs")


def test_no_cxx_compiler(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")
    r = run_driver("--os", "linux", env={"PATH": str(bin_dir), "CXX": ""})
    assert_clean_failure(r, 6, "no C++ compiler", "apt-get install g++")


def test_out_folder_of_someone_else_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("precious")
    r = run_driver("--os", "linux", "--out", str(theirs))
    assert_clean_failure(r, 2, "not made by opend-build")
    assert (theirs / "thesis.tex").read_text() == "precious"


def test_proto_syntax_error_names_file_and_line(tmp_path: Path, open_inputs, protobuf_tarball: Path, small_built: Built) -> None:  # type: ignore[no-untyped-def]
    sdk = sdkfactory.make_sdk(tmp_path, "futu", open_inputs["futu"], protobuf_tarball, version="0.0.2", with_src=False,
                              only=["Common.proto"])
    (sdk / "Include/Proto/Broken.proto").write_text('syntax = "proto2";\npackage Broken;\n\nmessage C2S {\n  required int32 x = 1\n}\n')
    out = tmp_path / "out"
    r = run_driver("--os", "linux", "--sdk", str(sdk), "--out", str(out))
    assert_clean_failure(r, 5, f"{sdk / 'Include/Proto/Broken.proto'}:6:")
    assert not out.exists()


def test_missing_import(tmp_path: Path, open_inputs, protobuf_tarball: Path, small_built: Built) -> None:  # type: ignore[no-untyped-def]
    sdk = sdkfactory.make_sdk(tmp_path, "futu", open_inputs["futu"], protobuf_tarball, version="0.0.3", with_src=False,
                              only=["Common.proto"])
    (sdk / "Include/Proto/Lonely.proto").write_text('syntax = "proto2";\npackage Lonely;\nimport "Missing.proto";\nmessage A { optional int32 x = 1; }\n')
    assert_clean_failure(run_driver("--os", "linux", "--sdk", str(sdk), "--out", str(tmp_path / "out")), 5, "Missing.proto")


class _Index(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a: object) -> None:
        pass


def _serve(root: Path):  # type: ignore[no-untyped-def]
    handler = lambda *a, **kw: _Index(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _index_page(root: Path, project: str, filename: str, data: bytes) -> None:
    (root / project).mkdir(parents=True, exist_ok=True)
    (root / project / filename).write_bytes(data)
    (root / project / "index.html").write_text(f'<a href="{filename}#sha256=unchecked">{filename}</a>')


@pytest.fixture()
def bad_index(tmp_path: Path, pins):  # type: ignore[no-untyped-def]
    """A package index on loopback serving a file whose bytes do not match the pin."""
    root = tmp_path / "index"
    _index_page(root, pins["futu"].project, pins["futu"].filename, b"tampered")
    server = _serve(root)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture()
def good_index(tmp_path: Path, pins, open_inputs):  # type: ignore[no-untyped-def]
    """A package index on loopback serving the real pinned files (taken from the session cache)."""
    from opend_build import sources

    root = tmp_path / "good-index"
    for name in ("futu", "protobuf"):
        pin = pins[name]
        _index_page(root, pin.project, pin.filename, sources.download_path(pin, sources.cache_root(os.environ)).read_bytes())
    server = _serve(root)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_tampered_cache_is_fetched_again(tmp_path: Path, pins, good_index: str, default_futu: Built) -> None:  # type: ignore[no-untyped-def]
    """A truncated file in the download cache is found, removed and downloaded again."""
    from opend_build import sources

    cache = Path(os.environ.get("OPEND_BUILD_CACHE") or Path.home() / ".cache" / "opend-build")
    cached = cache / "downloads" / pins["futu"].filename
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 2])
    r = run_driver("--os", "linux", "--out", str(default_futu.out), env={"OPEND_BUILD_INDEX_URL": good_index})
    assert r.returncode == 0, r.output
    assert sources.sha256_file(cached) == pins["futu"].sha256


def test_valid_cache_builds_offline(default_futu: Built) -> None:
    r = run_driver("--os", "linux", "--out", str(default_futu.out), env={"OPEND_BUILD_INDEX_URL": "http://127.0.0.1:9/simple"})
    assert r.returncode == 0, r.output


def test_sha256_mismatch_is_refused(tmp_path: Path, bad_index: str) -> None:
    env = {"OPEND_BUILD_CACHE": str(tmp_path / "cache"), "OPEND_BUILD_INDEX_URL": bad_index}
    r = run_driver("--os", "linux", "--out", str(tmp_path / "out"), env=env)
    assert_clean_failure(r, 7, "sha256", "expected")
    assert not list((tmp_path / "cache" / "downloads").glob("*.tar.gz"))


def test_download_failure(tmp_path: Path) -> None:
    env = {"OPEND_BUILD_CACHE": str(tmp_path / "cache"), "OPEND_BUILD_INDEX_URL": "http://127.0.0.1:9/simple"}
    assert_clean_failure(run_driver("--os", "linux", "--out", str(tmp_path / "out"), env=env), 7, "cannot download")


def test_a_protoc_warning_is_not_the_error(tmp_path: Path) -> None:
    """protoc warns ("Import X but not used") while the build goes on; a compile error after it is
    what failed (exit 8), not the .proto file (exit 5)."""
    from opend_build.diagnose import diagnose
    from opend_build.errors import BuildError

    lines = ["[3/26] protoc Qot_Sub.proto", "/sdk/Include/Proto/GetGlobalState.proto: warning: Import Qot_Common.proto but not used.",
             "FAILED: Conn.cpp.o", "/sdk/Src/FTAPI/Conn.cpp:32:6: error: 'struct Impl' is private within this context"]
    err = diagnose(lines, "build", 1, tmp_path / "log", None)
    assert isinstance(err, BuildError) and err.message.startswith("/sdk/Src/FTAPI/Conn.cpp:32:6: error: ")


@pytest.mark.parametrize("args,needle", [
    (["--security", "XX.1"], "--security XX.1: not MARKET.CODE"),
    (["--security", "HK"], "--security HK: not MARKET.CODE"),
    (["--security", "HK.00700", "--no-subscribe"], "contradict"),
    (["--no-subscribe"], "are for 'verify --opend HOST:PORT'"),
])
def test_verify_opend_subscription_options_are_checked_first(args: list[str], needle: str, tmp_path: Path) -> None:
    """Refused before anything is built or connected."""
    r = run_driver("verify", "--out", str(tmp_path), *(["--opend", "127.0.0.1:9"] if args != ["--no-subscribe"] else []), *args)
    assert_clean_failure(r, 2, needle)
