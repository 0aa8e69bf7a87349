// Benchmark client for the open channel, public C API only (FTAPIChannel.h).
//   channel_bench latency HOST PORT N [--warmup W] [--from-callback] [--spin-us S] [--rsa-key FILE] [--timeout-s S]
//   channel_bench pushes  HOST PORT M [--rsa-key FILE] [--timeout-s S]
// latency: W (default 100) then N GetGlobalState requests (1002, body Request{c2s{userID=0}}), one
//          at a time from the main thread, each waiting for its reply; the time from SendProto to
//          the main thread seeing the reply, per request. --from-callback: each next request is sent
//          from the OnReply callback (the channel's I/O thread), timed from SendProto to OnReply: the
//          channel without the hand-over to a waiting thread that a synchronous API needs.
//          --spin-us S (default 0: block at once): the main thread watches a flag for up to S
//          microseconds (yielding the CPU between looks) before it sleeps on the condition
//          variable; OnReply wakes it only if it sleeps. An experiment (bench/channel/README.md):
//          on the loaded 2-core machine spinning made the main-thread round trip slower, not faster.
// pushes:  Qot_Sub for HK.00700 Basic, then counts Qot_UpdateBasicQot (3005) pushes until M; the
//          window is from the first push to the M-th (also reported: from the Qot_Sub send).
// --rsa-key: PEM file; the key is set and InitConnect asks for encryption.
// Prints one JSON object on stdout; exit 0 when the run completed, 1 when it did not (the JSON
// then says why), 2 on bad arguments. Every wait is bounded by --timeout-s (default 60).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../channel/tests/read_file.h"

#include "FTAPIChannel.h"

