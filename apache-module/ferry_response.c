/*
 * ferry_response.c: Step Five, the response. RESPONSE_HEAD becomes r->status
 * and r->headers_out; each BODY frame goes down r->output_filters as it
 * arrives. A FLUSH follows when the next read from the core would block
 * (mod_wsgi's wsgi_transfer_response), so streamed responses and SSE reach
 * the client chunk by chunk; PassengerBufferResponse on passes no FLUSH and
 * lets Apache buffer (and compute Content-Length). EOS goes last.
 *
 * The relay path (protocol v2, or v3 after PROCEED). Before any byte went to
 * the client a failure becomes an HTTP status (ferry_status_for); after
 * that the status is fixed: the response is cut (ferry_cut_response) and
 * the connection closed.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include "ferry_client_watch.h"
#include "ferry_conn.h"
#include "ferry_exchange.h"
#include "ferry_log.h"

APLOG_USE_MODULE(ferry);

/* PassengerBufferResponse on: pass the body on once this much is held. */
#define FERRY_BUFFER_MAX (16 * 1024 * 1024)

/* Response headers that describe the core <-> module hop only. On a 101,
 * Connection and Upgrade are kept (they are the handshake). */
static int drop_response_header(const char *name, int is101)
{
    static const char *const hop[] = {
        "Keep-Alive", "Transfer-Encoding", "TE", "Proxy-Connection",
        "Trailer", NULL
    };
    int i;

    if (!ap_cstr_casecmp(name, "Connection")
        || !ap_cstr_casecmp(name, "Upgrade")) {
        return !is101;
    }
    for (i = 0; hop[i] != NULL; i++) {
        if (!ap_cstr_casecmp(name, hop[i])) {
            return 1;
        }
    }
    return 0;
}

/* A Content-Length value: decimal digits only, no overflow. */
static int parse_length(const char *val, apr_off_t *len)
{
    char *end;
    const char *p;

    if (*val == '\0') {
        return -1;
    }
    for (p = val; *p != '\0'; p++) {
        if (!apr_isdigit(*p)) {
            return -1;
        }
    }
    return (apr_strtoff(len, val, &end, 10) == APR_SUCCESS && *end == '\0')
           ? 0 : -1;
}

static void apply_headers(ferry_exchange_t *ex, const ferry_frame_t *f)
{
    request_rec *r = ex->r;
    ferry_str_t n, v;
    const char *name, *val;
    apr_off_t len;
    size_t i;
    int is101 = f->status == HTTP_SWITCHING_PROTOCOLS;

    for (i = 0; i < f->nheaders; i++) {
        ferry_frame_header(f, i, &n, &v);
        name = apr_pstrmemdup(r->pool, n.ptr, n.len);
        val = apr_pstrmemdup(r->pool, v.ptr, v.len);
        if (*name == '\0' || drop_response_header(name, is101)) {
            continue;
        }
        if (!ap_cstr_casecmp(name, "Content-Type")) {
            ap_set_content_type(r, val);
        }
        else if (!ap_cstr_casecmp(name, "Content-Length")) {
            if (is101 || parse_length(val, &len) != 0) {
                ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                              "dropping Content-Length \"%s\" from the core",
                              val);
                continue;
            }
            apr_table_setn(r->headers_out, "Content-Length", val);
        }
        else {
            /* add, not set: several Set-Cookie stay separate */
            apr_table_addn(r->headers_out, name, val);
        }
    }
    ferry_set_status(r, f->status);
}

/* Next frame from the core. With *unflushed set, a non-blocking read is
 * tried first; if it would block the client is flushed and the read waits
 * (up to the read timeout). */
