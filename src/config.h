/* Node settings from the command line and an optional `key = value` file. */
#ifndef VARASTO_CONFIG_H
#define VARASTO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define CONFIG_MAX_MEMBERS 16
#define CONFIG_ADDR_MAX 128
#define CONFIG_PATH_MAX 1024

struct config_member {
    uint64_t id;
    char raft[CONFIG_ADDR_MAX];
};

struct config {
    uint64_t id;
    char data_dir[CONFIG_PATH_MAX];
    char raft[CONFIG_ADDR_MAX];
    char http[CONFIG_ADDR_MAX];
    char http_advertise[CONFIG_ADDR_MAX]; /* announced to the cluster: where the
                                           * other nodes forward to */
    char join[CONFIG_PATH_MAX];
    char token_file[CONFIG_PATH_MAX];
    struct config_member members[CONFIG_MAX_MEMBERS];
    unsigned n_members; /* 0: no --cluster given */
    uint64_t retain_events;
    int retain_holds_subscriptions; /* durable cursors hold back pruning */
    unsigned snapshot_threshold;    /* raft entries between snapshots; 0: automatic */
    unsigned heartbeat_ms;          /* idle comment interval on event streams */
    unsigned min_seq_timeout_ms;    /* default wait for ?min_seq */
    unsigned command_timeout_ms;    /* how long a command may wait for commit */
    unsigned max_connections;       /* open client connections; past it, closed at once */
    /* SPEC 7.2: HTTPS for clients ("" for plain HTTP/1.1) */
    char tls_cert[CONFIG_PATH_MAX];
    char tls_key[CONFIG_PATH_MAX];
    char tls_client_ca[CONFIG_PATH_MAX]; /* client certificates required */
    /* SPEC 7.1: mutual TLS between nodes (all three or none) */
    char peer_tls_cert[CONFIG_PATH_MAX];
    char peer_tls_key[CONFIG_PATH_MAX];
    char peer_tls_ca[CONFIG_PATH_MAX];
    int log_level;
};

/* Fill @c with the defaults of SPEC §1.1. */
void config_defaults(struct config *c);

/* Parse argv (and the --config file it names; flags win over the file).
 * Without --http-advertise, the announced HTTP address is --http, or, when
 * --http binds every interface (0.0.0.0), --raft's host with --http's port.
 * Returns 0, or ERR_BAD_REQUEST with a one-line message in @e. */
int config_parse(struct config *c, int argc, char **argv, struct err *e);

/* Split "HOST:PORT" into @host (at least CONFIG_ADDR_MAX bytes) and @port.
 * Returns 0 or -1. */
int config_split_addr(const char *addr, char *host, int *port);

#endif
