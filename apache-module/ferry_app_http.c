/*
 * ferry_app_http.c: the direct path's HTTP/1.1 client (protocol v3,
 * docs/protocol.md "What the module does on the direct path"). Two steps
 * of the handler:
 *
 *   ferry_app_send   write the LEASE's request head, then the client body
 *                    (as it is, or chunked). Full duplex: the app socket is
 *                    non-blocking, and whenever a write would block the
 *                    app's answer is read into a spool (ferry_spool.c:
 *                    memory up to PassengerResponseBufferHighWatermark, then
 *                    a temporary file in PassengerDataBufferDir), so an app
 *                    that answers while it reads never deadlocks against us.
 *                    The client gets it once the request is written: httpd
 *                    2.4 has no non-blocking client write, and a client that
 *                    reads only after its upload must not block us.
 *   ferry_app_relay  read the response (spool first, then the socket):
 *                    status line and headers (ferry_http_parse.c, 64 KiB at
 *                    most), 1xx skipped, hop-by-hop headers dropped and the
 *                    LEASE's add_headers added, the body framed by length,
 *                    chunks or the connection's end, passed to the client
 *                    with a FLUSH whenever the next read would block; a 101
 *                    the client asked for goes to the tunnel.
 *
 * Failures travel up as ferry_err / HTTP statuses (ferry_exchange.c turns
 * them into statuses); ex->outcome is what DONE reports.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "apr_poll.h"
#include "apr_portable.h"
#include "apr_strings.h"

#include "ferry_client_watch.h"
#include "ferry_exchange.h"
#include "ferry_http_parse.h"
#include "ferry_log.h"
#include "ferry_pass.h"
#include "ferry_spool.h"

APLOG_USE_MODULE(ferry);

/* Bytes read from the app at once; also holds the response head. */
#define FERRY_APP_BUF (FERRY_HTTP_HEAD_MAX + 1)
/* PassengerBufferResponse on: pass the body on once this much is held. */
#define FERRY_APP_BUFFER_MAX (16 * 1024 * 1024)

struct ferry_app_io_t {
    apr_socket_t *sock;
    char *buf;                  /* FERRY_APP_BUF bytes */
    ferry_spool_t *spool;       /* response bytes read while sending */
    unsigned int eof:1;         /* the app closed its side */
    unsigned int got_any:1;     /* a response byte arrived */
    unsigned int write_failed:1;/* the app stopped taking the request */
    unsigned int reset:1;       /* the app closed with our bytes unread */
    unsigned int body_started:1;/* client body bytes were consumed */
    unsigned int body_done:1;   /* the whole request went out */
    unsigned int extra:1;       /* bytes after the response */
};

/* The wait for one I/O: t, shortened to the LEASE's deadline. -1 when the
 * deadline has passed. */
static apr_interval_time_t budget(const ferry_exchange_t *ex,
                                  apr_interval_time_t t)
{
    apr_interval_time_t left;

    if (ex->deadline == 0) {
        return t;
    }
    left = ex->deadline - apr_time_now();
    if (left <= 0) {
        return -1;
    }
    return left < t ? left : t;
}

/* Read what the app has sent into the spool (the socket is readable). */
static apr_status_t drain_to_spool(ferry_exchange_t *ex)
{
    ferry_app_io_t *io = ex->io;
    apr_size_t n = FERRY_APP_BUF;
    apr_status_t rv;

    rv = apr_socket_recv(io->sock, io->buf, &n);
    if (n > 0) {
        io->got_any = 1;
        return ferry_spool_write(io->spool, io->buf, n);
    }
    if (rv == APR_EOF || rv == APR_SUCCESS || !APR_STATUS_IS_EAGAIN(rv)) {
        io->eof = 1;                    /* closed or reset: stop polling it */
        io->reset = APR_STATUS_IS_ECONNRESET(rv) ? 1 : io->reset;
    }
    return APR_SUCCESS;
}

/* ---- Sending ------------------------------------------------------------ */

/* Write all of vec to the app; while the socket is full, take in what the
 * app answers. FERRY_E_APP when the app stopped taking the request. */
