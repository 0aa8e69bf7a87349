// Stand-in for @LIB@Channel.h, the channel's C API, written for opend-build's tests. In the 10.x
// generation the channel comes as source (Src/@LIB@Channel/) and uses OpenSSL.
#pragma once
#include <stddef.h>
#define OPEND_STANDIN_CHANNEL_SOURCE 1
#ifdef __cplusplus
extern "C" {
#endif
int @LIB@Channel_Init(void);
// SHA-1 of a packet body, as OpenD's packet header carries it (20 bytes into `out`).
void @LIB@Channel_BodySHA1(const void* body, size_t len, unsigned char out[20]);
#ifdef __cplusplus
}
#endif
