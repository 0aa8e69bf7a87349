// Stand-in SDK source (Src/@LIB@/Packet.cpp): OpenD packet framing.
#include <string.h>

#include "@LIB@.h"

namespace @LIB@ {
namespace {
void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint32_t GetU32(const std::string& in, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[at + i]);
  return v;
}
}  // namespace

std::string PackRequest(uint32_t protoId, uint32_t serial, const google::protobuf::Message& body) {
  std::string payload;
  body.SerializeToString(&payload);
  std::string out("FT");
  PutU32(&out, protoId);
  out.push_back(0);  // format: protobuf
  out.push_back(0);  // version
  PutU32(&out, serial);
  PutU32(&out, static_cast<uint32_t>(payload.size()));
  out.append(20, '\0');  // SHA-1 of the body
  out.append(8, '\0');   // reserved
  return out + payload;
}

bool UnpackPacket(const std::string& packet, uint32_t* protoId, uint32_t* serial, std::string* body) {
  if (packet.size() < @LIB@_HEADER_SIZE || packet[0] != 'F' || packet[1] != 'T') return false;
  *protoId = GetU32(packet, 2);
  *serial = GetU32(packet, 8);
  uint32_t length = GetU32(packet, 12);
  if (packet.size() != @LIB@_HEADER_SIZE + length) return false;
  body->assign(packet, @LIB@_HEADER_SIZE, length);
  return true;
}

}  // namespace @LIB@
