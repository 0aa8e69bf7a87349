#include "wire.h"

#include <algorithm>

#include <string.h>

namespace opend_channel {

namespace {
void put_u32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
    p[2] = static_cast<uint8_t>(v >> 16);
    p[3] = static_cast<uint8_t>(v >> 24);
}
uint32_t get_u32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
           (static_cast<uint32_t>(p[3]) << 24);
}
}  // namespace

void pack_header(const FTAPI_ProtoHeader& h, uint8_t out[kHeaderSize]) {
    out[0] = 'F';
    out[1] = 'T';
    put_u32(out + 2, h.nProtoID);
    out[6] = h.nProtoFmtType;
    out[7] = h.nProtoVer;
    put_u32(out + 8, h.nSerialNo);
    put_u32(out + 12, h.nBodyLen);
    memcpy(out + 16, h.arrBodySHA1, 20);
    memset(out + 36, 0, 8);
}

HeaderStatus parse_header(const uint8_t in[kHeaderSize], FTAPI_ProtoHeader& out, uint32_t max_body) {
    memset(&out, 0, sizeof(out));
    out.szHeaderFlag[0] = in[0];
    out.szHeaderFlag[1] = in[1];
    out.nProtoID = get_u32(in + 2);
    out.nProtoFmtType = in[6];
    out.nProtoVer = in[7];
    out.nSerialNo = get_u32(in + 8);
    out.nBodyLen = get_u32(in + 12);
    memcpy(out.arrBodySHA1, in + 16, 20);
    memcpy(out.arrReserved, in + 36, 8);
    if (in[0] != 'F' || in[1] != 'T') return kHeaderBadMagic;
    if (out.nBodyLen > max_body) return kHeaderTooLong;
    return kHeaderOk;
}

FTAPI_ProtoHeader make_header(uint32_t proto_id, uint8_t proto_ver, uint32_t serial, uint32_t wire_len,
                              const uint8_t sha1[20]) {
    FTAPI_ProtoHeader h;
    memset(&h, 0, sizeof(h));
    h.szHeaderFlag[0] = 'F';
    h.szHeaderFlag[1] = 'T';
    h.nProtoID = proto_id;
    h.nProtoFmtType = FTAPI_ProtoFmtType_Protobuf;
    h.nProtoVer = proto_ver;
    h.nSerialNo = serial;
    h.nBodyLen = wire_len;
    memcpy(h.arrBodySHA1, sha1, 20);
    return h;
}

void Reassembler::feed(const void* data, size_t n) {
    if (error_ || n == 0) return;
    const char* d = static_cast<const char*>(data);
    if (big_ > 0) {
        // the large packet's exact buffer takes what it lacks; the rest waits
        size_t k = std::min(n, big_ - buf_.size());
        buf_.append(d, k);
        if (n > k) tail_.append(d + k, n - k);
        return;
    }
    // drop consumed bytes before growing, so the buffer stays about one packet large
    if (pos_ > 0 && (pos_ >= buf_.size() || pos_ > 65536)) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    // complete the header of the next packet first: its length decides where the rest goes
    size_t avail = buf_.size() - pos_;
    if (avail < kHeaderSize) {
        size_t k = std::min(n, kHeaderSize - avail);
        buf_.append(d, k);
        d += k;
        n -= k;
        avail += k;
        if (n == 0) return;
    }
    FTAPI_ProtoHeader h;
    const uint8_t* p = reinterpret_cast<const uint8_t*>(buf_.data()) + pos_;
    if (parse_header(p, h, max_body_) == kHeaderOk && h.nBodyLen > kKeepCapacity) {
        // a large packet: once half of it is in (a header alone must not make us allocate 64 MiB),
        // a buffer of exactly its size, this packet's bytes only (a grown buffer would double)
        size_t need = kHeaderSize + h.nBodyLen, have = avail + n;
        if (have >= need / 2) {
            std::string exact;
            exact.reserve(need);  // from empty: exactly need, no growth factor
            exact.append(buf_, pos_, avail);
            buf_.swap(exact);
            std::string().swap(exact);
            pos_ = 0;
            big_ = need;
            feed(d, n);
            return;
        }
    }
    buf_.append(d, n);
}

Reassembler::Result Reassembler::next(Packet& out) {
    if (error_) return kError;
    if (big_ > 0) {
        if (buf_.size() < big_) return kNeedMore;
        // the buffer is this one large packet: hand its storage over instead of copying it
        parse_header(reinterpret_cast<const uint8_t*>(buf_.data()), out.header, max_body_);  // checked in feed()
        buf_.erase(0, kHeaderSize);
        out.body.swap(buf_);
        buf_.swap(tail_);  // what came after it
        std::string().swap(tail_);
        big_ = 0;
        pos_ = 0;
        return kPacket;
    }
    size_t avail = buf_.size() - pos_;
    if (avail < kHeaderSize) return kNeedMore;
    const uint8_t* p = reinterpret_cast<const uint8_t*>(buf_.data()) + pos_;
    FTAPI_ProtoHeader h;
    if (parse_header(p, h, max_body_) != kHeaderOk) {
        error_ = true;
        return kError;
    }
    if (avail - kHeaderSize < h.nBodyLen) return kNeedMore;
    out.header = h;
    size_t total = kHeaderSize + h.nBodyLen;
    out.body.assign(reinterpret_cast<const char*>(p) + kHeaderSize, h.nBodyLen);
    pos_ += total;
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
        if (buf_.capacity() > kKeepCapacity) std::string().swap(buf_);  // shrink after a large packet
    }
    return kPacket;
}

