/*
 * ferry_lease.c: the core's part of a direct-path exchange (protocol v3,
 * docs/protocol.md "Version 3: leases" and "Passes").
 *
 *   ferry_lease_from_pass  a request the core allowed in advance (a pass
 *                        from an earlier LEASE of the app): an idle
 *                        connection to one of the pass's processes (with
 *                        sticky sessions, the one the request's cookie
 *                        names, if any), the app's request head built here
 *                        (ferry_app_head.c); no core round trip
 *   ferry_lease_get      set aside this child's idle connections to the
 *                        app ("held"), send REQUEST_HEAD v3 on the client
 *                        connection's core link (pass and pass_sticky
 *                        unless FERRY_PASS=off), read LEASE (with the app
 *                        socket passed by SCM_RIGHTS, or "reuse" one held;
 *                        its pass, if any, kept for the app) or PROCEED
 *                        (the relay path follows)
 *   ferry_lease_release  DONE to the core (none on a pass: the app's
 *                        loader reports those requests); the app
 *                        connection back to the child's cache or closed
 *
 * Apache's user never opens an app socket itself: the core connects
 * (checking the listener's peer credentials) and passes the connection.
 */
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"

#include "ferry_app_cache.h"
#include "ferry_app_head.h"
#include "ferry_client_watch.h"
#include "ferry_conn.h"
#include "ferry_daemon.h"
#include "ferry_exchange.h"
#include "ferry_log.h"
#include "ferry_map.h"

APLOG_USE_MODULE(ferry);

/* The core's sticky cookie name when none is configured (core/src/config/
 * schema.ts DEFAULT_STICKY_COOKIE_NAME, Passenger's). */
#define FERRY_STICKY_COOKIE_DEFAULT "_passenger_route"

static apr_status_t sbuffer_cleanup(void *data)
{
    msgpack_sbuffer_destroy(data);
    return APR_SUCCESS;
}

/* Connections set aside for this request and not leased go back (their idle
 * time runs on). Also the request pool's cleanup, for early exits. */
static void give_back_held(ferry_exchange_t *ex)
{
    apr_size_t i;

    for (i = 0; i < ex->nheld; i++) {
        if (ex->held[i] != NULL) {
            ferry_app_cache_put(ex->held[i], 0);
            ex->held[i] = NULL;
        }
    }
    ex->nheld = 0;
}

static apr_status_t held_cleanup(void *data)
{
    give_back_held(data);
    return APR_SUCCESS;
}

/* The request no longer runs on process lease_id (in-flight count). */
static void uncount(ferry_exchange_t *ex)
{
    if (ex->counted) {
        ferry_app_cache_uncount(ex->lease_id);
        ex->counted = 0;
    }
}

/* The app connection of a request that ended without a release (an error
 * path): closed, never cached. */
static apr_status_t conn_cleanup(void *data)
{
    ferry_exchange_t *ex = data;

    if (ex->conn != NULL) {
        ferry_app_conn_close(ex->conn);
        ex->conn = NULL;
    }
    uncount(ex);
    return APR_SUCCESS;
}

/* The cache key of the app: the (app_root, app_env, app_group_name) the
 * head carries. */
static const char *make_app_key(ferry_exchange_t *ex)
{
    const ferry_opt_t *o = ex->head.app;
    apr_size_t n = ex->head.napp;
    const char *root = ferry_app_option_str(o, n, "app_root");
    const char *env = ferry_app_option_str(o, n, "app_env");
    const char *group = ferry_app_option_str(o, n, "app_group_name");

    return apr_pstrcat(ex->r->pool, root ? root : "", "\n", env ? env : "",
                       "\n", group ? group : "", NULL);
}

/* ex->app_key, made once per request (with the cleanup that gives back
 * held connections on early exits). */
static void app_key(ferry_exchange_t *ex)
{
    if (ex->app_key == NULL) {
        ex->app_key = make_app_key(ex);
        apr_pool_cleanup_register(ex->r->pool, ex, held_cleanup,
                                  apr_pool_cleanup_null);
    }
}

