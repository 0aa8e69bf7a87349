// A whole file into a string: the PEM keys the test and bench programs are given.
#ifndef OPEND_CHANNEL_TESTS_READ_FILE_H
#define OPEND_CHANNEL_TESTS_READ_FILE_H
#include <fstream>
#include <sstream>
#include <string>

inline bool read_file(const char* path, std::string& out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    std::stringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}
#endif
