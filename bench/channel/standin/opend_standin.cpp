// A stand-in OpenD in C++ for the channel bench: a loopback TCP server speaking the OpenD wire
// protocol (facts in ../README.md), so that the clients measured against it, not the server, set
// the numbers. Written by us from the protocol facts; the few protobuf messages are encoded by hand.
//
//   opend_standin [--host 127.0.0.1|::1] [--port 0] [--rsa-key PEM_FILE] [--aes cbc|ecb]
//                 [--push-notify] [--push-burst M] [--max-conns N] [--lifetime S] [--log FILE]
//
// The command line and the log follow tests/opend_standin.py (without its faults): one line
// "port=<N>" on stdout, then it serves until N connections (default 4) have come and gone or S
// seconds (default 60) have passed, and exits 0; bad arguments exit 2 with one line on stderr.
// --log FILE gets one JSON object per connection when it ends: what came in, what went out, the
// InitConnect fields, errors, how it ended, each push burst, and for the requests after InitConnect
// the server's own cost: "work_us" from a request's last byte read to its reply built (decrypt,
// check, encode, encrypt, hash), "service_us" to the reply written (the write includes the kernel's
// loopback delivery to the client); n, p50, p99, max.
//
// Answers InitConnect (1001; plain, or RSA-encrypted with the key of --rsa-key, then AES-CBC or
// FTAES-ECB bodies), GetGlobalState (1002), KeepAlive (1004), Qot_Sub (3001: a reply, one
// Qot_UpdateBasicQot 3005 push per subscribing request, then --push-burst M more); any other
// protoID gets a Response with retType -1. --push-notify: a Notify (1003) after the InitConnect
// reply and after every GetGlobalState reply. Every size from the wire is checked: a bodyLen over
// 16 MiB, a header not starting "FT", a body that does not match its SHA-1, or a body that does not
// decrypt closes the connection. Loopback only; every wait is bounded by the lifetime.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

typedef std::chrono::steady_clock Clock;

const uint32_t kInitConnect = 1001, kGetGlobalState = 1002, kNotify = 1003, kKeepAlive = 1004;
const uint32_t kQotSub = 3001, kQotUpdateBasicQot = 3005;
const int kEncFtaesEcb = 0, kEncNone = -1, kEncAesCbc = 2;  // Common.PacketEncAlgo
const size_t kHeaderLen = 44;
const uint32_t kMaxBody = 16u << 20;  // a larger bodyLen from a client is a protocol error
const size_t kRsaChunk = 100;         // plaintext bytes per RSA block, as the vendor's clients
const size_t kMaxRecords = 1000000;   // packets and replies listed per connection; more are counted
const int kServerVer = 1001, kServerBuildNo = 7108, kKeepAliveInterval = 10;
const uint64_t kLoginUserId = 20261201;
const char kNotifyDesc[] = "stand-in notify";

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string rsa_key_file;
  bool cbc = true;
  bool push_notify = false;
  long push_burst = 0;
  long max_conns = 4;
  double lifetime_s = 60;
  std::string log_file;
};

[[noreturn]] void usage_error(const std::string& msg) {
  fprintf(stderr, "opend_standin: %s (see the comment at the top of opend_standin.cpp)\n", msg.c_str());
  exit(2);
}

// --- protobuf, by hand: the few fields these messages need -------------------------------------

