// Known-answer CLI: exposes the pure functions so a test can compare them with the
// official client's own. Arguments and output are hex; exit 1 on any failure.
//   channel_kat sha1 DATA
//   channel_kat header PROTO FMT VER SERIAL BODY      -> 44-byte header + body
//   channel_kat parse HEADER                           -> proto fmt ver serial bodylen sha1hex
//   channel_kat ecb-enc|ecb-dec KEY DATA
//   channel_kat cbc-enc|cbc-dec KEY IV DATA
//   channel_kat rsa-enc|rsa-dec PEMFILE DATA
//   channel_kat init-req CLIENTVER CLIENTID(hex) ENCRYPT(0/1) LANGUAGE(hex)
//   channel_kat init-rsp BODY                          -> retType connID keepAlive key(hex) iv(hex|-) retMsg(hex)
//   channel_kat keepalive UNIXTIME
//   channel_kat batch                                  -> one job a line on stdin, its fields (OP ARGS...)
//                                                         separated by tabs; one output line per job,
//                                                         "error" for a job that fails (why: on stderr)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "read_file.h"

#include "crypto.h"
#include "wire.h"

using namespace opend_channel;

static bool unhex(const char* s, std::string& out) {
    out.clear();
    size_t n = strlen(s);
    if (n % 2) return false;
    for (size_t i = 0; i < n; i += 2) {
        char b[3] = {s[i], s[i + 1], 0};
        char* end = 0;
        long v = strtol(b, &end, 16);
        if (*end) return false;
        out.push_back(static_cast<char>(v));
    }
    return true;
}

static std::string hex(const std::string& s) {
    static const char d[] = "0123456789abcdef";
    std::string o;
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        o.push_back(d[c >> 4]);
        o.push_back(d[c & 15]);
    }
    return o;
}

static int fail(const char* why) {
    fprintf(stderr, "channel_kat: %s\n", why);
    return 1;
}

