// getaddrinfo as both socket layers use it (TCP, any family, a numeric port, at most 16 addresses).
// Included by net_posix.cpp and net_win.cpp after their system headers, which declare addrinfo.
#ifndef OPEND_CHANNEL_NET_RESOLVE_H
#define OPEND_CHANNEL_NET_RESOLVE_H

#include <stdio.h>
#include <string.h>

#include "net.h"

namespace opend_channel {
namespace net {

// 0, the resolver's error as a positive number, or none_found when it gave no usable address.
inline int resolve_tcp(const std::string& host, uint16_t port, std::vector<Address>& out, int none_found) {
    out.clear();
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", static_cast<unsigned>(port));
    struct addrinfo* res = 0;
    int rc = getaddrinfo(host.c_str(), portstr, &hints, &res);
    if (rc != 0) return rc < 0 ? -rc : rc;
    try {
        for (struct addrinfo* ai = res; ai && out.size() < 16; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof(Address().storage)) continue;
            Address a;
            memset(&a, 0, sizeof(a));
            memcpy(a.storage, ai->ai_addr, ai->ai_addrlen);
            a.len = static_cast<unsigned>(ai->ai_addrlen);
            a.family = ai->ai_family;
            out.push_back(a);
        }
    } catch (...) {
        freeaddrinfo(res);  // out of memory: the caller's catch reports it
        throw;
    }
    freeaddrinfo(res);
    return out.empty() ? none_found : 0;
}

}  // namespace net
}  // namespace opend_channel

#endif
