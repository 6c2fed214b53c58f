/*
 * ferry_tunnel.c: upgraded connections (WebSocket). After a 101 with a
 * matching Upgrade (from the core on the relay path, from the app on the
 * direct path), send the 101 (ap_send_interim_response, as mod_proxy_http
 * does) and move raw bytes between the client and the peer socket (the core
 * connection or the app connection) until both directions are closed,
 * modelled on httpd's ap_proxy_tunnel_run (proxy_util.c):
 *
 * - client I/O goes through c->input_filters / c->output_filters, so mod_ssl
 *   keeps working; the peer socket is read and written non-blocking;
 * - bytes move only when the destination takes them: a chunk read from the
 *   client is held until the peer socket accepted all of it (client reads
 *   pause meanwhile), and peer data is read only after the previous chunk
 *   was written and flushed to the client (a write bounded by Timeout);
 * - a side's EOF becomes shutdown(SHUT_WR) on the other side (half-close);
 * - no byte moving for PassengerWebSocketIdleTimeout closes both sides;
 * - mod_reqtimeout is removed, the connection is not kept alive, and nothing
 *   is ever answered with an error page once the 101 went out.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "apr_poll.h"

#include "ferry_exchange.h"
#include "ferry_log.h"

APLOG_USE_MODULE(ferry);

/* Bytes moved per read, each direction. */
#define FERRY_TUNNEL_BUF (64 * 1024)
/* Idle timeout when PassengerWebSocketIdleTimeout is 0 (its default is
 * Apache's Timeout, decided in ferry_map.c); polls never wait forever. */
#define FERRY_WS_IDLE_DEFAULT apr_time_from_sec(3600)

typedef struct {
    ferry_exchange_t *ex;
    conn_rec *c;
    apr_socket_t *client;
    apr_socket_t *peer;         /* the core or the app */
    apr_bucket_brigade *bb_in;
    apr_bucket_brigade *bb_out;
    char *up;                   /* client -> peer bytes not yet written */
    apr_size_t up_len, up_off;
    char *down;                 /* peer -> client read buffer */
    apr_off_t bytes_up, bytes_down;
    unsigned int client_eof:1, peer_eof:1, up_shut:1, down_shut:1;
    unsigned int failed:1;
} ferry_tunnel_t;

/* Write data to the client and flush it. 0, or -1 when the client is gone. */
static int to_client(ferry_tunnel_t *t, const char *data, apr_size_t len)
{
    apr_status_t rv;

    APR_BRIGADE_INSERT_TAIL(t->bb_out,
        apr_bucket_transient_create(data, len, t->c->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(t->bb_out,
        apr_bucket_flush_create(t->c->bucket_alloc));
    rv = ap_pass_brigade(t->c->output_filters, t->bb_out);
    apr_brigade_cleanup(t->bb_out);
    if (rv != APR_SUCCESS || t->c->aborted) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->ex->r,
                      "tunnel: client write failed");
        return -1;
    }
    t->bytes_down += (apr_off_t)len;
    return 0;
}

/* Client -> peer: read a chunk when the last one is out, write what the
 * peer takes. Returns 1 if anything moved. */
static int pump_up(ferry_tunnel_t *t)
{
    apr_status_t rv;
    apr_bucket *b;
    apr_size_t n;
    int moved = 0;

    if (!t->client_eof && t->up_len == 0) {
        rv = ap_get_brigade(t->c->input_filters, t->bb_in, AP_MODE_READBYTES,
                            APR_NONBLOCK_READ, FERRY_TUNNEL_BUF);
        if (rv == APR_SUCCESS) {
            for (b = APR_BRIGADE_FIRST(t->bb_in);
                 b != APR_BRIGADE_SENTINEL(t->bb_in); b = APR_BUCKET_NEXT(b)) {
                if (APR_BUCKET_IS_EOS(b)) {
                    t->client_eof = 1;
                    moved = 1;
                }
            }
            n = FERRY_TUNNEL_BUF;
            rv = apr_brigade_flatten(t->bb_in, t->up, &n);
            if (rv == APR_SUCCESS && n > 0) {
                t->up_len = n;
                t->up_off = 0;
                moved = 1;
            }
        }
        else if (APR_STATUS_IS_EOF(rv)) {
            t->client_eof = 1;
            moved = 1;
        }
        else if (!APR_STATUS_IS_EAGAIN(rv)) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->ex->r,
                          "tunnel: client read failed");
            t->failed = 1;
        }
        apr_brigade_cleanup(t->bb_in);
    }
    if (t->up_off < t->up_len) {
        n = t->up_len - t->up_off;
        rv = apr_socket_send(t->peer, t->up + t->up_off, &n);
        if (n > 0) {
            t->up_off += n;
            t->bytes_up += (apr_off_t)n;
            moved = 1;
        }
        if (t->up_off == t->up_len) {
            t->up_off = t->up_len = 0;
        }
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->ex->r,
                          "tunnel: write to the peer failed");
            t->failed = 1;
        }
    }
    if (t->client_eof && t->up_len == 0 && !t->up_shut) {
        apr_socket_shutdown(t->peer, APR_SHUTDOWN_WRITE);
        t->up_shut = 1;
        moved = 1;
    }
    return moved;
}

