// Unit tests over the pure parts: framing, reassembly, AES modes, RSA, the protobuf mini-codec.
//   channel_unit [PKCS1.pem PKCS8.pem]   RSA keys (1024-bit) to test with; without them OpenSSL
//                                        makes two (Windows, whose backend is CNG: RSA is skipped)
#ifndef _WIN32
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#endif
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include "crypto.h"
#include "read_file.h"
#include "wire.h"

using namespace opend_channel;

static int g_checks = 0, g_failures = 0;
#define CHECK(cond)                                                         \
    do {                                                                    \
        ++g_checks;                                                         \
        if (!(cond)) {                                                      \
            ++g_failures;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                   \
    } while (0)

static std::string bytes(size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131u + seed * 7u + 3u) & 0xff);
    return s;
}

static std::string frame(uint32_t proto, uint32_t serial, const std::string& body) {
    uint8_t d[20];
    sha1(body.data(), body.size(), d);
    FTAPI_ProtoHeader h = make_header(proto, 0, serial, static_cast<uint32_t>(body.size()), d);
    uint8_t hb[kHeaderSize];
    pack_header(h, hb);
    return std::string(reinterpret_cast<char*>(hb), kHeaderSize) + body;
}

static void test_header() {
    CHECK(sizeof(FTAPI_ProtoHeader) == 44);
    uint8_t d[20];
    for (int i = 0; i < 20; ++i) d[i] = static_cast<uint8_t>(i + 1);
    FTAPI_ProtoHeader h = make_header(0x01020304u, 7, 0xa0b0c0d0u, 0x11223344u, d);
    uint8_t b[kHeaderSize];
    pack_header(h, b);
    const uint8_t want_start[16] = {'F', 'T', 4, 3, 2, 1, 0, 7, 0xd0, 0xc0, 0xb0, 0xa0, 0x44, 0x33, 0x22, 0x11};
    CHECK(memcmp(b, want_start, 16) == 0);
    CHECK(memcmp(b + 16, d, 20) == 0);
    static const uint8_t zero8[8] = {0};
    CHECK(memcmp(b + 36, zero8, 8) == 0);
    FTAPI_ProtoHeader p;
    CHECK(parse_header(b, p, 0xffffffffu) == kHeaderOk);
    CHECK(p.nProtoID == 0x01020304u && p.nProtoVer == 7 && p.nSerialNo == 0xa0b0c0d0u && p.nBodyLen == 0x11223344u);
    CHECK(memcmp(p.arrBodySHA1, d, 20) == 0);
    // bodyLen cap
    CHECK(parse_header(b, p) == kHeaderTooLong);
    h.nBodyLen = kMaxBodyLen;
    pack_header(h, b);
    CHECK(parse_header(b, p) == kHeaderOk);
    h.nBodyLen = kMaxBodyLen + 1;
    pack_header(h, b);
    CHECK(parse_header(b, p) == kHeaderTooLong);
    // magic
    b[0] = 'X';
    CHECK(parse_header(b, p) == kHeaderBadMagic);
}