class Pb {
 public:
  Pb& varint(int field, uint64_t v) {
    key(field, 0);
    raw(v);
    return *this;
  }
  Pb& int64(int field, int64_t v) { return varint(field, static_cast<uint64_t>(v)); }  // int32 too: sign-extended
  Pb& dbl(int field, double v) {
    key(field, 1);
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(u >> (8 * i)));
    return *this;
  }
  Pb& bytes(int field, const std::string& s) {
    key(field, 2);
    raw(s.size());
    out_ += s;
    return *this;
  }
  Pb& msg(int field, const Pb& m) { return bytes(field, m.out_); }
  const std::string& str() const { return out_; }

 private:
  void key(int field, int wire) { raw(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
  void raw(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

// One varint from [p, end), at most 10 bytes; advances p.
bool read_varint(const char*& p, const char* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p == end) return false;
    unsigned char b = static_cast<unsigned char>(*p++);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

struct Field {
  uint32_t number = 0;
  int wire = 0;
  uint64_t value = 0;  // varint, fixed32, fixed64
  const char* data = nullptr;  // length-delimited
  size_t len = 0;
};

// Reads one field at a time; every length is checked against what is left.
class PbReader {
 public:
  PbReader(const char* p, size_t n) : p_(p), end_(p + n) {}
  PbReader(const Field& f) : p_(f.data), end_(f.data + f.len) {}
  // 1: a field was read, 0: the end, -1: malformed
  int next(Field& f) {
    if (p_ == end_) return 0;
    uint64_t key;
    if (!raw(key) || key >> 3 == 0 || key >> 3 > 0x1FFFFFFF) return -1;
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    switch (f.wire) {
      case 0:
        return raw(f.value) ? 1 : -1;
      case 1:
      case 5: {
        size_t n = f.wire == 1 ? 8 : 4;
        if (static_cast<size_t>(end_ - p_) < n) return -1;
        f.value = 0;
        for (size_t i = 0; i < n; ++i) f.value |= static_cast<uint64_t>(static_cast<unsigned char>(p_[i])) << (8 * i);
        p_ += n;
        return 1;
      }
      case 2: {
        uint64_t n;
        if (!raw(n) || n > static_cast<uint64_t>(end_ - p_)) return -1;
        f.data = p_;
        f.len = static_cast<size_t>(n);
        p_ += n;
        return 1;
      }
      default:
        return -1;  // groups: none of these messages has one
    }
  }

 private:
  bool raw(uint64_t& v) { return read_varint(p_, end_, v); }
  const char* p_;
  const char* end_;
};

struct InitRequest {
  bool has_ver = false, has_id = false, has_notify = false, has_algo = false, has_fmt = false, has_lang = false,
       has_ai = false;
  int32_t client_ver = 0, algo = 0, push_fmt = 0, ai_type = 0;
  bool recv_notify = false;
  std::string client_id, language;
};

// Request{c2s=1}: the C2S message, or false
bool request_c2s(const std::string& body, Field& c2s) {
  PbReader r(body.data(), body.size());
  Field f;
  bool found = false;
  int k;
  while ((k = r.next(f)) == 1) {
    if (f.number == 1 && f.wire == 2) {
      c2s = f;
      found = true;
    }
  }
  return k == 0 && found;
}

bool parse_init(const std::string& body, InitRequest& q) {
  Field c2s, f;
  if (!request_c2s(body, c2s)) return false;
  PbReader r(c2s);
  int k;
  while ((k = r.next(f)) == 1) {
    bool v = f.wire == 0, s = f.wire == 2;
    int32_t i = static_cast<int32_t>(f.value);
    switch (f.number) {
      case 1: if (v) q.has_ver = true, q.client_ver = i; break;
      case 2: if (s) q.has_id = true, q.client_id.assign(f.data, f.len); break;
      case 3: if (v) q.has_notify = true, q.recv_notify = f.value != 0; break;
      case 4: if (v) q.has_algo = true, q.algo = i; break;
      case 5: if (v) q.has_fmt = true, q.push_fmt = i; break;
      case 6: if (s) q.has_lang = true, q.language.assign(f.data, f.len); break;
      case 7: if (v) q.has_ai = true, q.ai_type = i; break;
      default: break;
    }
  }
  return k == 0 && q.has_ver && q.has_id;  // both required
}

struct Security {
  int32_t market = 0;
  std::string code;
};

struct SubRequest {
  std::vector<Security> securities;
  std::vector<int32_t> sub_types;
  bool has_sub = false, sub = false;
};

bool parse_sub(const std::string& body, SubRequest& q) {
  Field c2s, f;
  if (!request_c2s(body, c2s)) return false;
  PbReader r(c2s);
  int k;
  while ((k = r.next(f)) == 1) {
    if (f.number == 1 && f.wire == 2) {
      Security sec;
      bool has_market = false, has_code = false;
      PbReader rs(f);
      Field g;
      int ks;
      while ((ks = rs.next(g)) == 1) {
        if (g.number == 1 && g.wire == 0) has_market = true, sec.market = static_cast<int32_t>(g.value);
        if (g.number == 2 && g.wire == 2) has_code = true, sec.code.assign(g.data, g.len);
      }
      if (ks != 0 || !has_market || !has_code || q.securities.size() >= 1000) return false;
      q.securities.push_back(sec);
    } else if (f.number == 2 && f.wire == 0) {
      q.sub_types.push_back(static_cast<int32_t>(f.value));
    } else if (f.number == 2 && f.wire == 2) {  // packed: a run of bare varints
      const char* p = f.data;
      const char* end = f.data + f.len;
      while (p != end) {
        uint64_t val;
        if (!read_varint(p, end, val)) return false;
        q.sub_types.push_back(static_cast<int32_t>(val));
      }
    } else if (f.number == 3 && f.wire == 0) {
      q.has_sub = true;
      q.sub = f.value != 0;
    }
  }
  return k == 0 && q.has_sub;
}

std::string response(int32_t ret_type, const Pb* s2c, const std::string* msg = nullptr) {
  Pb r;
  r.int64(1, ret_type);
  if (msg) r.bytes(2, *msg);
  if (s2c) r.msg(4, *s2c);
  return r.str();
}

std::string utc_now_text() {
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

double unix_now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

std::string basic_qot(const std::vector<Security>& secs) {
  Pb s2c;
  std::string now = utc_now_text();
  for (const Security& sec : secs) {
    Pb q, security;
    security.int64(1, sec.market).bytes(2, sec.code);
    q.msg(1, security).varint(2, 0).bytes(3, "2004-06-16").dbl(4, 0.2).bytes(5, now);
    q.dbl(6, 401.0).dbl(7, 395.0).dbl(8, 390.0).dbl(9, 400.2).dbl(10, 398.0).int64(11, 123456);
    q.dbl(12, 49382716.5).dbl(13, 0.12).dbl(14, 2.76).bytes(24, "STAND-IN " + sec.code);
    s2c.msg(1, q);
  }
  return response(0, &s2c);
}

std::string notify() {
  Pb event, s2c;
  event.int64(1, 0).bytes(2, kNotifyDesc);  // GtwEventType_None
  s2c.int64(1, 1).msg(2, event);            // NotifyType_GtwEvent
  return response(0, &s2c);
}

std::string global_state(uint64_t conn_id) {
  Pb s2c;  // Afternoon, AfterHoursEnd, ... (QotMarketState), as tests/opend_standin.py
  s2c.int64(1, 5).int64(2, 11).int64(3, 5).int64(4, 5).int64(5, 15).varint(6, 1).varint(7, 1);
  double now = unix_now();
  s2c.int64(8, kServerVer).int64(9, kServerBuildNo).int64(10, static_cast<int64_t>(now)).dbl(11, now).varint(16, conn_id);
  return response(0, &s2c);
}

std::string keep_alive() {
  Pb s2c;
  s2c.int64(1, static_cast<int64_t>(time(nullptr)));
  return response(0, &s2c);
}

std::string error_response(const std::string& msg) { return response(-1, nullptr, &msg); }

// --- crypto (OpenSSL's libcrypto) ------------------------------------------------------------------

struct Algorithms {  // fetched once: a fetch per packet would cost more than the packet
  EVP_MD* sha1 = nullptr;
  EVP_CIPHER* cbc = nullptr;
  EVP_CIPHER* ecb = nullptr;
  EVP_PKEY* rsa = nullptr;
  size_t rsa_size = 0;
};

Algorithms g_alg;

std::string read_file(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) usage_error("cannot read --rsa-key " + path + ": " + strerror(errno));
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0 && s.size() < (1u << 20)) s.append(buf, n);
  fclose(f);
  return s;
}

void load_algorithms(const Options& o) {
  g_alg.sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  g_alg.cbc = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
  g_alg.ecb = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
  if (!g_alg.sha1 || !g_alg.cbc || !g_alg.ecb) usage_error("OpenSSL has no SHA1 or AES-128: check the libcrypto in use");
  if (o.rsa_key_file.empty()) return;
  std::string pem = read_file(o.rsa_key_file);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  g_alg.rsa = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;  // PKCS#1 or PKCS#8
  BIO_free(bio);
  if (!g_alg.rsa || !EVP_PKEY_is_a(g_alg.rsa, "RSA"))
    usage_error("--rsa-key " + o.rsa_key_file + " holds no RSA private key in PEM: give the key OpenD's config names");
  g_alg.rsa_size = static_cast<size_t>(EVP_PKEY_get_size(g_alg.rsa));
  if (g_alg.rsa_size < kRsaChunk + 11) usage_error("--rsa-key: the key is too small for 100-byte blocks: use RSA-1024");
}

struct Crypto {  // one per connection: contexts reused packet after packet
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_CIPHER_CTX* cipher = EVP_CIPHER_CTX_new();
  ~Crypto() {
    EVP_MD_CTX_free(md);
    EVP_CIPHER_CTX_free(cipher);
  }
  Crypto() = default;
  Crypto(const Crypto&) = delete;
  Crypto& operator=(const Crypto&) = delete;

  bool sha1(const std::string& data, unsigned char out[20]) {
    unsigned int n = 0;
    return md && EVP_DigestInit_ex(md, g_alg.sha1, nullptr) == 1 && EVP_DigestUpdate(md, data.data(), data.size()) == 1 &&
           EVP_DigestFinal_ex(md, out, &n) == 1 && n == 20;
  }

  bool aes(bool encrypt, bool cbc, const std::string& key, const std::string& iv, const std::string& in, std::string& out) {
    if (!cipher || key.size() != 16 || (cbc && iv.size() != 16)) return false;
    const unsigned char* k = reinterpret_cast<const unsigned char*>(key.data());
    const unsigned char* v = cbc ? reinterpret_cast<const unsigned char*>(iv.data()) : nullptr;
    if (EVP_CipherInit_ex(cipher, cbc ? g_alg.cbc : g_alg.ecb, nullptr, k, v, encrypt ? 1 : 0) != 1) return false;
    EVP_CIPHER_CTX_set_padding(cipher, cbc ? 1 : 0);  // CBC: PKCS#7; ECB: the caller pads
    out.resize(in.size() + 16);
    unsigned char* o = reinterpret_cast<unsigned char*>(&out[0]);
    int n1 = 0, n2 = 0;
    if (EVP_CipherUpdate(cipher, o, &n1, reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size())) != 1 ||
        EVP_CipherFinal_ex(cipher, o + n1, &n2) != 1)
      return false;
    out.resize(static_cast<size_t>(n1 + n2));
    return true;
  }

  // FTAES-ECB: zero padding to 16, ECB, then a plaintext block of 15 zeros and the length mod 16
  bool ecb_encrypt(const std::string& key, const std::string& in, std::string& out) {
    std::string padded = in;
    padded.append((16 - in.size() % 16) % 16, '\0');
    if (!aes(true, false, key, std::string(), padded, out)) return false;
    out.append(15, '\0');
    out.push_back(static_cast<char>(in.size() % 16));
    return true;
  }

  bool ecb_decrypt(const std::string& key, const std::string& in, std::string& out) {
    if (in.size() < 16 || in.size() % 16) return false;
    unsigned tail = static_cast<unsigned char>(in[in.size() - 1]);
    if (tail > 15 || (tail && in.size() == 16)) return false;
    if (!aes(false, false, key, std::string(), in.substr(0, in.size() - 16), out)) return false;
    if (tail) out.resize(out.size() - (16 - tail));
    return true;
  }

  static bool rsa(bool encrypt, const std::string& in, std::string& out) {
    size_t block = g_alg.rsa_size, step = encrypt ? kRsaChunk : block;
    if (!g_alg.rsa || in.empty() || (!encrypt && in.size() % block)) return false;
    std::unique_ptr<EVP_PKEY_CTX, void (*)(EVP_PKEY_CTX*)> ctx(EVP_PKEY_CTX_new(g_alg.rsa, nullptr), EVP_PKEY_CTX_free);
    if (!ctx || (encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1)
      return false;
    out.clear();
    std::vector<unsigned char> buf(block);
    for (size_t i = 0; i < in.size(); i += step) {
      size_t n = std::min(step, in.size() - i), got = block;
      const unsigned char* p = reinterpret_cast<const unsigned char*>(in.data()) + i;
      int rc = encrypt ? EVP_PKEY_encrypt(ctx.get(), buf.data(), &got, p, n) : EVP_PKEY_decrypt(ctx.get(), buf.data(), &got, p, n);
      if (rc != 1) return false;
      out.append(reinterpret_cast<const char*>(buf.data()), got);
    }
    return true;
  }
};

std::string random_chars(size_t n) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  unsigned char b[64];
  while (s.size() < n) {
    if (RAND_bytes(b, sizeof b) != 1) return std::string();
    for (unsigned char c : b)
      if (c < 248 && s.size() < n) s.push_back(alphabet[c % 62]);  // 248 = 4 * 62: no bias
  }
  return s;
}

// --- JSON for the log --------------------------------------------------------------------------------

std::string js(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o.push_back('\\');
      o.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7F) {
      char b[8];
      snprintf(b, sizeof b, "\\u%04x", c);  // bytes above ASCII as code points: readable, valid JSON
      o += b;
    } else {
      o.push_back(static_cast<char>(c));
    }
  }
  return o + "\"";
}

