/*
 * ferry_http_parse.c: parse an app's HTTP/1.x response head and decode a
 * chunked body (declarations in ferry_http_parse.h). Strict where a
 * mistake would desynchronise a kept-alive connection (framing headers),
 * tolerant elsewhere (bare LF, any reason phrase). Pure C99: unit-tested
 * by apache-module/test/http_test.c without Apache.
 */
#include <string.h>

#include "ferry_http_parse.h"

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int ieq(const char *a, size_t alen, const char *b)
{
    size_t i, blen = strlen(b);

    if (alen != blen) {
        return 0;
    }
    for (i = 0; i < alen; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) {
            return 0;
        }
    }
    return 1;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
        || (c >= 'A' && c <= 'Z')) {
        return 1;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* End of the line starting at p (its LF), or NULL. */
static const char *line_end(const char *p, const char *end)
{
    return memchr(p, '\n', (size_t)(end - p));
}

/* Length of the line p..lf without the LF and an optional CR. */
static size_t line_len(const char *p, const char *lf)
{
    size_t n = (size_t)(lf - p);

    return (n > 0 && p[n - 1] == '\r') ? n - 1 : n;
}

int ferry_http_has_token(const char *list, size_t len, const char *token)
{
    size_t i = 0, start, end;

    while (i < len) {
        while (i < len && (is_ws(list[i]) || list[i] == ',')) {
            i++;
        }
        start = i;
        while (i < len && list[i] != ',') {
            i++;
        }
        end = i;
        while (end > start && is_ws(list[end - 1])) {
            end--;
        }
        if (end > start && ieq(list + start, end - start, token)) {
            return 1;
        }
    }
    return 0;
}

/* A Content-Length value: digits only (a list of equal values is allowed,
 * RFC 9110 8.6). -1 when invalid. */
static int64_t parse_length(const char *v, size_t len)
{
    int64_t out = -1, cur;
    size_t i = 0;

    for (;;) {
        while (i < len && is_ws(v[i])) {
            i++;
        }
        if (i == len || v[i] < '0' || v[i] > '9') {
            return -1;
        }
        cur = 0;
        while (i < len && v[i] >= '0' && v[i] <= '9') {
            if (cur > (INT64_MAX - 9) / 10) {
                return -1;
            }
            cur = cur * 10 + (v[i] - '0');
            i++;
        }
        while (i < len && is_ws(v[i])) {
            i++;
        }
        if (out >= 0 && cur != out) {
            return -1;
        }
        out = cur;
        if (i == len) {
            return out;
        }
        if (v[i] != ',') {
            return -1;
        }
        i++;
    }
}

/* The last element of a Transfer-Encoding list is "chunked". */
static int last_is_chunked(const char *v, size_t len)
{
    size_t end = len, start;

    while (end > 0 && (is_ws(v[end - 1]) || v[end - 1] == ',')) {
        end--;
    }
    start = end;
    while (start > 0 && v[start - 1] != ',') {
        start--;
    }
    while (start < end && is_ws(v[start])) {
        start++;
    }
    return ieq(v + start, end - start, "chunked");
}

int ferry_http_next_header(const ferry_http_head_t *h, size_t *pos,
                           const char **name, size_t *name_len,
                           const char **value, size_t *value_len)
{
    const char *p = h->headers + *pos, *end = h->headers + h->headers_len;
    const char *lf, *colon, *v, *ve;
    size_t n;

    if (p >= end) {
        return 0;
    }
    lf = line_end(p, end);
    if (lf == NULL) {
        lf = end;                       /* the last line (no LF in range) */
        n = (size_t)(end - p);
        if (n > 0 && p[n - 1] == '\r') {
            n--;
        }
    }
    else {
        n = line_len(p, lf);
    }
    colon = memchr(p, ':', n);
    *name = p;
    *name_len = colon ? (size_t)(colon - p) : n;
    v = colon ? colon + 1 : p + n;
    ve = p + n;
    while (v < ve && is_ws(*v)) {
        v++;
    }
    while (ve > v && is_ws(ve[-1])) {
        ve--;
    }
    *value = v;
    *value_len = (size_t)(ve - v);
    *pos = (size_t)(lf - h->headers) + (lf < end ? 1 : 0);
    return 1;
}

ferry_http_status ferry_http_parse_head(const char *buf, size_t len,
                                        ferry_http_head_t *h)
{
    const char *end = buf + len, *p, *lf, *colon, *v, *ve;
    size_t n, i;
    int64_t cl;

    memset(h, 0, sizeof(*h));
    h->content_length = -1;

    /* The whole head first: up to an empty line. */
    p = buf;
    for (;;) {
        lf = line_end(p, end);
        if (lf == NULL) {
            return len >= FERRY_HTTP_HEAD_MAX ? FERRY_HTTP_TOO_LARGE
                                              : FERRY_HTTP_NEED_MORE;
        }
        if ((size_t)(lf + 1 - buf) > FERRY_HTTP_HEAD_MAX) {
            return FERRY_HTTP_TOO_LARGE;
        }
        if (p != buf && line_len(p, lf) == 0) {
            break;
        }
        p = lf + 1;
    }
    h->head_len = (size_t)(lf + 1 - buf);
    h->headers_len = (size_t)(p - buf);     /* adjusted below */

    /* Status line: HTTP/1.x SP 3DIGIT [SP reason]. */
    lf = line_end(buf, end);
    n = line_len(buf, lf);
    if (n < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0'
        || buf[7] > '9' || buf[8] != ' ') {
        return FERRY_HTTP_BAD;
    }
    h->minor = buf[7] - '0';
    for (i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9') {
            return FERRY_HTTP_BAD;
        }
    }
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (h->status < 100) {
        return FERRY_HTTP_BAD;
    }
    if (n > 12) {
        if (buf[12] != ' ') {
            return FERRY_HTTP_BAD;
        }
        h->reason = buf + 13;
        h->reason_len = n - 13;
    }
    else {
        h->reason = buf + 12;
    }
    h->headers = lf + 1;
    h->headers_len = (size_t)(p - h->headers);

    /* Header lines. */
    for (p = h->headers; p < h->headers + h->headers_len; p = lf + 1) {
        lf = line_end(p, end);
        n = line_len(p, lf);
        if (is_ws(*p)) {
            return FERRY_HTTP_BAD;          /* obs-fold */
        }
        colon = memchr(p, ':', n);
        if (colon == NULL || colon == p) {
            return FERRY_HTTP_BAD;
        }
        for (v = p; v < colon; v++) {
            if (!is_tchar((unsigned char)*v)) {
                return FERRY_HTTP_BAD;      /* also: space before the colon */
            }
        }
        v = colon + 1;
        ve = p + n;
        for (i = 0; v + i < ve; i++) {
            if (v[i] == '\0' || v[i] == '\r') {
                return FERRY_HTTP_BAD;
            }
        }
        while (v < ve && is_ws(*v)) {
            v++;
        }
        while (ve > v && is_ws(ve[-1])) {
            ve--;
        }
        n = (size_t)(colon - p);
        if (ieq(p, n, "Content-Length")) {
            cl = parse_length(v, (size_t)(ve - v));
            if (cl < 0 || (h->content_length >= 0 && cl != h->content_length)) {
                return FERRY_HTTP_BAD;
            }
            h->content_length = cl;
        }
        else if (ieq(p, n, "Transfer-Encoding")) {
            h->has_te = 1;
            /* Several fields form one list: the last element counts. */
            h->chunked = last_is_chunked(v, (size_t)(ve - v)) ? 1 : 0;
        }
        else if (ieq(p, n, "Connection")) {
            if (ferry_http_has_token(v, (size_t)(ve - v), "close")) {
                h->conn_close = 1;
            }
            if (ferry_http_has_token(v, (size_t)(ve - v), "keep-alive")) {
                h->conn_keep_alive = 1;
            }
            if (ferry_http_has_token(v, (size_t)(ve - v), "upgrade")) {
                h->conn_upgrade = 1;
            }
        }
    }
    return FERRY_HTTP_OK;
}

