// The crypto backend on macOS's own libraries: CommonCrypto (libSystem) for SHA-1 and AES-128
// ECB/CBC, Security.framework's SecKey for RSA PKCS#1 v1.5. Nothing a stock Mac lacks, no OpenSSL.
// The PEM key is read by pem_der.cpp (as for CNG) and handed to SecKeyCreateWithData as PKCS#1 DER.
//
// Security.framework and CoreFoundation are declared here, not included: the few functions and
// constants used, with the types of Apple's documented prototypes (all public API, macOS 10.12 or
// newer), so the file builds the same with Apple's SDK and with zig's headers (which carry
// CommonCrypto but no frameworks). Linking from Linux uses the stubs in src/apple/ (TBD files).
#include <CommonCrypto/CommonCryptor.h>
#include <CommonCrypto/CommonDigest.h>
#include <string.h>

#include <vector>

#include "crypto.h"
#include "crypto_backend.h"
#include "pem_der.h"

extern "C" {
typedef const void* CFTypeRef;
typedef long CFIndex;
typedef unsigned char UInt8;
typedef const struct __CFAllocator* CFAllocatorRef;
typedef const struct __CFData* CFDataRef;
typedef const struct __CFString* CFStringRef;
typedef const struct __CFDictionary* CFDictionaryRef;
typedef struct __CFError* CFErrorRef;
typedef struct __SecKey* SecKeyRef;
typedef CFStringRef SecKeyAlgorithm;
struct opend_cf_dictionary_callbacks;  // CFDictionaryKeyCallBacks / ValueCallBacks: only their address is used

CFDataRef CFDataCreate(CFAllocatorRef allocator, const UInt8* bytes, CFIndex length);
const UInt8* CFDataGetBytePtr(CFDataRef data);
CFIndex CFDataGetLength(CFDataRef data);
CFDictionaryRef CFDictionaryCreate(CFAllocatorRef allocator, const void** keys, const void** values, CFIndex count,
                                   const opend_cf_dictionary_callbacks* key_callbacks,
                                   const opend_cf_dictionary_callbacks* value_callbacks);
void CFRelease(CFTypeRef cf);
extern const opend_cf_dictionary_callbacks kCFTypeDictionaryKeyCallBacks;
extern const opend_cf_dictionary_callbacks kCFTypeDictionaryValueCallBacks;

SecKeyRef SecKeyCreateWithData(CFDataRef key_data, CFDictionaryRef attributes, CFErrorRef* error);
SecKeyRef SecKeyCopyPublicKey(SecKeyRef key);
CFDataRef SecKeyCreateEncryptedData(SecKeyRef key, SecKeyAlgorithm algorithm, CFDataRef plaintext, CFErrorRef* error);
CFDataRef SecKeyCreateDecryptedData(SecKeyRef key, SecKeyAlgorithm algorithm, CFDataRef ciphertext, CFErrorRef* error);
extern const CFStringRef kSecAttrKeyType;
extern const CFStringRef kSecAttrKeyTypeRSA;
extern const CFStringRef kSecAttrKeyClass;
extern const CFStringRef kSecAttrKeyClassPrivate;
extern const SecKeyAlgorithm kSecKeyAlgorithmRSAEncryptionPKCS1;
}

namespace opend_channel {

namespace {

void zero(void* p, size_t n) {
    volatile uint8_t* b = static_cast<volatile uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) b[i] = 0;
}

void release(CFTypeRef cf) {
    if (cf) CFRelease(cf);
}

// DER: a length, then a non-negative INTEGER (a zero byte first when the top bit is set).
void der_length(std::vector<uint8_t>& out, size_t n) {
    if (n < 0x80) {
        out.push_back(static_cast<uint8_t>(n));
        return;
    }
    uint8_t b[sizeof(size_t)];
    size_t k = 0;
    for (; n; n >>= 8) b[k++] = static_cast<uint8_t>(n & 0xff);
    out.push_back(static_cast<uint8_t>(0x80 | k));
    while (k) out.push_back(b[--k]);
}

void der_integer(std::vector<uint8_t>& out, const std::vector<uint8_t>& v) {
    const bool lead = v.empty() || (v[0] & 0x80);
    out.push_back(0x02);
    der_length(out, v.size() + (lead ? 1 : 0));
    if (lead) out.push_back(0);
    out.insert(out.end(), v.begin(), v.end());
}

// RSAPrivateKey ::= SEQUENCE { 0, n, e, d, p, q, dp, dq, qinv }: what SecKeyCreateWithData reads for RSA.
void pkcs1_der(const pem::RsaNumbers& k, std::vector<uint8_t>& der) {
    std::vector<uint8_t> body;
    body.reserve(k.n.size() * 5);
    der_integer(body, std::vector<uint8_t>());
    const std::vector<uint8_t>* all[] = {&k.n, &k.e, &k.d, &k.p, &k.q, &k.dp, &k.dq, &k.qinv};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); ++i) der_integer(body, *all[i]);
    der.clear();
    der.push_back(0x30);
    der_length(der, body.size());
    der.insert(der.end(), body.begin(), body.end());
    zero(body.data(), body.size());
}

