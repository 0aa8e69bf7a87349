#include "channel.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <condition_variable>
#include <thread>
#include <vector>

namespace opend_channel {

namespace {
int64_t pack_err(int32_t high, int32_t low) {
    return static_cast<int64_t>((static_cast<uint64_t>(static_cast<uint32_t>(high)) << 32) |
                                static_cast<uint32_t>(low));
}
uint64_t pending_key(uint32_t proto_id, uint32_t serial) {
    return (static_cast<uint64_t>(proto_id) << 32) | serial;
}
#if defined(EPROTO) && !defined(_WIN32)
const int32_t kProtocolError = EPROTO;  // low half of the disconnect error for a malformed stream
#else
const int32_t kProtocolError = 71;  // Linux's EPROTO, also where errno's differs (Windows: 134)
#endif
const size_t kMaxKeepaliveSerials = 16;

// Channels released from inside their own callbacks finish on their detached I/O thread;
// FTAPIChannel_UnInit waits (bounded) for them.
std::mutex g_orphans_mu;
std::condition_variable g_orphans_cv;
int g_orphans = 0;
// Their threads, kept to be joined: a thread that has deleted its channel still runs its
// thread-local destructors (OpenSSL's per-thread state among them) before it ends. Never
// destroyed: a joinable std::thread's destructor would end a process that exits without UnInit.
std::vector<std::thread>& g_orphan_threads = *new std::vector<std::thread>;
const int kReadChunk = 65536;
const int kMaxReadsPerWake = 64;
}  // namespace

Channel::Channel()
    : client_id_("opend-channel"),
      client_ver_(100),
      language_("C++"),
      on_disconnect_(0),
      on_init_(0),
      on_reply_(0),
      on_push_(0),
      running_(false),
      stop_(false),
      release_(false),
      state_(kIdle),
      encrypt_(false),
      cbc_(false),
      conn_id_(0),
      serial_(0),
      init_serial_(0),
      keepalive_ms_(0),
      sock_(net::kInvalid) {}

Channel::~Channel() {
    waker_.close();
    net::close_socket(sock_);
}

bool Channel::on_io_thread() const { return io_id_ == std::this_thread::get_id(); }

void Channel::set_client_info(const char* id, int32_t ver) {
    std::lock_guard<std::mutex> g(mu_);
    client_id_ = id ? id : "";
    client_ver_ = ver;
}

void Channel::set_language(const char* lang) {
    std::lock_guard<std::mutex> g(mu_);
    language_ = lang ? lang : "";
}

void Channel::set_rsa_key(const char* pem) {
    std::lock_guard<std::mutex> g(mu_);
    if (!pem || !*pem) rsa_.clear();
    else rsa_.load_pem(pem);  // an unusable key leaves none set: InitConnect then goes out unencrypted
}

void Channel::set_on_disconnect(FTAPIChannel_OnDisConnectCallback cb) {
    std::lock_guard<std::mutex> g(mu_);
    on_disconnect_ = cb;
}
void Channel::set_on_init(FTAPIChannel_OnInitConnectCallback cb) {
    std::lock_guard<std::mutex> g(mu_);
    on_init_ = cb;
}
void Channel::set_on_reply(FTAPIChannel_OnReplyCallback cb) {
    std::lock_guard<std::mutex> g(mu_);
    on_reply_ = cb;
}
void Channel::set_on_push(FTAPIChannel_OnPushCallback cb) {
    std::lock_guard<std::mutex> g(mu_);
    on_push_ = cb;
}

int32_t Channel::init_connect(const char* host, uint16_t port, bool encrypt) {
    if (!host || !*host) return -1;
    std::unique_lock<std::mutex> g(mu_);
    if (release_ || running_) return -1;  // one connection at a time; Close first
    if (thread_.joinable()) {
        if (on_io_thread()) return -1;  // the old I/O thread is still unwinding under us
        // the old thread has finished its work (running_ is false) and takes no lock from here on
        thread_.join();
    }
    waker_.close();
    if (!waker_.open()) return -1;
    state_ = kConnecting;
    stop_ = false;
    encrypt_ = encrypt;
    cbc_ = false;
    aes_key_.clear();
    aes_iv_.clear();
    conn_id_ = 0;
    outbuf_.clear();
    pending_.clear();
    keepalive_serials_.clear();
    reasm_.reset();
    running_ = true;
    try {
        thread_ = std::thread(&Channel::run, this, std::string(host), port);
    } catch (...) {
        running_ = false;
        state_ = kIdle;
        return -1;
    }
    io_id_ = thread_.get_id();
    return 0;
}

uint64_t Channel::conn_id() {
    std::lock_guard<std::mutex> g(mu_);
    return conn_id_;
}

int32_t Channel::close() {
    std::thread t;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (!thread_.joinable()) return 0;
        stop_ = true;
        waker_.notify();
        if (on_io_thread()) return 0;  // the loop ends once the running callback returns
        t.swap(thread_);
    }
    t.join();
    std::lock_guard<std::mutex> g(mu_);
    state_ = kIdle;
    return 0;
}