static ferry_err read_frame(ferry_exchange_t *ex, ferry_frame_t *f,
                            int *unflushed, apr_socket_t *client,
                            apr_status_t *rvp, ferry_proto_status *stp)
{
    ferry_proto_status st;
    apr_status_t rv;
    apr_size_t got;

    for (;;) {
        st = ferry_decoder_next(ex->dec, f);
        if (st == FERRY_PROTO_OK) {
            return FERRY_OK;
        }
        if (st != FERRY_PROTO_NEED_MORE) {
            *stp = st;
            return FERRY_E_PROTOCOL;
        }
        if (*unflushed) {
            rv = ferry_conn_recv(ex->r, ex->link, 0, NULL, &got);
            if (APR_STATUS_IS_EAGAIN(rv) || APR_STATUS_IS_TIMEUP(rv)) {
                if (ferry_pass_out(ex, 1) != 0) {
                    return FERRY_E_CLIENT_ABORTED;
                }
                *unflushed = 0;
                continue;
            }
        }
        else {
            rv = ferry_conn_recv(ex->r, ex->link, ex->read_timeout, client,
                                 &got);
        }
        if (rv == APR_SUCCESS) {
            continue;
        }
        *rvp = rv;
        if (rv == APR_ECONNABORTED) {
            return FERRY_E_CLIENT_ABORTED;
        }
        if (APR_STATUS_IS_TIMEUP(rv) || APR_STATUS_IS_EAGAIN(rv)) {
            return FERRY_E_TIMEOUT;
        }
        if (rv == APR_ENOMEM) {
            return FERRY_E_INTERNAL;
        }
        return FERRY_E_CORE_CLOSED;
    }
}

static const char *err_text(ferry_err err, ferry_proto_status st)
{
    switch (err) {
    case FERRY_E_TIMEOUT:
        return "no data within the read timeout (PassengerReadTimeout)";
    case FERRY_E_PROTOCOL:
        return ferry_proto_strstatus(st);
    case FERRY_E_CORE_CLOSED:
        return "the connection to the core ended";
    case FERRY_E_INTERNAL:
        return "out of memory";
    default:
        return "unexpected failure";
    }
}

/* The client went away: not an error. Tell the core, stop. */
static int client_gone(ferry_exchange_t *ex)
{
    apr_brigade_cleanup(ex->bb);
    ferry_send_abort(ex, "client_aborted", "The client closed the connection");
    ex->r->connection->keepalive = AP_CONN_CLOSE;
    return OK;
}

/* The core's Upgrade answers what the client asked for. */
static int upgrade_matches(request_rec *r, const ferry_frame_t *f)
{
    ferry_str_t n, v;
    size_t i;

    for (i = 0; i < f->nheaders; i++) {
        ferry_frame_header(f, i, &n, &v);
        if (n.len == 7 && !ap_cstr_casecmpn(n.ptr, "Upgrade", 7)) {
            return ferry_upgrade_asked(r, v.ptr, v.len);
        }
    }
    return 0;
}

