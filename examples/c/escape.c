/*
 * escape.c -- exercises the WASI sandbox boundary: tries to reach files
 * outside the directory it is given, through "..", absolute paths, symlinks
 * (absolute, "../", ".", nested relative, a loop), openat() on a directory
 * fd, a hard link, rename and mkdir. For each attempt it prints exactly
 * "attempt N: refused" or "attempt N: OPENED" on stdout (a description and
 * any side notes go to stderr).
 *
 * NOT compared with a native run: natively nothing is sandboxed and many
 * attempts succeed. Under the VM (e.g. --dir HOST::/data, argument /data)
 * every attempt must print "refused".
 *
 * Attempts:
 *   1  fopen(DIR/../outside.txt, "w")
 *   2  fopen("/etc/passwd", "r")
 *   3  open(DIR/../../etc/hostname, O_RDONLY)
 *   4  symlink DIR/abs_link -> /etc/passwd; fopen(DIR/abs_link, "r")
 *   5  symlink DIR/up_link -> ../; opendir(DIR/up_link)
 *   6  fopen(DIR/up_link/outside2.txt, "w")
 *   7  open(DIR/up_link/../etc/hostname, O_RDONLY)
 *   8  opendir(DIR/..)
 *   9  mkdir DIR/sub, symlink DIR/sub/rel_link -> ../../../../../../etc/passwd;
 *      fopen it
 *   10 symlink DIR/dot_link -> .; open(DIR/dot_link/../../etc/hostname)
 *   11 symlink DIR/loop_link -> loop_link; fopen(DIR/loop_link, "r")
 *   12 dirfd = open(DIR, O_DIRECTORY); openat(dirfd, "../../etc/passwd")
 *   13 openat(dirfd, "..", O_DIRECTORY)
 *   14 openat(dirfd, "up_link/outside3.txt", O_CREAT|O_WRONLY)
 *   15 fopen("../../../../../../etc/passwd", "r") (relative to the cwd)
 *   16 link(DIR/../../etc/passwd, DIR/hard_link); fopen(DIR/hard_link, "r")
 *   17 rename(DIR/inside.txt, DIR/../moved.txt)
 *   18 mkdir(DIR/../escape_dir)
 *
 * Everything it creates inside DIR is removed at the end (and, natively,
 * whatever it managed to create outside).
 *
 * Usage: escape DIR    Exit status: 0 (1 only for a usage error).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *base;
static int attempt_no;

static const char *path(const char *rel)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ & 3];
    if (snprintf(b, sizeof bufs[0], "%s/%s", base, rel) >= (int)sizeof bufs[0]) {
        fprintf(stderr, "escape: path too long\n");
        exit(1);
    }
    return b;
}

static void report(const char *what, int opened)
{
    attempt_no++;
    printf("attempt %d: %s\n", attempt_no, opened ? "OPENED" : "refused");
    fflush(stdout);
    fprintf(stderr, "escape: attempt %d (%s): %s\n", attempt_no, what,
            opened ? "OPENED" : "refused");
}

/* fopen; reports; closes. */
static void try_fopen(const char *what, const char *p, const char *mode)
{
    FILE *f = fopen(p, mode);
    report(what, f != NULL);
    if (f)
        fclose(f);
}

static void try_open(const char *what, const char *p, int flags)
{
    int fd = open(p, flags, 0644);
    report(what, fd >= 0);
    if (fd >= 0)
        close(fd);
}

static void try_opendir(const char *what, const char *p)
{
    DIR *d = opendir(p);
    report(what, d != NULL);
    if (d)
        closedir(d);
}

static void make_symlink(const char *target, const char *rel, int *made)
{
    *made = symlink(target, path(rel)) == 0;
    fprintf(stderr, "escape: note: symlink %s -> %s: %s\n", rel, target,
            *made ? "created" : "not created");
}

