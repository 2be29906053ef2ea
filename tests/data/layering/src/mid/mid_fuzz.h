#pragma once
#include "high/high.h"  // fine: the harnesses beside it link fx_high
