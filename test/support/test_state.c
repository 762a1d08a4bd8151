/* The state test.h's checks share across a test program. */
#include "test.h"

int test_failures;
