#include "mid/sub/sub.h"

int Sub() { return Low() + 2; }
