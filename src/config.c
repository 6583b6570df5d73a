#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->id = 1;
    snprintf(c->data_dir, sizeof c->data_dir, "./varasto-data");
    snprintf(c->raft, sizeof c->raft, "127.0.0.1:7066");
    snprintf(c->http, sizeof c->http, "127.0.0.1:8066");
    c->snapshot_threshold = 0; /* automatic */
    c->heartbeat_ms = 15000;
    c->min_seq_timeout_ms = 5000;
    c->command_timeout_ms = 10000;
    c->max_connections = 10000;
    c->log_level = LOG_INFO;
    c->retain_holds_subscriptions = 1;
}

int config_split_addr(const char *addr, char *host, int *port)
{
    const char *colon = strrchr(addr, ':');
    char *end;
    long p;

    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= CONFIG_ADDR_MAX) {
        return -1;
    }
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || p < 1 || p > 65535) {
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *port = (int)p;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (*s == '\0' || *s == '-') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_cluster(struct config *c, const char *list, char *err, size_t err_size)
{
    char copy[CONFIG_MAX_MEMBERS * (CONFIG_ADDR_MAX + 24)];
    char *save = NULL;
    char *item;
    char host[CONFIG_ADDR_MAX];
    int port;

    if (strlen(list) >= sizeof copy) {
        snprintf(err, err_size, "--cluster: list too long");
        return -1;
    }
    strcpy(copy, list);
    c->n_members = 0;
    for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        struct config_member *m;
        char *eq = strchr(item, '=');
        unsigned i;
        if (c->n_members == CONFIG_MAX_MEMBERS) {
            snprintf(err, err_size, "--cluster: more than %d members", CONFIG_MAX_MEMBERS);
            return -1;
        }
        m = &c->members[c->n_members];
        if (eq == NULL) {
            snprintf(err, err_size, "--cluster: '%s' is not ID=HOST:PORT", item);
            return -1;
        }
        *eq = '\0';
        if (parse_u64(item, &m->id) != 0 || m->id == 0) {
            snprintf(err, err_size, "--cluster: '%s' is not a positive node id", item);
            return -1;
        }
        if (strlen(eq + 1) >= CONFIG_ADDR_MAX || config_split_addr(eq + 1, host, &port) != 0) {
            snprintf(err, err_size, "--cluster: '%s' is not HOST:PORT", eq + 1);
            return -1;
        }
        for (i = 0; i < c->n_members; i++) {
            if (c->members[i].id == m->id) {
                snprintf(err, err_size, "--cluster: node id %llu listed twice",
                         (unsigned long long)m->id);
                return -1;
            }
        }
        strcpy(m->raft, eq + 1);
        c->n_members++;
    }
    if (c->n_members == 0) {
        snprintf(err, err_size, "--cluster: empty list");
        return -1;
    }
    return 0;
}

static int copy_str(char *dst, size_t size, const char *value, const char *key, char *err,
                    size_t err_size)
{
    if (strlen(value) >= size) {
        snprintf(err, err_size, "--%s: value too long", key);
        return -1;
    }
    strcpy(dst, value);
    return 0;
}

static int is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0;
}

/* The HTTP address the other nodes are told to forward to (SPEC §1.1 is
 * silent; etcd and rqlite have an advertised address for the same reason):
 * --http-advertise, else --http unless it binds every interface, then
 * --raft's host, which the other nodes already reach, with --http's port. */
static int resolve_http_advertise(struct config *c, char *err, size_t err_size)
{
    char host[CONFIG_ADDR_MAX], raft_host[CONFIG_ADDR_MAX];
    int port, raft_port;

    if (c->http_advertise[0] != '\0') {
        return 0;
    }
    if (config_split_addr(c->http, host, &port) != 0 || !is_wildcard(host)) {
        strcpy(c->http_advertise, c->http);
        return 0;
    }
    if (config_split_addr(c->raft, raft_host, &raft_port) != 0 || is_wildcard(raft_host)) {
        snprintf(err, err_size,
                 "--http %s binds every interface: give --http-advertise HOST:PORT, the "
                 "address the other nodes reach this one at",
                 c->http);
        return -1;
    }
    if ((size_t)snprintf(c->http_advertise, sizeof c->http_advertise, "%s:%d", raft_host, port) >=
        sizeof c->http_advertise) {
        snprintf(err, err_size, "--http-advertise: address too long");
        return -1;
    }
    return 0;
}

