// The exported C API: thin wrappers over Channel. The exported names come from
// FTAPIChannel.h (FTAPIChannel_* by default, MMAPIChannel_* with OPEND_CHANNEL_LIB_MMAPI).
#include "FTAPIChannel.h"

#include <new>

#include "channel.h"

using opend_channel::Channel;

namespace {
Channel* ch(FTAPIChannelPtr p) { return static_cast<Channel*>(p); }
}  // namespace

extern "C" {

void FTAPIChannel_Init() {}

void FTAPIChannel_UnInit() { opend_channel::wait_for_released_channels(5000); }

FTAPIChannelPtr CreateFTAPIChannel() { return new (std::nothrow) Channel(); }

void ReleaseFTAPIChannel(FTAPIChannelPtr p) {
    if (p) ch(p)->release();
}

void FTAPIChannel_SetClientInfo(FTAPIChannelPtr p, const char* id, Futu::i32_t ver) {
    if (p) ch(p)->set_client_info(id, ver);
}

void FTAPIChannel_SetProgrammingLanguage(FTAPIChannelPtr p, const char* lang) {
    if (p) ch(p)->set_language(lang);
}

void FTAPIChannel_SetRSAPrivateKey(FTAPIChannelPtr p, const char* pem) {
    if (p) ch(p)->set_rsa_key(pem);
}

Futu::i32_t FTAPIChannel_InitConnect(FTAPIChannelPtr p, const char* host, Futu::u16_t port, Futu::i32_t enc) {
    return p ? ch(p)->init_connect(host, port, enc != 0) : -1;
}

Futu::u64_t FTAPIChannel_GetConnectID(FTAPIChannelPtr p) { return p ? ch(p)->conn_id() : 0; }

Futu::u32_t FTAPIChannel_SendProto(FTAPIChannelPtr p, Futu::u32_t proto_id, Futu::u8_t ver, const Futu::i8_t* data,
                                   Futu::i32_t len) {
    return p ? ch(p)->send_proto(proto_id, ver, data, len) : 0;
}

Futu::i32_t FTAPIChannel_Close(FTAPIChannelPtr p) { return p ? ch(p)->close() : -1; }

void FTAPIChannel_SetOnDisconnectCallback(FTAPIChannelPtr p, FTAPIChannel_OnDisConnectCallback cb) {
    if (p) ch(p)->set_on_disconnect(cb);
}

void FTAPIChannel_SetOnInitConnectCallback(FTAPIChannelPtr p, FTAPIChannel_OnInitConnectCallback cb) {
    if (p) ch(p)->set_on_init(cb);
}

void FTAPIChannel_SetOnReplyCallback(FTAPIChannelPtr p, FTAPIChannel_OnReplyCallback cb) {
    if (p) ch(p)->set_on_reply(cb);
}

void FTAPIChannel_SetOnPushCallback(FTAPIChannelPtr p, FTAPIChannel_OnPushCallback cb) {
    if (p) ch(p)->set_on_push(cb);
}

}  // extern "C"
