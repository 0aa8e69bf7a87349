// The crypto backend on OpenSSL libcrypto 3 (everywhere but Windows).
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <string.h>

#include <vector>

#include "crypto.h"
#include "crypto_backend.h"

namespace opend_channel {

bool sha1(const void* data, size_t n, uint8_t out[20]) {
    unsigned int len = 20;
    static const char empty = 0;
    if (EVP_Digest(n ? data : &empty, n, out, &len, EVP_sha1(), 0) == 1 && len == 20) return true;
    memset(out, 0, 20);
    return false;
}

namespace backend {

bool aes128(bool enc, const std::string& key16, const std::string* iv16, uint8_t* buf, size_t n) {
    if (key16.size() != 16 || (iv16 && iv16->size() != 16) || n % 16 != 0 || n > 0x7fff0000u) return false;
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return false;
    // in place (EVP allows the input and output to be the same buffer); without padding, Final adds nothing
    int l1 = 0, l2 = 0;
    bool ok = EVP_CipherInit_ex(ctx, iv16 ? EVP_aes_128_cbc() : EVP_aes_128_ecb(), 0,
                                reinterpret_cast<const uint8_t*>(key16.data()),
                                iv16 ? reinterpret_cast<const uint8_t*>(iv16->data()) : 0, enc ? 1 : 0) == 1 &&
              EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 && EVP_CipherUpdate(ctx, buf, &l1, buf, static_cast<int>(n)) == 1 &&
              EVP_CipherFinal_ex(ctx, buf + l1, &l2) == 1 && static_cast<size_t>(l1 + l2) == n;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

void* rsa_load(const std::string& pem, int* size) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (!bio) return 0;
    // reads "RSA PRIVATE KEY" (PKCS#1) and "PRIVATE KEY" (PKCS#8) alike; no passphrase
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, 0, 0, const_cast<char*>(""));
    BIO_free(bio);
    if (!k) return 0;
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        EVP_PKEY_free(k);
        return 0;
    }
    *size = EVP_PKEY_get_size(k);
    return k;
}

void rsa_free(void* key) { EVP_PKEY_free(static_cast<EVP_PKEY*>(key)); }

bool rsa_op(void* key, bool enc, const uint8_t* in, size_t n, std::string& out) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(static_cast<EVP_PKEY*>(key), 0);
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

}  // namespace backend
}  // namespace opend_channel
