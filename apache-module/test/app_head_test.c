/*
 * app_head_test.c: ferry_app_head() against test/fixtures/protocol/app-heads.txt
 * (the same cases test/unit/exchange/app-heads.test.ts checks against the
 * core's leaseRequestHead()): each head byte-exact without the marker, and
 * with "X-Ferry-Pass: 1" as its last header; the buffer protocol (length
 * first, written only when it fits); the heads it refuses to build.
 *
 *   ./app_head_test <fixtures dir>
 *
 * Prints "ok - …" / "not ok - …" lines and "C tests: N passed, M failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ferry_app_head.h"

static int passed, failed;

static void result(const char *name, const char *what, int ok, const char *why)
{
    if (ok) {
        passed++;
        printf("ok - app-heads: %s: %s\n", name, what);
    }
    else {
        failed++;
        printf("not ok - app-heads: %s: %s (%s)\n", name, what, why);
    }
}

#define MAX_LINES 128
#define NFIELDS 11

typedef struct {
    char name[256];
    char *fields[NFIELDS];      /* method … pass, in field_names order */
    char *hdrs[2 * MAX_LINES];
    size_t nhdrs;               /* pairs */
    int chunked;
    char expect[16384];
    size_t expect_len;
} test_case_t;

static const char *const field_names[NFIELDS] = {
    "method", "uri", "proto", "remote_addr", "remote_port", "server_name",
    "server_port", "https", "has_body", "upgrade", "pass"
};

static void free_case(test_case_t *c)
{
    size_t i;

    for (i = 0; i < NFIELDS; i++) {
        free(c->fields[i]);
        c->fields[i] = NULL;
    }
    for (i = 0; i < 2 * c->nhdrs; i++) {
        free(c->hdrs[i]);
    }
    c->nhdrs = 0;
    c->expect_len = 0;
    c->chunked = 0;
}

static int field_int(const test_case_t *c, int i)
{
    return c->fields[i] ? atoi(c->fields[i]) : 0;
}

#define MARKER "X-Ferry-Pass: 1\r\n"
#define MARKER_LEN (sizeof(MARKER) - 1)

/* ferry_app_head(h, pass) is expect[0..len): the length first (nothing fits
 * in 0 or 8 bytes), then the bytes. */
static void check_head(test_case_t *c, const ferry_request_head_t *h, int pass,
                       const char *expect, size_t len, const char *what)
{
    char small[8], *buf;
    size_t need, got;
    int chunked = -1;
    char label[128];

    need = ferry_app_head(h, pass, NULL, 0, &chunked);
    got = ferry_app_head(h, pass, small, sizeof(small), &chunked);
    snprintf(label, sizeof(label), "%s: the length comes back when it does "
             "not fit", what);
    result(c->name, label, need == len && got == need, "wrong length");
    buf = malloc(need + 1);
    got = ferry_app_head(h, pass, buf, need, &chunked);
    snprintf(label, sizeof(label), "%s: byte-identical", what);
    result(c->name, label, got == len && memcmp(buf, expect, len) == 0,
           "bytes differ");
    if (got != len || memcmp(buf, expect, len) != 0) {
        fwrite(buf, 1, got < need ? got : need, stdout);
        printf("--- expected:\n");
        fwrite(expect, 1, len, stdout);
    }
    snprintf(label, sizeof(label), "%s: chunked as expected", what);
    result(c->name, label, chunked == c->chunked, "chunked differs");
    free(buf);
}

static void run_case(test_case_t *c)
{
    ferry_request_head_t h;
    char other[16384 + 32];
    size_t i;
    int missing = 0, pass;

    for (i = 0; i < NFIELDS; i++) {
        missing |= c->fields[i] == NULL;
    }
    if (missing || c->expect_len < 2) {
        result(c->name, "case is complete", 0,
               "a field or the expected head is missing");
        return;
    }
    memset(&h, 0, sizeof(h));
    h.version = 3;
    h.method = c->fields[0];
    h.uri = c->fields[1];
    h.proto = c->fields[2];
    h.remote_addr = c->fields[3];
    h.remote_port = field_int(c, 4);
    h.server_name = c->fields[5];
    h.server_port = field_int(c, 6);
    h.https = field_int(c, 7);
    h.has_body = field_int(c, 8);
    h.upgrade = field_int(c, 9);
    h.headers = (const char *const *)c->hdrs;
    h.nheaders = c->nhdrs;
    pass = field_int(c, 10);

    check_head(c, &h, pass, c->expect, c->expect_len,
               pass ? "with the marker" : "as the core builds it");
    /* The other way: the marker added (last) or taken away. */
    if (!pass) {
        memcpy(other, c->expect, c->expect_len - 2);
        memcpy(other + c->expect_len - 2, MARKER "\r\n", MARKER_LEN + 2);
        check_head(c, &h, 1, other, c->expect_len + MARKER_LEN,
                   "with the marker");
    }
    else if (c->expect_len >= MARKER_LEN + 2
             && memcmp(c->expect + c->expect_len - MARKER_LEN - 2, MARKER,
                       MARKER_LEN) == 0) {
        memcpy(other, c->expect, c->expect_len - MARKER_LEN - 2);
        memcpy(other + c->expect_len - MARKER_LEN - 2, "\r\n", 2);
        check_head(c, &h, 0, other, c->expect_len - MARKER_LEN,
                   "as the core builds it");
    }
    else {
        result(c->name, "a pass case ends with the marker", 0, "no marker");
    }
}

/* Strip the line end (LF, and a CR before it). */
static void chomp(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
}

/* The fixture's format: test/fixtures/protocol/app-heads.txt (its header
 * and docs: "<key> <value>" lines; "case <name>" … "end"). */
