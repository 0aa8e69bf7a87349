// Stand-in for the vendor's closed Windows channel (Bin/Windows-x64/<Config>/@LIB@Channel.dll and its
// import library), written for opend-build's tests and built with MinGW-w64: the whole C API of
// FTAPIChannel.h, exported from a real DLL, without a network. The open channel cannot stand in
// for it here: it needs OpenSSL's libcrypto (Debian has no MinGW build) and has POSIX sockets only.
//
// InitConnect says on stderr what it was given and refuses (ConnectFailed): a program that prints
// that line ran code of this DLL, loaded by Windows' (Wine's) loader through the import library.
#include <cstdio>
#include <string>

#include "FTAPIChannel.h"

namespace {
struct Channel {
  std::string client_id;
  Futu::i32_t client_ver = 0;
  std::string language;
  std::string rsa_key;
  FTAPIChannel_OnDisConnectCallback on_disconnect = nullptr;
  FTAPIChannel_OnInitConnectCallback on_init = nullptr;
  FTAPIChannel_OnReplyCallback on_reply = nullptr;
  FTAPIChannel_OnPushCallback on_push = nullptr;
};
int initialised = 0;

Channel* of(FTAPIChannelPtr p) { return static_cast<Channel*>(p); }
}  // namespace

extern "C" {
void FTAPIChannel_Init() { ++initialised; }
void FTAPIChannel_UnInit() { --initialised; }
FTAPIChannelPtr CreateFTAPIChannel() { return initialised > 0 ? new Channel : nullptr; }
void ReleaseFTAPIChannel(FTAPIChannelPtr p) { delete of(p); }

void FTAPIChannel_SetClientInfo(FTAPIChannelPtr p, const char* id, Futu::i32_t ver) {
  of(p)->client_id = id ? id : "";
  of(p)->client_ver = ver;
}
void FTAPIChannel_SetProgrammingLanguage(FTAPIChannelPtr p, const char* language) { of(p)->language = language ? language : ""; }
void FTAPIChannel_SetRSAPrivateKey(FTAPIChannelPtr p, const char* pem) { of(p)->rsa_key = pem ? pem : ""; }

Futu::i32_t FTAPIChannel_InitConnect(FTAPIChannelPtr p, const char* ip, Futu::u16_t port, Futu::i32_t encrypt) {
  std::fprintf(stderr, "stand-in @LIB@Channel.dll: InitConnect %s:%u for %s %d, encrypt %d: refused, no network in the stand-in\n",
               ip ? ip : "(null)", static_cast<unsigned>(port), of(p)->client_id.c_str(), static_cast<int>(of(p)->client_ver),
               static_cast<int>(encrypt));
  std::fflush(stderr);
  return FTAPI_ConnectFailType_ConnectFailed;
}
Futu::u64_t FTAPIChannel_GetConnectID(FTAPIChannelPtr) { return 0; }
Futu::u32_t FTAPIChannel_SendProto(FTAPIChannelPtr, Futu::u32_t, Futu::u8_t, const Futu::i8_t*, Futu::i32_t) { return 0; }
Futu::i32_t FTAPIChannel_Close(FTAPIChannelPtr) { return 0; }

void FTAPIChannel_SetOnDisconnectCallback(FTAPIChannelPtr p, FTAPIChannel_OnDisConnectCallback cb) { of(p)->on_disconnect = cb; }
void FTAPIChannel_SetOnInitConnectCallback(FTAPIChannelPtr p, FTAPIChannel_OnInitConnectCallback cb) { of(p)->on_init = cb; }
void FTAPIChannel_SetOnReplyCallback(FTAPIChannelPtr p, FTAPIChannel_OnReplyCallback cb) { of(p)->on_reply = cb; }
void FTAPIChannel_SetOnPushCallback(FTAPIChannelPtr p, FTAPIChannel_OnPushCallback cb) { of(p)->on_push = cb; }
}
