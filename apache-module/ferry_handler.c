/*
 * ferry_handler.c: the handler hook, the orchestrator of the data path
 * (docs/protocol.md). It declines requests that are not for an app, else
 * calls the steps top-down, the way mod_proxy_fcgi's handler reads:
 *
 *   Step One    map: is the request ours? The REQUEST_HEAD fields
 *               (ferry_head.c).
 *   Step Two    lease: the core decides (protocol v3: ferry_lease.c), in
 *               advance when it gave this child a pass for the app, else
 *               now; on the relay path (v2, or v3 PROCEED) the head goes
 *               to the core on the client connection's core link
 *   Step Three  send: the request to the app (direct: ferry_app_http.c)
 *               or as BODY frames to the core (relay: ferry_body.c)
 *   Step Four   relay: the response to the client (ferry_app_http.c /
 *               ferry_response.c), or the tunnel after a 101
 *               (ferry_tunnel.c)
 *   Step Five   release: DONE to the core (none on a pass), the app
 *               connection back to the child's cache (ferry_lease.c); the
 *               core link kept or closed
 *
 * Statuses travel up: every step returns a ferry_err or an HTTP status;
 * ferry_exchange.c's ferry_status_for() is the one place they are chosen.
 *
 * The direct path (protocol v3) is the default; FERRY_DATA_PATH=relay in
 * Apache's environment (read once per child) selects the relay path
 * (protocol v2) for every request. The direct path asks for and uses
 * passes (docs/protocol.md "Passes") unless FERRY_PASS=off.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_core.h"

#include "ap_mmn.h"
#include "apr_optional.h"
#include "apr_strings.h"

#include "ferry_app_cache.h"
#include "ferry_conn.h"
#include "ferry_daemon.h"
#include "ferry_exchange.h"
#include "ferry_handler.h"
#include "ferry_log.h"
#include "ferry_map.h"
#include "ferry_pass.h"
#include "ferry_proto.h"

APLOG_USE_MODULE(ferry);

/* Protocol v3 unless Apache's environment has FERRY_DATA_PATH=relay. */
static int direct_path;
/* Passes (docs/protocol.md "Passes") unless FERRY_PASS=off. */
static int passes;

void ferry_handler_child_init(apr_pool_t *pchild, server_rec *s)
{
    const char *v = getenv("FERRY_DATA_PATH");
    const char *p = getenv("FERRY_PASS");

    direct_path = v == NULL || strcmp(v, "relay") != 0;
    passes = direct_path && (p == NULL || strcmp(p, "off") != 0);
    ferry_app_cache_child_init(pchild, s);
    ap_log_error(APLOG_MARK, APLOG_TRACE1, 0, s, "data path: %s%s",
                 direct_path ? "direct (protocol v3)" : "relay (protocol v2)",
                 passes ? ", passes" : "");
}

static apr_status_t shared_counts_cleanup(void *data)
{
    (void)data;
    ferry_pass_shared_destroy();
    return APR_SUCCESS;
}

int ferry_handler_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;
    /* Not in the dry run (the first of the two startup passes): its DSO
     * is unloaded afterwards. Children forked from here on inherit it;
     * those of the previous generation keep theirs. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (ferry_pass_shared_create() != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, FERRY_LOGNO(0140)
                     "Cannot map the in-flight counts the children share; "
                     "each child picks app processes by its own requests "
                     "only");
        return OK;
    }
    apr_pool_cleanup_register(pconf, NULL, shared_counts_cleanup,
                              apr_pool_cleanup_null);
    return OK;
}

static apr_status_t sbuffer_cleanup(void *data)
{
    msgpack_sbuffer_destroy(data);
    return APR_SUCCESS;
}

/* Encode the v2 REQUEST_HEAD (and END when there is no body) into sb. */
static ferry_err encode_relay_head(ferry_exchange_t *ex, msgpack_sbuffer *sb)
{
    if (ferry_encode_request_head(sb, &ex->head) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, ex->r, FERRY_LOGNO(0104)
                      "Cannot encode the request head: over the 1 MiB frame "
                      "limit or app options could not be packed (%"
                      APR_SIZE_T_FMT " headers)", ex->head.nheaders);
        return FERRY_E_HEAD_TOO_LARGE;
    }
    if (!ex->has_body && ferry_encode_end(sb) != 0) {
        return FERRY_E_INTERNAL;
    }
    return FERRY_OK;
}

/* When no ErrorDocument is configured for a 502/503/504 of ours, answer
 * with a short page that points at the error log. */
