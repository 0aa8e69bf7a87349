"""opend-build: build the OpenD C++ API SDK (FTAPI4CPP / MMAPI4CPP) from source in one command."""

__version__ = "0.1.0"