static ferry_err app_write(ferry_exchange_t *ex, struct iovec *vec, int nvec)
{
    ferry_app_io_t *io = ex->io;
    apr_pollfd_t pfd;
    apr_int32_t nsds;
    apr_interval_time_t wait;
    apr_size_t n;
    apr_status_t rv;

    while (nvec > 0) {
        n = 0;
        rv = apr_socket_sendv(io->sock, vec, nvec, &n);
        while (n > 0 && nvec > 0) {
            if (n >= vec[0].iov_len) {
                n -= vec[0].iov_len;
                vec++;
                nvec--;
            }
            else {
                vec[0].iov_base = (char *)vec[0].iov_base + n;
                vec[0].iov_len -= n;
                n = 0;
            }
        }
        while (nvec > 0 && vec[0].iov_len == 0) {
            vec++;
            nvec--;
        }
        if (nvec == 0) {
            return FERRY_OK;
        }
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, ex->r,
                          "the app stopped reading the request");
            io->write_failed = 1;
            return FERRY_E_APP;
        }
        /* Full: wait until it takes more, reading its answer meanwhile. */
        wait = budget(ex, ex->write_timeout);
        if (wait < 0) {
            return FERRY_E_TIMEOUT;
        }
        memset(&pfd, 0, sizeof(pfd));
        pfd.p = ex->r->pool;
        pfd.desc_type = APR_POLL_SOCKET;
        pfd.desc.s = io->sock;
        pfd.reqevents = APR_POLLOUT | (io->eof ? 0 : APR_POLLIN);
        do {
            rv = apr_poll(&pfd, 1, &nsds, wait);
        } while (APR_STATUS_IS_EINTR(rv));
        if (APR_STATUS_IS_TIMEUP(rv)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, ex->r, FERRY_LOGNO(0123)
                          "Cannot send the request to the app (pid %"
                          APR_INT64_T_FMT "): it took nothing for %"
                          APR_TIME_T_FMT " s", ex->lease_pid,
                          apr_time_sec(wait));
            return FERRY_E_TIMEOUT;
        }
        if (rv != APR_SUCCESS) {
            io->write_failed = 1;
            return FERRY_E_APP;
        }
        if ((pfd.rtnevents & (APR_POLLIN | APR_POLLHUP | APR_POLLERR))
            && !io->eof) {
            rv = drain_to_spool(ex);
            if (rv != APR_SUCCESS) {
                return FERRY_E_INTERNAL;
            }
        }
    }
    return FERRY_OK;
}

/* The client body is written to the app in gathers: the pieces Apache
 * has read (8000-byte buckets from the client connection) go out in one
 * writev once FERRY_BODY_CHUNK bytes or GATHER_VEC iovecs are together, or
 * as soon as no more is at hand (a non-blocking read finds nothing): the
 * body still streams, with one write (and one wake-up of the app) per
 * 64 KiB instead of one per bucket. */
#define GATHER_VEC 48           /* iovecs: 3 per piece when chunked */

typedef struct {
    struct iovec vec[GATHER_VEC];
    char lines[GATHER_VEC / 3][24];  /* the chunk-size lines */
    int nvec;
    int nlines;
    apr_size_t bytes;
    apr_bucket_brigade *held;   /* the buckets the iovecs point into */
} gather_t;

static int gather_full(const gather_t *g)
{
    return g->nvec + 3 > GATHER_VEC || g->bytes >= FERRY_BODY_CHUNK;
}

/* One piece of the client body, as it is or as one chunk (room checked). */
static void gather_piece(ferry_exchange_t *ex, gather_t *g, const char *data,
                         apr_size_t len)
{
    char *line;

    if (len == 0) {
        return;
    }
    if (ex->chunked) {
        line = g->lines[g->nlines++];
        g->vec[g->nvec].iov_base = line;
        g->vec[g->nvec++].iov_len = ferry_http_chunk_size_line(line, len);
    }
    g->vec[g->nvec].iov_base = (void *)data;
    g->vec[g->nvec++].iov_len = len;
    if (ex->chunked) {
        g->vec[g->nvec].iov_base = "\r\n";
        g->vec[g->nvec++].iov_len = 2;
    }
    g->bytes += len;
    ex->bytes_in += (apr_off_t)len;
}

/* Write what is gathered; its buckets go. */
static ferry_err gather_flush(ferry_exchange_t *ex, gather_t *g)
{
    ferry_err err = g->nvec > 0 ? app_write(ex, g->vec, g->nvec) : FERRY_OK;

    g->nvec = 0;
    g->nlines = 0;
    g->bytes = 0;
    apr_brigade_cleanup(g->held);
    return err;
}