namespace {

typedef std::chrono::steady_clock Clock;

const Futu::u32_t kGetGlobalState = 1002, kQotSub = 3001, kQotUpdateBasicQot = 3005;
const char kGlobalStateBody[] = {0x0a, 0x02, 0x08, 0x00};  // Request{c2s{userID=0}}
// Request{c2s{securityList{market=1 (HK), code="00700"}, subTypeList=1 (Basic), isSubOrUnSub, isRegOrUnRegPush}}
const char kSubBody[] = {0x0a, 0x11, 0x0a, 0x09, 0x08, 0x01, 0x12, 0x05, '0', '0', '7', '0', '0',
                         0x10, 0x01, 0x18, 0x01, 0x20, 0x01};

std::mutex g_mu;
std::condition_variable g_cv;
bool g_init_done = false;
Futu::i64_t g_init_err = 0;
bool g_disconnected = false;
Futu::i64_t g_disc_err = 0;
// latency: the serial awaited and whether its reply came
Futu::u32_t g_want_serial = 0;
bool g_got_reply = false;
int g_reply_type = 0;
std::atomic<bool> g_reply_flag(false);  // g_got_reply, for the spinning waiter (set under g_mu)
bool g_waiter_sleeps = false;           // the main thread sleeps on g_cv: OnReply must notify
long g_spin_us = 0;
// latency --from-callback
bool g_chain = false;
FTAPIChannelPtr g_chain_ch = 0;
long g_chain_total = 0, g_chain_warmup = 0, g_chain_index = 0;
bool g_chain_done = false;
std::string g_chain_error;
std::vector<double> g_chain_us;
Clock::time_point g_chain_t0;
// pushes
long g_push_want = 0;
long g_pushes = 0;
long g_other_pushes = 0;
long long g_push_bytes = 0;
bool g_sub_replied = false;
int g_sub_type = 0;
Clock::time_point g_first_push, g_last_push, g_sub_reply_at;

void on_init(FTAPIChannelPtr, Futu::i64_t err, const char*) {
    {
        std::lock_guard<std::mutex> g(g_mu);
        g_init_done = true;
        g_init_err = err;
    }
    g_cv.notify_all();
}

void on_disconnect(FTAPIChannelPtr, Futu::i64_t err) {
    {
        std::lock_guard<std::mutex> g(g_mu);
        g_disconnected = true;
        g_disc_err = err;
    }
    g_cv.notify_all();
}

void on_reply(FTAPIChannelPtr, FTAPI_ReqReplyType type, const FTAPI_ProtoHeader* h, const Futu::i8_t*, Futu::i32_t) {
    if (!h) return;
    bool wake = false;
    {
        std::lock_guard<std::mutex> g(g_mu);
        if (g_chain && h->nProtoID == kGetGlobalState && h->nSerialNo == g_want_serial && !g_chain_done) {
            Clock::time_point now = Clock::now();
            if (type != FTAPI_ReqReplyType_SvrReply) {
                g_chain_error = "reply type " + std::to_string(static_cast<int>(type));
                g_chain_done = true;
            } else {
                if (g_chain_index >= g_chain_warmup)
                    g_chain_us.push_back(std::chrono::duration<double, std::micro>(now - g_chain_t0).count());
                if (++g_chain_index >= g_chain_total) {
                    g_chain_done = true;
                } else {
                    g_chain_t0 = Clock::now();
                    g_want_serial = FTAPIChannel_SendProto(g_chain_ch, kGetGlobalState, 0, kGlobalStateBody,
                                                           sizeof(kGlobalStateBody));
                    if (g_want_serial == 0) {
                        g_chain_error = "SendProto returned 0 in OnReply";
                        g_chain_done = true;
                    }
                }
            }
            wake = g_chain_done;
        } else if (h->nProtoID == kGetGlobalState && h->nSerialNo == g_want_serial) {
            g_got_reply = true;
            g_reply_type = static_cast<int>(type);
            g_reply_flag.store(true, std::memory_order_release);
            wake = g_waiter_sleeps;  // a spinning waiter sees the flag: no wake-up to pay
        } else if (h->nProtoID == kQotSub) {
            g_sub_replied = true;
            g_sub_type = static_cast<int>(type);
            g_sub_reply_at = Clock::now();
            wake = true;
        }
    }
    if (wake) g_cv.notify_all();
}

void on_push(FTAPIChannelPtr, const FTAPI_ProtoHeader* h, const Futu::i8_t*, Futu::i32_t len) {
    Clock::time_point now = Clock::now();
    bool wake = false;
    {
        std::lock_guard<std::mutex> g(g_mu);
        if (h && h->nProtoID == kQotUpdateBasicQot) {
            if (g_pushes == 0) g_first_push = now;
            g_last_push = now;
            ++g_pushes;
            g_push_bytes += len;
            wake = g_pushes == g_push_want;
        } else {
            ++g_other_pushes;
        }
    }
    if (wake) g_cv.notify_all();
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double percentile(std::vector<double> v, double p) {  // nearest rank
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t rank = static_cast<size_t>(p / 100.0 * v.size() + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > v.size()) rank = v.size();
    return v[rank - 1];
}

void fail_json(const char* mode, const std::string& why) {
    printf("{\"client\": \"channel\", \"mode\": \"%s\", \"ok\": false, \"error\": \"%s\"}\n", mode, why.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: channel_bench latency|pushes HOST PORT COUNT [--warmup W] [--from-callback] [--spin-us S] [--rsa-key FILE] [--timeout-s S]\n");
        return 2;
    }
    std::string mode = argv[1];
    const char* host = argv[2];
    int port = atoi(argv[3]);
    long count = atol(argv[4]);
    long warmup = 100;
    double timeout_s = 60;
    std::string pem;
    for (int i = 5; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--warmup" && i + 1 < argc) warmup = atol(argv[++i]);
        else if (a == "--timeout-s" && i + 1 < argc) timeout_s = atof(argv[++i]);
        else if (a == "--from-callback") g_chain = true;
        else if (a == "--spin-us" && i + 1 < argc) g_spin_us = atol(argv[++i]);
        else if (a == "--rsa-key" && i + 1 < argc) {
            if (!read_file(argv[++i], pem)) {
                fprintf(stderr, "cannot read %s\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    if ((mode != "latency" && mode != "pushes") || port <= 0 || port > 65535 || count <= 0 || count > 10000000 ||
        warmup < 0 || warmup > 10000000 || timeout_s <= 0 || g_spin_us < 0 || g_spin_us > 1000000) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000));
    const bool encrypt = !pem.empty();

    FTAPIChannel_Init();
    FTAPIChannelPtr ch = CreateFTAPIChannel();
    if (!ch) {
        fail_json(mode.c_str(), "CreateFTAPIChannel returned NULL");
        return 1;
    }
    FTAPIChannel_SetClientInfo(ch, "channel_bench", 100);
    if (encrypt) FTAPIChannel_SetRSAPrivateKey(ch, pem.c_str());
    FTAPIChannel_SetOnInitConnectCallback(ch, on_init);
    FTAPIChannel_SetOnReplyCallback(ch, on_reply);
    FTAPIChannel_SetOnPushCallback(ch, on_push);
    FTAPIChannel_SetOnDisconnectCallback(ch, on_disconnect);

    int rc = 0;
    std::string error;
    Clock::time_point t_connect = Clock::now();
    if (FTAPIChannel_InitConnect(ch, host, static_cast<Futu::u16_t>(port), encrypt ? 1 : 0) != 0) {
        error = "InitConnect did not start";
    } else {
        std::unique_lock<std::mutex> g(g_mu);
        if (!g_cv.wait_until(g, deadline, [] { return g_init_done; })) error = "no OnInitConnect in time";
        else if (g_init_err != 0) error = "OnInitConnect error " + std::to_string(static_cast<long long>(g_init_err));
    }
    double connect_s = seconds(Clock::now() - t_connect);

    if (error.empty() && mode == "latency") {
        std::vector<double> us;
        us.reserve(static_cast<size_t>(count));
        if (g_chain) {
            std::unique_lock<std::mutex> g(g_mu);
            g_chain_ch = ch;
            g_chain_total = warmup + count;
            g_chain_warmup = warmup;
            g_chain_us.reserve(static_cast<size_t>(count));
            g_chain_t0 = Clock::now();
            g_want_serial = FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, sizeof(kGlobalStateBody));
            if (g_want_serial == 0) error = "SendProto returned 0";
            else if (!g_cv.wait_until(g, deadline, [] { return g_chain_done || g_disconnected; }) || !g_chain_done)
                error = g_disconnected ? "disconnected" : "timed out waiting for the replies";
            else if (!g_chain_error.empty()) error = g_chain_error;
            g_chain_done = true;  // a late reply after a timeout sends nothing more
            us = g_chain_us;
        }
        for (long i = 0; !g_chain && i < warmup + count && error.empty(); ++i) {
            Clock::time_point t0 = Clock::now();
            {
                std::lock_guard<std::mutex> g(g_mu);
                g_got_reply = false;
                g_reply_flag.store(false, std::memory_order_relaxed);
                // the serial is known only after SendProto returns: hold the lock across it so the
                // reply callback cannot compare against the previous serial
                g_want_serial = FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, sizeof(kGlobalStateBody));
                if (g_want_serial == 0) error = "SendProto returned 0";
            }
            if (!error.empty()) break;
            // bounded spin: up to g_spin_us, a look at the clock every 16 yields
            if (g_spin_us > 0) {
                Clock::time_point spin_end = t0 + std::chrono::microseconds(g_spin_us);
                for (long k = 0; k < 100000000 && !g_reply_flag.load(std::memory_order_acquire); ++k) {
                    if ((k & 15) == 15 && Clock::now() >= spin_end) break;
                    std::this_thread::yield();
                }
            }
            std::unique_lock<std::mutex> g(g_mu);
            g_waiter_sleeps = true;
            bool woke = g_cv.wait_until(g, deadline, [] { return g_got_reply || g_disconnected; });
            g_waiter_sleeps = false;
            if (!woke || !g_got_reply) {
                error = g_disconnected ? "disconnected" : "timed out waiting for a reply";
                break;
            }
            if (g_reply_type != FTAPI_ReqReplyType_SvrReply) {
                error = "reply type " + std::to_string(g_reply_type);
                break;
            }
            Clock::time_point t1 = Clock::now();
            if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
        if (error.empty()) {
            double sum = 0;
            for (double v : us) sum += v;
            printf("{\"client\": \"channel\", \"mode\": \"latency\", \"ok\": true, \"encrypted\": %s, "
                   "\"from_callback\": %s, \"spin_us\": %ld, \"n\": %ld, "
                   "\"warmup\": %ld, \"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, \"mean_us\": %.2f, "
                   "\"min_us\": %.2f, \"max_us\": %.2f, \"connect_s\": %.4f}\n",
                   encrypt ? "true" : "false", g_chain ? "true" : "false", g_chain ? 0L : g_spin_us, static_cast<long>(us.size()), warmup,
                   percentile(us, 50),
                   percentile(us, 90), percentile(us, 99), sum / us.size(), percentile(us, 0), percentile(us, 100),
                   connect_s);
        }
    } else if (error.empty()) {
        {
            std::lock_guard<std::mutex> g(g_mu);
            g_push_want = count;
        }
        Clock::time_point t_sub = Clock::now();
        if (FTAPIChannel_SendProto(ch, kQotSub, 0, kSubBody, sizeof(kSubBody)) == 0) {
            error = "SendProto(Qot_Sub) returned 0";
        } else {
            std::unique_lock<std::mutex> g(g_mu);
            bool done = g_cv.wait_until(g, deadline, [] { return g_pushes >= g_push_want || g_disconnected; });
            if (!g_sub_replied || g_sub_type != FTAPI_ReqReplyType_SvrReply) {
                error = "no good Qot_Sub reply";
            } else if (!done || g_pushes < g_push_want) {
                error = std::string(g_disconnected ? "disconnected" : "timed out") + " after " +
                        std::to_string(g_pushes) + " pushes";
            } else {
                double window = seconds(g_last_push - g_first_push);
                double from_sub = seconds(g_last_push - t_sub);
                printf("{\"client\": \"channel\", \"mode\": \"pushes\", \"ok\": true, \"encrypted\": %s, \"count\": %ld, "
                       "\"window_s\": %.6f, \"pushes_per_s\": %.1f, \"from_sub_s\": %.6f, \"pushes_per_s_from_sub\": %.1f, "
                       "\"sub_reply_s\": %.6f, \"body_bytes\": %lld, \"other_pushes\": %ld, \"connect_s\": %.4f}\n",
                       encrypt ? "true" : "false", g_pushes, window, window > 0 ? (g_pushes - 1) / window : 0.0,
                       from_sub, from_sub > 0 ? g_pushes / from_sub : 0.0, seconds(g_sub_reply_at - t_sub),
                       g_push_bytes, g_other_pushes, connect_s);
            }
        }
    }
    if (!error.empty()) {
        fail_json(mode.c_str(), error);
        rc = 1;
    }
    FTAPIChannel_Close(ch);
    ReleaseFTAPIChannel(ch);
    FTAPIChannel_UnInit();
    fflush(stdout);
    return rc;
}
