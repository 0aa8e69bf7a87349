"""Command line -> Options: read and validated once, then only read."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import __version__, host, platforms
from .errors import SdkError, UsageError
from .sdk import BRANDS, DEFAULT_BRAND
from .settings import BUILD_TYPES, OSES, Options, host_os

__all__ = ["BUILD_TYPES", "OPTIONS", "OSES", "Options", "build", "default_jobs", "host_os", "parse", "parser", "reproducing_argv", "synopsis"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, f"run '{self.prog} --help' for the options")


def prog_name(argv0: str) -> str:
    """How the driver was started, as its help names it: `python build.py`, `opend-build` (the
    installed command) or `python -m opend_build`."""
    name = Path(argv0).name
    if name == "__main__.py":
        return "python -m opend_build"
    if name.startswith("opend-build"):
        return "opend-build"
    return "python build.py"


COMMANDS = {  # the subcommands, and what each does (the help; "build" is the default)
    "build": "",
    "doctor": "what would the build with these options do here, and can the SDK's prebuilt libraries be linked as they are?",
    "inputs": "fetch and unpack the inputs, print them as CMake cache entries",
    "presets": "print CMakePresets.json",
    "verify": "check the built classes against Python's, message by message",
}


@dataclass(frozen=True)
class Opt:
    """One option, described once: argparse, its help with the default, the Options field, the
    per-OS check (choices from the platform modules), reproducing argv and the README's synopsis
    all come from this."""

    flag: str
    help: str
    metavar: str = ""  # the synopsis' placeholder (PATH, N, ...); choices are shown instead when there are some
    choices: tuple[str, ...] | None = None
    also: tuple[str, ...] = ()  # further values taken (the default's own name, as the plan prints it), not in the synopsis
    default: object = None
    default_text: str = ""  # how the help names a default computed later ("detected", "this machine's")
    kind: str = "str"  # "str", "path", "int", "float", "flag"
    per_os: bool = False  # its OSes and choices are the platform modules' (OPTIONS)
    reproduces: bool = False  # it decides the outputs' bytes: the manifest's argv to build them again
    short: str = ""
    group: str = "build"  # the synopsis line: build, os (per OS), run, verify

    @property
    def field(self) -> str:
        return self.flag[2:].replace("-", "_")

    def per_os_choices(self) -> dict[str, tuple[str, ...] | None]:
        return {os_name: table[self.flag] for os_name, table in platforms.option_choices().items() if self.flag in table}


OPTIONS: tuple[Opt, ...] = (
    Opt("--os", "target OS", choices=OSES, default_text="this machine's", reproduces=True),
    Opt("--sdk", "SDK folder or archive (.zip/.7z/.tar.gz)", "PATH", default_text="the open parts from PyPI", kind="path", reproduces=True),
    Opt("--brand", " or ".join(f"{b} ({lib})" for b, lib in sorted(BRANDS.items())), choices=tuple(sorted(BRANDS)), default_text=f"detected; {DEFAULT_BRAND} without an SDK",
        reproduces=True),
    Opt("--protobuf", "the protobuf to build against: a pinned version built from source (3.5.1; 3.21.12; 29.0 with abseil), 'system' (the "
        "installed one, found like CMake's find_package), an installed prefix (include/, lib/, bin/protoc), or a protobuf source folder or archive",
        "VERSION|system|PATH", default_text="the SDK's Src/protobuf-*, else 3.5.1", reproduces=True),
    Opt("--build-type", "build type", choices=BUILD_TYPES, default="Release", reproduces=True),
    Opt("--jobs", "parallel compile jobs", "N", default_text="cores, capped by memory", kind="int", short="-j"),
    Opt("--out", "output folder", "DIR", default_text="out/<Lib>4CPP-<os>-<arch>-<toolchain>-protobuf<version>-<build type>, one per configuration",
        kind="path"),
    Opt("--compiler", "the C++ compiler: clang with libc++; mingw is MinGW-w64 on a Linux machine (g++-mingw-w64-x86-64-posix)", per_os=True,
        default_text="gcc on Linux, msvc on Windows", reproduces=True),
    Opt("--cxx11-abi", "g++: _GLIBCXX_USE_CXX11_ABI", per_os=True, default_text="the compiler's", reproduces=True),
    Opt("--arch", "target processor; on Linux another than this machine's cross-compiles (aarch64: g++-aarch64-linux-gnu)", per_os=True,
        default_text="Linux: this machine's; macOS: universal2; Windows: x64", reproduces=True),
    Opt("--toolchain-file", "your CMake toolchain file for the target: a cross build (protoc is built for this machine too)", "FILE", per_os=True,
        kind="path", reproduces=True),
    Opt("--deployment-target", "macOS deployment target", "V", per_os=True, default_text="10.15", reproduces=True),
    Opt("--toolset", "MSVC platform toolset", per_os=True, default_text="the newest installed", reproduces=True),
    Opt("--runtime", "C runtime: MT (static) or MD (DLL)", per_os=True, default_text="MD", reproduces=True),
    Opt("--channel", "the channel library that talks to OpenD: vendor (the SDK's own binary or source) or open (opend-build's, from channel/, "
        "OpenSSL's libcrypto on Linux and macOS, CNG and Winsock on Windows)", choices=("vendor", "open"), also=("auto",),
        default_text="auto: the SDK's where it brings one for this OS, else the open one",
        reproduces=True, group="run"),
    Opt("--cache", "compiler cache: sccache (local disk, or Redis/S3/GCS/GitHub Actions cache set by sccache's own SCCACHE_* variables)",
        choices=("none", "sccache"), default="none", group="run"),
    Opt("--dry-run", "print the plan, run nothing", kind="flag", group="run"),
    Opt("--summary-json", "also write the end-of-run summary as JSON to this file", "FILE", kind="path", group="run"),
    Opt("--lock-timeout", "seconds to wait for another run using the same folders (0: fail at once)", "SECONDS", default=1800.0, kind="float",
        group="last"),
    Opt("--verbose", "show every command's output and tracebacks", kind="flag", short="-v", group="last"),
    Opt("--opend", "verify: connect to this OpenD through the output's channel instead", "HOST:PORT", group="verify"),
    Opt("--rsa-key", "verify --opend: PEM file of the RSA key OpenD is configured with (encrypts)", "FILE", kind="path", group="verify"),
    Opt("--security", "verify --opend: the security whose quote is subscribed to after connecting", "MARKET.CODE", default_text="HK.00700",
        group="verify"),
    Opt("--no-subscribe", "verify --opend: connect and ask GetGlobalState only, no subscription", kind="flag", group="verify"),
    Opt("--reproduce", "verify: rebuild the output from the inputs its manifest records, in a fresh cache, and compare every file", kind="flag",
        group="verify"),
    Opt("--from-clone", "verify --reproduce: rebuild from a copy of this checkout at another path (the files git lists, uncommitted changes "
        "included), so the outputs are shown not to depend on where the checkout is", kind="flag", group="verify"),
)


def _help(o: Opt) -> str:
    where = ""
    if o.per_os:
        where = "; ".join(f"{os_name}: {'|'.join(values) if values else 'any'}" for os_name, values in o.per_os_choices().items()) + ". "
    default = o.default_text or (str(o.default) if o.default is not None and o.kind != "flag" else "")
    return f"{where}{o.help}" + (f" (default: {default})" if default else "")


def parser(prog: str = "python build.py") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Build the OpenD C++ API SDK (protobuf 3.5.1, protocol classes, lib<Brand>) in one command.",
    )
    p.add_argument("--version", action="version", version=f"opend-build {__version__}")
    p.add_argument("command", nargs="?", default="build", choices=tuple(COMMANDS),
                   help="; ".join(f"{name}: {what}" if what else f"{name} (default)" for name, what in COMMANDS.items()))
    types = {"path": Path, "int": int, "float": float}
    for o in OPTIONS:
        names = [*([o.short] if o.short else []), o.flag]
        if o.kind == "flag":
            p.add_argument(*names, action="store_true", help=_help(o))
            continue
        choices = (*o.choices, *o.also) if o.choices else o.choices
        if o.per_os:
            choices = tuple(dict.fromkeys(c for values in o.per_os_choices().values() for c in (values or ()))) or None
        p.add_argument(*names, dest=o.field, type=types.get(o.kind, str), choices=choices, default=o.default, metavar=o.metavar or None, help=_help(o))
    return p


def synopsis() -> str:
    """The README's options block, from the descriptors."""
    def shown(o: Opt, values: tuple[str, ...] | None = None) -> str:
        name = o.short or o.flag
        if o.kind == "flag":
            return f"[{name}]"
        values = values if values is not None else o.choices
        return f"[{name} {'|'.join(values) if values else o.metavar}]"

    pad = " " * 16

    def line(opts: list[str]) -> list[str]:  # filled to 110 columns, continuation lines indented
        out, cur = [], ""
        for item in opts:
            if cur and (len(pad) if out or not cur.startswith("python") else 0) + len(cur) + 1 + len(item) > 110:
                out.append(cur)
                cur = item
            else:
                cur = f"{cur} {item}" if cur else item
        return [*out, cur]

    head = f"python build.py [{'|'.join(c for c in COMMANDS if c != 'verify')}]"  # verify has its own line
    lines = line([head, *(shown(o) for o in OPTIONS if o.group == "build" and not o.per_os)])
    for os_name, table in platforms.option_choices().items():
        items = [shown(o, table[o.flag]) for o in OPTIONS if o.per_os and o.flag in table]
        lines.append(f"{' '.join(items)}  ({ {'linux': 'Linux', 'macos': 'macOS', 'windows': 'Windows'}[os_name] })")
    lines += line([shown(o) for o in OPTIONS if o.group in ("run", "last")])
    verify = [o for o in OPTIONS if o.group == "verify"]
    opend, key, sec, nosub, again, clone = verify
    lines_out = [lines[0], *(pad + x for x in lines[1:])]
    lines_out.append(f"python build.py verify [--out DIR] [{opend.flag} {opend.metavar} [{key.flag} {key.metavar}] "
                     f"[{sec.flag} {sec.metavar} | {nosub.flag}] | {again.flag} [{clone.flag}]]")
    return "\n".join(lines_out)


