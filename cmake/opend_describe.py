"""Run by `cmake --install` when the project was configured without the driver (the pip wheel,
the Conan package, a preset): the install tree gets the build-manifest.json and SBOMs a build.py
output has, made by the driver's own code (opend_build.manifest, opend_build.sbom) from the same
inputs `build.py inputs` prepared for the configure. A wheel's SBOMs also go to .dist-info/sboms/
(PEP 770), naming the files by their paths in the wheel.

    python cmake/opend_describe.py --build-dir DIR --prefix DIR --build-type T [--sboms DIR --wheel-root DIR] -- <inputs arguments>
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="opend_describe.py")
    p.add_argument("--build-dir", type=Path, required=True, help="the CMake build folder")
    p.add_argument("--prefix", type=Path, required=True, help="the install tree to describe")
    p.add_argument("--build-type", required=True)
    p.add_argument("--sboms", type=Path, help="a second folder for the SBOMs (a wheel's .dist-info/sboms)")
    p.add_argument("--wheel-root", type=Path, help="with --sboms: the folder the wheel's paths start at")
    p.add_argument("inputs", nargs=argparse.REMAINDER, help="after --: the arguments the configure gave `build.py inputs`")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import build

    build.load(ROOT)
    from opend_build import host, inputs, manifest, options
    from opend_build.errors import OpenDError

    args = [x for x in a.inputs if x != "--"]
    if a.build_type in options.BUILD_TYPES:  # which of the SDK's prebuilt channel libraries (macOS, Windows)
        args += ["--build-type", a.build_type]
    try:
        opts = options.parse(args)
        env = host.environ()
        resolved = inputs.resolve(opts, env)
        root = a.prefix.resolve().relative_to(a.wheel_root.resolve()).as_posix() if a.sboms and a.wheel_root else ""
        data = manifest.write_installed(resolved, opts.os, a.build_type, a.build_dir, a.prefix, env.get("SOURCE_DATE_EPOCH", ""),
                                        a.sboms, root)
    except OpenDError as exc:
        print(f"error: {exc.message}" + (f"\n  what to do: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return exc.exit_code
    where = f" and {a.sboms}" if a.sboms else ""
    print(f"-- opend-build: {manifest.NAME} and SBOMs of {len(data['outputs'])} files written to {a.prefix}{where}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
