/* avl.c - a balanced binary search tree (AVL) of random keys.
 * Exercises: pointer-chasing descents, recursion, rotations that rewrite
 * child pointers, malloc/free of many small nodes, in-order traversal.
 * Usage: avl [keys] (default 100000) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

struct tree {
    struct tree *left, *right;
    uint32_t key;
    int height;
    uint32_t count;
};

static int height(struct tree *t) { return t ? t->height : 0; }
static void fix(struct tree *t) {
    int l = height(t->left), r = height(t->right);
    t->height = (l > r ? l : r) + 1;
}
static struct tree *rotate_right(struct tree *t) {
    struct tree *l = t->left;
    t->left = l->right;
    l->right = t;
    fix(t);
    fix(l);
    return l;
}
static struct tree *rotate_left(struct tree *t) {
    struct tree *r = t->right;
    t->right = r->left;
    r->left = t;
    fix(t);
    fix(r);
    return r;
}
static struct tree *balance(struct tree *t) {
    fix(t);
    int b = height(t->left) - height(t->right);
    if (b > 1) {
        if (height(t->left->left) < height(t->left->right))
            t->left = rotate_left(t->left);
        return rotate_right(t);
    }
    if (b < -1) {
        if (height(t->right->right) < height(t->right->left))
            t->right = rotate_right(t->right);
        return rotate_left(t);
    }
    return t;
}
static struct tree *insert(struct tree *t, uint32_t key) {
    if (!t) {
        t = malloc(sizeof *t);
        if (!t)
            exit(2);
        t->left = t->right = NULL;
        t->key = key;
        t->height = 1;
        t->count = 1;
        return t;
    }
    if (key < t->key)
        t->left = insert(t->left, key);
    else if (key > t->key)
        t->right = insert(t->right, key);
    else {
        t->count++;
        return t;
    }
    return balance(t);
}
static struct tree *remove_min(struct tree *t, struct tree **min) {
    if (!t->left) {
        *min = t;
        return t->right;
    }
    t->left = remove_min(t->left, min);
    return balance(t);
}
static struct tree *erase(struct tree *t, uint32_t key) {
    if (!t)
        return NULL;
    if (key < t->key)
        t->left = erase(t->left, key);
    else if (key > t->key)
        t->right = erase(t->right, key);
    else {
        struct tree *l = t->left, *r = t->right, *min;
        free(t);
        if (!r)
            return l;
        r = remove_min(r, &min);
        min->left = l;
        min->right = r;
        return balance(min);
    }
    return balance(t);
}
static uint32_t find(struct tree *t, uint32_t key) {
    while (t) {
        if (key == t->key)
            return t->count;
        t = key < t->key ? t->left : t->right;
    }
    return 0;
}
static void walk(struct tree *t, uint32_t *hash, long *n) {
    if (!t)
        return;
    walk(t->left, hash, n);
    *hash = *hash * 16777619u ^ t->key ^ t->count;
    (*n)++;
    walk(t->right, hash, n);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    uint32_t x = 1;
    struct tree *root = NULL;
    for (long i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        root = insert(root, x % (uint32_t)(n * 4 + 1));
    }
    uint32_t found = 0;
    for (long i = 0; i < n; i++)
        found += find(root, (uint32_t)(i * 3));
    x = 1;
    for (long i = 0; i < n / 2; i++) {
        x = x * 1664525u + 1013904223u;
        root = erase(root, x % (uint32_t)(n * 4 + 1));
    }
    uint32_t hash = 2166136261u;
    long size = 0;
    walk(root, &hash, &size);
    printf("avl size %ld height %d found %u hash %08x\n", size, height(root), found, hash);
    return 0;
}
