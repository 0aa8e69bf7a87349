#include "channel.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <list>
#include <new>
#include <thread>

namespace opend_channel {

// One started I/O thread, kept until it has ended and someone joins it.
struct IoThread {
    std::thread thread;
    bool ended;
    IoThread() : ended(false) {}
};

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
const int32_t kOutOfMemory = 12;  // ENOMEM (Linux, Windows' CRT): low half after an allocation failure
const size_t kMaxKeepaliveSerials = 16;
const size_t kReadChunk = 65536;
const int kMaxReadsPerWake = 64;
const int kMaxSendsPerWake = 64;

// The registry of I/O threads. Allocated once and never destroyed: a thread that ends after
// main() returned (its channel never released, or UnInit timed out) still finds it; and a
// joinable std::thread is never destroyed, which would end the process.
struct Registry {
    std::mutex mu;
    std::condition_variable cv;
    std::list<IoThread> threads;
    int orphans;  // threads of released channels still running
    int leaving;  // threads that have left their channel but not ended yet
    Registry() : orphans(0), leaving(0) {}
};
Registry& registry() {
    static Registry* r = new Registry;
    return *r;
}

// Joins the threads that have ended (they hold no lock any more, only their thread-local
// destructors are left). Never joins the calling thread: its own entry is not ended yet.
void reap_ended() {
    std::list<IoThread> done;
    {
        Registry& r = registry();
        std::lock_guard<std::mutex> g(r.mu);
        for (std::list<IoThread>::iterator it = r.threads.begin(); it != r.threads.end();) {
            std::list<IoThread>::iterator cur = it++;
            if (cur->ended) done.splice(done.end(), r.threads, cur);
        }
    }
    for (std::list<IoThread>::iterator it = done.begin(); it != done.end(); ++it)
        if (it->thread.joinable()) it->thread.join();
}

// The channel whose I/O thread this is; null on the application's threads. Close, Release and
// the callback setters never wait on an I/O thread (of any channel): that is what makes two
// channels closing each other from their callbacks safe.
thread_local Channel* t_io_channel = 0;
}  // namespace

void Channel::mark_io_thread(Channel* c) { t_io_channel = c; }

Channel::Channel()
    : refs_(1),
      client_id_("opend-channel"),
      client_ver_(100),
      language_("C++"),
      rsa_failed_(false),
      on_disconnect_(0),
      on_init_(0),
      on_reply_(0),
      on_push_(0),
      in_callback_(false),
      callback_seq_(0),
      running_(false),
      generation_(0),
      stop_(false),
      released_(false),
      orphan_(false),
      state_(kIdle),
      encrypt_(false),
      cbc_(false),
      conn_id_(0),
      serial_(0),
      init_serial_(0),
      out_off_(0),
      queued_(0),
      send_err_(0),
      io_wake_at_(Clock::time_point::max()),
      keepalive_ms_(0),
      sock_(net::kInvalid) {}

Channel::~Channel() {
    waker_.close();
    net::close_socket(sock_);
    wipe(aes_key_);
    wipe(aes_iv_);
}

void Channel::retain() { refs_.fetch_add(1, std::memory_order_relaxed); }

void Channel::drop() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

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
    // the RSA parse runs without the lock; the key is swapped in under it
    std::shared_ptr<RsaKey> k;
    bool failed = false;
    if (pem && *pem) {
        std::string text(pem);
        k = std::make_shared<RsaKey>();
        if (!k->load_pem(text)) {
            k.reset();
            failed = true;
        }
        wipe(text);  // our copy of the private key's text
    }
    std::lock_guard<std::mutex> g(mu_);
    rsa_failed_ = failed;
    if (!failed) rsa_ = k;  // a PEM that does not load keeps the key set before (and InitConnect fails)
}

void Channel::rsa_key_failed() {
    std::lock_guard<std::mutex> g(mu_);
    rsa_failed_ = true;
}

// After a callback pointer changed: from an application thread, wait for a callback of this channel
// running at that moment to return (so the old function is not running when the setter returns).
void Channel::set_callback_wait(std::unique_lock<std::mutex>& g) {
    if (t_io_channel || !in_callback_) return;
    uint64_t seq = callback_seq_;
    while (in_callback_ && callback_seq_ == seq) cv_.wait(g);
}

