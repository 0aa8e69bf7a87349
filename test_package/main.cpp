// Round-trips a real message through the built library: C++ serialize, parse, compare; and, when
// the SDK's own sources were built (not the protocol classes alone), frames it as a packet.
#include <cstdio>
#include <string>

#include "Proto/Qot_Sub.pb.h"  // the SDK's own include style
#include "Qot_Common.pb.h"     // and the flat one
#if defined(OPEND_LIB_FTAPI) && __has_include("FTAPI.h")
#include "FTAPI.h"
namespace api = FTAPI;
#define OPEND_HAS_SDK_SOURCES
#elif defined(OPEND_LIB_MMAPI) && __has_include("MMAPI.h")
#include "MMAPI.h"
namespace api = MMAPI;
#define OPEND_HAS_SDK_SOURCES
#endif

// A channel built from the SDK's source (the 10.x generation), which links OpenSSL through the package.
#if defined(OPEND_LIB_FTAPI) && __has_include("FTAPIChannel.h")
#include "FTAPIChannel.h"
#define OPEND_CHANNEL(name) FTAPIChannel_##name
#elif defined(OPEND_LIB_MMAPI) && __has_include("MMAPIChannel.h")
#include "MMAPIChannel.h"
#define OPEND_CHANNEL(name) MMAPIChannel_##name
#endif

// A vendor-shaped SDK whose own sources wrap the channel (as the vendor's <Lib>_Conn does).
#if defined(OPEND_HAS_SDK_SOURCES) && (__has_include("FTAPI_Conn.h") || __has_include("MMAPI_Conn.h"))
#if defined(OPEND_LIB_FTAPI)
#include "FTAPI_Conn.h"
#else
#include "MMAPI_Conn.h"
#endif
#include <cstdlib>
#include "GetGlobalState.pb.h"
#include "Qot_UpdateBasicQot.pb.h"
#define OPEND_SDK_CONN
#endif

#if defined(OPEND_CONNECT)
int opend_connect(const char* where, const char* rsa_pem);  // src/opend_build/verify/connect.cpp
#include <cstdlib>
#endif

#define CHECK(cond)                                         \
  do {                                                      \
    if (!(cond)) {                                          \
      std::fprintf(stderr, "check failed: %s\n", #cond);    \
      return 1;                                             \
    }                                                       \
  } while (0)

int main() {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  Qot_Sub::Request req;
  Qot_Sub::C2S* c2s = req.mutable_c2s();
  Qot_Common::Security* sec = c2s->add_securitylist();
  sec->set_market(Qot_Common::QotMarket_HK_Security);
  sec->set_code("00700");
  c2s->add_subtypelist(Qot_Common::SubType_Basic);
  c2s->set_issuborunsub(true);
  c2s->set_isregorunregpush(true);

  std::string bytes;
  CHECK(req.SerializeToString(&bytes));
  Qot_Sub::Request back;
  CHECK(back.ParseFromString(bytes));
  CHECK(back.c2s().securitylist_size() == 1);
  CHECK(back.c2s().securitylist(0).code() == "00700");
  CHECK(back.c2s().securitylist(0).market() == Qot_Common::QotMarket_HK_Security);
  CHECK(back.c2s().subtypelist(0) == Qot_Common::SubType_Basic);
  CHECK(back.c2s().issuborunsub());
  CHECK(back.SerializeAsString() == bytes);
  std::printf("round-trip ok: %zu bytes\n", bytes.size());

#if defined(OPEND_HAS_SDK_SOURCES)
  std::string packet = api::PackRequest(3001, 7, api::MakeSubRequest(1, {"00700", "09988"}, {1}));
  uint32_t protoId = 0, serial = 0;
  std::string body;
  CHECK(api::UnpackPacket(packet, &protoId, &serial, &body));
  CHECK(protoId == 3001 && serial == 7);
  Qot_Sub::Request framed;
  CHECK(framed.ParseFromString(body));
  CHECK(framed.c2s().securitylist_size() == 2);
  CHECK(framed.c2s().securitylist(1).code() == "09988");
  std::printf("library ok: %s\n", api::Version());
#endif
#if defined(OPEND_STANDIN_CHANNEL_SOURCE)
  unsigned char sha[20] = {0};
  CHECK(OPEND_CHANNEL(Init)() == 0);
  OPEND_CHANNEL(BodySHA1)("abc", 3, sha);
  CHECK(sha[0] == 0xa9 && sha[1] == 0x99 && sha[19] == 0x9d);  // SHA-1("abc") = a9993e36...9cd0d89d
  std::printf("channel ok: SHA-1 by OpenSSL\n");
#endif
#if defined(OPEND_SDK_CONN)
  if (const char* where = std::getenv("OPEND_TEST_OPEND")) {  // host:port, through the SDK's own wrapper
    const std::string w(where);
    api::Conn conn;
    CHECK(conn.Connect(w.substr(0, w.rfind(':')).c_str(), std::atoi(w.c_str() + w.rfind(':') + 1), std::getenv("OPEND_TEST_RSA_KEY")));
    std::printf("sdk conn: connected, connID %llu\n", static_cast<unsigned long long>(conn.ConnID()));
    GetGlobalState::Request state;
    state.mutable_c2s()->set_userid(0);
    std::string reply;
    GetGlobalState::Response resp;
    CHECK(conn.Request(1002, state, &reply) && resp.ParseFromString(reply) && resp.rettype() == 0);
    std::printf("sdk conn: GetGlobalState serverVer %d\n", resp.s2c().serverver());
    Qot_Sub::Response subbed;
    CHECK(conn.Request(3001, api::MakeSubRequest(1, {"00700"}, {1}), &reply) && subbed.ParseFromString(reply) && subbed.rettype() == 0);
    Qot_UpdateBasicQot::Response push;
    CHECK(conn.WaitPush(3005, &reply) && push.ParseFromString(reply) && push.s2c().basicqotlist_size() > 0);
    std::printf("sdk conn: push Qot_UpdateBasicQot %s\n", push.s2c().basicqotlist(0).security().code().c_str());
  }
#endif
#if defined(OPEND_CONNECT)
  if (const char* where = std::getenv("OPEND_TEST_OPEND")) {
    CHECK(opend_connect(where, std::getenv("OPEND_TEST_RSA_KEY")) == 0);
  } else {
    std::printf("channel: open (set OPEND_TEST_OPEND=host:port to connect)\n");
  }
#endif
  google::protobuf::ShutdownProtobufLibrary();
  return 0;
}
