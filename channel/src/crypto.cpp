// The backend-independent part: PKCS#7, the FTAES-ECB framing, RSA chunking (crypto_backend.h
// supplies the block operations).
#include "crypto.h"

#include <stddef.h>

#include <algorithm>

#include "crypto_backend.h"

namespace opend_channel {

namespace {
const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
uint8_t* at(std::string& s, size_t i) { return reinterpret_cast<uint8_t*>(&s[0]) + i; }
bool key_ok(const std::string& key16) { return key16.size() == 16; }
}  // namespace

bool aes_cbc_encrypt_append(const std::string& key16, const std::string& iv16, const char* in, size_t n, std::string& out) {
    if (!key_ok(key16) || iv16.size() != 16 || n > 0x7fff0000u) return false;
    const size_t start = out.size(), pad = 16 - n % 16;  // PKCS#7: 1..16 bytes
    out.append(in, n);
    out.append(pad, static_cast<char>(pad));
    if (backend::aes128(true, key16, &iv16, at(out, start), n + pad)) return true;
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(start), out.end(), '\0');  // the plaintext copy
    out.resize(start);
    return false;
}

bool aes_cbc_encrypt(const std::string& key16, const std::string& iv16, const std::string& in, std::string& out) {
    std::string enc;
    enc.reserve(aes_cbc_size(in.size()));
    if (!aes_cbc_encrypt_append(key16, iv16, in.data(), in.size(), enc)) return false;
    out.swap(enc);
    return true;
}

bool aes_cbc_decrypt(const std::string& key16, const std::string& iv16, const std::string& in, std::string& out) {
    if (!key_ok(key16) || iv16.size() != 16 || in.empty() || in.size() % 16 != 0 || in.size() > 0x7fff0000u) return false;
    std::string dec(in);
    if (!backend::aes128(false, key16, &iv16, at(dec, 0), dec.size())) return false;
    size_t pad = static_cast<uint8_t>(dec[dec.size() - 1]);
    if (pad == 0 || pad > 16) return false;
    for (size_t i = dec.size() - pad; i < dec.size(); ++i) {
        if (static_cast<uint8_t>(dec[i]) != pad) return false;
    }
    dec.resize(dec.size() - pad);
    out.swap(dec);
    return true;
}

bool ftaes_ecb_encrypt_append(const std::string& key16, const char* in, size_t n, std::string& out) {
    if (!key_ok(key16) || n > 0x7fff0000u) return false;
    const size_t start = out.size(), r = n % 16, blocks = ftaes_ecb_size(n) - 16;
    out.append(in, n);
    out.append(blocks - n, '\0');  // zero padding to whole blocks
    if (blocks > 0 && !backend::aes128(true, key16, 0, at(out, start), blocks)) {
        std::fill(out.begin() + static_cast<std::ptrdiff_t>(start), out.end(), '\0');  // the plaintext copy
        out.resize(start);
        return false;
    }
    out.append(15, '\0');
    out.push_back(static_cast<char>(r));
    return true;
}

bool ftaes_ecb_encrypt(const std::string& key16, const std::string& in, std::string& out) {
    std::string enc;
    enc.reserve(ftaes_ecb_size(in.size()));
    if (!ftaes_ecb_encrypt_append(key16, in.data(), in.size(), enc)) return false;
    out.swap(enc);
    return true;
}

bool ftaes_ecb_decrypt(const std::string& key16, const std::string& in, std::string& out) {
    if (!key_ok(key16) || in.size() < 16 || in.size() % 16 != 0) return false;
    size_t r = static_cast<uint8_t>(in[in.size() - 1]);
    if (r > 15) return false;
    size_t n = in.size() - 16;
    if (n == 0 && r != 0) return false;
    std::string dec(in, 0, n);
    if (n > 0 && !backend::aes128(false, key16, 0, at(dec, 0), n)) return false;
    if (r != 0) dec.resize(dec.size() - (16 - r));
    out.swap(dec);
    return true;
}

void wipe(std::string& s) {
    if (!s.empty()) {
        volatile char* p = &s[0];
        for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
    }
    s.clear();
}

RsaKey::RsaKey() : key_(0), size_(0) {}
RsaKey::~RsaKey() { clear(); }

void RsaKey::clear() {
    if (key_) backend::rsa_free(key_);
    key_ = 0;
    size_ = 0;
}

bool RsaKey::load_pem(const std::string& pem) {
    clear();
    if (pem.empty() || pem.size() > 1000000) return false;
    int size = 0;
    void* k = backend::rsa_load(pem, &size);
    if (!k) return false;
    if (size < static_cast<int>(kRsaChunk) + 11) {  // a 100-byte chunk must fit with PKCS#1 v1.5 padding
        backend::rsa_free(k);
        return false;
    }
    key_ = k;
    size_ = size;
    return true;
}

int RsaKey::block_size() const { return key_ ? size_ : 0; }

bool RsaKey::encrypt(const std::string& in, std::string& out) const {
    if (!key_) return false;
    std::string res;
    for (size_t i = 0; i < in.size(); i += kRsaChunk) {
        size_t n = in.size() - i < kRsaChunk ? in.size() - i : kRsaChunk;
        if (!backend::rsa_op(key_, true, u8(in) + i, n, res)) return false;
    }
    out.swap(res);
    return true;
}

bool RsaKey::decrypt(const std::string& in, std::string& out) const {
    if (!key_) return false;
    size_t bs = static_cast<size_t>(block_size());
    if (bs == 0 || in.size() % bs != 0) return false;
    std::string res;
    for (size_t i = 0; i < in.size(); i += bs) {
        if (!backend::rsa_op(key_, false, u8(in) + i, bs, res)) return false;
    }
    out.swap(res);
    return true;
}

}  // namespace opend_channel