// --- one connection ---------------------------------------------------------------------------------

struct Header {
  uint32_t proto_id, serial, body_len;
  uint8_t fmt, ver;
  unsigned char sha1[20];
  bool reserved_zero;
};

Header parse_header(const char* p) {
  Header h;
  auto u32 = [p](size_t at) {
    const unsigned char* b = reinterpret_cast<const unsigned char*>(p) + at;
    return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 | static_cast<uint32_t>(b[2]) << 16 |
           static_cast<uint32_t>(b[3]) << 24;
  };
  h.proto_id = u32(2);
  h.fmt = static_cast<uint8_t>(p[6]);
  h.ver = static_cast<uint8_t>(p[7]);
  h.serial = u32(8);
  h.body_len = u32(12);
  memcpy(h.sha1, p + 16, 20);
  h.reserved_zero = true;
  for (int i = 36; i < 44; ++i) h.reserved_zero = h.reserved_zero && p[i] == 0;
  return h;
}

void put_header(std::string& out, uint32_t proto_id, uint32_t serial, uint8_t ver, uint32_t body_len, const unsigned char sha1[20]) {
  char h[kHeaderLen] = {'F', 'T'};
  auto u32 = [&h](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) h[at + i] = static_cast<char>(v >> (8 * i));
  };
  u32(2, proto_id);
  h[6] = 0;  // protobuf
  h[7] = static_cast<char>(ver);
  u32(8, serial);
  u32(12, body_len);
  memcpy(h + 16, sha1, 20);
  out.append(h, kHeaderLen);
}