void Channel::release() {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (thread_.joinable() && on_io_thread()) {
            // called from one of our callbacks: the I/O thread deletes us when it unwinds
            stop_ = true;
            release_ = true;
            waker_.notify();
            std::lock_guard<std::mutex> og(g_orphans_mu);
            g_orphan_threads.push_back(std::move(thread_));
            ++g_orphans;
            return;
        }
    }
    close();
    delete this;
}

bool Channel::stopping() {
    std::lock_guard<std::mutex> g(mu_);
    return stop_;
}

uint32_t Channel::next_serial_locked() {
    ++serial_;
    if (serial_ == 0) serial_ = 1;  // 0 means "not sent"
    return serial_;
}

bool Channel::encrypt_body(const std::string& plain, std::string& wire) const {
    if (!encrypt_) {
        wire = plain;
        return true;
    }
    return cbc_ ? aes_cbc_encrypt(aes_key_, aes_iv_, plain, wire) : ftaes_ecb_encrypt(aes_key_, plain, wire);
}

bool Channel::decrypt_body(const std::string& wire, std::string& plain) const {
    if (!encrypt_) {
        plain = wire;
        return true;
    }
    return cbc_ ? aes_cbc_decrypt(aes_key_, aes_iv_, wire, plain) : ftaes_ecb_decrypt(aes_key_, wire, plain);
}

void Channel::queue_packet_locked(uint32_t proto_id, uint8_t ver, uint32_t serial, const std::string& plain,
                                  const std::string& wire) {
    uint8_t digest[20];
    sha1(plain.data(), plain.size(), digest);
    FTAPI_ProtoHeader h = make_header(proto_id, ver, serial, static_cast<uint32_t>(wire.size()), digest);
    uint8_t hb[kHeaderSize];
    pack_header(h, hb);
    outbuf_.append(reinterpret_cast<const char*>(hb), kHeaderSize);
    outbuf_.append(wire);
}

uint32_t Channel::send_proto(uint32_t proto_id, uint8_t proto_ver, const char* data, int32_t len) {
    if (len < 0 || (len > 0 && !data) || static_cast<uint32_t>(len) > kMaxBodyLen / 2) return 0;
    std::string plain(data ? data : "", static_cast<size_t>(len));
    uint32_t serial;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (state_ != kReady || stop_) return 0;
        std::string wire;
        if (!encrypt_body(plain, wire)) return 0;
        serial = next_serial_locked();
        queue_packet_locked(proto_id, proto_ver, serial, plain, wire);
        Pending p;
        uint8_t digest[20];
        sha1(plain.data(), plain.size(), digest);
        p.header = make_header(proto_id, proto_ver, serial, static_cast<uint32_t>(wire.size()), digest);
        p.deadline = Clock::now() + std::chrono::milliseconds(timing_.reply_timeout_ms);
        pending_[pending_key(proto_id, serial)] = p;
        waker_.notify();
    }
    return serial;
}

// ---- callbacks: the pointer is read under the lock, the call is made without it ----
void Channel::emit_init(int64_t err, const std::string& desc) {
    FTAPIChannel_OnInitConnectCallback cb;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return;
        cb = on_init_;
    }
    if (cb) cb(this, err, desc.c_str());
}

void Channel::emit_disconnect(int64_t err) {
    FTAPIChannel_OnDisConnectCallback cb;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return;
        cb = on_disconnect_;
    }
    if (cb) cb(this, err);
}

void Channel::emit_reply(FTAPI_ReqReplyType t, const FTAPI_ProtoHeader& h, const std::string* body) {
    FTAPIChannel_OnReplyCallback cb;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return;
        cb = on_reply_;
    }
    if (cb) {
        FTAPI_ProtoHeader copy = h;
        cb(this, t, &copy, body ? body->data() : 0, body ? static_cast<int32_t>(body->size()) : 0);
    }
}

void Channel::emit_push(const FTAPI_ProtoHeader& h, const std::string& body) {
    FTAPIChannel_OnPushCallback cb;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return;
        cb = on_push_;
    }
    if (cb) {
        FTAPI_ProtoHeader copy = h;
        cb(this, &copy, body.data(), static_cast<int32_t>(body.size()));
    }
}