/* The LEASE's fields into ex (copied: the decoder's buffer is reused). */
static ferry_err take_lease(ferry_exchange_t *ex, const ferry_frame_t *f)
{
    request_rec *r = ex->r;
    ferry_str_t n, v;
    apr_size_t i;
    int fd;

    ex->lease_id = apr_pstrmemdup(r->pool, f->id.ptr, f->id.len);
    ex->lease_pid = f->pid;
    ex->chunked = f->chunked;
    ex->lease_head = apr_pmemdup(r->pool, f->lease_head, f->lease_head_len);
    ex->lease_head_len = f->lease_head_len;
    ex->add_headers = apr_array_make(r->pool, (int)(2 * f->nadd + 1),
                                     sizeof(const char *));
    for (i = 0; i < f->nadd; i++) {
        ferry_frame_add_header(f, i, &n, &v);
        APR_ARRAY_PUSH(ex->add_headers, const char *) =
            apr_pstrmemdup(r->pool, n.ptr, n.len);
        APR_ARRAY_PUSH(ex->add_headers, const char *) =
            apr_pstrmemdup(r->pool, v.ptr, v.len);
    }
    ex->lease_time = apr_time_now();
    ex->deadline = f->deadline_ms > 0
                   ? ex->lease_time + apr_time_from_msec(f->deadline_ms) : 0;

    fd = ferry_link_take_fd(ex->link);
    if (f->reuse) {
        if (fd >= 0) {
            close(fd);                  /* a stray one: reuse sends none */
        }
        for (i = 0; i < ex->nheld; i++) {
            if (ex->held[i] != NULL && !strcmp(ex->held[i]->id, ex->lease_id)) {
                ex->conn = ex->held[i];
                ex->held[i] = NULL;
                break;
            }
        }
        if (ex->conn == NULL) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0130)
                          "Cannot use the lease from the core: it reuses "
                          "connection %s, which this request does not hold",
                          ex->lease_id);
            return FERRY_E_PROTOCOL;
        }
        ex->conn_reused = 1;
    }
    else {
        if (fd < 0) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0131)
                          "Cannot use the lease from the core: no connection "
                          "to the app came with it");
            return FERRY_E_PROTOCOL;
        }
        ex->conn = ferry_app_conn_from_fd(fd, ex->app_key, ex->lease_id,
                                          ex->lease_pid);
        if (ex->conn == NULL) {
            return FERRY_E_INTERNAL;
        }
        ex->conn_reused = 0;
    }
    ex->conn->pid = ex->lease_pid;
    apr_pool_cleanup_register(r->pool, ex, conn_cleanup, apr_pool_cleanup_null);
    ex->direct = 1;
    ferry_app_cache_count(ex->lease_id);
    ex->counted = 1;
    give_back_held(ex);
    if (ex->head.pass) {
        /* Its pass (valid from now), or none: then the app has none. */
        ferry_app_cache_pass_store(ex->app_key, f);
        ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r, "lease %s %s",
                      ex->lease_id, f->has_pass ? "brought a pass"
                                                : "brought no pass");
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "lease %s: app pid %" APR_INT64_T_FMT ", %s connection, "
                  "body %s, deadline %" APR_INT64_T_FMT " ms", ex->lease_id,
                  ex->lease_pid, ex->conn_reused ? "kept" : "new",
                  ex->chunked ? "chunked" : "as is", (apr_int64_t)f->deadline_ms);
    return FERRY_OK;
}

/* Send the head on the link and read the core's first answer. *retry is
 * set when a reused link turned out closed before anything happened. */
