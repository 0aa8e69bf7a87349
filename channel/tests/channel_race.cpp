// The lifetime promises of the C API under concurrency, over the public C API only, each round a
// fresh channel against a server on loopback (src/opend_build/standin.py):
//   channel_race HOST PORT SCENARIO ROUNDS [CLOSING_PORT]
// SCENARIO:
//   close-vs-release   Close on the main thread while OnInitConnect calls ReleaseFTAPIChannel:
//                      Close returns after that callback, nothing is used after it is freed
//   double-close       two threads Close at once while a callback runs: both return after it
//   release-while-send another thread sends while OnInitConnect releases the channel
//   clear-callback     SetOnReplyCallback(NULL) while OnReply runs: returns after it
//   close-vs-init      Close on one thread while another calls InitConnect until it succeeds (once
//                      the closed connection's thread has left): the new connection is untouched,
//                      it connects and answers a request
//   cross-release      two channels (CLOSING_PORT: a server that closes the connection on the first
//                      request) release each other from OnDisConnect: no deadlock
// Prints "ok SCENARIO rounds=N"; exit 0 when every round held, 1 on a broken promise, 3 when a
// round hangs (a watchdog ends the process after 20 s per round).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "FTAPIChannel.h"

namespace {

typedef std::chrono::steady_clock Clock;

const Futu::u32_t kGetGlobalState = 1002;
const char kGlobalStateBody[] = {0x0a, 0x02, 0x08, 0x01};

std::mutex g_mu;
std::condition_variable g_cv;
int g_stage = 0;  // what the callback and the main thread tell each other, per round
std::atomic<bool> g_cb_done(false);
std::atomic<bool> g_released(false);
std::atomic<bool> g_sender_stopped(false);
std::atomic<long> g_round_started(0);
int g_failures = 0;

void set_stage(int s) {
    {
        std::lock_guard<std::mutex> g(g_mu);
        g_stage = s;
    }
    g_cv.notify_all();
}

bool wait_stage(int s, int ms) {
    std::unique_lock<std::mutex> g(g_mu);
    Clock::time_point until = Clock::now() + std::chrono::milliseconds(ms);
    while (g_stage < s && Clock::now() < until) g_cv.wait_until(g, until);
    return g_stage >= s;
}

void fail(const char* what) {
    fprintf(stdout, "FAILED: %s\n", what);
    fflush(stdout);
    std::lock_guard<std::mutex> g(g_mu);
    ++g_failures;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// --- close-vs-release ---
void cvr_on_init(FTAPIChannelPtr ch, Futu::i64_t err, const char*) {
    if (err != 0) {
        fail("InitConnect failed");
        set_stage(1);
        return;
    }
    set_stage(1);
    wait_stage(2, 5000);  // the main thread is about to Close
    sleep_ms(2);          // ... and is inside Close by now
    ReleaseFTAPIChannel(ch);
    g_released = true;
}

// --- double-close, clear-callback: a callback that takes a while ---
void slow_on_init(FTAPIChannelPtr, Futu::i64_t err, const char*) {
    if (err != 0) fail("InitConnect failed");
    set_stage(1);
    sleep_ms(30);
    g_cb_done = true;
}

void send_on_init(FTAPIChannelPtr ch, Futu::i64_t err, const char*) {
    if (err != 0) {
        fail("InitConnect failed");
        set_stage(1);
        return;
    }
    if (FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, sizeof(kGlobalStateBody)) == 0)
        fail("SendProto from OnInitConnect");
}

void slow_on_reply(FTAPIChannelPtr, FTAPI_ReqReplyType, const FTAPI_ProtoHeader*, const Futu::i8_t*, Futu::i32_t) {
    set_stage(1);
    sleep_ms(30);
    g_cb_done = true;
}

// --- release-while-send ---
void rws_on_init(FTAPIChannelPtr ch, Futu::i64_t err, const char*) {
    if (err != 0) fail("InitConnect failed");
    set_stage(1);
    wait_stage(2, 5000);  // the sender runs
    sleep_ms(1);
    ReleaseFTAPIChannel(ch);
    g_released = true;
    // the I/O thread holds the channel until this returns: the sender's calls stay valid till then
    Clock::time_point until = Clock::now() + std::chrono::seconds(5);
    while (!g_sender_stopped && Clock::now() < until) sleep_ms(1);
}

// --- close-vs-init ---
std::atomic<int> g_inits(0);
std::atomic<int> g_replies(0);
void cvi_on_init(FTAPIChannelPtr, Futu::i64_t err, const char*) {
    if (err != 0) fail("InitConnect failed");
    if (++g_inits == 1) {
        set_stage(1);
        sleep_ms(3);  // Close waits for this; the other thread's InitConnect keeps trying meanwhile
    }
}
void cvi_on_reply(FTAPIChannelPtr, FTAPI_ReqReplyType t, const FTAPI_ProtoHeader*, const Futu::i8_t*, Futu::i32_t) {
    if (t != FTAPI_ReqReplyType_SvrReply) fail("the new connection's request got no server reply");
    ++g_replies;
}

// --- cross-release ---
FTAPIChannelPtr g_pair[2];
std::atomic<bool> g_pair_released[2];
std::atomic<int> g_disconnects(0);

void cross_release(FTAPIChannelPtr self) {
    int me = self == g_pair[0] ? 0 : 1;
    if (!g_pair_released[1 - me].exchange(true)) ReleaseFTAPIChannel(g_pair[1 - me]);
}
void cross_on_init(FTAPIChannelPtr ch, Futu::i64_t err, const char*) {
    if (err != 0) {
        fail("InitConnect failed");
        ++g_disconnects;
        return;
    }
    FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, sizeof(kGlobalStateBody));
}
void cross_on_disconnect(FTAPIChannelPtr ch, Futu::i64_t) {
    sleep_ms(1);  // both are in OnDisConnect more often
    cross_release(ch);
    ++g_disconnects;
}

