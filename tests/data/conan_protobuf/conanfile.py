"""A protobuf package for the Conan tests: an installed protobuf prefix (include/, lib/, bin/protoc),
packaged as it is with `conan export-pkg`, the way a team packages a protobuf it built. It exposes
what Conan Center's protobuf does to its consumers: find_package(protobuf), protobuf::libprotobuf,
and protoc on the build environment's PATH.

    OPEND_TEST_PROTOBUF_PREFIX=/path/prefix conan export-pkg . --version 3.21.12
"""

import os

from conan import ConanFile
from conan.tools.files import copy


class ProtobufPrefixConan(ConanFile):
    name = "protobuf"
    package_type = "static-library"
    settings = "os", "arch", "compiler", "build_type"

    def package(self):
        prefix = os.environ["OPEND_TEST_PROTOBUF_PREFIX"]
        for folder in ("include", "lib", "bin"):
            copy(self, "*", os.path.join(prefix, folder), os.path.join(self.package_folder, folder))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "protobuf")
        self.cpp_info.set_property("cmake_target_name", "protobuf::protobuf")
        lib = self.cpp_info.components["libprotobuf"]
        lib.set_property("cmake_target_name", "protobuf::libprotobuf")
        lib.libs = ["protobuf"]
        if self.settings.os in ("Linux", "FreeBSD"):
            lib.system_libs = ["pthread", "m"]
        self.buildenv_info.prepend_path("PATH", os.path.join(self.package_folder, "bin"))