int ferry_relay_response(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    conn_rec *c = r->connection;
    ferry_frame_t f;
    ferry_err err;
    ferry_proto_status st = FERRY_PROTO_OK;
    apr_status_t rv = APR_SUCCESS;
    apr_bucket *b;
    apr_off_t held = 0, sent = 0;
    int unflushed = 0, no_body, status;
    const char *pending;
    apr_size_t npending;
    int buffer = ferry_app_buffer_response(ex->app);

    /* The head, within PassengerReadTimeout; a client that hangs up
     * meanwhile ends the exchange (ferry_client_watch.c). */
    err = read_frame(ex, &f, &unflushed, ferry_client_socket(r), &rv, &st);
    if (err == FERRY_E_CLIENT_ABORTED) {
        return ferry_client_left(ex);
    }
    if (err == FERRY_E_CORE_CLOSED && ex->reused && !ap_request_has_body(r)
        && ferry_decoder_pending(ex->dec, &pending) == 0) {
        /* The core closed this idle connection (it never does so once an
         * exchange started): the caller sends the request again (only
         * without a body: a body cannot be read from the client twice). */
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, rv, r,
                      "the reused core connection was closed before the "
                      "response began");
        ex->stale = 1;
        return ferry_status_for(ex, err);
    }
    if (err != FERRY_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0109)
                      "Cannot read the response head from the core: %s "
                      "(read timeout %" APR_TIME_T_FMT " s)",
                      err_text(err, st), apr_time_sec(ex->read_timeout));
        return ferry_status_for(ex, err);
    }
    if (f.type == FERRY_FRAME_ABORT) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0110)
                      "Cannot get a response: the core aborted the request: "
                      "%.*s: %.*s", (int)f.code.len, f.code.ptr,
                      (int)f.message.len, f.message.ptr);
        return ferry_status_for(ex, FERRY_E_CORE_ABORT);
    }
    if (f.type != FERRY_FRAME_RESPONSE_HEAD) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0111)
                      "Cannot read the response head from the core: got a "
                      "frame of type %d instead", f.type);
        return ferry_status_for(ex, FERRY_E_PROTOCOL);
    }
    status = f.status;
    if (status == HTTP_SWITCHING_PROTOCOLS) {
        if (!ex->upgrade || !upgrade_matches(r, &f)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0112)
                          "Cannot switch protocols: the core answered 101 "
                          "but the client asked for %s",
                          ex->upgrade ? "a different Upgrade" : "no upgrade");
            return ferry_status_for(ex, FERRY_E_PROTOCOL);
        }
        apply_headers(ex, &f);
        npending = ferry_decoder_pending(ex->dec, &pending);
        ferry_decoder_consume(ex->dec, npending);
        return ferry_tunnel_run(ex, ex->sock, pending, npending);
    }
    if (ap_is_HTTP_INFO(status)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0113)
                      "Cannot relay the interim status %d from the core",
                      status);
        return ferry_status_for(ex, FERRY_E_PROTOCOL);
    }
    apply_headers(ex, &f);
    if (ap_is_HTTP_ERROR(status) && ferry_app_error_override(ex->app)) {
        /* PassengerErrorOverride: Apache's ErrorDocument answers. */
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "app answered %d; PassengerErrorOverride hands it to "
                      "ErrorDocument", status);
        ex->overridden = 1;
        apr_table_clear(r->headers_out);
        r->status_line = NULL;
        return status;
    }
    no_body = r->header_only || status == HTTP_NO_CONTENT
              || status == HTTP_NOT_MODIFIED;

    /* The body, frame by frame. */
    for (;;) {
        err = read_frame(ex, &f, &unflushed, NULL, &rv, &st);
        if (err == FERRY_E_CLIENT_ABORTED) {
            return client_gone(ex);
        }
        if (err != FERRY_OK) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0114)
                          "Cannot complete the response (status %d, %"
                          APR_OFF_T_FMT " body bytes relayed): %s", status,
                          sent, err_text(err, st));
            return ferry_cut_response(ex, err);
        }
        if (f.type == FERRY_FRAME_END) {
            break;
        }
        if (f.type == FERRY_FRAME_ABORT) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0115)
                          "Cannot complete the response (status %d, %"
                          APR_OFF_T_FMT " body bytes relayed): the core "
                          "aborted it: %.*s: %.*s", status, sent,
                          (int)f.code.len, f.code.ptr, (int)f.message.len,
                          f.message.ptr);
            return ferry_cut_response(ex, FERRY_E_CORE_ABORT);
        }
        if (f.type != FERRY_FRAME_BODY) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0116)
                          "Cannot complete the response: unexpected frame "
                          "of type %d from the core", f.type);
            return ferry_cut_response(ex, FERRY_E_PROTOCOL);
        }
        if (no_body || f.len == 0) {
            continue;
        }
        sent += (apr_off_t)f.len;
        if (buffer) {
            /* The decoder's buffer is reused: keep a copy. */
            b = apr_bucket_heap_create(f.data, f.len, NULL, c->bucket_alloc);
            APR_BRIGADE_INSERT_TAIL(ex->bb, b);
            held += (apr_off_t)f.len;
            if (held < FERRY_BUFFER_MAX) {
                continue;
            }
            held = 0;
        }
        else {
            b = apr_bucket_transient_create(f.data, f.len, c->bucket_alloc);
            APR_BRIGADE_INSERT_TAIL(ex->bb, b);
            unflushed = 1;
        }
        if (ferry_pass_out(ex, 0) != 0) {
            return client_gone(ex);
        }
    }

    APR_BRIGADE_INSERT_TAIL(ex->bb, apr_bucket_eos_create(c->bucket_alloc));
    if (ferry_pass_out(ex, 0) != 0) {
        return client_gone(ex);
    }
    ex->complete = 1;
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "relayed response %d with %" APR_OFF_T_FMT " body bytes",
                  status, sent);
    return OK;
}
