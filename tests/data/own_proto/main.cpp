// Round-trips the application's own message and the SDK's Qot_Sub.Request in one binary, and
// says which protobuf runtime it runs on.
#include <cstdio>
#include <string>

#include "Proto/Qot_Sub.pb.h"
#include "order.pb.h"

int main() {
  GOOGLE_PROTOBUF_VERIFY_VERSION;  // headers and linked runtime agree
  own::Order order;
  order.set_id(7);
  order.set_note("buy 00700");
  order.add_prices(388.2);
  own::Order order_back;
  if (!order_back.ParseFromString(order.SerializeAsString()) || order_back.id() != 7 || order_back.prices(0) != 388.2) {
    std::fprintf(stderr, "own message did not round-trip\n");
    return 1;
  }
  Qot_Sub::Request req;
  Qot_Common::Security* sec = req.mutable_c2s()->add_securitylist();
  sec->set_market(Qot_Common::QotMarket_HK_Security);
  sec->set_code("00700");
  req.mutable_c2s()->add_subtypelist(Qot_Common::SubType_Basic);
  req.mutable_c2s()->set_issuborunsub(true);
  Qot_Sub::Request req_back;
  if (!req_back.ParseFromString(req.SerializeAsString()) || req_back.c2s().securitylist(0).code() != "00700") {
    std::fprintf(stderr, "Qot_Sub.Request did not round-trip\n");
    return 1;
  }
  std::printf("own message ok\nQot_Sub ok\nGOOGLE_PROTOBUF_VERSION %d\n", GOOGLE_PROTOBUF_VERSION);
  return 0;
}
