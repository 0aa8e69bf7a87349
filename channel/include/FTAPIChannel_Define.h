/*
 * OpenD channel: types shared by the C API (open implementation, opend-build).
 * ABI-compatible declarations written from the public protocol description.
 */
#ifndef OPEND_FTAPICHANNEL_DEFINE_H
#define OPEND_FTAPICHANNEL_DEFINE_H

#include <stdint.h>

namespace Futu {
/* char stays plain char; on ARM toolchains build with -fsigned-char to match x86. */
typedef char i8_t;
typedef short i16_t;
typedef int i32_t;
typedef unsigned char u8_t;
typedef unsigned short u16_t;
typedef unsigned int u32_t;
#ifdef __linux__
typedef int64_t i64_t;
typedef uint64_t u64_t;
#else
typedef long long i64_t;
typedef unsigned long long u64_t;
#endif
} /* namespace Futu */

/* Export macro: dllexport/dllimport on Windows, default visibility elsewhere. */
#if defined(_WIN32)
#  if defined(DllXPort_FTAPICHANNEL_Import)
#    define DllXPort_FTAPICHANNEL __declspec(dllimport)
#  else
#    define DllXPort_FTAPICHANNEL __declspec(dllexport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define DllXPort_FTAPICHANNEL __attribute__((visibility("default")))
#else
#  define DllXPort_FTAPICHANNEL
#endif

/* Wire header: 44 bytes, no padding, little-endian on the wire. */
#pragma pack(push, 1)
struct FTAPI_ProtoHeader
{
    Futu::u8_t szHeaderFlag[2];   /* 'F', 'T' */
    Futu::u32_t nProtoID;
    Futu::u8_t nProtoFmtType;     /* FTAPI_ProtoFmtType_* */
    Futu::u8_t nProtoVer;
    Futu::u32_t nSerialNo;
    Futu::u32_t nBodyLen;         /* body length on the wire (after encryption) */
    Futu::u8_t arrBodySHA1[20];   /* SHA-1 of the plaintext body */
    Futu::u8_t arrReserved[8];
};
#pragma pack(pop)

#define FTAPI_ProtoFmtType_Protobuf 0
#define FTAPI_ProtoFmtType_Json 1

enum FTAPI_ReqReplyType
{
    FTAPI_ReqReplyType_SvrReply = 0,
    FTAPI_ReqReplyType_Timeout = -100,
    FTAPI_ReqReplyType_DisConnect = -200
};

enum FTAPI_InitFailType
{
    FTAPI_InitFailType_Unknow = 0,
    FTAPI_InitFailType_Timeout = 1,
    FTAPI_InitFailType_DisConnect = 3,
    FTAPI_InitFailType_SeriaNoNotMatch = 4,
    FTAPI_InitFailType_SendInitReqFailed = 4,
    FTAPI_InitFailType_OpenDReject = 5
};

enum FTAPI_ConnectFailType
{
    FTAPI_ConnectFailType_Unknown = -1,
    FTAPI_ConnectFailType_None = 0,
    FTAPI_ConnectFailType_CreateFailed = 1,
    FTAPI_ConnectFailType_CloseFailed = 2,
    FTAPI_ConnectFailType_ShutdownFailed = 3,
    FTAPI_ConnectFailType_GetHostByNameFailed = 4,
    FTAPI_ConnectFailType_GetHostByNameWrong = 5,
    FTAPI_ConnectFailType_ConnectFailed = 6,
    FTAPI_ConnectFailType_BindFailed = 7,
    FTAPI_ConnectFailType_ListenFailed = 8,
    FTAPI_ConnectFailType_SelectReturnError = 9,
    FTAPI_ConnectFailType_SendFailed = 10,
    FTAPI_ConnectFailType_RecvFailed = 11
};

/* High 32 bits of an OnInitConnect error when the InitConnect exchange failed. */
#define FTAPI_InitFail 100

#endif /* OPEND_FTAPICHANNEL_DEFINE_H */