static int run_fixture(const char *path)
{
    FILE *f = fopen(path, "rb");
    char line[8192], *key, *value, *sp;
    test_case_t *c = calloc(1, sizeof(*c));
    int in_case = 0, cases = 0;
    size_t i, n;

    if (f == NULL) {
        result(path, "open", 0, "cannot open the fixture");
        free(c);
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        chomp(line);
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        key = line;
        sp = strchr(line, ' ');
        value = "";
        if (sp != NULL) {
            *sp = '\0';
            value = sp + 1;
        }
        if (strcmp(key, "case") == 0) {
            if (in_case) {
                result(c->name, "case ends with \"end\"", 0, "a new case began");
                free_case(c);
            }
            snprintf(c->name, sizeof(c->name), "%s", value);
            in_case = 1;
            continue;
        }
        if (!in_case) {
            result(path, "every line belongs to a case", 0, key);
            continue;
        }
        if (strcmp(key, "end") == 0) {
            memcpy(c->expect + c->expect_len, "\r\n", 2);
            c->expect_len += 2;
            run_case(c);
            free_case(c);
            in_case = 0;
            cases++;
            continue;
        }
        if (strcmp(key, "header") == 0) {
            char *colon = strchr(value, ':');

            if (colon == NULL || c->nhdrs == MAX_LINES) {
                result(c->name, "header lines are well formed", 0, value);
                continue;
            }
            *colon = '\0';
            c->hdrs[2 * c->nhdrs] = strdup(value);
            c->hdrs[2 * c->nhdrs + 1] = strdup(colon[1] == ' ' ? colon + 2
                                                                : colon + 1);
            c->nhdrs++;
            continue;
        }
        if (strcmp(key, "chunked") == 0) {
            c->chunked = atoi(value);
            continue;
        }
        if (strcmp(key, "head") == 0) {
            n = strlen(value);
            if (c->expect_len + n + 4 > sizeof(c->expect)) {
                result(c->name, "expected head fits the test", 0, "too long");
                continue;
            }
            memcpy(c->expect + c->expect_len, value, n);
            memcpy(c->expect + c->expect_len + n, "\r\n", 2);
            c->expect_len += n + 2;
            continue;
        }
        for (i = 0; i < NFIELDS; i++) {
            if (strcmp(key, field_names[i]) == 0) {
                free(c->fields[i]);
                c->fields[i] = strdup(value);
                break;
            }
        }
        if (i == NFIELDS) {
            result(c->name, "known key", 0, key);
        }
    }
    fclose(f);
    if (in_case) {
        result(c->name, "case ends with \"end\"", 0, "the fixture ends inside a case");
    }
    free_case(c);
    free(c);
    return cases;
}

/* Heads the core would not see byte for byte: the module takes the slow
 * path for them (ferry_app_head returns 0). */
static void test_refused(void)
{
    static const struct {
        const char *why, *method, *uri, *name, *value, *server;
    } cases[] = {
        { "a method that is not a token", "GE T", "/", "A", "b", "h" },
        { "an empty uri", "GET", "", "A", "b", "h" },
        { "a space in the uri", "GET", "/a b", "A", "b", "h" },
        { "a DEL in the uri", "GET", "/a\x7f", "A", "b", "h" },
        { "invalid UTF-8 in the uri", "GET", "/caf\xe9", "A", "b", "h" },
        { "a header name that is not a token", "GET", "/", "A B", "b", "h" },
        { "a CR in a value", "GET", "/", "A", "b\rc", "h" },
        { "a LF in a value", "GET", "/", "A", "b\nc", "h" },
        { "a lone continuation byte in a value", "GET", "/", "A", "\x80", "h" },
        { "an overlong NUL in a value", "GET", "/", "A", "\xc0\x80", "h" },
        { "a surrogate in a value", "GET", "/", "A", "\xed\xa0\x80", "h" },
        { "a code point over U+10FFFF", "GET", "/", "A", "\xf4\x90\x80\x80", "h" },
        { "a truncated sequence", "GET", "/", "A", "caf\xc3", "h" },
        { "a value starting with a byte order mark", "GET", "/", "A",
          "\xef\xbb\xbfx", "h" },
        { "a non-ASCII server name", "GET", "/", "A", "b", "h\xc3\xa9" },
    };
    ferry_request_head_t h;
    const char *hdrs[2];
    char buf[512];
    size_t i;
    int chunked = 7;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&h, 0, sizeof(h));
        hdrs[0] = cases[i].name;
        hdrs[1] = cases[i].value;
        h.method = cases[i].method;
        h.uri = cases[i].uri;
        h.headers = hdrs;
        h.nheaders = 1;
        h.server_name = cases[i].server;
        h.remote_addr = "127.0.0.1";
        result("refused", cases[i].why,
               ferry_app_head(&h, 1, buf, sizeof(buf), &chunked) == 0
               && chunked == 0, "built");
    }
    /* The valid neighbours of the UTF-8 edges are built. */
    {
        static const char *const fine[] = {
            "\xc2\x80", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
            "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "x\xef\xbb\xbf"
        };
        int ok = 1;

        for (i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
            memset(&h, 0, sizeof(h));
            hdrs[0] = "A";
            hdrs[1] = fine[i];
            h.method = "GET";
            h.uri = "/";
            h.headers = hdrs;
            h.nheaders = 1;
            ok &= ferry_app_head(&h, 0, buf, sizeof(buf), &chunked) > 0;
        }
        result("refused", "valid UTF-8 at each edge is built", ok, "refused");
    }
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../test/fixtures/protocol";
    char path[4096];
    int cases;

    snprintf(path, sizeof(path), "%s/app-heads.txt", dir);
    cases = run_fixture(path);
    result("fixture", "has at least 20 cases", cases >= 20, "too few cases");
    test_refused();
    printf("C tests: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
