/* Membership commands as the API checks them before relaying them to the
 * leader (membership_parse), and which names are membership commands. */
#include <cjson/cJSON.h>
#include <raft.h>
#include <string.h>

#include "membership.h"
#include "testlib.h"

static int parse(const char *name, const char *json, struct membership_cmd *cmd, struct err *e)
{
    cJSON *doc = cJSON_Parse(json);
    int rv;
    CHECK(doc != NULL);
    rv = membership_parse(name, doc, cmd, e);
    cJSON_Delete(doc);
    return rv;
}

static void test_names(void)
{
    CHECK(membership_is_command("cluster.AddNode"));
    CHECK(membership_is_command("cluster.RemoveNode"));
    CHECK(membership_is_command("cluster.TransferLeadership"));
    /* the records of completed changes are log entries, not these */
    CHECK(!membership_is_command("cluster.RecordNodeAdded"));
    CHECK(!membership_is_command("cluster.Announce"));
    CHECK(!membership_is_command("directory.Create"));
}

static void test_add_node(void)
{
    struct membership_cmd cmd;
    struct err e;
    CHECK_INT(parse("cluster.AddNode",
                    "{\"Id\":4,\"RaftAddress\":\"10.0.0.4:7000\",\"HttpAddress\":\"n4:8080\"}",
                    &cmd, &e),
              0);
    CHECK_INT(cmd.kind, MEMBERSHIP_ADD);
    CHECK_INT(cmd.id, 4);
    CHECK_INT(cmd.role, RAFT_VOTER); /* the default */
    CHECK_STR(cmd.raft_addr, "10.0.0.4:7000");
    CHECK_STR(cmd.http_addr, "n4:8080");
    CHECK_INT(parse("cluster.AddNode",
                    "{\"Id\":5,\"RaftAddress\":\"a:1\",\"HttpAddress\":\"a:2\",\"Role\":\"spare\"}",
                    &cmd, &e),
              0);
    CHECK_INT(cmd.role, RAFT_SPARE);
    CHECK_INT(
        parse("cluster.AddNode",
              "{\"Id\":5,\"RaftAddress\":\"a:1\",\"HttpAddress\":\"a:2\",\"Role\":\"standby\"}",
              &cmd, &e),
        0);
    CHECK_INT(cmd.role, RAFT_STANDBY);
}

static void test_add_node_refusals(void)
{
    static const char *bad[] = {
        "{\"Id\":0,\"RaftAddress\":\"a:1\",\"HttpAddress\":\"a:2\"}",
        "{\"Id\":4,\"RaftAddress\":\"nowhere\",\"HttpAddress\":\"a:2\"}",
        "{\"Id\":4,\"RaftAddress\":\"a:1\",\"HttpAddress\":\"a\"}",
        "{\"Id\":4,\"RaftAddress\":\"a:1\",\"HttpAddress\":\"a:2\",\"Role\":\"boss\"}",
    };
    struct membership_cmd cmd;
    struct err e;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(parse("cluster.AddNode", bad[i], &cmd, &e), ERR_BAD_REQUEST);
        CHECK_CONTAINS(e.message, "cluster.AddNode needs");
    }
    /* the codec's own checks name the field */
    CHECK_INT(parse("cluster.AddNode", "{\"Id\":4,\"RaftAddress\":\"a:1\"}", &cmd, &e),
              ERR_BAD_REQUEST);
    CHECK_CONTAINS(e.message, "HttpAddress");
    CHECK_INT(parse("cluster.AddNode",
                    "{\"Id\":4,\"RaftAddress\":\"a:1\",\"HttpAddress\":\"a:2\",\"X\":1}", &cmd, &e),
              ERR_BAD_REQUEST);
    CHECK_CONTAINS(e.message, "unknown field");
}

static void test_remove_and_transfer(void)
{
    struct membership_cmd cmd;
    struct err e;
    CHECK_INT(parse("cluster.RemoveNode", "{\"Id\":3}", &cmd, &e), 0);
    CHECK_INT(cmd.kind, MEMBERSHIP_REMOVE);
    CHECK_INT(cmd.id, 3);
    CHECK_INT(parse("cluster.RemoveNode", "{}", &cmd, &e), ERR_BAD_REQUEST);
    CHECK_INT(parse("cluster.TransferLeadership", "{\"Id\":2}", &cmd, &e), 0);
    CHECK_INT(cmd.kind, MEMBERSHIP_TRANSFER);
    CHECK_INT(cmd.id, 2);
    /* no Id: raft picks the target */
    CHECK_INT(parse("cluster.TransferLeadership", "{}", &cmd, &e), 0);
    CHECK_INT(cmd.id, 0);
    CHECK_INT(parse("cluster.TransferLeadership", "{\"Id\":\"two\"}", &cmd, &e), ERR_BAD_REQUEST);
}

int main(void)
{
    RUN(test_names);
    RUN(test_add_node);
    RUN(test_add_node_refusals);
    RUN(test_remove_and_transfer);
    return test_report("membership");
}
