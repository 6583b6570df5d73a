/* The settings parsers: any --config file and any --cluster list either
 * gives settings or one error line; the result is always bounded and
 * NUL-terminated, and --cluster's members are distinct ids. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char path[64];

static void check(const struct config *c)
{
    unsigned i, j;
    if (memchr(c->data_dir, '\0', sizeof c->data_dir) == NULL ||
        memchr(c->raft, '\0', sizeof c->raft) == NULL ||
        memchr(c->http, '\0', sizeof c->http) == NULL || c->n_members > CONFIG_MAX_MEMBERS) {
        abort();
    }
    for (i = 0; i < c->n_members; i++) {
        for (j = i + 1; j < c->n_members; j++) {
            if (c->members[i].id == c->members[j].id) {
                abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    struct err e;
    char *text;
    FILE *f;

    if (path[0] == '\0') {
        snprintf(path, sizeof path, "/tmp/varasto-fuzz-config-%d", (int)getpid());
    }
    /* as a --config file */
    f = fopen(path, "wb");
    if (f == NULL) {
        return 0;
    }
    fwrite(data, 1, size, f);
    fclose(f);
    {
        char *argv[] = {"varastod", "--config", path, NULL};
        config_defaults(&c);
        if (config_parse(&c, 3, argv, &e) == 0) {
            check(&c);
        } else if (e.message[0] == '\0' || strchr(e.message, '\n') != NULL) {
            abort(); /* one clear line */
        }
    }
    unlink(path);
    /* as a --cluster list */
    text = strndup((const char *)data, size);
    if (text != NULL) {
        char *argv[] = {"varastod", "--cluster", text, NULL};
        config_defaults(&c);
        if (config_parse(&c, 3, argv, &e) == 0) {
            check(&c);
        }
        free(text);
    }
    return 0;
}
