// PEM and DER for the one key the channel reads: base64, then a small DER reader for PKCS#1
// RSAPrivateKey and the PKCS#8 PrivateKeyInfo around it. Used by the CNG backend (Windows);
// built on every platform so that it is tested and fuzzed where the sanitizers are.
#include "pem_der.h"

#include <string.h>

#include "crypto.h"

namespace opend_channel {
namespace pem {

namespace {

int b64(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Base64 with whitespace between; '=' only at the end. False on anything else.
bool unbase64(const std::string& s, std::vector<uint8_t>& out) {
    out.clear();
    unsigned acc = 0;
    int bits = 0, pads = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (c == '=') {
            ++pads;
            continue;
        }
        int v = b64(c);
        if (v < 0 || pads) return false;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<uint8_t>((acc >> bits) & 0xff));
        }
    }
    return pads <= 2 && !out.empty();
}

// The body of the first "-----BEGIN <label>-----" block whose label is a private key we read.
bool pem_body(const std::string& pem, std::string& label, std::string& body) {
    static const char kBegin[] = "-----BEGIN ";
    size_t at = 0;
    for (int blocks = 0; blocks < 64; ++blocks) {
        size_t b = pem.find(kBegin, at);
        if (b == std::string::npos) return false;
        size_t lstart = b + sizeof(kBegin) - 1;
        size_t lend = pem.find("-----", lstart);
        if (lend == std::string::npos) return false;
        label = pem.substr(lstart, lend - lstart);
        std::string end = "-----END " + label + "-----";
        size_t e = pem.find(end, lend + 5);
        if (e == std::string::npos) return false;
        if (label == "RSA PRIVATE KEY" || label == "PRIVATE KEY") {
            body = pem.substr(lend + 5, e - lend - 5);
            return body.find(':') == std::string::npos;  // "Proc-Type: 4,ENCRYPTED": a passphrase we do not have
        }
        at = e + end.size();
    }
    return false;
}

struct Der {
    const uint8_t* p;
    const uint8_t* end;
    Der(const uint8_t* b, const uint8_t* e) : p(b), end(e) {}
    // One TLV of the given tag; its contents in *inner.
    bool take(uint8_t tag, Der* inner) {
        if (end - p < 2 || p[0] != tag) return false;
        size_t len = p[1];
        const uint8_t* q = p + 2;
        if (len & 0x80) {
            size_t n = len & 0x7f;
            if (n == 0 || n > 4 || static_cast<size_t>(end - q) < n) return false;
            len = 0;
            for (size_t i = 0; i < n; ++i) len = (len << 8) | q[i];
            q += n;
        }
        if (static_cast<size_t>(end - q) < len) return false;
        if (inner) *inner = Der(q, q + len);
        p = q + len;
        return true;
    }
    // A non-negative INTEGER, big-endian without leading zeros (at least one byte).
    bool integer(std::vector<uint8_t>& v) {
        Der i(0, 0);
        if (!take(0x02, &i) || i.p == i.end || (i.p[0] & 0x80)) return false;
        while (i.end - i.p > 1 && i.p[0] == 0) ++i.p;
        v.assign(i.p, i.end);
        return true;
    }
};

// RSAPrivateKey ::= SEQUENCE { version 0, n, e, d, p, q, d mod (p-1), d mod (q-1), q^-1 mod p }
bool parse_pkcs1(Der der, RsaNumbers& k) {
    Der seq(0, 0);
    std::vector<uint8_t> version;
    if (!der.take(0x30, &seq) || !seq.integer(version) || version.size() != 1 || version[0] != 0) return false;
    return seq.integer(k.n) && seq.integer(k.e) && seq.integer(k.d) && seq.integer(k.p) && seq.integer(k.q) &&
           seq.integer(k.dp) && seq.integer(k.dq) && seq.integer(k.qinv);
}

// PrivateKeyInfo ::= SEQUENCE { version 0 (1: RFC 5958's, with optional fields after), AlgorithmIdentifier
// { rsaEncryption, NULL }, OCTET STRING RSAPrivateKey, ... }
bool parse_pkcs8(Der der, RsaNumbers& k) {
    static const uint8_t kRsaEncryption[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};  // 1.2.840.113549.1.1.1
    Der seq(0, 0), alg(0, 0), oid(0, 0), key(0, 0);
    std::vector<uint8_t> version;
    if (!der.take(0x30, &seq) || !seq.integer(version) || version.size() != 1 || version[0] > 1) return false;
    if (!seq.take(0x30, &alg) || !alg.take(0x06, &oid)) return false;
    if (oid.end - oid.p != static_cast<long>(sizeof(kRsaEncryption)) || memcmp(oid.p, kRsaEncryption, sizeof(kRsaEncryption)) != 0) return false;
    if (!seq.take(0x04, &key)) return false;
    return parse_pkcs1(key, k);
}

}  // namespace

void RsaNumbers::wipe() {
    std::vector<uint8_t>* all[] = {&n, &e, &d, &p, &q, &dp, &dq, &qinv};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); ++i) {
        volatile uint8_t* b = all[i]->data();
        for (size_t j = 0; j < all[i]->size(); ++j) b[j] = 0;
        all[i]->clear();
    }
}

RsaNumbers::~RsaNumbers() { wipe(); }

bool read_rsa_private_key(const std::string& text, RsaNumbers& k) {
    std::string label, body;
    std::vector<uint8_t> der;
    bool ok = pem_body(text, label, body) && unbase64(body, der);
    if (ok) {
        Der d(der.data(), der.data() + der.size());
        ok = label == "RSA PRIVATE KEY" ? parse_pkcs1(d, k) : parse_pkcs8(d, k);
    }
    volatile uint8_t* b = der.data();
    for (size_t i = 0; i < der.size(); ++i) b[i] = 0;
    wipe(body);
    if (!ok) k.wipe();
    return ok;
}

}  // namespace pem
}  // namespace opend_channel
