// Stand-in for the 10.x channel source (Src/@LIB@Channel/), written for opend-build's tests: like
// the real one it needs OpenSSL, which the build must find and the package must link.
#include <openssl/sha.h>

#include "@LIB@Channel.h"

extern "C" int @LIB@Channel_Init(void) { return 0; }

extern "C" void @LIB@Channel_BodySHA1(const void* body, size_t len, unsigned char out[20]) {
  SHA1(static_cast<const unsigned char*>(body), len, out);
}
