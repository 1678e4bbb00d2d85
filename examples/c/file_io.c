/*
 * file_io.c -- exercises WASI filesystem calls through stdio and POSIX:
 * mkdir, fopen/fprintf/fwrite/fclose, fread/fgets/fseek/ftell, append and
 * "r+" update modes, open/write/lseek/read/fstat/close, rename, opendir/
 * readdir/closedir (names sorted before printing), stat (sizes and types
 * only), unlink, rmdir, and errno for a few expected failures (compared
 * symbolically, never printed as text).
 *
 * Usage: file_io DIR    (DIR must exist and be writable; a subdirectory
 *                        "work" is created in it and removed again)
 * Exit status: 0 on success, 1 on any failure (message on stderr).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *base;

static void fail(const char *what)
{
    int e = errno;
    fprintf(stderr, "file_io: FAILED: %s (errno %d: %s)\n", what, e, strerror(e));
    exit(1);
}

#define CHECK(cond, what) do { if (!(cond)) fail(what); } while (0)

/* Builds base + "/" + rel into a static rotating buffer. */
static const char *path(const char *rel)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ & 3];
    int n = snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
    if (n < 0 || (size_t)n >= sizeof bufs[0]) {
        fprintf(stderr, "file_io: path too long\n");
        exit(1);
    }
    return b;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists a directory (relative to base), sorted, with types and sizes from stat. */
static void list_dir(const char *rel)
{
    char *names[64];
    int count = 0;
    DIR *d = opendir(path(rel));
    CHECK(d != NULL, "opendir");
    struct dirent *ent;
    errno = 0;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        CHECK(count < 64, "too many entries");
        names[count] = strdup(ent->d_name);
        CHECK(names[count] != NULL, "strdup");
        count++;
    }
    CHECK(errno == 0, "readdir");
    CHECK(closedir(d) == 0, "closedir");
    qsort(names, count, sizeof names[0], cmp_str);
    printf("listing %s: %d entries\n", rel, count);
    for (int i = 0; i < count; i++) {
        char rp[512];
        snprintf(rp, sizeof rp, "%s/%s", rel, names[i]);
        struct stat st;
        CHECK(stat(path(rp), &st) == 0, "stat listed entry");
        if (S_ISDIR(st.st_mode))
            printf("  %s/ (directory)\n", names[i]);
        else if (S_ISREG(st.st_mode))
            printf("  %s (file, %lld bytes)\n", names[i], (long long)st.st_size);
        else
            printf("  %s (other)\n", names[i]);
        free(names[i]);
    }
}

