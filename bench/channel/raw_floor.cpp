// The latency floor in C++: a bare socket client with no client library, so what it measures is
// the stand-in and the kernel's loopback, nothing else.
//   raw_floor HOST PORT N [--warmup W] [--timeout-s S]
// A plain InitConnect (packetEncAlgo -1: no encryption, which any stand-in accepts), then W + N
// GetGlobalState requests framed beforehand (the body never changes, so neither does its SHA-1),
// each written with one send and its reply read whole before the next; the reply is not decoded.
// One JSON line on stdout; exit 0 when the run completed, 1 when it did not, 2 on bad arguments.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace {

typedef std::chrono::steady_clock Clock;

const size_t kHeaderLen = 44;
const uint32_t kMaxBody = 16u << 20;

std::string frame(uint32_t proto_id, uint32_t serial, const std::string& body) {
  unsigned char sha[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(body.data(), body.size(), sha, &n, EVP_sha1(), nullptr) != 1 || n != 20) return std::string();
  std::string h(kHeaderLen, '\0');
  h[0] = 'F';
  h[1] = 'T';
  for (int i = 0; i < 4; ++i) {
    h[2 + i] = static_cast<char>(proto_id >> (8 * i));
    h[8 + i] = static_cast<char>(serial >> (8 * i));
    h[12 + i] = static_cast<char>(static_cast<uint32_t>(body.size()) >> (8 * i));
  }
  memcpy(&h[16], sha, 20);
  return h + body;
}

// One whole packet into buf; false on a closed socket, a timeout (SO_RCVTIMEO) or a bodyLen over the cap.
bool read_packet(int fd, std::vector<char>& buf) {
  size_t got = 0, need = kHeaderLen;
  while (got < need) {
    if (buf.size() < need) buf.resize(need);
    ssize_t k = recv(fd, buf.data() + got, buf.size() - got, 0);
    if (k <= 0) return false;
    got += static_cast<size_t>(k);
    if (need == kHeaderLen && got >= kHeaderLen) {
      const unsigned char* b = reinterpret_cast<const unsigned char*>(buf.data());
      uint32_t len = b[12] | b[13] << 8 | b[14] << 16 | static_cast<uint32_t>(b[15]) << 24;
      if (len > kMaxBody) return false;
      need += len;
    }
  }
  return got == need;  // one request in flight: nothing can follow the reply
}

double percentile(std::vector<double> v, double p) {  // nearest rank, as the other clients
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(p / 100.0 * v.size() + 0.999999);
  return v[std::min(v.size(), std::max<size_t>(1, rank)) - 1];
}

int fail(const std::string& why) {
  printf("{\"client\": \"raw-cpp\", \"mode\": \"latency\", \"ok\": false, \"error\": \"%s\"}\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: raw_floor HOST PORT N [--warmup W] [--timeout-s S]\n");
    return 2;
  }
  long n = atol(argv[3]), warmup = 100, timeout_s = 60;
  for (int i = 4; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--warmup")) warmup = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--timeout-s")) timeout_s = atol(argv[i + 1]);
    else {
      fprintf(stderr, "raw_floor: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (n < 1 || n > 1000000 || warmup < 0 || warmup > 100000 || timeout_s < 1 || timeout_s > 3600) {
    fprintf(stderr, "raw_floor: counts out of range\n");
    return 2;
  }
  struct addrinfo hints, *ai = nullptr;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;  // loopback addresses only, never a name lookup
  if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0 || !ai) return fail("bad host or port");
  int fd = socket(ai->ai_family, SOCK_STREAM, 0);
  bool connected = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
  freeaddrinfo(ai);
  if (!connected) return fail("cannot connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  // Request{c2s{clientVer=100, clientID="raw-cpp", recvNotify=true, packetEncAlgo=-1}}
  std::string c2s = std::string("\x08\x64\x12\x07raw-cpp\x18\x01\x20", 14) + std::string(9, '\xff') + '\x01';
  std::string init = frame(1001, 1, std::string("\x0a", 1) + static_cast<char>(c2s.size()) + c2s);
  std::vector<std::string> requests;
  for (long i = 0; i < warmup + n; ++i) requests.push_back(frame(1002, static_cast<uint32_t>(i + 2), std::string("\x0a\x02\x08\x00", 4)));
  if (init.empty() || requests.back().empty()) return fail("SHA-1 failed (OpenSSL)");
  std::vector<char> buf(1 << 16);
  if (send(fd, init.data(), init.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(init.size()) || !read_packet(fd, buf))
    return fail("no InitConnect reply");
  // a stand-in with --push-notify would push here; the bench's stand-in does not
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(timeout_s);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(n));
  for (long i = 0; i < warmup + n; ++i) {
    if (Clock::now() > deadline) return fail("timed out after " + std::to_string(i));
    const std::string& r = requests[static_cast<size_t>(i)];
    Clock::time_point t0 = Clock::now();
    if (send(fd, r.data(), r.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(r.size()) || !read_packet(fd, buf))
      return fail("request " + std::to_string(i) + ": no whole reply");
    Clock::time_point t1 = Clock::now();
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  close(fd);
  double sum = 0;
  for (double v : us) sum += v;
  printf("{\"client\": \"raw-cpp\", \"mode\": \"latency\", \"ok\": true, \"n\": %zu, \"warmup\": %ld, \"p50_us\": %.2f, "
         "\"p99_us\": %.2f, \"mean_us\": %.2f, \"min_us\": %.2f}\n",
         us.size(), warmup, percentile(us, 50), percentile(us, 99), sum / us.size(), percentile(us, 0));
  return 0;
}
