/* varastod: one node of a Varasto cluster. */
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "node.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: varastod [--id N] [--data-dir DIR] [--raft HOST:PORT] [--http HOST:PORT]\n"
                 "                [--http-advertise HOST:PORT]\n"
                 "                [--cluster ID=HOST:PORT,...] [--join URL] [--token-file FILE]\n"
                 "                [--retain-events N] [--retain-holds-subscriptions true|false]\n"
                 "                [--snapshot-threshold N (default: automatic)] [--config FILE]\n"
                 "                [--max-connections N (default 10000)]\n"
                 "                [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]\n"
                 "                [--peer-tls-cert FILE --peer-tls-key FILE --peer-tls-ca FILE]\n"
                 "                [--log-level debug|info|warn|error]\n");
}

int main(int argc, char **argv)
{
    struct config config;
    struct err err;
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    /* A client that goes away must cost an EPIPE on its socket, not the
     * process. */
    signal(SIGPIPE, SIG_IGN);
    /* Every stream subscriber is a socket: allow as many as the system does. */
    {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    /* Per-request buffers come and go by the thousand per second: keep the
     * heap instead of trimming it back to the kernel and faulting it in
     * again, and serve mid-sized blocks (snapshot copies aside) from it. */
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    mallopt(M_TOP_PAD, 16 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    config_defaults(&config);
    if (config_parse(&config, argc, argv, &err) != 0) {
        fprintf(stderr, "varastod: %s (see varastod --help)\n", err.message);
        return 2;
    }
    return node_run(&config);
}