static void test_reassembly() {
    std::vector<std::string> bodies;
    bodies.push_back("");
    bodies.push_back("a");
    bodies.push_back(bytes(100, 1));
    bodies.push_back(bytes(3000, 2));
    bodies.push_back("");
    std::string stream;
    for (size_t i = 0; i < bodies.size(); ++i) stream += frame(3000 + static_cast<uint32_t>(i), static_cast<uint32_t>(i + 1), bodies[i]);

    // one split at every offset
    int bad = 0;
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
        Reassembler r;
        std::vector<Packet> got;
        r.feed(stream.data(), cut);
        Packet p;
        for (int k = 0; k < 100 && r.next(p) == Reassembler::kPacket; ++k) got.push_back(p);
        r.feed(stream.data() + cut, stream.size() - cut);
        for (int k = 0; k < 100 && r.next(p) == Reassembler::kPacket; ++k) got.push_back(p);
        bool ok = got.size() == bodies.size() && r.buffered() == 0;
        for (size_t i = 0; ok && i < got.size(); ++i)
            ok = got[i].body == bodies[i] && got[i].header.nSerialNo == i + 1 && got[i].header.nProtoID == 3000 + i;
        if (!ok) ++bad;
    }
    CHECK(bad == 0);

    // byte by byte
    {
        Reassembler r;
        size_t n = 0;
        Packet p;
        for (size_t i = 0; i < stream.size(); ++i) {
            r.feed(stream.data() + i, 1);
            for (int k = 0; k < 10 && r.next(p) == Reassembler::kPacket; ++k) {
                CHECK(n < bodies.size() && p.body == bodies[n]);
                ++n;
            }
        }
        CHECK(n == bodies.size());
    }
    // an empty-body packet is complete at exactly 44 bytes
    {
        Reassembler r;
        std::string f = frame(1, 1, "");
        r.feed(f.data(), f.size());
        Packet p;
        CHECK(r.next(p) == Reassembler::kPacket && p.body.empty());
        CHECK(r.next(p) == Reassembler::kNeedMore);
    }
    // garbage: wrong magic is an error, and stays one
    {
        Reassembler r;
        std::string g = bytes(200, 9);
        g[0] = 'G';
        r.feed(g.data(), g.size());
        Packet p;
        CHECK(r.next(p) == Reassembler::kError);
        std::string f = frame(1, 1, "x");
        r.feed(f.data(), f.size());
        CHECK(r.next(p) == Reassembler::kError);
    }
    // garbage after a good packet
    {
        Reassembler r;
        std::string s = frame(1, 1, "ok") + "HTTP/1.1 400 Bad Request\r\n\r\n" + std::string(40, 'z');
        r.feed(s.data(), s.size());
        Packet p;
        CHECK(r.next(p) == Reassembler::kPacket && p.body == "ok");
        CHECK(r.next(p) == Reassembler::kError);
    }
    // oversized bodyLen is an error before any body arrives
    {
        Reassembler r;
        uint8_t d[20] = {0};
        FTAPI_ProtoHeader h = make_header(1, 0, 1, kMaxBodyLen + 1, d);
        uint8_t hb[kHeaderSize];
        pack_header(h, hb);
        r.feed(hb, kHeaderSize);
        Packet p;
        CHECK(r.next(p) == Reassembler::kError);
    }
    // small cap honoured
    {
        Reassembler r(10);
        std::string f = frame(1, 1, bytes(11, 1));
        r.feed(f.data(), f.size());
        Packet p;
        CHECK(r.next(p) == Reassembler::kError);
    }
}

