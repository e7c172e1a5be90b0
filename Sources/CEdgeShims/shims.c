#include "CEdgeShims.h"
