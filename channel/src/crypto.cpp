#include "crypto.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <string.h>

#include <vector>

namespace opend_channel {

void sha1(const void* data, size_t n, uint8_t out[20]) {
    unsigned int len = 20;
    static const char empty = 0;
    if (!EVP_Digest(n ? data : &empty, n, out, &len, EVP_sha1(), 0)) memset(out, 0, 20);
}

namespace {
bool aes_run(const EVP_CIPHER* cipher, bool enc, bool padding, const std::string& key16, const std::string* iv16,
             const uint8_t* in, size_t n, std::string& out) {
    if (key16.size() != 16 || (iv16 && iv16->size() != 16)) return false;
    if (n > 0x7fff0000u) return false;
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return false;
    bool ok = false;
    std::vector<uint8_t> buf(n + 32);
    int l1 = 0, l2 = 0;
    if (EVP_CipherInit_ex(ctx, cipher, 0, reinterpret_cast<const uint8_t*>(key16.data()),
                          iv16 ? reinterpret_cast<const uint8_t*>(iv16->data()) : 0, enc ? 1 : 0) == 1 &&
        EVP_CIPHER_CTX_set_padding(ctx, padding ? 1 : 0) == 1 &&
        EVP_CipherUpdate(ctx, buf.data(), &l1, in, static_cast<int>(n)) == 1 &&
        EVP_CipherFinal_ex(ctx, buf.data() + l1, &l2) == 1) {
        out.assign(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(l1 + l2));
        ok = true;
    }
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}
const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
}  // namespace

bool aes_cbc_encrypt(const std::string& key16, const std::string& iv16, const std::string& in, std::string& out) {
    return aes_run(EVP_aes_128_cbc(), true, true, key16, &iv16, u8(in), in.size(), out);
}

bool aes_cbc_decrypt(const std::string& key16, const std::string& iv16, const std::string& in, std::string& out) {
    if (in.empty() || in.size() % 16 != 0) return false;
    return aes_run(EVP_aes_128_cbc(), false, true, key16, &iv16, u8(in), in.size(), out);
}

bool ftaes_ecb_encrypt(const std::string& key16, const std::string& in, std::string& out) {
    size_t r = in.size() % 16;
    std::string padded(in);
    if (r) padded.append(16 - r, '\0');
    std::string enc;
    if (!aes_run(EVP_aes_128_ecb(), true, false, key16, 0, u8(padded), padded.size(), enc)) return false;
    enc.append(15, '\0');
    enc.push_back(static_cast<char>(r));
    out.swap(enc);
    return true;
}

bool ftaes_ecb_decrypt(const std::string& key16, const std::string& in, std::string& out) {
    if (in.size() < 16 || in.size() % 16 != 0) return false;
    size_t r = static_cast<uint8_t>(in[in.size() - 1]);
    if (r > 15) return false;
    size_t n = in.size() - 16;
    if (n == 0 && r != 0) return false;
    std::string dec;
    if (n > 0 && !aes_run(EVP_aes_128_ecb(), false, false, key16, 0, u8(in), n, dec)) return false;
    if (r != 0) dec.resize(dec.size() - (16 - r));
    out.swap(dec);
    return true;
}

RsaKey::RsaKey() : pkey_(0) {}
RsaKey::~RsaKey() { clear(); }

void RsaKey::clear() {
    if (pkey_) EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
    pkey_ = 0;
}

bool RsaKey::load_pem(const std::string& pem) {
    clear();
    if (pem.empty() || pem.size() > 1000000) return false;
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (!bio) return false;
    // reads "RSA PRIVATE KEY" (PKCS#1) and "PRIVATE KEY" (PKCS#8) alike; no passphrase
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, 0, 0, const_cast<char*>(""));
    BIO_free(bio);
    if (!k) return false;
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA || EVP_PKEY_get_size(k) < static_cast<int>(kRsaChunk) + 11) {
        EVP_PKEY_free(k);
        return false;
    }
    pkey_ = k;
    return true;
}

int RsaKey::block_size() const { return pkey_ ? EVP_PKEY_get_size(static_cast<EVP_PKEY*>(pkey_)) : 0; }

namespace {
bool rsa_op(EVP_PKEY* k, bool enc, const uint8_t* in, size_t n, std::string& out) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(k, 0);
    if (!ctx) return false;
    bool ok = false;
    if ((enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1) {
        size_t outlen = 0;
        int r = enc ? EVP_PKEY_encrypt(ctx, 0, &outlen, in, n) : EVP_PKEY_decrypt(ctx, 0, &outlen, in, n);
        if (r == 1) {
            std::vector<uint8_t> buf(outlen + 1);
            r = enc ? EVP_PKEY_encrypt(ctx, buf.data(), &outlen, in, n) : EVP_PKEY_decrypt(ctx, buf.data(), &outlen, in, n);
            if (r == 1) {
                out.append(reinterpret_cast<const char*>(buf.data()), outlen);
                ok = true;
            }
        }
    }
    EVP_PKEY_CTX_free(ctx);
    return ok;
}
}  // namespace

bool RsaKey::encrypt(const std::string& in, std::string& out) const {
    if (!pkey_) return false;
    std::string res;
    for (size_t i = 0; i < in.size(); i += kRsaChunk) {
        size_t n = in.size() - i < kRsaChunk ? in.size() - i : kRsaChunk;
        if (!rsa_op(static_cast<EVP_PKEY*>(pkey_), true, u8(in) + i, n, res)) return false;
    }
    out.swap(res);
    return true;
}

bool RsaKey::decrypt(const std::string& in, std::string& out) const {
    if (!pkey_) return false;
    size_t bs = static_cast<size_t>(block_size());
    if (bs == 0 || in.size() % bs != 0) return false;
    std::string res;
    for (size_t i = 0; i < in.size(); i += bs) {
        if (!rsa_op(static_cast<EVP_PKEY*>(pkey_), false, u8(in) + i, bs, res)) return false;
    }
    out.swap(res);
    return true;
}

}  // namespace opend_channel
