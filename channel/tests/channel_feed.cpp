// Feeds attacker-controlled bytes through the channel's real read loop: the I/O thread's pump()
// on one end of a connected socket pair (poll, recv, reassembler, header parse, InitConnect reply with
// optional RSA, AES-CBC / FTAES-ECB decrypt, SHA-1 check, reply/push dispatch, callbacks through
// the C API, timers), a writer thread on the other end, then the peer-closed path at the end of
// the stream. Only resolve and connect are skipped. The pair is a socketpair on POSIX, a loopback
// TCP connection on Windows (feed_harness.h).
// Every callback is checked and printed; any violation makes the exit code 1.
//
//   channel_feed [--rsa-key PEM] [--quiet] [FILE]     (FILE or stdin: records, see below)
// Built with -DOPEND_CHANNEL_LIBFUZZER (clang -fsanitize=fuzzer) it is a libFuzzer target instead:
// each input is one record (without its length), the RSA key comes from CHANNEL_FEED_RSA_KEY (a
// PEM file), and a violation aborts (libFuzzer reports it and keeps the input).
//
// Input: records back to back, each  u32 len (LE)  followed by len bytes:
//   u8 flags   bit 0: encryption on (InitConnect with enc=1); bit 1: set the --rsa-key;
//              bit 2: Close the channel from inside the first reply/push callback
//   u16 nreq, nreq x u32 protoID   requests sent from OnInitConnect(0), serials 2, 3, ...
//   u16 nsplit, nsplit x u32       offsets where the stream is cut into separate receives
//   the rest                       the bytes the "server" sends
// Output per case: "case N", one line per callback ("init ERR", "reply TYPE PROTO SERIAL LEN",
// "push PROTO SERIAL LEN", "disconnect ERR"), then "end stream|eof|closed".
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "FTAPIChannel.h"
#include "channel.h"
#include "crypto.h"
#include "feed_harness.h"
#include "wire.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FEED_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FEED_ASAN 1
#endif
#ifdef FEED_ASAN
#include <sanitizer/asan_interface.h>
#endif


using namespace opend_channel;