static ferry_err exchange_head(ferry_exchange_t *ex, msgpack_sbuffer *sb,
                               int *retry)
{
    request_rec *r = ex->r;
    ferry_frame_t f;
    ferry_proto_status st;
    apr_status_t rv;
    apr_size_t got, total = 0;
    apr_socket_t *client;
    int reused;
    int fd;

    *retry = 0;
    rv = ferry_link_acquire(r, &ex->link, &reused);
    if (rv != APR_SUCCESS) {
        ex->link = NULL;
        if (rv != APR_ENOMEM) {
            ferry_app_cache_pass_clear();   /* no core: no passes */
        }
        return rv == APR_ENOMEM ? FERRY_E_INTERNAL : FERRY_E_CONNECT;
    }
    ex->sock = ex->link->sock;
    ex->dec = ex->link->dec;
    ex->reused = reused ? 1 : 0;
    fd = ferry_link_take_fd(ex->link);  /* none expected between exchanges */
    if (fd >= 0) {
        close(fd);
    }

    rv = ferry_conn_send(ex->sock, sb->data, sb->size, ex->write_timeout);
    if (rv != APR_SUCCESS) {
        ferry_link_release(r, ex->link, 0);
        ex->link = NULL;
        ferry_app_cache_pass_clear();       /* the core link was lost */
        if (reused) {
            *retry = 1;
            return FERRY_E_CORE_CLOSED;
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0132)
                      "Cannot send the request head to the core at %s",
                      ferry_core_socket_path());
        return FERRY_E_CONNECT;
    }

    /* The answer: LEASE or PROCEED, within PassengerReadTimeout (the core
     * may queue the request or start a process first; on the relay path it
     * answers PROCEED with the response head). A client that hangs up
     * meanwhile (ferry_client_watch.c) ends it: nothing may follow the head
     * before the answer, so the link is closed, which the core takes as
     * the client going away. */
    client = ferry_client_socket(r);
    for (;;) {
        st = ferry_decoder_next(ex->dec, &f);
        if (st == FERRY_PROTO_OK) {
            break;
        }
        if (st != FERRY_PROTO_NEED_MORE) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0133)
                          "Cannot read the core's answer to the request head: "
                          "%s", ferry_proto_strstatus(st));
            return FERRY_E_PROTOCOL;
        }
        rv = ferry_conn_recv(r, ex->link, ex->read_timeout, client, &got);
        total += got;
        if (rv == APR_SUCCESS) {
            continue;
        }
        if (rv == APR_ECONNABORTED) {
            ferry_link_release(r, ex->link, 0);
            ex->link = NULL;
            ex->sock = NULL;
            return FERRY_E_CLIENT_ABORTED;
        }
        if (!APR_STATUS_IS_TIMEUP(rv)) {
            ferry_app_cache_pass_clear();   /* the core link was lost */
        }
        /* Nothing of the answer came: the core closed the link (an idle one
         * it dropped, or the core died). Nothing of the request went
         * anywhere yet in v3, so it is sent again once on a new connection,
         * which waits within the connect budget for a restarted core. */
        if (total == 0 && !APR_STATUS_IS_TIMEUP(rv)) {
            ferry_link_release(r, ex->link, 0);
            ex->link = NULL;
            *retry = 1;
            return FERRY_E_CORE_CLOSED;
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0134)
                      "Cannot read the core's answer to the request head: %s "
                      "(read timeout %" APR_TIME_T_FMT " s)",
                      APR_STATUS_IS_TIMEUP(rv) ? "no answer in time"
                                               : "the connection ended",
                      apr_time_sec(ex->read_timeout));
        return APR_STATUS_IS_TIMEUP(rv) ? FERRY_E_TIMEOUT : FERRY_E_CORE_CLOSED;
    }

    switch (f.type) {
    case FERRY_FRAME_LEASE:
        return take_lease(ex, &f);
    case FERRY_FRAME_PROCEED:
        fd = ferry_link_take_fd(ex->link);
        if (fd >= 0) {
            close(fd);
        }
        give_back_held(ex);
        if (ex->head.pass) {
            ferry_app_cache_pass_drop(ex->app_key);
        }
        ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                      "the core relays this request (PROCEED)");
        return FERRY_OK;
    case FERRY_FRAME_ABORT:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0135)
                      "Cannot get a lease: the core aborted the request: "
                      "%.*s: %.*s", (int)f.code.len, f.code.ptr,
                      (int)f.message.len, f.message.ptr);
        return FERRY_E_CORE_ABORT;
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0136)
                      "Cannot read the core's answer to the request head: "
                      "got a frame of type %d instead of LEASE or PROCEED",
                      f.type);
        return FERRY_E_PROTOCOL;
    }
}