/* Peer -> client. Returns 1 if anything moved. */
static int pump_down(ferry_tunnel_t *t)
{
    apr_status_t rv;
    apr_size_t n;
    int moved = 0;

    if (!t->peer_eof) {
        n = FERRY_TUNNEL_BUF;
        rv = apr_socket_recv(t->peer, t->down, &n);
        if (n > 0) {
            if (to_client(t, t->down, n) != 0) {
                t->failed = 1;
                return 0;
            }
            moved = 1;
        }
        else if (rv == APR_EOF || rv == APR_SUCCESS) {
            t->peer_eof = 1;
            moved = 1;
        }
        else if (!APR_STATUS_IS_EAGAIN(rv)) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->ex->r,
                          "tunnel: read from the peer failed");
            t->failed = 1;
        }
    }
    if (t->peer_eof && !t->down_shut) {
        apr_socket_shutdown(t->client, APR_SHUTDOWN_WRITE);
        t->down_shut = 1;
        moved = 1;
    }
    return moved;
}

int ferry_tunnel_run(ferry_exchange_t *ex, apr_socket_t *peer,
                     const char *pending, apr_size_t npending)
{
    request_rec *r = ex->r;
    conn_rec *c = r->connection;
    ferry_tunnel_t t;
    apr_interval_time_t idle = ferry_app_ws_idle_timeout(ex->app);
    apr_pollfd_t pfd[2];
    apr_int32_t nfds, nsds;
    apr_status_t rv;
    int moved;

    if (idle <= 0) {
        idle = FERRY_WS_IDLE_DEFAULT;
    }
    memset(&t, 0, sizeof(t));
    t.ex = ex;
    t.c = c;
    t.client = ap_get_conn_socket(c);
    t.peer = peer;
    t.bb_in = apr_brigade_create(r->pool, c->bucket_alloc);
    t.bb_out = ex->bb;
    t.up = apr_palloc(r->pool, FERRY_TUNNEL_BUF);
    t.down = apr_palloc(r->pool, FERRY_TUNNEL_BUF);

    /* Step One: the 101 with the handshake headers. From here on the
     * status is fixed: no error page, whatever happens. */
    ap_send_interim_response(r, 1);
    ex->head_sent = 1;
    c->keepalive = AP_CONN_CLOSE;
    if (c->aborted) {
        ferry_send_abort(ex, "client_aborted", "The client closed the connection");
        return OK;
    }

    /* Step Two: connection-level filters only; a bidirectional stream would
     * confuse mod_reqtimeout. */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    r->input_filters = r->proto_input_filters = c->input_filters;
    r->output_filters = r->proto_output_filters = c->output_filters;
    apr_socket_timeout_set(peer, 0);

    /* Step Three: bytes the peer sent right behind the 101 head. */
    if (npending > 0 && to_client(&t, pending, npending) != 0) {
        return OK;
    }

    /* Step Four: move bytes until both directions are closed. */
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "tunnel running (idle timeout %" APR_TIME_T_FMT " s)",
                  apr_time_sec(idle));
    for (;;) {
        do {
            moved = pump_up(&t);
            moved |= pump_down(&t);
        } while (moved && !t.failed && !(t.up_shut && t.down_shut));
        if (t.failed || (t.up_shut && t.down_shut)) {
            break;
        }

        nfds = 0;
        if (!t.client_eof && t.up_len == 0) {
            memset(&pfd[nfds], 0, sizeof(pfd[nfds]));
            pfd[nfds].p = r->pool;
            pfd[nfds].desc_type = APR_POLL_SOCKET;
            pfd[nfds].desc.s = t.client;
            pfd[nfds].reqevents = APR_POLLIN | APR_POLLHUP;
            nfds++;
        }
        if (!t.peer_eof || t.up_len > 0) {
            memset(&pfd[nfds], 0, sizeof(pfd[nfds]));
            pfd[nfds].p = r->pool;
            pfd[nfds].desc_type = APR_POLL_SOCKET;
            pfd[nfds].desc.s = peer;
            pfd[nfds].reqevents = (t.peer_eof ? 0 : APR_POLLIN | APR_POLLHUP)
                                  | (t.up_len > 0 ? APR_POLLOUT : 0);
            nfds++;
        }
        if (nfds == 0) {
            break;
        }
        do {
            rv = apr_poll(pfd, nfds, &nsds, idle);
        } while (APR_STATUS_IS_EINTR(rv));
        if (APR_STATUS_IS_TIMEUP(rv)) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, FERRY_LOGNO(0117)
                          "Closing the WebSocket: idle for %" APR_TIME_T_FMT
                          " s (PassengerWebSocketIdleTimeout)",
                          apr_time_sec(idle));
            break;
        }
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0118)
                          "Cannot poll the WebSocket tunnel; closing it");
            break;
        }
    }

    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "tunnel closed: %" APR_OFF_T_FMT " bytes up, %" APR_OFF_T_FMT
                  " bytes down%s", t.bytes_up, t.bytes_down,
                  t.failed ? " (a side failed)" : "");
    ex->bytes_in += t.bytes_up;
    ex->bytes_out += t.bytes_down;
    return OK;
}
