/* Membership commands (cluster.AddNode, RemoveNode, TransferLeadership). */
#ifndef VARASTO_MEMBERSHIP_H
#define VARASTO_MEMBERSHIP_H

#include <cjson/cJSON.h>

#include "http.h"

/* Whether @name is one of the membership commands. */
int membership_is_command(const char *name);

/* Carry out the command @name with the decoded body @json (borrowed):
 * on the leader, or relayed to it. Answers @req. */
void membership_command(struct node *node, h2o_req_t *req, const char *name, const cJSON *json);

#endif
