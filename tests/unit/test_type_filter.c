/* Type prefix filters: parsing and matching. */
#include "testlib.h"
#include "type_filter.h"

static void test_type_filter(void)
{
    struct type_filter f;
    CHECK_INT(type_filter_parse(&f, "directory.,collection.Tagged"), 0);
    CHECK_INT(f.n, 2);
    CHECK(type_filter_match(&f, "directory.Created"));
    CHECK(type_filter_match(&f, "collection.Tagged"));
    CHECK(!type_filter_match(&f, "collection.Untagged"));
    CHECK_INT(type_filter_parse(&f, ""), 0);
    CHECK(type_filter_match(&f, "anything"));
    CHECK_INT(type_filter_parse(&f, "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"), -1);
}

static void test_bounds(void)
{
    struct type_filter f;
    char prefix[TYPE_FILTER_PREFIX + 1];
    memset(prefix, 'a', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    /* one byte over: refused; the longest that fits: kept whole */
    CHECK_INT(type_filter_parse(&f, prefix), -1);
    prefix[TYPE_FILTER_PREFIX - 1] = '\0';
    CHECK_INT(type_filter_parse(&f, prefix), 0);
    CHECK_STR(f.prefixes[0], prefix);
    /* empty items are skipped */
    CHECK_INT(type_filter_parse(&f, ",a,,b,"), 0);
    CHECK_INT(f.n, 2);
    CHECK_INT(type_filter_parse(&f, "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p"), 0);
    CHECK_INT(f.n, TYPE_FILTER_MAX);
}

int main(void)
{
    RUN(test_type_filter);
    RUN(test_bounds);
    return test_report("type_filter");
}
