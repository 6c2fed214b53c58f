/*
 * ferry_exchange.h: one request's exchange, shared by the data path files.
 * ferry_handler.c is the orchestrator (map, lease, send, relay, tunnel,
 * release); the steps live in
 *   ferry_head.c      the REQUEST_HEAD fields of a request
 *   ferry_lease.c     the core's answer to a v3 head: LEASE or PROCEED; DONE
 *   ferry_app_http.c  direct path: HTTP/1.1 to the app (full duplex; its
 *                     spool in ferry_spool.c, its parsing in
 *                     ferry_http_parse.c, its connections in
 *                     ferry_app_cache.c)
 *   ferry_body.c      relay path: the request body as BODY frames
 *   ferry_response.c  relay path: RESPONSE_HEAD and BODY frames
 *   ferry_tunnel.c    both paths: bytes after a 101
 * and the helpers they share (status choice, passing to the client, ABORT)
 * in ferry_exchange.c. Statuses travel up only: a step returns a ferry_err
 * or an HTTP status to its caller.
 */
#ifndef FERRY_EXCHANGE_H
#define FERRY_EXCHANGE_H

#include "httpd.h"
#include "apr_network_io.h"
#include "apr_buckets.h"

#include "ferry_app_cache.h"
#include "ferry_conn.h"
#include "ferry_map.h"
#include "ferry_proto.h"

/* What went wrong; ferry_status_for() turns it into the HTTP status. */
typedef enum {
    FERRY_OK = 0,
    FERRY_E_CONNECT,            /* core unreachable after the retry budget: 503 */
    FERRY_E_TIMEOUT,            /* no response from the core/app in time: 504 */
    FERRY_E_PROTOCOL,           /* malformed/oversized/unexpected frame: 502 */
    FERRY_E_CORE_CLOSED,        /* core connection ended or failed: 502 */
    FERRY_E_CORE_ABORT,         /* core sent ABORT before the head: 502 */
    FERRY_E_HEAD_TOO_LARGE,     /* our REQUEST_HEAD is over 1 MiB: 431 */
    FERRY_E_INTERNAL,           /* a failure on our side: 500 */
    FERRY_E_BODY_READ,          /* client body unreadable: mapped from body_rv */
    FERRY_E_CLIENT_ABORTED,     /* the client went away: not an error */
    FERRY_E_APP,                /* direct path: the app closed, reset or sent
                                 * an invalid response: 502 */
    FERRY_E_STALE               /* direct path: a reused app connection was
                                 * dead before any response byte: retry */
} ferry_err;

/* The direct path's per-request state (ferry_app_http.c). */
typedef struct ferry_app_io_t ferry_app_io_t;

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
    ferry_request_head_t head;      /* the REQUEST_HEAD fields, built once */
    unsigned int has_body:1;        /* the request has a body */
    unsigned int upgrade:1;         /* the client asked for an upgrade */
    unsigned int core_gone:1;       /* the core stopped reading our frames */
    unsigned int head_sent:1;       /* the response head went to the client */
    unsigned int overridden:1;      /* the app's error status goes to ErrorDocument */
    unsigned int reused:1;          /* link carried an earlier exchange */
    unsigned int complete:1;        /* the core's END was read and relayed */
    unsigned int stale:1;           /* reused link closed before any response byte */
    unsigned int direct:1;          /* v3 LEASE: the module talks to the app */
    unsigned int passes:1;          /* ask for passes and use them (FERRY_PASS) */
    unsigned int on_pass:1;         /* this exchange runs on a pass: no DONE */
    unsigned int counted:1;         /* counted in flight on lease_id */
    unsigned int client_left:1;     /* the client hung up before the response
                                     * head: nothing was sent (status 0) */

    /* Direct path (protocol v3). */
    const char *app_key;            /* cache key of the app */
    ferry_app_conn_t *held[FERRY_HELD_MAX]; /* set aside for this request */
    apr_size_t nheld;
    const char *stale_id;           /* left out of held on the retry */
    ferry_app_conn_t *conn;         /* the leased app connection */
    int conn_reused;                /* conn carried an earlier exchange */
    const char *lease_id;
    apr_int64_t lease_pid;
    int chunked;                    /* send the request body chunked */
    const char *lease_head;         /* the request head for the app */
    apr_size_t lease_head_len;
    apr_array_header_t *add_headers;    /* const char * name/value pairs */
    apr_time_t lease_time;          /* when the LEASE arrived */
    apr_time_t deadline;            /* absolute; 0 = none */
    ferry_app_io_t *io;
    const char *outcome;            /* DONE outcome */
    int sent_status;                /* status the client got (DONE) */
    apr_off_t bytes_in, bytes_out;
    int conn_reusable;              /* conn goes back to the cache */
    int done_sent;                  /* DONE went out: the link is clean */
    int app_exiting;                /* the app reset the connection with our
                                     * request unread: it may be exiting */
} ferry_exchange_t;

