// CEdgeCRC is header-only (static inline, CEdgeCRC.h); SwiftPM wants one source file per C target.
#include "CEdgeCRC.h"
