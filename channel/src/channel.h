// One channel = one connection to OpenD, driven by its own I/O thread.
#ifndef OPEND_CHANNEL_CHANNEL_H
#define OPEND_CHANNEL_CHANNEL_H

#include <stdint.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

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

class Channel {
public:
    Channel();
    ~Channel();

    void set_client_info(const char* id, int32_t ver);
    void set_language(const char* lang);
    void set_rsa_key(const char* pem);
    int32_t init_connect(const char* host, uint16_t port, bool encrypt);
    uint64_t conn_id();
    uint32_t send_proto(uint32_t proto_id, uint8_t proto_ver, const char* data, int32_t len);
    int32_t close();
    void release();  // deletes this, now or (from inside a callback) when the I/O thread ends

    void set_on_disconnect(FTAPIChannel_OnDisConnectCallback cb);
    void set_on_init(FTAPIChannel_OnInitConnectCallback cb);
    void set_on_reply(FTAPIChannel_OnReplyCallback cb);
    void set_on_push(FTAPIChannel_OnPushCallback cb);

private:
    friend class FeedHarness;  // tests/channel_feed.cpp: the receive path without socket or thread
    Channel(const Channel&);
    Channel& operator=(const Channel&);

    enum State { kIdle, kConnecting, kIniting, kReady, kDone };
    struct Pending {
        FTAPI_ProtoHeader header;
        Clock::time_point deadline;
    };

    void run(std::string host, uint16_t port);
    bool connect_phase(const std::string& host, uint16_t port);
    bool queue_init_request();
    bool pump(Clock::time_point& init_deadline);
    // the receive path of pump(): bytes in, packets handled; false: the connection is over
    bool receive(const char* data, size_t n, Clock::time_point& init_deadline);
    bool handle_packet(Packet& p);
    bool handle_init_reply(Packet& p);
    void fail_connection(int64_t err, const std::string& why);
    bool encrypt_body(const std::string& plain, std::string& wire) const;
    bool decrypt_body(const std::string& wire, std::string& plain) const;
    uint32_t next_serial_locked();
    void queue_packet_locked(uint32_t proto_id, uint8_t ver, uint32_t serial, const std::string& plain,
                             const std::string& wire);
    bool stopping();
    bool on_io_thread() const;

    void emit_init(int64_t err, const std::string& desc);
    void emit_disconnect(int64_t err);
    void emit_reply(FTAPI_ReqReplyType t, const FTAPI_ProtoHeader& h, const std::string* body);
    void emit_push(const FTAPI_ProtoHeader& h, const std::string& body);

    std::mutex mu_;
    // configuration
    std::string client_id_;
    int32_t client_ver_;
    std::string language_;
    RsaKey rsa_;
    Timing timing_;
    // callbacks
    FTAPIChannel_OnDisConnectCallback on_disconnect_;
    FTAPIChannel_OnInitConnectCallback on_init_;
    FTAPIChannel_OnReplyCallback on_reply_;
    FTAPIChannel_OnPushCallback on_push_;
    // thread
    std::thread thread_;
    std::thread::id io_id_;
    bool running_;
    bool stop_;
    bool release_;
    net::Waker waker_;
    // connection (shared part guarded by mu_)
    State state_;
    bool encrypt_;
    bool cbc_;
    std::string aes_key_, aes_iv_;
    uint64_t conn_id_;
    uint32_t serial_;
    uint32_t init_serial_;
    std::string outbuf_;
    std::map<uint64_t, Pending> pending_;  // key: protoID << 32 | serial
    std::deque<uint32_t> keepalive_serials_;
    int keepalive_ms_;
    // owned by the I/O thread
    net::socket_t sock_;
    Reassembler reasm_;
};

// Waits until channels released from their own callbacks have finished; false on timeout.
bool wait_for_released_channels(int timeout_ms);

}  // namespace opend_channel

#endif
