// Stand-in for the vendor's connection wrapper (@LIB@_Conn.h), written for opend-build's tests:
// like the vendor's FTAPI_Conn it owns one channel of the C API (FTAPIChannel.h), sends requests
// built from the generated classes and hands replies and pushes back as messages.
#pragma once
#include <stdint.h>
#include <string>

#include "@LIB@_Define.h"

namespace @LIB@ {

class Conn {
 public:
  Conn();
  ~Conn();
  // Connects to OpenD at host:port (RSA + AES when `rsa_pem` is given) and waits, bounded, for
  // InitConnect's result; true on success.
  bool Connect(const char* host, int port, const char* rsa_pem);
  uint64_t ConnID() const;
  // Sends a request and waits, bounded, for its reply's body; false on timeout, disconnect or a failed send.
  bool Request(uint32_t protoId, const google::protobuf::Message& req, std::string* reply);
  // Waits, bounded, for the first push of `protoId` and returns its body.
  bool WaitPush(uint32_t protoId, std::string* body);

  struct Impl;  // what the channel's callbacks reach (Conn.cpp)

 private:
  Impl* impl_;
};

}  // namespace @LIB@
