/*
 * OpenD channel C API (open implementation, opend-build).
 *
 * Error codes are packed as ((i64)high << 32) | (u32)low, see FTAPIChannel_Define.h.
 * Callbacks run on the channel's I/O thread; data pointers are valid only during the call.
 *
 * Brand: define OPEND_CHANNEL_LIB_MMAPI (the library's build does it for
 * OPEND_CHANNEL_LIB=MMAPI) to bind the same declarations to MMAPIChannel_* symbols.
 */
#ifndef OPEND_FTAPICHANNEL_H
#define OPEND_FTAPICHANNEL_H

#include "FTAPIChannel_Define.h"

#if defined(OPEND_CHANNEL_LIB_MMAPI)
#  define FTAPIChannel_Init MMAPIChannel_Init
#  define FTAPIChannel_UnInit MMAPIChannel_UnInit
#  define CreateFTAPIChannel CreateMMAPIChannel
#  define ReleaseFTAPIChannel ReleaseMMAPIChannel
#  define FTAPIChannel_SetClientInfo MMAPIChannel_SetClientInfo
#  define FTAPIChannel_SetProgrammingLanguage MMAPIChannel_SetProgrammingLanguage
#  define FTAPIChannel_SetRSAPrivateKey MMAPIChannel_SetRSAPrivateKey
#  define FTAPIChannel_InitConnect MMAPIChannel_InitConnect
#  define FTAPIChannel_GetConnectID MMAPIChannel_GetConnectID
#  define FTAPIChannel_SendProto MMAPIChannel_SendProto
#  define FTAPIChannel_Close MMAPIChannel_Close
#  define FTAPIChannel_SetOnDisconnectCallback MMAPIChannel_SetOnDisconnectCallback
#  define FTAPIChannel_SetOnInitConnectCallback MMAPIChannel_SetOnInitConnectCallback
#  define FTAPIChannel_SetOnReplyCallback MMAPIChannel_SetOnReplyCallback
#  define FTAPIChannel_SetOnPushCallback MMAPIChannel_SetOnPushCallback
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef void* FTAPIChannelPtr;

typedef void (*FTAPIChannel_OnDisConnectCallback)(FTAPIChannelPtr pChannel, Futu::i64_t nErrCode);
typedef void (*FTAPIChannel_OnInitConnectCallback)(FTAPIChannelPtr pChannel, Futu::i64_t nErrCode,
                                                   const char* strDesc);
typedef void (*FTAPIChannel_OnReplyCallback)(FTAPIChannelPtr pChannel, FTAPI_ReqReplyType enReqReplyType,
                                             const FTAPI_ProtoHeader* pProtoHeader,
                                             const Futu::i8_t* pProtoData, Futu::i32_t nDataLen);
typedef void (*FTAPIChannel_OnPushCallback)(FTAPIChannelPtr pChannel, const FTAPI_ProtoHeader* pProtoHeader,
                                            const Futu::i8_t* pProtoData, Futu::i32_t nDataLen);

/* Library set-up and tear-down, once per process. */
DllXPort_FTAPICHANNEL void FTAPIChannel_Init();
DllXPort_FTAPICHANNEL void FTAPIChannel_UnInit();

/* A channel is one connection to OpenD. Release joins its I/O thread: no callback runs after it returns. */
DllXPort_FTAPICHANNEL FTAPIChannelPtr CreateFTAPIChannel();
DllXPort_FTAPICHANNEL void ReleaseFTAPIChannel(FTAPIChannelPtr pChannel);

DllXPort_FTAPICHANNEL void FTAPIChannel_SetClientInfo(FTAPIChannelPtr pChannel, const char* szClientID,
                                                      Futu::i32_t nClientVer);
DllXPort_FTAPICHANNEL void FTAPIChannel_SetProgrammingLanguage(FTAPIChannelPtr pChannel, const char* szLanguage);

/* PEM text (PKCS#1 or PKCS#8) of the RSA key shared with OpenD; NULL or "" clears it. */
DllXPort_FTAPICHANNEL void FTAPIChannel_SetRSAPrivateKey(FTAPIChannelPtr pChannel, const char* strRSAPrivateKey);

/* Starts connecting; 0 when the attempt started. The result arrives through OnInitConnect. */
DllXPort_FTAPICHANNEL Futu::i32_t FTAPIChannel_InitConnect(FTAPIChannelPtr pChannel, const char* szIPAddr,
                                                           Futu::u16_t nPort, Futu::i32_t nEnableEncrypt);

/* Connection ID assigned by OpenD; 0 before InitConnect succeeded. */
DllXPort_FTAPICHANNEL Futu::u64_t FTAPIChannel_GetConnectID(FTAPIChannelPtr pChannel);

/* Queues one request; returns its serial number (1, 2, ...), 0 when nothing was sent. */
DllXPort_FTAPICHANNEL Futu::u32_t FTAPIChannel_SendProto(FTAPIChannelPtr pChannel, Futu::u32_t nProtoID,
                                                         Futu::u8_t nProtoVer, const Futu::i8_t* pProtoData,
                                                         Futu::i32_t nDataLen);

/* Closes the connection; 0 on success. */
DllXPort_FTAPICHANNEL Futu::i32_t FTAPIChannel_Close(FTAPIChannelPtr pChannel);

DllXPort_FTAPICHANNEL void FTAPIChannel_SetOnDisconnectCallback(FTAPIChannelPtr pChannel,
                                                                FTAPIChannel_OnDisConnectCallback cb);
DllXPort_FTAPICHANNEL void FTAPIChannel_SetOnInitConnectCallback(FTAPIChannelPtr pChannel,
                                                                 FTAPIChannel_OnInitConnectCallback cb);
DllXPort_FTAPICHANNEL void FTAPIChannel_SetOnReplyCallback(FTAPIChannelPtr pChannel,
                                                           FTAPIChannel_OnReplyCallback cb);
DllXPort_FTAPICHANNEL void FTAPIChannel_SetOnPushCallback(FTAPIChannelPtr pChannel,
                                                          FTAPIChannel_OnPushCallback cb);

#ifdef __cplusplus
}
#endif

#endif /* OPEND_FTAPICHANNEL_H */
