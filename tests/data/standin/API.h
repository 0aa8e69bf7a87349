// Stand-in for the SDK's public header (@LIB@.h), written for opend-build's tests. It uses the
// generated classes the way the vendor's wrapper does: requests in, framed packets out.
#pragma once
#include <stdint.h>
#include <string>
#include <vector>

#include "@LIB@_Define.h"  // and through it, as the vendor's headers do, every Proto/*.pb.h

namespace @LIB@ {

// Frames a serialized request as OpenD does: "FT", proto id, format, version, serial, body length,
// body SHA-1 (left zero by this stand-in), 8 reserved bytes; little-endian; then the body.
std::string PackRequest(uint32_t protoId, uint32_t serial, const google::protobuf::Message& body);

// Splits a framed packet back into proto id, serial and body; false when the header is not valid.
bool UnpackPacket(const std::string& packet, uint32_t* protoId, uint32_t* serial, std::string* body);

// Builds a Qot_Sub request subscribing `codes` of market `market` to `subTypes`.
Qot_Sub::Request MakeSubRequest(int market, const std::vector<std::string>& codes, const std::vector<int>& subTypes);

const char* Version();

}  // namespace @LIB@