void PbWriter::varint(uint64_t v) {
    while (v >= 0x80) {
        out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
}

void PbWriter::varint_field(uint32_t field, uint64_t v) {
    varint(static_cast<uint64_t>(field) << 3);
    varint(v);
}

void PbWriter::int32_field(uint32_t field, int32_t v) {
    varint_field(field, static_cast<uint64_t>(static_cast<int64_t>(v)));
}

void PbWriter::int64_field(uint32_t field, int64_t v) { varint_field(field, static_cast<uint64_t>(v)); }

void PbWriter::bool_field(uint32_t field, bool v) { varint_field(field, v ? 1 : 0); }

void PbWriter::bytes_field(uint32_t field, const std::string& v) {
    varint((static_cast<uint64_t>(field) << 3) | 2);
    varint(v.size());
    out_.append(v);
}

bool PbReader::varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p_ >= end_) return false;
        uint8_t b = *p_++;
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;  // more than 10 bytes
}

bool PbReader::next(PbField& f) {
    if (error_ || p_ >= end_) return false;
    uint64_t key;
    if (!varint(key)) {
        error_ = true;
        return false;
    }
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    f.value = 0;
    f.data = 0;
    f.size = 0;
    if (f.number == 0 || (key >> 3) > 0x1fffffff) {
        error_ = true;
        return false;
    }
    size_t left = static_cast<size_t>(end_ - p_);
    switch (f.wire_type) {
    case 0:
        if (!varint(f.value)) {
            error_ = true;
            return false;
        }
        return true;
    case 1:
    case 5: {
        size_t n = f.wire_type == 1 ? 8 : 4;
        if (left < n) {
            error_ = true;
            return false;
        }
        for (size_t i = 0; i < n; ++i) f.value |= static_cast<uint64_t>(p_[i]) << (8 * i);
        p_ += n;
        return true;
    }
    case 2: {
        uint64_t len;
        if (!varint(len) || len > static_cast<uint64_t>(end_ - p_)) {
            error_ = true;
            return false;
        }
        f.data = p_;
        f.size = static_cast<size_t>(len);
        p_ += f.size;
        return true;
    }
    default:  // groups (3, 4) and reserved types are not used by these messages
        error_ = true;
        return false;
    }
}

std::string encode_init_connect_request(const InitConnectC2S& c2s) {
    PbWriter inner;
    inner.int32_field(1, c2s.client_ver);
    inner.bytes_field(2, c2s.client_id);
    inner.bool_field(3, c2s.recv_notify);
    inner.int32_field(4, c2s.packet_enc_algo);
    inner.int32_field(5, c2s.push_proto_fmt);
    if (!c2s.programming_language.empty()) inner.bytes_field(6, c2s.programming_language);
    PbWriter outer;
    outer.bytes_field(1, inner.str());
    return outer.str();
}

namespace {
bool decode_s2c(const uint8_t* data, size_t n, InitConnectS2C& s) {
    PbReader r(data, n);
    PbField f;
    while (r.next(f)) {
        bool is_varint = f.wire_type == 0, is_bytes = f.wire_type == 2;
        switch (f.number) {
        case 1: if (is_varint) s.server_ver = static_cast<int32_t>(f.value); break;
        case 2: if (is_varint) s.login_user_id = f.value; break;
        case 3: if (is_varint) s.conn_id = f.value; break;
        case 4: if (is_bytes) s.conn_aes_key.assign(reinterpret_cast<const char*>(f.data), f.size); break;
        case 5: if (is_varint) s.keep_alive_interval = static_cast<int32_t>(f.value); break;
        case 6:
            if (is_bytes) {
                s.aes_cbc_iv.assign(reinterpret_cast<const char*>(f.data), f.size);
                s.has_aes_cbc_iv = true;
            }
            break;
        default: break;  // unknown fields are skipped
        }
    }
    return !r.error();
}
}  // namespace

bool decode_init_connect_response(const void* data, size_t n, InitConnectResponse& out) {
    out.ret_type = -400;
    out.ret_msg.clear();
    out.err_code = 0;
    out.s2c = InitConnectS2C();
    out.s2c.server_ver = 0;
    out.s2c.login_user_id = 0;
    out.s2c.conn_id = 0;
    out.s2c.keep_alive_interval = 0;
    out.s2c.has_aes_cbc_iv = false;
    out.s2c.has_s2c = false;
    PbReader r(data, n);
    PbField f;
    while (r.next(f)) {
        if (f.number == 1 && f.wire_type == 0) out.ret_type = static_cast<int32_t>(f.value);
        else if (f.number == 2 && f.wire_type == 2) out.ret_msg.assign(reinterpret_cast<const char*>(f.data), f.size);
        else if (f.number == 3 && f.wire_type == 0) out.err_code = static_cast<int32_t>(f.value);
        else if (f.number == 4 && f.wire_type == 2) {
            if (!decode_s2c(f.data, f.size, out.s2c)) return false;
            out.s2c.has_s2c = true;
        }
    }
    return !r.error();
}

std::string encode_keepalive_request(int64_t unix_time) {
    PbWriter inner;
    inner.int64_field(1, unix_time);
    PbWriter outer;
    outer.bytes_field(1, inner.str());
    return outer.str();
}

}  // namespace opend_channel