/* Apply one setting by its long option name. */
static int config_set(struct config *c, const char *key, const char *value, char *err,
                      size_t err_size)
{
    uint64_t n;
    char host[CONFIG_ADDR_MAX];
    int port;

    if (strcmp(key, "id") == 0) {
        if (parse_u64(value, &c->id) != 0 || c->id == 0) {
            snprintf(err, err_size, "--id: '%s' is not a positive integer", value);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "data-dir") == 0) {
        return copy_str(c->data_dir, sizeof c->data_dir, value, key, err, err_size);
    }
    if (strcmp(key, "raft") == 0 || strcmp(key, "http") == 0) {
        char *dst = key[0] == 'r' ? c->raft : c->http;
        if (strlen(value) >= CONFIG_ADDR_MAX || config_split_addr(value, host, &port) != 0) {
            snprintf(err, err_size, "--%s: '%s' is not HOST:PORT", key, value);
            return -1;
        }
        strcpy(dst, value);
        return 0;
    }
    if (strcmp(key, "http-advertise") == 0) {
        if (strlen(value) >= CONFIG_ADDR_MAX || config_split_addr(value, host, &port) != 0) {
            snprintf(err, err_size, "--%s: '%s' is not HOST:PORT", key, value);
            return -1;
        }
        if (is_wildcard(host)) {
            snprintf(err, err_size, "--%s: '%s' is not an address other nodes can reach", key,
                     value);
            return -1;
        }
        strcpy(c->http_advertise, value);
        return 0;
    }
    if (strcmp(key, "cluster") == 0) {
        return parse_cluster(c, value, err, err_size);
    }
    if (strcmp(key, "join") == 0) {
        return copy_str(c->join, sizeof c->join, value, key, err, err_size);
    }
    if (strcmp(key, "token-file") == 0) {
        return copy_str(c->token_file, sizeof c->token_file, value, key, err, err_size);
    }
    {
        static const struct {
            const char *key;
            size_t offset;
        } paths[] = {
            {"tls-cert", offsetof(struct config, tls_cert)},
            {"tls-key", offsetof(struct config, tls_key)},
            {"tls-client-ca", offsetof(struct config, tls_client_ca)},
            {"peer-tls-cert", offsetof(struct config, peer_tls_cert)},
            {"peer-tls-key", offsetof(struct config, peer_tls_key)},
            {"peer-tls-ca", offsetof(struct config, peer_tls_ca)},
        };
        size_t i;
        for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            if (strcmp(key, paths[i].key) == 0) {
                return copy_str((char *)c + paths[i].offset, CONFIG_PATH_MAX, value, key, err,
                                err_size);
            }
        }
    }
    /* --retention-holds-subscriptions is the flag's first name, still taken */
    if (strcmp(key, "retain-holds-subscriptions") == 0 ||
        strcmp(key, "retention-holds-subscriptions") == 0) {
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
            c->retain_holds_subscriptions = 1;
        } else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
            c->retain_holds_subscriptions = 0;
        } else {
            snprintf(err, err_size, "--%s: '%s' is not true or false", key, value);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "log-level") == 0) {
        static const char *levels[] = {"debug", "info", "warn", "error"};
        int i;
        for (i = 0; i < 4; i++) {
            if (strcmp(value, levels[i]) == 0) {
                c->log_level = i;
                return 0;
            }
        }
        snprintf(err, err_size, "--log-level: '%s' is not debug, info, warn or error", value);
        return -1;
    }
    {
        static const struct {
            const char *key;
            size_t offset;
            uint64_t min, max;
        } numbers[] = {
            {"retain-events", offsetof(struct config, retain_events), 0, UINT64_MAX},
            {"snapshot-threshold", offsetof(struct config, snapshot_threshold), 16, 1u << 30},
            {"heartbeat-ms", offsetof(struct config, heartbeat_ms), 10, 15000},
            {"min-seq-timeout-ms", offsetof(struct config, min_seq_timeout_ms), 1, 600000},
            {"command-timeout-ms", offsetof(struct config, command_timeout_ms), 100, 600000},
            {"max-connections", offsetof(struct config, max_connections), 1, 1000000},
        };
        size_t i;
        for (i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
            if (strcmp(key, numbers[i].key) != 0) {
                continue;
            }
            if (parse_u64(value, &n) != 0 || n < numbers[i].min || n > numbers[i].max) {
                snprintf(err, err_size, "--%s: '%s' is not an integer in %llu..%llu", key, value,
                         (unsigned long long)numbers[i].min, (unsigned long long)numbers[i].max);
                return -1;
            }
            if (numbers[i].offset == offsetof(struct config, retain_events)) {
                c->retain_events = n;
            } else {
                *(unsigned *)((char *)c + numbers[i].offset) = (unsigned)n;
            }
            return 0;
        }
    }
    snprintf(err, err_size, "unknown option --%s", key);
    return -1;
}