/* ---- ferry_exchange.c --------------------------------------------------- */

/* The HTTP status for err (the one place statuses are chosen). */
int ferry_status_for(const ferry_exchange_t *ex, ferry_err err);

/* Relay path: send one ABORT frame, best effort (the connection is closed
 * next). Nothing on the direct path (the core gets DONE). */
void ferry_send_abort(ferry_exchange_t *ex, const char *code, const char *message);

/* The client hung up while the module waited for the response head
 * (ferry_client_watch.c): stop the exchange (relay path: ABORT
 * client_aborted to the core; direct path: DONE client_aborted with status
 * 0, the app connection closed), send nothing, close the client connection.
 * Returns OK. */
int ferry_client_left(ferry_exchange_t *ex);

/* Pass ex->bb (plus a FLUSH) to the client; marks the head sent. 0, or -1
 * when the client is gone. */
int ferry_pass_out(ferry_exchange_t *ex, int flush);

/* The response cannot be completed. Before the head went out: clear it and
 * return the error's status. After: cut the response (error bucket: no
 * final chunk), close the client connection, return OK. */
int ferry_cut_response(ferry_exchange_t *ex, ferry_err err);

/* r->status (and a status line for a status httpd has no phrase for). */
void ferry_set_status(request_rec *r, int status);

/* The Upgrade value v (len bytes) is one the client asked for. */
int ferry_upgrade_asked(request_rec *r, const char *v, apr_size_t len);

/* ---- ferry_head.c ------------------------------------------------------- */

/* The client asks to switch protocols (HTTP/1.1, Upgrade, "upgrade" in
 * Connection, no body). */
int ferry_head_wants_upgrade(request_rec *r);

/* The REQUEST_HEAD fields of ex->r into ex->head (version 2; the lease step
 * sets 3 and held). Needs ex->app, ex->has_body and ex->upgrade. */
void ferry_head_build(ferry_exchange_t *ex);

/* ---- ferry_lease.c (protocol v3) ---------------------------------------- */

/* Step Two's fast way (docs/protocol.md "Passes"): when ex->passes is set,
 * the app has a usable pass, and this child an idle connection to one of
 * its processes (with sticky sessions: the one the request's cookie names,
 * if it names one), take that connection and build the app's request head
 * here (ferry_app_head.c): ex->direct and ex->on_pass are set and no core
 * round trip happens. Returns 0 (nothing changed) for the slow path. */
int ferry_lease_from_pass(ferry_exchange_t *ex);

/* Step Two on the direct path: set aside this child's idle connections to
 * the app, send the v3 REQUEST_HEAD on the core link and read the answer.
 * FERRY_OK with ex->direct set: a LEASE (ex->conn is the app connection);
 * FERRY_OK without: PROCEED (continue as a v2 exchange). */
ferry_err ferry_lease_get(ferry_exchange_t *ex);

/* Step Six: tell the core the exchange is over (DONE; none on a pass),
 * put the app connection back in the cache or close it, give back the
 * unused held ones. Best effort: a dead core changes nothing for the
 * client. */
void ferry_lease_release(ferry_exchange_t *ex);

/* ---- ferry_app_http.c (protocol v3) ------------------------------------- */

/* Step Three: write the LEASE's head and the request body to the app,
 * reading the app's answer into a spool whenever a write would block. */
ferry_err ferry_app_send(ferry_exchange_t *ex);

/* Step Four: read the app's response (spool first) and pass it to the
 * client; a 101 goes to the tunnel. FERRY_E_STALE asks for a retry.
 * Sets ex->outcome, ex->sent_status, ex->conn_reusable. */
int ferry_app_relay(ferry_exchange_t *ex, ferry_err *errp);

/* ---- relay path --------------------------------------------------------- */

/* ferry_body.c: relay the client body as BODY frames, then END. */
ferry_err ferry_send_body(ferry_exchange_t *ex);

/* ferry_response.c: read RESPONSE_HEAD and relay the response (or hand an
 * upgrade to the tunnel). Returns the handler's result. */
int ferry_relay_response(ferry_exchange_t *ex);

/* ---- ferry_tunnel.c ----------------------------------------------------- */

/* After a 101 (headers applied): send the 101 and move raw bytes between
 * the client and peer (the core socket on the relay path, the app socket
 * on the direct path) until both sides closed or idle. pending: bytes the
 * peer sent right behind the 101 head. */
int ferry_tunnel_run(ferry_exchange_t *ex, apr_socket_t *peer,
                     const char *pending, apr_size_t npending);

#endif
