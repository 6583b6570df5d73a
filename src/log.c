#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static unsigned long long log_node_id;
static enum log_level log_min_level = LOG_INFO;

void log_init(unsigned long long node_id, enum log_level min_level)
{
    log_node_id = node_id;
    log_min_level = min_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char line[1024];
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (level < log_min_level) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line, sizeof line, "%s.%03ldZ %s node=%llu ", stamp, ts.tv_nsec / 1000000,
                 names[level], log_node_id);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) {
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    }
    va_end(ap);
    /* One write per line so lines of concurrent processes do not interleave. */
    fprintf(stderr, "%s\n", line);
}