void Channel::set_on_disconnect(FTAPIChannel_OnDisConnectCallback cb) {
    std::unique_lock<std::mutex> g(mu_);
    on_disconnect_ = cb;
    set_callback_wait(g);
}
void Channel::set_on_init(FTAPIChannel_OnInitConnectCallback cb) {
    std::unique_lock<std::mutex> g(mu_);
    on_init_ = cb;
    set_callback_wait(g);
}
void Channel::set_on_reply(FTAPIChannel_OnReplyCallback cb) {
    std::unique_lock<std::mutex> g(mu_);
    on_reply_ = cb;
    set_callback_wait(g);
}
void Channel::set_on_push(FTAPIChannel_OnPushCallback cb) {
    std::unique_lock<std::mutex> g(mu_);
    on_push_ = cb;
    set_callback_wait(g);
}

size_t Channel::queued_bytes() {
    std::lock_guard<std::mutex> g(mu_);
    return queued_;
}

size_t Channel::pending_count() {
    std::lock_guard<std::mutex> g(mu_);
    return pending_.size();
}

int32_t Channel::init_connect(const char* host, uint16_t port, bool encrypt) {
    if (!host || !*host) return -1;
    if (!t_io_channel) reap_ended();
    std::string h(host);
    std::lock_guard<std::mutex> g(mu_);
    if (released_ || running_) return -1;  // one connection at a time; Close first
    // the previous I/O thread, if any, has left the channel (running_ is false): its members are free
    waker_.close();
    if (!waker_.open()) return -1;
    state_ = kConnecting;
    stop_ = false;
    encrypt_ = encrypt;
    cbc_ = false;
    wipe(aes_key_);
    wipe(aes_iv_);
    conn_id_ = 0;
    outq_.clear();
    out_off_ = 0;
    queued_ = 0;
    send_err_ = 0;
    io_wake_at_ = Clock::time_point::max();
    pending_.clear();
    keepalive_serials_.clear();
    reasm_.reset();
    Registry& r = registry();
    std::lock_guard<std::mutex> rg(r.mu);  // order: a channel's lock, then the registry's
    r.threads.push_back(IoThread());
    IoThread* self = &r.threads.back();
    retain();  // the thread's reference
    try {
        self->thread = std::thread(&Channel::thread_main, this, h, port, self);
    } catch (...) {
        r.threads.pop_back();
        refs_.fetch_sub(1, std::memory_order_relaxed);  // the handle's reference remains
        state_ = kIdle;
        return -1;
    }
    running_ = true;
    ++generation_;
    return 0;
}

uint64_t Channel::conn_id() {
    std::lock_guard<std::mutex> g(mu_);
    return conn_id_;
}

int32_t Channel::close() {
    std::unique_lock<std::mutex> g(mu_);
    if (!running_) return 0;
    stop_ = true;
    waker_.notify();
    if (t_io_channel) return 0;  // inside a callback: the thread ends once the callbacks return
    // wait for this connection's thread to leave; a connection started meanwhile is not ours
    uint64_t gen = generation_;
    while (running_ && generation_ == gen) cv_.wait(g);
    return 0;
}

