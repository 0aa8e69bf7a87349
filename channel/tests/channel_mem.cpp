// Peak memory of one large packet, both ways, counted by a replaced global operator new (every
// std::string and container of the channel allocates through it; OpenSSL's own small, fixed
// allocations go to malloc and are not counted).
//
//   channel_mem MODE MIB        MODE: plain | cbc | ecb, MIB: the body size in MiB (1..32)
//
// send: one SendProto of MIB MiB on a ready connection (MODE's encryption) whose peer reads
//       nothing, so the packet stays queued: what the channel allocated during the call at its
//       peak, and what it still holds after it (the queued packet).
// recv: the peer sends one push of MIB MiB (MODE's encryption) in 64 KiB writes, then a small push,
//       then closes; the channel's live bytes at its peak while receiving, when OnPush sees the
//       large body, after the small push, and its reassembly buffer's capacity then.
// Prints "send body=B peak=P held=H" and "recv body=B peak=P at_push=A after=F reasm=R" (bytes,
// over the live bytes before), then "ok"; exit 1 when a step fails. The connection is a
// socketpair / loopback pair driven by the real I/O loop (pump), as in channel_feed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <new>
#include <string>
#include <thread>

#include "FTAPIChannel.h"
#include "channel.h"
#include "crypto.h"
#include "feed_harness.h"
#include "wire.h"

namespace {

std::atomic<long long> g_live(0), g_peak(0);

void* counted_alloc(size_t n) {
    void* p = malloc(n + 16);
    if (!p) return 0;
    *static_cast<size_t*>(p) = n;
    long long now = g_live.fetch_add(static_cast<long long>(n)) + static_cast<long long>(n);
    long long peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
    return static_cast<char*>(p) + 16;
}

void counted_free(void* q) {
    if (!q) return;
    void* p = static_cast<char*>(q) - 16;
    g_live.fetch_sub(static_cast<long long>(*static_cast<size_t*>(p)));
    free(p);
}

}  // namespace

void* operator new(size_t n) {
    void* p = counted_alloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}
void* operator new[](size_t n) {
    void* p = counted_alloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}
void* operator new(size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, size_t) noexcept { counted_free(p); }
void operator delete[](void* p, size_t) noexcept { counted_free(p); }

using namespace opend_channel;

