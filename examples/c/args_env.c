/*
 * args_env.c -- exercises WASI argument and environment passing:
 * argc, argv[1..] (argv[0] is skipped: it differs between native and wasm),
 * getenv() of CARAT_A and CARAT_B, and the exit status of main's return.
 *
 * Usage: args_env [ARGS...]   (env: CARAT_A, CARAT_B, both optional)
 * Exit status: the number of arguments (argc - 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void show_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL)
        printf("%s=(unset)\n", name);
    else
        printf("%s=[%s] (%zu bytes)\n", name, v, strlen(v));
}

int main(int argc, char **argv)
{
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=[%s] (%zu bytes)\n", i, argv[i], strlen(argv[i]));
    if (argv[argc] != NULL) {
        printf("argv[argc] is not NULL\n");
        return 100;
    }
    show_env("CARAT_A");
    show_env("CARAT_B");
    return argc - 1;
}