static int run_op(int argc, char** argv) {
    if (argc < 2) return fail("usage: channel_kat OP ARGS...");
    std::string op = argv[1];
    std::string a, b, c, out;
    if (op == "sha1" && argc == 3) {
        if (!unhex(argv[2], a)) return fail("bad hex");
        uint8_t d[20];
        sha1(a.data(), a.size(), d);
        printf("%s\n", hex(std::string(reinterpret_cast<char*>(d), 20)).c_str());
        return 0;
    }
    if (op == "header" && argc == 7) {
        if (!unhex(argv[6], a)) return fail("bad hex");
        uint8_t d[20];
        sha1(a.data(), a.size(), d);
        FTAPI_ProtoHeader h = make_header(static_cast<uint32_t>(strtoul(argv[2], 0, 10)),
                                          static_cast<uint8_t>(atoi(argv[4])),
                                          static_cast<uint32_t>(strtoul(argv[5], 0, 10)),
                                          static_cast<uint32_t>(a.size()), d);
        h.nProtoFmtType = static_cast<uint8_t>(atoi(argv[3]));
        uint8_t hb[kHeaderSize];
        pack_header(h, hb);
        printf("%s\n", hex(std::string(reinterpret_cast<char*>(hb), kHeaderSize) + a).c_str());
        return 0;
    }
    if (op == "parse" && argc == 3) {
        if (!unhex(argv[2], a) || a.size() != kHeaderSize) return fail("need 44 bytes of hex");
        FTAPI_ProtoHeader h;
        HeaderStatus st = parse_header(reinterpret_cast<const uint8_t*>(a.data()), h);
        if (st != kHeaderOk) return fail(st == kHeaderBadMagic ? "bad magic" : "body too long");
        printf("%u %u %u %u %u %s\n", h.nProtoID, h.nProtoFmtType, h.nProtoVer, h.nSerialNo, h.nBodyLen,
               hex(std::string(reinterpret_cast<char*>(h.arrBodySHA1), 20)).c_str());
        return 0;
    }
    if ((op == "ecb-enc" || op == "ecb-dec") && argc == 4) {
        if (!unhex(argv[2], a) || !unhex(argv[3], b)) return fail("bad hex");
        bool ok = op == "ecb-enc" ? ftaes_ecb_encrypt(a, b, out) : ftaes_ecb_decrypt(a, b, out);
        if (!ok) return fail("ecb failed");
        printf("%s\n", hex(out).c_str());
        return 0;
    }
    if ((op == "cbc-enc" || op == "cbc-dec") && argc == 5) {
        if (!unhex(argv[2], a) || !unhex(argv[3], b) || !unhex(argv[4], c)) return fail("bad hex");
        bool ok = op == "cbc-enc" ? aes_cbc_encrypt(a, b, c, out) : aes_cbc_decrypt(a, b, c, out);
        if (!ok) return fail("cbc failed");
        printf("%s\n", hex(out).c_str());
        return 0;
    }
    if ((op == "rsa-enc" || op == "rsa-dec") && argc == 4) {
        std::string pem;
        if (!read_file(argv[2], pem)) return fail("cannot read key file");
        if (!unhex(argv[3], b)) return fail("bad hex");
        RsaKey k;
        if (!k.load_pem(pem)) return fail("bad key");
        bool ok = op == "rsa-enc" ? k.encrypt(b, out) : k.decrypt(b, out);
        if (!ok) return fail("rsa failed");
        printf("%s\n", hex(out).c_str());
        return 0;
    }
    if (op == "init-req" && argc == 6) {
        InitConnectC2S q;
        q.client_ver = atoi(argv[2]);
        if (!unhex(argv[3], q.client_id) || !unhex(argv[5], q.programming_language)) return fail("bad hex");
        q.recv_notify = true;
        q.packet_enc_algo = atoi(argv[4]) ? 2 : -1;
        q.push_proto_fmt = 0;
        printf("%s\n", hex(encode_init_connect_request(q)).c_str());
        return 0;
    }
    if (op == "init-rsp" && argc == 3) {
        if (!unhex(argv[2], a)) return fail("bad hex");
        InitConnectResponse r;
        if (!decode_init_connect_response(a.data(), a.size(), r)) return fail("malformed");
        printf("%d %llu %d %s %s %s\n", r.ret_type, static_cast<unsigned long long>(r.s2c.conn_id),
               r.s2c.keep_alive_interval, r.s2c.conn_aes_key.empty() ? "-" : hex(r.s2c.conn_aes_key).c_str(),
               r.s2c.has_aes_cbc_iv ? hex(r.s2c.aes_cbc_iv).c_str() : "-",
               r.ret_msg.empty() ? "-" : hex(r.ret_msg).c_str());
        return 0;
    }
    if (op == "keepalive" && argc == 3) {
        printf("%s\n", hex(encode_keepalive_request(strtoll(argv[2], 0, 10))).c_str());
        return 0;
    }
    return fail("unknown operation or wrong argument count");
}

// Many jobs in one process: where starting one costs (a Windows build under Wine).
static int run_batch() {
    std::string line;
    int failures = 0;
    for (int c; (c = getchar()) != EOF;) {
        if (c != '\n') {
            line.push_back(static_cast<char>(c));
            continue;
        }
        if (!line.empty() && line[line.size() - 1] == '\r') line.erase(line.size() - 1);
        std::vector<std::string> fields(1, "channel_kat");
        fields.push_back("");
        for (size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '\t') fields.push_back("");
            else fields.back().push_back(line[i]);
        }
        std::vector<char*> args;
        for (size_t i = 0; i < fields.size(); ++i) args.push_back(&fields[i][0]);
        if (run_op(static_cast<int>(args.size()), args.data()) != 0) {
            printf("error\n");
            ++failures;
        }
        fflush(stdout);
        line.clear();
    }
    return failures ? 1 : 0;
}

int main(int argc, char** argv) {
    if (argc == 2 && strcmp(argv[1], "batch") == 0) return run_batch();
    return run_op(argc, argv);
}
