/* binary_trees.c - the Computer Language Benchmarks Game "binary-trees".
 * Exercises: malloc/free heavy allocation of many small nodes, deep
 * recursion, argv parsing (atoi), and printf with %d.
 * Usage: binary_trees [max_depth]   (default 14)
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

typedef struct node {
    struct node *left;
    struct node *right;
} node;

static node *bottom_up_tree(int depth) {
    node *n = (node *)malloc(sizeof(node));
    if (n == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (depth > 0) {
        n->left = bottom_up_tree(depth - 1);
        n->right = bottom_up_tree(depth - 1);
    } else {
        n->left = NULL;
        n->right = NULL;
    }
    return n;
}

static int32_t item_check(const node *n) {
    if (n->left == NULL)
        return 1;
    return 1 + item_check(n->left) + item_check(n->right);
}

static void delete_tree(node *n) {
    if (n->left != NULL) {
        delete_tree(n->left);
        delete_tree(n->right);
    }
    free(n);
}

int main(int argc, char **argv) {
    int n = 14;
    if (argc > 1)
        n = atoi(argv[1]);
    if (n < 0 || n > 24) {
        fprintf(stderr, "depth out of range: %d\n", n);
        return 1;
    }

    int min_depth = 4;
    int max_depth = (min_depth + 2 > n) ? min_depth + 2 : n;
    int stretch_depth = max_depth + 1;

    node *stretch = bottom_up_tree(stretch_depth);
    printf("stretch tree of depth %d\t check: %d\n", stretch_depth,
           (int)item_check(stretch));
    delete_tree(stretch);

    node *long_lived = bottom_up_tree(max_depth);

    for (int depth = min_depth; depth <= max_depth; depth += 2) {
        int32_t iterations = (int32_t)1 << (max_depth - depth + min_depth);
        int32_t check = 0;
        for (int32_t i = 1; i <= iterations; i++) {
            node *t = bottom_up_tree(depth);
            check += item_check(t);
            delete_tree(t);
        }
        printf("%d\t trees of depth %d\t check: %d\n", (int)iterations, depth,
               (int)check);
    }

    printf("long lived tree of depth %d\t check: %d\n", max_depth,
           (int)item_check(long_lived));
    delete_tree(long_lived);
    return 0;
}
