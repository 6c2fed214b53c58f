/*
 * ferry_http_parse.h: the HTTP/1.1 parsing the direct path needs to read an
 * app's response (docs/protocol.md "What the module does on the direct
 * path"): the status line and headers, the body framing they announce, and
 * an incremental chunked decoder.
 *
 * Pure C99 (no httpd, APR or msgpack), so apache-module/test/http_test.c
 * links it alone. Nothing here allocates: results point into the caller's
 * buffer.
 */
#ifndef FERRY_HTTP_PARSE_H
#define FERRY_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* A response head larger than this is refused (502). */
#define FERRY_HTTP_HEAD_MAX (64 * 1024)

typedef enum {
    FERRY_HTTP_OK = 0,          /* parsed; *used bytes consumed */
    FERRY_HTTP_NEED_MORE,       /* incomplete: read more */
    FERRY_HTTP_TOO_LARGE,       /* head over FERRY_HTTP_HEAD_MAX */
    FERRY_HTTP_BAD              /* not a valid HTTP/1.x response head */
} ferry_http_status;

/* How the response body is delimited (RFC 9112 section 6.3). */
typedef enum {
    FERRY_BODY_NONE = 0,        /* HEAD, 1xx, 204, 304 */
    FERRY_BODY_LENGTH,          /* Content-Length */
    FERRY_BODY_CHUNKED,         /* Transfer-Encoding: ..., chunked */
    FERRY_BODY_CLOSE            /* until the app closes the connection */
} ferry_body_framing;

/* The parsed status line and what its headers say about the connection.
 * Header lines are walked again with ferry_http_next_header(). */
typedef struct {
    int minor;                  /* HTTP/1.<minor> */
    int status;                 /* 100..999 */
    const char *reason;
    size_t reason_len;
    const char *headers;        /* first header line */
    size_t headers_len;         /* up to (not including) the blank line */
    size_t head_len;            /* whole head, blank line included */
    int64_t content_length;     /* -1 when absent */
    unsigned int chunked:1;     /* the last transfer coding is chunked */
    unsigned int has_te:1;      /* Transfer-Encoding present */
    unsigned int conn_close:1;  /* Connection: close */
    unsigned int conn_keep_alive:1; /* Connection: keep-alive */
    unsigned int conn_upgrade:1;/* Connection: upgrade */
} ferry_http_head_t;

/* Parse a response head at the start of buf[0..len). FERRY_HTTP_OK: *h is
 * filled and h->head_len bytes belong to the head (the body follows).
 * Lines end in CRLF (a bare LF is accepted); obsolete line folding, a
 * header without a colon, whitespace before the colon, a bad or repeated
 * differing Content-Length are FERRY_HTTP_BAD. */
ferry_http_status ferry_http_parse_head(const char *buf, size_t len,
                                        ferry_http_head_t *h);

/* Walk the header lines of a parsed head: *pos starts at 0. Returns 1 and
 * fills name/value (value without surrounding whitespace), 0 at the end. */
int ferry_http_next_header(const ferry_http_head_t *h, size_t *pos,
                           const char **name, size_t *name_len,
                           const char **value, size_t *value_len);

/* The framing of this response to a request with method_is_head. */
ferry_body_framing ferry_http_framing(const ferry_http_head_t *h,
                                      int method_is_head);

/* The connection may carry another request after this response: HTTP/1.1
 * without "Connection: close" (HTTP/1.0 only with keep-alive), framed by
 * length or chunks (or without a body), no Transfer-Encoding other than
 * chunked. */
int ferry_http_keeps_alive(const ferry_http_head_t *h, ferry_body_framing fr);

/* A header the module drops from the app's response (hop-by-hop, as for
 * RESPONSE_HEAD): Connection, Keep-Alive, Transfer-Encoding, TE, Trailer,
 * Proxy-Connection, Upgrade; Connection and Upgrade are kept on a 101. */
int ferry_http_is_hop_by_hop(const char *name, size_t len, int is101);

/* token (case-insensitive) is an element of the comma-separated list. */
int ferry_http_has_token(const char *list, size_t len, const char *token);

/* The canonical encoding of a body chunk's size line ("1f40\r\n") into out
 * (at least 20 bytes); returns its length. */
size_t ferry_http_chunk_size_line(char *out, size_t size);

/* ---- Chunked decoder ---------------------------------------------------- */

typedef enum {
    FERRY_CHUNK_DATA = 0,       /* data, data_len: body bytes (in the input) */
    FERRY_CHUNK_NEED_MORE,      /* all input used; feed more */
    FERRY_CHUNK_DONE,           /* last chunk and trailers read */
    FERRY_CHUNK_BAD             /* malformed */
} ferry_chunk_status;

typedef struct {
    int state;
    uint64_t remaining;         /* data bytes left in the current chunk */
    size_t line;                /* bytes of the current size/trailer line */
    size_t trailers;            /* trailer bytes seen */
    int digits;
} ferry_chunked_t;

void ferry_chunked_init(ferry_chunked_t *c);

/* Decode from in[0..len): *used bytes are consumed. DATA returns a slice of
 * in; call again with the rest. Trailers are read and discarded (at most
 * FERRY_HTTP_HEAD_MAX bytes). */
ferry_chunk_status ferry_chunked_next(ferry_chunked_t *c, const char *in,
                                      size_t len, size_t *used,
                                      const char **data, size_t *data_len);

#endif