static long file_size(const char *rel)
{
    struct stat st;
    CHECK(stat(path(rel), &st) == 0, "stat");
    CHECK(S_ISREG(st.st_mode), "stat: not a regular file");
    return (long)st.st_size;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: file_io DIR\n");
        return 1;
    }
    base = argv[1];

    /* 1. mkdir */
    CHECK(mkdir(path("work"), 0755) == 0, "mkdir work");
    printf("step 1: created directory work\n");
    errno = 0;
    CHECK(mkdir(path("work"), 0755) != 0 && errno == EEXIST, "mkdir work again should fail with EEXIST");
    printf("step 1: mkdir work again failed with EEXIST\n");
    CHECK(mkdir(path("work/nested"), 0700) == 0, "mkdir work/nested");
    printf("step 1: created directory work/nested\n");

    /* 2. text file with fprintf */
    FILE *f = fopen(path("work/text.txt"), "w");
    CHECK(f != NULL, "fopen text.txt w");
    for (int i = 1; i <= 10; i++)
        CHECK(fprintf(f, "line %d: value=%d square=%d\n", i, i * 7, i * i) > 0, "fprintf");
    long pos = ftell(f);
    CHECK(pos >= 0, "ftell text.txt");
    CHECK(fclose(f) == 0, "fclose text.txt");
    printf("step 2: wrote text.txt with fprintf, ftell=%ld, size=%ld\n", pos, file_size("work/text.txt"));

    /* 3. binary file with fwrite */
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    uint32_t words[64];
    uint32_t x = 2463534242u;
    for (int i = 0; i < 64; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        words[i] = x;
    }
    f = fopen(path("work/data.bin"), "wb");
    CHECK(f != NULL, "fopen data.bin wb");
    CHECK(fwrite(bytes, 1, sizeof bytes, f) == sizeof bytes, "fwrite bytes");
    CHECK(fwrite(words, sizeof words[0], 64, f) == 64, "fwrite words");
    CHECK(fclose(f) == 0, "fclose data.bin");
    printf("step 3: wrote data.bin with fwrite, size=%ld\n", file_size("work/data.bin"));

    /* 3b. empty file and a file inside the nested directory */
    f = fopen(path("work/empty.txt"), "w");
    CHECK(f != NULL, "fopen empty.txt");
    CHECK(fclose(f) == 0, "fclose empty.txt");
    f = fopen(path("work/nested/deep.txt"), "w");
    CHECK(f != NULL, "fopen nested/deep.txt");
    CHECK(fputs("deep file\n", f) >= 0, "fputs deep.txt");
    CHECK(fclose(f) == 0, "fclose deep.txt");
    printf("step 3: wrote empty.txt (size=%ld) and nested/deep.txt (size=%ld)\n",
           file_size("work/empty.txt"), file_size("work/nested/deep.txt"));

    /* 4. read text back with fgets */
    f = fopen(path("work/text.txt"), "r");
    CHECK(f != NULL, "fopen text.txt r");
    char line[256];
    int nlines = 0;
    printf("step 4: reading text.txt with fgets\n");
    while (fgets(line, sizeof line, f) != NULL) {
        nlines++;
        if (nlines <= 3 || nlines == 10)
            printf("  got: %s", line);
    }
    CHECK(!ferror(f), "fgets error");
    CHECK(feof(f), "fgets: not at EOF");
    CHECK(fclose(f) == 0, "fclose text.txt r");
    printf("step 4: read %d lines\n", nlines);

    /* 5. read binary back with fseek/ftell/fread */
    f = fopen(path("work/data.bin"), "rb");
    CHECK(f != NULL, "fopen data.bin rb");
    CHECK(fseek(f, 0, SEEK_END) == 0, "fseek end");
    long size = ftell(f);
    printf("step 5: data.bin size via fseek/ftell: %ld\n", size);
    CHECK(fseek(f, 100, SEEK_SET) == 0, "fseek 100");
    unsigned char four[4];
    CHECK(fread(four, 1, 4, f) == 4, "fread at 100");
    printf("step 5: bytes at 100: %u %u %u %u, ftell=%ld\n", four[0], four[1], four[2], four[3], ftell(f));
    CHECK(fseek(f, 50, SEEK_CUR) == 0, "fseek cur");
    CHECK(fread(four, 1, 1, f) == 1, "fread at 154");
    printf("step 5: byte at 154: %u\n", four[0]);
    CHECK(fseek(f, -4, SEEK_END) == 0, "fseek -4 end");
    uint32_t last;
    CHECK(fread(&last, 4, 1, f) == 1, "fread last word");
    printf("step 5: last word: %u (expected %u)\n", (unsigned)last, (unsigned)words[63]);
    CHECK(fread(four, 1, 1, f) == 0 && feof(f), "read past end should hit EOF");
    rewind(f);
    unsigned char all[1024];
    size_t got = fread(all, 1, sizeof all, f);
    uint32_t sum = 0;
    for (size_t i = 0; i < got; i++)
        sum = sum * 31 + all[i];
    CHECK(got == 256 + 64 * 4, "fread whole file size");
    CHECK(memcmp(all, bytes, 256) == 0 && memcmp(all + 256, words, sizeof words) == 0,
          "data.bin content mismatch");
    CHECK(fclose(f) == 0, "fclose data.bin r");
    printf("step 5: read back %zu bytes, content matches, hash=%u\n", got, (unsigned)sum);

    /* 6. append, then update in place with r+ */
    f = fopen(path("work/text.txt"), "a");
    CHECK(f != NULL, "fopen text.txt a");
    CHECK(fputs("appended line\n", f) >= 0, "fputs append");
    CHECK(fclose(f) == 0, "fclose append");
    printf("step 6: appended to text.txt, size=%ld\n", file_size("work/text.txt"));
    f = fopen(path("work/text.txt"), "r+");
    CHECK(f != NULL, "fopen text.txt r+");
    CHECK(fseek(f, 0, SEEK_SET) == 0, "fseek r+");
    CHECK(fputs("LINE", f) >= 0, "fputs r+");
    CHECK(fflush(f) == 0, "fflush r+");
    CHECK(fseek(f, -14, SEEK_END) == 0, "fseek r+ end");
    CHECK(fgets(line, sizeof line, f) != NULL, "fgets r+");
    printf("step 6: last line now: %s", line);
    rewind(f);
    CHECK(fgets(line, sizeof line, f) != NULL, "fgets r+ first");
    printf("step 6: first line now: %s", line);
    CHECK(fclose(f) == 0, "fclose r+");
    f = fopen(path("work/text.txt"), "r");
    CHECK(f != NULL, "fopen text.txt reread");
    nlines = 0;
    while (fgets(line, sizeof line, f) != NULL)
        nlines++;
    CHECK(fclose(f) == 0, "fclose reread");
    printf("step 6: text.txt now has %d lines\n", nlines);

    /* 7. POSIX open/write/lseek/read/fstat */
    int fd = open(path("work/raw.dat"), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0, "open raw.dat");
    const char *msg = "0123456789abcdefghij";
    CHECK(write(fd, msg, 20) == 20, "write raw.dat");
    CHECK(lseek(fd, 5, SEEK_SET) == 5, "lseek raw.dat");
    CHECK(write(fd, "XY", 2) == 2, "write raw.dat at 5");
    struct stat st;
    CHECK(fstat(fd, &st) == 0, "fstat raw.dat");
    printf("step 7: raw.dat written with write(), fstat size=%lld\n", (long long)st.st_size);
    CHECK(close(fd) == 0, "close raw.dat");
    fd = open(path("work/raw.dat"), O_RDONLY);
    CHECK(fd >= 0, "open raw.dat r");
    char rbuf[32];
    ssize_t r = read(fd, rbuf, sizeof rbuf);
    CHECK(r == 20, "read raw.dat");
    printf("step 7: read %zd bytes: %.*s\n", r, (int)r, rbuf);
    CHECK(lseek(fd, -3, SEEK_END) == 17, "lseek -3 end");
    r = read(fd, rbuf, sizeof rbuf);
    CHECK(r == 3, "read tail");
    printf("step 7: tail: %.*s\n", (int)r, rbuf);
    CHECK(read(fd, rbuf, sizeof rbuf) == 0, "read at EOF should return 0");
    CHECK(close(fd) == 0, "close raw.dat r");

    /* 8. rename */
    CHECK(rename(path("work/text.txt"), path("work/renamed.txt")) == 0, "rename");
    errno = 0;
    f = fopen(path("work/text.txt"), "r");
    CHECK(f == NULL && errno == ENOENT, "old name should be gone with ENOENT");
    CHECK(access(path("work/renamed.txt"), F_OK) == 0, "access renamed.txt");
    printf("step 8: renamed text.txt to renamed.txt (old name gone, ENOENT), size=%ld\n",
           file_size("work/renamed.txt"));

    /* 9. list */
    list_dir("work");
    list_dir("work/nested");

    /* 10. stat */
    CHECK(stat(path("work"), &st) == 0 && S_ISDIR(st.st_mode), "stat work");
    printf("step 10: work is a directory\n");
    errno = 0;
    CHECK(stat(path("work/missing"), &st) != 0 && errno == ENOENT, "stat missing should fail with ENOENT");
    printf("step 10: stat work/missing failed with ENOENT\n");
    errno = 0;
    CHECK(rmdir(path("work/nested")) != 0 && errno == ENOTEMPTY, "rmdir non-empty should fail with ENOTEMPTY");
    printf("step 10: rmdir work/nested failed with ENOTEMPTY\n");

    /* 11. unlink and rmdir */
    const char *files[] = { "work/renamed.txt", "work/data.bin", "work/empty.txt",
                            "work/raw.dat", "work/nested/deep.txt" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        CHECK(unlink(path(files[i])) == 0, "unlink");
        printf("step 11: unlinked %s\n", files[i]);
    }
    errno = 0;
    CHECK(unlink(path("work/renamed.txt")) != 0 && errno == ENOENT, "unlink twice should fail with ENOENT");
    printf("step 11: unlink again failed with ENOENT\n");
    CHECK(rmdir(path("work/nested")) == 0, "rmdir nested");
    printf("step 11: removed work/nested\n");
    list_dir("work");
    CHECK(rmdir(path("work")) == 0, "rmdir work");
    printf("step 11: removed work\n");
    errno = 0;
    DIR *d = opendir(path("work"));
    CHECK(d == NULL && errno == ENOENT, "opendir removed dir should fail with ENOENT");
    printf("step 11: opendir work failed with ENOENT\n");
    printf("done\n");
    return 0;
}
