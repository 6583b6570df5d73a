#include "push.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void push_init(struct push *p, struct store *store, uint64_t last_seq)
{
    memset(p, 0, sizeof *p);
    p->store = store;
    p->last_seq = last_seq;
    p->ring_first = last_seq + 1;
}

static void ring_clear(struct push *p)
{
    size_t i;
    for (i = 0; i < PUSH_RING_SIZE; i++) {
        free(p->ring[i].json);
        p->ring[i].json = NULL;
        p->ring[i].seq = 0;
    }
}

void push_close(struct push *p)
{
    ring_clear(p);
}

unsigned push_wake_some(struct push *p, unsigned budget)
{
    struct push_sub *s = p->subs;
    unsigned woken = 0, left = 0;
    while (s != NULL) {
        /* wake may unsubscribe s (a transport error), so step first. */
        struct push_sub *next = s->next;
        if (s->waiting && s->cursor < p->last_seq) {
            if (woken < budget) {
                s->waiting = 0;
                woken++;
                s->wake(s);
            } else {
                left++;
            }
        }
        s = next;
    }
    return left;
}

/* Wake a first slice now; the node wakes the rest in later loop iterations
 * (push_wake_some from an idle handle), so commands interleave with a large
 * fan-out instead of waiting for a thousand socket writes. */
static void wake_all(struct push *p)
{
    if (push_wake_some(p, PUSH_WAKE_SLICE) > 0 && p->on_backlog != NULL) {
        p->on_backlog(p->on_backlog_data);
    }
}

/* End every stream opened with the key that @json (an apikey.Removed event)
 * names: a removed key reads no more (SPEC 7.2). */
static void end_key(struct push *p, const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "Data");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(data, "Id");
    struct push_sub *s = p->subs;
    while (cJSON_IsString(id) && id->valuestring[0] != '\0' && s != NULL) {
        struct push_sub *next = s->next; /* end may unsubscribe s */
        if (strcmp(s->key_id, id->valuestring) == 0) {
            (s->revoked != NULL ? s->revoked : s->end)(s);
        }
        s = next;
    }
    cJSON_Delete(doc);
}

void push_publish(struct push *p, const struct domain_event *events, unsigned n, uint64_t last_seq)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        const struct domain_event *e = &events[i];
        struct push_ring_slot *slot = &p->ring[e->seq % PUSH_RING_SIZE];
        char *copy = malloc(e->len + 1);
        if (copy == NULL) {
            /* Subscribers fall back to SQLite for what the ring lacks. */
            ring_clear(p);
            p->ring_first = last_seq + 1;
            break;
        }
        memcpy(copy, e->json, e->len + 1);
        free(slot->json);
        slot->seq = e->seq;
        slot->json = copy;
        slot->len = e->len;
        util_copy(slot->type, sizeof slot->type, e->type);
        if (e->seq >= p->ring_first + PUSH_RING_SIZE) {
            p->ring_first = e->seq - PUSH_RING_SIZE + 1;
        }
    }
    p->last_seq = last_seq;
    for (i = 0; i < n; i++) {
        if (strcmp(events[i].type, "apikey.Removed") == 0) {
            end_key(p, events[i].json);
        }
    }
    wake_all(p);
}

void push_reset(struct push *p, uint64_t last_seq)
{
    ring_clear(p);
    p->last_seq = last_seq;
    p->ring_first = last_seq + 1;
    wake_all(p);
}

void push_subscribe(struct push *p, struct push_sub *sub)
{
    sub->hub = p;
    sub->waiting = 0;
    sub->prev = NULL;
    sub->next = p->subs;
    if (p->subs != NULL) {
        p->subs->prev = sub;
    }
    p->subs = sub;
    p->n_subs++;
}

void push_unsubscribe(struct push_sub *sub)
{
    struct push *p = sub->hub;
    if (p == NULL) {
        return;
    }
    if (sub->prev != NULL) {
        sub->prev->next = sub->next;
    } else {
        p->subs = sub->next;
    }
    if (sub->next != NULL) {
        sub->next->prev = sub->prev;
    }
    sub->hub = NULL;
    p->n_subs--;
}

/* One page of backlog being framed for a subscriber. */
struct backlog_page {
    struct push_sub *sub;
    struct buf *out;
    unsigned n;
};