ferry_body_framing ferry_http_framing(const ferry_http_head_t *h,
                                      int method_is_head)
{
    if (method_is_head || (h->status >= 100 && h->status < 200)
        || h->status == 204 || h->status == 304) {
        return FERRY_BODY_NONE;
    }
    if (h->has_te) {
        return h->chunked ? FERRY_BODY_CHUNKED : FERRY_BODY_CLOSE;
    }
    if (h->content_length >= 0) {
        return FERRY_BODY_LENGTH;
    }
    return FERRY_BODY_CLOSE;
}

int ferry_http_keeps_alive(const ferry_http_head_t *h, ferry_body_framing fr)
{
    if (fr == FERRY_BODY_CLOSE || h->conn_close) {
        return 0;
    }
    if (h->has_te && !h->chunked) {
        return 0;
    }
    if (h->has_te && h->content_length >= 0) {
        return 0;                       /* both: a smuggling shape, don't trust */
    }
    return h->minor >= 1 || h->conn_keep_alive;
}

int ferry_http_is_hop_by_hop(const char *name, size_t len, int is101)
{
    static const char *const hop[] = {
        "Keep-Alive", "Transfer-Encoding", "TE", "Trailer",
        "Proxy-Connection", NULL
    };
    int i;

    if (ieq(name, len, "Connection") || ieq(name, len, "Upgrade")) {
        return !is101;
    }
    for (i = 0; hop[i] != NULL; i++) {
        if (ieq(name, len, hop[i])) {
            return 1;
        }
    }
    return 0;
}