// ---- the I/O thread ----
void Channel::run(std::string host, uint16_t port) {
    if (connect_phase(host, port) && queue_init_request()) {
        Clock::time_point init_deadline = Clock::now() + std::chrono::milliseconds(timing_.reply_timeout_ms);
        // each pump() is one bounded wait; the loop ends with the connection
        while (pump(init_deadline)) {
        }
    }
    net::close_socket(sock_);
    sock_ = net::kInvalid;
    bool del;
    {
        std::lock_guard<std::mutex> g(mu_);
        state_ = kDone;
        pending_.clear();
        outbuf_.clear();
        running_ = false;
        del = release_;
    }
    if (del) {
        delete this;  // ReleaseFTAPIChannel was called from a callback; the thread is an orphan now
        {
            std::lock_guard<std::mutex> og(g_orphans_mu);
            --g_orphans;
        }
        g_orphans_cv.notify_all();
    }
}

bool wait_for_released_channels(int timeout_ms) {
    std::vector<std::thread> threads;
    bool done;
    {
        std::unique_lock<std::mutex> og(g_orphans_mu);
        done = g_orphans_cv.wait_for(og, std::chrono::milliseconds(timeout_ms), [] { return g_orphans == 0; });
        threads.swap(g_orphan_threads);
    }
    for (size_t i = 0; i < threads.size(); ++i) {
        if (done) {
            threads[i].join();  // each has deleted its channel: only its thread's own exit is left
        } else {
            threads[i].detach();  // still inside a callback after the bound: leave it be
        }
    }
    return done;
}

bool Channel::connect_phase(const std::string& host, uint16_t port) {
    std::vector<net::Address> addrs;
    int rc = net::resolve(host, port, addrs);
    if (rc != 0) {
        emit_init(pack_err(FTAPI_ConnectFailType_GetHostByNameFailed, rc), "cannot resolve " + host);
        return false;
    }
    Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timing_.connect_timeout_ms);
    int last_err = net::kTimedOut;
    for (size_t i = 0; i < addrs.size(); ++i) {
        if (stopping()) return false;
        net::socket_t s = net::kInvalid;
        int e = net::connect_start(addrs[i], s);
        if (e != 0) {
            last_err = e;
            continue;
        }
        bool connected = false;
        for (int rounds = 0; rounds < 100000; ++rounds) {
            long left = static_cast<long>(
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
            if (left <= 0) {
                last_err = net::kTimedOut;
                break;
            }
            net::PollResult pr;
            int werr = 0;
            if (net::wait(s, false, true, waker_, static_cast<int>(left), pr, &werr) < 0) {
                last_err = werr;
                break;
            }
            if (pr.woken) {
                waker_.drain();
                if (stopping()) {
                    net::close_socket(s);
                    return false;
                }
            }
            if (pr.writable || pr.error) {
                int ce = net::connect_result(s);
                if (ce == 0) connected = true;
                else last_err = ce;
                break;
            }
        }
        if (connected) {
            sock_ = s;
            return true;
        }
        net::close_socket(s);
        if (Clock::now() >= deadline) break;
    }
    emit_init(pack_err(FTAPI_ConnectFailType_ConnectFailed, last_err), "cannot connect to " + host);
    return false;
}

bool Channel::queue_init_request() {
    bool rsa_failed = false;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return false;
        InitConnectC2S c2s;
        c2s.client_ver = client_ver_;
        c2s.client_id = client_id_;
        c2s.recv_notify = true;
        c2s.packet_enc_algo = encrypt_ ? 2 : -1;  // ask for AES-CBC; no IV in the reply means FTAES-ECB
        c2s.push_proto_fmt = 0;
        c2s.programming_language = language_;
        std::string plain = encode_init_connect_request(c2s);
        std::string wire = plain;
        if (rsa_.loaded() && !rsa_.encrypt(plain, wire)) {
            rsa_failed = true;
            state_ = kDone;
        } else {
            init_serial_ = next_serial_locked();
            queue_packet_locked(kProtoInitConnect, 0, init_serial_, plain, wire);
            state_ = kIniting;
        }
    }
    if (rsa_failed) {
        emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_SendInitReqFailed), "RSA encryption failed");
        return false;
    }
    return true;
}

void Channel::fail_connection(int64_t err, const std::string& why) {
    State st;
    std::vector<FTAPI_ProtoHeader> lost;
    {
        std::lock_guard<std::mutex> g(mu_);
        st = state_;
        state_ = kDone;
        for (std::map<uint64_t, Pending>::const_iterator it = pending_.begin(); it != pending_.end(); ++it)
            lost.push_back(it->second.header);
        pending_.clear();
        outbuf_.clear();
    }
    if (st == kIniting) {
        emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_DisConnect), why);
        return;
    }
    for (size_t i = 0; i < lost.size(); ++i) emit_reply(FTAPI_ReqReplyType_DisConnect, lost[i], 0);
    emit_disconnect(err);
}

