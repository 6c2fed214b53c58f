/*
 * ferry_exchange.h: one request's exchange with the core, shared by the data
 * path files: ferry_handler.c (steps, status choice), ferry_body.c (request
 * body), ferry_response.c (response relay) and ferry_tunnel.c (upgrades).
 */
#ifndef FERRY_EXCHANGE_H
#define FERRY_EXCHANGE_H

#include "httpd.h"
#include "apr_network_io.h"
#include "apr_buckets.h"

#include "ferry_conn.h"
#include "ferry_map.h"
#include "ferry_proto.h"

/* What went wrong; ferry_status_for() turns it into the HTTP status. */
typedef enum {
    FERRY_OK = 0,
    FERRY_E_CONNECT,            /* core unreachable after the retry budget: 503 */
    FERRY_E_TIMEOUT,            /* no response from the core in time: 504 */
    FERRY_E_PROTOCOL,           /* malformed/oversized/unexpected frame: 502 */
    FERRY_E_CORE_CLOSED,        /* core connection ended or failed: 502 */
    FERRY_E_CORE_ABORT,         /* core sent ABORT before the head: 502 */
    FERRY_E_HEAD_TOO_LARGE,     /* our REQUEST_HEAD is over 1 MiB: 431 */
    FERRY_E_INTERNAL,           /* a failure on our side: 500 */
    FERRY_E_BODY_READ,          /* client body unreadable: mapped from body_rv */
    FERRY_E_CLIENT_ABORTED      /* the client went away: not an error */
} ferry_err;

typedef struct {
    request_rec *r;
    const ferry_app_t *app;
    ferry_link_t *link;             /* the core connection (v2: reused) */
    apr_socket_t *sock;             /* link->sock */
    ferry_decoder_t *dec;           /* link->dec: frames from the core */
    apr_bucket_brigade *bb;         /* output brigade, reused */
    apr_interval_time_t read_timeout;   /* PassengerReadTimeout */
    apr_interval_time_t write_timeout;  /* Apache's Timeout */
    apr_status_t body_rv;           /* why the client body could not be read */
    unsigned int upgrade:1;         /* the client asked for an upgrade */
    unsigned int core_gone:1;       /* the core stopped reading our frames */
    unsigned int head_sent:1;       /* the response head went to the client */
    unsigned int overridden:1;      /* the app's error status goes to ErrorDocument */
    unsigned int reused:1;          /* link carried an earlier exchange */
    unsigned int complete:1;        /* the core's END was read and relayed */
    unsigned int stale:1;           /* reused link closed before any response byte */
} ferry_exchange_t;

/* The HTTP status for err (the one place statuses are chosen). */
int ferry_status_for(const ferry_exchange_t *ex, ferry_err err);

/* Send one ABORT frame, best effort (the connection is closed next). */
void ferry_send_abort(ferry_exchange_t *ex, const char *code, const char *message);

/* ferry_body.c: relay the client body as BODY frames, then END. */
ferry_err ferry_send_body(ferry_exchange_t *ex);

/* ferry_response.c: read RESPONSE_HEAD and relay the response (or hand an
 * upgrade to the tunnel). Returns the handler's result. */
int ferry_relay_response(ferry_exchange_t *ex);

/* ferry_response.c: copy the core's headers into r->headers_out. */
void ferry_apply_headers(ferry_exchange_t *ex, const ferry_frame_t *f);

/* ferry_tunnel.c: after RESPONSE_HEAD 101 (headers applied): send the 101
 * and move raw bytes both ways until both sides closed or idle. */
int ferry_tunnel_run(ferry_exchange_t *ex);

#endif
