/*
 * exit_code.c -- exercises process exit: exit() with a status parsed from
 * argv[1] (stdout must still be flushed by exit), and returning a status from
 * main when argv[1] is "abort-via-return" (status 42).
 *
 * Usage: exit_code N | exit_code abort-via-return
 * Exit status: N (use 0..255 for a portable result), 42 for
 * "abort-via-return", 2 when no argument is given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("no argument given\n");
        fprintf(stderr, "usage: exit_code N | abort-via-return\n");
        return 2;
    }
    if (strcmp(argv[1], "abort-via-return") == 0) {
        printf("returning 42 from main\n");
        return 42;
    }
    char *end;
    long n = strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0') {
        printf("not a number: [%s]\n", argv[1]);
        return 2;
    }
    /* Deliberately no trailing fflush: exit() must flush stdout. */
    printf("exiting with status %ld via exit()\n", n);
    exit((int)n);
    printf("unreachable\n");
    return 99;
}