namespace {

const std::string kKey = "0123456789abcdef", kIv = "fedcba9876543210";
std::string g_mode;
FTAPIChannelPtr g_ch = 0;
testnet::sock_t g_fds[2];
bool g_failed = false;
// recv
long long g_base = 0, g_at_push = -1, g_after_small = -1;
size_t g_reasm_after = 0;
int g_big_pushes = 0, g_small_pushes = 0;
int32_t g_big_len = 0;

void fail(const char* what) {
    fprintf(stderr, "channel_mem: %s\n", what);
    g_failed = true;
}

std::string key_of_mode() { return g_mode == "plain" ? std::string() : kKey; }
std::string iv_of_mode() { return g_mode == "cbc" ? kIv : std::string(); }

std::string wire_body(const std::string& plain) {
    std::string out;
    if (g_mode == "plain") return plain;
    bool ok = g_mode == "cbc" ? aes_cbc_encrypt(kKey, kIv, plain, out) : ftaes_ecb_encrypt(kKey, plain, out);
    if (!ok) fail("cannot encrypt");
    return out;
}

std::string frame(uint32_t proto, uint32_t serial, const std::string& plain) {
    std::string body = wire_body(plain);
    uint8_t digest[20];
    if (!sha1(plain.data(), plain.size(), digest)) fail("no SHA-1");
    FTAPI_ProtoHeader h = make_header(proto, 0, serial, static_cast<uint32_t>(body.size()), digest);
    uint8_t hb[kHeaderSize];
    pack_header(h, hb);
    return std::string(reinterpret_cast<const char*>(hb), kHeaderSize) + body;
}

void io_body() {
    Channel& c = *static_cast<Channel*>(g_ch);
    FeedHarness::enter(c);
    FeedHarness::serve(c, static_cast<net::socket_t>(g_fds[0]));
    FeedHarness::finish(c);
}

// (the I/O thread; the ECB tail and the mode's key make no difference to what is counted)
void on_push(FTAPIChannelPtr p, const FTAPI_ProtoHeader* h, const Futu::i8_t*, Futu::i32_t len) {
    if (!h) return;
    if (len > 1024 * 1024) {
        ++g_big_pushes;
        g_big_len = len;
        g_at_push = g_live.load() - g_base;
    } else {
        ++g_small_pushes;
        g_after_small = g_live.load() - g_base;
        g_reasm_after = FeedHarness::reassembler_capacity(*static_cast<Channel*>(p));
    }
}

bool open_ready(FTAPIChannel_OnPushCallback push) {
    g_ch = CreateFTAPIChannel();
    if (!g_ch) return false;
    if (push) FTAPIChannel_SetOnPushCallback(g_ch, push);
    if (!testnet::stream_pair(g_fds)) return false;
    Channel& c = *static_cast<Channel*>(g_ch);
    FeedHarness::attach(c, static_cast<net::socket_t>(g_fds[0]));
    return true;
}

void send_case(size_t n) {
    if (!open_ready(0)) return fail("cannot set up the send case");
    std::thread io;
    if (!FeedHarness::start_ready(*static_cast<Channel*>(g_ch), key_of_mode(), iv_of_mode(), io_body, io))
        return fail("cannot start the I/O thread");
    std::string body(n, 'b');
    for (size_t i = 0; i < n; i += 4096) body[i] = static_cast<char>(i >> 12);
    long long base = g_live.load();
    g_peak.store(base);
    uint32_t serial = FTAPIChannel_SendProto(g_ch, 3001, 0, reinterpret_cast<const Futu::i8_t*>(body.data()), static_cast<int32_t>(n));
    long long peak = g_peak.load() - base, held = g_live.load() - base;
    if (serial == 0) fail("SendProto refused the body");
    printf("send body=%lu peak=%lld held=%lld\n", static_cast<unsigned long>(n), peak, held);
    testnet::close_sock(g_fds[1]);  // the peer goes: the I/O thread reports it and ends
    FTAPIChannel_Close(g_ch);
    io.join();
    ReleaseFTAPIChannel(g_ch);
}

std::string g_stream;

void writer() {
    size_t pos = 0;
    for (int i = 0; i < 100000 && pos < g_stream.size(); ++i) {
        size_t k = g_stream.size() - pos < 65536 ? g_stream.size() - pos : 65536;
        long w = testnet::send_bytes(g_fds[1], g_stream.data() + pos, k);
        if (w <= 0) break;
        pos += static_cast<size_t>(w);
    }
    testnet::shutdown_write(g_fds[1]);
    char buf[4096];
    for (int i = 0; i < 100000 && testnet::recv_bytes(g_fds[1], buf, sizeof(buf)) > 0; ++i) {
    }
    testnet::close_sock(g_fds[1]);
}

void recv_case(size_t n) {
    std::string big(n, 'p');
    for (size_t i = 0; i < n; i += 4096) big[i] = static_cast<char>(i >> 12);
    g_stream = frame(3005, 7, big) + frame(3005, 8, "small");
    std::string().swap(big);
    if (!open_ready(on_push)) return fail("cannot set up the receive case");
    g_base = g_live.load();
    g_peak.store(g_base);
    std::thread io;
    if (!FeedHarness::start_ready(*static_cast<Channel*>(g_ch), key_of_mode(), iv_of_mode(), io_body, io))
        return fail("cannot start the I/O thread");
    std::thread w(writer);
    w.join();
    io.join();
    long long peak = g_peak.load() - g_base;
    if (g_big_pushes != 1 || g_small_pushes != 1 || g_big_len != static_cast<int32_t>(n)) fail("the pushes did not arrive as sent");
    printf("recv body=%lu peak=%lld at_push=%lld after=%lld reasm=%lu\n", static_cast<unsigned long>(n), peak, g_at_push,
           g_after_small, static_cast<unsigned long>(g_reasm_after));
    ReleaseFTAPIChannel(g_ch);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: channel_mem plain|cbc|ecb MIB\n");
        return 2;
    }
    g_mode = argv[1];
    long mib = atol(argv[2]);
    if ((g_mode != "plain" && g_mode != "cbc" && g_mode != "ecb") || mib < 1 || mib > 32) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    FTAPIChannel_Init();
    send_case(static_cast<size_t>(mib) << 20);
    recv_case(static_cast<size_t>(mib) << 20);
    FTAPIChannel_UnInit();
    if (g_failed) return 1;
    printf("ok\n");
    return 0;
}