static char *trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r')) {
        *--end = '\0';
    }
    return s;
}

static int config_read_file(struct config *c, const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    unsigned lineno = 0;

    if (f == NULL) {
        snprintf(err, err_size, "--config: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *key, *value, *eq;
        char sub[512];
        lineno++;
        key = trim(line);
        if (*key == '\0' || *key == '#') {
            continue;
        }
        eq = strchr(key, '=');
        if (eq == NULL) {
            snprintf(err, err_size, "%s:%u: expected 'key = value'", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        value = trim(eq + 1);
        key = trim(key);
        if (strcmp(key, "config") == 0 || config_set(c, key, value, sub, sizeof sub) != 0) {
            snprintf(err, err_size, "%s:%u: %s", path, lineno,
                     strcmp(key, "config") == 0 ? "'config' cannot be nested" : sub);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* The TLS flags come in sets: a certificate with its key; the peer set
 * whole; client certificates only with HTTPS, and only with peer TLS, whose
 * certificate a node presents when it forwards to another's HTTPS port. */
static int check_tls(const struct config *c, char *err, size_t err_size)
{
    int peer = (c->peer_tls_cert[0] != '\0') + (c->peer_tls_key[0] != '\0') +
               (c->peer_tls_ca[0] != '\0');
    if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
        snprintf(err, err_size, "--tls-cert and --tls-key go together");
        return -1;
    }
    if (peer != 0 && peer != 3) {
        snprintf(err, err_size, "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together");
        return -1;
    }
    if (c->tls_client_ca[0] != '\0' && c->tls_cert[0] == '\0') {
        snprintf(err, err_size, "--tls-client-ca needs --tls-cert and --tls-key");
        return -1;
    }
    if (c->tls_client_ca[0] != '\0' && peer == 0) {
        snprintf(err, err_size,
                 "--tls-client-ca needs --peer-tls-cert, --peer-tls-key and --peer-tls-ca "
                 "(nodes forward to each other's HTTPS port with their peer certificate)");
        return -1;
    }
    return 0;
}

static int parse_args(struct config *c, int argc, char **argv, char *err, size_t err_size)
{
    const char *config_file = NULL;
    int i;

    /* First pass: find --config, so that flags can override the file. */
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_file = argv[i + 1];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_file = argv[i] + 9;
        }
    }
    if (config_file != NULL && config_read_file(c, config_file, err, err_size) != 0) {
        return -1;
    }
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char key[64];
        const char *value;
        const char *eq;

        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, err_size, "unexpected argument '%s'", arg);
            return -1;
        }
        arg += 2;
        eq = strchr(arg, '=');
        if (eq != NULL) {
            if ((size_t)(eq - arg) >= sizeof key) {
                snprintf(err, err_size, "unknown option --%s", arg);
                return -1;
            }
            memcpy(key, arg, (size_t)(eq - arg));
            key[eq - arg] = '\0';
            value = eq + 1;
        } else {
            if (strlen(arg) >= sizeof key) {
                snprintf(err, err_size, "unknown option --%s", arg);
                return -1;
            }
            strcpy(key, arg);
            if (i + 1 >= argc) {
                snprintf(err, err_size, "--%s needs a value", key);
                return -1;
            }
            value = argv[++i];
        }
        if (strcmp(key, "config") == 0) {
            continue;
        }
        if (config_set(c, key, value, err, err_size) != 0) {
            return -1;
        }
    }
    if (c->n_members > 0) {
        unsigned k;
        int found = 0;
        for (k = 0; k < c->n_members; k++) {
            if (c->members[k].id == c->id) {
                found = 1;
                if (strcmp(c->members[k].raft, c->raft) != 0) {
                    /* The cluster list is the authority on raft addresses. */
                    strcpy(c->raft, c->members[k].raft);
                }
            }
        }
        if (!found) {
            snprintf(err, err_size, "--id %llu is not in --cluster", (unsigned long long)c->id);
            return -1;
        }
    }
    if (check_tls(c, err, err_size) != 0) {
        return -1;
    }
    return resolve_http_advertise(c, err, err_size);
}

int config_parse(struct config *c, int argc, char **argv, struct err *e)
{
    e->code = ERR_OK;
    e->message[0] = '\0';
    if (parse_args(c, argc, argv, e->message, sizeof e->message) != 0) {
        e->code = ERR_BAD_REQUEST;
    }
    return (int)e->code;
}
