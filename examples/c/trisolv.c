/* trisolv.c - triangular solves and Cholesky (PolyBench's trisolv,
 * cholesky and trmm style) on single-precision and double matrices.
 * Exercises: loops with bounds from an outer index, reductions into a
 * scalar, float arithmetic, the lower triangle walked row and column.
 * Usage: trisolv [n] [reps]   (defaults 200, 4) */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200;
    int reps = argc > 2 ? atoi(argv[2]) : 4;
    if (n < 1)
        return 2;
    float *l = malloc(sizeof(float) * n * n), *x = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    double *a = malloc(sizeof(double) * n * n), *c = malloc(sizeof(double) * n * n);
    if (!l || !x || !b || !a || !c)
        return 2;
    float fsum = 0;
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++) {
            b[i] = (float)(i + r);
            for (int j = 0; j <= i; j++)
                l[i * n + j] = (float)(i + n - j + 1) * 2 / n;
        }
        for (int i = 0; i < n; i++) {
            float s = b[i];
            for (int j = 0; j < i; j++)
                s -= l[i * n + j] * x[j];
            x[i] = s / l[i * n + i];
        }
        for (int i = 0; i < n; i++)
            fsum += x[i] / (float)(i + 1);
    }
    /* A symmetric positive definite matrix: a = m m^T + n I. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            c[i * n + j] = (double)((i + j) % n) / n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int k = 0; k < n; k++)
                s += c[i * n + k] * c[j * n + k];
            a[i * n + j] = a[j * n + i] = s + (i == j ? n : 0);
        }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++) {
            for (int k = 0; k < j; k++)
                a[i * n + j] -= a[i * n + k] * a[j * n + k];
            a[i * n + j] /= a[j * n + j];
        }
        for (int k = 0; k < i; k++)
            a[i * n + i] -= a[i * n + k] * a[i * n + k];
        a[i * n + i] = sqrt(a[i * n + i]);
    }
    double dsum = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++)
            dsum += a[i * n + j] * ((i ^ j) & 7);
    printf("trisolv n=%d float=%.4e cholesky=%.9e\n", n, (double)fsum, dsum);
    return 0;
}
