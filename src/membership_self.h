/* Private to the membership module (membership.c, membership_self.c):
 * this node's own place in the cluster. */
#ifndef VARASTO_MEMBERSHIP_SELF_H
#define VARASTO_MEMBERSHIP_SELF_H

#include "membership.h"

/* Start announcing this node's addresses through the log and, with --join,
 * asking config->join to add this node unless the configuration it holds
 * already has it. */
void membership_self_start(struct membership *m, uv_loop_t *loop);

/* Close the announce and join timers (m->stopping is set). */
void membership_self_close(struct membership *m);

#endif
