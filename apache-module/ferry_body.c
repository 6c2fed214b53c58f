/*
 * ferry_body.c: Step Four, the request body. Reads the (dechunked) body
 * through r->input_filters, gathers it into blocks of at most 64 KiB and
 * sends each as a BODY frame, then END (mod_wsgi's wsgi_execute_remote shape). A body that
 * cannot be read answers 400/408/413 (ap_map_http_request_error). When the
 * core stops reading (it answered early and closed), the rest of the body is
 * still drained from the client so the response can be delivered.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "util_filter.h"

#include "ferry_conn.h"
#include "ferry_exchange.h"
#include "ferry_log.h"

APLOG_USE_MODULE(ferry);

/* Send data as BODY frames of at most FERRY_BODY_CHUNK bytes. */
static void send_chunks(ferry_exchange_t *ex, const char *data, apr_size_t len)
{
    apr_size_t n;
    apr_status_t rv;

    while (len > 0 && !ex->core_gone) {
        n = len < FERRY_BODY_CHUNK ? len : FERRY_BODY_CHUNK;
        rv = ferry_conn_send_body(ex->sock, data, n, ex->write_timeout);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, ex->r,
                          "the core stopped reading the request body; "
                          "draining the rest from the client");
            ex->core_gone = 1;
            return;
        }
        data += n;
        len -= n;
    }
}

/* The body is gathered into blocks of up to FERRY_BODY_CHUNK before it is
 * sent: httpd's input filters hand it out in socket-read sized pieces (often
 * 8 KB), and a frame per piece costs a write here and a frame, a stream push
 * and an app write in the core. A block goes out as soon as the client has
 * nothing more ready (a non-blocking read would block), so a slow upload is
 * still streamed as it arrives. */
ferry_err ferry_send_body(ferry_exchange_t *ex)
{
    request_rec *r = ex->r;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);
    apr_bucket *b;
    const char *data;
    char *block = apr_palloc(r->pool, FERRY_BODY_CHUNK);
    apr_size_t len, used = 0, n;
    apr_off_t total = 0;
    apr_status_t rv;
    apr_read_type_e mode;
    int seen_eos = 0;
    msgpack_sbuffer sb;

    do {
        mode = used > 0 ? APR_NONBLOCK_READ : APR_BLOCK_READ;
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, mode,
                            FERRY_BODY_CHUNK - used);
        if (mode == APR_NONBLOCK_READ
            && (APR_STATUS_IS_EAGAIN(rv)
                || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(bb)))) {
            /* Nothing more ready now: send what we have, then wait. */
            apr_brigade_cleanup(bb);
            send_chunks(ex, block, used);
            used = 0;
            continue;
        }
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, FERRY_LOGNO(0107)
                          "Cannot read the request body from the client "
                          "after %" APR_OFF_T_FMT " bytes", total);
            ex->body_rv = rv;
            apr_brigade_cleanup(bb);
            ferry_send_abort(ex, "body_read_error",
                             "Cannot read the request body from the client");
            return FERRY_E_BODY_READ;
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            if (APR_BUCKET_IS_EOS(b)) {
                seen_eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                continue;               /* FLUSH and friends */
            }
            rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, FERRY_LOGNO(0108)
                              "Cannot read a request body bucket");
                ex->body_rv = rv;
                apr_brigade_cleanup(bb);
                ferry_send_abort(ex, "body_read_error",
                                 "Cannot read the request body");
                return FERRY_E_BODY_READ;
            }
            total += len;
            while (len > 0) {
                if (used == 0 && len >= FERRY_BODY_CHUNK) {
                    /* A whole block in one bucket: no copy. */
                    send_chunks(ex, data, FERRY_BODY_CHUNK);
                    data += FERRY_BODY_CHUNK;
                    len -= FERRY_BODY_CHUNK;
                    continue;
                }
                n = FERRY_BODY_CHUNK - used;
                if (n > len) {
                    n = len;
                }
                memcpy(block + used, data, n);
                used += n;
                data += n;
                len -= n;
                if (used == FERRY_BODY_CHUNK) {
                    send_chunks(ex, block, used);
                    used = 0;
                }
            }
        }
        apr_brigade_cleanup(bb);
    } while (!seen_eos);
    send_chunks(ex, block, used);

    if (!ex->core_gone) {
        msgpack_sbuffer_init(&sb);
        if (ferry_encode_end(&sb) != 0
            || ferry_conn_send(ex->sock, sb.data, sb.size,
                               ex->write_timeout) != APR_SUCCESS) {
            ex->core_gone = 1;
        }
        msgpack_sbuffer_destroy(&sb);
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE3, 0, r,
                  "sent request body: %" APR_OFF_T_FMT " bytes%s", total,
                  ex->core_gone ? " (core stopped reading)" : "");
    return FERRY_OK;
}
