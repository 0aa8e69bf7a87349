// Scenario driver over the public C API only: connect, GetGlobalState, Qot_Sub, wait for a push.
//   channel_scenario HOST PORT [--encrypt] [--rsa-key FILE] [--no-sub] [--push-wait MS]
//                    [--close-in-callback] [--release-in-callback] [--total-wait MS] [--hold MS]
//                    [--reconnect] [--burst N] [--bad-rsa-key] [--flood N] [--expect TEXT]... [--forbid TEXT]...
// Prints one line per event. Each --expect TEXT must be a substring of an event line, in order;
// without --expect the normal run is expected; no line may contain a --forbid TEXT. --hold keeps
// the connection open that long after the run (keepalives); --reconnect closes and runs the whole
// script a second time on the same channel; --burst sends N more GetGlobalState from the main
// thread after the run and waits for their replies. --bad-rsa-key sets a PEM that does not load
// (after --rsa-key's, if given). --flood N sends up to N requests of 1 MiB from the main thread once
// InitConnect succeeded, until SendProto refuses one ("flood accepted=K refused=0|1"). On Linux the
// last line is "vmhwm_kb=N", the process's peak resident memory. Exit 0 when the expectations hold.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "read_file.h"
#include <vector>

#include "FTAPIChannel.h"

namespace {

std::mutex g_mu;
std::condition_variable g_cv;
std::vector<std::string> g_lines;
bool g_finished = false;
bool g_no_sub = false;
bool g_close_in_cb = false;
bool g_release_in_cb = false;
bool g_released = false;
int g_state_replies = 0;  // GetGlobalState replies of type SvrReply

const Futu::u32_t kGetGlobalState = 1002, kQotSub = 3001, kQotUpdateBasicQot = 3005;

void record(const std::string& line, bool finished) {
    {
        std::lock_guard<std::mutex> g(g_mu);
        g_lines.push_back(line);
        if (finished) g_finished = true;
    }
    printf("%s\n", line.c_str());
    fflush(stdout);
    g_cv.notify_all();
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof(buf), f, ap);
    va_end(ap);
    return buf;
}

std::string err_text(Futu::i64_t e) {
    return fmt("err=%lld high=%d low=%d", static_cast<long long>(e), static_cast<int>(e >> 32),
               static_cast<int>(static_cast<Futu::u32_t>(e)));
}

// Request{c2s{userID=1}}
const char kGlobalStateBody[] = {0x0a, 0x02, 0x08, 0x01};
// Request{c2s{securityList{market=1 (HK), code="00700"}, subTypeList=1 (Basic), isSubOrUnSub, isRegOrUnRegPush}}
const char kSubBody[] = {0x0a, 0x11, 0x0a, 0x09, 0x08, 0x01, 0x12, 0x05, '0', '0', '7', '0', '0',
                         0x10, 0x01, 0x18, 0x01, 0x20, 0x01};

void send_and_record(FTAPIChannelPtr ch, Futu::u32_t proto, const char* body, int len) {
    Futu::u32_t serial = FTAPIChannel_SendProto(ch, proto, 0, body, len);
    record(fmt("sent proto=%u serial=%u", proto, serial), serial == 0);
}

void finish_from_callback(FTAPIChannelPtr ch) {
    if (g_release_in_cb) {
        ReleaseFTAPIChannel(ch);
        {
            std::lock_guard<std::mutex> g(g_mu);
            g_released = true;
        }
        record("released in callback", true);
    } else if (g_close_in_cb) {
        int rc = FTAPIChannel_Close(ch);
        record(fmt("closed in callback rc=%d", rc), true);
    }
}

void on_init(FTAPIChannelPtr ch, Futu::i64_t err, const char* desc) {
    Futu::u64_t id = FTAPIChannel_GetConnectID(ch);
    record(fmt("init %s connid=%llu desc=%s", err_text(err).c_str(), static_cast<unsigned long long>(id),
               desc ? desc : "(null)"),
           err != 0);
    if (err == 0) send_and_record(ch, kGetGlobalState, kGlobalStateBody, sizeof(kGlobalStateBody));
}