def default_jobs() -> int:
    # A generated .pb.cc needs up to ~0.6 GiB at -O2; leave room for the rest of the machine.
    return max(1, min(host.cpu_count(), int(host.memory_gib() / 1.0)))


def parse(argv: list[str], env: Mapping[str, str] | None = None, prog: str = "python build.py") -> Options:
    """argv -> Options, validated once; `~` in paths is the home of `env` (this process's when
    not given: the command line reads it through the host boundary); `prog` is how the help and
    the hints name the command (prog_name)."""
    env = host.environ() if env is None else env
    a = vars(parser(prog).parse_args(argv))
    values = {o.field: (host.expand(a[o.field], env) if o.kind == "path" and a[o.field] is not None else a[o.field]) for o in OPTIONS}
    return build(a["command"], values)


def build(command: str, values: Mapping[str, object]) -> Options:
    """Options from the descriptors' values (the command line's, or Conan's settings), checked
    against what the target OS's platform module takes; the one validation of every route."""
    v = {o.field: values.get(o.field, o.default) for o in OPTIONS}
    if v["jobs"] is not None and int(v["jobs"]) < 1:  # type: ignore[call-overload]
        raise UsageError(f"--jobs must be at least 1, not {v['jobs']}")
    if float(v["lock_timeout"]) < 0:  # type: ignore[arg-type]
        raise UsageError(f"--lock-timeout must be 0 or more seconds, not {v['lock_timeout']}", "0 fails at once when another run holds the folders")
    if v["sdk"] is not None and command == "presets" and not Path(str(v["sdk"])).exists():
        raise SdkError(f"--sdk {v['sdk']} does not exist", "pass the SDK folder or archive you downloaded, or drop --sdk")
    target = str(v["os"] or host_os())
    takes = platforms.option_choices().get(target, {})
    for o in OPTIONS:
        value = v[o.field]
        if not o.per_os or value is None:
            continue
        if o.flag not in takes:
            oses = [name for name, t in platforms.option_choices().items() if o.flag in t]
            raise UsageError(f"{o.flag} does not apply to --os {target}", f"it is for --os {' or '.join(oses)}")
        allowed = takes[o.flag]
        if allowed is not None and str(value) not in allowed:
            raise UsageError(f"{o.flag} {value} does not apply to --os {target}", f"use {' or '.join(allowed)}")
    if v["from_clone"] and not v["reproduce"]:
        raise UsageError("--from-clone is for verify --reproduce", "python build.py verify --reproduce --from-clone --out OUT")
    if (v["opend"] or v["rsa_key"] or v["reproduce"] or v["security"] or v["no_subscribe"]) and command != "verify":
        raise UsageError("--opend, --rsa-key, --security, --no-subscribe and --reproduce are for 'verify'",
                         "python build.py verify [--opend HOST:PORT [--rsa-key FILE] [--security MARKET.CODE | --no-subscribe] | --reproduce [--from-clone]]")
    if (v["security"] or v["no_subscribe"]) and not v["opend"]:
        raise UsageError("--security and --no-subscribe are for 'verify --opend HOST:PORT'", "add --opend HOST:PORT, or drop them")
    if v["security"] and v["no_subscribe"]:
        raise UsageError(f"--security {v['security']} and --no-subscribe contradict each other", "drop one of them")
    if v["security"]:
        from .verify import security

        security(str(v["security"]))  # refused here, before anything is built
    toolchain_file = v["toolchain_file"]
    if isinstance(toolchain_file, Path) and not toolchain_file.is_file():
        raise UsageError(f"--toolchain-file {toolchain_file}: no such file", "pass the path of a CMake toolchain file")
    if toolchain_file is not None and v["compiler"]:
        raise UsageError("--compiler does not apply with --toolchain-file", "the toolchain file names the compiler")
    if v["compiler"] == "mingw" and (v["arch"] == "x86" or v["toolset"] or v["runtime"]):
        raise UsageError("--compiler mingw builds for Windows x64 only, without MSVC's --toolset and --runtime",
                         "drop --arch x86, --toolset and --runtime (or build with MSVC on Windows)")
    if v["cxx11_abi"] is not None and v["compiler"] == "clang":
        raise UsageError("--cxx11-abi is for g++ (libstdc++); clang here uses libc++")
    return Options(
        command=command,
        os=target,
        sdk=v["sdk"],  # type: ignore[arg-type]
        brand=v["brand"],  # type: ignore[arg-type]
        protobuf=v["protobuf"] or None,  # type: ignore[arg-type]
        build_type=str(v["build_type"]),
        jobs=int(v["jobs"] or default_jobs()),  # type: ignore[call-overload]
        out=v["out"],  # type: ignore[arg-type]
        compiler=v["compiler"],  # type: ignore[arg-type]
        cxx11_abi=int(v["cxx11_abi"]) if v["cxx11_abi"] is not None else None,  # type: ignore[call-overload]
        arch=v["arch"],  # type: ignore[arg-type]
        deployment_target=v["deployment_target"],  # type: ignore[arg-type]
        toolset=v["toolset"],  # type: ignore[arg-type]
        runtime=v["runtime"],  # type: ignore[arg-type]
        cache=str(v["cache"]),
        dry_run=bool(v["dry_run"]),
        verbose=bool(v["verbose"]),
        summary_json=v["summary_json"],  # type: ignore[arg-type]
        lock_timeout=float(v["lock_timeout"]),  # type: ignore[arg-type]
        channel=None if v["channel"] == "auto" else v["channel"],  # type: ignore[arg-type]  # auto is the default's name
        opend=v["opend"],  # type: ignore[arg-type]
        rsa_key=v["rsa_key"],  # type: ignore[arg-type]
        reproduce=bool(v["reproduce"]),
        security=v["security"],  # type: ignore[arg-type]
        no_subscribe=bool(v["no_subscribe"]),
        from_clone=bool(v["from_clone"]),
        toolchain_file=toolchain_file,  # type: ignore[arg-type]
    )


def reproducing_argv(o: Options) -> list[str]:
    """The command line that builds what `o` builds again (for the manifest and `verify
    --reproduce`): the options that decide the outputs' bytes, nothing of where or how fast."""
    argv: list[str] = []
    for d in OPTIONS:
        value = getattr(o, d.field)
        if d.reproduces and value is not None:
            argv += [d.flag, str(value)]
    return argv
