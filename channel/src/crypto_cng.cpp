// The crypto backend on Windows' CNG (bcrypt.dll; Wine implements it): SHA-1, AES-128 ECB/CBC
// and RSA PKCS#1 v1.5. The PEM key is read by pem_der.cpp (built everywhere, so it is fuzzed on
// Linux too) and imported as a BCRYPT_RSAFULLPRIVATE_BLOB.
#include <windows.h>
#include <bcrypt.h>

#include <string.h>

#include <vector>

#include "crypto.h"
#include "crypto_backend.h"
#include "pem_der.h"

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

bool aes128(bool enc, const std::string& key16, const std::string* iv16, uint8_t* buf, size_t n) {
    if (key16.size() != 16 || (iv16 && iv16->size() != 16) || n % 16 != 0 || n > 0x7fff0000u) return false;
    BCRYPT_ALG_HANDLE alg = iv16 ? providers().aes_cbc : providers().aes_ecb;
    BCRYPT_KEY_HANDLE key = 0;
    if (!alg || !NT_SUCCESS(BCryptGenerateSymmetricKey(alg, &key, 0, 0, mut(key16.data()), 16, 0))) return false;
    uint8_t iv[16];  // CNG updates the IV it is given: every call starts from the caller's
    if (iv16) memcpy(iv, iv16->data(), 16);
    // in place: CNG allows pbOutput to be pbInput for symmetric keys
    ULONG got = 0;
    NTSTATUS st = enc ? BCryptEncrypt(key, buf, static_cast<ULONG>(n), 0, iv16 ? iv : 0, iv16 ? 16 : 0, buf,
                                      static_cast<ULONG>(n), &got, 0)
                      : BCryptDecrypt(key, buf, static_cast<ULONG>(n), 0, iv16 ? iv : 0, iv16 ? 16 : 0, buf,
                                      static_cast<ULONG>(n), &got, 0);
    BCryptDestroyKey(key);
    return NT_SUCCESS(st) && got == n;
}

void* rsa_load(const std::string& pem, int* size) {
    pem::RsaNumbers k;
    if (!pem::read_rsa_private_key(pem, k)) return 0;
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