static void error_page(request_rec *r, int status)
{
    const char *text;

    if (ap_response_code_string(r, ap_index_of_response(status)) != NULL) {
        return;
    }
    switch (status) {
    case HTTP_SERVICE_UNAVAILABLE:
        text = "This website is temporarily unavailable: its application "
               "server is not answering. Please try again in a moment.";
        break;
    case HTTP_GATEWAY_TIME_OUT:
        text = "The application did not answer in time.";
        break;
    case HTTP_BAD_GATEWAY:
        text = "The application sent an incomplete or invalid response.";
        break;
    default:
        return;
    }
    ap_custom_response(r, status, apr_psprintf(r->pool,
        "<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body>\n"
        "<h1>%s</h1>\n<p>%s</p>\n<p><small>Details are in the web server's "
        "error log (lines tagged FERRY01xx).</small></p>\n</body></html>\n",
        status, ap_get_status_line(status) + 4, ap_get_status_line(status) + 4,
        text));
}

/* The relay path, protocol v2: REQUEST_HEAD, BODY..., END to the core on
 * the client connection's core link; the response relayed from it. */
static int relay_exchange(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    msgpack_sbuffer *sb;
    apr_status_t rv;
    ferry_err err;
    int rc, attempt, reused;

    /* The request head, encoded once (sent again only on a retry). */
    sb = apr_pcalloc(r->pool, sizeof(*sb));
    msgpack_sbuffer_init(sb);
    apr_pool_cleanup_register(r->pool, sb, sbuffer_cleanup,
                              apr_pool_cleanup_null);
    err = encode_relay_head(ex, sb);
    if (err != FERRY_OK) {
        return ferry_status_for(ex, err);
    }

    for (attempt = 0; ; attempt++) {
        /* The core connection (the client connection's idle one, else a
         * new one). */
        rv = ferry_link_acquire(r, &ex->link, &reused);
        if (rv != APR_SUCCESS) {
            if (rv == APR_ENOMEM) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0105)
                              "Cannot allocate the frame decoder");
                rc = ferry_status_for(ex, FERRY_E_INTERNAL);
            }
            else {
                rc = ferry_status_for(ex, FERRY_E_CONNECT);
            }
            ex->link = NULL;
            return rc;
        }
        ex->sock = ex->link->sock;
        ex->dec = ex->link->dec;
        ex->reused = reused ? 1 : 0;
        ex->stale = 0;

        /* The request head. */
        rv = ferry_conn_send(ex->sock, sb->data, sb->size, ex->write_timeout);
        if (rv != APR_SUCCESS) {
            ferry_link_release(r, ex->link, 0);
            ex->link = NULL;
            if (reused && attempt == 0) {
                /* The core closed the idle connection just now. */
                continue;
            }
            /* The core accepted and then went away (shutting down). */
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0106)
                          "Cannot send the request head to the core at %s",
                          ferry_core_socket_path());
            return ferry_status_for(ex, FERRY_E_CONNECT);
        }
        ap_log_rerror(APLOG_MARK, APLOG_TRACE3, 0, r,
                      "sent request head (%" APR_SIZE_T_FMT " bytes, body %s, "
                      "upgrade %s, %s connection)", (apr_size_t)sb->size,
                      ex->has_body ? "yes" : "no", ex->upgrade ? "yes" : "no",
                      reused ? "reused" : "new");

        /* The request body. */
        if (ex->has_body) {
            err = ferry_send_body(ex);
            if (err != FERRY_OK) {
                return ferry_status_for(ex, err);
            }
        }

        /* The response. */
        rc = ferry_relay_response(ex);
        if (ex->stale && !ex->has_body && attempt == 0) {
            /* A reused connection the core closed as we sent (it stops
             * between exchanges only): nothing was started, send again. */
            ferry_link_release(r, ex->link, 0);
            ex->link = NULL;
            continue;
        }
        return rc;
    }
}

/* v3 PROCEED: the rest is a version 2 exchange (BODY..., END; the core's
 * response). */
static int proceed_exchange(ferry_exchange_t *ex)
{
    msgpack_sbuffer sb;
    ferry_err err = FERRY_OK;

    ex->reused = 0;                     /* the core answered on this link */
    if (ex->has_body) {
        err = ferry_send_body(ex);
    }
    else {
        msgpack_sbuffer_init(&sb);
        if (ferry_encode_end(&sb) != 0
            || ferry_conn_send(ex->sock, sb.data, sb.size,
                               ex->write_timeout) != APR_SUCCESS) {
            ex->core_gone = 1;
        }
        msgpack_sbuffer_destroy(&sb);
    }
    if (err != FERRY_OK) {
        return ferry_status_for(ex, err);
    }
    return ferry_relay_response(ex);
}

/* The app reset its connection with our request unread: most often the
 * process is exiting (it answered its last request and quit), and the core
 * may not know yet, so an immediate retry could be leased to it again. Wait
 * until the process is gone (then the core has reaped it and knows), at
 * most FERRY_EXIT_WAIT (a live app that timed out a kept connection just
 * as we sent costs that once); kill(pid, 0) only asks (EPERM: it runs as
 * another user, so it is still there). */
#define FERRY_EXIT_WAIT apr_time_from_msec(1000)
#define FERRY_EXIT_POLL apr_time_from_msec(10)