void Channel::release() {
    {
        std::lock_guard<std::mutex> g(mu_);
        released_ = true;
    }
    close();
    {
        std::lock_guard<std::mutex> g(mu_);
        if (running_ && !orphan_) {
            // from a callback: the thread is still running; FTAPIChannel_UnInit waits for it
            orphan_ = true;
            Registry& r = registry();
            std::lock_guard<std::mutex> rg(r.mu);
            ++r.orphans;
        }
    }
    drop();
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

bool Channel::decrypt_body(std::string& wire, std::string& plain) const {
    if (!encrypt_) {
        plain.swap(wire);  // the body itself, not a copy
        return true;
    }
    return cbc_ ? aes_cbc_decrypt(aes_key_, aes_iv_, wire, plain) : ftaes_ecb_decrypt(aes_key_, wire, plain);
}

// Header + body as one queued packet; aes: the body is encrypted with the connection's AES key, in
// the packet itself (no other copy). digest: SHA-1 of the plaintext. false: nothing queued.
bool Channel::queue_packet_locked(uint32_t proto_id, uint8_t ver, uint32_t serial, const uint8_t digest[20],
                                  const char* body, size_t n, bool aes, FTAPI_ProtoHeader* header) {
    const size_t wire_len = !aes ? n : cbc_ ? aes_cbc_size(n) : ftaes_ecb_size(n);
    FTAPI_ProtoHeader h = make_header(proto_id, ver, serial, static_cast<uint32_t>(wire_len), digest);
    uint8_t hb[kHeaderSize];
    pack_header(h, hb);
    outq_.push_back(std::string());
    std::string& pkt = outq_.back();
    bool ok;
    try {
        pkt.reserve(kHeaderSize + wire_len);
        pkt.append(reinterpret_cast<const char*>(hb), kHeaderSize);
        if (!aes) {
            pkt.append(body, n);
            ok = true;
        } else {
            ok = cbc_ ? aes_cbc_encrypt_append(aes_key_, aes_iv_, body, n, pkt)
                      : ftaes_ecb_encrypt_append(aes_key_, body, n, pkt);
        }
    } catch (...) {
        outq_.pop_back();
        throw;
    }
    if (!ok || pkt.size() != kHeaderSize + wire_len) {
        outq_.pop_back();
        return false;
    }
    queued_ += pkt.size();
    if (header) *header = h;
    return true;
}

bool Channel::queue_packet_locked(uint32_t proto_id, uint8_t ver, uint32_t serial, const std::string& plain,
                                  const std::string& body, bool aes) {
    uint8_t digest[20];
    return sha1(plain.data(), plain.size(), digest) &&
           queue_packet_locked(proto_id, ver, serial, digest, body.data(), body.size(), aes, 0);
}

uint32_t Channel::send_proto(uint32_t proto_id, uint8_t proto_ver, const char* data, int32_t len) {
    if (len < 0 || (len > 0 && !data) || static_cast<uint32_t>(len) > kMaxBodyLen / 2) return 0;
    static const char empty = 0;
    if (!data) data = &empty;
    const size_t n = static_cast<size_t>(len);
    uint8_t digest[20];
    if (!sha1(data, n, digest)) return 0;
    std::lock_guard<std::mutex> g(mu_);
    if (state_ != kReady || stop_) return 0;
    // limits: a packet that would pass them is refused whole (the wire size is at most len + 32)
    if (pending_.size() >= kMaxPending || queued_ + kHeaderSize + n + 32 > kMaxQueuedBytes) return 0;
    // the caller's bytes go straight into the queued packet, encrypted there: one copy, plain or not
    uint32_t serial = next_serial_locked();
    Pending p;
    if (!queue_packet_locked(proto_id, proto_ver, serial, digest, data, n, encrypt_, &p.header)) return 0;
    p.deadline = Clock::now() + std::chrono::milliseconds(timing_.reply_timeout_ms);
    try {
        pending_[pending_key(proto_id, serial)] = p;
    } catch (...) {
        queued_ -= outq_.back().size();
        outq_.pop_back();
        throw;
    }
    // The queue held nothing before this packet: nothing is half-sent, so it goes out now, on this
    // thread (non-blocking, under the lock that serialises every send). What the socket does not
    // take stays queued for the I/O thread. A send error is left for the I/O thread to report.
    if (outq_.size() == 1 && send_err_ == 0) {
        int serr = 0;
        if (send_front_locked(&serr) < 0) send_err_ = serr;
    }
    // The I/O thread needs waking only to send the rest, to report an error, or to watch a deadline
    // earlier than the one it sleeps until.
    if (!outq_.empty() || send_err_ != 0 || p.deadline < io_wake_at_) waker_.notify();
    return serial;
}

// ---- callbacks: the pointer is read under the lock, the call is made without it ----
template <class F>
F Channel::begin_callback(F slot) {
    // called with mu_ held; a null result means: no call
    if (stop_ || !slot) return 0;
    in_callback_ = true;
    ++callback_seq_;
    return slot;
}

void Channel::end_callback() {
    {
        std::lock_guard<std::mutex> g(mu_);
        in_callback_ = false;
    }
    cv_.notify_all();
}

void Channel::emit_init(int64_t err, const std::string& desc) {
    FTAPIChannel_OnInitConnectCallback cb;
    {
        std::lock_guard<std::mutex> g(mu_);
        cb = begin_callback(on_init_);
    }
    if (!cb) return;
    cb(this, err, desc.c_str());
    end_callback();
}

void Channel::emit_disconnect(int64_t err) {
    FTAPIChannel_OnDisConnectCallback cb;
    {
        std::lock_guard<std::mutex> g(mu_);
        cb = begin_callback(on_disconnect_);
    }
    if (!cb) return;
    cb(this, err);
    end_callback();
}

void Channel::emit_reply(FTAPI_ReqReplyType t, const FTAPI_ProtoHeader& h, const std::string* body) {
    FTAPIChannel_OnReplyCallback cb;
    {
        std::lock_guard<std::mutex> g(mu_);
        cb = begin_callback(on_reply_);
    }
    if (!cb) return;
    FTAPI_ProtoHeader copy = h;
    if (body) copy.nBodyLen = static_cast<uint32_t>(body->size());  // the length handed over, not the wire's
    cb(this, t, &copy, body ? body->data() : 0, body ? static_cast<int32_t>(body->size()) : 0);
    end_callback();
}

void Channel::emit_push(const FTAPI_ProtoHeader& h, const std::string& body) {
    FTAPIChannel_OnPushCallback cb;
    {
        std::lock_guard<std::mutex> g(mu_);
        cb = begin_callback(on_push_);
    }
    if (!cb) return;
    FTAPI_ProtoHeader copy = h;
    copy.nBodyLen = static_cast<uint32_t>(body.size());
    cb(this, &copy, body.data(), static_cast<int32_t>(body.size()));
    end_callback();
}

// ---- the I/O thread ----
void Channel::thread_main(Channel* c, std::string host, uint16_t port, IoThread* self) {
    mark_io_thread(c);
    try {
        c->run(host, port);
    } catch (...) {
        // out of memory (or any other exception): the connection ends with a documented code
        c->fail_quietly();
    }
    bool orphan = c->end_of_thread();
    // the channel may be gone from here on
    thread_ended(self, orphan);
    mark_io_thread(0);
}

void Channel::thread_ended(IoThread* self, bool orphan) {
    Registry& r = registry();
    {
        std::lock_guard<std::mutex> g(r.mu);
        if (self) self->ended = true;
        --r.leaving;
        if (orphan) --r.orphans;
    }
    r.cv.notify_all();
}

// Leaves the channel: closes the socket, clears the connection, lets Close return, drops the
// thread's reference. true: the channel had been released while the thread ran.
bool Channel::end_of_thread() {
    reasm_.reset();
    std::vector<char>().swap(rbuf_);
    bool orphan;
    net::socket_t s;
    {
        std::lock_guard<std::mutex> g(mu_);
        // taken under the lock: a SendProto writes to sock_ under it
        s = sock_;
        sock_ = net::kInvalid;
        state_ = kIdle;
        pending_.clear();
        outq_.clear();
        out_off_ = 0;
        queued_ = 0;
        running_ = false;
        orphan = orphan_;
        orphan_ = false;
        {
            // counted before Close can return: UnInit then waits for this thread's end too
            Registry& r = registry();
            std::lock_guard<std::mutex> rg(r.mu);
            ++r.leaving;
        }
        cv_.notify_all();  // under the lock: a waiter may drop the last other reference once it wakes
    }
    net::close_socket(s);
    drop();
    return orphan;
}

// After an exception on the I/O thread: the same end as a failed connection, with what memory is left.
void Channel::fail_quietly() {
    State st;
    {
        std::lock_guard<std::mutex> g(mu_);
        st = state_;
        state_ = kDone;
        in_callback_ = false;  // an exception thrown through a callback (C++ code behind the C API)
    }
    cv_.notify_all();
    try {
        if (st == kReady) fail_connection(pack_err(FTAPI_ConnectFailType_Unknown, kOutOfMemory), "out of memory");
        else if (st == kConnecting || st == kIniting)
            emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_Unknow), "out of memory");
    } catch (...) {
        // no memory even for that: the connection ends without a callback
    }
}

