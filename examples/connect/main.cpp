// connect [HOST:PORT] [--rsa-key FILE]: InitConnect through the channel, then GetGlobalState.
// Prints "connected: connID <id>" and the state; exits 0 on success, 1 when OpenD does not
// answer as expected, 2 on a bad argument. HOST:PORT defaults to 127.0.0.1:11111 (OpenD's).
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>

#include "FTAPIChannel.h"  // the channel's C API (moomoo's open channel: the same header)
#include "GetGlobalState.pb.h"

namespace {

// Callbacks run on the channel's own thread: they store what came and wake main.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool connected = false, replied = false;
  long long connect_err = 0;
  std::string connect_desc, reply;
  int reply_type = 0;
} w;

void OnInitConnect(FTAPIChannelPtr, Futu::i64_t err, const char* desc) {
  std::lock_guard<std::mutex> lock(w.mu);
  w.connect_err = err;
  w.connect_desc = desc ? desc : "";
  w.connected = true;
  w.cv.notify_all();
}

void OnReply(FTAPIChannelPtr, FTAPI_ReqReplyType type, const FTAPI_ProtoHeader* header, const Futu::i8_t* data, Futu::i32_t len) {
  std::lock_guard<std::mutex> lock(w.mu);
  if (header == nullptr || header->nProtoID != 1002) return;  // 1002: GetGlobalState
  w.reply_type = type;
  if (data != nullptr) w.reply.assign(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
  w.replied = true;
  w.cv.notify_all();
}

bool wait(bool Waiter::*flag) {
  std::unique_lock<std::mutex> lock(w.mu);
  return w.cv.wait_for(lock, std::chrono::seconds(15), [flag] { return w.*flag; });
}

int run(FTAPIChannelPtr ch, const std::string& host, int port, bool encrypt) {
  if (FTAPIChannel_InitConnect(ch, host.c_str(), static_cast<Futu::u16_t>(port), encrypt ? 1 : 0) != 0 || !wait(&Waiter::connected)) {
    std::printf("no answer from %s:%d: is OpenD (or the stand-in) running there?\n", host.c_str(), port);
    return 1;
  }
  if (w.connect_err != 0) {
    std::printf("InitConnect to %s:%d failed (type %lld, code %lld): %s\n", host.c_str(), port, w.connect_err >> 32,
                w.connect_err & 0xffffffffLL, w.connect_desc.c_str());
    return 1;
  }
  std::printf("connected: connID %llu to %s:%d%s\n", static_cast<unsigned long long>(FTAPIChannel_GetConnectID(ch)), host.c_str(), port,
              encrypt ? " (RSA + AES)" : "");

  GetGlobalState::Request req;
  req.mutable_c2s()->set_userid(0);
  const std::string body = req.SerializeAsString();
  GetGlobalState::Response resp;
  if (FTAPIChannel_SendProto(ch, 1002, 0, reinterpret_cast<const Futu::i8_t*>(body.data()), static_cast<Futu::i32_t>(body.size())) == 0 ||
      !wait(&Waiter::replied) || w.reply_type != 0 || !resp.ParseFromString(w.reply) || resp.rettype() != 0) {
    std::printf("GetGlobalState: no valid reply (type %d)\n", w.reply_type);
    return 1;
  }
  const GetGlobalState::S2C& s = resp.s2c();
  std::printf("GetGlobalState: serverVer %d, qotLogined %d, trdLogined %d, market HK %d, US %d\n", s.serverver(), s.qotlogined() ? 1 : 0,
              s.trdlogined() ? 1 : 0, s.markethk(), s.marketus());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string where = "127.0.0.1:11111", key_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rsa-key" && i + 1 < argc) {
      key_file = argv[++i];
    } else if (!arg.empty() && arg[0] != '-') {
      where = arg;
    } else {
      std::printf("usage: connect [HOST:PORT] [--rsa-key FILE]   (default 127.0.0.1:11111)\n");
      return 2;
    }
  }
  const size_t colon = where.rfind(':');
  const int port = colon == std::string::npos ? 0 : std::atoi(where.c_str() + colon + 1);
  if (port <= 0 || port > 65535) {
    std::printf("not HOST:PORT: %s\n", where.c_str());
    return 2;
  }
  std::string host = where.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);  // [::1]:11111
  std::string pem;
  if (!key_file.empty()) {
    std::ifstream in(key_file, std::ios::binary);
    pem.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (pem.empty()) {
      std::printf("cannot read the RSA key %s\n", key_file.c_str());
      return 2;
    }
  }

  FTAPIChannel_Init();
  FTAPIChannelPtr ch = CreateFTAPIChannel();
  FTAPIChannel_SetClientInfo(ch, "examples/connect", 1);
  FTAPIChannel_SetOnInitConnectCallback(ch, OnInitConnect);
  FTAPIChannel_SetOnReplyCallback(ch, OnReply);
  if (!pem.empty()) FTAPIChannel_SetRSAPrivateKey(ch, pem.c_str());
  const int rc = run(ch, host, port, !pem.empty());
  // No callbacks any more, then close and release (as the vendor's samples do).
  FTAPIChannel_SetOnInitConnectCallback(ch, nullptr);
  FTAPIChannel_SetOnReplyCallback(ch, nullptr);
  FTAPIChannel_Close(ch);
  ReleaseFTAPIChannel(ch);
  FTAPIChannel_UnInit();
  return rc;
}