static void test_aes() {
    const std::string key = "0123456789abcdef", iv = "fedcba9876543210";
    const size_t lens[] = {0, 1, 15, 16, 17, 31, 32, 100, 1000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); ++i) {
        std::string in = bytes(lens[i], static_cast<unsigned>(i)), enc, dec;
        CHECK(aes_cbc_encrypt(key, iv, in, enc));
        CHECK(enc.size() == (lens[i] / 16 + 1) * 16);  // PKCS#7 adds 1..16 bytes
        CHECK(aes_cbc_decrypt(key, iv, enc, dec) && dec == in);
        // appended after a header and encrypted there: the same bytes, in the buffer reserved for them
        std::string pkt("HDR");
        pkt.reserve(3 + aes_cbc_size(in.size()));
        const char* base = pkt.data();
        CHECK(aes_cbc_encrypt_append(key, iv, in.data(), in.size(), pkt));
        CHECK(pkt.data() == base && pkt.compare(0, 3, "HDR") == 0 && pkt.compare(3, std::string::npos, enc) == 0);
        CHECK(ftaes_ecb_encrypt(key, in, enc));
        CHECK(enc.size() == (lens[i] + 15) / 16 * 16 + 16);
        pkt = "HDR";
        pkt.reserve(3 + ftaes_ecb_size(in.size()));
        base = pkt.data();
        CHECK(ftaes_ecb_encrypt_append(key, in.data(), in.size(), pkt));
        CHECK(pkt.data() == base && pkt.compare(0, 3, "HDR") == 0 && pkt.compare(3, std::string::npos, enc) == 0);
        CHECK(enc[enc.size() - 1] == static_cast<char>(lens[i] % 16));
        CHECK(enc.substr(enc.size() - 16, 15) == std::string(15, '\0'));
        CHECK(ftaes_ecb_decrypt(key, enc, dec) && dec == in);
    }
    std::string out;
    CHECK(!aes_cbc_encrypt("short", iv, "x", out));
    out = "HDR";
    CHECK(!aes_cbc_encrypt_append("short", iv, "x", 1, out) && out == "HDR");  // a failure leaves out as it was
    CHECK(!aes_cbc_decrypt(key, iv, "", out));
    CHECK(!aes_cbc_decrypt(key, iv, std::string(17, 'a'), out));
    CHECK(!aes_cbc_decrypt(key, iv, std::string(32, 'a'), out) || out.size() <= 31);  // bad padding
    CHECK(!ftaes_ecb_decrypt(key, std::string(15, 'a'), out));
    CHECK(!ftaes_ecb_decrypt(key, std::string(16, '\0') + std::string(15, '\0') + "\x20", out));
    // ECB of the empty string is the tail block alone
    CHECK(ftaes_ecb_encrypt(key, "", out) && out == std::string(16, '\0'));
    CHECK(ftaes_ecb_decrypt(key, std::string(16, '\0'), out) && out.empty());
    // known answer: FIPS-197 AES-128 vector through the ECB mode (16 bytes -> tail byte 0)
    const uint8_t k197[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                              0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    const uint8_t p197[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                              0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    const uint8_t c197[16] = {0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30,
                              0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a};
    CHECK(ftaes_ecb_encrypt(std::string(reinterpret_cast<const char*>(k197), 16),
                            std::string(reinterpret_cast<const char*>(p197), 16), out));
    CHECK(out.size() == 32 && memcmp(out.data(), c197, 16) == 0);
}

static void test_sha1() {
    uint8_t d[20];
    sha1("abc", 3, d);
    const uint8_t want[20] = {0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e,
                              0x25, 0x71, 0x78, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d};
    CHECK(memcmp(d, want, 20) == 0);
    sha1(0, 0, d);
    const uint8_t empty[20] = {0xda, 0x39, 0xa3, 0xee, 0x5e, 0x6b, 0x4b, 0x0d, 0x32, 0x55,
                               0xbf, 0xef, 0x95, 0x60, 0x18, 0x90, 0xaf, 0xd8, 0x07, 0x09};
    CHECK(memcmp(d, empty, 20) == 0);
}

#ifndef _WIN32
static std::string make_pem(bool pkcs1) {
    EVP_PKEY* k = EVP_RSA_gen(1024);
    if (!k) return "";
    BIO* b = BIO_new(BIO_s_mem());
    int ok = pkcs1 ? PEM_write_bio_PrivateKey_traditional(b, k, 0, 0, 0, 0, 0)
                   : PEM_write_bio_PrivateKey(b, k, 0, 0, 0, 0, 0);
    std::string pem;
    if (ok) {
        char* p = 0;
        long n = BIO_get_mem_data(b, &p);
        pem.assign(p, static_cast<size_t>(n));
    }
    BIO_free(b);
    EVP_PKEY_free(k);
    return pem;
}
#endif

static void test_rsa(char** pem_files) {
    for (int form = 0; form < 2; ++form) {
        std::string pem;
        if (pem_files) {
            CHECK(read_file(pem_files[form], pem));
        } else {
#ifdef _WIN32
            printf("channel_unit: RSA not tested (give channel_unit PKCS1.pem PKCS8.pem)\n");
            return;
#else
            pem = make_pem(form == 0);
#endif
        }
        CHECK(pem.find(form == 0 ? "BEGIN RSA PRIVATE KEY" : "BEGIN PRIVATE KEY") != std::string::npos);
        RsaKey k;
        CHECK(k.load_pem(pem));
        CHECK(k.block_size() == 128);
        const size_t lens[] = {1, 99, 100, 101, 250};
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); ++i) {
            std::string in = bytes(lens[i], 5), enc, dec;
            CHECK(k.encrypt(in, enc));
            CHECK(enc.size() == (lens[i] + 99) / 100 * 128);
            CHECK(k.decrypt(enc, dec) && dec == in);
        }
        std::string out;
        CHECK(!k.decrypt(std::string(127, 'x'), out));
        // another PEM block first is skipped; a key cut short, or under a passphrase, does not load
        RsaKey after;
        CHECK(after.load_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + pem) && after.block_size() == 128);
        size_t body = pem.find('\n') + 1;
        std::string cut = pem.substr(0, body + (pem.size() - body) / 2) + pem.substr(pem.find("-----END"));
        CHECK(!after.load_pem(cut) && !after.loaded());
        std::string locked = pem.substr(0, body) + "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n" + pem.substr(body);
        CHECK(!after.load_pem(locked));
    }
    RsaKey bad;
    CHECK(!bad.load_pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"));
    CHECK(!bad.load_pem(""));
    CHECK(!bad.loaded());
}

