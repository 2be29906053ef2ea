#include "mid/mid.h"

#include "mid/sub/sub.h"  // BAD: sub is a module of its own (EXCLUDE_DIR), not a dependency

int Mid() { return Low() + 1; }
