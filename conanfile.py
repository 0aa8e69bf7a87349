"""Conan 2 recipe: the OpenD C++ SDK, built by the same CMake project as build.py and the wheel.

    conan create .                                         # the default: open inputs from PyPI
    conan create . -o "opend-sdk/*:brand=moomoo"
    OPEND_SDK=/path/FTAPI4CPP_9.4.5418.zip conan create .  # a vendor SDK (folder or archive)
    conan create . --version 9.4.5418 -c user.opend:sdk=/path/FTAPI4CPP_9.4.5418.zip

The SDK's location is a build input, not part of the package's identity: the version names the
SDK (read from it, or the pinned PyPI protocol package without one) and a consumer installs the
binary without having the SDK at all. `-c user.opend:sdk=PATH` works like OPEND_SDK, except that
Conan gives set_version() no configuration: with it, name the SDK's version with --version
(a wrong one is refused, naming the right one).

    conan create . -o "opend-sdk/*:protobuf=3.21.12"      # against protobuf/3.21.12 of the Conan graph

The `protobuf` option: "vendored" (the default) builds protobuf 3.5.1 from source and ships it
inside the package; a version requires protobuf/<version> from the graph instead - the SDK is
built against it through CMakeDeps, ships no protobuf of its own, and links the consumer's.

    conan create . -o "opend-sdk/*:openssl=3.0.15"        # the graph's openssl/3.0.15, not the machine's

The `openssl` option: "system" (the default) builds the open channel (and a 10.x SDK's sources)
against the OpenSSL CMake finds and names its libraries; a version requires openssl/<version>
from the graph, and the package's components require its components.
"""

import json
import os
import sys
from pathlib import Path

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout


def _brands():
    """The driver's brand table (its inputs.json, exported with this file so that a consumer
    installing the binary has it too): the brand option's values and its default."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "src", "opend_build", "inputs.json"), encoding="utf-8") as f:
        return json.load(f)["brands"]


_BRANDS = _brands()


def _link_name(file_name, target_os):
    """What the linker is told for a library file: libprotobuf.a -> protobuf; on Windows the
    file's own stem (libprotobuf.lib -> libprotobuf)."""
    stem = os.path.splitext(file_name)[0]
    return stem if target_os == "Windows" else stem.removeprefix("lib")


