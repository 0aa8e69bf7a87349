// What a crypto backend provides to crypto.cpp: OpenSSL libcrypto (crypto_openssl.cpp) or, on
// Windows, CNG (crypto_cng.cpp). crypto.cpp does the padding, framing and chunking on top.
#ifndef OPEND_CHANNEL_CRYPTO_BACKEND_H
#define OPEND_CHANNEL_CRYPTO_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <string>

namespace opend_channel {
namespace backend {

// AES-128 over whole blocks (n a multiple of 16), no padding, in place: CBC from iv16, ECB when iv16
// is null. On failure buf's contents are undefined.
bool aes128(bool enc, const std::string& key16, const std::string* iv16, uint8_t* buf, size_t n);

// An RSA private key from PEM (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY", no passphrase);
// null when there is none. *size: the modulus in bytes.
void* rsa_load(const std::string& pem, int* size);
void rsa_free(void* key);
// One PKCS#1 v1.5 operation (encrypt with the public half, decrypt with the private); appends to out.
bool rsa_op(void* key, bool enc, const uint8_t* in, size_t n, std::string& out);

}  // namespace backend
}  // namespace opend_channel

#endif
