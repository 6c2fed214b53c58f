/*
 * ferry_exchange.c: helpers the data path steps share (ferry_exchange.h):
 * the one place an error becomes an HTTP status, passing bytes to the
 * client, cutting a response whose status is already out, the relay
 * path's ABORT. Called by the steps; calls none of them.
 */
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "util_filter.h"
#include "apr_strings.h"

#include "ferry_conn.h"
#include "ferry_exchange.h"
#include "ferry_log.h"

APLOG_USE_MODULE(ferry);

int ferry_status_for(const ferry_exchange_t *ex, ferry_err err)
{
    switch (err) {
    case FERRY_OK:
    case FERRY_E_CLIENT_ABORTED:
        return OK;
    case FERRY_E_CONNECT:
        return HTTP_SERVICE_UNAVAILABLE;
    case FERRY_E_TIMEOUT:
        return HTTP_GATEWAY_TIME_OUT;
    case FERRY_E_PROTOCOL:
    case FERRY_E_CORE_CLOSED:
    case FERRY_E_CORE_ABORT:
    case FERRY_E_APP:
    case FERRY_E_STALE:
        return HTTP_BAD_GATEWAY;
    case FERRY_E_HEAD_TOO_LARGE:
        return HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
    case FERRY_E_BODY_READ:
        return ap_map_http_request_error(ex->body_rv, HTTP_BAD_REQUEST);
    case FERRY_E_INTERNAL:
        break;
    }
    return HTTP_INTERNAL_SERVER_ERROR;
}

void ferry_send_abort(ferry_exchange_t *ex, const char *code,
                      const char *message)
{
    msgpack_sbuffer sb;

    if (ex->direct || ex->sock == NULL || ex->core_gone) {
        return;
    }
    msgpack_sbuffer_init(&sb);
    if (ferry_encode_abort(&sb, code, message) == 0) {
        /* Best effort, short: the connection is closed right after. */
        if (ferry_conn_send(ex->sock, sb.data, sb.size,
                            apr_time_from_sec(1)) != APR_SUCCESS) {
            ex->core_gone = 1;
        }
    }
    msgpack_sbuffer_destroy(&sb);
}

int ferry_client_left(ferry_exchange_t *ex)
{
    conn_rec *c = ex->r->connection;

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, ex->r,
                  "client went away while waiting for the response head");
    ex->client_left = 1;
    ex->outcome = "client_aborted";
    ex->conn_reusable = 0;
    ferry_send_abort(ex, "client_aborted",
                     "The client closed the connection before the response");
    apr_brigade_cleanup(ex->bb);
    /* Nothing more goes to this client (not even the empty response httpd
     * would finish the request with); its connection is closed. */
    c->aborted = 1;
    c->keepalive = AP_CONN_CLOSE;
    return OK;
}

int ferry_pass_out(ferry_exchange_t *ex, int flush)
{
    request_rec *r = ex->r;
    apr_status_t rv;

    if (flush) {
        APR_BRIGADE_INSERT_TAIL(ex->bb,
            apr_bucket_flush_create(r->connection->bucket_alloc));
    }
    rv = ap_pass_brigade(r->output_filters, ex->bb);
    apr_brigade_cleanup(ex->bb);
    ex->head_sent = 1;
    if (rv != APR_SUCCESS || r->connection->aborted) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r,
                      "client went away while receiving the response");
        return -1;
    }
    return 0;
}

int ferry_cut_response(ferry_exchange_t *ex, ferry_err err)
{
    request_rec *r = ex->r;
    conn_rec *c = r->connection;

    apr_brigade_cleanup(ex->bb);
    if (!ex->head_sent) {
        apr_table_clear(r->headers_out);
        r->status_line = NULL;
        return ferry_status_for(ex, err);
    }
    c->keepalive = AP_CONN_CLOSE;
    r->no_cache = 1;
    APR_BRIGADE_INSERT_TAIL(ex->bb,
        ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL, r->pool,
                               c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(ex->bb, apr_bucket_eos_create(c->bucket_alloc));
    ap_pass_brigade(r->output_filters, ex->bb);
    apr_brigade_cleanup(ex->bb);
    return OK;
}

void ferry_set_status(request_rec *r, int status)
{
    const char *line;

    r->status = status;
    /* A status httpd has no reason phrase for keeps its number. */
    line = ap_get_status_line(status);
    if (atoi(line) != status) {
        r->status_line = apr_psprintf(r->pool, "%d ", status);
    }
}

int ferry_upgrade_asked(request_rec *r, const char *v, apr_size_t len)
{
    const char *asked = apr_table_get(r->headers_in, "Upgrade");

    return asked != NULL
           && ap_find_token(r->pool, asked, apr_pstrmemdup(r->pool, v, len));
}