class Server;

struct In {
  uint32_t proto_id, serial, body_len;
  uint8_t fmt, ver;
  bool reserved_zero;
  int sha1_ok;  // -1 not checked
};

struct Out {
  uint32_t proto_id, serial, body_len, plain_len;
  bool push;
};

struct Burst {
  long count;
  uint32_t first_serial;
  size_t bytes, body_len;
  double encode_s, send_s;
  bool sent;
};

class Conn {
 public:
  Conn(Server& server, int fd, std::string peer, long index, uint64_t conn_id)
      : server_(server), fd_(fd), peer_(std::move(peer)), index_(index), conn_id_(conn_id) {}
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  void serve();
  std::string record() const;

 private:
  bool fill();
  bool send_all(const char* p, size_t n, double bound_s);
  bool wire(const std::string& plain, std::string& out);
  bool packet(std::string& out, uint32_t proto_id, uint32_t serial, uint8_t ver, const std::string& plain, bool push);
  bool init_connect(const Header& h, const std::string& body, In& in);
  bool fail_init(const Header& h, const std::string& msg);
  bool answer(const Header& h, const std::string& plain, std::string& out);
  bool prepare_burst(const std::vector<Security>& secs);
  bool send_burst();
  void error(const std::string& e) {
    if (errors_.size() < 100) errors_.push_back(e);
  }

  Server& server_;
  int fd_;
  std::string peer_;
  long index_;
  uint64_t conn_id_;
  Crypto crypto_;
  std::string buf_;
  size_t start_ = 0;
  bool rsa_ = false, rsa_reply_ = false, encrypted_ = false;
  std::string aes_key_, aes_iv_;  // no IV with a key: FTAES-ECB
  uint32_t push_serial_ = 0;
  std::string init_json_ = "null";
  std::vector<In> in_;
  std::vector<Out> out_;
  size_t in_total_ = 0, out_total_ = 0;
  std::vector<std::string> errors_;
  std::string ended_;
  std::vector<Burst> bursts_;
  std::string burst_data_;
  std::vector<float> work_us_, service_us_;  // per request: to the reply built; to the reply written
};