// One wait and what follows from it. false: the connection is over.
bool Channel::pump(Clock::time_point& init_deadline) {
    // init_deadline: the InitConnect reply deadline while initing, then the next keepalive time
    Clock::time_point now = Clock::now();
    Clock::time_point wake_at = now + std::chrono::seconds(60);
    bool want_write;
    State st;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return false;
        st = state_;
        want_write = !outbuf_.empty();
        if (st == kIniting && init_deadline < wake_at) wake_at = init_deadline;
        for (std::map<uint64_t, Pending>::const_iterator it = pending_.begin(); it != pending_.end(); ++it)
            if (it->second.deadline < wake_at) wake_at = it->second.deadline;
    }
    // once ready, the same time point is the next keepalive
    if (st == kReady && keepalive_ms_ > 0 && init_deadline < wake_at) wake_at = init_deadline;
    long timeout = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now).count());
    if (timeout < 0) timeout = 0;
    net::PollResult pr;
    int werr = 0;
    if (net::wait(sock_, true, want_write, waker_, static_cast<int>(timeout + 1), pr, &werr) < 0) {
        fail_connection(pack_err(FTAPI_ConnectFailType_SelectReturnError, werr), "poll failed");
        return false;
    }
    if (pr.woken) waker_.drain();
    if (stopping()) return false;

    if (pr.writable) {
        int serr = 0;
        long sent;
        {
            std::lock_guard<std::mutex> g(mu_);
            sent = outbuf_.empty() ? 0 : net::send_some(sock_, outbuf_.data(), outbuf_.size(), &serr);
            if (sent > 0) outbuf_.erase(0, static_cast<size_t>(sent));
        }
        if (sent < 0) {
            fail_connection(pack_err(FTAPI_ConnectFailType_SendFailed, serr), "send failed");
            return false;
        }
    }

    if (pr.readable || pr.error) {
        std::vector<char> buf(kReadChunk);
        for (int i = 0; i < kMaxReadsPerWake; ++i) {
            int rerr = 0;
            long n = net::recv_some(sock_, buf.data(), buf.size(), &rerr);
            if (n == 0) break;
            if (n == -2) {
                fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, 0), "connection closed by peer");
                return false;
            }
            if (n < 0) {
                fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, rerr), "recv failed");
                return false;
            }
            if (!receive(buf.data(), static_cast<size_t>(n), init_deadline)) return false;
            if (static_cast<size_t>(n) < buf.size()) break;
        }
    }

    // timers
    now = Clock::now();
    std::vector<FTAPI_ProtoHeader> expired;
    {
        std::lock_guard<std::mutex> g(mu_);
        st = state_;
        for (std::map<uint64_t, Pending>::iterator it = pending_.begin(); it != pending_.end();) {
            if (it->second.deadline <= now) {
                expired.push_back(it->second.header);
                pending_.erase(it++);
            } else {
                ++it;
            }
        }
        if (st == kReady && keepalive_ms_ > 0 && init_deadline <= now) {
            uint32_t serial = next_serial_locked();
            std::string plain = encode_keepalive_request(static_cast<int64_t>(::time(0)));
            std::string wire;
            if (encrypt_body(plain, wire)) {
                queue_packet_locked(kProtoKeepAlive, 0, serial, plain, wire);
                keepalive_serials_.push_back(serial);
                if (keepalive_serials_.size() > kMaxKeepaliveSerials) keepalive_serials_.pop_front();
            }
            init_deadline = now + std::chrono::milliseconds(keepalive_ms_);
        }
    }
    if (st == kIniting && now >= init_deadline) {
        {
            std::lock_guard<std::mutex> g(mu_);
            state_ = kDone;
        }
        emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_Timeout), "InitConnect reply timed out");
        return false;
    }
    for (size_t i = 0; i < expired.size(); ++i) emit_reply(FTAPI_ReqReplyType_Timeout, expired[i], 0);
    return true;
}

