// Reads an RSA private key from PEM text without a crypto library (the CNG backend needs it).
#ifndef OPEND_CHANNEL_PEM_DER_H
#define OPEND_CHANNEL_PEM_DER_H

#include <stdint.h>

#include <string>
#include <vector>

namespace opend_channel {
namespace pem {

// The key's numbers, big-endian, without leading zeros; wiped when destroyed.
struct RsaNumbers {
    std::vector<uint8_t> n, e, d, p, q, dp, dq, qinv;
    ~RsaNumbers();
    void wipe();
};

// The first "RSA PRIVATE KEY" (PKCS#1) or unencrypted "PRIVATE KEY" (PKCS#8, rsaEncryption) block;
// false on anything else (then k is empty).
bool read_rsa_private_key(const std::string& text, RsaNumbers& k);

}  // namespace pem
}  // namespace opend_channel

#endif