class Server {
 public:
  explicit Server(const Options& o) : opt(o), deadline(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                                      std::chrono::duration<double>(o.lifetime_s))) {}
  bool stopping() const { return stop.load(std::memory_order_relaxed) || Clock::now() >= deadline; }
  void done(const Conn& c) {
    std::lock_guard<std::mutex> lock(mu);
    ++finished;
    if (!opt.log_file.empty()) {
      FILE* f = fopen(opt.log_file.c_str(), "a");
      if (f) {
        std::string line = c.record();
        line.push_back('\n');
        fwrite(line.data(), 1, line.size(), f);
        fclose(f);
      }
    }
  }
  long finished_count() {
    std::lock_guard<std::mutex> lock(mu);
    return finished;
  }
  int run(int listener);

  const Options opt;
  const Clock::time_point deadline;
  std::atomic<bool> stop{false};

 private:
  std::mutex mu;
  long finished = 0;
};

// Reads what is there into buf_; false when the peer closed, the server stops, or the socket failed.
bool Conn::fill() {
  if (start_ > 0 && start_ * 2 >= buf_.size()) {  // keep the unread tail at the front
    buf_.erase(0, start_);
    start_ = 0;
  }
  char tmp[65536];
  while (!server_.stopping()) {
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) {
      ended_ = "client-closed";
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;  // SO_RCVTIMEO: look at the clock
    error(std::string("socket: ") + strerror(errno));
    ended_ = "socket-error";
    return false;
  }
  ended_ = "server-stopped";
  return false;
}

bool Conn::send_all(const char* p, size_t n, double bound_s) {
  Clock::time_point end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(bound_s));
  while (n > 0) {
    ssize_t k = send(fd_, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= static_cast<size_t>(k);
      continue;
    }
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (server_.stopping()) {
        ended_ = "server-stopped";
        return false;
      }
      if (Clock::now() < end) continue;  // SO_SNDTIMEO: a slow reader gets bound_s, never for ever
      error("socket: the client read nothing for " + std::to_string(bound_s) + " s");
    } else {
      error(std::string("socket: ") + strerror(errno));
    }
    ended_ = "socket-error";
    return false;
  }
  return true;
}

bool Conn::wire(const std::string& plain, std::string& out) {
  if (!encrypted_) {
    out = plain;
    return true;
  }
  return aes_iv_.empty() ? crypto_.ecb_encrypt(aes_key_, plain, out) : crypto_.aes(true, true, aes_key_, aes_iv_, plain, out);
}

bool Conn::packet(std::string& out, uint32_t proto_id, uint32_t serial, uint8_t ver, const std::string& plain, bool push) {
  std::string body;
  bool ok = proto_id == kInitConnect ? (rsa_reply_ ? Crypto::rsa(true, plain, body) : (body = plain, true)) : wire(plain, body);
  unsigned char sha[20];
  if (!ok || !crypto_.sha1(plain, sha)) {
    error("cannot encrypt or hash a reply (OpenSSL)");
    return false;
  }
  put_header(out, proto_id, serial, ver, static_cast<uint32_t>(body.size()), sha);
  out += body;
  if (out_.size() < kMaxRecords)
    out_.push_back(Out{proto_id, serial, static_cast<uint32_t>(body.size()), static_cast<uint32_t>(plain.size()), push});
  ++out_total_;
  return true;
}

bool Conn::fail_init(const Header& h, const std::string& msg) {
  error(msg);
  rsa_reply_ = false;  // a refusal travels plain
  std::string out;
  if (packet(out, h.proto_id, h.serial, h.ver, error_response(msg), false)) send_all(out.data(), out.size(), 5);
  ended_ = "server-closed-init-failed";
  return false;
}

bool Conn::init_connect(const Header& h, const std::string& body, In& in) {
  if (h.proto_id != kInitConnect)
    return fail_init(h, "the first packet must be InitConnect (1001), not " + std::to_string(h.proto_id));
  std::string plain;
  unsigned char sha[20];
  bool have = false;
  if (g_alg.rsa && Crypto::rsa(false, body, plain) && crypto_.sha1(plain, sha) && memcmp(sha, h.sha1, 20) == 0) {
    have = rsa_ = true;
  }
  if (!have) {
    if (!crypto_.sha1(body, sha) || memcmp(sha, h.sha1, 20) != 0) {
      in.sha1_ok = 0;
      return fail_init(h, "InitConnect body matches its SHA-1 neither plain nor RSA-decrypted");
    }
    plain = body;
  }
  in.sha1_ok = 1;
  InitRequest q;
  if (!parse_init(plain, q)) return fail_init(h, "InitConnect request does not parse");
  init_json_ = "{\"clientVer\": " + (q.has_ver ? std::to_string(q.client_ver) : "null") +
               ", \"clientID\": " + (q.has_id ? js(q.client_id) : "null") +
               ", \"recvNotify\": " + (q.has_notify ? (q.recv_notify ? "true" : "false") : "null") +
               ", \"packetEncAlgo\": " + (q.has_algo ? std::to_string(q.algo) : "null") +
               ", \"pushProtoFmt\": " + (q.has_fmt ? std::to_string(q.push_fmt) : "null") +
               ", \"programmingLanguage\": " + (q.has_lang ? js(q.language) : "null") +
               ", \"aiType\": " + (q.has_ai ? std::to_string(q.ai_type) : "null") + "}";
  int algo = q.has_algo ? q.algo : (rsa_ ? kEncFtaesEcb : kEncNone);  // omitted with a key: FTAES-ECB
  bool want = algo != kEncNone;
  rsa_reply_ = rsa_ && want;  // the client RSA-decrypts the reply only when it asked for encryption
  if (want && !rsa_)
    return fail_init(h, "encryption asked (packetEncAlgo " + std::to_string(algo) +
                            ") but the InitConnect was not RSA-encrypted with the stand-in's key");
  std::string key = random_chars(16), iv;
  if (want && algo == kEncAesCbc && server_.opt.cbc) iv = random_chars(16);
  if (key.empty() || (want && algo == kEncAesCbc && server_.opt.cbc && iv.empty()))
    return fail_init(h, "no random bytes for the session key (OpenSSL)");
  Pb s2c;
  s2c.int64(1, kServerVer).varint(2, kLoginUserId).varint(3, conn_id_).bytes(4, key).int64(5, kKeepAliveInterval);
  if (!iv.empty()) s2c.bytes(6, iv);
  std::string out;
  if (!packet(out, kInitConnect, h.serial, h.ver, response(0, &s2c), false)) return false;
  aes_key_ = key;  // everything after the reply is encrypted, pushes included
  aes_iv_ = iv;
  encrypted_ = want;
  if (server_.opt.push_notify && !packet(out, kNotify, ++push_serial_, 0, notify(), true)) return false;
  return send_all(out.data(), out.size(), 5);
}

