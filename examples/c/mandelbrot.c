/* mandelbrot.c: exercises double-precision loops with data-dependent
 * iteration counts, early loop exits, char buffers and putchar/fputs output.
 * Renders a 120x60 ASCII Mandelbrot set and prints the number of points
 * that stay bounded (inside the set). */
#include <stdio.h>
#include <stdint.h>

#define W 120
#define H 60
#define MAXITER 500

int main(void) {
    static const char shades[] = " .:-=+*%#";
    const int nshades = (int)(sizeof shades - 1) - 1; /* last is '#' for inside */
    char line[W + 2];
    int inside = 0;
    uint64_t total_iters = 0;
    int x, y;

    for (y = 0; y < H; y++) {
        double ci = -1.2 + 2.4 * (double)y / (double)(H - 1);
        for (x = 0; x < W; x++) {
            double cr = -2.2 + 3.2 * (double)x / (double)(W - 1);
            double zr = 0.0, zi = 0.0, zr2 = 0.0, zi2 = 0.0;
            int it = 0;
            while (it < MAXITER && zr2 + zi2 <= 4.0) {
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                zr2 = zr * zr;
                zi2 = zi * zi;
                it++;
            }
            total_iters += (uint64_t)it;
            char ch;
            if (it == MAXITER) {
                inside++;
                ch = '#';
            } else {
                ch = shades[it % nshades];
            }
            line[x] = ch;
        }
        /* trim trailing spaces so output is tidy */
        int end = W;
        while (end > 0 && line[end - 1] == ' ') end--;
        line[end] = '\n';
        line[end + 1] = '\0';
        fputs(line, stdout);
    }
    printf("inside: %d of %d\n", inside, W * H);
    printf("total iterations: %llu\n", (unsigned long long)total_iters);
    return 0;
}
