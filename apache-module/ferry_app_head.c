/*
 * ferry_app_head.c: the request head an app process receives, built by the
 * module for a request on a pass (see ferry_app_head.h). Each rule mirrors
 * core/src/exchange/headers.ts appRequestHeaders() and lease.ts
 * leaseRequestHead() line by line, in the same order, so the bytes are the
 * same; test/fixtures/protocol/app-heads.txt checks both against one list.
 *
 * The core sees header values as JavaScript strings: msgpack str decoded as
 * UTF-8, then one char per byte again. Comparisons here are on bytes, which
 * gives the same answers for the cases the core can see: header names are
 * ASCII tokens (checked), and JavaScript's trim() and toLowerCase() change
 * no byte of a value in a way that could make a non-ASCII token equal an
 * ASCII name (trim's white space within one byte is mirrored in is_js_ws()).
 */
#include <stdio.h>
#include <string.h>

#include "ferry_app_head.h"

/* Output: counts every byte, writes those that fit. */
typedef struct {
    char *buf;
    size_t cap;
    size_t len;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;

        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void puts0(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_header(out_t *o, const char *name, const char *value)
{
    puts0(o, name);
    put(o, ": ", 2);
    puts0(o, value);
    put(o, "\r\n", 2);
}

/* ---- What the core accepts unchanged ------------------------------------ */

/* RFC 9110 tchar (core/src/protocol/wire-fields.ts TOKEN). */
static int is_token(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (s == NULL || *p == '\0') {
        return 0;
    }
    for (; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')
              || (*p >= 'A' && *p <= 'Z') || strchr("!#$%&'*+.^_`|~-", *p))) {
            return 0;
        }
    }
    return 1;
}

/* Valid UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
 * U+10FFFF), and not starting with a byte order mark (the core's decoder
 * may drop one). Such bytes survive the core's decode and re-encode. */
static int is_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char lo, hi;
    int n, i;

    if (p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
        return 0;
    }
    while (*p != '\0') {
        if (*p < 0x80) {
            p++;
            continue;
        }
        lo = 0x80;
        hi = 0xbf;
        if (*p >= 0xc2 && *p <= 0xdf) {
            n = 1;
        }
        else if (*p >= 0xe0 && *p <= 0xef) {
            n = 2;
            lo = *p == 0xe0 ? 0xa0 : 0x80;
            hi = *p == 0xed ? 0x9f : 0xbf;
        }
        else if (*p >= 0xf0 && *p <= 0xf4) {
            n = 3;
            lo = *p == 0xf0 ? 0x90 : 0x80;
            hi = *p == 0xf4 ? 0x8f : 0xbf;
        }
        else {
            return 0;
        }
        if (p[1] < lo || p[1] > hi) {
            return 0;
        }
        for (i = 2; i <= n; i++) {
            if (p[i] < 0x80 || p[i] > 0xbf) {
                return 0;
            }
        }
        p += n + 1;
    }
    return 1;
}

static int is_ascii(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    for (; *p != '\0'; p++) {
        if (*p >= 0x80) {
            return 0;
        }
    }
    return 1;
}

/* The request target (validate.ts: not empty, no byte <= 0x20 or 0x7f). */
static int uri_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (s == NULL || *p == '\0') {
        return 0;
    }
    for (; *p != '\0'; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return is_utf8(s);
}

static int head_ok(const ferry_request_head_t *h)
{
    size_t i;
    const char *v;

    if (!is_token(h->method) || !uri_ok(h->uri)) {
        return 0;
    }
    if ((h->server_name != NULL && !is_ascii(h->server_name))
        || (h->remote_addr != NULL && !is_ascii(h->remote_addr))) {
        return 0;
    }
    for (i = 0; i < h->nheaders; i++) {
        v = h->headers[2 * i + 1] ? h->headers[2 * i + 1] : "";
        if (!is_token(h->headers[2 * i]) || strpbrk(v, "\r\n") != NULL
            || !is_utf8(v)) {
            return 0;
        }
    }
    return 1;
}

/* ---- headers.ts rules ----------------------------------------------------- */

static int lower_eq(const char *a, size_t alen, const char *b)
{
    size_t i;
    unsigned char x, y;

    for (i = 0; i < alen; i++) {
        x = (unsigned char)a[i];
        y = (unsigned char)b[i];
        if (y == '\0') {
            return 0;
        }
        if (x >= 'A' && x <= 'Z') {
            x = (unsigned char)(x + 32);
        }
        if (y >= 'A' && y <= 'Z') {
            y = (unsigned char)(y + 32);
        }
        if (x != y) {
            return 0;
        }
    }
    return b[alen] == '\0';
}

static int name_is(const char *name, const char *lower)
{
    return lower_eq(name, strlen(name), lower);
}

