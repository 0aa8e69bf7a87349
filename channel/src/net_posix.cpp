#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "net_resolve.h"

namespace opend_channel {
namespace net {

namespace {
// Where the kernel cannot create a socket close-on-exec at once (SOCK_CLOEXEC, pipe2: Linux, the
// BSDs), the flag is set right after: a fork() in between would inherit the descriptor.
bool set_nonblock_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return false;
    int fdf = fcntl(fd, F_GETFD, 0);
    if (fdf >= 0) fcntl(fd, F_SETFD, fdf | FD_CLOEXEC);
    return true;
}
}  // namespace

int last_error() { return errno; }
int would_block_code() { return EWOULDBLOCK; }

int resolve(const std::string& host, uint16_t port, std::vector<Address>& out) { return resolve_tcp(host, port, out, EAI_NONAME); }

int connect_start(const Address& a, socket_t& s) {
#ifdef SOCK_CLOEXEC
    s = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
#else
    s = socket(a.family, SOCK_STREAM, IPPROTO_TCP);
#endif
    if (s < 0) {
        s = kInvalid;
        return errno ? errno : EINVAL;
    }
    if (!set_nonblock_cloexec(s)) {
        int e = errno;
        ::close(s);
        s = kInvalid;
        return e;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#ifdef SO_NOSIGPIPE
    setsockopt(s, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    if (::connect(s, reinterpret_cast<const struct sockaddr*>(a.storage), a.len) == 0) return 0;
    if (errno == EINPROGRESS || errno == EINTR) return 0;
    int e = errno;
    ::close(s);
    s = kInvalid;
    return e;
}

int connect_result(socket_t s) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
}

bool Waker::open() {
    int fds[2];
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
#else
    if (pipe(fds) != 0) return false;
#endif
    if (!set_nonblock_cloexec(fds[0]) || !set_nonblock_cloexec(fds[1])) {
        ::close(fds[0]);
        ::close(fds[1]);
        return false;
    }
    r = fds[0];
    w = fds[1];
    return true;
}

void Waker::notify() {
    if (w == kInvalid) return;
    char c = 1;
    ssize_t n = ::write(w, &c, 1);  // a full pipe already means "woken"
    (void)n;
}

void Waker::drain() {
    char buf[64];
    for (int i = 0; i < 64; ++i) {
        ssize_t n = ::read(r, buf, sizeof(buf));
        if (n < static_cast<ssize_t>(sizeof(buf))) break;
    }
}

void Waker::close() {
    if (r != kInvalid) ::close(r);
    if (w != kInvalid) ::close(w);
    r = w = kInvalid;
}

int wait(socket_t s, bool want_read, bool want_write, const Waker& wk, int timeout_ms, PollResult& r, int* err) {
    r.readable = r.writable = r.error = r.woken = false;
    struct pollfd p[2];
    nfds_t n = 0;
    p[n].fd = wk.r;
    p[n].events = POLLIN;
    p[n].revents = 0;
    ++n;
    if (s != kInvalid) {
        p[n].fd = s;
        p[n].events = static_cast<short>((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0));
        p[n].revents = 0;
        ++n;
    }
    int rc = ::poll(p, n, timeout_ms);
    if (rc < 0) {
        if (errno == EINTR) return 0;
        if (err) *err = errno;
        return -1;
    }
    if (p[0].revents) r.woken = true;
    if (n > 1) {
        if (p[1].revents & (POLLIN | POLLHUP)) r.readable = true;
        if (p[1].revents & POLLOUT) r.writable = true;
        if (p[1].revents & (POLLERR | POLLNVAL)) r.error = true;
    }
    return rc;
}

long send_some(socket_t s, const void* p, size_t n, int* err) {
#ifdef MSG_NOSIGNAL
    const int flags = MSG_NOSIGNAL;
#else
    const int flags = 0;
#endif
    ssize_t k = ::send(s, p, n, flags);
    if (k >= 0) return static_cast<long>(k);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    if (err) *err = errno;
    return -1;
}

long recv_some(socket_t s, void* p, size_t n, int* err) {
    ssize_t k = ::recv(s, p, n, 0);
    if (k > 0) return static_cast<long>(k);
    if (k == 0) return -2;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    if (err) *err = errno;
    return -1;
}

void close_socket(socket_t s) {
    if (s != kInvalid) ::close(s);
}

}  // namespace net
}  // namespace opend_channel
