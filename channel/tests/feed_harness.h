// The friend of Channel for the test programs that drive the receive path without a server
// (channel_feed, its libFuzzer build, channel_mem): what init_connect() and run() do around
// pump(), minus resolve, connect and the thread registry; and a connected pair of stream sockets
// on every OS the channel builds for (socketpair on POSIX, a loopback TCP pair on Windows).
#ifndef OPEND_CHANNEL_TESTS_FEED_HARNESS_H
#define OPEND_CHANNEL_TESTS_FEED_HARNESS_H

#include <stddef.h>
#include <string.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include "channel.h"

namespace opend_channel {

class FeedHarness {
public:
    // init_connect(): the I/O thread is `body` (which calls enter() first), running what run()
    // would around receive()
    static bool start(Channel& c, bool encrypt, void (*body)(), std::thread& t) {
        std::lock_guard<std::mutex> g(c.mu_);
        if (!prepare_locked(c, encrypt)) return false;
        t = std::thread(body);
        return true;
    }
    // As start(), for a connection past its InitConnect: ready, AES-CBC with this key and IV when
    // key16 is not empty (FTAES-ECB when iv16 is empty); keepalives off.
    static bool start_ready(Channel& c, const std::string& key16, const std::string& iv16, void (*body)(), std::thread& t) {
        std::lock_guard<std::mutex> g(c.mu_);
        if (!prepare_locked(c, !key16.empty())) return false;
        c.state_ = Channel::kReady;
        c.aes_key_ = key16;
        c.aes_iv_ = iv16;
        c.cbc_ = !iv16.empty();
        c.keepalive_ms_ = 0;
        t = std::thread(body);
        return true;
    }
    static bool prepare_locked(Channel& c, bool encrypt) {
        if (!c.waker_.open()) return false;
        c.state_ = Channel::kConnecting;
        c.stop_ = false;
        c.encrypt_ = encrypt;
        c.cbc_ = false;
        c.aes_key_.clear();
        c.aes_iv_.clear();
        c.conn_id_ = 0;
        c.outq_.clear();
        c.out_off_ = 0;
        c.queued_ = 0;
        c.pending_.clear();
        c.keepalive_serials_.clear();
        c.reasm_.reset();
        c.running_ = true;
        ++c.generation_;
        c.retain();  // the thread's reference, dropped by finish()
        return true;
    }
    static void enter(Channel& c) { Channel::mark_io_thread(&c); }
    // run()'s start: the key check, then the InitConnect request
    static bool queue_init_request(Channel& c) { return c.keys_usable() && c.queue_init_request(); }
    // the connected socket, before serve(): SendProto writes to it from then on
    static void attach(Channel& c, net::socket_t fd) {
        std::lock_guard<std::mutex> g(c.mu_);
        c.sock_ = fd;
    }
    // run() after connect_phase(): the pump loop on a connected socket
    static void serve(Channel& c, net::socket_t fd) {
        attach(c, fd);
        c.rbuf_.resize(65536);
        Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(c.timing_.reply_timeout_ms);
        for (long i = 0; i < 100000000 && c.pump(deadline); ++i) {
        }
    }
    // the end of the thread
    static void finish(Channel& c) {
        Channel::thread_ended(0, c.end_of_thread());
        Channel::mark_io_thread(0);
    }
    static size_t reassembler_capacity(Channel& c) { return c.reasm_.capacity(); }
};

namespace testnet {

#ifdef _WIN32
typedef SOCKET sock_t;
inline void close_sock(sock_t s) { ::closesocket(s); }
inline void shutdown_write(sock_t s) { ::shutdown(s, SD_SEND); }
const int kSendFlags = 0;
#else
typedef int sock_t;
inline void close_sock(sock_t s) { ::close(s); }
inline void shutdown_write(sock_t s) { ::shutdown(s, SHUT_WR); }
#ifdef MSG_NOSIGNAL
const int kSendFlags = MSG_NOSIGNAL;
#else
const int kSendFlags = 0;
#endif
#endif

inline long send_bytes(sock_t s, const char* p, size_t n) {
    int k = n > (1u << 30) ? (1 << 30) : static_cast<int>(n);
    return static_cast<long>(::send(s, p, k, kSendFlags));
}
inline long recv_bytes(sock_t s, char* p, size_t n) {
    return static_cast<long>(::recv(s, p, static_cast<int>(n), 0));
}

// fds[0]: the channel's end (non-blocking, as the channel's own sockets), fds[1]: the peer's
// (blocking). true on success.
inline bool stream_pair(sock_t fds[2]) {
#ifdef _WIN32
    WSADATA d;
    if (WSAStartup(MAKEWORD(2, 2), &d) != 0) return false;
    SOCKET l = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (l == INVALID_SOCKET) return false;
    sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    int alen = sizeof(a);
    SOCKET c = INVALID_SOCKET, s = INVALID_SOCKET;
    bool ok = ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
              ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &alen) == 0 && ::listen(l, 1) == 0;
    if (ok) c = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    ok = ok && c != INVALID_SOCKET && ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    if (ok) s = ::accept(l, 0, 0);
    ::closesocket(l);
    u_long on = 1;
    if (!ok || s == INVALID_SOCKET || ::ioctlsocket(c, FIONBIO, &on) != 0) {
        if (c != INVALID_SOCKET) ::closesocket(c);
        if (s != INVALID_SOCKET) ::closesocket(s);
        return false;
    }
    BOOL nodelay = TRUE;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&nodelay), sizeof(nodelay));
    fds[0] = c;
    fds[1] = s;
    return true;
#else
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return false;
    for (int i = 0; i < 2; ++i) ::fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    return true;
#endif
}

}  // namespace testnet
}  // namespace opend_channel

#endif
