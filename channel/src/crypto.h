// Crypto for the channel: pure functions, no sockets, no threads. On OpenSSL libcrypto, on
// Windows on CNG (bcrypt); crypto_backend.h is what either provides.
#ifndef OPEND_CHANNEL_CRYPTO_H
#define OPEND_CHANNEL_CRYPTO_H

#include <stdint.h>
#include <string>

namespace opend_channel {

// false (and out all zero) when the digest cannot be computed: callers treat that as an error
bool sha1(const void* data, size_t n, uint8_t out[20]);

// Overwrites the bytes (key material) before emptying the string.
void wipe(std::string& s);

// AES-128-CBC with PKCS#7 padding (1..16 bytes); every packet starts again from the same IV.
bool aes_cbc_encrypt(const std::string& key16, const std::string& iv16, const std::string& in, std::string& out);
// The same, appended to out and encrypted there (out holds nothing else of the plaintext): reserve
// out's size plus aes_cbc_size(n) first and nothing is copied or allocated. false: out as before.
bool aes_cbc_encrypt_append(const std::string& key16, const std::string& iv16, const char* in, size_t n, std::string& out);
inline size_t aes_cbc_size(size_t n) { return n + 16 - n % 16; }
bool aes_cbc_decrypt(const std::string& key16, const std::string& iv16, const std::string& in, std::string& out);

// "FTAES-ECB": zero-pad to 16, AES-128-ECB, then a plaintext block of 15 zeros and (len % 16).
bool ftaes_ecb_encrypt(const std::string& key16, const std::string& in, std::string& out);
bool ftaes_ecb_encrypt_append(const std::string& key16, const char* in, size_t n, std::string& out);  // as CBC's
inline size_t ftaes_ecb_size(size_t n) { return (n + 15) / 16 * 16 + 16; }
// Reverse; false when the length is not a multiple of 16 (at least one block) or the tail is invalid.
bool ftaes_ecb_decrypt(const std::string& key16, const std::string& in, std::string& out);

// The one RSA key shared with OpenD (PEM, PKCS#1 or PKCS#8). Both directions encrypt with the
// public half and decrypt with the private half; PKCS#1 v1.5 padding; 100-byte plaintext chunks,
// one key-size block (128 bytes for 1024-bit keys) per chunk.
class RsaKey {
public:
    RsaKey();
    ~RsaKey();
    bool load_pem(const std::string& pem);  // false: not a usable RSA private key
    bool loaded() const { return key_ != 0; }
    void clear();
    int block_size() const;
    bool encrypt(const std::string& in, std::string& out) const;
    bool decrypt(const std::string& in, std::string& out) const;

private:
    RsaKey(const RsaKey&);
    RsaKey& operator=(const RsaKey&);
    void* key_;  // the backend's: EVP_PKEY* (OpenSSL), the CNG key (Windows)
    int size_;   // modulus bytes
};

const size_t kRsaChunk = 100;

}  // namespace opend_channel

#endif