void on_reply(FTAPIChannelPtr ch, FTAPI_ReqReplyType type, const FTAPI_ProtoHeader* h, const Futu::i8_t* data,
              Futu::i32_t len) {
    Futu::u32_t proto = h ? h->nProtoID : 0, serial = h ? h->nSerialNo : 0;
    if (type == FTAPI_ReqReplyType_Timeout) {
        record(fmt("timeout proto=%u type=%d serial=%u len=%d", proto, static_cast<int>(type), serial, len), true);
        return;
    }
    record(fmt("reply proto=%u type=%d len=%d serial=%u data=%s", proto, static_cast<int>(type), len, serial,
               data ? "yes" : "null"),
           false);
    if (type != FTAPI_ReqReplyType_SvrReply) return;
    if (proto == kGetGlobalState) {
        bool again;
        {
            std::lock_guard<std::mutex> g(g_mu);
            again = ++g_state_replies > 1;
        }
        if (again) {  // a burst reply: the script goes on only once
            g_cv.notify_all();
            return;
        }
        if (g_no_sub) {
            record("done", !g_release_in_cb && !g_close_in_cb);
            finish_from_callback(ch);
        } else {
            send_and_record(ch, kQotSub, kSubBody, sizeof(kSubBody));
        }
    }
}

void on_push(FTAPIChannelPtr ch, const FTAPI_ProtoHeader* h, const Futu::i8_t*, Futu::i32_t len) {
    Futu::u32_t proto = h ? h->nProtoID : 0;
    bool done = proto == kQotUpdateBasicQot;
    record(fmt("push proto=%u len=%d", proto, len), false);
    if (done) {
        // with an in-callback Close/Release, main must not touch the channel until it is over
        record("done", !g_release_in_cb && !g_close_in_cb);
        finish_from_callback(ch);
    }
}

