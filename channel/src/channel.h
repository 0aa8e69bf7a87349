// One channel = one connection to OpenD, driven by its own I/O thread.
//
// Lifetime: a Channel is reference-counted. The application's handle holds one reference, each
// running I/O thread one, and every C API call one for its duration (api.cpp); the last to let go
// deletes it. Nothing ever waits for a thread object: Close waits on a condition (the I/O thread
// has left the channel), and the threads themselves are kept in a process-wide registry that is
// never destroyed, to be joined once they have ended (see channel/README.md, "Threads").
#ifndef OPEND_CHANNEL_CHANNEL_H
#define OPEND_CHANNEL_CHANNEL_H

#include <stdint.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "FTAPIChannel.h"
#include "crypto.h"
#include "net.h"
#include "wire.h"

namespace opend_channel {

typedef std::chrono::steady_clock Clock;

struct Timing {
    int connect_timeout_ms;  // whole connect phase, all addresses
    int reply_timeout_ms;    // per request, InitConnect included
    Timing() : connect_timeout_ms(10000), reply_timeout_ms(12000) {}
};

// Limits (documented in channel/README.md): beyond them SendProto returns 0 and queues nothing.
const size_t kMaxQueuedBytes = 64u * 1024u * 1024u;  // bytes waiting to be sent, headers included
const size_t kMaxPending = 10000;                     // requests waiting for their reply
// A server that answers no KeepAlive for keepAliveInterval x this is disconnected.
const int kKeepAliveMissFactor = 3;

struct IoThread;

class Channel {
public:
    Channel();  // one reference: the handle's

    void retain();
    void drop();  // the last reference deletes the channel

    void set_client_info(const char* id, int32_t ver);
    void set_language(const char* lang);
    void set_rsa_key(const char* pem);
    void rsa_key_failed();  // allocates nothing
    int32_t init_connect(const char* host, uint16_t port, bool encrypt);
    uint64_t conn_id();
    uint32_t send_proto(uint32_t proto_id, uint8_t proto_ver, const char* data, int32_t len);
    int32_t close();
    void release();  // Close, then drop the handle's reference

    void set_on_disconnect(FTAPIChannel_OnDisConnectCallback cb);
    void set_on_init(FTAPIChannel_OnInitConnectCallback cb);
    void set_on_reply(FTAPIChannel_OnReplyCallback cb);
    void set_on_push(FTAPIChannel_OnPushCallback cb);

    // for tests: bytes queued for sending, requests pending
    size_t queued_bytes();
    size_t pending_count();

private:
    friend class FeedHarness;  // tests/channel_feed.cpp: the receive path without socket or thread
    ~Channel();
    Channel(const Channel&);
    Channel& operator=(const Channel&);

    enum State { kIdle, kConnecting, kIniting, kReady, kDone };
    struct Pending {
        FTAPI_ProtoHeader header;
        Clock::time_point deadline;
    };

    static void thread_main(Channel* c, std::string host, uint16_t port, IoThread* self);
    void run(const std::string& host, uint16_t port);
    bool end_of_thread();
    static void thread_ended(IoThread* self, bool orphan);  // after end_of_thread(), without the channel
    static void mark_io_thread(Channel* c);  // this thread is c's I/O thread (null: no longer)
    bool keys_usable();
    bool connect_phase(const std::string& host, uint16_t port);
    bool queue_init_request();
    bool pump(Clock::time_point& init_deadline);
    int send_front_locked(int* err);
    bool flush_some();
    // the receive path of pump(): bytes in, packets handled; false: the connection is over
    bool receive(const char* data, size_t n, Clock::time_point& init_deadline);
    bool handle_packet(Packet& p);
    bool handle_init_reply(Packet& p);
    void fail_connection(int64_t err, const std::string& why);
    void fail_quietly();
    bool decrypt_body(std::string& wire, std::string& plain) const;  // plain: wire moved, not copied
    uint32_t next_serial_locked();
    bool queue_packet_locked(uint32_t proto_id, uint8_t ver, uint32_t serial, const uint8_t digest[20],
                             const char* body, size_t n, bool aes, FTAPI_ProtoHeader* header);
    bool queue_packet_locked(uint32_t proto_id, uint8_t ver, uint32_t serial, const std::string& plain,
                             const std::string& body, bool aes);
    bool stopping();
    void set_callback_wait(std::unique_lock<std::mutex>& g);

    template <class F>
    F begin_callback(F slot);
    void end_callback();
    void emit_init(int64_t err, const std::string& desc);
    void emit_disconnect(int64_t err);
    void emit_reply(FTAPI_ReqReplyType t, const FTAPI_ProtoHeader& h, const std::string* body);
    void emit_push(const FTAPI_ProtoHeader& h, const std::string& body);

    std::atomic<int> refs_;
    std::mutex mu_;
    std::condition_variable cv_;  // running_ went false, a callback ended
    // configuration
    std::string client_id_;
    int32_t client_ver_;
    std::string language_;
    std::shared_ptr<const RsaKey> rsa_;  // the last key that loaded; used without the lock
    bool rsa_failed_;                    // the last SetRSAPrivateKey gave a PEM that did not load
    Timing timing_;
    // callbacks
    FTAPIChannel_OnDisConnectCallback on_disconnect_;
    FTAPIChannel_OnInitConnectCallback on_init_;
    FTAPIChannel_OnReplyCallback on_reply_;
    FTAPIChannel_OnPushCallback on_push_;
    bool in_callback_;
    uint64_t callback_seq_;
    // the I/O thread
    bool running_;   // an I/O thread owns the connection (set by init_connect, cleared by the thread)
    uint64_t generation_;  // connections started
    bool stop_;
    bool released_;
    bool orphan_;    // released while its thread ran: FTAPIChannel_UnInit waits for that thread
    net::Waker waker_;
    // connection (shared part guarded by mu_)
    State state_;
    bool encrypt_;
    bool cbc_;
    std::string aes_key_, aes_iv_;
    uint64_t conn_id_;
    uint32_t serial_;
    uint32_t init_serial_;
    std::deque<std::string> outq_;  // whole packets; the front one sent from out_off_
    size_t out_off_;
    size_t queued_;
    int send_err_;                   // a send error met by SendProto, for the I/O thread to report
    Clock::time_point io_wake_at_;   // when the I/O thread's current wait ends at the latest
    std::map<uint64_t, Pending> pending_;  // key: protoID << 32 | serial
    std::deque<uint32_t> keepalive_serials_;
    int keepalive_ms_;
    Clock::time_point keepalive_answered_;  // the InitConnect reply, then the last KeepAlive reply
    // owned by the I/O thread
    net::socket_t sock_;
    Reassembler reasm_;
    std::vector<char> rbuf_;
};

// Waits until the I/O threads of released or closed channels have ended and joins them;
// false on timeout (those still running are left in the registry, never destroyed).
bool wait_for_released_channels(int timeout_ms);

}  // namespace opend_channel

#endif
