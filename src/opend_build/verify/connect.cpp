// Talks to an OpenD through the SDK's channel C API, as an application does: InitConnect (plain,
// or RSA + AES with a PEM key), GetGlobalState, a subscription and its first push. Linked by
// `build.py verify --opend HOST:PORT` (with OPEND_CONNECT_MAIN: a program of its own) and by the
// consumer project test_package/. Every wait is bounded; prints one line per step.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "FTAPIChannel.h"
#include "GetGlobalState.pb.h"
#include "Qot_Sub.pb.h"
#include "Qot_UpdateBasicQot.pb.h"

namespace {

// What the channel's I/O thread reports; main waits for it with a bound on time.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  long long init_err = -1;
  std::string init_desc;
  bool init_done = false, reply_done = false, push_done = false;
  int reply_type = 1;
  std::string reply_body, push_body;
};
Events ev;

void OnInit(FTAPIChannelPtr, Futu::i64_t err, const char* desc) {
  std::lock_guard<std::mutex> lock(ev.mu);
  ev.init_err = err;
  ev.init_desc = desc ? desc : "";
  ev.init_done = true;
  ev.cv.notify_all();
}

void OnReply(FTAPIChannelPtr, FTAPI_ReqReplyType type, const FTAPI_ProtoHeader* header, const Futu::i8_t* data, Futu::i32_t len) {
  std::lock_guard<std::mutex> lock(ev.mu);
  if (header == nullptr || header->nProtoID != 1002 || ev.reply_done) return;  // only GetGlobalState's is waited for
  ev.reply_type = type;
  ev.reply_body.assign(reinterpret_cast<const char*>(data), data ? static_cast<size_t>(len) : 0);
  ev.reply_done = true;
  ev.cv.notify_all();
}

void OnPush(FTAPIChannelPtr, const FTAPI_ProtoHeader* header, const Futu::i8_t* data, Futu::i32_t len) {
  std::lock_guard<std::mutex> lock(ev.mu);
  if (header != nullptr && header->nProtoID == 3005 && !ev.push_done) {
    ev.push_body.assign(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
    ev.push_done = true;
    ev.cv.notify_all();
  }
}

bool wait_for(bool Events::*flag) {
  std::unique_lock<std::mutex> lock(ev.mu);
  return ev.cv.wait_for(lock, std::chrono::seconds(20), [flag] { return ev.*flag; });
}

Futu::u32_t send(FTAPIChannelPtr ch, Futu::u32_t proto, const std::string& body) {
  return FTAPIChannel_SendProto(ch, proto, 0, reinterpret_cast<const Futu::i8_t*>(body.data()), static_cast<Futu::i32_t>(body.size()));
}

int session(FTAPIChannelPtr ch, const std::string& host, int port, const char* rsa_pem) {
  if (FTAPIChannel_InitConnect(ch, host.c_str(), static_cast<Futu::u16_t>(port), rsa_pem ? 1 : 0) != 0 || !wait_for(&Events::init_done)) {
    std::printf("InitConnect: no answer from %s:%d\n", host.c_str(), port);
    return 1;
  }
  if (ev.init_err != 0) {
    std::printf("InitConnect failed: type %lld, code %lld: %s\n", ev.init_err >> 32, ev.init_err & 0xffffffffLL, ev.init_desc.c_str());
    return 1;
  }
  std::printf("connected: connID %llu%s\n", static_cast<unsigned long long>(FTAPIChannel_GetConnectID(ch)), rsa_pem ? " (RSA + AES)" : "");
  GetGlobalState::Request state;
  state.mutable_c2s()->set_userid(0);
  GetGlobalState::Response resp;
  if (send(ch, 1002, state.SerializeAsString()) == 0 || !wait_for(&Events::reply_done) || ev.reply_type != 0 ||
      !resp.ParseFromString(ev.reply_body) || resp.rettype() != 0) {
    std::printf("GetGlobalState: no valid reply (reply type %d)\n", ev.reply_type);
    return 1;
  }
  std::printf("GetGlobalState: serverVer %d, market HK %d, qotLogined %d\n", resp.s2c().serverver(), resp.s2c().markethk(),
              resp.s2c().qotlogined() ? 1 : 0);
  Qot_Sub::Request sub;
  Qot_Common::Security* sec = sub.mutable_c2s()->add_securitylist();
  sec->set_market(Qot_Common::QotMarket_HK_Security);
  sec->set_code("00700");
  sub.mutable_c2s()->add_subtypelist(Qot_Common::SubType_Basic);
  sub.mutable_c2s()->set_issuborunsub(true);
  sub.mutable_c2s()->set_isregorunregpush(true);
  Qot_UpdateBasicQot::Response push;
  if (send(ch, 3001, sub.SerializeAsString()) == 0 || !wait_for(&Events::push_done) || !push.ParseFromString(ev.push_body) ||
      push.s2c().basicqotlist_size() == 0) {
    std::printf("Qot_Sub: no Qot_UpdateBasicQot push\n");
    return 1;
  }
  std::printf("push Qot_UpdateBasicQot: %s\n", push.s2c().basicqotlist(0).security().code().c_str());
  return 0;
}

}  // namespace

// 0 when InitConnect, GetGlobalState and the push all worked against `where` (host:port; [v6]:port).
int opend_connect(const char* where, const char* rsa_pem) {
  std::string w(where ? where : "");
  const size_t colon = w.rfind(':');
  if (colon == std::string::npos) {
    std::printf("not host:port: %s\n", w.c_str());
    return 2;
  }
  std::string host = w.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const int port = std::atoi(w.c_str() + colon + 1);
  FTAPIChannel_Init();
  FTAPIChannelPtr ch = CreateFTAPIChannel();
  FTAPIChannel_SetClientInfo(ch, "opend-build", 1);
  FTAPIChannel_SetOnInitConnectCallback(ch, OnInit);
  FTAPIChannel_SetOnReplyCallback(ch, OnReply);
  FTAPIChannel_SetOnPushCallback(ch, OnPush);
  if (rsa_pem) FTAPIChannel_SetRSAPrivateKey(ch, rsa_pem);
  const int rc = session(ch, host, port, rsa_pem);
  // As the vendor's samples do: no callbacks any more, then close and release.
  FTAPIChannel_SetOnInitConnectCallback(ch, nullptr);
  FTAPIChannel_SetOnReplyCallback(ch, nullptr);
  FTAPIChannel_SetOnPushCallback(ch, nullptr);
  FTAPIChannel_Close(ch);
  ReleaseFTAPIChannel(ch);
  FTAPIChannel_UnInit();
  return rc;
}

#if defined(OPEND_CONNECT_MAIN)
// opend_connect HOST:PORT [RSA_KEY_FILE]
int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: opend_connect HOST:PORT [RSA_KEY_FILE]\n");
    return 2;
  }
  std::string pem;
  if (argc > 2) {
    std::ifstream in(argv[2], std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    pem = text.str();
    if (!in || pem.empty()) {
      std::printf("cannot read the RSA key %s\n", argv[2]);
      return 2;
    }
  }
  return opend_connect(argv[1], argc > 2 ? pem.c_str() : nullptr);
}
#endif