void on_disconnect(FTAPIChannelPtr, Futu::i64_t err) { record("disconnect " + err_text(err), true); }

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: channel_scenario HOST PORT [--encrypt] [--rsa-key FILE] [--expect TEXT]...\n");
        return 2;
    }
    const char* host = argv[1];
    int port = atoi(argv[2]);
    bool encrypt = false;
    std::string pem;
    int push_wait_ms = 5000, total_wait_ms = 40000;
    int hold_ms = 0;
    bool reconnect = false;
    int burst = 0, flood = 0;
    bool bad_key = false;
    std::vector<std::string> expect, forbid;
    for (int i = 3; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--encrypt") encrypt = true;
        else if (a == "--rsa-key" && i + 1 < argc) {
            if (!read_file(argv[++i], pem)) {
                fprintf(stderr, "cannot read %s\n", argv[i]);
                return 2;
            }
        } else if (a == "--expect" && i + 1 < argc) expect.push_back(argv[++i]);
        else if (a == "--forbid" && i + 1 < argc) forbid.push_back(argv[++i]);
        else if (a == "--hold" && i + 1 < argc) hold_ms = atoi(argv[++i]);
        else if (a == "--no-sub") g_no_sub = true;
        else if (a == "--reconnect") reconnect = true;
        else if (a == "--burst" && i + 1 < argc) burst = atoi(argv[++i]);
        else if (a == "--flood" && i + 1 < argc) flood = atoi(argv[++i]);
        else if (a == "--bad-rsa-key") bad_key = true;
        else if (a == "--push-wait" && i + 1 < argc) push_wait_ms = atoi(argv[++i]);
        else if (a == "--total-wait" && i + 1 < argc) total_wait_ms = atoi(argv[++i]);
        else if (a == "--close-in-callback") g_close_in_cb = true;
        else if (a == "--release-in-callback") g_release_in_cb = true;
        else {
            fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    if (expect.empty()) {
        expect.push_back("init err=0 ");
        expect.push_back("reply proto=1002 type=0");
        if (!g_no_sub) {
            expect.push_back("reply proto=3001 type=0");
            expect.push_back("push proto=3005");
        }
    }

    FTAPIChannel_Init();
    FTAPIChannelPtr ch = CreateFTAPIChannel();
    if (!ch) return 3;
    FTAPIChannel_SetClientInfo(ch, "channel_scenario", 100);
    FTAPIChannel_SetProgrammingLanguage(ch, "C++");
    if (!pem.empty()) FTAPIChannel_SetRSAPrivateKey(ch, pem.c_str());
    if (bad_key) FTAPIChannel_SetRSAPrivateKey(ch, "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n");
    FTAPIChannel_SetOnInitConnectCallback(ch, on_init);
    FTAPIChannel_SetOnReplyCallback(ch, on_reply);
    FTAPIChannel_SetOnPushCallback(ch, on_push);
    FTAPIChannel_SetOnDisconnectCallback(ch, on_disconnect);
    if (FTAPIChannel_GetConnectID(ch) != 0) record("connid before init is not 0", true);
    if (FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, 4) != 0)
        record("send before init returned a serial", true);

    for (int run = 0; run < (reconnect ? 2 : 1); ++run) {
    if (run > 0) {
        {
            std::lock_guard<std::mutex> g(g_mu);
            if (g_released) break;
            g_finished = false;
            g_state_replies = 0;
        }
        record(fmt("close rc=%d", FTAPIChannel_Close(ch)), false);
    }
    size_t run_first_line;
    {
        std::lock_guard<std::mutex> g(g_mu);
        run_first_line = g_lines.size();
    }
    int rc = FTAPIChannel_InitConnect(ch, host, static_cast<Futu::u16_t>(port), encrypt ? 1 : 0);
    record(fmt("initconnect rc=%d", rc), rc != 0);
    if (flood > 0 && rc == 0) {
        bool ready = false;
        {
            std::unique_lock<std::mutex> g(g_mu);
            std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            for (int rounds = 0; rounds < 100000 && !ready && std::chrono::steady_clock::now() < t; ++rounds) {
                for (size_t i = run_first_line; i < g_lines.size(); ++i)
                    if (g_lines[i].find("init err=0 ") == 0) ready = true;
                if (!ready) g_cv.wait_until(g, t);
            }
        }
        std::string body(1024 * 1024, 'x');
        int accepted = 0;
        bool refused = false;
        for (int i = 0; ready && i < flood && !refused; ++i) {
            if (FTAPIChannel_SendProto(ch, kGetGlobalState, 0, body.data(), static_cast<Futu::i32_t>(body.size())) != 0) ++accepted;
            else refused = true;
        }
        record(fmt("flood accepted=%d refused=%d", accepted, refused ? 1 : 0), false);
    }

    {
        // the push wait starts with the Qot_Sub reply; the whole run is bounded by total_wait_ms
        std::unique_lock<std::mutex> g(g_mu);
        std::chrono::steady_clock::time_point end =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(total_wait_ms);
        bool sub_seen = false;
        const size_t first_line = run_first_line;
        std::chrono::steady_clock::time_point push_end = end;
        for (int rounds = 0; rounds < 100000 && !g_finished; ++rounds) {
            if (!sub_seen) {
                for (size_t i = first_line; i < g_lines.size(); ++i)
                    if (g_lines[i].find("reply proto=3001") == 0) {
                        sub_seen = true;
                        push_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(push_wait_ms);
                        if (push_end > end) push_end = end;
                    }
            }
            std::chrono::steady_clock::time_point until = sub_seen ? push_end : end;
            if (std::chrono::steady_clock::now() >= until) break;
            g_cv.wait_until(g, until);
        }
        // a DisConnect reply is followed by OnDisConnect: give it a bounded moment
        bool want_disc = false, have_disc = false;
        for (size_t i = first_line; i < g_lines.size(); ++i) {
            if (g_lines[i].find("type=-200") != std::string::npos) want_disc = true;
            if (g_lines[i].find("disconnect ") == 0) have_disc = true;
        }
        if (want_disc && !have_disc) {
            std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            for (int rounds = 0; rounds < 1000 && std::chrono::steady_clock::now() < t; ++rounds) {
                bool got = false;
                for (size_t i = first_line; i < g_lines.size(); ++i)
                    if (g_lines[i].find("disconnect ") == 0) got = true;
                if (got) break;
                g_cv.wait_until(g, t);
            }
        }
    }

    }  // runs

    if (burst > 0) {
        bool usable;
        int base;
        {
            std::lock_guard<std::mutex> g(g_mu);
            usable = !g_released;
            base = g_state_replies;
        }
        int sent = 0;
        Futu::u32_t last = 0;
        bool increasing = true;
        for (int i = 0; usable && i < burst && i < 100000; ++i) {
            Futu::u32_t serial = FTAPIChannel_SendProto(ch, kGetGlobalState, 0, kGlobalStateBody, sizeof(kGlobalStateBody));
            if (serial == 0) break;
            if (serial <= last) increasing = false;
            last = serial;
            ++sent;
        }
        int got = 0;
        {
            std::unique_lock<std::mutex> g(g_mu);
            std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            for (int rounds = 0; rounds < 100000 && g_state_replies - base < sent && std::chrono::steady_clock::now() < t; ++rounds)
                g_cv.wait_until(g, t);
            got = g_state_replies - base;
        }
        record(fmt("burst sent=%d replies=%d increasing=%d", sent, got, increasing ? 1 : 0), false);
    }

    if (hold_ms > 0) {
        std::unique_lock<std::mutex> g(g_mu);
        std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now() + std::chrono::milliseconds(hold_ms);
        for (int rounds = 0; rounds < 100000 && std::chrono::steady_clock::now() < t; ++rounds) g_cv.wait_until(g, t);
    }

    bool released;
    {
        std::lock_guard<std::mutex> g(g_mu);
        released = g_released;
    }
    if (!released) {
        FTAPIChannel_SetOnInitConnectCallback(ch, 0);
        FTAPIChannel_SetOnReplyCallback(ch, 0);
        FTAPIChannel_SetOnPushCallback(ch, 0);
        FTAPIChannel_SetOnDisconnectCallback(ch, 0);
        int crc = FTAPIChannel_Close(ch);
        ReleaseFTAPIChannel(ch);
        printf("close rc=%d\n", crc);
    }
    FTAPIChannel_UnInit();

    std::vector<std::string> lines;
    {
        std::lock_guard<std::mutex> g(g_mu);
        lines = g_lines;
    }
    for (size_t f = 0; f < forbid.size(); ++f)
        for (size_t i = 0; i < lines.size(); ++i)
            if (lines[i].find(forbid[f]) != std::string::npos) {
                printf("FAILED: forbidden '%s' in '%s'\n", forbid[f].c_str(), lines[i].c_str());
                return 1;
            }
    size_t at = 0;
    for (size_t e = 0; e < expect.size(); ++e) {
        bool found = false;
        for (; at < lines.size(); ++at) {
            if (lines[at].find(expect[e]) != std::string::npos) {
                found = true;
                ++at;
                break;
            }
        }
        if (!found) {
            printf("FAILED: expected (in order) '%s'\n", expect[e].c_str());
            return 1;
        }
    }
    printf("OK: %zu expectations met\n", expect.size());
#ifdef __linux__
    std::string status;
    if (read_file("/proc/self/status", status)) {
        size_t at = status.find("VmHWM:");
        if (at != std::string::npos) printf("vmhwm_kb=%ld\n", atol(status.c_str() + at + 6));
    }
#endif
    return 0;
}
