#include "mid/mid_fuzz.h"

#include "mid/mid.h"

int main() { return High() + Mid(); }
