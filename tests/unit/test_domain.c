/* Every command's validation and apply, and each invariant's rejection, run
 * through the real FSM and SQLite store. */
#include <stdio.h>
#include <string.h>

#include "apply.h"
#include "domain_internal.h"
#include "testlib.h"

static struct harness h;

#define A(cmd, json, id) harness_apply(&h, cmd, json, id, NULL)

static long long q(const char *sql)
{
    return harness_scalar(&h, sql);
}

/* The last command's response body, NUL-terminated. */
static const char *last_body(void)
{
    buf_append(&h.fsm.result.body, "", 1);
    h.fsm.result.body.len--;
    return h.fsm.result.body.data;
}

static void test_root_exists(void)
{
    CHECK_INT(q("SELECT COUNT(*) FROM directories WHERE id='root' AND name='root'"), 1);
}

static void test_directory_create(void)
{
    CHECK_INT(A("directory.Create", "{\"Parent\":\"root\",\"Name\":\"music\"}", "d1"), 200);
    CHECK_CONTAINS(h.fsm.result.body.data, "\"Id\":\"d1\"");
    CHECK_CONTAINS(h.fsm.result.body.data, "\"Seq\":1");
    /* name unique among siblings */
    CHECK_INT(A("directory.Create", "{\"Parent\":\"root\",\"Name\":\"music\"}", "d2"), 409);
    /* parent must exist */
    CHECK_INT(A("directory.Create", "{\"Parent\":\"nope\",\"Name\":\"x\"}", "d3"), 404);
    /* empty name: 400 */
    CHECK_INT(A("directory.Create", "{\"Parent\":\"root\",\"Name\":\"\"}", "d4"), 400);
    /* the same name under another parent is fine */
    CHECK_INT(A("directory.Create", "{\"Parent\":\"d1\",\"Name\":\"music\"}", "d5"), 200);
    /* a rejection leaves no event and no row */
    CHECK_INT(q("SELECT COUNT(*) FROM events"), 2);
    CHECK_INT(q("SELECT COUNT(*) FROM directories"), 3);
}

static void test_directory_rename(void)
{
    CHECK_INT(A("directory.Create", "{\"Parent\":\"root\",\"Name\":\"films\"}", "d6"), 200);
    CHECK_INT(A("directory.Rename", "{\"Id\":\"d6\",\"Name\":\"music\"}", NULL), 409);
    CHECK_INT(A("directory.Rename", "{\"Id\":\"d6\",\"Name\":\"movies\"}", NULL), 200);
    CHECK_INT(A("directory.Rename", "{\"Id\":\"d6\",\"Name\":\"movies\"}", NULL), 200);
    CHECK_INT(A("directory.Rename", "{\"Id\":\"zz\",\"Name\":\"x\"}", NULL), 404);
    CHECK_INT(q("SELECT COUNT(*) FROM directories WHERE id='d6' AND name='movies'"), 1);
}

static void test_directory_attributes(void)
{
    CHECK_INT(A("directory.ChangeDescription", "{\"Id\":\"d6\",\"Description\":\"hi\"}", NULL),
              200);
    CHECK_INT(A("directory.SetType", "{\"Id\":\"d6\",\"Type\":\"movies\"}", NULL), 200);
    CHECK_INT(A("directory.SetType", "{\"Id\":\"d6\",\"Type\":\"books\"}", NULL), 400);
    CHECK_INT(A("directory.ChangeSensitivity", "{\"Id\":\"d6\",\"Sensitivity\":2}", NULL), 200);
    CHECK_INT(A("directory.ChangeSensitivity", "{\"Id\":\"d6\",\"Sensitivity\":3}", NULL), 400);
    CHECK_INT(A("directory.ChangeSensitivity", "{\"Id\":\"d6\",\"Sensitivity\":-1}", NULL), 400);
    CHECK_INT(A("directory.ChangeDescription", "{\"Id\":\"nope\",\"Description\":\"x\"}", NULL),
              404);
    CHECK_INT(q("SELECT COUNT(*) FROM directories WHERE id='d6' AND description='hi' AND "
                "type='movies' AND sensitivity=2"),
              1);
}