FTAPIChannelPtr make(const char* host, int port, FTAPIChannel_OnInitConnectCallback on_init) {
    FTAPIChannelPtr ch = CreateFTAPIChannel();
    if (!ch) return 0;
    FTAPIChannel_SetClientInfo(ch, "channel_race", 1);
    FTAPIChannel_SetOnInitConnectCallback(ch, on_init);
    if (FTAPIChannel_InitConnect(ch, host, static_cast<Futu::u16_t>(port), 0) != 0) fail("InitConnect returned an error");
    return ch;
}

void round_close_vs_release(const char* host, int port) {
    FTAPIChannelPtr ch = make(host, port, cvr_on_init);
    if (!wait_stage(1, 10000)) {
        fail("no OnInitConnect");
        return;
    }
    set_stage(2);
    FTAPIChannel_Close(ch);  // may run while the callback releases the channel
    if (!g_released) fail("Close returned before the callback that released the channel");
}

void round_double_close(const char* host, int port) {
    FTAPIChannelPtr ch = make(host, port, slow_on_init);
    if (!wait_stage(1, 10000)) fail("no OnInitConnect");
    std::atomic<int> early(0);
    std::thread a([&] {
        FTAPIChannel_Close(ch);
        if (!g_cb_done) ++early;
    });
    std::thread b([&] {
        FTAPIChannel_Close(ch);
        if (!g_cb_done) ++early;
    });
    a.join();
    b.join();
    if (early) fail("a Close returned while a callback was still running");
    ReleaseFTAPIChannel(ch);
}

void round_release_while_send(const char* host, int port) {
    FTAPIChannelPtr ch = make(host, port, rws_on_init);
    if (!wait_stage(1, 10000)) {
        fail("no OnInitConnect");
        return;
    }
    std::thread sender([&] {
        set_stage(2);
        for (int i = 0; i < 1000000 && !g_released; ++i)
            FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, sizeof(kGlobalStateBody));
        // a few more while the callback still runs: the channel is closed, SendProto gives 0
        for (int i = 0; i < 10; ++i)
            if (FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, sizeof(kGlobalStateBody)) != 0)
                fail("SendProto after Release returned a serial");
        g_sender_stopped = true;
    });
    sender.join();
}

void round_close_vs_init(const char* host, int port) {
    g_inits = 0;
    g_replies = 0;
    FTAPIChannelPtr ch = CreateFTAPIChannel();
    FTAPIChannel_SetOnReplyCallback(ch, cvi_on_reply);
    FTAPIChannel_SetOnInitConnectCallback(ch, cvi_on_init);
    if (FTAPIChannel_InitConnect(ch, host, static_cast<Futu::u16_t>(port), 0) != 0) fail("InitConnect returned an error");
    if (!wait_stage(1, 10000)) fail("no OnInitConnect");
    std::atomic<bool> started(false);
    std::thread opener([&] {
        // -1 while the first connection runs; 0 once its thread has left (Close may not have returned)
        Clock::time_point until = Clock::now() + std::chrono::seconds(10);
        while (Clock::now() < until)
            if (FTAPIChannel_InitConnect(ch, host, static_cast<Futu::u16_t>(port), 0) == 0) {
                started = true;
                break;
            }
    });
    std::thread closer([&] { FTAPIChannel_Close(ch); });
    closer.join();
    opener.join();
    if (!started) fail("InitConnect never succeeded after Close");
    Clock::time_point until = Clock::now() + std::chrono::seconds(10);
    while (g_inits < 2 && Clock::now() < until) sleep_ms(1);
    if (g_inits < 2) fail("the connection started during Close did not connect");
    else if (FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, sizeof(kGlobalStateBody)) == 0)
        fail("the connection started during Close does not send");
    else {
        while (g_replies < 1 && Clock::now() < until) sleep_ms(1);
        if (g_replies < 1) fail("the connection started during Close got no reply");
    }
    ReleaseFTAPIChannel(ch);
}

