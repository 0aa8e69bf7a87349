"""Byte-for-byte reproducible outputs, and `verify --reproduce`, which rebuilds an output from the
inputs its manifest records in a fresh cache and output folder and compares every file.

Two session builds are rebuilt so, each once: the small SDK in Debug and in Release (the suite's
one optimised build). Each rebuild runs in other folders (a fresh cache and output folder), under
another HOME, another umask and another clock than the session's build: `faketime` (Debian's
libfaketime) moves its clock 400 days on (Debug) or 3 years on (Release), so anything that writes
the time or the date into an output (__DATE__ in a source, a tool stamping what it writes) shows
as a difference, not only what changes from one minute to the next. In Debug one file was edited
after the build, and the rebuild must name it and nothing else; in Release every file must match,
and the Release rebuild runs from a copy of the checkout at another path (--from-clone).

The default inputs are built again, in Debug, from a copy of the checkout at another path with
another venv (its own interpreter, CMake and Ninja), HOME (so another cache: nothing is shared),
umask and output folder, and every file must equal the session's default build's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Built, make_venv, run_driver, suite_args

from opend_build import sources, tools, verify


def rebuild(out: Path, home: Path, umask: str, clock: str, env: dict[str, str] | None = None, *more: str) -> subprocess.CompletedProcess[str]:
    """`verify --reproduce --out OUT [MORE]` under HOME, umask and a clock `clock` ahead (faketime's
    offset: "+400d"). Files keep the kernel's times (NO_FAKE_STAT: with stat() faked too, Ninja sees
    CMake's files forever newer than its manifest and regenerates until it gives up) and monotonic
    clocks stay real (timeouts and lock waits keep their meaning)."""
    faketime = shutil.which("faketime")
    assert faketime, "faketime is needed (apt-get install faketime): tests/run.py installs it"
    home.mkdir(parents=True)
    full = {**os.environ, **(env or {}), "HOME": str(home), "DONT_FAKE_MONOTONIC": "1", "NO_FAKE_STAT": "1"}
    full.pop("OPEND_BUILD_CACHE", None)  # the rebuild makes its own fresh cache anyway
    full.pop("SOURCE_DATE_EPOCH", None)  # the manifest says which one the build had
    cmd = [faketime, "-f", clock, sys.executable, str(ROOT / "build.py"), *suite_args(("verify", "--reproduce", "--out", str(out), *more))]
    return subprocess.run(["sh", "-c", f'umask {umask} && exec "$@"', "sh", *cmd], capture_output=True, text=True, env=full, timeout=1800)


def test_verify_reproduce_rebuilds_byte_for_byte_and_names_an_edited_file(small_built: Built, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "FTAPI4CPP"
    shutil.copytree(small_built.out, out, symlinks=True)
    edited = out / "Include" / "Proto" / "Qot_Sub.pb.h"
    edited.write_text(edited.read_text() + "// edited after the build\n")
    r = rebuild(out, tmp_path / "another home", "077", "+400d")
    assert r.returncode == 13, r.stdout + r.stderr
    named = [line.strip() for line in r.stdout.splitlines() if line.startswith("  ")]
    assert named == ["Include/Proto/Qot_Sub.pb.h: differs from the rebuild (changed since it was published)"], r.stdout + r.stderr
    assert "1 of " in r.stderr and "files do not reproduce" in r.stderr


def test_release_rebuilds_byte_for_byte_from_another_clone(small_release: Built, tmp_path: Path) -> None:
    """The Release output, rebuilt with the same CMake (Debian's 3.2x) under umask 027 and a clock
    three years on, from a copy of the checkout at another path (--from-clone): every file,
    libraries, protoc, headers and the CMake package, is identical."""
    recorded = small_release.out / "build-manifest.json"
    before = recorded.read_bytes()
    r = rebuild(small_release.out, tmp_path / "third home", "027", "+1096d", {"OPEND_BUILD_CMAKE": str(shutil.which("cmake", path="/usr/bin"))}, "--from-clone")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "in a fresh cache from a copy of the checkout at " in r.stdout, r.stdout
    assert "files rebuilt byte for byte from the recorded inputs" in r.stdout, r.stdout
    n = int(r.stdout.split("verify: ok: all ")[1].split()[0])
    assert n >= 20 and recorded.read_bytes() == before  # the rebuild went elsewhere: the output is untouched


def test_differences_name_each_kind_of_file(tmp_path: Path) -> None:
    from opend_build.sources import sha256_file
    from opend_build.verify import differences_from

    (tmp_path / "same").write_text("a")
    (tmp_path / "edited").write_text("b")
    (tmp_path / "rebuilt-differently").write_text("c")
    same, edited, other = (sha256_file(tmp_path / n) for n in ("same", "edited", "rebuilt-differently"))
    recorded = {"same": same, "edited": "0" * 64, "rebuilt-differently": other, "gone": "1" * 64, "not-rebuilt": same}
    rebuilt = {"same": same, "edited": "0" * 64, "rebuilt-differently": "2" * 64, "gone": "1" * 64}
    assert differences_from(recorded, tmp_path, rebuilt) == [
        "edited: differs from the rebuild (changed since it was published)", "gone: missing from " + str(tmp_path),
        "not-rebuilt: not made by the rebuild", "rebuilt-differently: differs from the rebuild"]


def test_verify_reproduce_says_why_a_package_managers_tree_cannot_be_rebuilt(tmp_path: Path) -> None:
    """A pip wheel's or Conan package's tree records no argv (its configure was not the driver's):
    verify --reproduce says so and what to do, exit 13, instead of blaming an old opend-build."""
    (tmp_path / "build-manifest.json").write_text(json.dumps({"lib": "FTAPI", "outputs": [],
                                                               "reproducibility": {"argv": None, "path_maps": False, "toolchain_key": None}}))
    r = run_driver("verify", "--reproduce", "--out", str(tmp_path))
    assert r.returncode == 13, r.output
    assert "configure without the driver" in r.stderr and "python build.py" in r.stderr

def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def venv_with_own_tools(path: Path) -> Path:
    """A venv at `path` that sees this environment's packages but has CMake and Ninja of its own
    (this environment's PyPI packages, hard-linked or copied into it), so the driver runs with an
    interpreter, a cmake and a ninja at other paths than the session's. Its python."""
    import cmake

    bin_dir = make_venv(path, system_site=True)
    site_of = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.run([str(bin_dir / "python"), "-c", site_of], capture_output=True, text=True, check=True).stdout.strip())
    here = Path(cmake.__file__).resolve().parents[1]
    for folder in [here / "cmake", *here.glob("cmake-*.dist-info")]:
        shutil.copytree(folder, site / folder.name, copy_function=_link_or_copy)
    _link_or_copy(tools.ninja(os.environ), str(bin_dir / "ninja"))
    where = "import os, cmake, ninja; print(cmake.CMAKE_BIN_DIR); print(ninja.BIN_DIR)"
    found = subprocess.run([str(bin_dir / "python"), "-c", where], capture_output=True, text=True, check=True).stdout.splitlines()
    assert all(f.startswith(str(path)) for f in found), found  # the venv's own tools, not the session's
    return bin_dir / "python"


def digests(root: Path) -> dict[str, str]:
    """Every file under `root` (symbolic links by their target) -> its sha256."""
    return {p.relative_to(root).as_posix(): (f"link to {os.readlink(p)}" if p.is_symlink() else sources.sha256_file(p))
            for p in root.rglob("*") if p.is_symlink() or p.is_file()}


def test_two_clones_at_other_paths_build_byte_identical_outputs(default_futu: Built, tmp_path: Path) -> None:
    clone = verify.copy_checkout(ROOT, tmp_path / "另一个 clone" / "opend-build")  # the working tree, as verify --from-clone copies it
    python = venv_with_own_tools(tmp_path / "other venv")
    home = tmp_path / "other home"
    downloads = sources.cache_root(os.environ) / "downloads"  # verified against their pins on use: saves the network
    shutil.copytree(downloads, home / ".cache" / "opend-build" / "downloads", ignore=shutil.ignore_patterns("*.part-*"))
    out = tmp_path / "elsewhere" / "FTAPI4CPP"
    env = {**os.environ, "HOME": str(home)}
    for name in ("OPEND_BUILD_CACHE", "XDG_CACHE_HOME", "OPEND_BUILD_CMAKE"):
        env.pop(name, None)
    cmd = [str(python), str(clone / "build.py"), *suite_args(("--os", "linux", "--out", str(out)))]
    r = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", *cmd], cwd=clone, env=env, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert any((home / ".cache" / "opend-build" / "build").iterdir())  # built in its own cache, under its HOME
    ours, theirs = digests(default_futu.out), digests(out)
    for needed in ("build-manifest.json", "sbom.spdx.json", "sbom.cdx.json"):
        assert needed in ours, sorted(ours)[:20]
    for folder in ("Bin/", "Include/", "lib/"):
        assert any(p.startswith(folder) for p in ours), folder
    assert sorted(set(ours) ^ set(theirs)) == []
    differ = sorted(p for p in ours if ours[p] != theirs[p])
    assert differ == [], f"{len(differ)} of {len(ours)} files differ: {differ[:20]}"


def _remapped(path: Path, maps: list[tuple[str, str]]) -> str:
    """What GCC writes for `path` given -ffile-prefix-map=FROM=TO in this order: the last map that matches."""
    for folder, name in reversed(maps):
        if str(path).startswith(folder):
            return name + str(path)[len(folder):]
    return str(path)


def _maps(plan, phase: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    configure = next(s for s in plan.steps if s.phase == phase and s.kind == "configure")
    (entry,) = [a for a in configure.argv if a.startswith("-DOPEND_PATH_MAPS=")]
    return [tuple(m.split("=", 1)) for m in entry.split("=", 1)[1].split(";")]  # type: ignore[misc]


def test_every_folder_that_differs_between_checkouts_gets_a_fixed_name() -> None:
    """Two checkouts with their caches and tools elsewhere (one cache inside its checkout, so the
    order of the maps matters): whatever a compile reads from the checkout, the cache, protobuf's
    source or either build folder (named by a hash of those paths) is named the same in both, and
    the manifest's flags name no such path."""
    from opend_build import options
    from opend_build.inputs import resolve
    from opend_build.plan import Tools, make_plan, mapped
    from opend_build.platforms import Toolchain

    gcc = Toolchain(os="linux", compiler="gcc", cxx="/usr/bin/g++", version="12.2.0", bin_dir="Bin/Linux")

    def plan_for(project: str, cache: str, tools_at: str, *argv: str):  # type: ignore[no-untyped-def]
        opts = options.parse(["--os", "linux", *argv])
        return make_plan(opts, gcc, resolve(opts, os.environ), Path(cache), Tools(f"{tools_at}/cmake", f"{tools_at}/ninja"), Path("/w"), project=Path(project))

    a = plan_for("/home/a/src/opend-build", "/home/a/.cache/opend-build", "/home/a/venv/bin")
    b = plan_for("/srv/b 2/opend-build", "/srv/b 2/opend-build/.cache", "/opt/v")
    assert a.sdk_build.name != b.sdk_build.name and a.protobuf_build.name != b.protobuf_build.name  # keyed by those paths
    seen = []
    for p, project in ((a, Path("/home/a/src/opend-build")), (b, Path("/srv/b 2/opend-build"))):
        sdk, pb = _maps(p, "sdk"), _maps(p, "protobuf")
        assert sdk == [tuple(m) for m in p.path_maps]  # what the manifest's flags are mapped with
        src = p.inputs.protobuf.src / "google" / "protobuf" / "message.cc"
        names = [_remapped(p.sdk_build / "generated" / "Qot_Sub.pb.cc", sdk), _remapped(p.protobuf_build / "prefix" / "include" / "x.h", sdk),
                 _remapped(project / "channel" / "src" / "channel.cpp", sdk), _remapped(p.sdk_build.parent / "other", sdk),
                 _remapped(src, sdk), _remapped(p.protobuf_build / "tree" / "x.cc", pb), _remapped(src, pb)]
        assert all(n.startswith("/opend-build/") for n in names), names
        seen.append(names)
        flags = [mapped(f"-ffile-prefix-map={folder}={name}", p.path_maps) for folder, name in p.path_maps]
        assert not any(folder in f for f in flags for folder, _ in p.path_maps), flags
    assert seen[0] == seen[1], seen
    assert seen[0][:3] == ["/opend-build/build/sdk/generated/Qot_Sub.pb.cc", "/opend-build/build/protobuf/prefix/include/x.h",
                           "/opend-build/src/channel/src/channel.cpp"]
    # protobuf's build folder is shared by every SDK build of its source and toolchain: its maps name no SDK's folder
    moomoo = plan_for("/home/a/src/opend-build", "/home/a/.cache/opend-build", "/home/a/venv/bin", "--brand", "moomoo")
    assert _maps(moomoo, "protobuf") == _maps(a, "protobuf") and moomoo.sdk_build != a.sdk_build


def test_from_clone_is_for_verify_reproduce() -> None:
    from opend_build import options
    from opend_build.errors import UsageError

    assert options.parse(["verify", "--reproduce", "--from-clone"]).from_clone
    for argv in (["verify", "--from-clone"], ["--os", "linux", "--from-clone"]):
        with pytest.raises(UsageError, match="--from-clone is for verify --reproduce"):
            options.parse(argv)
    assert verify.driver(Path("/c/opend-build")) == [sys.executable, "/c/opend-build/build.py"]
    assert verify.driver(None) == [sys.executable, "-m", "opend_build"]


def test_a_clone_is_the_working_tree_as_git_lists_it(tmp_path: Path) -> None:
    """verify --from-clone (and this suite) copy what git lists: committed files as they are now,
    new files git does not ignore; not what it ignores, not a file deleted since, not .git."""
    from opend_build.errors import VerifyError

    repo = tmp_path / "repo"
    (repo / "cmake").mkdir(parents=True)
    for name, text in ((".gitignore", "out/\n"), ("kept.txt", "committed\n"), ("gone.txt", "x\n"), ("cmake/a.cmake", "a\n")):
        (repo / name).write_text(text)
    for args in (("init", "-q"), ("add", "."), ("commit", "-qm", "c")):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True, capture_output=True)
    (repo / "kept.txt").write_text("edited, not committed\n")
    (repo / "gone.txt").unlink()
    (repo / "new.txt").write_text("new\n")
    (repo / "out").mkdir()
    (repo / "out" / "libbuilt.a").write_text("built\n")
    dest = verify.copy_checkout(repo, tmp_path / "a clone" / "elsewhere")
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [".gitignore", "cmake/a.cmake", "kept.txt", "new.txt"]
    assert (dest / "kept.txt").read_text() == "edited, not committed\n"
    (tmp_path / "plain").mkdir()
    with pytest.raises(VerifyError, match="git cannot list the files"):
        verify.copy_checkout(tmp_path / "plain", tmp_path / "nowhere")
