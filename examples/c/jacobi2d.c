/* jacobi2d.c - 2-D stencils (PolyBench's jacobi-2d and seidel-2d style).
 * Exercises: nested loops over row-major double arrays with +-1 row and
 * column neighbours, in-place Gauss-Seidel sweeps, a fixed-point copy.
 * Usage: jacobi2d [n] [steps]   (defaults 200, 20) */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200;
    int steps = argc > 2 ? atoi(argv[2]) : 20;
    if (n < 3)
        return 2;
    double *a = malloc(sizeof(double) * n * n);
    double *b = malloc(sizeof(double) * n * n);
    int *q = malloc(sizeof(int) * n * n);
    int *r = malloc(sizeof(int) * n * n);
    if (!a || !b || !q || !r)
        return 2;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            a[i * n + j] = ((double)i * (j + 2) + 2) / n;
            b[i * n + j] = ((double)i * (j + 3) + 3) / n;
            q[i * n + j] = (i * 37 + j * 11) % 1024;
        }
    for (int t = 0; t < steps; t++) {
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++)
                b[i * n + j] = 0.2 * (a[i * n + j] + a[i * n + j - 1] + a[i * n + j + 1] +
                                      a[(i + 1) * n + j] + a[(i - 1) * n + j]);
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++)
                a[i * n + j] = 0.2 * (b[i * n + j] + b[i * n + j - 1] + b[i * n + j + 1] +
                                      b[(i + 1) * n + j] + b[(i - 1) * n + j]);
    }
    for (int t = 0; t < steps / 2; t++)
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++)
                a[i * n + j] = (a[(i - 1) * n + j - 1] + a[(i - 1) * n + j] + a[(i - 1) * n + j + 1] +
                                a[i * n + j - 1] + a[i * n + j] + a[i * n + j + 1] +
                                a[(i + 1) * n + j - 1] + a[(i + 1) * n + j] + a[(i + 1) * n + j + 1]) /
                               9.0;
    /* An integer 5-point smoothing, as an image filter would. */
    for (int t = 0; t < steps; t++) {
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++)
                r[i * n + j] = (4 * q[i * n + j] + q[i * n + j - 1] + q[i * n + j + 1] +
                                q[(i - 1) * n + j] + q[(i + 1) * n + j] + 4) >> 3;
        int *s = q;
        q = r;
        r = s;
    }
    double sum = 0;
    long isum = 0;
    for (int i = 0; i < n * n; i++) {
        sum += a[i] * (i % 7 + 1);
        isum += (long)q[i] * (i % 5 + 1);
    }
    printf("jacobi2d n=%d steps=%d sum=%.9e isum=%ld\n", n, steps, sum, isum);
    return 0;
}
