// Framing and the protobuf mini-codec: pure functions, no sockets, no threads.
#ifndef OPEND_CHANNEL_WIRE_H
#define OPEND_CHANNEL_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string>
#include <vector>

#include "FTAPIChannel_Define.h"

namespace opend_channel {

const size_t kHeaderSize = 44;
const uint32_t kMaxBodyLen = 64u * 1024u * 1024u;  // a larger bodyLen is a protocol error

// Proto IDs the channel itself speaks.
const uint32_t kProtoInitConnect = 1001;
const uint32_t kProtoKeepAlive = 1004;

// Writes the 44-byte little-endian wire form of h (magic forced to "FT", reserved to zero).
void pack_header(const FTAPI_ProtoHeader& h, uint8_t out[kHeaderSize]);

enum HeaderStatus { kHeaderOk = 0, kHeaderBadMagic = 1, kHeaderTooLong = 2 };
// Reads a header from exactly kHeaderSize bytes; checks the magic and bodyLen <= max_body.
HeaderStatus parse_header(const uint8_t in[kHeaderSize], FTAPI_ProtoHeader& out, uint32_t max_body = kMaxBodyLen);

// Header for a body: protoID, version, serial, wire length, SHA-1 of the plaintext.
FTAPI_ProtoHeader make_header(uint32_t proto_id, uint8_t proto_ver, uint32_t serial, uint32_t wire_len,
                              const uint8_t sha1[20]);

struct Packet {
    FTAPI_ProtoHeader header;
    std::string body;  // as on the wire (still encrypted)
};

// Bytes in, whole packets out. Once an error is returned the stream is unusable.
class Reassembler {
public:
    explicit Reassembler(uint32_t max_body = kMaxBodyLen) : max_body_(max_body), pos_(0), big_(0), error_(false) {}
    void feed(const void* data, size_t n);
    enum Result { kNeedMore = 0, kPacket = 1, kError = 2 };
    Result next(Packet& out);
    size_t buffered() const { return buf_.size() - pos_ + tail_.size(); }
    size_t capacity() const { return buf_.capacity() + tail_.capacity(); }
    // a buffer larger than this is given back once it is empty
    static const size_t kKeepCapacity = 1024 * 1024;
    void reset() {
        std::string().swap(buf_);
        std::string().swap(tail_);
        pos_ = 0;
        big_ = 0;
        error_ = false;
    }

private:
    uint32_t max_body_;
    std::string buf_;
    size_t pos_;
    // A packet over kKeepCapacity, once half of it is in, gets a buffer of exactly its size
    // (big_ bytes, header included); the bytes after it wait in tail_. Its body is then handed
    // over without a copy: one packet costs its own size, never a doubled buffer besides.
    std::string tail_;
    size_t big_;
    bool error_;
};

// ---- protobuf wire format, just what the channel needs ----
class PbWriter {
public:
    void varint_field(uint32_t field, uint64_t v);
    void int32_field(uint32_t field, int32_t v);  // negative values take 10 bytes, as protobuf does
    void int64_field(uint32_t field, int64_t v);
    void bool_field(uint32_t field, bool v);
    void bytes_field(uint32_t field, const std::string& v);
    const std::string& str() const { return out_; }

private:
    void varint(uint64_t v);
    std::string out_;
};

struct PbField {
    uint32_t number;
    uint32_t wire_type;  // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
    uint64_t value;      // varint / fixed value
    const uint8_t* data; // length-delimited payload
    size_t size;
};

class PbReader {
public:
    PbReader(const void* data, size_t n) : p_(static_cast<const uint8_t*>(data)), end_(p_ + n), error_(false) {}
    // false at the end or on malformed input (then error() is true)
    bool next(PbField& f);
    bool error() const { return error_; }

private:
    bool varint(uint64_t& v);
    const uint8_t* p_;
    const uint8_t* end_;
    bool error_;
};

// ---- the channel's own messages ----
struct InitConnectC2S {
    int32_t client_ver;
    std::string client_id;
    bool recv_notify;
    int32_t packet_enc_algo;  // 2 = AES-CBC, -1 = none
    int32_t push_proto_fmt;
    std::string programming_language;
};
// Request{c2s=1:C2S{...}}
std::string encode_init_connect_request(const InitConnectC2S& c2s);

struct InitConnectS2C {
    int32_t server_ver;
    uint64_t login_user_id;
    uint64_t conn_id;
    std::string conn_aes_key;
    int32_t keep_alive_interval;
    bool has_aes_cbc_iv;
    std::string aes_cbc_iv;
    bool has_s2c;
};
struct InitConnectResponse {
    int32_t ret_type;  // default -400
    std::string ret_msg;
    int32_t err_code;
    InitConnectS2C s2c;
};
// false when the bytes are not a well-formed Response
bool decode_init_connect_response(const void* data, size_t n, InitConnectResponse& out);

// KeepAlive Request{c2s{time}}
std::string encode_keepalive_request(int64_t unix_time);

}  // namespace opend_channel

#endif
