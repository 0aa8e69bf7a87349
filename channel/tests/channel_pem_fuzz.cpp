// Fuzzes the PEM/DER reader (src/pem_der.cpp, the one the Windows backend uses) on any platform.
// LLVMFuzzerTestOneInput is the target (build it with clang -fsanitize=fuzzer to use libFuzzer);
// without libFuzzer, main() is a deterministic mutation driver:
//   channel_pem_fuzz ITERATIONS SEED.der...
// Each seed is a DER key (PKCS#1 or PKCS#8); every iteration mutates one (bit flips, bytes set to
// edge values, lengths changed, truncation, insertion, splicing) and reads it wrapped in both PEM
// labels, and as raw text. Exit 0 after ITERATIONS inputs; the sanitizers report anything else.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "pem_der.h"
#include "read_file.h"

namespace {

std::string base64(const std::vector<uint8_t>& in) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
        out += t[v >> 18];
        out += t[(v >> 12) & 63];
        out += t[(v >> 6) & 63];
        out += t[v & 63];
        if (out.size() % 65 == 64) out += '\n';
    }
    if (i + 1 == in.size()) {
        unsigned v = in[i] << 16;
        out += t[v >> 18];
        out += t[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        unsigned v = (in[i] << 16) | (in[i + 1] << 8);
        out += t[v >> 18];
        out += t[(v >> 12) & 63];
        out += t[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

void read_one(const std::string& text) {
    opend_channel::pem::RsaNumbers k;
    if (opend_channel::pem::read_rsa_private_key(text, k) && (k.n.empty() || k.d.empty())) abort();  // a key has numbers
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<uint8_t> der(data, data + size);
    std::string b = base64(der);
    read_one("-----BEGIN RSA PRIVATE KEY-----\n" + b + "\n-----END RSA PRIVATE KEY-----\n");
    read_one("-----BEGIN PRIVATE KEY-----\n" + b + "\n-----END PRIVATE KEY-----\n");
    read_one(std::string(reinterpret_cast<const char*>(data), size));
    return 0;
}

#ifndef OPEND_CHANNEL_LIBFUZZER
namespace {
uint64_t g_state = 0x9e3779b97f4a7c15ull;
uint64_t rnd() {
    g_state ^= g_state << 13;
    g_state ^= g_state >> 7;
    g_state ^= g_state << 17;
    return g_state;
}

void mutate(std::vector<uint8_t>& d, const std::vector<std::vector<uint8_t> >& seeds) {
    static const uint8_t edge[] = {0x00, 0x01, 0x02, 0x04, 0x30, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0xff};
    int n = 1 + static_cast<int>(rnd() % 4);
    for (int i = 0; i < n; ++i) {
        size_t at = d.empty() ? 0 : rnd() % d.size();
        switch (rnd() % 7) {
            case 0:
                if (!d.empty()) d[at] ^= static_cast<uint8_t>(1u << (rnd() % 8));
                break;
            case 1:
                if (!d.empty()) d[at] = edge[rnd() % sizeof(edge)];
                break;
            case 2:  // most DER lengths sit in the first bytes of each TLV: hit the front more often
                if (!d.empty()) d[rnd() % (d.size() < 32 ? d.size() : 32)] = edge[rnd() % sizeof(edge)];
                break;
            case 3:
                d.resize(at);
                break;
            case 4:
                d.insert(d.begin() + static_cast<long>(at), edge[rnd() % sizeof(edge)]);
                break;
            case 5:
                if (!d.empty()) d.erase(d.begin() + static_cast<long>(at), d.begin() + static_cast<long>(at + 1 + rnd() % (d.size() - at)));
                break;
            default: {
                const std::vector<uint8_t>& o = seeds[rnd() % seeds.size()];
                size_t from = o.empty() ? 0 : rnd() % o.size();
                d.resize(at);
                d.insert(d.end(), o.begin() + static_cast<long>(from), o.end());
            }
        }
    }
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: channel_pem_fuzz ITERATIONS SEED.der...\n");
        return 2;
    }
    long iterations = atol(argv[1]);
    std::vector<std::vector<uint8_t> > seeds;
    for (int i = 2; i < argc; ++i) {
        std::string s;
        if (!read_file(argv[i], s)) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            return 2;
        }
        seeds.push_back(std::vector<uint8_t>(s.begin(), s.end()));
    }
    long accepted = 0;
    for (size_t i = 0; i < seeds.size(); ++i) {
        opend_channel::pem::RsaNumbers k;
        std::string b = base64(seeds[i]);
        if (opend_channel::pem::read_rsa_private_key("-----BEGIN RSA PRIVATE KEY-----\n" + b + "\n-----END RSA PRIVATE KEY-----\n", k) ||
            opend_channel::pem::read_rsa_private_key("-----BEGIN PRIVATE KEY-----\n" + b + "\n-----END PRIVATE KEY-----\n", k))
            ++accepted;
    }
    if (accepted != static_cast<long>(seeds.size())) {
        fprintf(stderr, "channel_pem_fuzz: a seed is not a key the reader accepts\n");
        return 1;
    }
    for (long it = 0; it < iterations && it < 100000000; ++it) {
        std::vector<uint8_t> d = seeds[rnd() % seeds.size()];
        mutate(d, seeds);
        LLVMFuzzerTestOneInput(d.data(), d.size());
    }
    printf("channel_pem_fuzz: %ld inputs\n", iterations);
    return 0;
}
#endif
