/* hello.c - the smallest useful C program: prints a greeting and exits.
 * What it measures in the benchmark is start-up: compiling a module with
 * wasi-libc's printf, instantiating it and running almost nothing. */
#include <stdio.h>

int main(void) {
    printf("Hello, world!\n");
    return 0;
}