void round_clear_callback(const char* host, int port) {
    FTAPIChannelPtr ch = CreateFTAPIChannel();
    FTAPIChannel_SetOnInitConnectCallback(ch, send_on_init);
    FTAPIChannel_SetOnReplyCallback(ch, slow_on_reply);
    if (FTAPIChannel_InitConnect(ch, host, static_cast<Futu::u16_t>(port), 0) != 0) fail("InitConnect returned an error");
    if (!wait_stage(1, 10000)) fail("no OnReply");
    FTAPIChannel_SetOnReplyCallback(ch, 0);
    if (!g_cb_done) fail("SetOnReplyCallback(NULL) returned while OnReply was still running");
    FTAPIChannel_Close(ch);
    ReleaseFTAPIChannel(ch);
}

void round_cross_release(const char* host, int port) {
    g_disconnects = 0;
    for (int i = 0; i < 2; ++i) {
        g_pair_released[i] = false;
        g_pair[i] = CreateFTAPIChannel();
        FTAPIChannel_SetOnInitConnectCallback(g_pair[i], cross_on_init);
        FTAPIChannel_SetOnDisconnectCallback(g_pair[i], cross_on_disconnect);
    }
    for (int i = 0; i < 2; ++i)
        if (FTAPIChannel_InitConnect(g_pair[i], host, static_cast<Futu::u16_t>(port), 0) != 0)
            fail("InitConnect returned an error");
    // one disconnect at least (the first releases the other, whose own may then not come)
    Clock::time_point until = Clock::now() + std::chrono::seconds(10);
    while (g_disconnects < 1 && Clock::now() < until) sleep_ms(1);
    if (g_disconnects < 1) fail("no OnDisConnect");
    sleep_ms(5);
    for (int i = 0; i < 2; ++i)
        if (!g_pair_released[i].exchange(true)) ReleaseFTAPIChannel(g_pair[i]);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: channel_race HOST PORT SCENARIO ROUNDS [CLOSING_PORT]\n");
        return 2;
    }
    const char* host = argv[1];
    int port = atoi(argv[2]);
    std::string scenario = argv[3];
    int rounds = atoi(argv[4]);
    int closing_port = argc > 5 ? atoi(argv[5]) : 0;
    void (*round)(const char*, int) = 0;
    if (scenario == "close-vs-release") round = round_close_vs_release;
    else if (scenario == "double-close") round = round_double_close;
    else if (scenario == "release-while-send") round = round_release_while_send;
    else if (scenario == "clear-callback") round = round_clear_callback;
    else if (scenario == "close-vs-init") round = round_close_vs_init;
    else if (scenario == "cross-release") {
        round = round_cross_release;
        port = closing_port;
    }
    if (!round || rounds <= 0 || rounds > 100000 || port <= 0) {
        fprintf(stderr, "channel_race: unknown scenario or bad arguments\n");
        return 2;
    }
    // a round that hangs (a deadlock) ends the process with 3
    std::thread([] {
        long last = -1;
        for (;;) {
            long now = g_round_started.load();
            if (now == last) {
                fprintf(stdout, "FAILED: round %ld hangs\n", now);
                fflush(stdout);
                _Exit(3);
            }
            last = now;
            std::this_thread::sleep_for(std::chrono::seconds(20));
        }
    }).detach();
    FTAPIChannel_Init();
    for (int r = 0; r < rounds; ++r) {
        ++g_round_started;
        set_stage(0);
        g_cb_done = false;
        g_released = false;
        g_sender_stopped = false;
        round(host, port);
        FTAPIChannel_UnInit();  // released channels' threads end before the next round
    }
    int failures;
    {
        std::lock_guard<std::mutex> g(g_mu);
        failures = g_failures;
    }
    if (failures) {
        printf("FAILED: %d broken promises in %s\n", failures, scenario.c_str());
        return 1;
    }
    printf("ok %s rounds=%d\n", scenario.c_str(), rounds);
    return 0;
}
