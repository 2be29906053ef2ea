#include "high/high.h"

#include "low/low.h"  // fine: through fx_mid
#include "mid/mid.h"

int High() { return Mid() + Low(); }
