/* doitgen.c - a tensor contraction (PolyBench's doitgen) and a
 * 3-D heat stencil, over flat double arrays.
 * Exercises: four-deep loop nests, a scratch row, strides of n*n,
 * accesses at several constant offsets from one index.
 * Usage: doitgen [n] [steps]   (defaults 40, 10) */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 40;
    int steps = argc > 2 ? atoi(argv[2]) : 10;
    if (n < 3)
        return 2;
    size_t n3 = (size_t)n * n * n;
    double *a = malloc(sizeof(double) * n3), *c4 = malloc(sizeof(double) * n * n);
    double *sum = malloc(sizeof(double) * n), *h = malloc(sizeof(double) * n3), *g = malloc(sizeof(double) * n3);
    if (!a || !c4 || !sum || !h || !g)
        return 2;
    for (int r = 0; r < n; r++)
        for (int q = 0; q < n; q++)
            for (int p = 0; p < n; p++)
                a[(r * n + q) * n + p] = (double)((r * q + p) % n) / n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            c4[i * n + j] = (double)(i * j % n) / n;
    for (int r = 0; r < n; r++)
        for (int q = 0; q < n; q++) {
            for (int p = 0; p < n; p++) {
                double s = 0;
                for (int k = 0; k < n; k++)
                    s += a[(r * n + q) * n + k] * c4[k * n + p];
                sum[p] = s;
            }
            for (int p = 0; p < n; p++)
                a[(r * n + q) * n + p] = sum[p];
        }
    for (size_t i = 0; i < n3; i++)
        h[i] = g[i] = (double)(i % 97) / 97.0;
    for (int t = 0; t < steps; t++) {
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++)
                for (int k = 1; k < n - 1; k++) {
                    size_t o = ((size_t)i * n + j) * n + k;
                    g[o] = 0.125 * (h[o + (size_t)n * n] - 2.0 * h[o] + h[o - (size_t)n * n]) +
                           0.125 * (h[o + n] - 2.0 * h[o] + h[o - n]) +
                           0.125 * (h[o + 1] - 2.0 * h[o] + h[o - 1]) + h[o];
                }
        double *s = h;
        h = g;
        g = s;
    }
    double ta = 0, th = 0;
    for (size_t i = 0; i < n3; i++) {
        ta += a[i] * (double)(i % 11);
        th += h[i] * (double)(i % 13);
    }
    printf("doitgen n=%d a=%.9e heat=%.9e\n", n, ta, th);
    return 0;
}
