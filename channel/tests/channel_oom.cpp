// Allocation failure across the channel: a test-only operator new that fails the Nth allocation
// after it is armed (every thread counts), for each N in a range; one whole session per N against a
// server on loopback (connect, InitConnect, GetGlobalState, reply, Close, Release):
//   channel_oom HOST PORT FROM TO
// No exception may leave the library (it would end the process: callbacks and the C API are
// noexcept territory), and every session must end with a result the application sees: an error
// return, OnInitConnect, OnReply or OnDisConnect within 5 s. Exit 0 with a summary line.
#include <stdio.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>

#include "FTAPIChannel.h"

namespace {
std::atomic<long> g_countdown(0);  // > 0: armed; the allocation that takes it to 0 fails
std::atomic<long> g_failed_allocs(0);

void* allocate(size_t n) {
    if (g_countdown.load(std::memory_order_relaxed) > 0 && g_countdown.fetch_sub(1) == 1) {
        ++g_failed_allocs;
        return 0;
    }
    return malloc(n ? n : 1);
}
}  // namespace

void* operator new(size_t n) {
    void* p = allocate(n);
    if (!p) throw std::bad_alloc();
    return p;
}
void* operator new[](size_t n) {
    void* p = allocate(n);
    if (!p) throw std::bad_alloc();
    return p;
}
void* operator new(size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }
void operator delete[](void* p, size_t) noexcept { free(p); }

namespace {
std::mutex g_mu;
std::condition_variable g_cv;
bool g_end = false;
int g_outcome = 0;  // 1 reply, 2 init error, 3 disconnect, 4 SendProto refused

const char kBody[] = {0x0a, 0x02, 0x08, 0x01};

void finish(int how) {
    {
        std::lock_guard<std::mutex> g(g_mu);
        if (!g_end) g_outcome = how;
        g_end = true;
    }
    g_cv.notify_all();
}

void on_init(FTAPIChannelPtr ch, Futu::i64_t err, const char*) {
    if (err != 0) return finish(2);
    if (FTAPIChannel_SendProto(ch, 1002, 0, kBody, sizeof(kBody)) == 0) finish(4);
}
void on_reply(FTAPIChannelPtr, FTAPI_ReqReplyType, const FTAPI_ProtoHeader*, const Futu::i8_t*, Futu::i32_t) { finish(1); }
void on_disconnect(FTAPIChannelPtr, Futu::i64_t) { finish(3); }
}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: channel_oom HOST PORT FROM TO\n");
        return 2;
    }
    const char* host = argv[1];
    int port = atoi(argv[2]);
    long from = atol(argv[3]), to = atol(argv[4]);
    long counts[5] = {0, 0, 0, 0, 0};
    long create_failed = 0, connect_refused = 0, silent = 0;
    FTAPIChannel_Init();
    for (long n = from; n <= to && n - from < 100000; ++n) {
        {
            std::lock_guard<std::mutex> g(g_mu);
            g_end = false;
            g_outcome = 0;
        }
        g_countdown = n;
        FTAPIChannelPtr ch = CreateFTAPIChannel();
        if (!ch) {
            g_countdown = 0;
            ++create_failed;
            continue;
        }
        FTAPIChannel_SetOnInitConnectCallback(ch, on_init);
        FTAPIChannel_SetOnReplyCallback(ch, on_reply);
        FTAPIChannel_SetOnDisconnectCallback(ch, on_disconnect);
        if (FTAPIChannel_InitConnect(ch, host, static_cast<Futu::u16_t>(port), 0) != 0) {
            ++connect_refused;
        } else {
            std::unique_lock<std::mutex> g(g_mu);
            std::chrono::steady_clock::time_point until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            while (!g_end && std::chrono::steady_clock::now() < until) g_cv.wait_until(g, until);
            if (!g_end) {
                ++silent;
                printf("silent session at n=%ld\n", n);
            } else {
                ++counts[g_outcome];
            }
        }
        g_countdown = 0;
        FTAPIChannel_Close(ch);
        ReleaseFTAPIChannel(ch);
    }
    FTAPIChannel_UnInit();
    printf("channel_oom: n=%ld..%ld failed_allocs=%ld create_failed=%ld initconnect_failed=%ld replies=%ld "
           "init_errors=%ld disconnects=%ld send_refused=%ld silent=%ld\n",
           from, to, g_failed_allocs.load(), create_failed, connect_refused, counts[1], counts[2], counts[3], counts[4],
           silent);
    return silent ? 1 : 0;
}
