// Stand-in SDK source (Src/@LIB@/Qot.cpp): building quote requests from the generated classes.
#include "@LIB@.h"
#include "Qot_Common.pb.h"

namespace @LIB@ {

Qot_Sub::Request MakeSubRequest(int market, const std::vector<std::string>& codes, const std::vector<int>& subTypes) {
  Qot_Sub::Request req;
  Qot_Sub::C2S* c2s = req.mutable_c2s();
  for (size_t i = 0; i < codes.size(); ++i) {
    Qot_Common::Security* sec = c2s->add_securitylist();
    sec->set_market(market);
    sec->set_code(codes[i]);
  }
  for (size_t i = 0; i < subTypes.size(); ++i) c2s->add_subtypelist(subTypes[i]);
  c2s->set_issuborunsub(true);
  c2s->set_isregorunregpush(true);
  return req;
}

const char* Version() { return "stand-in @LIB@ for opend-build tests"; }

}  // namespace @LIB@