size_t ferry_http_chunk_size_line(char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0, i;

    do {
        tmp[n++] = hex[size & 0xf];
        size >>= 4;
    } while (size > 0);
    for (i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

/* ---- Chunked decoder ---------------------------------------------------- */

enum {
    CH_SIZE = 0,        /* hex digits */
    CH_EXT,             /* chunk extension, up to LF */
    CH_DATA,
    CH_DATA_CR,         /* CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER,         /* trailer lines, up to an empty one */
    CH_DONE
};

/* A size line (digits + extensions) longer than this is refused. */
#define FERRY_CHUNK_LINE_MAX 4096

void ferry_chunked_init(ferry_chunked_t *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
}

static int hexdigit(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

ferry_chunk_status ferry_chunked_next(ferry_chunked_t *c, const char *in,
                                      size_t len, size_t *used,
                                      const char **data, size_t *data_len)
{
    size_t i = 0, n;
    int d;
    char ch;

    *data = NULL;
    *data_len = 0;
    while (i < len) {
        switch (c->state) {
        case CH_SIZE:
            ch = in[i++];
            d = hexdigit(ch);
            if (d >= 0) {
                if (c->digits >= 15) {
                    goto bad;           /* over 2^60: nobody sends that */
                }
                c->remaining = c->remaining * 16 + (uint64_t)d;
                c->digits++;
                c->line++;
                break;
            }
            if (c->digits == 0) {
                goto bad;
            }
            if (ch == '\n') {
                goto size_done;
            }
            if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r') {
                /* extensions (ignored) or the CR, up to the LF */
                c->state = CH_EXT;
                c->line++;
                break;
            }
            goto bad;
        case CH_EXT:
            ch = in[i++];
            if (ch == '\n') {
                goto size_done;
            }
            if (++c->line > FERRY_CHUNK_LINE_MAX) {
                goto bad;
            }
            break;
        size_done:
            c->line = 0;
            c->digits = 0;
            if (c->remaining == 0) {
                c->state = CH_TRAILER;
            }
            else {
                c->state = CH_DATA;
            }
            break;
        case CH_DATA:
            n = len - i;
            if ((uint64_t)n > c->remaining) {
                n = (size_t)c->remaining;
            }
            *data = in + i;
            *data_len = n;
            c->remaining -= n;
            if (c->remaining == 0) {
                c->state = CH_DATA_CR;
            }
            *used = i + n;
            return FERRY_CHUNK_DATA;
        case CH_DATA_CR:
            ch = in[i++];
            if (ch == '\r') {
                c->state = CH_DATA_LF;
                break;
            }
            if (ch == '\n') {
                c->state = CH_SIZE;
                break;
            }
            goto bad;
        case CH_DATA_LF:
            if (in[i++] != '\n') {
                goto bad;
            }
            c->state = CH_SIZE;
            break;
        case CH_TRAILER:
            ch = in[i++];
            if (++c->trailers > FERRY_HTTP_HEAD_MAX) {
                goto bad;
            }
            if (ch == '\n') {
                if (c->line == 0) {
                    c->state = CH_DONE;
                    *used = i;
                    return FERRY_CHUNK_DONE;
                }
                c->line = 0;
            }
            else if (ch != '\r' || c->line > 0) {
                c->line++;
            }
            break;
        case CH_DONE:
            *used = i;
            return FERRY_CHUNK_DONE;
        default:
            goto bad;
        }
    }
    *used = i;
    return c->state == CH_DONE ? FERRY_CHUNK_DONE : FERRY_CHUNK_NEED_MORE;

bad:
    *used = i;
    return FERRY_CHUNK_BAD;
}
