/*
 * http_test.c: unit test of ferry_http_parse.c (the direct path's HTTP/1.1
 * response parsing and chunked decoding), without Apache.
 *
 *   http_test
 *
 * Prints "ok"/"not ok" lines and "C tests: N passed, M failed" last (the
 * Makefile adds the counts of all C tests); exits 1 on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ferry_http_parse.h"

static int passed, failed;

static void check(const char *what, int ok)
{
    if (ok) {
        passed++;
        printf("ok - http: %s\n", what);
    }
    else {
        failed++;
        printf("not ok - http: %s\n", what);
    }
}

static ferry_http_status parse(const char *s, ferry_http_head_t *h)
{
    return ferry_http_parse_head(s, strlen(s), h);
}

static int header_is(const ferry_http_head_t *h, int index, const char *name,
                     const char *value)
{
    size_t pos = 0, nl, vl;
    const char *n, *v;
    int i = 0;

    while (ferry_http_next_header(h, &pos, &n, &nl, &v, &vl)) {
        if (i++ == index) {
            return nl == strlen(name) && memcmp(n, name, nl) == 0
                   && vl == strlen(value) && memcmp(v, value, vl) == 0;
        }
    }
    return 0;
}

static int count_headers(const ferry_http_head_t *h)
{
    size_t pos = 0, nl, vl;
    const char *n, *v;
    int i = 0;

    while (ferry_http_next_header(h, &pos, &n, &nl, &v, &vl)) {
        i++;
    }
    return i;
}

static void test_heads(void)
{
    ferry_http_head_t h;
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     "Set-Cookie: a=1\r\nSet-Cookie:  b=2 \r\n"
                     "Content-Length: 5\r\n\r\nhello";
    const char *te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    char *big;
    size_t i;

    check("a complete head parses", parse(ok, &h) == FERRY_HTTP_OK
          && h.status == 200 && h.minor == 1 && h.reason_len == 2
          && memcmp(h.reason, "OK", 2) == 0 && h.content_length == 5
          && h.head_len == strlen(ok) - 5);
    check("headers walk in order, values trimmed, repeats kept",
          count_headers(&h) == 4 && header_is(&h, 0, "Content-Type", "text/plain")
          && header_is(&h, 1, "Set-Cookie", "a=1")
          && header_is(&h, 2, "Set-Cookie", "b=2")
          && header_is(&h, 3, "Content-Length", "5"));
    check("Content-Length framing, keep-alive",
          ferry_http_framing(&h, 0) == FERRY_BODY_LENGTH
          && ferry_http_keeps_alive(&h, FERRY_BODY_LENGTH));
    check("HEAD has no body whatever the headers",
          ferry_http_framing(&h, 1) == FERRY_BODY_NONE);

    for (i = 1; i < strlen(ok) - 5; i++) {
        if (ferry_http_parse_head(ok, i, &h) != FERRY_HTTP_NEED_MORE) {
            break;
        }
    }
    check("every prefix of a head needs more", i == strlen(ok) - 5);

    check("bare LF line ends", parse("HTTP/1.1 204 No Content\nX-A: 1\n\n", &h)
          == FERRY_HTTP_OK && h.status == 204 && header_is(&h, 0, "X-A", "1")
          && ferry_http_framing(&h, 0) == FERRY_BODY_NONE);
    check("304 has no body", parse("HTTP/1.1 304 Not Modified\r\n"
          "Content-Length: 10\r\n\r\n", &h) == FERRY_HTTP_OK
          && ferry_http_framing(&h, 0) == FERRY_BODY_NONE);
    check("status line without reason", parse("HTTP/1.1 599\r\n\r\n", &h)
          == FERRY_HTTP_OK && h.status == 599 && h.reason_len == 0);
    check("1xx has no body", parse("HTTP/1.1 100 Continue\r\n\r\n", &h)
          == FERRY_HTTP_OK && ferry_http_framing(&h, 0) == FERRY_BODY_NONE);
    check("101 with Connection: upgrade",
          parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n\r\n", &h) == FERRY_HTTP_OK
          && h.status == 101 && h.conn_upgrade);

    check("chunked as last coding", parse(te, &h) == FERRY_HTTP_OK && h.chunked
          && ferry_http_framing(&h, 0) == FERRY_BODY_CHUNKED
          && ferry_http_keeps_alive(&h, FERRY_BODY_CHUNKED));
    check("Transfer-Encoding not ending in chunked: read to close",
          parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &h)
          == FERRY_HTTP_OK && ferry_http_framing(&h, 0) == FERRY_BODY_CLOSE
          && !ferry_http_keeps_alive(&h, FERRY_BODY_CLOSE));
    check("Transfer-Encoding wins over Content-Length, not kept alive",
          parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
                "\r\n\r\n", &h) == FERRY_HTTP_OK
          && ferry_http_framing(&h, 0) == FERRY_BODY_CHUNKED
          && !ferry_http_keeps_alive(&h, FERRY_BODY_CHUNKED));
    check("no length: close-delimited",
          parse("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", &h) == FERRY_HTTP_OK
          && ferry_http_framing(&h, 0) == FERRY_BODY_CLOSE
          && !ferry_http_keeps_alive(&h, FERRY_BODY_CLOSE));
    check("Connection: close is not kept alive",
          parse("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n"
                "Content-Length: 0\r\n\r\n", &h) == FERRY_HTTP_OK && h.conn_close
          && !ferry_http_keeps_alive(&h, FERRY_BODY_LENGTH));
    check("HTTP/1.0 only with keep-alive",
          parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &h) == FERRY_HTTP_OK
          && !ferry_http_keeps_alive(&h, FERRY_BODY_LENGTH)
          && parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0"
                   "\r\n\r\n", &h) == FERRY_HTTP_OK
          && ferry_http_keeps_alive(&h, FERRY_BODY_LENGTH));
    check("equal repeated Content-Length is one",
          parse("HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\nContent-Length: 4\r\n"
                "\r\n", &h) == FERRY_HTTP_OK && h.content_length == 4);

    check("differing Content-Length is bad",
          parse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
                &h) == FERRY_HTTP_BAD);
    check("non-numeric Content-Length is bad",
          parse("HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\n", &h) == FERRY_HTTP_BAD);
    check("overflowing Content-Length is bad",
          parse("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                &h) == FERRY_HTTP_BAD);
    check("obs-fold is bad", parse("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", &h)
          == FERRY_HTTP_BAD);
    check("space before the colon is bad",
          parse("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", &h) == FERRY_HTTP_BAD);
    check("a line without a colon is bad",
          parse("HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", &h) == FERRY_HTTP_BAD);
    check("not HTTP is bad", parse("SSH-2.0-OpenSSH\r\n\r\n", &h) == FERRY_HTTP_BAD);
    check("HTTP/2 status line is bad", parse("HTTP/2 200\r\n\r\n", &h) == FERRY_HTTP_BAD);
    check("two-digit status is bad", parse("HTTP/1.1 20 OK\r\n\r\n", &h)
          == FERRY_HTTP_BAD);
    check("status 099 is bad", parse("HTTP/1.1 099 x\r\n\r\n", &h) == FERRY_HTTP_BAD);
    check("a CR inside a value is bad",
          parse("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", &h) == FERRY_HTTP_BAD);

    /* Size limit: 64 KiB of head without its end is too large; a head of
     * exactly the limit parses. */
    big = malloc(FERRY_HTTP_HEAD_MAX + 64);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', FERRY_HTTP_HEAD_MAX + 40);
    check("a head over 64 KiB is too large",
          ferry_http_parse_head(big, FERRY_HTTP_HEAD_MAX + 60, &h)
          == FERRY_HTTP_TOO_LARGE);
    memcpy(big + FERRY_HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
    check("a head of exactly 64 KiB parses",
          ferry_http_parse_head(big, FERRY_HTTP_HEAD_MAX + 60, &h) == FERRY_HTTP_OK
          && h.head_len == FERRY_HTTP_HEAD_MAX);
    memcpy(big + FERRY_HTTP_HEAD_MAX - 4, "aa\r\n\r\n", 6);
    check("a head of 64 KiB + 2 is too large",
          ferry_http_parse_head(big, FERRY_HTTP_HEAD_MAX + 60, &h)
          == FERRY_HTTP_TOO_LARGE);
    free(big);
}