static void test_pb() {
    InitConnectC2S c;
    c.client_ver = 300;
    c.client_id = "PyNormal";
    c.recv_notify = true;
    c.packet_enc_algo = -1;
    c.push_proto_fmt = 0;
    c.programming_language = "C++";
    std::string req = encode_init_connect_request(c);
    // Request{1: C2S{1:300, 2:"PyNormal", 3:1, 4:-1 (10-byte varint), 5:0, 6:"C++"}}
    const char inner[] = "\x08\xac\x02\x12\x08PyNormal\x18\x01\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x28\x00\x32\x03" "C++";
    std::string want = std::string("\x0a", 1) + static_cast<char>(sizeof(inner) - 1) + std::string(inner, sizeof(inner) - 1);
    CHECK(req == want);

    // decode a Response with every field, an unknown field and a fixed32 in between
    PbWriter s2c;
    s2c.int32_field(1, 901);
    s2c.varint_field(2, 1234567890123ull);
    s2c.varint_field(3, 7000000000000000001ull);
    s2c.bytes_field(4, "0123456789ABCDEF");
    s2c.int32_field(5, 10);
    s2c.bytes_field(6, "iviviviviviviviv");
    s2c.int32_field(99, 5);
    PbWriter rsp;
    rsp.int32_field(1, 0);
    rsp.bytes_field(2, "ok");
    rsp.int32_field(3, 0);
    rsp.bytes_field(4, s2c.str());
    std::string body = rsp.str() + std::string("\x2d\x01\x02\x03\x04", 5);  // field 5 fixed32, unknown
    InitConnectResponse r;
    CHECK(decode_init_connect_response(body.data(), body.size(), r));
    CHECK(r.ret_type == 0 && r.ret_msg == "ok" && r.s2c.has_s2c);
    CHECK(r.s2c.server_ver == 901 && r.s2c.login_user_id == 1234567890123ull);
    CHECK(r.s2c.conn_id == 7000000000000000001ull && r.s2c.conn_aes_key == "0123456789ABCDEF");
    CHECK(r.s2c.keep_alive_interval == 10 && r.s2c.has_aes_cbc_iv && r.s2c.aes_cbc_iv == "iviviviviviviviv");

    // defaults: empty body -> retType -400, no s2c
    CHECK(decode_init_connect_response("", 0, r));
    CHECK(r.ret_type == -400 && !r.s2c.has_s2c);
    // rejected: negative retType and a message
    PbWriter rej;
    rej.int32_field(1, -1);
    rej.bytes_field(2, "no");
    CHECK(decode_init_connect_response(rej.str().data(), rej.str().size(), r) && r.ret_type == -1 && r.ret_msg == "no");
    // malformed: truncated length, truncated varint, group wire type
    CHECK(!decode_init_connect_response("\x12\x05" "ab", 4, r));
    CHECK(!decode_init_connect_response("\x08\xff", 2, r));
    CHECK(!decode_init_connect_response("\x0b", 1, r));
    CHECK(!decode_init_connect_response("\x22\x03\x12\x09x", 5, r));  // bad nested s2c

    std::string ka = encode_keepalive_request(1700000000);
    CHECK(ka == std::string("\x0a\x06\x08\x80\xe2\xcf\xaa\x06", 8));
}

int main(int argc, char** argv) {
    test_header();
    test_reassembly();
    test_sha1();
    test_aes();
    test_rsa(argc == 3 ? argv + 1 : 0);
    test_pb();
    if (g_failures) {
        printf("channel_unit: %d of %d checks FAILED\n", g_failures, g_checks);
        return 1;
    }
    printf("channel_unit: all %d checks passed\n", g_checks);
    return 0;
}