// Bytes as received: reassemble, then handle every whole packet (callbacks included).
bool Channel::receive(const char* data, size_t n, Clock::time_point& init_deadline) {
    reasm_.feed(data, n);
    for (int k = 0; k < 1000000; ++k) {
        Packet p;
        Reassembler::Result r = reasm_.next(p);
        if (r == Reassembler::kNeedMore) break;
        if (r == Reassembler::kError) {
            fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, kProtocolError), "malformed packet header");
            return false;
        }
        bool was_initing;
        {
            std::lock_guard<std::mutex> g(mu_);
            was_initing = state_ == kIniting;
        }
        if (!handle_packet(p)) return false;
        if (stopping()) return false;
        if (was_initing) {
            std::lock_guard<std::mutex> g(mu_);
            if (state_ == kReady) init_deadline = Clock::now() + std::chrono::milliseconds(keepalive_ms_);
        }
    }
    return true;
}

bool Channel::handle_packet(Packet& p) {
    State st;
    {
        std::lock_guard<std::mutex> g(mu_);
        st = state_;
    }
    if (st == kIniting) {
        if (p.header.nProtoID == kProtoInitConnect && p.header.nSerialNo == init_serial_) return handle_init_reply(p);
        return true;  // nothing else is meaningful before the InitConnect reply
    }
    if (st != kReady) return false;
    std::string plain;
    if (!decrypt_body(p.body, plain)) {
        fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, kProtocolError), "cannot decrypt body");
        return false;
    }
    uint8_t digest[20];
    sha1(plain.data(), plain.size(), digest);
    if (memcmp(digest, p.header.arrBodySHA1, 20) != 0) {
        fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, kProtocolError), "body SHA-1 mismatch");
        return false;
    }
    bool is_reply = false, is_keepalive = false;
    {
        std::lock_guard<std::mutex> g(mu_);
        std::map<uint64_t, Pending>::iterator it = pending_.find(pending_key(p.header.nProtoID, p.header.nSerialNo));
        if (it != pending_.end()) {
            is_reply = true;
            pending_.erase(it);
        } else if (p.header.nProtoID == kProtoKeepAlive) {
            for (std::deque<uint32_t>::iterator k = keepalive_serials_.begin(); k != keepalive_serials_.end(); ++k) {
                if (*k == p.header.nSerialNo) {
                    is_keepalive = true;
                    keepalive_serials_.erase(k);
                    break;
                }
            }
        }
    }
    if (is_keepalive) return true;
    if (is_reply) emit_reply(FTAPI_ReqReplyType_SvrReply, p.header, &plain);
    else emit_push(p.header, plain);
    return true;
}

bool Channel::handle_init_reply(Packet& p) {
    std::string plain;
    bool ok = true;
    std::string why;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (encrypt_ && rsa_.loaded()) ok = rsa_.decrypt(p.body, plain);
        else plain = p.body;
    }
    if (!ok) why = "cannot decrypt the InitConnect reply";
    if (ok) {
        uint8_t digest[20];
        sha1(plain.data(), plain.size(), digest);
        if (memcmp(digest, p.header.arrBodySHA1, 20) != 0) {
            ok = false;
            why = "InitConnect reply SHA-1 mismatch";
        }
    }
    InitConnectResponse rsp;
    if (ok && !decode_init_connect_response(plain.data(), plain.size(), rsp)) {
        ok = false;
        why = "malformed InitConnect reply";
    }
    if (ok && rsp.ret_type != 0) {
        {
            std::lock_guard<std::mutex> g(mu_);
            state_ = kDone;
        }
        emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_OpenDReject),
                  rsp.ret_msg.empty() ? std::string("InitConnect rejected") : rsp.ret_msg);
        return false;
    }
    if (ok && !rsp.s2c.has_s2c) {
        ok = false;
        why = "InitConnect reply without s2c";
    }
    if (ok) {
        std::lock_guard<std::mutex> g(mu_);
        if (encrypt_ && (rsp.s2c.conn_aes_key.size() != 16 ||
                         (rsp.s2c.has_aes_cbc_iv && rsp.s2c.aes_cbc_iv.size() != 16))) {
            ok = false;
            why = "InitConnect reply with a bad AES key or IV";
        } else {
            aes_key_ = rsp.s2c.conn_aes_key;
            cbc_ = rsp.s2c.has_aes_cbc_iv;
            aes_iv_ = rsp.s2c.aes_cbc_iv;
            conn_id_ = rsp.s2c.conn_id;
            int ka = rsp.s2c.keep_alive_interval > 0 ? rsp.s2c.keep_alive_interval : 10;
            if (ka > 3600) ka = 3600;
            keepalive_ms_ = ka * 800;
            state_ = kReady;
        }
    }
    if (!ok) {
        {
            std::lock_guard<std::mutex> g(mu_);
            state_ = kDone;
        }
        emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_Unknow), why);
        return false;
    }
    emit_init(0, "");
    return true;
}

}  // namespace opend_channel
