/* The route handlers, one file per resource: api_commands.c (writes),
 * api_reads.c (REST reads), api_stream.c (Server-Sent Events). */
#ifndef VARASTO_API_H
#define VARASTO_API_H

#include <stdint.h>

#include "http.h"

void api_command(struct node *node, h2o_req_t *req, char **params);
void api_changeset(struct node *node, h2o_req_t *req, char **params);
/* Answer a command with its outcome @r (status, Idempotent-Replayed,
 * Retry-After) and the body @body (r's own, or one the caller extended). */
struct submit_result;
void api_reply_outcome(struct node *node, h2o_req_t *req, const struct submit_result *r,
                       const char *body, size_t len);

void api_directory_get(struct node *node, h2o_req_t *req, char **params);
void api_collection_get(struct node *node, h2o_req_t *req, char **params);
void api_events_page(struct node *node, h2o_req_t *req, char **params);
void api_subscriptions(struct node *node, h2o_req_t *req, char **params);
/* 410 when events after @after were pruned; returns 1 if it answered. */
int api_reply_gone_if_pruned(struct node *node, h2o_req_t *req, uint64_t after);
void api_health(struct node *node, h2o_req_t *req, char **params);

void api_cluster(struct node *node, h2o_req_t *req, char **params);
void api_nodes(struct node *node, h2o_req_t *req, char **params);

void api_internal_apply(struct node *node, h2o_req_t *req, char **params);
void api_internal_barrier(struct node *node, h2o_req_t *req, char **params);

/* Parse ?types into @filter (empty when absent); answers 400 and returns -1
 * when malformed. */
struct type_filter;
int api_parse_types(struct node *node, h2o_req_t *req, struct type_filter *filter);

/* Where an event stream starts: the cursor (Last-Event-ID when
 * @use_last_event_id, else ?after; a durable ?subscription's acked cursor
 * unless Last-Event-ID), the filter (the subscription's or ?types) and the
 * subscription name ("" for none). Returns 0, or answers the request (400,
 * 404, 410) and returns -1. */
int api_stream_start(struct node *node, h2o_req_t *req, int use_last_event_id,
                     struct type_filter *filter, uint64_t *after, char *subscription,
                     size_t size);

void api_events_stream(struct node *node, h2o_req_t *req, char **params);
void api_events_ws(struct node *node, h2o_req_t *req, char **params);

#endif