bool Conn::answer(const Header& h, const std::string& plain, std::string& out) {
  switch (h.proto_id) {
    case kGetGlobalState:
      return packet(out, h.proto_id, h.serial, h.ver, global_state(conn_id_), false) &&
             (!server_.opt.push_notify || packet(out, kNotify, ++push_serial_, 0, notify(), true));
    case kKeepAlive:
      return packet(out, h.proto_id, h.serial, h.ver, keep_alive(), false);
    case kQotSub: {
      SubRequest q;
      if (!parse_sub(plain, q)) return packet(out, h.proto_id, h.serial, h.ver, error_response("Qot_Sub request does not parse"), false);
      Pb s2c;  // an empty S2C
      if (!packet(out, h.proto_id, h.serial, h.ver, response(0, &s2c), false)) return false;
      if (q.sub && !q.securities.empty()) {
        if (!packet(out, kQotUpdateBasicQot, ++push_serial_, 0, basic_qot(q.securities), true)) return false;
        if (server_.opt.push_burst > 0) return prepare_burst(q.securities);  // encoded before the reply goes out
      }
      return true;
    }
    default:
      return packet(out, h.proto_id, h.serial, h.ver, error_response("stand-in: protoID " + std::to_string(h.proto_id) + " is not supported"),
                    false);
  }
}

// M pushes of one Qot_UpdateBasicQot body, encrypted once (every packet starts again from the same
// AES state); only the serials differ.
bool Conn::prepare_burst(const std::vector<Security>& secs) {
  Clock::time_point t0 = Clock::now();
  long m = server_.opt.push_burst;
  std::string plain = basic_qot(secs), body;
  unsigned char sha[20];
  if (!wire(plain, body) || !crypto_.sha1(plain, sha)) {
    error("cannot encrypt or hash the push burst (OpenSSL)");
    return false;
  }
  Burst b{m, push_serial_ + 1, 0, body.size(), 0, 0, false};
  burst_data_.clear();
  burst_data_.reserve(static_cast<size_t>(m) * (kHeaderLen + body.size()));
  for (long i = 0; i < m; ++i) {
    put_header(burst_data_, kQotUpdateBasicQot, ++push_serial_, 0, static_cast<uint32_t>(body.size()), sha);
    burst_data_ += body;
  }
  b.bytes = burst_data_.size();
  b.encode_s = std::chrono::duration<double>(Clock::now() - t0).count();
  bursts_.push_back(b);
  return true;
}

bool Conn::send_burst() {
  Clock::time_point t0 = Clock::now();
  const size_t chunk = 1 << 18;
  for (size_t i = 0; i < burst_data_.size(); i += chunk) {
    if (!send_all(burst_data_.data() + i, std::min(chunk, burst_data_.size() - i), 30)) return false;
  }
  bursts_.back().send_s = std::chrono::duration<double>(Clock::now() - t0).count();
  bursts_.back().sent = true;
  std::string().swap(burst_data_);
  return true;
}

