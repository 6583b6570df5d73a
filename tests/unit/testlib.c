#include "testlib.h"

#include <stdlib.h>

int test_failures;
const char *test_current = "";

int test_report(const char *suite)
{
    if (test_failures != 0) {
        fprintf(stderr, "%s: %d check(s) failed\n", suite, test_failures);
        return 1;
    }
    fprintf(stderr, "%s: all checks passed\n", suite);
    return 0;
}

const char *test_tmpdir(void)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/varasto-test-XXXXXX");
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    return path;
}