static void wait_app_gone(request_rec *r, apr_int64_t pid)
{
    apr_time_t until = apr_time_now() + FERRY_EXIT_WAIT;

    if (pid <= 1) {
        return;
    }
    while (kill((pid_t)pid, 0) == 0 || errno == EPERM) {
        if (apr_time_now() >= until) {
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                          "app process %" APR_INT64_T_FMT " still there after "
                          "%" APR_TIME_T_FMT " ms; retrying anyway", pid,
                          apr_time_as_msec(FERRY_EXIT_WAIT));
            return;
        }
        apr_sleep(FERRY_EXIT_POLL);
    }
}

/* What DONE reports for a send step that failed. */
static const char *send_outcome(ferry_err err)
{
    switch (err) {
    case FERRY_E_TIMEOUT:
        return "timeout";
    case FERRY_E_BODY_READ:
    case FERRY_E_CLIENT_ABORTED:
        return "client_aborted";
    default:
        return "app_error";
    }
}

/* The direct path, protocol v3: the core leases an app connection, the
 * module speaks HTTP/1.1 to the app. One retry when a kept connection
 * turns out closed before any response byte. */
static int direct_exchange(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    ferry_err err;
    int rc, attempt;

    for (attempt = 0; ; attempt++) {
        /* Step Two: a pass the core gave this child for the app (no round
         * trip); else the lease (or PROCEED: the relay path). A retry
         * always asks the core. */
        if (attempt > 0 || !ferry_lease_from_pass(ex)) {
            err = ferry_lease_get(ex);
            if (err == FERRY_E_CLIENT_ABORTED) {
                return ferry_client_left(ex);
            }
            if (err != FERRY_OK) {
                return ferry_status_for(ex, err);
            }
            if (!ex->direct) {
                return proceed_exchange(ex);
            }
        }

        /* Step Three: the request to the app. */
        err = ferry_app_send(ex);

        /* Step Four: the response (or the tunnel). */
        if (err == FERRY_OK || err == FERRY_E_APP) {
            rc = ferry_app_relay(ex, &err);
        }
        else {
            ex->outcome = send_outcome(err);
            rc = ferry_status_for(ex, err);
        }
        if (err == FERRY_E_STALE && attempt == 0) {
            ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                          "app connection %s was stale; asking the core%s",
                          ex->lease_id, ex->on_pass ? "" : " again");
            ex->outcome = "stale";
            ex->sent_status = 0;
            ex->stale_id = ex->lease_id;
            ferry_lease_release(ex);
            if (ex->app_exiting) {
                wait_app_gone(r, ex->lease_pid);
                ex->app_exiting = 0;
            }
            ex->bytes_in = ex->bytes_out = 0;
            ex->conn_reusable = 0;
            continue;
        }
        if (err == FERRY_E_STALE) {
            ex->outcome = "app_error";
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FERRY_LOGNO(0138)
                          "Cannot get a response from the app (pid %"
                          APR_INT64_T_FMT "): the connection closed before "
                          "the response, also on the retry", ex->lease_pid);
        }
        /* Step Five: DONE; the app connection kept or closed. */
        if (ex->sent_status == 0 && !ex->client_left) {
            ex->sent_status = ex->head_sent || rc == OK ? r->status : rc;
        }
        ferry_lease_release(ex);
        return rc;
    }
}

int ferry_handler(request_rec *r)
{
    ferry_exchange_t *ex;
    const ferry_app_t *app;
    const char *pending;
    int rc, reusable;

    /* Step One: ours? (mod_rewrite's [R] redirects stay Apache's.) */
    app = ferry_request_app(r);
    if (app == NULL) {
        return DECLINED;
    }
    if (r->handler != NULL && !strcmp(r->handler, "redirect-handler")) {
        return DECLINED;
    }
    /* In r->pool: cleanups of the steps refer to it. */
    ex = apr_pcalloc(r->pool, sizeof(*ex));
    ex->r = r;
    ex->app = app;
    ex->read_timeout = ferry_app_read_timeout(r, app);
    if (ex->read_timeout <= 0) {
        ex->read_timeout = r->server->timeout;
    }
    ex->write_timeout = r->server->timeout;
    ex->upgrade = ferry_head_wants_upgrade(r) ? 1 : 0;
    ex->passes = passes;
    ex->has_body = ap_request_has_body(r) ? 1 : 0;
    ex->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    ferry_head_build(ex);

    if (direct_path) {
        rc = direct_exchange(ex);
        /* The core link: clean between exchanges after a DONE or a relayed
         * exchange that completed. */
        reusable = !ex->core_gone && ex->link != NULL
                   && (ex->lease_id != NULL ? ex->done_sent : ex->complete)
                   && ferry_decoder_pending(ex->dec, &pending) == 0;
    }
    else {
        rc = relay_exchange(ex);
        reusable = ex->complete && !ex->core_gone;
    }
    ferry_link_release(r, ex->link, reusable);
    if (!ex->overridden) {
        error_page(r, rc);
    }
    return rc;
}