/* GET (and HEAD, which Apache numbers M_GET), PUT, DELETE, OPTIONS, TRACE
 * (RFC 9110 9.2.2): sent again after a kept connection closed with no
 * answer, as a client may. */
static int idempotent(const request_rec *r)
{
    switch (r->method_number) {
    case M_GET:
    case M_PUT:
    case M_DELETE:
    case M_OPTIONS:
    case M_TRACE:
        return 1;
    default:
        return 0;
    }
}

/* A reused connection the app closed while it was idle (EOF or data
 * waiting: it said something we did not ask for). */
static int closed_while_idle(ferry_app_io_t *io)
{
    apr_os_sock_t fd;
    char b;
    ssize_t n;

    if (apr_os_sock_get(&fd, io->sock) != APR_SUCCESS) {
        return 1;
    }
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

ferry_err ferry_app_send(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    ferry_app_io_t *io;
    apr_bucket_brigade *bb;
    apr_bucket *b;
    struct iovec vec[1];
    gather_t *g;
    const char *data;
    apr_size_t len;
    apr_status_t rv;
    apr_read_type_e mode;
    ferry_err err;
    int seen_eos = 0;

    io = apr_pcalloc(r->pool, sizeof(*io));
    io->sock = ex->conn->sock;
    io->buf = apr_palloc(r->pool, FERRY_APP_BUF);
    io->spool = ferry_spool_create(r);
    ex->io = io;
    apr_socket_timeout_set(io->sock, 0);

    /* Step One: the head. A kept connection the app closed meanwhile is
     * stale before anything is written: retry. (One taken on a pass was
     * checked a moment ago.) */
    if (ex->conn_reused && !ex->on_pass && closed_while_idle(io)) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "app connection %s was closed while idle", ex->lease_id);
        return FERRY_E_STALE;
    }
    vec[0].iov_base = (void *)ex->lease_head;
    vec[0].iov_len = ex->lease_head_len;
    err = app_write(ex, vec, 1);
    if (err == FERRY_E_APP) {
        /* The app closed before it took the head, and nothing of the body
         * was read yet: safe to send again. */
        return !io->got_any ? FERRY_E_STALE : FERRY_E_APP;
    }
    if (err != FERRY_OK) {
        return err;
    }
    if (!ex->has_body) {
        io->body_done = 1;
        return FERRY_OK;
    }

    /* Step Two: the body, dechunked by Apache, as it arrives: a blocking
     * read when nothing is gathered, else a non-blocking one (nothing at
     * hand: write what is gathered, then wait for more). */
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    g = apr_palloc(r->pool, sizeof(*g));
    g->nvec = g->nlines = 0;
    g->bytes = 0;
    g->held = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    do {
        mode = g->nvec > 0 ? APR_NONBLOCK_READ : APR_BLOCK_READ;
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, mode,
                            FERRY_BODY_CHUNK);
        if (mode == APR_NONBLOCK_READ
            && (APR_STATUS_IS_EAGAIN(rv)
                || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb)))) {
            apr_brigade_cleanup(bb);
            err = gather_flush(ex, g);
            if (err != FERRY_OK) {
                return err == FERRY_E_APP ? FERRY_OK : err;
            }
            continue;
        }
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, FERRY_LOGNO(0124)
                          "Cannot read the request body from the client "
                          "after %" APR_OFF_T_FMT " bytes", ex->bytes_in);
            ex->body_rv = rv;
            apr_brigade_cleanup(bb);
            apr_brigade_cleanup(g->held);
            return FERRY_E_BODY_READ;
        }
        while (!APR_BRIGADE_EMPTY(bb)) {
            b = APR_BRIGADE_FIRST(bb);
            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                apr_bucket_delete(b);
                continue;
            }
            /* Kept past the next read: a transient bucket (mod_ssl's) is
             * copied by the setaside, so it is read again; a heap one stays
             * as it is. */
            rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
            if (rv == APR_SUCCESS) {
                rv = apr_bucket_setaside(b, r->pool);
            }
            if (rv == APR_SUCCESS) {
                rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
            }
            if (rv != APR_SUCCESS) {
                ex->body_rv = rv;
                apr_brigade_cleanup(bb);
                apr_brigade_cleanup(g->held);
                return FERRY_E_BODY_READ;
            }
            io->body_started = 1;
            if (gather_full(g)) {
                err = gather_flush(ex, g);
                if (err != FERRY_OK) {
                    apr_brigade_cleanup(bb);
                    /* FERRY_E_APP: the app stopped reading (it may have
                     * answered early): its response is read next. */
                    return err == FERRY_E_APP ? FERRY_OK : err;
                }
            }
            APR_BUCKET_REMOVE(b);
            APR_BRIGADE_INSERT_TAIL(g->held, b);
            gather_piece(ex, g, data, len);
        }
        apr_brigade_cleanup(bb);
    } while (!seen_eos);

    if (ex->chunked) {
        if (g->nvec == GATHER_VEC) {    /* no room for the last chunk */
            err = gather_flush(ex, g);
            if (err != FERRY_OK) {
                return err == FERRY_E_APP ? FERRY_OK : err;
            }
        }
        g->vec[g->nvec].iov_base = "0\r\n\r\n";
        g->vec[g->nvec++].iov_len = 5;
    }
    err = gather_flush(ex, g);
    if (err != FERRY_OK) {
        return err == FERRY_E_APP ? FERRY_OK : err;
    }
    io->body_done = 1;
    ap_log_rerror(APLOG_MARK, APLOG_TRACE3, 0, r,
                  "sent the request to the app: %" APR_OFF_T_FMT " body "
                  "bytes%s, %" APR_SIZE_T_FMT " + %" APR_OFF_T_FMT " response "
                  "bytes spooled", ex->bytes_in, ex->chunked ? " (chunked)" : "",
                  ferry_spool_in_memory(io->spool),
                  ferry_spool_in_file(io->spool));
    return FERRY_OK;
}

