// Talks to an OpenD through the SDK's channel C API, as an application does: InitConnect (plain,
// or RSA + AES with a PEM key), GetGlobalState, then, unless told not to, a subscription (Qot_Sub,
// its reply read) and its first push. Linked by `build.py verify --opend HOST:PORT` (with
// OPEND_CONNECT_MAIN: a program of its own) and by the consumer project test_package/. Every wait
// is bounded; prints one line per step.
//
// Exit codes (the driver reads them): 0 everything asked for worked; 1 the connection failed
// (InitConnect or GetGlobalState); 2 bad arguments; 3 Qot_Sub answered with an error; 4 no Qot_Sub
// reply; 5 subscribed but no push within the wait.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#include "FTAPIChannel.h"
#include "GetGlobalState.pb.h"
#include "Qot_Sub.pb.h"
#include "Qot_UpdateBasicQot.pb.h"

namespace {

const int kReplyWaitSeconds = 20;  // longer than the channels' own 12 s reply timeout, which answers first

// One awaited reply: its type (FTAPI_ReqReplyType) and body.
struct Reply {
  bool done = false;
  int type = 0;
  std::string body;
};

// What the channel's I/O thread reports; main waits for it with a bound on time.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  long long init_err = -1;
  std::string init_desc;
  bool init_done = false, push_done = false;
  Reply state, sub;  // GetGlobalState's and Qot_Sub's
  std::string push_body;
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
  if (header == nullptr) return;
  Reply* r = header->nProtoID == 1002 ? &ev.state : header->nProtoID == 3001 ? &ev.sub : nullptr;
  if (r == nullptr || r->done) return;
  r->type = type;
  r->body.assign(reinterpret_cast<const char*>(data), data ? static_cast<size_t>(len) : 0);
  r->done = true;
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

bool wait_for(const bool& flag, int seconds) {
  std::unique_lock<std::mutex> lock(ev.mu);
  return ev.cv.wait_for(lock, std::chrono::seconds(seconds), [&flag] { return flag; });
}

Futu::u32_t send(FTAPIChannelPtr ch, Futu::u32_t proto, const std::string& body) {
  return FTAPIChannel_SendProto(ch, proto, 0, reinterpret_cast<const Futu::i8_t*>(body.data()), static_cast<Futu::i32_t>(body.size()));
}

const char* reply_type(int type) {
  return type == FTAPI_ReqReplyType_Timeout ? "the channel's reply timeout passed" : type == FTAPI_ReqReplyType_DisConnect ? "disconnected" : "no reply";
}

int connect_and_ask(FTAPIChannelPtr ch, const std::string& host, int port, const char* rsa_pem) {
  if (FTAPIChannel_InitConnect(ch, host.c_str(), static_cast<Futu::u16_t>(port), rsa_pem ? 1 : 0) != 0 || !wait_for(ev.init_done, kReplyWaitSeconds)) {
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
  if (send(ch, 1002, state.SerializeAsString()) == 0 || !wait_for(ev.state.done, kReplyWaitSeconds) || ev.state.type != 0 ||
      !resp.ParseFromString(ev.state.body) || resp.rettype() != 0) {
    std::printf("GetGlobalState: no valid reply (%s)\n", ev.state.done && ev.state.type == 0 ? "retType not 0, or unreadable" : reply_type(ev.state.type));
    return 1;
  }
  std::printf("GetGlobalState: serverVer %d, market HK %d, qotLogined %d\n", resp.s2c().serverver(), resp.s2c().markethk(),
              resp.s2c().qotlogined() ? 1 : 0);
  return 0;
}

// Qot_Sub of the Basic quote of one security, its reply read, then its first push awaited.
int subscribe(FTAPIChannelPtr ch, int market, const char* code, int push_wait) {
  Qot_Sub::Request sub;
  Qot_Common::Security* sec = sub.mutable_c2s()->add_securitylist();
  sec->set_market(market);
  sec->set_code(code);
  sub.mutable_c2s()->add_subtypelist(Qot_Common::SubType_Basic);
  sub.mutable_c2s()->set_issuborunsub(true);
  sub.mutable_c2s()->set_isregorunregpush(true);
  if (send(ch, 3001, sub.SerializeAsString()) == 0 || !wait_for(ev.sub.done, kReplyWaitSeconds) || ev.sub.type != 0) {
    std::printf("Qot_Sub: no reply: %s\n", ev.sub.done ? reply_type(ev.sub.type) : "none within 20 s");
    return 4;
  }
  Qot_Sub::Response reply;
  if (!reply.ParsePartialFromString(ev.sub.body)) {
    std::printf("Qot_Sub: the reply does not parse (%zu bytes)\n", ev.sub.body.size());
    return 3;
  }
  if (reply.rettype() != 0) {
    std::printf("Qot_Sub: retType %d, errCode %d, retMsg: %s\n", reply.rettype(), reply.errcode(), reply.retmsg().c_str());
    return 3;
  }
  std::printf("Qot_Sub: retType 0 (subscribed)\n");
  Qot_UpdateBasicQot::Response push;
  if (!wait_for(ev.push_done, push_wait) || !push.ParseFromString(ev.push_body) || push.s2c().basicqotlist_size() == 0) {
    std::printf("Qot_UpdateBasicQot: no push within %d s\n", push_wait);
    return 5;
  }
  std::printf("push Qot_UpdateBasicQot: %s\n", push.s2c().basicqotlist(0).security().code().c_str());
  return 0;
}

}  // namespace

// Connects to `where` (host:port; [v6]:port), asks GetGlobalState, and unless `code` is null
// subscribes to market/code and waits `push_wait` seconds for its push. The exit codes above.
int opend_connect_to(const char* where, const char* rsa_pem, int market, const char* code, int push_wait) {
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
  int rc = connect_and_ask(ch, host, port, rsa_pem);
  if (rc == 0 && code != nullptr) rc = subscribe(ch, market, code, push_wait);
  // As the vendor's samples do: no callbacks any more, then close and release.
  FTAPIChannel_SetOnInitConnectCallback(ch, nullptr);
  FTAPIChannel_SetOnReplyCallback(ch, nullptr);
  FTAPIChannel_SetOnPushCallback(ch, nullptr);
  FTAPIChannel_Close(ch);
  ReleaseFTAPIChannel(ch);
  FTAPIChannel_UnInit();
  return rc;
}

// 0 when InitConnect, GetGlobalState, HK.00700's subscription and its push all worked.
int opend_connect(const char* where, const char* rsa_pem) {
  return opend_connect_to(where, rsa_pem, Qot_Common::QotMarket_HK_Security, "00700", 20);
}

#if defined(OPEND_CONNECT_MAIN)
// opend_connect HOST:PORT [--rsa-key FILE] [--subscribe MARKET CODE PUSH_WAIT_SECONDS]
int main(int argc, char** argv) {
  const char* usage = "usage: opend_connect HOST:PORT [--rsa-key FILE] [--subscribe MARKET CODE PUSH_WAIT_SECONDS]\n";
  if (argc < 2) {
    std::printf("%s", usage);
    return 2;
  }
  std::string pem;
  bool with_key = false;
  int market = 0, push_wait = 0;
  const char* code = nullptr;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rsa-key") == 0 && i + 1 < argc) {
      std::ifstream in(argv[++i], std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      pem = text.str();
      if (!in || pem.empty()) {
        std::printf("cannot read the RSA key %s\n", argv[i]);
        return 2;
      }
      with_key = true;
    } else if (std::strcmp(argv[i], "--subscribe") == 0 && i + 3 < argc) {
      market = std::atoi(argv[i + 1]);
      code = argv[i + 2];
      push_wait = std::atoi(argv[i + 3]);
      i += 3;
    } else {
      std::printf("%s", usage);
      return 2;
    }
  }
  return opend_connect_to(argv[1], with_key ? pem.c_str() : nullptr, market, code, push_wait);
}
#endif
