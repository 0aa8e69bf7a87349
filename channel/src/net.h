// The socket layer: everything OS-specific lives in net_posix.cpp (POSIX) and net_win.cpp (Winsock 2).
#ifndef OPEND_CHANNEL_NET_H
#define OPEND_CHANNEL_NET_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string>
#include <vector>

namespace opend_channel {
namespace net {

#ifdef _WIN32
typedef uintptr_t socket_t;  // Winsock's SOCKET
const socket_t kInvalid = ~static_cast<uintptr_t>(0);  // INVALID_SOCKET
const int kTimedOut = 10060;                            // WSAETIMEDOUT
#else
typedef int socket_t;
const socket_t kInvalid = -1;
const int kTimedOut = ETIMEDOUT;
#endif

struct Address {
    unsigned char storage[128];
    unsigned len;
    int family;
};

// getaddrinfo over TCP; 0 on success, else the resolver's error (as a positive number)
int resolve(const std::string& host, uint16_t port, std::vector<Address>& out);

// Non-blocking connect started; returns 0 (connected or in progress) or the system error.
int connect_start(const Address& a, socket_t& s);
// After the socket polled writable: 0 when connected, else the system error.
int connect_result(socket_t s);

// Self-pipe used to wake the I/O thread (Windows: one loopback UDP socket sending to itself, r == w).
struct Waker {
    socket_t r, w;
    Waker() : r(kInvalid), w(kInvalid) {}
    bool open();
    void notify();
    void drain();
    void close();
};

struct PollResult {
    bool readable, writable, error, woken;
};
// Waits up to timeout_ms (-1: forever) on s (if valid) and the waker. Returns -1 on error (errno, or
// WSAGetLastError on Windows, in *err). System errors are errno values, on Windows WSA codes.
int wait(socket_t s, bool want_read, bool want_write, const Waker& wk, int timeout_ms, PollResult& r, int* err);

// >0 bytes, 0 would block, -1 error (system error in *err); recv: -2 peer closed.
long send_some(socket_t s, const void* p, size_t n, int* err);
long recv_some(socket_t s, void* p, size_t n, int* err);
void close_socket(socket_t s);
int last_error();
int would_block_code();

}  // namespace net
}  // namespace opend_channel

#endif