/* HOP_BY_HOP in headers.ts. */
static int is_hop_by_hop(const char *name)
{
    static const char *const names[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding",
        "te", "trailer", "upgrade", NULL
    };
    int i;

    for (i = 0; names[i] != NULL; i++) {
        if (name_is(name, names[i])) {
            return 1;
        }
    }
    return 0;
}

/* What JavaScript's trim() removes, for a char of one byte. */
static int is_js_ws(unsigned char c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0xa0;
}

/* name is among the tokens of the request's Connection headers (other than
 * close, keep-alive and upgrade): connectionTokens() in headers.ts. */
static int named_in_connection(const ferry_request_head_t *h, const char *name)
{
    const char *v, *s, *e, *end;
    size_t i;

    for (i = 0; i < h->nheaders; i++) {
        if (!name_is(h->headers[2 * i], "connection")) {
            continue;
        }
        v = h->headers[2 * i + 1] ? h->headers[2 * i + 1] : "";
        for (s = v; ; s = end + 1) {
            end = strchr(s, ',');
            if (end == NULL) {
                end = s + strlen(s);
            }
            e = end;
            while (s < e && is_js_ws((unsigned char)*s)) {
                s++;
            }
            while (e > s && is_js_ws((unsigned char)e[-1])) {
                e--;
            }
            if (e > s && !lower_eq(s, (size_t)(e - s), "close")
                && !lower_eq(s, (size_t)(e - s), "keep-alive")
                && !lower_eq(s, (size_t)(e - s), "upgrade")
                && lower_eq(s, (size_t)(e - s), name)) {
                return 1;
            }
            if (*end == '\0') {
                break;
            }
        }
    }
    return 0;
}

size_t ferry_app_head(const ferry_request_head_t *h, int pass, char *buf,
                      size_t cap, int *chunked)
{
    out_t o;
    const char *name, *value, *upgrade_value = NULL;
    const char *remote = h->remote_addr ? h->remote_addr : "";
    const char *server = h->server_name ? h->server_name : "";
    char port[24];
    size_t i;
    int has_host = 0, has_length = 0, nxff = 0;

    *chunked = 0;
    if (!head_ok(h)) {
        return 0;
    }
    o.buf = buf;
    o.cap = cap;
    o.len = 0;

    /* leaseRequestHead(): the request line. */
    puts0(&o, h->method);
    put(&o, " ", 1);
    puts0(&o, h->uri);
    puts0(&o, " HTTP/1.1\r\n");

    /* appRequestHeaders(): the client's end-to-end headers in order. */
    for (i = 0; i < h->nheaders; i++) {
        name = h->headers[2 * i];
        value = h->headers[2 * i + 1] ? h->headers[2 * i + 1] : "";
        if (name_is(name, "upgrade")) {
            upgrade_value = value;
            continue;
        }
        if (is_hop_by_hop(name) || named_in_connection(h, name)) {
            continue;
        }
        if (name_is(name, "expect") || name_is(name, "x-forwarded-proto")
            || name_is(name, "x-ferry-pass")) {
            continue;
        }
        if (name_is(name, "x-forwarded-for")) {
            nxff++;
            continue;
        }
        if (name_is(name, "host")) {
            has_host = 1;
        }
        if (name_is(name, "content-length")) {
            if (!h->has_body) {
                continue;
            }
            has_length = 1;
        }
        put_header(&o, name, value);
    }
    if (!has_host) {
        puts0(&o, "Host: ");
        puts0(&o, server);
        if (h->server_port > 0) {
            snprintf(port, sizeof(port), ":%lld", (long long)h->server_port);
            puts0(&o, port);
        }
        put(&o, "\r\n", 2);
    }
    if (nxff > 0 || *remote != '\0') {
        int first = 1;

        puts0(&o, "X-Forwarded-For: ");
        for (i = 0; i < h->nheaders; i++) {
            name = h->headers[2 * i];
            if (!name_is(name, "x-forwarded-for") || is_hop_by_hop(name)
                || named_in_connection(h, name)) {
                continue;
            }
            if (!first) {
                put(&o, ", ", 2);
            }
            puts0(&o, h->headers[2 * i + 1] ? h->headers[2 * i + 1] : "");
            first = 0;
        }
        if (*remote != '\0') {
            if (!first) {
                put(&o, ", ", 2);
            }
            puts0(&o, remote);
        }
        put(&o, "\r\n", 2);
    }
    put_header(&o, "X-Forwarded-Proto", h->https ? "https" : "http");
    if (h->upgrade) {
        put_header(&o, "Connection", "Upgrade");
        put_header(&o, "Upgrade", upgrade_value ? upgrade_value : "websocket");
    }
    else if (h->has_body && !has_length) {
        put_header(&o, "Transfer-Encoding", "chunked");
        *chunked = 1;
    }
    if (pass) {
        put_header(&o, FERRY_PASS_HEADER, "1");
    }
    put(&o, "\r\n", 2);
    return o.len;
}