/* ---- Relaying ----------------------------------------------------------- */

/* A read that waits at most wait while watching the client (the head):
 * the same recv, poll, recv a timed read makes, with the poll done by
 * ferry_wait_readable. APR_ECONNABORTED when the client hung up. */
static apr_status_t recv_watching(ferry_app_io_t *io, char *buf,
                                  apr_size_t *len, apr_interval_time_t wait,
                                  apr_socket_t *client)
{
    apr_size_t want = *len;
    apr_time_t until = 0;
    apr_status_t rv;

    apr_socket_timeout_set(io->sock, 0);
    for (;;) {
        *len = want;
        rv = apr_socket_recv(io->sock, buf, len);
        if (*len > 0 || !APR_STATUS_IS_EAGAIN(rv)) {
            return rv;
        }
        if (until == 0) {
            until = apr_time_now() + wait;
        }
        else if ((wait = until - apr_time_now()) <= 0) {
            return APR_TIMEUP;
        }
        rv = ferry_wait_readable(io->sock, client, wait);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
}

/* Up to *len bytes of the response into buf: the spool first, then the
 * socket. nonblock: APR_EAGAIN when nothing is there now. client: watch it
 * while waiting (the response head), or NULL. */
static apr_status_t app_read(ferry_exchange_t *ex, char *buf, apr_size_t *len,
                             int nonblock, apr_socket_t *client)
{
    ferry_app_io_t *io = ex->io;
    apr_size_t want = *len;
    apr_interval_time_t wait;
    apr_status_t rv;

    rv = ferry_spool_read(io->spool, buf, len);
    if (rv != APR_SUCCESS || *len > 0) {
        return rv;
    }
    if (io->eof) {
        return APR_EOF;
    }
    wait = nonblock ? 0 : budget(ex, ex->read_timeout);
    if (wait < 0) {
        return APR_TIMEUP;
    }
    *len = want;
    if (client != NULL && wait > 0) {
        rv = recv_watching(io, buf, len, wait, client);
        if (rv == APR_ECONNABORTED) {
            return rv;                  /* the client, not the app */
        }
    }
    else {
        apr_socket_timeout_set(io->sock, wait);
        rv = apr_socket_recv(io->sock, buf, len);
    }
    if (*len > 0) {
        io->got_any = 1;
        return APR_SUCCESS;
    }
    if (rv == APR_SUCCESS || rv == APR_EOF) {
        io->eof = 1;
        return APR_EOF;
    }
    if (!APR_STATUS_IS_EAGAIN(rv) && !APR_STATUS_IS_TIMEUP(rv)) {
        io->eof = 1;                    /* reset */
        io->reset = APR_STATUS_IS_ECONNRESET(rv) ? 1 : io->reset;
    }
    return rv;
}

/* The app's headers (and the LEASE's add_headers) into r. */
static void apply_headers(ferry_exchange_t *ex, const ferry_http_head_t *h,
                          ferry_body_framing fr)
{
    request_rec *r = ex->r;
    const char *n, *v, *name, *val;
    const char **add;
    apr_size_t nl, vl, pos = 0;
    int is101 = h->status == HTTP_SWITCHING_PROTOCOLS, i;

    while (ferry_http_next_header(h, &pos, &n, &nl, &v, &vl)) {
        if (ferry_http_is_hop_by_hop(n, nl, is101)) {
            continue;
        }
        name = apr_pstrmemdup(r->pool, n, nl);
        val = apr_pstrmemdup(r->pool, v, vl);
        if (!ap_cstr_casecmp(name, "Content-Type")) {
            ap_set_content_type(r, val);
        }
        else if (!ap_cstr_casecmp(name, "Content-Length")) {
            if (fr == FERRY_BODY_LENGTH || (fr == FERRY_BODY_NONE && !h->has_te
                                            && !is101)) {
                apr_table_setn(r->headers_out, "Content-Length",
                               apr_off_t_toa(r->pool,
                                             (apr_off_t)h->content_length));
            }
        }
        else {
            apr_table_addn(r->headers_out, name, val);
        }
    }
    add = (const char **)ex->add_headers->elts;
    for (i = 0; i + 1 < ex->add_headers->nelts; i += 2) {
        apr_table_addn(r->headers_out, add[i], add[i + 1]);
    }
    ferry_set_status(r, h->status);
}

/* Pass len bytes of body to the client (buffered or streamed). */
static int pass_body(ferry_exchange_t *ex, const char *data, apr_size_t len,
                     int buffer, apr_off_t *held, int *unflushed)
{
    conn_rec *c = ex->r->connection;

    if (len == 0) {
        return 0;
    }
    ex->bytes_out += (apr_off_t)len;
    if (buffer) {
        APR_BRIGADE_INSERT_TAIL(ex->bb,
            apr_bucket_heap_create(data, len, NULL, c->bucket_alloc));
        *held += (apr_off_t)len;
        if (*held < FERRY_APP_BUFFER_MAX) {
            return 0;
        }
        *held = 0;
    }
    else {
        APR_BRIGADE_INSERT_TAIL(ex->bb,
            apr_bucket_transient_create(data, len, c->bucket_alloc));
        *unflushed = 1;
    }
    return ferry_pass_out(ex, 0);
}

/* Next bytes of the body into io->buf: a non-blocking read first when the
 * client has unflushed data, then a FLUSH and a waiting read. */
static apr_status_t read_more(ferry_exchange_t *ex, apr_size_t *len,
                              int *unflushed, int *client_gone)
{
    apr_status_t rv;

    *len = FERRY_APP_BUF;
    if (*unflushed) {
        rv = app_read(ex, ex->io->buf, len, 1, NULL);
        if (!APR_STATUS_IS_EAGAIN(rv) && !APR_STATUS_IS_TIMEUP(rv)) {
            return rv;
        }
        if (ferry_pass_out(ex, 1) != 0) {
            *client_gone = 1;
            return APR_ECONNABORTED;
        }
        *unflushed = 0;
        *len = FERRY_APP_BUF;
    }
    return app_read(ex, ex->io->buf, len, 0, NULL);
}

/* The response broke off: say why, cut it (or answer 502/504). */
static int relay_failed(ferry_exchange_t *ex, apr_status_t rv, int status,
                        const char *why)
{
    ferry_err err = APR_STATUS_IS_TIMEUP(rv) ? FERRY_E_TIMEOUT : FERRY_E_APP;

    ex->outcome = err == FERRY_E_TIMEOUT ? "timeout" : "app_error";
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, ex->r, FERRY_LOGNO(0125)
                  "Cannot complete the response of the app (pid %"
                  APR_INT64_T_FMT ", status %d, %" APR_OFF_T_FMT " body bytes "
                  "relayed): %s", ex->lease_pid, status, ex->bytes_out,
                  err == FERRY_E_TIMEOUT
                  ? "no data within the read timeout (PassengerReadTimeout) "
                    "or the request's deadline (PassengerMaxRequestTime)"
                  : why);
    return ferry_cut_response(ex, err);
}

