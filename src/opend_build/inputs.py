"""Where every input of a build comes from, decided before anything runs.

`resolve` reads (lists the SDK, hashes archives) but writes nothing; the fetch, unpack and
remember work it calls for is returned as plan steps, so a --dry-run shows it and the runner does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from . import archives, host, protobuf, protobuf_src, sources
from .errors import ProtobufSourceError, SdkError
from .protobuf import Protobuf
from .sdk import BRANDS, DEFAULT_BRAND, SdkTree, channel_for, open_sdk
from .settings import Options
from .steps import Action, Present, Step, action_step


@dataclass(frozen=True)
class Inputs:
    brand: str
    lib: str
    version: str
    origin: str  # "pypi" or the SDK path as given
    identity: str  # what a build folder is keyed by: which SDK, not its exact bytes
    proto_dir: Path
    include_dir: Path | None
    source_dir: Path | None
    protobuf: Protobuf
    channel_libs: tuple[Path, ...]
    prepare: tuple[Step, ...]  # fetch and unpack: the plan's first steps
    channel_source_dir: Path | None = None  # Src/<Lib>Channel/, compiled into lib<Lib> (10.x)
    channel: str = "auto"  # "vendor" (the SDK's binary or source), "open" (ours, channel/), "auto" (ours when OpenSSL is found), "none"
    channel_why: str = ""  # why, in words, for the plan
    vendor_channel_skipped: bool = False  # --channel open where the SDK brings its own: another configuration (plan.default_out)
    notes: tuple[str, ...] = ()
    record: dict[str, object] = field(default_factory=dict)  # for the manifest


def _default(options: Options, env: Mapping[str, str], cache: Path, digests: sources.Digests, probe: host.Probe) -> Inputs:
    pins = sources.load_pins()
    brand = options.brand or DEFAULT_BRAND
    proto_pin = pins[brand]
    pb = protobuf.choose(options, None, pins, env, cache, digests, probe)
    channel, why = choose_channel(options.channel, False, "no SDK", options.os)
    return Inputs(
        brand=brand,
        lib=BRANDS[brand],
        version=proto_pin.version,
        origin="pypi",
        identity=f"pypi:{proto_pin.project}=={proto_pin.version}:{proto_pin.sha256}",
        proto_dir=sources.extracted_path(proto_pin, cache),
        include_dir=None,
        source_dir=None,
        protobuf=pb,
        channel_libs=(),
        prepare=(sources.fetch_step(brand, proto_pin, cache), sources.unpack_pin_step(brand, proto_pin, cache, ".proto"), *pb.steps),
        channel=channel,
        channel_why=why,
        record={"origin": "pypi", "packages": [_pin_record(proto_pin), *_protobuf_packages(pb, pins)], "protobuf": _protobuf_record(pb)},
    )


def _pin_record(pin: sources.Pin) -> dict[str, str]:
    return {"project": pin.project, "version": pin.version, "filename": pin.filename, "sha256": pin.sha256, "subdir": pin.subdir}


def _protobuf_packages(pb: Protobuf, pins: dict[str, sources.Pin]) -> list[dict[str, str]]:
    return [_pin_record(pins[pb.pin])] if pb.pin else []


def _protobuf_record(pb: Protobuf) -> dict[str, str]:
    return {"provider": pb.provider, "version": pb.version, "origin": pb.origin, "identity": pb.identity}


def sdk_location(sdk_path: Path, tree: SdkTree, cache: Path, digests: sources.Digests) -> tuple[Path, str, tuple[Step, ...]]:
    """Where the SDK's root will be on disk, its archive's sha256 ("" for a folder), and the step
    that unpacks an archive into the cache (once per content: the folder is named by the sha256)."""
    if sdk_path.is_dir():
        return (sdk_path / tree.root if tree.root else sdk_path), "", ()
    sdk_sha = digests.get(sdk_path, "sha256", lambda: sources.sha256_file(sdk_path))
    unpacked = cache / "sdk" / f"{sdk_sha[:16]}"
    step = action_step("inputs", f"unpack {sdk_path.name}", Action.UNPACK_SDK, Present(str(unpacked)), archive=sdk_path, dest=unpacked)
    return (unpacked / tree.root if tree.root else unpacked), sdk_sha, (step,)


def _archived_protobuf(sdk_path: Path, sdk_sha: str, tree: SdkTree, inner: Path, cache: Path, digests: sources.Digests) -> Protobuf:
    """The protobuf source inside an SDK archive, planned from the archive alone (nothing of it is
    on disk before the SDK's unpack step runs): a tarball is described by its content digest; an
    unpacked src/ folder is read where the SDK's unpack puts it, its version from its headers."""
    def member(rel: str) -> str:
        return str(PurePosixPath(tree.root, rel)) if tree.root else rel

    if archives.is_archive(inner):
        m = member(tree.protobuf or "")
        described = digests.get(sdk_path, f"protobuf:{m}", lambda: archives.digest_member(sdk_path, m, protobuf_src.describe_stream))
        return protobuf.source(inner, cache, digests, (described[0], described[1]))
    headers = {h: member(f"{tree.protobuf}/{h}") for h in tree.protobuf_headers}
    version = digests.get(sdk_path, f"protobuf-version:{tree.protobuf}", lambda: protobuf_src.version_in_archive(sdk_path, headers))
    # Keyed by the SDK archive's content, which fixes the folder's; unpacked with the SDK.
    if not version:
        raise ProtobufSourceError(f"{tree.protobuf} in {sdk_path.name}: cannot read the protobuf version (no GOOGLE_PROTOBUF_VERSION in its headers)",
                                  "pass --protobuf with a version (3.5.1) to build that one instead")
    return Protobuf("build", version, f"{tree.protobuf} in {sdk_path.name}", f"sdk:{sdk_sha}:{tree.protobuf}", src=inner)


def _from_sdk(options: Options, sdk_path: Path, env: Mapping[str, str], cache: Path, digests: sources.Digests, probe: host.Probe) -> Inputs:
    tree: SdkTree = open_sdk(sdk_path, options.brand, archives.limits(env))
    root, sdk_sha, unpack = sdk_location(sdk_path, tree, cache, digests)
    sdk_protobuf = None
    if tree.protobuf is not None and options.protobuf is None:
        inner = root / tree.protobuf
        if sdk_path.is_dir():
            sdk_protobuf = protobuf.source(inner, cache, digests)  # its tarball, or its unpacked src/ folder
        else:
            sdk_protobuf = _archived_protobuf(sdk_path, sdk_sha, tree, inner, cache, digests)
    pins = sources.load_pins()
    pb = protobuf.choose(options, sdk_protobuf, pins, env, cache, digests, probe)
    notes = []
    if tree.protobuf is None and options.protobuf is None:
        notes.append(f"the SDK carries no protobuf source: the pinned default {pb.version} is built (--protobuf chooses another)")
    if tree.cmake_project:
        notes.append("the SDK's own CMakeLists.txt is not used: its sources are built by opend-build's rules")
    has_src = bool(tree.sources)
    channel_src = PurePosixPath(tree.channel_sources[0]).parts[:2] if tree.channel_sources else None
    arch = options.arch
    if options.os == "linux":
        from .platforms.linux import target_arch

        arch = target_arch(options) if (options.arch or options.toolchain_file) else None
    vendor_libs = channel_for(options.os, tree.channel, options.build_type, arch)
    target = f"{options.os} {arch}" if options.os == "linux" and arch not in (None, "x86_64") else options.os
    looked = f"no channel library for {target} under Bin/ and no Src/{tree.lib}Channel/ source in the SDK"
    channel, why = choose_channel(options.channel, bool(vendor_libs or channel_src), looked, options.os)
    skipped = channel == "open" and bool(vendor_libs or channel_src)
    if channel != "vendor":
        vendor_libs, channel_src = (), None
    return Inputs(
        brand=tree.brand,
        lib=tree.lib,
        version=tree.version,
        origin=str(sdk_path),
        identity=f"sdk:{tree.lib}:{tree.version}:{'full' if has_src else 'proto'}{'+channel' if channel_src else ''}",
        proto_dir=root / "Include" / "Proto",
        include_dir=root / "Include",
        source_dir=root / "Src" / tree.lib if has_src else None,
        protobuf=pb,
        channel_libs=tuple(root / c for c in vendor_libs),
        prepare=(*unpack, *pb.steps),
        channel_source_dir=root.joinpath(*channel_src) if channel_src else None,
        channel=channel,
        channel_why=why,
        vendor_channel_skipped=skipped,
        notes=tuple(notes),
        record={"origin": "sdk", "sdk": str(sdk_path), "sdk_sha256": sdk_sha or None, "sdk_root": tree.root, "protobuf": _protobuf_record(pb),
                "packages": _protobuf_packages(pb, pins)},
    )


def choose_channel(asked: str | None, vendor_has_one: bool, looked: str, target_os: str) -> tuple[str, str]:
    """Which channel library talks to OpenD, and why: the SDK's own (its closed binary for this
    target, or the 10.x generation's source) where it brings one, else opend-build's open one
    (Linux and macOS: POSIX sockets and OpenSSL's libcrypto; Windows: Winsock 2 and CNG, the
    system's own, so it is always built there)."""
    if asked == "vendor":
        if not vendor_has_one:
            raise SdkError(f"--channel vendor: {looked}", "drop --channel (the open channel is used), or point --sdk at an SDK that ships one for this OS")
        return "vendor", "the SDK's own, as asked (--channel vendor)"
    if asked is None and vendor_has_one:
        return "vendor", "the SDK's own, which it brings for this target (--channel open chooses opend-build's)"
    if target_os == "windows":
        how = "on Winsock 2 and CNG (bcrypt), no OpenSSL"
        return ("open", f"opend-build's open channel, as asked (--channel open); {how}") if asked == "open" else \
            ("auto", f"opend-build's open channel ({looked}); {how}")
    if asked == "open":
        return "open", "opend-build's open channel, as asked (--channel open); CMake must find OpenSSL's libcrypto (Debian: libssl-dev)"
    return "auto", (f"opend-build's open channel ({looked}), built when CMake finds OpenSSL's libcrypto (Debian: libssl-dev); "
                    "without it no channel is shipped")


def resolve(options: Options, env: Mapping[str, str], probe: host.Probe | None = None) -> Inputs:
    """The inputs for `options`; `env` is the environment of the run (the cache folder, where CMake
    would look for an installed protobuf: CMAKE_PREFIX_PATH). Archive digests computed here are
    written by the last of the steps returned (`sources.Digests`), never here. `probe` runs what
    must be asked of this machine (an installed protoc's version), and lists it for the plan."""
    probe = probe or host.Probe(env)
    cache = sources.cache_root(env)
    digests = sources.Digests(cache)
    found = _from_sdk(options, options.sdk, env, cache, digests, probe) if options.sdk else _default(options, env, cache, digests, probe)
    return replace(found, prepare=found.prepare + digests.steps())


def cmake_entries(inputs: Inputs) -> dict[str, str]:
    """The CMake cache entries that point the project at these inputs."""
    pb = inputs.protobuf
    return {
        "OPEND_LIB": inputs.lib,
        "OPEND_SDK_VERSION": inputs.version,
        "OPEND_PROTO_DIR": inputs.proto_dir.as_posix(),
        "OPEND_INCLUDE_DIR": inputs.include_dir.as_posix() if inputs.include_dir else "",
        "OPEND_SOURCE_DIR": inputs.source_dir.as_posix() if inputs.source_dir else "",
        "OPEND_CHANNEL_SOURCE_DIR": inputs.channel_source_dir.as_posix() if inputs.channel_source_dir else "",
        "OPEND_PROTOBUF_PROVIDER": pb.provider,
        "OPEND_PROTOBUF_SOURCE_DIR": pb.src.as_posix() if pb.src else "",
        "OPEND_ABSEIL_SOURCE_DIR": pb.abseil.as_posix() if pb.abseil else "",
        "OPEND_UTF8_RANGE_SOURCE_DIR": pb.utf8_range.as_posix() if pb.utf8_range else "",
        "OPEND_PROTOBUF_PREFIX": pb.prefix.as_posix() if pb.prefix else "",
        **({"OPEND_HOST_PROTOC": pb.host_protoc.as_posix()} if pb.host_protoc else {}),  # an installed protobuf, cross: this machine's protoc
        "OPEND_PROTOBUF_VERSION": pb.version,
        # An installed protobuf: every spelling of that version, which CMake compares what it finds with
        **({"OPEND_PROTOBUF_VERSIONS": ";".join(protobuf_src.spellings(pb.version, pb.runtime))} if pb.provider == "installed" else {}),
        "OPEND_CXX_STANDARD": str(pb.cxx_standard or ""),
        "OPEND_CHANNEL_LIBS": ";".join(c.as_posix() for c in inputs.channel_libs),
        "OPEND_CHANNEL": inputs.channel,
    }