// Fail closed, before any connection: encryption needs a usable key, and a key asked for must have
// loaded. false: OnInitConnect(100 InitFail, 4 SendInitReqFailed) said why.
bool Channel::keys_usable() {
    const char* why = 0;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (rsa_failed_) why = "the RSA private key given to SetRSAPrivateKey did not load";
        else if (encrypt_ && !rsa_) why = "encryption asked but no RSA private key is set";
        if (why) state_ = kDone;
    }
    if (why) emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_SendInitReqFailed), why);
    return !why;
}

void Channel::run(const std::string& host, uint16_t port) {
    if (!keys_usable()) return;
    rbuf_.resize(kReadChunk);
    if (connect_phase(host, port) && queue_init_request()) {
        Clock::time_point init_deadline = Clock::now() + std::chrono::milliseconds(timing_.reply_timeout_ms);
        // each pump() is one bounded wait; the loop ends with the connection
        while (pump(init_deadline)) {
        }
    }
}

bool wait_for_released_channels(int timeout_ms) {
    Registry& r = registry();
    bool done;
    {
        std::unique_lock<std::mutex> g(r.mu);
        Clock::time_point until = Clock::now() + std::chrono::milliseconds(timeout_ms);
        while ((r.orphans > 0 || r.leaving > 0) && Clock::now() < until) r.cv.wait_until(g, until);
        done = r.orphans == 0 && r.leaving == 0;
    }
    if (!t_io_channel) reap_ended();
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
            std::lock_guard<std::mutex> g(mu_);  // SendProto reads sock_ under the lock
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
    std::shared_ptr<const RsaKey> rsa;
    std::string plain;
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
        plain = encode_init_connect_request(c2s);
        rsa = rsa_;
    }
    // RSA without the lock; with encryption on, run() made sure a key is there
    std::string wire = plain;
    bool ok = !rsa || rsa->encrypt(plain, wire);
    if (ok) {
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return false;
        init_serial_ = next_serial_locked();
        ok = queue_packet_locked(kProtoInitConnect, 0, init_serial_, plain, wire, false);
        state_ = ok ? kIniting : kDone;
    }
    if (!ok) {
        {
            std::lock_guard<std::mutex> g(mu_);
            state_ = kDone;
        }
        emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_SendInitReqFailed),
                  rsa ? "RSA encryption of the InitConnect request failed" : "cannot build the InitConnect request");
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
        lost.reserve(pending_.size());
        for (std::map<uint64_t, Pending>::const_iterator it = pending_.begin(); it != pending_.end(); ++it)
            lost.push_back(it->second.header);
        pending_.clear();
        outq_.clear();
        out_off_ = 0;
        queued_ = 0;
    }
    if (st == kIniting || st == kConnecting) {
        emit_init(pack_err(FTAPI_InitFail, FTAPI_InitFailType_DisConnect), why);
        return;
    }
    for (size_t i = 0; i < lost.size(); ++i) emit_reply(FTAPI_ReqReplyType_DisConnect, lost[i], 0);
    emit_disconnect(err);
}