namespace {

typedef std::pair<uint32_t, uint32_t> Key;  // protoID, serial
// the header is packed: copy the fields out instead of binding references to them
Key key_of(const FTAPI_ProtoHeader* h) {
    uint32_t proto = h->nProtoID, serial = h->nSerialNo;
    return Key(proto, serial);
}

struct CaseState {
    int index;
    bool encrypt;
    bool close_in_callback;
    std::vector<uint32_t> requests;
    Channel* channel;
    bool init_seen, init_ok, finished, closed;
    uint32_t last_serial;
    std::set<Key> outstanding;
};

CaseState g_case;
std::string g_last_init_desc;  // the terminal callback tells how the stream ended
long long g_last_err = 0;
bool g_quiet = false;
long g_violations = 0;
long g_callbacks = 0;

void violation(const char* what) {
    ++g_violations;
    fprintf(stderr, "VIOLATION case %d: %s\n", g_case.index, what);
}

#if defined(__GNUC__)
void out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
void out(const char* fmt, ...) {
    if (g_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

bool same_channel(FTAPIChannelPtr p) {
    if (p != static_cast<FTAPIChannelPtr>(g_case.channel)) {
        violation("callback with another channel pointer");
        return false;
    }
    return true;
}

void check_header(const FTAPI_ProtoHeader* h) {
    if (h->szHeaderFlag[0] != 'F' || h->szHeaderFlag[1] != 'T') violation("header without the FT magic");
    if (h->nBodyLen > kMaxBodyLen) violation("header bodyLen over the cap");
}

// A body handed to OnReply(SvrReply)/OnPush: len is the real length of the decrypted body.
void check_body(const FTAPI_ProtoHeader* h, const char* data, int32_t len) {
    if (len < 0) {
        violation("negative length");
        return;
    }
    if (static_cast<uint32_t>(len) > kMaxBodyLen) violation("length over the cap");
    if (len > 0 && !data) violation("null data with a length");
    if (!data) return;
#ifdef FEED_ASAN
    if (len > 0 && __asan_region_is_poisoned(const_cast<char*>(data), static_cast<size_t>(len)))
        violation("data[0..len) is not all addressable");
#endif
    // the SHA-1 over exactly len bytes must be the one the header carries (the channel checked it
    // over the real plaintext): a longer or shorter len fails here, and reads every byte
    uint8_t d[20];
    sha1(data, static_cast<size_t>(len), d);
    if (memcmp(d, h->arrBodySHA1, 20) != 0) violation("SHA-1 of data[0..len) is not the header's");
    if (h->nBodyLen != static_cast<uint32_t>(len)) violation("header nBodyLen is not the length handed over");
}

bool may_call_back(const char* what) {
    if (g_case.finished) {
        fprintf(stderr, "  (%s)\n", what);
        violation("callback after the connection ended");
        return false;
    }
    if (!g_case.init_ok) {
        fprintf(stderr, "  (%s)\n", what);
        violation("callback before a successful OnInitConnect");
        return false;
    }
    return true;
}

void maybe_close() {
    if (g_case.close_in_callback && !g_case.closed) {
        g_case.closed = true;
        if (FTAPIChannel_Close(g_case.channel) != 0) violation("Close from a callback failed");
    }
}

void on_init(FTAPIChannelPtr p, Futu::i64_t err, const char* desc) {
    ++g_callbacks;
    if (!same_channel(p)) return;
    out("init %lld\n", static_cast<long long>(err));
    if (g_case.init_seen) violation("a second OnInitConnect");
    if (g_case.finished) violation("OnInitConnect after the end");
    g_case.init_seen = true;
    g_last_init_desc = desc ? desc : "";
    if (!desc) violation("OnInitConnect with a null desc");
    else if (strnlen(desc, 1 << 16) >= (1 << 16)) violation("OnInitConnect desc is not terminated within 64 KiB");
    if (err != 0) {
        g_case.finished = true;
        return;
    }
    g_case.init_ok = true;
    for (size_t i = 0; i < g_case.requests.size(); ++i) {
        char body[8];
        for (int k = 0; k < 8; ++k) body[k] = static_cast<char>(i * 8 + k);
        uint32_t s = FTAPIChannel_SendProto(p, g_case.requests[i], 0, reinterpret_cast<const Futu::i8_t*>(body),
                                            static_cast<int32_t>(i % 9));
        if (s == 0 || s <= g_case.last_serial) {
            violation("SendProto from OnInitConnect gave no increasing serial");
            continue;
        }
        g_case.last_serial = s;
        if (!g_case.outstanding.insert(Key(g_case.requests[i], s)).second) violation("duplicate request key");
    }
}

void on_reply(FTAPIChannelPtr p, FTAPI_ReqReplyType type, const FTAPI_ProtoHeader* h, const Futu::i8_t* data,
              Futu::i32_t len) {
    ++g_callbacks;
    if (!same_channel(p)) return;
    if (!h) {
        violation("OnReply with a null header");
        return;
    }
    out("reply %d %u %u %d\n", static_cast<int>(type), h->nProtoID, h->nSerialNo, len);
    if (!may_call_back("OnReply")) return;
    check_header(h);
    if (g_case.outstanding.erase(key_of(h)) != 1) violation("OnReply for no outstanding request");
    if (type == FTAPI_ReqReplyType_SvrReply) {
        check_body(h, reinterpret_cast<const char*>(data), len);
        maybe_close();
    } else if (type == FTAPI_ReqReplyType_DisConnect) {
        if (data || len != 0) violation("OnReply(DisConnect) with a body");
    } else {
        violation("OnReply of a type the receive path never gives");
    }
}

void on_push(FTAPIChannelPtr p, const FTAPI_ProtoHeader* h, const Futu::i8_t* data, Futu::i32_t len) {
    ++g_callbacks;
    if (!same_channel(p)) return;
    if (!h) {
        violation("OnPush with a null header");
        return;
    }
    out("push %u %u %d\n", h->nProtoID, h->nSerialNo, len);
    if (!may_call_back("OnPush")) return;
    check_header(h);
    if (g_case.outstanding.count(key_of(h))) violation("OnPush for an outstanding request");
    check_body(h, reinterpret_cast<const char*>(data), len);
    maybe_close();
}

void on_disconnect(FTAPIChannelPtr p, Futu::i64_t err) {
    ++g_callbacks;
    if (!same_channel(p)) return;
    out("disconnect %lld\n", static_cast<long long>(err));
    if (!may_call_back("OnDisConnect")) return;
    g_case.finished = true;
    if (!g_case.outstanding.empty()) violation("OnDisConnect with requests never answered");
    g_last_err = static_cast<long long>(err);
    uint64_t e = static_cast<uint64_t>(err);
    uint32_t high = static_cast<uint32_t>(e >> 32), low = static_cast<uint32_t>(e);
    if (high != static_cast<uint32_t>(FTAPI_ConnectFailType_RecvFailed) || (low != 0 && low != 71))
        violation("OnDisConnect with an error the receive path never gives");
}

uint32_t get_u32(const unsigned char* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
}

const char* g_stream = 0;
std::vector<size_t> g_cuts;
const char* g_how = "eof";
std::mutex g_done_mu;
std::condition_variable g_done_cv;
bool g_done = false;

// The I/O thread of a case: run() with one end of a stream pair instead of a connect.
testnet::sock_t g_fds[2];  // [0] the channel's end, [1] the writer's

void io_thread() {
    Channel& c = *g_case.channel;
    FeedHarness::enter(c);
    if (!FeedHarness::queue_init_request(c)) {
        g_how = "start-failed";
        if (!g_case.finished) violation("InitConnect request could not be queued and no OnInitConnect said so");
        testnet::close_sock(g_fds[0]);
    } else {
        FeedHarness::serve(c, static_cast<net::socket_t>(g_fds[0]));  // the channel closes its end when the thread ends
        if (g_case.closed) {
            g_how = "closed";
        } else {
            if (!g_case.finished) violation("the read loop ended the connection without a callback");
            bool peer = g_last_err == static_cast<long long>(static_cast<uint64_t>(FTAPI_ConnectFailType_RecvFailed) << 32) ||
                        g_last_init_desc == "connection closed by peer";
            g_how = peer ? "eof" : "stream";
        }
    }
    if (FeedHarness::reassembler_capacity(c) > Reassembler::kKeepCapacity + kHeaderSize)
        violation("the reassembly buffer kept a large packet's size");
    FeedHarness::finish(c);
    std::lock_guard<std::mutex> g(g_done_mu);
    g_done = true;
    g_done_cv.notify_all();
}

// The server: the stream in its pieces, then end of stream. Stops when the channel closes its end.
void writer_thread() {
    size_t pos = 0;
    for (size_t i = 0; i < g_cuts.size(); ++i) {
        while (pos < g_cuts[i]) {
            long n = testnet::send_bytes(g_fds[1], g_stream + pos, g_cuts[i] - pos);
            if (n <= 0) {
                testnet::close_sock(g_fds[1]);
                return;
            }
            pos += static_cast<size_t>(n);
        }
    }
    testnet::shutdown_write(g_fds[1]);
    // hold the end open until the channel closes its own: reading drains what it sends
    char buf[4096];
    for (int i = 0; i < 100000 && testnet::recv_bytes(g_fds[1], buf, sizeof(buf)) > 0; ++i) {
    }
    testnet::close_sock(g_fds[1]);
}

bool run_case(int index, const std::string& rec, const std::string& rsa_pem) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(rec.data());
    size_t n = rec.size(), at = 0;
    if (n < 1 + 2) return false;
    unsigned flags = p[at++];
    unsigned nreq = p[at] | (p[at + 1] << 8);
    at += 2;
    if (n - at < static_cast<size_t>(nreq) * 4 + 2) return false;
    std::vector<uint32_t> reqs;
    for (unsigned i = 0; i < nreq; ++i, at += 4) reqs.push_back(get_u32(p + at));
    unsigned nsplit = p[at] | (p[at + 1] << 8);
    at += 2;
    if (n - at < static_cast<size_t>(nsplit) * 4) return false;
    std::vector<size_t> cuts;
    for (unsigned i = 0; i < nsplit; ++i, at += 4) cuts.push_back(get_u32(p + at));
    const char* stream = rec.data() + at;
    size_t len = n - at;
    for (size_t i = 0; i < cuts.size(); ++i) cuts[i] = std::min(cuts[i], len);
    cuts.push_back(len);
    std::sort(cuts.begin(), cuts.end());

    g_case = CaseState();
    g_case.index = index;
    g_case.encrypt = (flags & 1) != 0;
    g_case.close_in_callback = (flags & 4) != 0;
    g_case.requests = reqs;
    g_case.init_seen = g_case.init_ok = g_case.finished = g_case.closed = false;
    g_case.last_serial = 1;  // InitConnect takes serial 1 on a fresh channel
    FTAPIChannelPtr ch = CreateFTAPIChannel();
    if (!ch) {
        violation("CreateFTAPIChannel failed");
        return true;
    }
    g_case.channel = static_cast<Channel*>(ch);
    FTAPIChannel_SetClientInfo(ch, "channel_feed", 1);
    if (flags & 2) FTAPIChannel_SetRSAPrivateKey(ch, rsa_pem.c_str());
    FTAPIChannel_SetOnInitConnectCallback(ch, on_init);
    FTAPIChannel_SetOnReplyCallback(ch, on_reply);
    FTAPIChannel_SetOnPushCallback(ch, on_push);
    FTAPIChannel_SetOnDisconnectCallback(ch, on_disconnect);
    out("case %d\n", index);
    g_stream = stream;
    g_cuts = cuts;
    g_how = "eof";
    {
        std::lock_guard<std::mutex> g(g_done_mu);
        g_done = false;
    }
    g_last_init_desc.clear();
    g_last_err = 0;
    std::thread t, w;
    if (!testnet::stream_pair(g_fds)) {
        violation("cannot make a connected socket pair");
    } else if (!FeedHarness::start(*g_case.channel, g_case.encrypt, io_thread, t)) {
        violation("cannot start the I/O thread");
        testnet::close_sock(g_fds[0]);
        testnet::close_sock(g_fds[1]);
    } else {
        w = std::thread(writer_thread);
        // the case runs on the channel's thread
        {
            std::unique_lock<std::mutex> g(g_done_mu);
            g_done_cv.wait(g, [] { return g_done; });
        }
        t.join();
        w.join();
    }
    out("end %s\n", g_how);
    ReleaseFTAPIChannel(ch);
    g_case.channel = 0;
    return true;
}

bool read_all(FILE* f, std::string& s) {
    char buf[65536];
    for (;;) {
        size_t n = fread(buf, 1, sizeof(buf), f);
        s.append(buf, n);
        if (n < sizeof(buf)) return !ferror(f);
    }
}

}  // namespace

#ifdef OPEND_CHANNEL_LIBFUZZER
// libFuzzer: one record per input, quiet; the key from CHANNEL_FEED_RSA_KEY
namespace {
std::string g_fuzz_pem;
int g_fuzz_cases = 0;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_quiet = true;
    const char* path = getenv("CHANNEL_FEED_RSA_KEY");
    if (path && *path) {
        FILE* f = fopen(path, "rb");
        if (!f || !read_all(f, g_fuzz_pem)) {
            fprintf(stderr, "channel_feed: cannot read %s\n", path);
            abort();
        }
        fclose(f);
    }
    FTAPIChannel_Init();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string rec(reinterpret_cast<const char*>(data), size);
    run_case(g_fuzz_cases++, rec, g_fuzz_pem);  // a malformed record is an input like any other
    if (g_violations) abort();
    return 0;
}
#else
int main(int argc, char** argv) {
    std::string rsa_path, in_path;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--rsa-key" && i + 1 < argc) rsa_path = argv[++i];
        else if (a == "--quiet") g_quiet = true;
        else if (in_path.empty()) in_path = a;
        else {
            fprintf(stderr, "usage: channel_feed [--rsa-key PEM] [--quiet] [FILE]\n");
            return 2;
        }
    }
    std::string rsa_pem;
    if (!rsa_path.empty()) {
        FILE* f = fopen(rsa_path.c_str(), "rb");
        if (!f || !read_all(f, rsa_pem)) {
            fprintf(stderr, "channel_feed: cannot read %s\n", rsa_path.c_str());
            return 2;
        }
        fclose(f);
    }
    std::string input;
    FILE* f = in_path.empty() || in_path == "-" ? stdin : fopen(in_path.c_str(), "rb");
    if (!f || !read_all(f, input)) {
        fprintf(stderr, "channel_feed: cannot read the input\n");
        return 2;
    }
    if (f != stdin) fclose(f);

    FTAPIChannel_Init();
    size_t at = 0;
    int cases = 0;
    while (at < input.size()) {
        if (input.size() - at < 4) {
            fprintf(stderr, "channel_feed: truncated record length at %zu\n", at);
            return 2;
        }
        uint32_t n = get_u32(reinterpret_cast<const unsigned char*>(input.data()) + at);
        at += 4;
        if (input.size() - at < n) {
            fprintf(stderr, "channel_feed: record %d runs past the input\n", cases);
            return 2;
        }
        if (!run_case(cases, input.substr(at, n), rsa_pem)) {
            fprintf(stderr, "channel_feed: record %d is malformed\n", cases);
            return 2;
        }
        at += n;
        ++cases;
    }
    FTAPIChannel_UnInit();
    fflush(stdout);
    fprintf(stderr, "channel_feed: %d cases, %ld callbacks, %ld violations\n", cases, g_callbacks, g_violations);
    return g_violations ? 1 : 0;
}
#endif