/* The sticky cookie name of the app as the head's app options give it to
 * the core (PassengerStickySessionsCookieName, else the core's default),
 * or NULL when they do not turn sticky sessions on. */
static const char *sticky_cookie(const ferry_request_head_t *h)
{
    const char *name;
    apr_size_t i;

    for (i = 0; i < h->napp; i++) {
        if (h->app[i].type == FERRY_OPT_BOOL
            && strcmp(h->app[i].key, "sticky_sessions") == 0) {
            if (!h->app[i].i) {
                return NULL;
            }
            name = ferry_app_option_str(h->app, h->napp,
                                        "sticky_sessions_cookie_name");
            return name != NULL ? name : FERRY_STICKY_COOKIE_DEFAULT;
        }
    }
    return NULL;
}

int ferry_lease_from_pass(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    ferry_app_conn_t *conn;
    apr_array_header_t *add;
    apr_size_t len, cap = 4096;
    char *buf;
    int chunked;

    if (!ex->passes || ex->upgrade) {
        return 0;
    }
    app_key(ex);
    conn = ferry_app_cache_pass_take(ex->app_key, &ex->head,
                                     sticky_cookie(&ex->head), r->pool, &add);
    if (conn == NULL) {
        return 0;
    }
    /* The head the core would have put in a LEASE, marked as a pass's. */
    buf = apr_palloc(r->pool, cap);
    len = ferry_app_head(&ex->head, 1, buf, cap, &chunked);
    if (len > cap) {
        buf = apr_palloc(r->pool, len);
        len = ferry_app_head(&ex->head, 1, buf, len, &chunked);
    }
    if (len == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "no pass for this "
                      "request: its head is one only the core may build");
        ferry_app_cache_uncount(conn->id);
        ferry_app_cache_put(conn, 0);
        return 0;
    }
    ex->conn = conn;
    ex->conn_reused = 1;
    ex->lease_id = apr_pstrdup(r->pool, conn->id);
    ex->lease_pid = conn->pid;
    ex->counted = 1;
    ex->chunked = chunked;
    ex->lease_head = buf;
    ex->lease_head_len = len;
    ex->add_headers = add;
    ex->lease_time = apr_time_now();
    ex->deadline = 0;
    ex->done_sent = 0;
    ex->direct = 1;
    ex->on_pass = 1;
    apr_pool_cleanup_register(r->pool, ex, conn_cleanup, apr_pool_cleanup_null);
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "on a pass: app connection %s (pid %" APR_INT64_T_FMT "), "
                  "body %s", ex->lease_id, ex->lease_pid,
                  chunked ? "chunked" : "as is");
    return 1;
}