// Sends the front packet, from out_off_, as far as the socket takes it; called with mu_ held (every
// send is, on any thread, so packets leave in queue order). 1: the packet is out, 0: the queue is
// empty or the socket full, -1: send error (*err). No copy or move of what is left.
int Channel::send_front_locked(int* err) {
    if (outq_.empty()) return 0;
    const std::string& front = outq_.front();
    long sent = net::send_some(sock_, front.data() + out_off_, front.size() - out_off_, err);
    if (sent < 0) return -1;
    out_off_ += static_cast<size_t>(sent);
    queued_ -= static_cast<size_t>(sent);
    if (out_off_ < front.size()) return 0;
    outq_.pop_front();
    out_off_ = 0;
    return 1;
}

// The I/O thread's sends: the queue's front packets, and an error a SendProto left. false: send error.
bool Channel::flush_some() {
    int serr = 0;
    for (int i = 0; i < kMaxSendsPerWake; ++i) {
        std::lock_guard<std::mutex> g(mu_);
        serr = send_err_;
        if (serr != 0) break;
        int r = send_front_locked(&serr);
        if (r == 0) return true;
        if (r < 0) break;
    }
    if (serr == 0) return true;
    fail_connection(pack_err(FTAPI_ConnectFailType_SendFailed, serr), "send failed");
    return false;
}

