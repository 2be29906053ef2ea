#include "low/low.h"

#include "app/app.h"  // BAD: a library includes the executable's header

int Low() { return 1; }
