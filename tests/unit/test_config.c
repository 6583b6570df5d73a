/* Flags, config files and their errors (SPEC §1.1). */
#include <stdio.h>

#include "config.h"
#include "testlib.h"

static int parse(struct config *c, char *err, int argc, char **argv)
{
    struct err e;
    int rv;
    config_defaults(c);
    rv = config_parse(c, argc, argv, &e);
    snprintf(err, 256, "%s", e.message);
    if (rv != 0) {
        CHECK_INT(rv, ERR_BAD_REQUEST);
        return -1;
    }
    return 0;
}

static void test_defaults(void)
{
    struct config c;
    char err[256];
    char *argv[] = {"varastod"};
    CHECK_INT(parse(&c, err, 1, argv), 0);
    CHECK_INT(c.id, 1);
    CHECK_STR(c.data_dir, "./varasto-data");
    CHECK_STR(c.raft, "127.0.0.1:7066");
    CHECK_STR(c.http, "127.0.0.1:8066");
    CHECK_INT(c.n_members, 0);
    CHECK_INT(c.retain_events, 0);
    CHECK_STR(c.http_advertise, "127.0.0.1:8066");
}

/* The address the other nodes forward to: never a wildcard. */
static void test_http_advertise(void)
{
    struct config c;
    char err[256];
    {
        char *argv[] = {"varastod", "--http", "0.0.0.0:9000", "--raft", "10.1.2.3:7000"};
        CHECK_INT(parse(&c, err, 5, argv), 0);
        CHECK_STR(c.http, "0.0.0.0:9000");
        CHECK_STR(c.http_advertise, "10.1.2.3:9000");
    }
    {
        /* the raft address comes from --cluster, parsed after --raft */
        char *argv[] = {"varastod",
                        "--id",
                        "2",
                        "--http",
                        "0.0.0.0:9000",
                        "--cluster",
                        "1=10.0.0.1:7000,2=10.0.0.2:7000"};
        CHECK_INT(parse(&c, err, 7, argv), 0);
        CHECK_STR(c.http_advertise, "10.0.0.2:9000");
    }
    {
        char *argv[] = {"varastod", "--http", "0.0.0.0:9000", "--http-advertise",
                        "node-a.example:9000"};
        CHECK_INT(parse(&c, err, 5, argv), 0);
        CHECK_STR(c.http_advertise, "node-a.example:9000");
    }
    {
        char *argv[] = {"varastod", "--http", "127.0.0.1:9000"};
        CHECK_INT(parse(&c, err, 3, argv), 0);
        CHECK_STR(c.http_advertise, "127.0.0.1:9000");
    }
    {
        char *argv[] = {"varastod", "--http", "0.0.0.0:9000", "--raft", "0.0.0.0:7000"};
        CHECK_INT(parse(&c, err, 5, argv), -1);
        CHECK_CONTAINS(err, "give --http-advertise");
    }
    {
        char *argv[] = {"varastod", "--http-advertise", "0.0.0.0:9000"};
        CHECK_INT(parse(&c, err, 3, argv), -1);
        CHECK_CONTAINS(err, "not an address other nodes can reach");
    }
    {
        char *argv[] = {"varastod", "--http-advertise", "nope"};
        CHECK_INT(parse(&c, err, 3, argv), -1);
        CHECK_CONTAINS(err, "HOST:PORT");
    }
}

