// The socket layer: everything OS-specific lives in net_posix.cpp (a net_win32.cpp can follow).
#ifndef OPEND_CHANNEL_NET_H
#define OPEND_CHANNEL_NET_H

#include <stddef.h>
#include <stdint.h>
#include <string>
#include <vector>

namespace opend_channel {
namespace net {

typedef int socket_t;
const socket_t kInvalid = -1;

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

// Self-pipe used to wake the I/O thread.
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
// Waits up to timeout_ms (-1: forever) on s (if valid) and the waker. Returns -1 on error (errno in *err).
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
