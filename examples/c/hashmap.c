/* hashmap.c - an open-addressing hash map from strings to counts.
 * Exercises: malloc/realloc/free of many small strings, string hashing
 * (FNV-1a, 32-bit), linear probing with tombstones and resizing,
 * memcmp/strcmp/memcpy, qsort of a collected subset, and a home-made
 * xorshift PRNG (no rand()), so output is identical on every platform.
 * Usage: hashmap [num_keys] [seed]   (defaults 200000, 2463534242)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

/* ---- PRNG: xorshift32 ---- */
static uint32_t rng_state = 2463534242u;

static uint32_t xorshift32(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

/* ---- hashing ---- */
static uint32_t fnv1a(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t fnv1a_mix(uint32_t h, const void *data, size_t len) {
    const uint8_t *p = (const uint8_t *)data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- the map ---- */
#define TOMBSTONE ((char *)1)

typedef struct {
    char *key;      /* NULL = empty, TOMBSTONE = deleted */
    uint32_t hash;
    uint32_t count;
} slot;

typedef struct {
    slot *slots;
    uint32_t cap;   /* power of two */
    uint32_t live;  /* live entries */
    uint32_t used;  /* live + tombstones */
    uint32_t resizes;
    uint64_t probes;
} map;

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n, sz);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void map_init(map *m, uint32_t cap) {
    m->slots = (slot *)xcalloc(cap, sizeof(slot));
    m->cap = cap;
    m->live = 0;
    m->used = 0;
    m->resizes = 0;
    m->probes = 0;
}

static void map_rehash(map *m, uint32_t newcap) {
    slot *old = m->slots;
    uint32_t oldcap = m->cap;
    m->slots = (slot *)xcalloc(newcap, sizeof(slot));
    m->cap = newcap;
    m->used = m->live;
    for (uint32_t i = 0; i < oldcap; i++) {
        if (old[i].key == NULL || old[i].key == TOMBSTONE)
            continue;
        uint32_t j = old[i].hash & (newcap - 1);
        while (m->slots[j].key != NULL)
            j = (j + 1) & (newcap - 1);
        m->slots[j] = old[i];
    }
    free(old);
    m->resizes++;
}

/* Find the slot index holding key, or UINT32_MAX. */
static uint32_t map_find(map *m, const char *key, size_t len, uint32_t h) {
    uint32_t mask = m->cap - 1;
    uint32_t i = h & mask;
    for (;;) {
        slot *s = &m->slots[i];
        m->probes++;
        if (s->key == NULL)
            return UINT32_MAX;
        if (s->key != TOMBSTONE && s->hash == h && memcmp(s->key, key, len) == 0 &&
            s->key[len] == '\0')
            return i;
        i = (i + 1) & mask;
    }
}

/* Adds 1 to key's count, inserting it if absent. Returns the new count. */
static uint32_t map_incr(map *m, const char *key) {
    size_t len = strlen(key);
    uint32_t h = fnv1a(key, len);
    uint32_t i = map_find(m, key, len, h);
    if (i != UINT32_MAX)
        return ++m->slots[i].count;
    if ((uint64_t)(m->used + 1) * 4 > (uint64_t)m->cap * 3) {
        /* grow if mostly live, else just clean tombstones */
        uint32_t newcap = (m->live * 2 >= m->cap / 2) ? m->cap * 2 : m->cap;
        map_rehash(m, newcap);
    }
    uint32_t mask = m->cap - 1;
    i = h & mask;
    while (m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & mask;
    if (m->slots[i].key == NULL)
        m->used++;
    char *copy = (char *)malloc(len + 1);
    if (copy == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(copy, key, len + 1);
    m->slots[i].key = copy;
    m->slots[i].hash = h;
    m->slots[i].count = 1;
    m->live++;
    return 1;
}

static uint32_t map_get(map *m, const char *key) {
    size_t len = strlen(key);
    uint32_t h = fnv1a(key, len);
    uint32_t i = map_find(m, key, len, h);
    return i == UINT32_MAX ? 0 : m->slots[i].count;
}

static int map_delete(map *m, const char *key) {
    size_t len = strlen(key);
    uint32_t h = fnv1a(key, len);
    uint32_t i = map_find(m, key, len, h);
    if (i == UINT32_MAX)
        return 0;
    free(m->slots[i].key);
    m->slots[i].key = TOMBSTONE;
    m->slots[i].count = 0;
    m->live--;
    return 1;
}

static void map_free(map *m) {
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE)
            free(m->slots[i].key);
    free(m->slots);
}

/* ---- key generation ---- */
static const char ALPHA[] = "abcdefghijklmnopqrstuvwxyz0123456789";

/* Writes a key derived from v: a letter prefix then base-36 digits. */
static void make_key(uint32_t v, char *buf) {
    int n = 0;
    buf[n++] = ALPHA[v % 26];
    v /= 26;
    buf[n++] = ALPHA[v % 26];
    v /= 26;
    do {
        buf[n++] = ALPHA[v % 36];
        v /= 36;
    } while (v != 0);
    buf[n] = '\0';
}

typedef struct {
    const char *key;
    uint32_t count;
} entry;

static int cmp_entry(const void *a, const void *b) {
    const entry *x = (const entry *)a;
    const entry *y = (const entry *)b;
    /* keys are unique in the map, so this is a total order */
    return strcmp(x->key, y->key);
}

int main(int argc, char **argv) {
    long nkeys = 200000;
    if (argc > 1)
        nkeys = atol(argv[1]);
    if (argc > 2)
        rng_state = (uint32_t)strtoul(argv[2], NULL, 10);
    if (nkeys < 1 || nkeys > 5000000 || rng_state == 0) {
        fprintf(stderr, "usage: hashmap [num_keys 1..5000000] [seed != 0]\n");
        return 1;
    }
    uint32_t key_space = (uint32_t)(nkeys / 2); /* force many repeats */
    if (key_space < 1)
        key_space = 1;

    map m;
    map_init(&m, 16);
    char buf[32];

    /* Phase 1: insert (count) generated keys. */
    uint32_t max_count = 0;
    for (long i = 0; i < nkeys; i++) {
        make_key(xorshift32() % key_space, buf);
        uint32_t c = map_incr(&m, buf);
        if (c > max_count)
            max_count = c;
    }
    printf("inserted %ld keys: %u distinct, max count %u, resizes %u, capacity %u\n",
           nkeys, (unsigned)m.live, (unsigned)max_count, (unsigned)m.resizes,
           (unsigned)m.cap);

    /* Phase 2: delete keys from a fresh walk over the key space. */
    uint32_t tried = 0, deleted = 0;
    for (uint32_t v = 0; v < key_space; v += 3) {
        make_key(v, buf);
        tried++;
        deleted += (uint32_t)map_delete(&m, buf);
    }
    printf("delete pass: tried %u, deleted %u, live %u\n", (unsigned)tried,
           (unsigned)deleted, (unsigned)m.live);

    /* Phase 3: re-insert some, mixing tombstone reuse and new keys. */
    for (long i = 0; i < nkeys / 4; i++) {
        make_key(xorshift32() % (key_space + key_space / 4), buf);
        map_incr(&m, buf);
    }
    printf("after reinsert: live %u, capacity %u, resizes %u\n", (unsigned)m.live,
           (unsigned)m.cap, (unsigned)m.resizes);

    /* Spot lookups. */
    uint32_t hits = 0, sum_found = 0;
    for (uint32_t v = 0; v < 1000; v++) {
        make_key(v * 7u, buf);
        uint32_t c = map_get(&m, buf);
        if (c) {
            hits++;
            sum_found += c;
        }
    }
    printf("lookups: 1000 probed, %u hits, summed counts %u\n", (unsigned)hits,
           (unsigned)sum_found);

    /* Totals and an order-independent checksum over all live entries. */
    uint64_t total = 0;
    uint32_t xor_hash = 0;
    uint32_t hist[8] = {0};
    for (uint32_t i = 0; i < m.cap; i++) {
        slot *s = &m.slots[i];
        if (s->key == NULL || s->key == TOMBSTONE)
            continue;
        total += s->count;
        xor_hash ^= s->hash * 2654435761u + s->count;
        hist[s->count < 7 ? s->count : 7]++;
    }
    printf("total count %llu, xor checksum %08x\n", (unsigned long long)total,
           (unsigned)xor_hash);
    printf("count histogram:");
    for (int i = 1; i < 8; i++)
        printf(" %s%d:%u", i == 7 ? ">=" : "", i, (unsigned)hist[i]);
    printf("\n");

    /* Sorted subset: live keys that start with "q". */
    uint32_t nsub = 0;
    entry *sub = (entry *)xcalloc(m.live + 1, sizeof(entry));
    for (uint32_t i = 0; i < m.cap; i++) {
        slot *s = &m.slots[i];
        if (s->key == NULL || s->key == TOMBSTONE)
            continue;
        if (s->key[0] == 'q') {
            sub[nsub].key = s->key;
            sub[nsub].count = s->count;
            nsub++;
        }
    }
    qsort(sub, nsub, sizeof(entry), cmp_entry);
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < nsub; i++) {
        h = fnv1a_mix(h, sub[i].key, strlen(sub[i].key) + 1);
        uint8_t c[4] = {(uint8_t)sub[i].count, (uint8_t)(sub[i].count >> 8),
                        (uint8_t)(sub[i].count >> 16), (uint8_t)(sub[i].count >> 24)};
        h = fnv1a_mix(h, c, 4);
    }
    printf("subset 'q*': %u keys, sorted checksum %08x\n", (unsigned)nsub, (unsigned)h);
    printf("first keys:");
    for (uint32_t i = 0; i < nsub && i < 8; i++)
        printf(" %s=%u", sub[i].key, (unsigned)sub[i].count);
    printf("\nlast keys:");
    for (uint32_t i = nsub > 8 ? nsub - 8 : 0; i < nsub; i++)
        printf(" %s=%u", sub[i].key, (unsigned)sub[i].count);
    printf("\n");

    free(sub);
    map_free(&m);
    return 0;
}
