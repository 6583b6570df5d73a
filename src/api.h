/* The HTTP API: one file per resource (api_commands.c writes,
 * api_reads.c REST reads, api_stream.c Server-Sent Events, api_ws.c the
 * WebSocket stream, api_cluster.c cluster views, api_internal.c the
 * node-to-node endpoints), and the route table (api_routes.c). The handlers
 * reach the node's modules through struct api and write every HTTP reply. */
#ifndef VARASTO_API_H
#define VARASTO_API_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"

struct auth;
struct cluster;
struct config;
struct fsm;
struct push;
struct push_sub;
struct retention;
struct store;
struct submit;
struct type_filter;

/* What the handlers use; every pointer borrowed from the node. */
struct api {
    const struct config *config;
    uv_loop_t *loop;
    struct store *store;
    struct fsm *fsm;
    struct cluster *cluster;
    struct push *push;
    struct submit *submit;
    struct auth *auth;
    struct retention *retention;
};

/* The route table, and its length. */
extern const struct http_route api_routes[];
extern const size_t api_n_routes;

void api_command(struct api *api, h2o_req_t *req, char **params);
/* The scope POST /command/{name} needs: admin for cluster.* and apikey.*,
 * write for the rest (an enum auth_scope). */
int api_command_scope(char **params);

/* Note on @sub which API key @req was authenticated with (none for the
 * admin token or another node), so that removing the key ends the stream. */
void api_stream_key(struct api *api, h2o_req_t *req, struct push_sub *sub);
void api_changeset(struct api *api, h2o_req_t *req, char **params);

void api_directory_get(struct api *api, h2o_req_t *req, char **params);
void api_collection_get(struct api *api, h2o_req_t *req, char **params);
void api_events_page(struct api *api, h2o_req_t *req, char **params);
void api_subscriptions(struct api *api, h2o_req_t *req, char **params);
void api_health(struct api *api, h2o_req_t *req, char **params);

/* 410 when events after @after were pruned here; returns 1 if it answered. */
int api_reply_gone_if_pruned(struct api *api, h2o_req_t *req, uint64_t after);

void api_cluster(struct api *api, h2o_req_t *req, char **params);
void api_nodes(struct api *api, h2o_req_t *req, char **params);

void api_internal_apply(struct api *api, h2o_req_t *req, char **params);
void api_internal_barrier(struct api *api, h2o_req_t *req, char **params);

/* Parse ?types into @filter (empty when absent); answers 400 and returns -1
 * when malformed. */
int api_parse_types(h2o_req_t *req, struct type_filter *filter);

/* Where an event stream starts: the cursor (Last-Event-ID when
 * @use_last_event_id, else ?after; a durable ?subscription's acked cursor
 * unless Last-Event-ID), the filter (the subscription's or ?types) and the
 * subscription name ("" for none). Returns 0, or answers the request (400,
 * 404, 410) and returns -1. */
int api_stream_start(struct api *api, h2o_req_t *req, int use_last_event_id,
                     struct type_filter *filter, uint64_t *after, char *subscription, size_t size);

void api_events_stream(struct api *api, h2o_req_t *req, char **params);
void api_events_ws(struct api *api, h2o_req_t *req, char **params);

#endif
