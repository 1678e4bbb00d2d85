/* linked_list.c - pointer chasing through lists laid out in random order.
 * Exercises: dependent loads (each node's address comes from the last
 * load), a doubly linked list spliced and reversed in place, a node pool
 * shuffled so that consecutive nodes are far apart.
 * Usage: linked_list [nodes] [passes]   (defaults 30000, 10) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

struct node {
    struct node *next, *prev;
    uint32_t key;
    uint32_t payload[3];
};

static uint32_t rng = 0x9E3779B9u;
static uint32_t next_random(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 30000;
    int passes = argc > 2 ? atoi(argv[2]) : 10;
    if (n < 2)
        return 2;
    struct node *pool = malloc(sizeof(struct node) * n);
    long *order = malloc(sizeof(long) * n);
    if (!pool || !order)
        return 2;
    for (long i = 0; i < n; i++)
        order[i] = i;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(next_random() % (uint32_t)(i + 1));
        long t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    struct node *head = &pool[order[0]];
    for (long i = 0; i < n; i++) {
        struct node *p = &pool[order[i]];
        p->key = next_random();
        p->payload[0] = (uint32_t)i;
        p->payload[1] = p->key >> 3;
        p->payload[2] = 0;
        p->next = i + 1 < n ? &pool[order[i + 1]] : NULL;
        p->prev = i > 0 ? &pool[order[i - 1]] : NULL;
    }
    uint64_t total = 0;
    for (int pass = 0; pass < passes; pass++) {
        /* Walk forward, updating each node. */
        uint32_t acc = (uint32_t)pass;
        for (struct node *p = head; p; p = p->next) {
            acc = acc * 31 + p->key;
            p->payload[2] += acc & 0xff;
        }
        total += acc;
        /* Reverse the list in place. */
        struct node *prev = NULL, *p = head;
        while (p) {
            struct node *next = p->next;
            p->next = prev;
            p->prev = next;
            prev = p;
            p = next;
        }
        head = prev;
        /* Unlink every node whose key is divisible by 7 and move it to
         * the front. */
        for (p = head->next; p;) {
            struct node *next = p->next;
            if (p->key % 7 == 0) {
                p->prev->next = p->next;
                if (p->next)
                    p->next->prev = p->prev;
                p->next = head;
                p->prev = NULL;
                head->prev = p;
                head = p;
                p->key += 1;
            }
            p = next;
        }
    }
    uint32_t check = 0;
    long count = 0;
    for (struct node *p = head; p; p = p->next, count++)
        check = check * 33 + p->payload[2] + p->key;
    printf("nodes %ld total %llu check %08x\n", count, (unsigned long long)total, check);
    return 0;
}
