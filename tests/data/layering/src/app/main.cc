#include "app.h"
#include "low/low.h"

int main() { return High() + Low(); }