static void test_helpers(void)
{
    char line[32];

    check("hop-by-hop names", ferry_http_is_hop_by_hop("keep-alive", 10, 0)
          && ferry_http_is_hop_by_hop("Transfer-Encoding", 17, 0)
          && ferry_http_is_hop_by_hop("trailer", 7, 0)
          && ferry_http_is_hop_by_hop("Connection", 10, 0)
          && !ferry_http_is_hop_by_hop("Connection", 10, 1)
          && !ferry_http_is_hop_by_hop("Upgrade", 7, 1)
          && !ferry_http_is_hop_by_hop("Content-Length", 14, 0)
          && !ferry_http_is_hop_by_hop("TEx", 3, 0));
    check("token lists", ferry_http_has_token("a, Upgrade ,b", 13, "upgrade")
          && !ferry_http_has_token("upgrades", 8, "upgrade")
          && ferry_http_has_token(",,close", 7, "close")
          && !ferry_http_has_token("", 0, "close"));
    check("chunk size lines", ferry_http_chunk_size_line(line, 0) == 3
          && memcmp(line, "0\r\n", 3) == 0
          && ferry_http_chunk_size_line(line, 65536) == 7
          && memcmp(line, "10000\r\n", 7) == 0
          && ferry_http_chunk_size_line(line, 255) == 4
          && memcmp(line, "ff\r\n", 4) == 0);
}