static void test_directory_move(void)
{
    /* d1 (music) contains d5 (music) */
    CHECK_INT(A("directory.Create", "{\"Parent\":\"d5\",\"Name\":\"deep\"}", "d7"), 200);
    /* into itself, into a descendant: cycles */
    CHECK_INT(A("directory.Move", "{\"Id\":\"d1\",\"Directory\":\"d1\"}", NULL), 409);
    CHECK_INT(A("directory.Move", "{\"Id\":\"d1\",\"Directory\":\"d7\"}", NULL), 409);
    /* the root cannot move */
    CHECK_INT(A("directory.Move", "{\"Id\":\"root\",\"Directory\":\"d6\"}", NULL), 409);
    /* target must exist */
    CHECK_INT(A("directory.Move", "{\"Id\":\"d7\",\"Directory\":\"nope\"}", NULL), 404);
    /* name must be unique at the destination: d5 is "music", root has "music" */
    CHECK_INT(A("directory.Move", "{\"Id\":\"d5\",\"Directory\":\"root\"}", NULL), 409);
    CHECK_INT(A("directory.Move", "{\"Id\":\"d7\",\"Directory\":\"d6\"}", NULL), 200);
    CHECK_INT(q("SELECT COUNT(*) FROM directories WHERE id='d7' AND parent='d6'"), 1);
}

/* Directories nest at most DOMAIN_MAX_DEPTH below the root: a create or a
 * move deeper is refused, so no walk up the tree reads more rows. */
static void test_directory_depth_bound(void)
{
    char parent[16] = "root", id[16], body[96];
    unsigned i;
    for (i = 1; i <= DOMAIN_MAX_DEPTH; i++) {
        snprintf(id, sizeof id, "z%u", i);
        snprintf(body, sizeof body, "{\"Parent\":\"%s\",\"Name\":\"n\"}", parent);
        CHECK_INT(A("directory.Create", body, id), 200);
        memcpy(parent, id, sizeof parent);
    }
    snprintf(body, sizeof body, "{\"Parent\":\"%s\",\"Name\":\"n\"}", parent);
    CHECK_INT(A("directory.Create", body, "ztoo"), 409);
    CHECK(strstr(last_body(), "at most") != NULL);
    /* into the deepest one, nothing moves; one level up, it may */
    CHECK_INT(A("directory.Create", "{\"Parent\":\"root\",\"Name\":\"loose\"}", "zl"), 200);
    snprintf(body, sizeof body, "{\"Id\":\"zl\",\"Directory\":\"%s\"}", parent);
    CHECK_INT(A("directory.Move", body, NULL), 409);
    snprintf(body, sizeof body, "{\"Id\":\"zl\",\"Directory\":\"z%u\"}", DOMAIN_MAX_DEPTH - 1);
    CHECK_INT(A("directory.Move", body, NULL), 200);
    /* the cycle check still holds at the bottom */
    snprintf(body, sizeof body, "{\"Id\":\"z1\",\"Directory\":\"z%u\"}", DOMAIN_MAX_DEPTH - 1);
    CHECK_INT(A("directory.Move", body, NULL), 409);
    CHECK(strstr(last_body(), "descendant") != NULL);
}

static void test_directory_delete(void)
{
    CHECK_INT(A("directory.Delete", "{\"Id\":\"root\"}", NULL), 409);
    CHECK_INT(A("directory.Delete", "{\"Id\":\"d6\"}", NULL), 409); /* has d7 */
    CHECK_INT(A("directory.Delete", "{\"Id\":\"nope\"}", NULL), 404);
    CHECK_INT(A("directory.Delete", "{\"Id\":\"d7\"}", NULL), 200);
    CHECK_INT(A("collection.Create", "{\"ParentDir\":\"d6\",\"Name\":\"c\"}", "c0"), 200);
    CHECK_INT(A("directory.Delete", "{\"Id\":\"d6\"}", NULL), 409); /* has a collection */
    CHECK_INT(A("collection.Delete", "{\"Collection\":\"c0\",\"Name\":\"c\"}", NULL), 200);
    CHECK_INT(A("directory.Delete", "{\"Id\":\"d6\"}", NULL), 200);
    CHECK_INT(q("SELECT COUNT(*) FROM directories WHERE id IN ('d6','d7')"), 0);
}