class OpenDSdkConan(ConanFile):
    name = "opend-sdk"
    description = "OpenD C++ API SDK (futu FTAPI4CPP / moomoo MMAPI4CPP): protocol classes and lib<Brand>, with protobuf 3.5.1 or the graph's"
    license = "Apache-2.0"
    url = "https://github.com/opend-build/opend-build"
    topics = (*_BRANDS["libraries"], "opend", "protobuf", "trading")
    package_type = "static-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"brand": list(_BRANDS["libraries"]), "protobuf": ["vendored", "ANY"], "openssl": ["system", "ANY"]}
    default_options = {"brand": _BRANDS["default"], "protobuf": "vendored", "openssl": "system"}
    exports = ("src/opend_build/inputs.json",)
    exports_sources = ("build.py", "CMakeLists.txt", "cmake/*", "channel/*", "src/opend_build/*", "!*/__pycache__/*", "!*.pyc")

    # --- which SDK ------------------------------------------------------------------------
    def _sdk(self):
        return self.conf.get("user.opend:sdk", default=None) or os.environ.get("OPEND_SDK") or None

    def _driver(self, folder):
        """The driver's own modules (input handling, toolchain choice), from that folder's src/,
        loaded the way build.py loads them."""
        import importlib.util

        spec = importlib.util.spec_from_file_location("opend_build_loader", os.path.join(folder, "build.py"))
        loader = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loader)
        opend = loader.load(Path(folder))
        import opend_build.conan_settings  # noqa: F401 - the submodules used below
        import opend_build.errors  # noqa: F401
        import opend_build.platforms  # noqa: F401
        import opend_build.sources  # noqa: F401

        return opend

    def set_version(self):
        if self.version:
            return
        sdk = os.environ.get("OPEND_SDK")
        opend = self._driver(self.recipe_folder)
        if sdk:
            from opend_build.sdk import open_sdk

            self.version = open_sdk(Path(sdk).expanduser().absolute(), None).version
        else:
            # The pinned protocol package's version (each brand's is pinned alike).
            self.version = opend.sources.load_pins()[_BRANDS["default"]].version

    # --- which protobuf -------------------------------------------------------------------
    def _protobuf_version(self):
        """None: vendored (built from source, shipped); else the graph's protobuf/<version>."""
        value = str(self.options.protobuf)
        return None if value == "vendored" else value

    def _openssl_version(self):
        """None: the machine's OpenSSL (what CMake finds; the package names its libraries); else
        the graph's openssl/<version>, which the open channel and a 10.x SDK's sources link."""
        value = str(self.options.openssl)
        return None if value == "system" else value

    def requirements(self):
        version = self._protobuf_version()
        if version:
            # The application's protobuf: the SDK's headers include it, its library links it.
            self.requires(f"protobuf/{version}", transitive_headers=True, transitive_libs=True)
        if self._openssl_version():
            self.requires(f"openssl/{self._openssl_version()}", transitive_headers=True, transitive_libs=True)

    def layout(self):
        cmake_layout(self)

    def package_id(self):
        # Every compile sets the SDK's language level itself (gnu++11; C++17 with protobuf 22 and
        # later), whatever the consumer's compiler.cppstd: it does not change the binary.
        self.info.settings.rm_safe("compiler.cppstd")

    def _settings(self):
        names = ("os", "os.version", "arch", "compiler", "compiler.version", "compiler.libcxx", "compiler.runtime", "compiler.toolset", "build_type")
        return {n: (str(self.settings.get_safe(n)) if self.settings.get_safe(n) is not None else None) for n in names}

    def _toolchain(self, folder):
        """The driver's Options and Toolchain for these settings, through its own code (the
        platform modules decide, as for build.py); Conan's compiler is the profile's."""
        opend = self._driver(folder)
        try:
            opts = opend.conan_settings.options_for(self._settings(), str(self.options.brand))
            toolchain = opend.platforms.toolchain_for(opts)
        except opend.errors.OpenDError as exc:
            raise ConanInvalidConfiguration(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from exc
        if toolchain.cross:
            raise ConanInvalidConfiguration(
                f"arch={self.settings.arch} is a cross build on this machine, which the Conan route cannot make yet (protoc must be built "
                f"for the build machine too): build it with python build.py --os {opts.os} --arch {opts.arch}, or on a {opts.arch} machine")
        return opts, toolchain

    def validate(self):
        import re

        version = self._protobuf_version()
        if version and not re.match(r"^\d+\.\d+(\.\d+)?$", version):
            raise ConanInvalidConfiguration(f"protobuf={version}: give 'vendored' or a protobuf version such as 3.21.12")
        openssl = self._openssl_version()
        if openssl and not re.match(r"^\d+\.\d+(\.\d+)?[a-z]?$", openssl):
            raise ConanInvalidConfiguration(f"openssl={openssl}: give 'system' or an OpenSSL version such as 3.0.15")
        # Where the driver's sources are at hand (creating the package): refuse settings build.py
        # does not support. A consumer installing the binary from a remote has no sources here;
        # its binary was checked when it was built.
        folder = getattr(self, "export_sources_folder", None)
        if folder and os.path.isdir(os.path.join(folder, "src", "opend_build")):
            self._toolchain(folder)

    # --- build through the one CMake project ----------------------------------------------------
    def generate(self):
        opts, toolchain = self._toolchain(self.source_folder)
        sdk = self._sdk()
        if sdk:
            from opend_build.sdk import open_sdk

            found = open_sdk(Path(sdk).expanduser().absolute(), None)
            if found.version != str(self.version):
                raise ConanInvalidConfiguration(f"the SDK at {sdk} is version {found.version}, the package {self.version}: pass --version {found.version}")
            if found.brand != str(self.options.brand):
                raise ConanInvalidConfiguration(f"the SDK at {sdk} is {found.brand}'s: pass -o \"opend-sdk/*:brand={found.brand}\"")
        tc = CMakeToolchain(self)
        # The Toolchain's facts, not Conan's second derivation of them: libstdc++'s ABI and libc++,
        # the MSVC runtime, the macOS architectures and deployment target (Conan keeps the compiler
        # the profile names).
        for block in ("libcxx", "vs_runtime", "apple_system"):
            tc.blocks.remove(block)
        # Visual Studio's toolset (-T) and platform (-A) are the Toolchain's too, where the generator takes them.
        system = tc.blocks["generic_system"].values
        for key, ours in (("toolset", toolchain.toolset), ("generator_platform", toolchain.platform)):
            if ours and system.get(key):
                system[key] = ours
        tc.extra_cxxflags = list(toolchain.cxx_flags)
        for name, value in toolchain.cache_variables.items():
            if name == "CMAKE_EXE_LINKER_FLAGS":
                tc.extra_exelinkflags = value.split()
            elif name not in ("CMAKE_CXX_COMPILER", "CMAKE_C_COMPILER", "CMAKE_CXX_FLAGS"):
                tc.cache_variables[name] = value
        tc.cache_variables["OPEND_BRAND"] = str(self.options.brand)
        tc.cache_variables["OPEND_SDK"] = os.path.abspath(os.path.expanduser(sdk)) if sdk else ""
        tc.cache_variables["OPEND_BIN_DIR"] = toolchain.bin_dir
        tc.cache_variables["OPEND_CHANNEL_DIR"] = toolchain.channel_dir
        tc.cache_variables["Python3_EXECUTABLE"] = sys.executable  # the interpreter running Conan has the driver's needs
        if self._protobuf_version():
            # The graph's protobuf, as an installed prefix: `build.py inputs` reads its version
            # (and so the language level), find_package(Protobuf) finds CMakeDeps' config for it.
            tc.cache_variables["OPEND_PROTOBUF"] = self.dependencies["protobuf"].package_folder.replace("\\", "/")
        if self._protobuf_version() or self._openssl_version():
            CMakeDeps(self).generate()  # the graph's packages, for find_package(Protobuf) and find_package(OpenSSL)
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        CMake(self).install()
        if self.settings.os == "Macos":  # the vendor's FAQ: a downloaded dylib will not load until this is cleared
            opts, toolchain = self._toolchain(self.source_folder)
            from opend_build.runner import clear_quarantine

            clear_quarantine(os.path.join(self.package_folder, toolchain.bin_dir))

    def _link(self, component, names):
        """The libraries the usage file names, as a component links them: the graph's OpenSSL
        by its components, when the package was built against it; the rest by name."""
        graph = {"ssl": "openssl::ssl", "crypto": "openssl::crypto"} if self._openssl_version() else {}
        component.system_libs = [n for n in names if n not in graph]
        component.requires += [graph[n] for n in names if n in graph]

    def package_info(self):
        # The usage facts the CMake package's config is generated from, written by the same install.
        (usage,) = Path(self.package_folder, "lib", "cmake").glob("*/*Usage.json")
        info = json.loads(usage.read_text(encoding="utf-8"))
        lib, bin_dir = info["lib"], info["bin_dir"]
        # find_package(FTAPI) and the same target names as the package build.py installs.
        self.cpp_info.set_property("cmake_file_name", lib)
        self.cpp_info.set_property("cmake_target_name", f"{lib}::SDK")
        # The C++ standard the targets require (the protobuf's headers need it), set on them by the
        # package's own file, as its CMake config does: Conan's cpp_info has no field for it.
        self.cpp_info.set_property("cmake_build_modules", [info["cxx_standard_module"]])

        pb = self.cpp_info.components["protobuf"]
        pb.set_property("cmake_target_name", f"{lib}::protobuf")
        if info["ships_protobuf"]:
            pb.libs = [_link_name(info["protobuf_file"], self.settings.os)]  # libprotobuf.lib on Windows: the name the vendor's headers link
            pb.libdirs = [bin_dir]
            pb.includedirs = info["include_dirs"][:1]  # Include/: protobuf's headers sit there, as the SDK's
            pb.defines = info["protobuf_defines"]
            pb.system_libs = info["protobuf_system_libs"]  # what protobuf's runtime links (Linux: pthread, m)
        else:  # the graph's protobuf: one runtime, the consumer's
            pb.includedirs = []
            pb.requires = ["protobuf::libprotobuf"]

        sdk = self.cpp_info.components["sdk"]
        sdk.set_property("cmake_target_name", f"{lib}::{lib}")
        sdk.libs = [info["library"]]
        sdk.libdirs = [bin_dir]
        sdk.includedirs = info["include_dirs"]
        sdk.requires = ["protobuf"]
        self._link(sdk, info["system_libs"])  # what the SDK's own sources use beyond protobuf (10.x: OpenSSL)
        if info["channel"]:
            channel = self.cpp_info.components["channel"]
            channel.set_property("cmake_target_name", f"{lib}::Channel")
            channel.libs = [_link_name(info["channel_implib"] or info["channel"], self.settings.os)]
            channel.libdirs = [info["channel_dir"]]
            channel.includedirs = []
            channel.defines = info["channel_defines"]  # the open channel's header: its brand's C names
        if info.get("channel_static"):  # the open channel as a static archive, for fully static applications
            static = self.cpp_info.components["channel_static"]
            static.set_property("cmake_target_name", f"{lib}::ChannelStatic")
            static.libs = [_link_name(info["channel_static"], self.settings.os)]
            static.libdirs = [bin_dir]
            static.includedirs = info["include_dirs"][:1]  # the channel's header
            static.defines = info["channel_defines"]
            self._link(static, info["channel_static_libs"])  # OpenSSL's libcrypto and the threads library, as CMake found them
        if self._openssl_version() and not any(r.startswith("openssl::") for c in self.cpp_info.components.values() for r in c.requires):
            sdk.requires.append("openssl::crypto")  # nothing of this SDK links it, but Conan wants each requirement used by a component
        # protoc, the matching compiler, for the consumer's own .proto files
        self.cpp_info.bindirs = [bin_dir]
        self.buildenv_info.prepend_path("PATH", os.path.join(self.package_folder, bin_dir))