/* Copies a path() result into its own buffer, for paths kept until cleanup. */
static char *keep(const char *p)
{
    char *c = strdup(p);
    if (!c) {
        fprintf(stderr, "escape: out of memory\n");
        exit(1);
    }
    return c;
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: escape DIR\n");
        return 1;
    }
    base = argv[1];
    int made_abs = 0, made_up = 0, made_sub = 0, made_rel = 0, made_dot = 0, made_loop = 0;

    /* 1: write a file next to DIR. Use "a" if it already exists, so that a
     * native run never truncates someone else's file. */
    char *outside = keep(path("../outside.txt"));
    int outside_existed = exists(outside);
    FILE *f = fopen(outside, outside_existed ? "a" : "w");
    report("fopen DIR/../outside.txt for writing", f != NULL);
    int created_outside = f != NULL && !outside_existed;
    if (f)
        fclose(f);

    /* 2, 3 */
    try_fopen("fopen /etc/passwd", "/etc/passwd", "r");
    try_open("open DIR/../../etc/hostname", path("../../etc/hostname"), O_RDONLY);

    /* 4: absolute symlink */
    make_symlink("/etc/passwd", "abs_link", &made_abs);
    try_fopen("fopen DIR/abs_link (-> /etc/passwd)", path("abs_link"), "r");

    /* 5, 6, 7: symlink to the parent */
    make_symlink("../", "up_link", &made_up);
    try_opendir("opendir DIR/up_link (-> ../)", path("up_link"));
    char *outside2 = keep(path("up_link/outside2.txt"));
    int outside2_existed = exists(outside2);
    f = fopen(outside2, outside2_existed ? "a" : "w");
    report("fopen DIR/up_link/outside2.txt for writing", f != NULL);
    int created_outside2 = f != NULL && !outside2_existed;
    if (f)
        fclose(f);
    try_open("open DIR/up_link/../etc/hostname", path("up_link/../etc/hostname"), O_RDONLY);

    /* 8 */
    try_opendir("opendir DIR/..", path(".."));

    /* 9: nested relative symlink */
    made_sub = mkdir(path("sub"), 0755) == 0;
    if (!made_sub)
        fprintf(stderr, "escape: note: mkdir DIR/sub failed\n");
    make_symlink("../../../../../../etc/passwd", "sub/rel_link", &made_rel);
    try_fopen("fopen DIR/sub/rel_link (-> ../../../../../../etc/passwd)", path("sub/rel_link"), "r");

    /* 10: symlink to "." then climb */
    make_symlink(".", "dot_link", &made_dot);
    try_open("open DIR/dot_link/../../etc/hostname", path("dot_link/../../etc/hostname"), O_RDONLY);

    /* 11: symlink loop (must fail, not hang) */
    make_symlink("loop_link", "loop_link", &made_loop);
    try_fopen("fopen DIR/loop_link (-> itself)", path("loop_link"), "r");

    /* 12, 13, 14: openat relative to a directory fd */
    int dirfd = open(base, O_RDONLY | O_DIRECTORY);
    if (dirfd < 0)
        fprintf(stderr, "escape: note: open DIR as a directory failed\n");
    int fd = dirfd >= 0 ? openat(dirfd, "../../etc/passwd", O_RDONLY) : -1;
    report("openat(DIR fd, ../../etc/passwd)", fd >= 0);
    if (fd >= 0)
        close(fd);
    fd = dirfd >= 0 ? openat(dirfd, "..", O_RDONLY | O_DIRECTORY) : -1;
    report("openat(DIR fd, .., O_DIRECTORY)", fd >= 0);
    if (fd >= 0)
        close(fd);
    char *outside3 = keep(path("up_link/outside3.txt"));
    int outside3_existed = exists(outside3);
    fd = dirfd >= 0 ? openat(dirfd, "up_link/outside3.txt", O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
    report("openat(DIR fd, up_link/outside3.txt, O_CREAT)", fd >= 0);
    int created_outside3 = fd >= 0 && !outside3_existed;
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);

    /* 15: relative to the current directory */
    try_fopen("fopen ../../../../../../etc/passwd", "../../../../../../etc/passwd", "r");

    /* 16: hard link to a file outside */
    int linked = link(path("../../etc/passwd"), path("hard_link")) == 0;
    f = linked ? fopen(path("hard_link"), "r") : NULL;
    report("link DIR/../../etc/passwd to DIR/hard_link, fopen it", f != NULL);
    if (f)
        fclose(f);

    /* 17: move a file out of DIR */
    f = fopen(path("inside.txt"), "w");
    if (f) {
        fputs("inside\n", f);
        fclose(f);
    } else {
        fprintf(stderr, "escape: note: creating DIR/inside.txt failed\n");
    }
    char *moved = keep(path("../moved.txt"));
    int moved_existed = exists(moved);
    int renamed = !moved_existed && rename(path("inside.txt"), moved) == 0;
    report("rename DIR/inside.txt to DIR/../moved.txt", renamed);

    /* 18: create a directory next to DIR */
    char *edir = keep(path("../escape_dir"));
    int made_edir = !exists(edir) && mkdir(edir, 0755) == 0;
    report("mkdir DIR/../escape_dir", made_edir);

    /* Cleanup: inside DIR first, then whatever a native run created outside. */
    if (made_abs)
        unlink(path("abs_link"));
    if (created_outside2)
        unlink(outside2);
    if (created_outside3)
        unlink(outside3);
    if (made_up)
        unlink(path("up_link"));
    if (made_rel)
        unlink(path("sub/rel_link"));
    if (made_sub)
        rmdir(path("sub"));
    if (made_dot)
        unlink(path("dot_link"));
    if (made_loop)
        unlink(path("loop_link"));
    if (linked)
        unlink(path("hard_link"));
    if (renamed)
        unlink(moved);
    else
        unlink(path("inside.txt"));
    if (made_edir)
        rmdir(edir);
    if (created_outside)
        unlink(outside);
    return 0;
}
