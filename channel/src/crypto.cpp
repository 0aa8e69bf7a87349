// The backend-independent part: PKCS#7, the FTAES-ECB framing, RSA chunking (crypto_backend.h
// supplies the block operations).
#include "crypto.h"

#include "crypto_backend.h"

namespace opend_channel {

namespace {
const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }
bool key_ok(const std::string& key16) { return key16.size() == 16; }
}  // namespace

bool aes_cbc_encrypt(const std::string& key16, const std::string& iv16, const std::string& in, std::string& out) {
    if (!key_ok(key16) || iv16.size() != 16 || in.size() > 0x7fff0000u) return false;
    std::string padded(in);
    padded.append(16 - in.size() % 16, static_cast<char>(16 - in.size() % 16));  // PKCS#7: 1..16 bytes
    return backend::aes128(true, key16, &iv16, u8(padded), padded.size(), out);
}

bool aes_cbc_decrypt(const std::string& key16, const std::string& iv16, const std::string& in, std::string& out) {
    if (!key_ok(key16) || iv16.size() != 16 || in.empty() || in.size() % 16 != 0 || in.size() > 0x7fff0000u) return false;
    std::string dec;
    if (!backend::aes128(false, key16, &iv16, u8(in), in.size(), dec) || dec.size() != in.size()) return false;
    size_t pad = static_cast<uint8_t>(dec[dec.size() - 1]);
    if (pad == 0 || pad > 16) return false;
    for (size_t i = dec.size() - pad; i < dec.size(); ++i) {
        if (static_cast<uint8_t>(dec[i]) != pad) return false;
    }
    dec.resize(dec.size() - pad);
    out.swap(dec);
    return true;
}

bool ftaes_ecb_encrypt(const std::string& key16, const std::string& in, std::string& out) {
    if (!key_ok(key16) || in.size() > 0x7fff0000u) return false;
    size_t r = in.size() % 16;
    std::string padded(in);
    if (r) padded.append(16 - r, '\0');
    std::string enc;
    if (!padded.empty() && !backend::aes128(true, key16, 0, u8(padded), padded.size(), enc)) return false;
    enc.append(15, '\0');
    enc.push_back(static_cast<char>(r));
    out.swap(enc);
    return true;
}

bool ftaes_ecb_decrypt(const std::string& key16, const std::string& in, std::string& out) {
    if (!key_ok(key16) || in.size() < 16 || in.size() % 16 != 0) return false;
    size_t r = static_cast<uint8_t>(in[in.size() - 1]);
    if (r > 15) return false;
    size_t n = in.size() - 16;
    if (n == 0 && r != 0) return false;
    std::string dec;
    if (n > 0 && !backend::aes128(false, key16, 0, u8(in), n, dec)) return false;
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
