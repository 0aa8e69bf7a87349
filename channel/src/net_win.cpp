// The socket layer on Winsock 2 (Windows; MinGW-w64 and MSVC): the same interface as net_posix.cpp.
// System errors are WSA codes (WSAGetLastError). The waker is one non-blocking UDP socket bound to
// 127.0.0.1 and connected to itself: notify sends it a byte, which makes it readable.
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <limits.h>
#include <string.h>

#include "net.h"
#include "net_resolve.h"

namespace opend_channel {
namespace net {

namespace {

// Winsock is started once per process, on first use, and left running (the process ends it).
int winsock_started() {
    struct Start {
        int rc;
        Start() {
            WSADATA d;
            rc = WSAStartup(MAKEWORD(2, 2), &d);
        }
    };
    static Start s;  // C++11: initialised once, thread-safe
    return s.rc;
}

SOCKET sock(socket_t s) { return static_cast<SOCKET>(s); }

// A socket of ours: not inherited by child processes, non-blocking.
int open_socket(int family, int type, int protocol, SOCKET& out) {
    out = INVALID_SOCKET;
    int rc = winsock_started();
    if (rc != 0) return rc;
    out = WSASocketW(family, type, protocol, 0, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (out == INVALID_SOCKET) {
        // WSA_FLAG_NO_HANDLE_INHERIT is Windows 7 SP1 and later: without it, clear the flag afterwards
        out = WSASocketW(family, type, protocol, 0, 0, WSA_FLAG_OVERLAPPED);
        if (out == INVALID_SOCKET) return WSAGetLastError();
        SetHandleInformation(reinterpret_cast<HANDLE>(out), HANDLE_FLAG_INHERIT, 0);
    }
    u_long on = 1;
    if (ioctlsocket(out, FIONBIO, &on) != 0) {
        int e = WSAGetLastError();
        closesocket(out);
        out = INVALID_SOCKET;
        return e;
    }
    return 0;
}

int clamp_len(size_t n) { return n > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(n); }

}  // namespace

int last_error() { return WSAGetLastError(); }
int would_block_code() { return WSAEWOULDBLOCK; }

int resolve(const std::string& host, uint16_t port, std::vector<Address>& out) {
    out.clear();
    int rc = winsock_started();
    return rc != 0 ? rc : resolve_tcp(host, port, out, WSAHOST_NOT_FOUND);  // Windows' getaddrinfo returns WSA codes
}

int connect_start(const Address& a, socket_t& s) {
    s = kInvalid;
    SOCKET k;
    int rc = open_socket(a.family, SOCK_STREAM, IPPROTO_TCP, k);
    if (rc != 0) return rc;
    BOOL one = TRUE;
    setsockopt(k, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof(one));
    // out-of-band bytes arrive inline (OpenD sends none: one is a protocol error in the stream);
    // otherwise one would keep exceptfds set while recv never consumes it, and the I/O thread spins
    setsockopt(k, SOL_SOCKET, SO_OOBINLINE, reinterpret_cast<const char*>(&one), sizeof(one));
    if (::connect(k, reinterpret_cast<const struct sockaddr*>(a.storage), static_cast<int>(a.len)) != 0) {
        int e = WSAGetLastError();
        if (e != WSAEWOULDBLOCK && e != WSAEINPROGRESS && e != WSAEINTR) {
            closesocket(k);
            return e;
        }
    }
    s = static_cast<socket_t>(k);
    return 0;
}

int connect_result(socket_t s) {
    int err = 0;
    int len = sizeof(err);
    if (getsockopt(sock(s), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&err), &len) != 0) return WSAGetLastError();
    return err;
}

bool Waker::open() {
    SOCKET k;
    if (open_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP, k) != 0) return false;
    struct sockaddr_in self;
    memset(&self, 0, sizeof(self));
    self.sin_family = AF_INET;
    self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    self.sin_port = 0;
    int len = sizeof(self);
    if (bind(k, reinterpret_cast<struct sockaddr*>(&self), sizeof(self)) != 0 ||
        getsockname(k, reinterpret_cast<struct sockaddr*>(&self), &len) != 0 ||
        ::connect(k, reinterpret_cast<struct sockaddr*>(&self), sizeof(self)) != 0) {
        closesocket(k);
        return false;
    }
    r = w = static_cast<socket_t>(k);
    return true;
}

void Waker::notify() {
    if (w == kInvalid) return;
    char c = 1;
    ::send(sock(w), &c, 1, 0);  // a full buffer already means "woken"
}

void Waker::drain() {
    char buf[64];
    for (int i = 0; i < 64; ++i) {
        if (::recv(sock(r), buf, sizeof(buf), 0) < 0) break;  // WSAEWOULDBLOCK: empty
    }
}

void Waker::close() {
    if (r != kInvalid) closesocket(sock(r));
    r = w = kInvalid;
}

int wait(socket_t s, bool want_read, bool want_write, const Waker& wk, int timeout_ms, PollResult& r, int* err) {
    // select, not WSAPoll: WSAPoll does not report a failed non-blocking connect on older Windows.
    // A failed connect shows in exceptfds; a connected socket in writefds.
    r.readable = r.writable = r.error = r.woken = false;
    fd_set rd, wr, ex;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_ZERO(&ex);
    FD_SET(sock(wk.r), &rd);
    if (s != kInvalid) {
        if (want_read) FD_SET(sock(s), &rd);
        if (want_write) FD_SET(sock(s), &wr);
        FD_SET(sock(s), &ex);
    }
    struct timeval tv;
    struct timeval* tvp = 0;
    if (timeout_ms >= 0) {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
        tvp = &tv;
    }
    int rc = ::select(0, &rd, &wr, &ex, tvp);
    if (rc == SOCKET_ERROR) {
        int e = WSAGetLastError();
        if (e == WSAEINTR) return 0;
        if (err) *err = e;
        return -1;
    }
    if (FD_ISSET(sock(wk.r), &rd)) r.woken = true;
    if (s != kInvalid) {
        if (FD_ISSET(sock(s), &rd)) r.readable = true;
        if (FD_ISSET(sock(s), &wr)) r.writable = true;
        if (FD_ISSET(sock(s), &ex)) r.error = true;
    }
    return rc;
}

long send_some(socket_t s, const void* p, size_t n, int* err) {
    int k = ::send(sock(s), static_cast<const char*>(p), clamp_len(n), 0);
    if (k >= 0) return static_cast<long>(k);
    int e = WSAGetLastError();
    if (e == WSAEWOULDBLOCK || e == WSAEINTR) return 0;
    if (err) *err = e;
    return -1;
}

long recv_some(socket_t s, void* p, size_t n, int* err) {
    int k = ::recv(sock(s), static_cast<char*>(p), clamp_len(n), 0);
    if (k > 0) return static_cast<long>(k);
    if (k == 0) return -2;
    int e = WSAGetLastError();
    if (e == WSAEWOULDBLOCK || e == WSAEINTR) return 0;
    if (err) *err = e;
    return -1;
}

void close_socket(socket_t s) {
    if (s != kInvalid) closesocket(sock(s));
}

}  // namespace net
}  // namespace opend_channel