// One wait and what follows from it. false: the connection is over.
bool Channel::pump(Clock::time_point& init_deadline) {
    // init_deadline: the InitConnect reply deadline while initing, then the next keepalive time
    Clock::time_point now = Clock::now();
    // At the latest one reply timeout from now: a request sent after this point has a later
    // deadline than wake_at, so SendProto needs not wake this thread for it (a pipe write and a
    // wake-up per request, paid on the round trip's critical path otherwise).
    Clock::time_point wake_at = now + std::chrono::milliseconds(std::min(60000, std::max(1, timing_.reply_timeout_ms)));
    bool want_write;
    State st;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return false;
        st = state_;
        want_write = !outq_.empty();
        // while initing: the InitConnect reply deadline; once ready, the same time point is the next keepalive
        if ((st == kIniting || (st == kReady && keepalive_ms_ > 0)) && init_deadline < wake_at) wake_at = init_deadline;
        for (std::map<uint64_t, Pending>::const_iterator it = pending_.begin(); it != pending_.end(); ++it)
            if (it->second.deadline < wake_at) wake_at = it->second.deadline;
        io_wake_at_ = wake_at;  // a SendProto with an earlier deadline wakes this thread
    }
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

    // woken: a SendProto may have left an error, or bytes the poll above did not wait to write
    if ((pr.writable || pr.woken) && !flush_some()) return false;

    if (pr.readable || pr.error) {
        for (int i = 0; i < kMaxReadsPerWake; ++i) {
            int rerr = 0;
            long n = net::recv_some(sock_, rbuf_.data(), rbuf_.size(), &rerr);
            if (n == 0) break;
            if (n == -2) {
                fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, 0), "connection closed by peer");
                return false;
            }
            if (n < 0) {
                fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, rerr), "recv failed");
                return false;
            }
            if (!receive(rbuf_.data(), static_cast<size_t>(n), init_deadline)) return false;
            if (static_cast<size_t>(n) < rbuf_.size()) break;
        }
    }

    // timers
    now = Clock::now();
    std::vector<FTAPI_ProtoHeader> expired;
    bool keepalive_missed = false;
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
            // keepalive_ms_ is 4/5 of the interval: the bound is the interval x kKeepAliveMissFactor
            Clock::duration silent = now - keepalive_answered_;
            if (silent > std::chrono::milliseconds(static_cast<int64_t>(keepalive_ms_) * 5 / 4 * kKeepAliveMissFactor)) {
                keepalive_missed = true;
            } else {
                uint32_t serial = next_serial_locked();
                std::string plain = encode_keepalive_request(static_cast<int64_t>(::time(0)));
                // a KeepAlive is queued past the limits: it is what finds a stalled server
                if (queue_packet_locked(kProtoKeepAlive, 0, serial, plain, plain, encrypt_)) {
                    keepalive_serials_.push_back(serial);
                    if (keepalive_serials_.size() > kMaxKeepaliveSerials) keepalive_serials_.pop_front();
                }
            }
            init_deadline = now + std::chrono::milliseconds(keepalive_ms_);
        }
    }
    if (keepalive_missed) {
        fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, net::kTimedOut), "no KeepAlive reply");
        return false;
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
    bool ok;
    {
        std::lock_guard<std::mutex> g(mu_);  // the AES key and mode are set once per connection
        ok = decrypt_body(p.body, plain);
    }
    std::string().swap(p.body);  // at most the wire body and the plaintext at once
    if (!ok) {
        fail_connection(pack_err(FTAPI_ConnectFailType_RecvFailed, kProtocolError), "cannot decrypt body");
        return false;
    }
    uint8_t digest[20];
    if (!sha1(plain.data(), plain.size(), digest) || memcmp(digest, p.header.arrBodySHA1, 20) != 0) {
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
                    keepalive_answered_ = Clock::now();
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
    bool encrypt;
    std::shared_ptr<const RsaKey> rsa;
    {
        std::lock_guard<std::mutex> g(mu_);
        encrypt = encrypt_;
        rsa = rsa_;
    }
    // with encryption on the reply must be RSA-encrypted (run() made sure a key is set): a plaintext
    // reply fails to decrypt, or its SHA-1 does not match, and is a protocol error
    if (encrypt) ok = rsa && rsa->decrypt(p.body, plain);
    else plain.swap(p.body);
    if (!ok) why = "cannot decrypt the InitConnect reply";
    if (ok) {
        uint8_t digest[20];
        if (!sha1(plain.data(), plain.size(), digest) || memcmp(digest, p.header.arrBodySHA1, 20) != 0) {
            ok = false;
            why = "InitConnect reply SHA-1 mismatch";
        }
    }
    InitConnectResponse rsp;
    if (ok && !decode_init_connect_response(plain.data(), plain.size(), rsp)) {
        ok = false;
        why = "malformed InitConnect reply";
    }
    wipe(plain);
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
            keepalive_answered_ = Clock::now();
            state_ = kReady;
        }
    }
    wipe(rsp.s2c.conn_aes_key);
    wipe(rsp.s2c.aes_cbc_iv);
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
