// opend_verify fill DIR FILE.proto...     write <message full name>.cpp.bin for every message type
// opend_verify compare DIR FILE.proto...  parse <message full name>.py.bin and compare field by field
//
// Every message is filled by the same deterministic rule as verify.py uses on the Python side:
// see VALUES below and fill() there. Counts go to stdout as "files N messages N fields N";
// mismatches as "MISMATCH <message>: <difference>".
#include <stdint.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/message_differencer.h>

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::Message;
using google::protobuf::MessageFactory;
using google::protobuf::Reflection;

namespace {

const int kMaxDepth = 3;
const int32_t kInt32[] = {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), 0, 1, -1, 123456};
const int64_t kInt64[] = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 0, 1, -1, 1234567890123LL};
const uint32_t kUint32[] = {std::numeric_limits<uint32_t>::max(), 0, 1, 3000000000u};
const uint64_t kUint64[] = {std::numeric_limits<uint64_t>::max(), 0, 1, 12345678901234567890ULL};
const double kDouble[] = {1.5, -0.25, 1e300, 123456.789};
const float kFloat[] = {1.5f, -0.25f, 1024.0f, 0.0f};

long g_fields = 0;

std::string StringFor(const FieldDescriptor* f, int k) {
  std::ostringstream s;
  s << f->name() << "-" << k << "-\xe6\xb8\xaf\xe8\x82\xa1\xe8\xa1\x8c\xe6\x83\x85";  // 港股行情
  return s.str();
}

std::string BytesFor(int seed) {
  std::string b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((seed + i) % 256));
  b.push_back('\0');
  b.push_back('\xff');
  return b;
}

void Fill(Message* m, int depth) {
  const Descriptor* d = m->GetDescriptor();
  const Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->containing_oneof() && f->containing_oneof()->field(0) != f) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && depth >= kMaxDepth) continue;
    const int n = f->is_repeated() ? 2 : 1;
    for (int k = 0; k < n; ++k) {
      const int seed = f->number() * 7 + k;
      const bool rep = f->is_repeated();
      ++g_fields;
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
          rep ? r->AddInt32(m, f, kInt32[seed % 6]) : r->SetInt32(m, f, kInt32[seed % 6]);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          rep ? r->AddInt64(m, f, kInt64[seed % 6]) : r->SetInt64(m, f, kInt64[seed % 6]);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          rep ? r->AddUInt32(m, f, kUint32[seed % 4]) : r->SetUInt32(m, f, kUint32[seed % 4]);
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          rep ? r->AddUInt64(m, f, kUint64[seed % 4]) : r->SetUInt64(m, f, kUint64[seed % 4]);
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          rep ? r->AddDouble(m, f, kDouble[seed % 4]) : r->SetDouble(m, f, kDouble[seed % 4]);
          break;
        case FieldDescriptor::CPPTYPE_FLOAT:
          rep ? r->AddFloat(m, f, kFloat[seed % 4]) : r->SetFloat(m, f, kFloat[seed % 4]);
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          rep ? r->AddBool(m, f, seed % 2 == 0) : r->SetBool(m, f, seed % 2 == 0);
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const google::protobuf::EnumValueDescriptor* v = f->enum_type()->value(seed % f->enum_type()->value_count());
          rep ? r->AddEnum(m, f, v) : r->SetEnum(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_STRING: {
          const std::string v = f->type() == FieldDescriptor::TYPE_BYTES ? BytesFor(seed) : StringFor(f, k);
          rep ? r->AddString(m, f, v) : r->SetString(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE:
          Fill(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), depth + 1);
          break;
      }
    }
  }
}

void Collect(const Descriptor* d, std::vector<const Descriptor*>* out) {
  if (d->options().map_entry()) return;
  out->push_back(d);
  for (int i = 0; i < d->nested_type_count(); ++i) Collect(d->nested_type(i), out);
}

bool ReadFile(const std::string& path, std::string* data) {
  std::ifstream in(path.c_str(), std::ios::binary);
  if (!in) return false;
  data->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s fill|compare DIR FILE.proto...\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  long files = 0, messages = 0, mismatches = 0;
  for (int a = 3; a < argc; ++a) {
    const FileDescriptor* file = DescriptorPool::generated_pool()->FindFileByName(argv[a]);
    if (file == NULL) {
      std::printf("MISMATCH %s: not compiled into the library\n", argv[a]);
      ++mismatches;
      continue;
    }
    ++files;
    std::vector<const Descriptor*> types;
    for (int i = 0; i < file->message_type_count(); ++i) Collect(file->message_type(i), &types);
    for (size_t t = 0; t < types.size(); ++t) {
      const Descriptor* d = types[t];
      ++messages;
      Message* expected = MessageFactory::generated_factory()->GetPrototype(d)->New();
      Fill(expected, 0);
      if (mode == "fill") {
        std::string bytes;
        expected->SerializePartialToString(&bytes);
        std::ofstream out((dir + "/" + d->full_name() + ".cpp.bin").c_str(), std::ios::binary);
        out << bytes;
      } else {
        std::string bytes;
        Message* parsed = expected->New();
        if (!ReadFile(dir + "/" + d->full_name() + ".py.bin", &bytes) || !parsed->ParsePartialFromString(bytes)) {
          std::printf("MISMATCH %s: Python's bytes missing or unparsable\n", d->full_name().c_str());
          ++mismatches;
        } else {
          google::protobuf::util::MessageDifferencer differ;
          std::string report;
          differ.ReportDifferencesToString(&report);
          if (!differ.Compare(*expected, *parsed)) {
            std::printf("MISMATCH %s: %s", d->full_name().c_str(), report.c_str());
            ++mismatches;
          }
        }
        delete parsed;
      }
      delete expected;
    }
  }
  std::printf("files %ld messages %ld fields %ld mismatches %ld\n", files, messages, g_fields, mismatches);
  return mismatches == 0 ? 0 : 1;
}
