// Stand-in SDK source (Src/@LIB@/Conn.cpp): the connection wrapper over the channel's C API.
#include "@LIB@_Conn.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

#include "FTAPIChannel.h"

namespace @LIB@ {

struct Conn::Impl {
  FTAPIChannelPtr ch = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  bool init_done = false;
  long long init_err = -1;
  std::map<uint32_t, std::string> replies;  // by serial
  std::map<uint32_t, bool> failed;          // by serial: timeout or disconnect
  std::map<uint32_t, std::string> pushes;   // first push by proto id

  template <class Pred>
  bool wait(Pred pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), pred);
  }
};

namespace {
std::mutex registry_mu;
std::map<FTAPIChannelPtr, Conn::Impl*> registry;  // the C callbacks carry only the channel

Conn::Impl* find(FTAPIChannelPtr ch) {
  std::lock_guard<std::mutex> lock(registry_mu);
  auto it = registry.find(ch);
  return it == registry.end() ? nullptr : it->second;
}

void OnInit(FTAPIChannelPtr ch, Futu::i64_t err, const char*) {
  if (Conn::Impl* c = find(ch)) {
    std::lock_guard<std::mutex> lock(c->mu);
    c->init_err = err;
    c->init_done = true;
    c->cv.notify_all();
  }
}

void OnReply(FTAPIChannelPtr ch, FTAPI_ReqReplyType type, const FTAPI_ProtoHeader* h, const Futu::i8_t* data, Futu::i32_t len) {
  if (Conn::Impl* c = find(ch)) {
    std::lock_guard<std::mutex> lock(c->mu);
    if (type == FTAPI_ReqReplyType_SvrReply) {
      c->replies[h->nSerialNo].assign(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
    } else {
      c->failed[h->nSerialNo] = true;
    }
    c->cv.notify_all();
  }
}

void OnPush(FTAPIChannelPtr ch, const FTAPI_ProtoHeader* h, const Futu::i8_t* data, Futu::i32_t len) {
  if (Conn::Impl* c = find(ch)) {
    std::lock_guard<std::mutex> lock(c->mu);
    c->pushes.insert(std::make_pair(h->nProtoID, std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(len))));
    c->cv.notify_all();
  }
}
}  // namespace

Conn::Conn() : impl_(new Impl) {
  FTAPIChannel_Init();
  impl_->ch = CreateFTAPIChannel();
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    registry[impl_->ch] = impl_;
  }
  FTAPIChannel_SetClientInfo(impl_->ch, "@LIB@-standin", 1);
  FTAPIChannel_SetOnInitConnectCallback(impl_->ch, OnInit);
  FTAPIChannel_SetOnReplyCallback(impl_->ch, OnReply);
  FTAPIChannel_SetOnPushCallback(impl_->ch, OnPush);
}

Conn::~Conn() {
  FTAPIChannel_Close(impl_->ch);
  ReleaseFTAPIChannel(impl_->ch);  // no callback runs after this
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    registry.erase(impl_->ch);
  }
  FTAPIChannel_UnInit();
  delete impl_;
}

bool Conn::Connect(const char* host, int port, const char* rsa_pem) {
  if (rsa_pem) FTAPIChannel_SetRSAPrivateKey(impl_->ch, rsa_pem);
  if (FTAPIChannel_InitConnect(impl_->ch, host, static_cast<Futu::u16_t>(port), rsa_pem ? 1 : 0) != 0) return false;
  Impl* c = impl_;
  return c->wait([c] { return c->init_done; }) && c->init_err == 0;
}

uint64_t Conn::ConnID() const { return FTAPIChannel_GetConnectID(impl_->ch); }

bool Conn::Request(uint32_t protoId, const google::protobuf::Message& req, std::string* reply) {
  const std::string body = req.SerializeAsString();
  const uint32_t serial = FTAPIChannel_SendProto(impl_->ch, protoId, 0, reinterpret_cast<const Futu::i8_t*>(body.data()),
                                                 static_cast<Futu::i32_t>(body.size()));
  if (serial == 0) return false;
  Impl* c = impl_;
  if (!c->wait([c, serial] { return c->replies.count(serial) || c->failed.count(serial); })) return false;
  std::lock_guard<std::mutex> lock(c->mu);
  if (!c->replies.count(serial)) return false;
  *reply = c->replies[serial];
  return true;
}

bool Conn::WaitPush(uint32_t protoId, std::string* body) {
  Impl* c = impl_;
  if (!c->wait([c, protoId] { return c->pushes.count(protoId) > 0; })) return false;
  std::lock_guard<std::mutex> lock(c->mu);
  *body = c->pushes[protoId];
  return true;
}

}  // namespace @LIB@
