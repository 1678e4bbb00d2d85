/* strings.c - string processing.
 * Exercises: building a large text with snprintf/memcpy into a growing
 * buffer, manual tokenizing with ctype (isalpha/tolower/toupper), strtok
 * line splitting, strstr phrase search, strcmp/strncmp/strchr/strrchr/
 * strspn/strcspn/memmove, a word-frequency table, qsort with a total-order
 * comparator (count descending, then name), word wrapping, and snprintf
 * with width/precision/truncation. Deterministic xorshift PRNG (no rand()).
 * Usage: strings [num_words]   (default 150000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <ctype.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t xorshift64(void) {
    uint64_t x = rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng = x;
    return x;
}

static uint32_t rand_below(uint32_t n) { return (uint32_t)(xorshift64() % n); }

static const char *const VOCAB[] = {
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
    "a", "of", "and", "to", "in", "is", "it", "that",
    "wasm", "module", "memory", "stack", "table", "global", "import", "export",
    "function", "call", "return", "branch", "loop", "block", "trap", "fuel",
    "page", "guard", "arena", "sandbox", "host", "guest", "byte", "word",
    "river", "mountain", "cloud", "silver", "orange", "violet", "ember", "frost",
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    "iota", "kappa", "lambda", "mu",
};
#define NVOCAB ((uint32_t)(sizeof(VOCAB) / sizeof(VOCAB[0])))

/* ---- growable text buffer ---- */
typedef struct {
    char *data;
    size_t len, cap;
} sbuf;

static void sb_reserve(sbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra + 1)
        nc *= 2;
    char *p = (char *)realloc(b->data, nc);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    b->data = p;
    b->cap = nc;
}

static void sb_append(sbuf *b, const char *s, size_t n) {
    sb_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* ---- word frequency table (chained hash) ---- */
typedef struct wnode {
    char *word;
    uint32_t count;
    struct wnode *next;
} wnode;

#define NBUCKETS 1024u

static uint32_t hash_str(const char *s) {
    uint32_t h = 5381;
    while (*s)
        h = h * 33u + (uint8_t)*s++;
    return h;
}

static wnode *buckets[NBUCKETS];
static uint32_t nwords_distinct;

static void count_word(const char *w) {
    uint32_t b = hash_str(w) % NBUCKETS;
    for (wnode *n = buckets[b]; n; n = n->next) {
        if (strcmp(n->word, w) == 0) {
            n->count++;
            return;
        }
    }
    wnode *n = (wnode *)malloc(sizeof(wnode));
    size_t len = strlen(w);
    n->word = (char *)malloc(len + 1);
    if (n == NULL || n->word == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(n->word, w, len + 1);
    n->count = 1;
    n->next = buckets[b];
    buckets[b] = n;
    nwords_distinct++;
}

typedef struct {
    const char *word;
    uint32_t count;
} wc;

static int cmp_wc(const void *a, const void *b) {
    const wc *x = (const wc *)a;
    const wc *y = (const wc *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word); /* words are unique: total order */
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Non-overlapping occurrences of needle in hay, via strstr. */
static uint32_t count_occurrences(const char *hay, const char *needle) {
    uint32_t n = 0;
    size_t nl = strlen(needle);
    const char *p = hay;
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += nl;
    }
    return n;
}

static void reverse_in_place(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n / 2; i++) {
        char t = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = t;
    }
}

static void caesar(char *s, int shift) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (islower(c))
            *s = (char)('a' + (c - 'a' + shift + 26) % 26);
        else if (isupper(c))
            *s = (char)('A' + (c - 'A' + shift + 26) % 26);
    }
}