struct AppleKey {
    SecKeyRef priv, pub;
};

}  // namespace

bool sha1(const void* data, size_t n, uint8_t out[20]) {
    CC_SHA1_CTX c;
    bool ok = CC_SHA1_Init(&c) == 1;
    const uint8_t* p = static_cast<const uint8_t*>(data);
    while (ok && n > 0) {  // CC_LONG is 32 bits
        CC_LONG k = n > 0x40000000u ? 0x40000000u : static_cast<CC_LONG>(n);
        ok = CC_SHA1_Update(&c, p, k) == 1;
        p += k;
        n -= k;
    }
    if (!ok || CC_SHA1_Final(out, &c) != 1) {
        memset(out, 0, 20);
        ok = false;
    }
    zero(&c, sizeof(c));
    return ok;
}

namespace backend {

bool aes128(bool enc, const std::string& key16, const std::string* iv16, uint8_t* buf, size_t n) {
    if (key16.size() != 16 || (iv16 && iv16->size() != 16) || n % 16 != 0 || n > 0x7fff0000u) return false;
    CCCryptorRef c = 0;
    if (CCCryptorCreate(enc ? kCCEncrypt : kCCDecrypt, kCCAlgorithmAES128, iv16 ? 0 : kCCOptionECBMode, key16.data(), 16,
                        iv16 ? iv16->data() : 0, &c) != kCCSuccess)
        return false;
    // CommonCrypto does not work in place for ECB and CBC: through a small scratch buffer, written
    // back behind the read position (what comes out never passes what went in)
    uint8_t scratch[4096];
    size_t in = 0, put = 0;
    bool ok = true;
    while (ok && in < n) {
        size_t k = n - in < sizeof(scratch) ? n - in : sizeof(scratch), moved = 0;
        ok = CCCryptorUpdate(c, buf + in, k, scratch, sizeof(scratch), &moved) == kCCSuccess && put + moved <= in + k;
        if (ok) memcpy(buf + put, scratch, moved);
        in += k;
        put += ok ? moved : 0;
    }
    size_t last = 0;
    ok = ok && CCCryptorFinal(c, scratch, sizeof(scratch), &last) == kCCSuccess && put + last == n;
    if (ok) memcpy(buf + put, scratch, last);
    zero(scratch, sizeof(scratch));
    CCCryptorRelease(c);
    return ok;
}

void* rsa_load(const std::string& pem, int* size) {
    pem::RsaNumbers k;
    if (!pem::read_rsa_private_key(pem, k)) return 0;
    const size_t mod = k.n.size();
    if (mod < 64 || mod > 2048) return 0;
    std::vector<uint8_t> der;
    pkcs1_der(k, der);
    CFDataRef data = CFDataCreate(0, der.data(), static_cast<CFIndex>(der.size()));
    zero(der.data(), der.size());
    if (!data) return 0;
    const void* keys[] = {kSecAttrKeyType, kSecAttrKeyClass};
    const void* values[] = {kSecAttrKeyTypeRSA, kSecAttrKeyClassPrivate};
    CFDictionaryRef attrs = CFDictionaryCreate(0, keys, values, 2, &kCFTypeDictionaryKeyCallBacks, &kCFTypeDictionaryValueCallBacks);
    CFErrorRef err = 0;
    SecKeyRef priv = attrs ? SecKeyCreateWithData(data, attrs, &err) : 0;
    release(err);
    release(attrs);
    release(data);  // CFData copied the DER; it is freed (not wiped) here, as OpenSSL's BIO copy is
    SecKeyRef pub = priv ? SecKeyCopyPublicKey(priv) : 0;
    if (!pub) {
        release(priv);
        return 0;
    }
    AppleKey* key = new AppleKey;
    key->priv = priv;
    key->pub = pub;
    *size = static_cast<int>(mod);
    return key;
}

void rsa_free(void* key) {
    AppleKey* k = static_cast<AppleKey*>(key);
    release(k->pub);
    release(k->priv);
    delete k;
}

bool rsa_op(void* key, bool enc, const uint8_t* in, size_t n, std::string& out) {
    const AppleKey* k = static_cast<const AppleKey*>(key);
    CFDataRef data = CFDataCreate(0, in, static_cast<CFIndex>(n));
    if (!data) return false;
    CFErrorRef err = 0;
    CFDataRef res = enc ? SecKeyCreateEncryptedData(k->pub, kSecKeyAlgorithmRSAEncryptionPKCS1, data, &err)
                        : SecKeyCreateDecryptedData(k->priv, kSecKeyAlgorithmRSAEncryptionPKCS1, data, &err);
    release(err);
    release(data);
    if (!res) return false;
    const CFIndex len = CFDataGetLength(res);
    bool ok = len >= 0;
    if (ok) out.append(reinterpret_cast<const char*>(CFDataGetBytePtr(res)), static_cast<size_t>(len));
    release(res);
    return ok;
}

}  // namespace backend
}  // namespace opend_channel
