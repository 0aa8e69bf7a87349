// The exported C API: thin wrappers over Channel. The exported names come from
// FTAPIChannel.h (FTAPIChannel_* by default, MMAPIChannel_* with OPEND_CHANNEL_LIB_MMAPI).
//
// Every entry point holds a reference to the channel for its duration (so a Release from a
// callback on another thread cannot free it underneath) and catches every exception: nothing
// thrown crosses extern "C"; an allocation failure becomes the call's failure value.
#include "FTAPIChannel.h"

#include <new>

#include "channel.h"

using opend_channel::Channel;

namespace {
class Hold {
public:
    explicit Hold(FTAPIChannelPtr p) : c_(static_cast<Channel*>(p)) {
        if (c_) c_->retain();
    }
    ~Hold() {
        if (c_) c_->drop();
    }
    Channel* operator->() const { return c_; }
    bool ok() const { return c_ != 0; }

private:
    Hold(const Hold&);
    Hold& operator=(const Hold&);
    Channel* c_;
};
}  // namespace

extern "C" {

void FTAPIChannel_Init() {}

void FTAPIChannel_UnInit() {
    try {
        opend_channel::wait_for_released_channels(5000);
    } catch (...) {
    }
}

FTAPIChannelPtr CreateFTAPIChannel() {
    try {
        return new Channel();  // its members allocate too (std::deque): nothrow new would not cover them
    } catch (...) {
        return 0;
    }
}

void ReleaseFTAPIChannel(FTAPIChannelPtr p) {
    if (!p) return;
    try {
        static_cast<Channel*>(p)->release();  // drops the handle's reference: no Hold around it
    } catch (...) {
    }
}

void FTAPIChannel_SetClientInfo(FTAPIChannelPtr p, const char* id, Futu::i32_t ver) {
    try {
        Hold c(p);
        if (c.ok()) c->set_client_info(id, ver);
    } catch (...) {
    }
}

void FTAPIChannel_SetProgrammingLanguage(FTAPIChannelPtr p, const char* lang) {
    try {
        Hold c(p);
        if (c.ok()) c->set_language(lang);
    } catch (...) {
    }
}

void FTAPIChannel_SetRSAPrivateKey(FTAPIChannelPtr p, const char* pem) {
    Hold c(p);
    if (!c.ok()) return;
    try {
        c->set_rsa_key(pem);
    } catch (...) {
        c->rsa_key_failed();  // no memory for the key: remembered as a key that did not load
    }
}

Futu::i32_t FTAPIChannel_InitConnect(FTAPIChannelPtr p, const char* host, Futu::u16_t port, Futu::i32_t enc) {
    try {
        Hold c(p);
        return c.ok() ? c->init_connect(host, port, enc != 0) : -1;
    } catch (...) {
        return -1;
    }
}

Futu::u64_t FTAPIChannel_GetConnectID(FTAPIChannelPtr p) {
    try {
        Hold c(p);
        return c.ok() ? c->conn_id() : 0;
    } catch (...) {
        return 0;
    }
}

Futu::u32_t FTAPIChannel_SendProto(FTAPIChannelPtr p, Futu::u32_t proto_id, Futu::u8_t ver, const Futu::i8_t* data,
                                   Futu::i32_t len) {
    try {
        Hold c(p);
        return c.ok() ? c->send_proto(proto_id, ver, data, len) : 0;
    } catch (...) {
        return 0;
    }
}

Futu::i32_t FTAPIChannel_Close(FTAPIChannelPtr p) {
    try {
        Hold c(p);
        return c.ok() ? c->close() : -1;
    } catch (...) {
        return -1;
    }
}

void FTAPIChannel_SetOnDisconnectCallback(FTAPIChannelPtr p, FTAPIChannel_OnDisConnectCallback cb) {
    try {
        Hold c(p);
        if (c.ok()) c->set_on_disconnect(cb);
    } catch (...) {
    }
}

void FTAPIChannel_SetOnInitConnectCallback(FTAPIChannelPtr p, FTAPIChannel_OnInitConnectCallback cb) {
    try {
        Hold c(p);
        if (c.ok()) c->set_on_init(cb);
    } catch (...) {
    }
}

void FTAPIChannel_SetOnReplyCallback(FTAPIChannelPtr p, FTAPIChannel_OnReplyCallback cb) {
    try {
        Hold c(p);
        if (c.ok()) c->set_on_reply(cb);
    } catch (...) {
    }
}

void FTAPIChannel_SetOnPushCallback(FTAPIChannelPtr p, FTAPIChannel_OnPushCallback cb) {
    try {
        Hold c(p);
        if (c.ok()) c->set_on_push(cb);
    } catch (...) {
    }
}

}  // extern "C"
