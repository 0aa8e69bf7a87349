// Stand-in for @LIB@_Define.h: protocol ids of the requests the stand-in wrapper sends. Like the
// vendor's, it pulls in protobuf (Include_3rd_protobuf.h, which includes util/json_util.h) and
// every generated class (Include_Proto.h).
#pragma once
#include "Include_3rd_protobuf.h"
#include "Include_Proto.h"
#define @LIB@_PROTO_ID_INIT_CONNECT 1001
#define @LIB@_PROTO_ID_KEEP_ALIVE 1004
#define @LIB@_PROTO_ID_QOT_SUB 3001
#define @LIB@_HEADER_SIZE 44