static void test_flags(void)
{
    struct config c;
    char err[256];
    char *argv[] = {"varastod",
                    "--id",
                    "2",
                    "--http=127.0.0.1:9000",
                    "--cluster",
                    "1=127.0.0.1:7001,2=127.0.0.1:7002",
                    "--retain-events",
                    "1000"};
    CHECK_INT(parse(&c, err, 8, argv), 0);
    CHECK_INT(c.id, 2);
    CHECK_STR(c.http, "127.0.0.1:9000");
    CHECK_INT(c.n_members, 2);
    CHECK_STR(c.members[1].raft, "127.0.0.1:7002");
    /* the cluster list names this node's raft address */
    CHECK_STR(c.raft, "127.0.0.1:7002");
    CHECK_INT(c.retain_events, 1000);
    CHECK_INT(c.retain_holds_subscriptions, 1);
    {
        char *a[] = {"varastod", "--retain-holds-subscriptions", "false"};
        char *b[] = {"varastod", "--retain-holds-subscriptions", "maybe"};
        /* the flag's first name still works */
        char *old[] = {"varastod", "--retention-holds-subscriptions", "false"};
        CHECK_INT(parse(&c, err, 3, a), 0);
        CHECK_INT(c.retain_holds_subscriptions, 0);
        CHECK_INT(parse(&c, err, 3, b), -1);
        CHECK_CONTAINS(err, "not true or false");
        CHECK_INT(parse(&c, err, 3, old), 0);
        CHECK_INT(c.retain_holds_subscriptions, 0);
    }
}

static void test_bad_flags(void)
{
    struct config c;
    char err[256];
    char *a1[] = {"varastod", "--id", "0"};
    char *a2[] = {"varastod", "--http", "nope"};
    char *a3[] = {"varastod", "--cluster", "1=127.0.0.1:7001,x"};
    char *a4[] = {"varastod", "--id", "3", "--cluster", "1=127.0.0.1:7001,2=127.0.0.1:7002"};
    char *a5[] = {"varastod", "--bogus", "1"};
    char *a6[] = {"varastod", "--id"};
    char *a7[] = {"varastod", "--cluster", "1=127.0.0.1:7001,1=127.0.0.1:7002"};
    char *a8[] = {"varastod", "--raft", "127.0.0.1:99999"};
    CHECK_INT(parse(&c, err, 3, a1), -1);
    CHECK_CONTAINS(err, "--id");
    CHECK_INT(parse(&c, err, 3, a2), -1);
    CHECK_CONTAINS(err, "HOST:PORT");
    CHECK_INT(parse(&c, err, 3, a3), -1);
    CHECK_CONTAINS(err, "--cluster");
    CHECK_INT(parse(&c, err, 5, a4), -1);
    CHECK_CONTAINS(err, "not in --cluster");
    CHECK_INT(parse(&c, err, 3, a5), -1);
    CHECK_CONTAINS(err, "unknown option --bogus");
    CHECK_INT(parse(&c, err, 2, a6), -1);
    CHECK_CONTAINS(err, "needs a value");
    CHECK_INT(parse(&c, err, 3, a7), -1);
    CHECK_CONTAINS(err, "twice");
    CHECK_INT(parse(&c, err, 3, a8), -1);
}

static void test_config_file_and_override(void)
{
    struct config c;
    char err[256];
    char path[128];
    FILE *f;
    snprintf(path, sizeof path, "%s/node.conf", test_tmpdir());
    f = fopen(path, "w");
    fprintf(f, "# a node\nid = 7\nhttp = 127.0.0.1:9100\n\ndata-dir = /tmp/x\n");
    fclose(f);
    {
        char *argv[] = {"varastod", "--config", path, "--http", "127.0.0.1:9200"};
        CHECK_INT(parse(&c, err, 5, argv), 0);
        CHECK_INT(c.id, 7);
        CHECK_STR(c.data_dir, "/tmp/x");
        CHECK_STR(c.http, "127.0.0.1:9200"); /* the flag wins */
    }
    f = fopen(path, "w");
    fprintf(f, "id = 7\nwhat = 1\n");
    fclose(f);
    {
        char *argv[] = {"varastod", "--config", path};
        CHECK_INT(parse(&c, err, 3, argv), -1);
        CHECK_CONTAINS(err, ":2: unknown option --what");
    }
    {
        char *argv[] = {"varastod", "--config", "/nonexistent/file.conf"};
        CHECK_INT(parse(&c, err, 3, argv), -1);
        CHECK_CONTAINS(err, "cannot open");
    }
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_flags);
    RUN(test_bad_flags);
    RUN(test_http_advertise);
    RUN(test_config_file_and_override);
    return test_report("config");
}