/* Decode all of in, fed `step` bytes at a time; out gets the data. Returns
 * the final status (DONE, BAD or NEED_MORE) and *rest the bytes after the
 * body in the last piece. */
static ferry_chunk_status dechunk(const char *in, size_t len, size_t step,
                                  char *out, size_t *out_len, size_t *after)
{
    ferry_chunked_t c;
    ferry_chunk_status st = FERRY_CHUNK_NEED_MORE;
    size_t off = 0, piece, pos, used;
    const char *d;
    size_t dl;

    ferry_chunked_init(&c);
    *out_len = 0;
    *after = 0;
    while (off < len) {
        piece = len - off < step ? len - off : step;
        pos = 0;
        while (pos < piece) {
            st = ferry_chunked_next(&c, in + off + pos, piece - pos, &used,
                                    &d, &dl);
            pos += used;
            if (st == FERRY_CHUNK_DATA) {
                memcpy(out + *out_len, d, dl);
                *out_len += dl;
                continue;
            }
            if (st == FERRY_CHUNK_DONE) {
                *after = (len - off) - pos;
                return st;
            }
            if (st == FERRY_CHUNK_BAD) {
                return st;
            }
        }
        off += piece;
    }
    return st == FERRY_CHUNK_DATA ? FERRY_CHUNK_NEED_MORE : st;
}

static void test_chunked(void)
{
    static const char body[] = "5\r\nhello\r\n7;ext=1\r\n, world\r\n"
                               "A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
    char out[256];
    size_t n, after, step;
    int all = 1;

    for (step = 1; step <= sizeof(body); step++) {
        ferry_chunk_status st = dechunk(body, sizeof(body) - 1, step, out, &n,
                                        &after);
        if (st != FERRY_CHUNK_DONE || n != 22
            || memcmp(out, "hello, world0123456789", 22) != 0 || after != 4) {
            all = 0;
            printf("# step %zu: status %d, %zu bytes, %zu after\n", step,
                   (int)st, n, after);
        }
    }
    check("chunked body decodes fed in any piece size, trailers skipped, "
          "the next bytes left alone", all);
    check("bare LF chunk lines", dechunk("3\nabc\n0\n\n", 9, 100, out, &n, &after)
          == FERRY_CHUNK_DONE && n == 3 && after == 0);
    check("uppercase hex", dechunk("1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n",
          42, 7, out, &n, &after) == FERRY_CHUNK_DONE && n == 31);
    check("a truncated body needs more",
          dechunk("5\r\nhel", 6, 2, out, &n, &after) == FERRY_CHUNK_NEED_MORE
          && n == 3);
    check("no digits is bad", dechunk("\r\n", 2, 2, out, &n, &after)
          == FERRY_CHUNK_BAD);
    check("garbage size is bad", dechunk("zz\r\n", 4, 4, out, &n, &after)
          == FERRY_CHUNK_BAD);
    check("missing CRLF after data is bad",
          dechunk("3\r\nabcX\r\n0\r\n\r\n", 15, 15, out, &n, &after)
          == FERRY_CHUNK_BAD);
    check("a 2^64 chunk size is bad",
          dechunk("10000000000000000\r\n", 19, 19, out, &n, &after)
          == FERRY_CHUNK_BAD);
}

int main(void)
{
    test_heads();
    test_helpers();
    test_chunked();
    printf("C tests: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
