#pragma once
#include "high/high.h"  // BAD: a header includes a module above its own
