// The crypto backend on Windows' CNG (bcrypt.dll; Wine implements it): SHA-1, AES-128 ECB/CBC
// and RSA PKCS#1 v1.5. The PEM key is read here: base64, then a small DER reader for PKCS#1
// RSAPrivateKey and the PKCS#8 PrivateKeyInfo around it, into a BCRYPT_RSAFULLPRIVATE_BLOB.
#include <windows.h>
#include <bcrypt.h>

#include <string.h>

#include <vector>

#include "crypto.h"
#include "crypto_backend.h"

#ifndef NT_SUCCESS
#define NT_SUCCESS(status) (static_cast<NTSTATUS>(status) >= 0)
#endif

namespace opend_channel {

namespace {

// The algorithm providers, opened once per process (thread-safe static) and never closed; CNG
// provider handles may be used from any thread.
struct Providers {
    BCRYPT_ALG_HANDLE sha1, aes_ecb, aes_cbc, rsa;
    Providers() : sha1(0), aes_ecb(0), aes_cbc(0), rsa(0) {
        if (!NT_SUCCESS(BCryptOpenAlgorithmProvider(&sha1, BCRYPT_SHA1_ALGORITHM, 0, 0))) sha1 = 0;
        aes_ecb = aes(BCRYPT_CHAIN_MODE_ECB);
        aes_cbc = aes(BCRYPT_CHAIN_MODE_CBC);
        if (!NT_SUCCESS(BCryptOpenAlgorithmProvider(&rsa, BCRYPT_RSA_ALGORITHM, 0, 0))) rsa = 0;
    }
    static BCRYPT_ALG_HANDLE aes(const wchar_t* mode) {
        BCRYPT_ALG_HANDLE h = 0;
        if (!NT_SUCCESS(BCryptOpenAlgorithmProvider(&h, BCRYPT_AES_ALGORITHM, 0, 0))) return 0;
        ULONG bytes = static_cast<ULONG>((wcslen(mode) + 1) * sizeof(wchar_t));
        if (!NT_SUCCESS(BCryptSetProperty(h, BCRYPT_CHAINING_MODE, reinterpret_cast<PUCHAR>(const_cast<wchar_t*>(mode)), bytes, 0))) {
            BCryptCloseAlgorithmProvider(h, 0);
            return 0;
        }
        return h;
    }
};

const Providers& providers() {
    static Providers p;
    return p;
}

PUCHAR mut(const void* p) { return static_cast<PUCHAR>(const_cast<void*>(p)); }

// --- PEM and DER -------------------------------------------------------------------------------

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

struct RsaNumbers {
    std::vector<uint8_t> n, e, d, p, q, dp, dq, qinv;
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

void put_fixed(std::vector<uint8_t>& blob, const std::vector<uint8_t>& v, size_t width) {
    blob.insert(blob.end(), width - v.size(), 0);  // left-padded to the blob's field width
    blob.insert(blob.end(), v.begin(), v.end());
}

struct CngKey {
    BCRYPT_KEY_HANDLE h;
};

}  // namespace

bool sha1(const void* data, size_t n, uint8_t out[20]) {
    memset(out, 0, 20);
    BCRYPT_HASH_HANDLE h = 0;
    if (!providers().sha1 || !NT_SUCCESS(BCryptCreateHash(providers().sha1, &h, 0, 0, 0, 0, 0))) return false;
    const uint8_t* p = static_cast<const uint8_t*>(data);
    bool ok = true;
    while (ok && n > 0) {
        ULONG k = n > 0x40000000u ? 0x40000000u : static_cast<ULONG>(n);
        ok = NT_SUCCESS(BCryptHashData(h, mut(p), k, 0));
        p += k;
        n -= k;
    }
    if (!ok || !NT_SUCCESS(BCryptFinishHash(h, out, 20, 0))) {
        memset(out, 0, 20);
        ok = false;
    }
    BCryptDestroyHash(h);
    return ok;
}

namespace backend {

bool aes128(bool enc, const std::string& key16, const std::string* iv16, const uint8_t* in, size_t n, std::string& out) {
    if (key16.size() != 16 || (iv16 && iv16->size() != 16) || n % 16 != 0 || n > 0x7fff0000u) return false;
    BCRYPT_ALG_HANDLE alg = iv16 ? providers().aes_cbc : providers().aes_ecb;
    BCRYPT_KEY_HANDLE key = 0;
    if (!alg || !NT_SUCCESS(BCryptGenerateSymmetricKey(alg, &key, 0, 0, mut(key16.data()), 16, 0))) return false;
    uint8_t iv[16];  // CNG updates the IV it is given: every call starts from the caller's
    if (iv16) memcpy(iv, iv16->data(), 16);
    std::vector<uint8_t> buf(n + 16);
    ULONG got = 0;
    NTSTATUS st = enc ? BCryptEncrypt(key, mut(in), static_cast<ULONG>(n), 0, iv16 ? iv : 0, iv16 ? 16 : 0, buf.data(),
                                      static_cast<ULONG>(buf.size()), &got, 0)
                      : BCryptDecrypt(key, mut(in), static_cast<ULONG>(n), 0, iv16 ? iv : 0, iv16 ? 16 : 0, buf.data(),
                                      static_cast<ULONG>(buf.size()), &got, 0);
    BCryptDestroyKey(key);
    if (!NT_SUCCESS(st) || got != n) return false;
    out.assign(reinterpret_cast<const char*>(buf.data()), got);
    return true;
}

void* rsa_load(const std::string& pem, int* size) {
    std::string label, body;
    std::vector<uint8_t> der;
    RsaNumbers k;
    if (!pem_body(pem, label, body) || !unbase64(body, der)) return 0;
    Der d(der.data(), der.data() + der.size());
    if (!(label == "RSA PRIVATE KEY" ? parse_pkcs1(d, k) : parse_pkcs8(d, k))) return 0;
    const size_t mod = k.n.size(), p1 = k.p.size(), p2 = k.q.size();
    if (mod < 64 || mod > 2048 || k.e.size() > 8 || p1 > mod || p2 > mod || k.d.size() > mod || k.dp.size() > p1 ||
        k.dq.size() > p2 || k.qinv.size() > p1 || !providers().rsa)
        return 0;
    BCRYPT_RSAKEY_BLOB head;
    memset(&head, 0, sizeof(head));
    head.Magic = BCRYPT_RSAFULLPRIVATE_MAGIC;
    unsigned top = k.n[0], bits = 0;
    while (top) {
        ++bits;
        top >>= 1;
    }
    head.BitLength = static_cast<ULONG>((mod - 1) * 8 + bits);
    head.cbPublicExp = static_cast<ULONG>(k.e.size());
    head.cbModulus = static_cast<ULONG>(mod);
    head.cbPrime1 = static_cast<ULONG>(p1);
    head.cbPrime2 = static_cast<ULONG>(p2);
    // header, e, n, p, q, dp, dq, qinv, d: big-endian, each at its field's width
    std::vector<uint8_t> blob(reinterpret_cast<const uint8_t*>(&head), reinterpret_cast<const uint8_t*>(&head) + sizeof(head));
    put_fixed(blob, k.e, k.e.size());
    put_fixed(blob, k.n, mod);
    put_fixed(blob, k.p, p1);
    put_fixed(blob, k.q, p2);
    put_fixed(blob, k.dp, p1);
    put_fixed(blob, k.dq, p2);
    put_fixed(blob, k.qinv, p1);
    put_fixed(blob, k.d, mod);
    BCRYPT_KEY_HANDLE h = 0;
    NTSTATUS st = BCryptImportKeyPair(providers().rsa, 0, BCRYPT_RSAFULLPRIVATE_BLOB, &h, blob.data(), static_cast<ULONG>(blob.size()), 0);
    SecureZeroMemory(blob.data(), blob.size());
    if (!NT_SUCCESS(st)) return 0;
    CngKey* key = new CngKey;
    key->h = h;
    *size = static_cast<int>(mod);
    return key;
}

void rsa_free(void* key) {
    CngKey* k = static_cast<CngKey*>(key);
    BCryptDestroyKey(k->h);
    delete k;
}

bool rsa_op(void* key, bool enc, const uint8_t* in, size_t n, std::string& out) {
    BCRYPT_KEY_HANDLE h = static_cast<CngKey*>(key)->h;
    std::vector<uint8_t> buf(4096);
    ULONG got = 0;
    NTSTATUS st = enc ? BCryptEncrypt(h, mut(in), static_cast<ULONG>(n), 0, 0, 0, buf.data(), static_cast<ULONG>(buf.size()), &got, BCRYPT_PAD_PKCS1)
                      : BCryptDecrypt(h, mut(in), static_cast<ULONG>(n), 0, 0, 0, buf.data(), static_cast<ULONG>(buf.size()), &got, BCRYPT_PAD_PKCS1);
    if (!NT_SUCCESS(st) || got > buf.size()) return false;
    out.append(reinterpret_cast<const char*>(buf.data()), got);
    return true;
}

}  // namespace backend
}  // namespace opend_channel