void Conn::serve() {
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {0, 200000};  // the clock is looked at every 200 ms at most
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  bool first = true;
  std::string body, plain, out;
  for (;;) {
    // a whole packet in buf_[start_...], every size checked before it is trusted
    for (;;) {
      size_t have = buf_.size() - start_;
      if (have >= 2 && (buf_[start_] != 'F' || buf_[start_ + 1] != 'T')) {
        char hex[20];
        snprintf(hex, sizeof hex, "%02x%02x", static_cast<unsigned char>(buf_[start_]), static_cast<unsigned char>(buf_[start_ + 1]));
        error(std::string("not an OpenD header: ") + hex);
        ended_ = "server-closed-protocol-error";
        return;
      }
      if (have >= kHeaderLen) {
        uint32_t len = parse_header(buf_.data() + start_).body_len;
        if (len > kMaxBody) {
          error("bodyLen " + std::to_string(len) + " over the cap");
          ended_ = "server-closed-protocol-error";
          return;
        }
        if (have >= kHeaderLen + len) break;
      }
      if (!fill()) return;
    }
    Clock::time_point t_in = Clock::now();
    Header h = parse_header(buf_.data() + start_);
    body.assign(buf_, start_ + kHeaderLen, h.body_len);
    start_ += kHeaderLen + h.body_len;
    In in{h.proto_id, h.serial, h.body_len, h.fmt, h.ver, h.reserved_zero, -1};
    size_t slot = in_.size();
    if (in_.size() < kMaxRecords) in_.push_back(in);
    ++in_total_;

    if (first) {
      first = false;
      bool ok = init_connect(h, body, in);
      if (slot < in_.size()) in_[slot] = in;
      if (!ok) return;
      continue;
    }
    bool decrypted = true;
    if (!encrypted_) {
      plain.swap(body);
    } else if (aes_iv_.empty()) {
      decrypted = crypto_.ecb_decrypt(aes_key_, body, plain);
    } else {
      decrypted = crypto_.aes(false, true, aes_key_, aes_iv_, body, plain);
    }
    unsigned char sha[20];
    bool ok = decrypted && crypto_.sha1(plain, sha) && memcmp(sha, h.sha1, 20) == 0;
    if (slot < in_.size()) in_[slot].sha1_ok = ok ? 1 : 0;
    if (!ok) {
      error("protoID " + std::to_string(h.proto_id) + " serial " + std::to_string(h.serial) +
            (decrypted ? ": body does not match its SHA-1" : ": body does not decrypt"));
      ended_ = "server-closed-protocol-error";
      return;
    }
    out.clear();
    if (!answer(h, plain, out)) return;
    Clock::time_point t_out = Clock::now();
    if (!send_all(out.data(), out.size(), 30)) return;
    if (service_us_.size() < kMaxRecords) {
      work_us_.push_back(std::chrono::duration<float, std::micro>(t_out - t_in).count());
      service_us_.push_back(std::chrono::duration<float, std::micro>(Clock::now() - t_in).count());
    }
    if (!burst_data_.empty() && !send_burst()) return;
  }
}

std::string Conn::record() const {
  std::string r = "{\"index\": " + std::to_string(index_) + ", \"peer\": " + js(peer_) + ", \"conn_id\": " + std::to_string(conn_id_) +
                  ", \"server\": \"native\", \"init\": " + init_json_ + ", \"rsa\": " + (rsa_ ? "true" : "false") +
                  ", \"encrypted\": " + (encrypted_ ? "true" : "false") + ", \"aes\": " +
                  (encrypted_ ? (aes_iv_.empty() ? "\"ecb\"" : "\"cbc\"") : "null") +
                  ", \"conn_aes_key\": " + (aes_key_.empty() ? "null" : js(aes_key_)) +
                  ", \"aes_cbc_iv\": " + (aes_iv_.empty() ? "null" : js(aes_iv_)) + ", \"packets\": [";
  char b[256];
  for (size_t i = 0; i < in_.size(); ++i) {
    const In& p = in_[i];
    snprintf(b, sizeof b, "%s{\"proto_id\": %u, \"serial\": %u, \"proto_fmt\": %u, \"proto_ver\": %u, \"body_len\": %u, "
             "\"reserved_zero\": %s, \"sha1_ok\": %s}", i ? ", " : "", p.proto_id, p.serial, p.fmt, p.ver, p.body_len,
             p.reserved_zero ? "true" : "false", p.sha1_ok < 0 ? "null" : (p.sha1_ok ? "true" : "false"));
    r += b;
  }
  r += "], \"packets_total\": " + std::to_string(in_total_) + ", \"sent\": [";
  for (size_t i = 0; i < out_.size(); ++i) {
    const Out& s = out_[i];
    snprintf(b, sizeof b, "%s{\"proto_id\": %u, \"serial\": %u, \"kind\": \"%s\", \"body_len\": %u, \"plain_len\": %u}", i ? ", " : "",
             s.proto_id, s.serial, s.push ? "push" : "reply", s.body_len, s.plain_len);
    r += b;
  }
  r += "], \"sent_total\": " + std::to_string(out_total_) + ", \"errors\": [";
  for (size_t i = 0; i < errors_.size(); ++i) r += (i ? ", " : "") + js(errors_[i]);
  r += "], \"ended\": " + (ended_.empty() ? std::string("null") : js(ended_));
  if (server_.opt.push_burst > 0) {
    r += ", \"bursts\": [";
    for (size_t i = 0; i < bursts_.size(); ++i) {
      const Burst& x = bursts_[i];
      snprintf(b, sizeof b, "%s{\"count\": %ld, \"first_serial\": %u, \"bytes\": %zu, \"body_len\": %zu, \"encode_s\": %.6f, \"send_s\": %s",
               i ? ", " : "", x.count, x.first_serial, x.bytes, x.body_len, x.encode_s, x.sent ? "" : "null");
      r += b;
      if (x.sent) {
        snprintf(b, sizeof b, "%.6f", x.send_s);
        r += b;
      }
      r += "}";
    }
    r += "]";
  }
  const std::vector<float>* lists[] = {&work_us_, &service_us_};
  const char* names[] = {"work_us", "service_us"};
  for (int k = 0; k < 2; ++k) {
    std::vector<float> s = *lists[k];
    std::sort(s.begin(), s.end());
    auto pct = [&s](double p) {  // nearest rank, as the clients
      size_t rank = static_cast<size_t>(p / 100.0 * s.size() + 0.999999);
      return s[std::min(s.size(), std::max<size_t>(1, rank)) - 1];
    };
    if (s.empty()) {
      snprintf(b, sizeof b, ", \"%s\": null", names[k]);
    } else {
      snprintf(b, sizeof b, ", \"%s\": {\"n\": %zu, \"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}", names[k], s.size(), pct(50),
               pct(99), s.back());
    }
    r += b;
  }
  return r + "}";
}

