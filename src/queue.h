/* An intrusive, circular, doubly-linked list: an element unlinks itself
 * without knowing which list holds it (as libuv's and raft's internal
 * queue.h do; neither is a public header). */
#ifndef VARASTO_QUEUE_H
#define VARASTO_QUEUE_H

#include <stddef.h>

struct queue {
    struct queue *next, *prev;
};

/* The struct of @type whose member @field is at @ptr. */
#define QUEUE_DATA(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* An empty list head, or an element that is in no list. */
static inline void queue_init(struct queue *q)
{
    q->next = q->prev = q;
}

static inline int queue_empty(const struct queue *q)
{
    return q->next == q;
}

static inline void queue_insert_tail(struct queue *head, struct queue *e)
{
    e->next = head;
    e->prev = head->prev;
    head->prev->next = e;
    head->prev = e;
}

/* Unlink @e from whatever list holds it; a no-op for an unlinked element. */
static inline void queue_remove(struct queue *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    queue_init(e);
}

#endif