int ferry_app_relay(ferry_exchange_t *ex, ferry_err *errp)
{
    request_rec *r = ex->r;
    conn_rec *c = r->connection;
    ferry_app_io_t *io = ex->io;
    ferry_http_head_t h;
    ferry_http_status hs;
    ferry_body_framing fr;
    ferry_chunked_t ch;
    ferry_chunk_status cs;
    apr_size_t len = 0, n, used, dlen;
    apr_off_t held = 0;
    apr_uint64_t remaining = 0;
    const char *data, *d;
    apr_status_t rv;
    int unflushed = 0, client_gone = 0, status;
    int buffer = ferry_app_buffer_response(ex->app);
    apr_socket_t *client = ferry_client_socket(r);

    *errp = FERRY_OK;
    ex->outcome = "app_error";

    /* Step One: the head (1xx skipped), within PassengerReadTimeout. */
    for (;;) {
        hs = ferry_http_parse_head(io->buf, len, &h);
        if (hs == FERRY_HTTP_OK) {
            if (h.status >= 200 || h.status == HTTP_SWITCHING_PROTOCOLS) {
                break;
            }
            ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                          "skipping an interim %d from the app", h.status);
            memmove(io->buf, io->buf + h.head_len, len - h.head_len);
            len -= h.head_len;
            continue;
        }
        if (hs != FERRY_HTTP_NEED_MORE) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0126)
                          "Cannot read the response head of the app (pid %"
                          APR_INT64_T_FMT "): %s", ex->lease_pid,
                          hs == FERRY_HTTP_TOO_LARGE ? "over 64 KiB"
                                                     : "not valid HTTP/1.x");
            return ferry_status_for(ex, FERRY_E_APP);
        }
        n = FERRY_APP_BUF - len;
        rv = app_read(ex, io->buf + len, &n, 0, client);
        if (rv == APR_SUCCESS) {
            len += n;
            continue;
        }
        if (rv == APR_ECONNABORTED) {
            /* The client hung up while the app worked on it: stop waiting,
             * as nginx does (the app connection is closed). */
            return ferry_client_left(ex);
        }
        if (APR_STATUS_IS_TIMEUP(rv) || APR_STATUS_IS_EAGAIN(rv)) {
            ex->outcome = "timeout";
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0127)
                          "Cannot read the response head of the app (pid %"
                          APR_INT64_T_FMT "): no answer within %" APR_TIME_T_FMT
                          " s (PassengerReadTimeout) or the request's deadline "
                          "(PassengerMaxRequestTime)", ex->lease_pid,
                          apr_time_sec(ex->read_timeout));
            return ferry_status_for(ex, FERRY_E_TIMEOUT);
        }
        if (!io->got_any && !io->body_started
            && (io->write_failed || io->reset
                || (rv == APR_EOF && ex->conn_reused && !ex->has_body
                    && idempotent(r) && !ferry_proc_exiting(ex->lease_pid)))) {
            /* Nothing was answered, nothing of the client's body read, and
             * the app never read the request: the head write failed, or it
             * closed with our bytes unread (a reset: a kept connection it
             * timed out as we sent, a process that exited right after its
             * last answer). App sockets are Unix sockets, so a clean EOF
             * after our write means the app read the request and closed
             * (or died on it): that is retried only for a bodiless
             * idempotent request on a kept connection of a process that
             * is not exiting (an app that half-closed it as we wrote; RFC
             * 9110 9.2.2) — never a request its process died on. Send it
             * again (the caller decides; once). */
            ex->app_exiting = io->reset;
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, rv, r,
                          "app connection %s closed before the response "
                          "began", ex->lease_id);
            *errp = FERRY_E_STALE;
            return ferry_status_for(ex, FERRY_E_STALE);
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0128)
                      "Cannot read the response head of the app (pid %"
                      APR_INT64_T_FMT "): the connection %s after %"
                      APR_SIZE_T_FMT " bytes", ex->lease_pid,
                      rv == APR_EOF ? "closed" : "failed", len);
        return ferry_status_for(ex, FERRY_E_APP);
    }
    status = h.status;
    data = io->buf + h.head_len;
    len -= h.head_len;

    /* Step Two: an upgrade goes to the tunnel. */
    if (status == HTTP_SWITCHING_PROTOCOLS) {
        const char *n1, *v1;
        apr_size_t nl, vl, pos = 0;
        int match = 0;

        while (ex->upgrade && ferry_http_next_header(&h, &pos, &n1, &nl, &v1, &vl)) {
            if (nl == 7 && !ap_cstr_casecmpn(n1, "Upgrade", 7)) {
                match = ferry_upgrade_asked(r, v1, vl);
            }
        }
        if (!match) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0129)
                          "Cannot switch protocols: the app answered 101 but "
                          "the client asked for %s",
                          ex->upgrade ? "a different Upgrade" : "no upgrade");
            return ferry_status_for(ex, FERRY_E_APP);
        }
        apply_headers(ex, &h, FERRY_BODY_NONE);
        ex->outcome = "ok";
        ex->sent_status = status;
        return ferry_tunnel_run(ex, io->sock, data, len);
    }

    fr = ferry_http_framing(&h, r->header_only);
    apply_headers(ex, &h, fr);
    if (ap_is_HTTP_ERROR(status) && ferry_app_error_override(ex->app)) {
        /* PassengerErrorOverride: Apache's ErrorDocument answers. */
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "app answered %d; PassengerErrorOverride hands it to "
                      "ErrorDocument", status);
        ex->overridden = 1;
        ex->outcome = "ok";
        apr_table_clear(r->headers_out);
        r->status_line = NULL;
        return status;
    }

    /* Step Three: the body, as its framing says. */
    if (fr == FERRY_BODY_LENGTH) {
        remaining = (apr_uint64_t)h.content_length;
    }
    ferry_chunked_init(&ch);
    for (;;) {
        switch (fr) {
        case FERRY_BODY_NONE:
            io->extra = len > 0;
            len = 0;
            goto done;
        case FERRY_BODY_LENGTH:
            n = (apr_uint64_t)len < remaining ? len : (apr_size_t)remaining;
            if (pass_body(ex, data, n, buffer, &held, &unflushed) != 0) {
                client_gone = 1;
                goto gone;
            }
            remaining -= n;
            if (remaining == 0) {
                io->extra = len > n;
                goto done;
            }
            break;
        case FERRY_BODY_CHUNKED:
            while (len > 0) {
                cs = ferry_chunked_next(&ch, data, len, &used, &d, &dlen);
                data += used;
                len -= used;
                if (cs == FERRY_CHUNK_DATA) {
                    if (pass_body(ex, d, dlen, buffer, &held, &unflushed) != 0) {
                        client_gone = 1;
                        goto gone;
                    }
                    continue;
                }
                if (cs == FERRY_CHUNK_DONE) {
                    io->extra = len > 0;
                    goto done;
                }
                if (cs == FERRY_CHUNK_BAD) {
                    return relay_failed(ex, APR_SUCCESS, status,
                                        "malformed chunked encoding");
                }
            }
            break;
        case FERRY_BODY_CLOSE:
            if (pass_body(ex, data, len, buffer, &held, &unflushed) != 0) {
                client_gone = 1;
                goto gone;
            }
            break;
        }
        rv = read_more(ex, &len, &unflushed, &client_gone);
        if (client_gone) {
            goto gone;
        }
        if (rv == APR_EOF && fr == FERRY_BODY_CLOSE) {
            goto done;
        }
        if (rv != APR_SUCCESS) {
            return relay_failed(ex, rv, status,
                                rv == APR_EOF ? "the app closed the connection "
                                                "before the end of the body"
                                              : "reading from the app failed");
        }
        data = io->buf;
    }

done:
    APR_BRIGADE_INSERT_TAIL(ex->bb, apr_bucket_eos_create(c->bucket_alloc));
    if (ferry_pass_out(ex, 0) != 0) {
        goto gone;
    }
    ex->outcome = "ok";
    ex->conn_reusable = ferry_http_keeps_alive(&h, fr) && io->body_done
                        && !io->write_failed && !io->extra && !io->eof;
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "relayed response %d of the app (pid %" APR_INT64_T_FMT
                  ") with %" APR_OFF_T_FMT " body bytes; connection %s",
                  status, ex->lease_pid, ex->bytes_out,
                  ex->conn_reusable ? "kept" : "closed");
    return OK;

gone:
    apr_brigade_cleanup(ex->bb);
    ex->outcome = "client_aborted";
    c->keepalive = AP_CONN_CLOSE;
    return OK;
}