int Server::run(int listener) {
  std::vector<std::thread> threads;
  std::atomic<long> accepted{0};
  uint64_t next_id = 1;
  {
    unsigned char r[4];
    if (RAND_bytes(r, 4) == 1) next_id = (static_cast<uint64_t>((r[0] | r[1] << 8 | r[2] << 16 | (r[3] & 0x7F) << 24)) << 24) | 1;
  }
  while (!stopping() && finished_count() < opt.max_conns) {
    struct pollfd pfd = {listener, POLLIN, 0};
    if (accepted.load() >= opt.max_conns || poll(&pfd, 1, 200) <= 0) {
      if (accepted.load() >= opt.max_conns) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    struct sockaddr_storage addr;
    socklen_t alen = sizeof addr;
    int fd = accept4(listener, reinterpret_cast<struct sockaddr*>(&addr), &alen, SOCK_CLOEXEC);
    if (fd < 0) continue;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (addr.ss_family == AF_INET) {
      const struct sockaddr_in* a = reinterpret_cast<const struct sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const struct sockaddr_in6* a = reinterpret_cast<const struct sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    long index = accepted.fetch_add(1);
    uint64_t id = next_id++;
    std::string peer = std::string(host) + ":" + std::to_string(port);
    threads.emplace_back([this, fd, peer, index, id] {
      Conn c(*this, fd, peer, index, id);
      c.serve();
      done(c);
    });
  }
  close(listener);
  stop = true;  // connections still open see it within 200 ms
  for (std::thread& t : threads) t.join();
  return 0;
}

long parse_long(const std::string& name, const char* v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || !*v || *end || x < lo || x > hi)
    usage_error(name + " wants a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not '" + v + "'");
  return x;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--host") o.host = value();
    else if (a == "--port") o.port = static_cast<int>(parse_long(a, value(), 0, 65535));
    else if (a == "--rsa-key") o.rsa_key_file = value();
    else if (a == "--aes") {
      std::string m = value();
      if (m != "cbc" && m != "ecb") usage_error("--aes must be cbc or ecb, not '" + m + "'");
      o.cbc = m == "cbc";
    } else if (a == "--push-notify") o.push_notify = true;
    else if (a == "--push-burst") o.push_burst = parse_long(a, value(), 0, 1000000);
    else if (a == "--max-conns") o.max_conns = parse_long(a, value(), 1, 10000);
    else if (a == "--lifetime") {
      const char* v = value();
      char* end = nullptr;
      o.lifetime_s = strtod(v, &end);
      if (!*v || *end || !(o.lifetime_s > 0 && o.lifetime_s <= 3600)) usage_error(std::string("--lifetime wants seconds in (0, 3600], not '") + v + "'");
    } else if (a == "--log") o.log_file = value();
    else usage_error("unknown argument '" + a + "'");
  }
  if (o.host == "localhost") o.host = "127.0.0.1";
  if (!o.log_file.empty()) {  // found out now, not after the first connection
    FILE* f = fopen(o.log_file.c_str(), "a");
    if (!f) usage_error("cannot write --log " + o.log_file + ": " + strerror(errno));
    fclose(f);
  }
  return o;
}

// A listening socket on a loopback address only (127.0.0.0/8 or ::1).
int listen_loopback(const Options& o) {
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  socklen_t len;
  struct in_addr v4;
  struct in6_addr v6;
  if (inet_pton(AF_INET, o.host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127) {
    struct sockaddr_in* a = reinterpret_cast<struct sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_addr = v4;
    a->sin_port = htons(static_cast<uint16_t>(o.port));
    len = sizeof *a;
  } else if (inet_pton(AF_INET6, o.host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6)) {
    struct sockaddr_in6* a = reinterpret_cast<struct sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_addr = v6;
    a->sin6_port = htons(static_cast<uint16_t>(o.port));
    len = sizeof *a;
  } else {
    usage_error("--host must be a loopback address (127.0.0.1, ::1), not '" + o.host + "'");
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, reinterpret_cast<struct sockaddr*>(&addr), len) != 0 || listen(fd, 16) != 0)
    usage_error("cannot listen on " + o.host + " port " + std::to_string(o.port) + ": " + strerror(errno));
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o = parse_args(argc, argv);
  load_algorithms(o);
  int listener = listen_loopback(o);
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<struct sockaddr*>(&addr), &len);
  int port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<struct sockaddr_in6*>(&addr)->sin6_port
                                              : reinterpret_cast<struct sockaddr_in*>(&addr)->sin_port);
  printf("port=%d\n", port);
  fflush(stdout);
  Server server(o);
  return server.run(listener);
}
