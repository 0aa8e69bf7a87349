// Stand-in for @LIB@_Define.h: protocol ids of the requests the stand-in wrapper sends.
#pragma once
#define @LIB@_PROTO_ID_INIT_CONNECT 1001
#define @LIB@_PROTO_ID_KEEP_ALIVE 1004
#define @LIB@_PROTO_ID_QOT_SUB 3001
#define @LIB@_HEADER_SIZE 44