ferry_err ferry_lease_get(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    const char *ids[FERRY_HELD_MAX];
    msgpack_sbuffer *sb;
    apr_size_t i, n = 0;
    ferry_err err;
    int retry, attempt;

    ex->direct = 0;
    ex->on_pass = 0;
    ex->conn = NULL;
    ex->done_sent = 0;
    ex->lease_id = NULL;
    app_key(ex);

    /* The idle connections this child holds for the app, newest first. */
    ex->nheld = ferry_app_cache_set_aside(ex->app_key, ex->held,
                                          FERRY_HELD_MAX);
    for (i = 0; i < ex->nheld; i++) {
        if (ex->stale_id == NULL || strcmp(ex->held[i]->id, ex->stale_id)) {
            ids[n++] = ex->held[i]->id;
        }
    }
    ex->head.version = FERRY_PROTO_VERSION;
    ex->head.held = ids;
    ex->head.nheld = n;
    ex->head.pass = ex->passes && !ex->upgrade;
    /* ferry_app_cache_pass_take routes by the sticky cookie. */
    ex->head.pass_sticky = ex->head.pass;

    sb = apr_pcalloc(r->pool, sizeof(*sb));
    msgpack_sbuffer_init(sb);
    apr_pool_cleanup_register(r->pool, sb, sbuffer_cleanup,
                              apr_pool_cleanup_null);
    if (ferry_encode_request_head(sb, &ex->head) != 0) {
        give_back_held(ex);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0137)
                      "Cannot encode the request head: over the 1 MiB frame "
                      "limit (%" APR_SIZE_T_FMT " headers)", ex->head.nheaders);
        return FERRY_E_HEAD_TOO_LARGE;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE3, 0, r,
                  "sending a v3 request head (%" APR_SIZE_T_FMT " bytes, %"
                  APR_SIZE_T_FMT " held connections)", (apr_size_t)sb->size, n);

    /* A core link that closes before the answer is replaced once. */
    for (attempt = 0; ; attempt++) {
        err = exchange_head(ex, sb, &retry);
        if (!retry || attempt > 0) {
            break;
        }
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "the core connection closed before an answer; sending "
                      "the head on a new one");
    }
    if (err != FERRY_OK) {
        give_back_held(ex);
    }
    return err;
}

void ferry_lease_release(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    msgpack_sbuffer sb;
    ferry_done_t d;
    int sent = 0;

    if (!ex->direct) {
        return;
    }
    give_back_held(ex);
    memset(&d, 0, sizeof(d));
    d.id = ex->lease_id;
    d.outcome = ex->outcome ? ex->outcome : "app_error";
    d.status = ex->sent_status;
    d.bytes_in = ex->bytes_in;
    d.bytes_out = ex->bytes_out;
    d.duration_us = apr_time_now() - ex->lease_time;
    d.reusable = ex->conn_reusable && strcmp(d.outcome, "ok") == 0;

    /* The app connection first: back to the cache or closed. */
    if (ex->conn != NULL) {
        apr_pool_cleanup_kill(r->pool, ex, conn_cleanup);
        if (d.reusable) {
            ex->conn->exchanges++;
            ferry_app_cache_put(ex->conn, 1);
        }
        else {
            ferry_app_conn_close(ex->conn);
        }
        ex->conn = NULL;
    }
    uncount(ex);

    /* DONE: one-way, nothing to wait for. A core that died meanwhile
     * changes nothing for this request. None on a pass: the core never
     * heard of this exchange (the app's loader reports it). */
    if (ex->on_pass) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                      "pass exchange on %s: %s, status %d, %" APR_OFF_T_FMT
                      " bytes in, %" APR_OFF_T_FMT " bytes out, %s",
                      ex->lease_id, d.outcome, (int)d.status, ex->bytes_in,
                      ex->bytes_out, d.reusable ? "kept" : "closed");
        ex->on_pass = 0;
        ex->direct = 0;
        return;
    }
    if (ex->link != NULL && ex->sock != NULL && !ex->core_gone) {
        msgpack_sbuffer_init(&sb);
        if (ferry_encode_done(&sb, &d) == 0
            && ferry_conn_send(ex->sock, sb.data, sb.size,
                               ex->write_timeout) == APR_SUCCESS) {
            sent = 1;
            ex->done_sent = 1;
        }
        msgpack_sbuffer_destroy(&sb);
        if (!sent) {
            ex->core_gone = 1;
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "cannot send DONE for lease %s (core gone?)",
                          ex->lease_id);
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "DONE %s: %s, status %d, %" APR_OFF_T_FMT " bytes in, %"
                  APR_OFF_T_FMT " bytes out, %" APR_TIME_T_FMT " us, %s",
                  ex->lease_id, d.outcome, (int)d.status, ex->bytes_in,
                  ex->bytes_out, (apr_time_t)d.duration_us,
                  d.reusable ? "kept" : "closed");
    ex->direct = 0;
}