static int backlog_row(void *data, uint64_t seq, const char *type, const char *json, size_t len)
{
    struct backlog_page *page = data;
    struct push_sub *sub = page->sub;
    if (seq >= sub->hub->ring_first) {
        return 1; /* the ring takes over from here */
    }
    sub->cursor = seq;
    if (type_filter_match(&sub->filter, type)) {
        sub->frame(page->out, seq, type, json, len);
        page->n++;
    }
    return page->out->len >= PUSH_BATCH_BYTES;
}

/* Backlog older than the ring: one page from SQLite. A filter looks at no
 * more than PUSH_SCAN_BUDGET events (the type test in SQL), and moves the
 * cursor over those that do not pass; never past events it cannot see
 * (pruned ones: the caller's retention check ends the stream). @looked
 * counts the events looked at. */
static unsigned pull_store(struct push_sub *sub, struct buf *out, uint64_t *looked)
{
    struct backlog_page page = {sub, out, 0};
    struct push *p = sub->hub;
    uint64_t scanned, oldest, before = sub->cursor;
    if (out->len >= PUSH_BATCH_BYTES) {
        return 0;
    }
    if (sub->filter.n == 0) {
        store_events_scan(p->store, sub->cursor, PUSH_PAGE_EVENTS, backlog_row, &page);
        *looked += page.n;
        return page.n;
    }
    oldest = store_oldest_event(p->store);
    if (oldest == 0 || oldest > sub->cursor + 1) {
        return 0; /* pruned from under it: no progress, the caller sees it */
    }
    if (store_events_filtered(p->store, sub->cursor, p->ring_first, PUSH_PAGE_EVENTS,
                              PUSH_SCAN_BUDGET, &sub->filter, backlog_row, &page, &scanned) >= 0 &&
        scanned > sub->cursor) {
        sub->cursor = scanned;
    }
    *looked += sub->cursor - before;
    return page.n;
}

unsigned push_pull(struct push_sub *sub, struct buf *out)
{
    struct push *p = sub->hub;
    unsigned n = 0;
    size_t start = out->len;
    uint64_t looked = 0;
    int stuck = 0, more = 0;

    /* Bounded by bytes, and by a count of scanned events so that a filter
     * that matches nothing still returns to the loop regularly. */
    while (sub->cursor < p->last_seq && out->len - start < PUSH_BATCH_BYTES) {
        uint64_t next = sub->cursor + 1;
        if (next < p->ring_first) {
            uint64_t before = sub->cursor;
            n += pull_store(sub, out, &looked);
            if (sub->cursor == before) {
                /* Rows below ring_first are missing from SQLite (pruned,
                 * or the read failed): stop rather than spin. */
                stuck = 1;
                break;
            }
            if (looked >= PUSH_SCAN_BUDGET) {
                more = sub->cursor < p->last_seq;
                break; /* the loop's turn is over; on in the next iteration */
            }
            continue;
        }
        {
            const struct push_ring_slot *slot = &p->ring[next % PUSH_RING_SIZE];
            unsigned scanned = 0;
            while (sub->cursor < p->last_seq && out->len - start < PUSH_BATCH_BYTES &&
                   scanned < PUSH_PAGE_EVENTS) {
                next = sub->cursor + 1;
                slot = &p->ring[next % PUSH_RING_SIZE];
                if (slot->seq != next || slot->json == NULL) {
                    break;
                }
                sub->cursor = next;
                scanned++;
                if (type_filter_match(&sub->filter, slot->type)) {
                    sub->frame(out, slot->seq, slot->type, slot->json, slot->len);
                    n++;
                }
            }
            if (scanned == 0 || scanned == PUSH_PAGE_EVENTS) {
                stuck = scanned == 0;
                break;
            }
        }
    }
    /* Caught up, or unable to move on: wait to be woken by the next events
     * (callers pull again while a subscriber is not waiting). */
    if (n == 0 && (sub->cursor >= p->last_seq || stuck)) {
        sub->waiting = 1;
    } else if (n == 0 && more) {
        /* a filter looked at its budget of backlog and found nothing:
         * woken again from the next loop iteration (push_wake_some) */
        sub->waiting = 1;
        if (p->on_backlog != NULL) {
            p->on_backlog(p->on_backlog_data);
        }
    }
    return n;
}

void push_end_all(struct push *p)
{
    struct push_sub *s = p->subs;
    while (s != NULL) {
        struct push_sub *next = s->next; /* end may unsubscribe s */
        s->end(s);
        s = next;
    }
}