static void test_collections(void)
{
    CHECK_INT(A("collection.Create", "{\"ParentDir\":\"nope\",\"Name\":\"a\"}", "c1"), 404);
    CHECK_INT(A("collection.Create", "{\"ParentDir\":\"d1\",\"Name\":\"a\"}", "c1"), 200);
    CHECK_INT(A("collection.Create", "{\"ParentDir\":\"d1\",\"Name\":\"b\"}", "c2"), 200);
    CHECK_INT(A("collection.Rename", "{\"Collection\":\"c1\",\"Name\":\"A\"}", NULL), 200);
    CHECK_INT(A("collection.Rename", "{\"Collection\":\"nope\",\"Name\":\"A\"}", NULL), 404);
    CHECK_INT(A("collection.ChangeDescription", "{\"Collection\":\"c1\",\"Description\":\"d\"}",
                NULL),
              200);
    CHECK_INT(A("collection.Rate", "{\"Collection\":\"c1\",\"Rating\":5}", NULL), 200);
    CHECK_INT(A("collection.Rate", "{\"Collection\":\"c1\",\"Rating\":0}", NULL), 400);
    CHECK_INT(A("collection.Rate", "{\"Collection\":\"c1\",\"Rating\":6}", NULL), 400);
    CHECK_INT(A("collection.ChangeSensitivity", "{\"Id\":\"c1\",\"Sensitivity\":1}", NULL), 200);
    CHECK_INT(A("collection.ChangeSensitivity", "{\"Id\":\"c1\",\"Sensitivity\":9}", NULL), 400);
    CHECK_INT(q("SELECT COUNT(*) FROM collections WHERE id='c1' AND name='A' AND "
                "description='d' AND rating=5 AND sensitivity=1"),
              1);
    CHECK_INT(q("SELECT COUNT(*) FROM collections WHERE id='c2' AND rating IS NULL"), 1);
}

static void test_collection_tags(void)
{
    long long before;
    CHECK_INT(A("collection.Tag", "{\"Id\":\"c1\",\"Tag\":\"x\"}", NULL), 200);
    before = q("SELECT COUNT(*) FROM events");
    /* a set: tagging again changes nothing and emits nothing */
    CHECK_INT(A("collection.Tag", "{\"Id\":\"c1\",\"Tag\":\"x\"}", NULL), 200);
    CHECK_INT(q("SELECT COUNT(*) FROM events"), before);
    CHECK_INT(A("collection.Tag", "{\"Id\":\"c1\",\"Tag\":\"y\"}", NULL), 200);
    CHECK_INT(q("SELECT COUNT(*) FROM collection_tags WHERE collection='c1'"), 2);
    CHECK_INT(A("collection.Untag", "{\"Id\":\"c1\",\"Tag\":\"x\"}", NULL), 200);
    CHECK_INT(A("collection.Untag", "{\"Id\":\"c1\",\"Tag\":\"x\"}", NULL), 200);
    CHECK_INT(q("SELECT COUNT(*) FROM collection_tags WHERE collection='c1'"), 1);
    CHECK_INT(A("collection.Tag", "{\"Id\":\"nope\",\"Tag\":\"x\"}", NULL), 404);
    CHECK_INT(A("collection.Tag", "{\"Id\":\"c1\",\"Tag\":\"\"}", NULL), 400);
}

static void test_collection_move(void)
{
    long long before = q("SELECT COUNT(*) FROM events");
    /* all or nothing: one unknown id moves none */
    CHECK_INT(A("collection.Move", "{\"Collections\":[\"c1\",\"nope\"],\"Directory\":\"root\"}",
                NULL),
              404);
    CHECK_INT(q("SELECT COUNT(*) FROM collections WHERE directory='root'"), 0);
    CHECK_INT(A("collection.Move", "{\"Collections\":[],\"Directory\":\"root\"}", NULL), 400);
    CHECK_INT(A("collection.Move", "{\"Collections\":[\"c1\"],\"Directory\":\"nope\"}", NULL), 404);
    CHECK_INT(A("collection.Move", "{\"Collections\":[\"c1\",\"c2\"],\"Directory\":\"root\"}",
                NULL),
              200);
    CHECK_INT(q("SELECT COUNT(*) FROM collections WHERE directory='root'"), 2);
    /* one collection.Moved per collection */
    CHECK_INT(q("SELECT COUNT(*) FROM events WHERE type='collection.Moved'"), 2);
    CHECK_INT(q("SELECT COUNT(*) FROM events"), before + 2);
}

