"""An OpenSSL package for the Conan tests: this machine's OpenSSL 3 (Debian's libssl-dev: headers
and shared libraries), packaged as it is with `conan export-pkg`, the way a team packages the
OpenSSL it uses. It exposes what Conan Center's openssl does to its consumers:
find_package(OpenSSL), OpenSSL::SSL and OpenSSL::Crypto, components openssl::ssl and openssl::crypto.

    conan export-pkg . --version 3.0.17
"""

import os
import platform

from conan import ConanFile
from conan.tools.files import copy


class OpenSSLSystemConan(ConanFile):
    name = "openssl"
    package_type = "shared-library"
    settings = "os", "arch", "compiler", "build_type"

    def package(self):
        triplet = f"{platform.machine()}-linux-gnu"  # this machine's own (the multiarch folders hold others' too)
        include = os.path.join(self.package_folder, "include", "openssl")
        copy(self, "*", "/usr/include/openssl", include)
        copy(self, "*", f"/usr/include/{triplet}/openssl", include)  # configuration.h, opensslconf.h
        for lib in ("libssl.so*", "libcrypto.so*"):
            copy(self, lib, f"/usr/lib/{triplet}", os.path.join(self.package_folder, "lib"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "OpenSSL")
        self.cpp_info.set_property("cmake_find_mode", "both")
        self.cpp_info.set_property("cmake_target_name", "OpenSSL::OpenSSL")
        crypto = self.cpp_info.components["crypto"]
        crypto.set_property("cmake_target_name", "OpenSSL::Crypto")
        crypto.libs = ["crypto"]
        crypto.system_libs = ["dl", "pthread"]
        ssl = self.cpp_info.components["ssl"]
        ssl.set_property("cmake_target_name", "OpenSSL::SSL")
        ssl.libs = ["ssl"]
        ssl.requires = ["crypto"]