int main(int argc, char **argv) {
    long target_words = 150000;
    if (argc > 1)
        target_words = atol(argv[1]);
    if (target_words < 1 || target_words > 10000000) {
        fprintf(stderr, "usage: strings [num_words 1..10000000]\n");
        return 1;
    }

    /* 1. Build the text: sentences of 4..15 words, skewed word choice. */
    sbuf text = {0};
    long words = 0;
    uint32_t sentences = 0;
    char tmp[64];
    while (words < target_words) {
        uint32_t len = 4 + rand_below(12);
        for (uint32_t i = 0; i < len && words < target_words; i++, words++) {
            uint32_t a = rand_below(NVOCAB), b = rand_below(NVOCAB);
            const char *w = VOCAB[a < b ? a : b]; /* favour low indices */
            int n;
            if (i == 0) {
                n = snprintf(tmp, sizeof tmp, "%s", w);
                tmp[0] = (char)toupper((unsigned char)tmp[0]);
            } else {
                n = snprintf(tmp, sizeof tmp, " %s", w);
            }
            if (i + 1 < len && rand_below(9) == 0)
                tmp[n++] = ',', tmp[n] = '\0';
            sb_append(&text, tmp, (size_t)n);
        }
        static const char ENDS[] = ".!?.";
        tmp[0] = ENDS[rand_below(4)];
        tmp[1] = '\n';
        sb_append(&text, tmp, 2);
        sentences++;
    }
    printf("text: %lu bytes, %ld words, %u sentences\n", (unsigned long)text.len, words,
           (unsigned)sentences);

    /* 2. strstr phrase counts (case sensitive). */
    static const char *const PHRASES[] = {"the quick", "lazy dog", "wasm module",
                                          "The", "alpha beta gamma", "fox, "};
    for (size_t i = 0; i < sizeof PHRASES / sizeof PHRASES[0]; i++)
        printf("phrase \"%s\": %u\n", PHRASES[i],
               (unsigned)count_occurrences(text.data, PHRASES[i]));

    /* 3. Manual tokenizing: lowercase alphabetic runs, count frequencies. */
    char word[64];
    size_t wl = 0;
    uint32_t tokens = 0;
    for (size_t i = 0; i <= text.len; i++) {
        unsigned char c = (unsigned char)text.data[i];
        if (c != '\0' && isalpha(c)) {
            if (wl + 1 < sizeof word)
                word[wl++] = (char)tolower(c);
        } else if (wl > 0) {
            word[wl] = '\0';
            count_word(word);
            tokens++;
            wl = 0;
        }
    }
    printf("tokens: %u, distinct: %u\n", (unsigned)tokens, (unsigned)nwords_distinct);

    wc *arr = (wc *)malloc(nwords_distinct * sizeof(wc));
    uint32_t k = 0;
    for (uint32_t b = 0; b < NBUCKETS; b++)
        for (wnode *n = buckets[b]; n; n = n->next) {
            arr[k].word = n->word;
            arr[k].count = n->count;
            k++;
        }
    qsort(arr, k, sizeof(wc), cmp_wc);
    printf("top 20 words:\n");
    for (uint32_t i = 0; i < k && i < 20; i++) {
        char line[80];
        /* per-mille share, printed with integer math */
        uint32_t pm = (uint32_t)(((uint64_t)arr[i].count * 1000u + tokens / 2) / tokens);
        snprintf(line, sizeof line, "%2u. %-10s %7u  %2u.%u%%", (unsigned)(i + 1),
                 arr[i].word, (unsigned)arr[i].count, (unsigned)(pm / 10),
                 (unsigned)(pm % 10));
        puts(line);
    }
    printf("least common: %s (%u)\n", arr[k - 1].word, (unsigned)arr[k - 1].count);

    /* 4. strtok over a copy: split into lines, measure them. */
    char *copy = (char *)malloc(text.len + 1);
    memcpy(copy, text.data, text.len + 1);
    uint32_t lines = 0, longest = 0, longest_idx = 0, commas = 0, questions = 0;
    uint64_t line_hash = 1469598103934665603ull;
    char first_long[256] = "";
    for (char *ln = strtok(copy, "\n"); ln != NULL; ln = strtok(NULL, "\n")) {
        size_t L = strlen(ln);
        if (L > longest) {
            longest = (uint32_t)L;
            longest_idx = lines;
            snprintf(first_long, sizeof first_long, "%s", ln);
        }
        for (const char *c = strchr(ln, ','); c; c = strchr(c + 1, ','))
            commas++;
        const char *last = strrchr(ln, '?');
        if (last != NULL && last[1] == '\0')
            questions++;
        /* hash the span of the first word (strcspn) */
        size_t fw = strcspn(ln, " ,.!?");
        for (size_t i = 0; i < fw; i++) {
            line_hash ^= (uint8_t)ln[i];
            line_hash *= 1099511628211ull;
        }
        lines++;
    }
    printf("lines: %u, commas: %u, questions: %u, first-word hash: %016llx\n",
           (unsigned)lines, (unsigned)commas, (unsigned)questions,
           (unsigned long long)line_hash);
    printf("longest line #%u (%u chars): %.40s...\n", (unsigned)longest_idx,
           (unsigned)longest, first_long);

    /* 5. Word wrap the first ~400 characters at 48 columns. */
    printf("wrapped:\n");
    {
        char chunk[401];
        size_t n = text.len < 400 ? text.len : 400;
        memcpy(chunk, text.data, n);
        chunk[n] = '\0';
        for (char *p = chunk; *p; p++)
            if (*p == '\n')
                *p = ' ';
        char *p = chunk;
        int out_lines = 0;
        while (*p && out_lines < 8) {
            p += strspn(p, " ");
            size_t rem = strlen(p);
            if (rem == 0)
                break;
            size_t cut = rem;
            if (rem > 48) {
                cut = 48;
                while (cut > 0 && p[cut] != ' ')
                    cut--;
                if (cut == 0)
                    cut = 48;
            }
            printf("  |%-48.*s|\n", (int)cut, p);
            p += cut;
            out_lines++;
        }
    }

    /* 6. Sorted distinct words, and some small string utilities. */
    const char **names = (const char **)malloc(k * sizeof(char *));
    for (uint32_t i = 0; i < k; i++)
        names[i] = arr[i].word;
    qsort(names, k, sizeof(char *), cmp_str);
    printf("alphabetical: first %s, last %s\n", names[0], names[k - 1]);
    uint32_t shared_prefix = 0;
    for (uint32_t i = 1; i < k; i++)
        if (strncmp(names[i - 1], names[i], 2) == 0)
            shared_prefix++;
    printf("adjacent pairs sharing a 2-char prefix: %u\n", (unsigned)shared_prefix);

    char s[64];
    snprintf(s, sizeof s, "%s-%s-%s", names[0], names[k / 2], names[k - 1]);
    printf("joined: %s\n", s);
    reverse_in_place(s);
    printf("reversed: %s\n", s);
    caesar(s, 3);
    printf("caesar+3: %s\n", s);
    caesar(s, -3);
    reverse_in_place(s);
    printf("round trip: %s\n", s);
    memmove(s + 2, s, strlen(s) + 1);
    s[0] = '[';
    s[1] = ' ';
    printf("memmove: %s\n", s);

    char small[12];
    int want = snprintf(small, sizeof small, "%s/%s/%05u", names[k - 1], names[k / 2],
                        (unsigned)tokens);
    printf("truncated snprintf: \"%s\" (wanted %d)\n", small, want);
    printf("padded: [%8s] [%-8s] [%.3s] [%+d] [%x] [%o] [%c]\n", "right", "left",
           "truncate", 17, 48879u, 8u, 'Z');

    free(names);
    free(copy);
    free(arr);
    for (uint32_t b = 0; b < NBUCKETS; b++) {
        wnode *n = buckets[b];
        while (n) {
            wnode *next = n->next;
            free(n->word);
            free(n);
            n = next;
        }
    }
    free(text.data);
    return 0;
}