static void test_collection_delete(void)
{
    CHECK_INT(A("collection.Delete", "{\"Collection\":\"c2\",\"Name\":\"wrong\"}", NULL), 409);
    CHECK_INT(A("collection.Delete", "{\"Collection\":\"nope\",\"Name\":\"b\"}", NULL), 404);
    CHECK_INT(A("collection.Delete", "{\"Collection\":\"c2\",\"Name\":\"b\"}", NULL), 200);
    CHECK_INT(q("SELECT COUNT(*) FROM collections WHERE id='c2'"), 0);
}

#define FILE_JSON(path, size)                                                                      \
    "{\"Path\":\"" path "\",\"Sha256\":\"ab\",\"Created\":\"2026-01-01T00:00:00.000Z\","           \
    "\"Modified\":\"2026-01-01T00:00:00.000Z\",\"Size\":" #size ",\"BlobRefs\":[\"r\"]}"

static void test_changesets(void)
{
    CHECK_INT(A("collection.CommitChangeset",
                "{\"Collection\":\"c1\",\"ID\":\"cs1\",\"Parent\":\"\",\"Created\":\"t\","
                "\"FilesCreated\":[" FILE_JSON("b.txt", 1) "," FILE_JSON("a.txt", 2) "]}",
                NULL),
              200);
    CHECK_INT(q("SELECT COUNT(*) FROM collections WHERE id='c1' AND head='cs1'"), 1);
    /* Parent must be the head */
    CHECK_INT(A("collection.CommitChangeset",
                "{\"Collection\":\"c1\",\"ID\":\"cs2\",\"Parent\":\"\",\"Created\":\"t\"}", NULL),
              409);
    /* updating a file that does not exist */
    CHECK_INT(A("collection.CommitChangeset",
                "{\"Collection\":\"c1\",\"ID\":\"cs2\",\"Parent\":\"cs1\",\"Created\":\"t\","
                "\"FilesUpdated\":[" FILE_JSON("zzz", 1) "]}",
                NULL),
              409);
    CHECK_INT(A("collection.CommitChangeset",
                "{\"Collection\":\"c1\",\"ID\":\"cs2\",\"Parent\":\"cs1\",\"Created\":\"t\","
                "\"FilesUpdated\":[" FILE_JSON("a.txt", 5) "],\"FilesDeleted\":[\"b.txt\"]}",
                NULL),
              200);
    CHECK_INT(q("SELECT size FROM files WHERE collection='c1' AND path='a.txt'"), 5);
    CHECK_INT(q("SELECT COUNT(*) FROM files WHERE collection='c1'"), 1);
    CHECK_INT(q("SELECT COUNT(*) FROM changesets WHERE collection='c1'"), 2);
    CHECK_INT(A("collection.CommitChangeset",
                "{\"Collection\":\"nope\",\"ID\":\"x\",\"Parent\":\"\",\"Created\":\"t\"}", NULL),
              404);
}

static void test_apikeys(void)
{
    CHECK_INT(A("apikey.Create", "{\"Name\":\"ci\"}", "k1"), 200);
    CHECK_INT(q("SELECT COUNT(*) FROM apikeys WHERE id='k1' AND length(token_hash)=32"), 1);
    /* the token never reaches the event log */
    CHECK_INT(q("SELECT COUNT(*) FROM events WHERE type='apikey.Created' AND json LIKE "
                "'%token%'"),
              0);
    CHECK_INT(A("apikey.Remove", "{\"Id\":\"k1\"}", NULL), 200);
    CHECK_INT(A("apikey.Remove", "{\"Id\":\"k1\"}", NULL), 404);
    CHECK_INT(q("SELECT COUNT(*) FROM apikeys"), 0);
}

static void test_seq_is_gap_free(void)
{
    CHECK_INT(q("SELECT COUNT(*) FROM events"), q("SELECT MAX(seq) FROM events"));
    CHECK_INT(q("SELECT MIN(seq) FROM events"), 1);
    CHECK_INT(q("SELECT seq FROM applied"), q("SELECT MAX(seq) FROM events"));
}

int main(void)
{
    harness_open(&h);
    RUN(test_root_exists);
    RUN(test_directory_create);
    RUN(test_directory_rename);
    RUN(test_directory_attributes);
    RUN(test_directory_move);
    RUN(test_directory_depth_bound);
    RUN(test_directory_delete);
    RUN(test_collections);
    RUN(test_collection_tags);
    RUN(test_collection_move);
    RUN(test_collection_delete);
    RUN(test_changesets);
    RUN(test_apikeys);
    RUN(test_seq_is_gap_free);
    harness_close(&h);
    return test_report("domain");
}
