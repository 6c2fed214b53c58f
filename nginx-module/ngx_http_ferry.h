/*
 * ngx_http_ferry.h: the nginx integration of Ferry, shared by the module's
 * files:
 *   ngx_http_ferry_module.c   the module struct and its hooks
 *   ngx_http_ferry_config.c   configuration: the option table, create/merge,
 *                             directive setters, the command table
 *   ngx_http_ferry_daemon.c   the master starts and supervises the core
 *   ngx_http_ferry_handler.c  requests: the orchestrator (map, lease, then
 *                             the direct path or the relay path); it calls
 *                             the steps below, they report back to it
 *                             through the callbacks it gives them
 *   ngx_http_ferry_nofile.c   is a path a regular file (static files, the
 *                             page cache), with a short negative cache
 *   ngx_http_ferry_head.c     the REQUEST_HEAD of a request
 *   ngx_http_ferry_link.c     the worker's connections to the core: connect
 *                             (waiting for a restarting core), keep idle ones
 *   ngx_http_ferry_lease.c    protocol v3: the head, LEASE (+ the passed app
 *                             socket) or PROCEED, retry once
 *   ngx_http_ferry_app.c      the direct path through nginx's upstream
 *                             machinery: its conf, the leased peer
 *   ngx_http_ferry_app_http.c HTTP/1.1 to the app (upstream callbacks)
 *   ngx_http_ferry_app_cache.c the worker's kept app connections
 *   ngx_http_ferry_relay.c    the relay path (protocol v2 frames)
 *   ngx_http_ferry_pass.c     a request on a pass: no core round trip
 *   ngx_http_ferry_pass_table.c the worker's passes, in-flight counts per
 *                             app process, FERRY_PASS
 *   ngx_http_ferry_exchange.c what the steps share to end an exchange: DONE,
 *                             fail with a status, the request's cleanup
 *                             (calls no step)
 */
#ifndef NGX_HTTP_FERRY_H
#define NGX_HTTP_FERRY_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <msgpack.h>
#include "ferry_proto.h"
#include "ferry_app_head.h"
#include "ferry_pass.h"

/* How an option's value is parsed and sent. */
typedef enum {
    NGX_HTTP_FERRY_STR,             /* a string */
    NGX_HTTP_FERRY_INT,             /* an integer in [min, max] */
    NGX_HTTP_FERRY_SEC,             /* a duration (nginx syntax: 90, 90s, 5m),
                                     * whole seconds in [min, max] */
    NGX_HTTP_FERRY_FLAG             /* on / off */
} ngx_http_ferry_type_e;

/* One option of the core (a `server` key of the core's config JSON, or an
 * `app` key of the REQUEST_HEAD): docs/core-config.md, docs/protocol.md. */
typedef struct ngx_http_ferry_opt_s  ngx_http_ferry_opt_t;

struct ngx_http_ferry_opt_s {
    const char              *key;   /* snake_case key; aliases share it */
    ngx_http_ferry_type_e    type;
    ngx_int_t                min;
    ngx_int_t                max;
    /* Extra validation of a string value: NULL or an error text. */
    const char            *(*check)(ngx_str_t *value);
};

/* A value set by a directive. */
typedef struct {
    const ngx_http_ferry_opt_t  *opt;
    ngx_str_t                    str;       /* STR */
    ngx_int_t                    num;       /* INT, SEC; FLAG: 0/1 */
} ngx_http_ferry_value_t;

/* http{} level: server-wide settings (Passenger keeps one per nginx). */
typedef struct {
    ngx_str_t      root;            /* passenger_root */
    ngx_array_t   *server;          /* ngx_http_ferry_value_t: `server` keys */
    ngx_array_t   *prestart;        /* ngx_str_t: passenger_pre_start URLs */
    ngx_str_t      instance_registry_dir;
    ngx_str_t      redeploy;        /* passenger_redeploy_on_graceful */
} ngx_http_ferry_main_conf_t;

/* passenger_set_header NAME VALUE: a request header for the app (VALUE
 * with nginx variables; empty: the header is not sent). */
typedef struct {
    ngx_str_t                  name;
    ngx_http_complex_value_t   value;
} ngx_http_ferry_set_header_t;

/* http{} / server{} / location{} level: per-application settings. */
typedef struct {
    ngx_flag_t     enabled;         /* passenger_enabled */
    ngx_array_t   *app;             /* ngx_http_ferry_value_t: `app` keys,
                                     * inherited ones included after merge */
    ngx_array_t   *env;             /* ngx_keyval_t: passenger_env_var */
    ngx_array_t   *base_uris;       /* ngx_str_t: passenger_base_uri */
    ngx_array_t   *set_headers;     /* ngx_http_ferry_set_header_t:
                                     * passenger_set_header */
    ngx_msec_t     read_timeout;    /* passenger_read_timeout */
    ngx_flag_t     intercept_errors;    /* passenger_intercept_errors */
    ngx_uint_t     ignore_headers;  /* passenger_ignore_headers (bitmask) */
    /* The worker's memory of the last app root it looked for an app in
     * (ngx_http_ferry_head.c): ngx_alloc'ed, per worker. */
    ngx_str_t      detect_root;
    ngx_msec_t     detect_at;
    unsigned       detect_found:1;
    ngx_http_upstream_conf_t  upstream;   /* the direct path's upstream */
} ngx_http_ferry_loc_conf_t;

extern ngx_module_t ngx_http_ferry_module;
extern ngx_command_t ngx_http_ferry_commands[];

void *ngx_http_ferry_create_main_conf(ngx_conf_t *cf);
char *ngx_http_ferry_init_main_conf(ngx_conf_t *cf, void *conf);
void *ngx_http_ferry_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_ferry_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child);

/* The value of key in values (NULL when unset). */
ngx_http_ferry_value_t *ngx_http_ferry_value(ngx_array_t *values, const char *key);

/* ngx_http_ferry_daemon.c */
ngx_int_t ngx_http_ferry_daemon_init(ngx_cycle_t *cycle);
void ngx_http_ferry_daemon_init_process(void);
void ngx_http_ferry_daemon_exit_master(void);
const char *ngx_http_ferry_core_socket(void);
int64_t ngx_http_ferry_generation(void);

/* ---- One request --------------------------------------------------- */

#define NGX_HTTP_FERRY_READ_CHUNK  (64 * 1024)

/* An app connection this worker holds between exchanges (or has set aside
 * for a request as "held"), keyed by the app and the LEASE id. */
typedef struct {
    ngx_queue_t         queue;      /* in the worker's idle cache */
    ngx_connection_t   *c;
    ngx_str_t           key;        /* the app (ngx_alloc'ed with the item) */
    ngx_str_t           id;         /* the LEASE id */
    ngx_str_t           name;       /* "ferry app pid N": the upstream's */
    int64_t             pid;
    ngx_msec_t          idle_since;
    unsigned            held:1;     /* set aside for a request */
    unsigned            dead:1;     /* the app closed it while held */
    unsigned            cached:1;   /* in the idle cache */
} ngx_http_ferry_app_conn_t;

typedef struct ngx_http_ferry_ctx_s  ngx_http_ferry_ctx_t;
/* The core connection is there (rc NGX_OK), or rc is the status to fail
 * the request with. */
typedef void (*ngx_http_ferry_ready_pt)(ngx_http_ferry_ctx_t *ctx,
    ngx_int_t rc);
/* The core answered the head: LEASE (proceed 0: ctx->conn is the app
 * connection) or PROCEED (1: the relay path follows on ctx's link). */
typedef void (*ngx_http_ferry_answer_pt)(ngx_http_ferry_ctx_t *ctx,
    ngx_uint_t proceed);
/* The app connection failed before the app read the request (reset: the
 * app reset it); nothing reached the client. */
typedef void (*ngx_http_ferry_stale_pt)(ngx_http_ferry_ctx_t *ctx,
    ngx_uint_t reset);

struct ngx_http_ferry_ctx_s {
    ngx_http_request_t         *r;
    ferry_request_head_t        head;       /* filled once, encoded per try */
    ngx_str_t                   app_key;    /* NUL-terminated too */

    /* the core connection */
    ngx_peer_connection_t       peer;
    msgpack_sbuffer             out;        /* frames to send */
    size_t                      sent;
    ferry_decoder_t            *dec;
    int                         passed_fd;  /* from SCM_RIGHTS, -1 none */
    ngx_event_t                 wait;       /* connect retry / pid wait */
    ngx_event_t                 deadline;   /* LEASE deadline */
    ngx_msec_t                  connect_start;
    ngx_msec_t                  connect_delay;
    ngx_http_ferry_ready_pt     ready;
    ngx_http_ferry_answer_pt    answered;
    ngx_http_ferry_stale_pt     stale;
    size_t                      answer_bytes;   /* of LEASE/PROCEED */
    unsigned                    link_reused:1;
    unsigned                    link_retried:1;
    unsigned                    core_gone:1;

    /* v3: the held connections and the lease */
    ngx_http_ferry_app_conn_t  *held[FERRY_HELD_MAX];
    ngx_uint_t                  nheld;
    ngx_str_t                   stale_id;
    ngx_str_t                   lease_id;
    int64_t                     lease_pid;
    ngx_str_t                   lease_head;
    ngx_array_t                *add_headers;    /* ngx_str_t pairs */
    ngx_msec_t                  lease_time;
    ngx_msec_t                  deadline_ms;
    struct timeval              lease_tv;
    ngx_http_ferry_app_conn_t  *conn;           /* the leased connection */
    unsigned                    chunked:1;
    unsigned                    conn_reused:1;
    unsigned                    app_retried:1;
    unsigned                    direct:1;       /* a lease is out */
    unsigned                    passed:1;       /* on a pass: no DONE */
    unsigned                    counted:1;      /* in the in-flight count */
    unsigned                    deadline_hit:1;

    /* the direct path's HTTP state */
    ngx_http_status_t           status;
    ngx_http_chunked_t          chunked_state;
    ngx_chain_t                *body_free;      /* chunk framing bufs */
    ngx_chain_t                *body_busy;
    unsigned                    body_head_sent:1;
    off_t                       bytes_in;
    off_t                       bytes_out;
    off_t                       client_sent0;   /* r->connection->sent at
                                                 * the start: after a 101,
                                                 * the tunnel's bytes out */
    ngx_int_t                   final_rc;

    /* the relay path */
    ngx_buf_t                   tun_up;         /* after a 101: core → client */
    ngx_buf_t                   tun_down;       /* client → core */
    ngx_chain_t                *free;
    ngx_chain_t                *busy;
    unsigned                    has_body:1;
    unsigned                    upgrade:1;
    unsigned                    relaying:1;     /* relay_start ran: the core
                                                 * is past LEASE/PROCEED */
    unsigned                    body_done:1;    /* END went into out */
    unsigned                    head_done:1;
    unsigned                    done:1;
    unsigned                    paused:1;       /* client busy: core not read */
};

/* ngx_http_ferry_nofile.c: is path (len bytes, NUL-terminated) a regular
 * file? A miss is remembered for a moment (100 ms, per worker). */
int ngx_http_ferry_is_file(u_char *path, size_t len);

/* Which app a request belongs to (ngx_http_ferry_head.c), as Passenger's
 * content handler decides it. */
typedef struct {
    ngx_str_t      *base;           /* the passenger_base_uri that matched */
    ngx_str_t       app_root;       /* derived (no passenger_app_root):
                                     * NUL-terminated; else len 0 */
    const char     *app_type;       /* "node" / "generic" to send; NULL:
                                     * the core's default (node) */
    const char     *error_page;     /* passenger_custom_error_page made
                                     * absolute (app root); NULL: unset */
} ngx_http_ferry_map_t;

/* ngx_http_ferry_head.c: map r to its app: NGX_OK (m filled),
 * NGX_DECLINED (no app here: nginx serves the request, as Passenger
 * declines when it detects no app), or an HTTP status. */
ngx_int_t ngx_http_ferry_map(ngx_http_request_t *r, ngx_http_ferry_map_t *m);
/* ngx_http_ferry_head.c: fill ctx->head and ctx->app_key for r. */
ngx_int_t ngx_http_ferry_head_init(ngx_http_request_t *r,
    ngx_http_ferry_ctx_t *ctx, ngx_http_ferry_map_t *m);

/* ngx_http_ferry_link.c: a connection for a connected socket fd (closed on
 * failure), registered with the event loop. */
ngx_connection_t *ngx_http_ferry_connection(ngx_socket_t fd, ngx_log_t *log);
/* ngx_http_ferry_link.c: the core connection of a request.
 * ngx_http_ferry_link_get: an idle one of this worker, else connect (a core
 * that is down is waited for: ECONNREFUSED/ENOENT retried with doubling
 * delays for at most 10 s). Calls ready(ctx, NGX_OK) once connected
 * (maybe at once), or ready(ctx, 503). */
void ngx_http_ferry_link_get(ngx_http_ferry_ctx_t *ctx, int allow_idle,
    ngx_http_ferry_ready_pt ready);
/* Keep the connection for the worker's next request, or close it; what
 * ctx->out still holds (a DONE) goes out with the next head on it, or at
 * the end of this event loop turn. */
void ngx_http_ferry_link_put(ngx_http_ferry_ctx_t *ctx, int keep);
/* recvmsg into the decoder; a passed descriptor goes to ctx->passed_fd.
 * n > 0 bytes, 0 EOF, NGX_AGAIN, NGX_ERROR. */
ssize_t ngx_http_ferry_link_recv(ngx_http_ferry_ctx_t *ctx);
/* Write ctx->out from ctx->sent: NGX_OK all out, NGX_AGAIN, NGX_ERROR. */
ngx_int_t ngx_http_ferry_link_flush(ngx_http_ferry_ctx_t *ctx);
ngx_int_t ngx_http_ferry_link_flush_to(ngx_http_ferry_ctx_t *ctx,
    ngx_connection_t *c);

/* ngx_http_ferry_pass.c: a request on the worker's pass for its app,
 * without the core: NGX_OK when ctx->conn is an idle connection to the
 * pass's least busy process and ctx->lease_head the head (a stale
 * connection's retry answers to answered), NGX_DECLINED: the slow path. */
ngx_int_t ngx_http_ferry_pass_start(ngx_http_ferry_ctx_t *ctx,
    ngx_http_ferry_answer_pt answered);

/* ngx_http_ferry_pass_table.c */
/* Does the module ask for passes (yes unless FERRY_PASS=off, read in the
 * master)? */
int ngx_http_ferry_pass_wanted(void);
/* init_module (the master, each cycle): the in-flight counts this cycle's
 * workers share (ferry_pass_shared_create; earlier workers keep theirs). */
void ngx_http_ferry_pass_shared_init(ngx_cycle_t *cycle);
/* The worker's passes; NULL when not wanted (or out of memory). */
ferry_pass_table_t *ngx_http_ferry_pass_table(void);
/* The clock the passes are kept by (us). */
int64_t ngx_http_ferry_pass_now(void);
/* A core connection was lost: no pass stays. */
void ngx_http_ferry_pass_lost_core(void);
/* The request runs / no longer runs on process ctx->lease_id (the
 * worker's in-flight count the pass picks by; ctx->counted). */
void ngx_http_ferry_pass_count(ngx_http_ferry_ctx_t *ctx);
void ngx_http_ferry_pass_uncount(ngx_http_ferry_ctx_t *ctx);

/* ngx_http_ferry_lease.c: the head to the core; its answer goes to
 * answered (a LEASE whose kept connection died meanwhile is asked for
 * again first). */
void ngx_http_ferry_lease_start(ngx_http_ferry_ctx_t *ctx,
    ngx_http_ferry_answer_pt answered);
/* After a stale app connection: DONE "stale", wait for pid (when gone),
 * and ask again (the answer to ctx->answered). */
void ngx_http_ferry_lease_retry(ngx_http_ferry_ctx_t *ctx, int wait_pid);

/* ngx_http_ferry_app.c */
ngx_int_t ngx_http_ferry_app_init_conf(ngx_conf_t *cf,
    ngx_http_ferry_loc_conf_t *conf, ngx_http_ferry_loc_conf_t *prev);
/* Of the idle connections to ctx's app, one to a process of procs with
 * the fewest of this worker's pass requests in flight, taken out of the
 * cache (closed ones dropped); NULL when none. pinned: procs names the one
 * process the request must go to (its sticky cookie): its connection, not
 * the least busy one's. */
ngx_http_ferry_app_conn_t *ngx_http_ferry_app_take_pass(
    ngx_http_ferry_ctx_t *ctx, const char *const *procs, size_t nprocs,
    ngx_uint_t pinned);
/* Set aside this worker's idle connections to ctx's app (held). */
void ngx_http_ferry_app_set_aside(ngx_http_ferry_ctx_t *ctx);
/* Held connections that were not leased go back to the cache. */
void ngx_http_ferry_app_give_back(ngx_http_ferry_ctx_t *ctx);
ngx_http_ferry_app_conn_t *ngx_http_ferry_app_wrap_fd(ngx_http_ferry_ctx_t *ctx,
    int fd);
void ngx_http_ferry_app_conn_close(ngx_http_ferry_app_conn_t *ac);
/* Is a kept connection still open (no EOF, nothing unasked for waiting)? */
int ngx_http_ferry_app_conn_alive(ngx_http_ferry_app_conn_t *ac);
/* Keep ac idle in the cache; NGX_ERROR when it cannot be kept. */
ngx_int_t ngx_http_ferry_app_cache_put(ngx_http_ferry_app_conn_t *ac,
    int fresh_idle);
/* The direct path: HTTP/1.1 to the app over ctx->conn; a request the app
 * never read goes to stale (once: ctx->app_retried), the orchestrator's. */
void ngx_http_ferry_app_start(ngx_http_ferry_ctx_t *ctx,
    ngx_http_ferry_stale_pt stale);

/* ngx_http_ferry_app_http.c: nginx upstream callbacks (r's ctx). */
ngx_int_t ngx_http_ferry_create_request(ngx_http_request_t *r);
ngx_int_t ngx_http_ferry_reinit_request(ngx_http_request_t *r);
ngx_int_t ngx_http_ferry_process_status_line(ngx_http_request_t *r);
ngx_int_t ngx_http_ferry_input_filter_init(void *data);
ngx_int_t ngx_http_ferry_copy_filter(void *data, ssize_t bytes);

/* ngx_http_ferry_relay.c: the relay path (after PROCEED, or v2). */
void ngx_http_ferry_relay_start(ngx_http_ferry_ctx_t *ctx);

/* ngx_http_ferry_exchange.c: shared by the steps; calls none of them. */
/* DONE for the lease (outcome ...), then the core connection is kept. */
void ngx_http_ferry_done(ngx_http_ferry_ctx_t *ctx, const char *outcome,
    ngx_int_t status, int reusable);
/* Append DONE for the lease to ctx->out. */
ngx_int_t ngx_http_ferry_encode_done(ngx_http_ferry_ctx_t *ctx,
    const char *outcome, ngx_int_t status, int reusable);
/* End the request with rc (closes the core connection, frees the lease). */
void ngx_http_ferry_fail(ngx_http_ferry_ctx_t *ctx, ngx_int_t rc);
/* The request pool's cleanup: whatever the exchange still holds. */
void ngx_http_ferry_cleanup(void *data);
/* r->read_event_handler while the worker waits for the core's answer or
 * the response head (nginx's upstream watches the client itself on the
 * direct path): a client that closed its side ends the request (499;
 * "aborted" in the metrics), with ABORT client_aborted to a relaying core. */
void ngx_http_ferry_watch_client(ngx_http_request_t *r);

/* ngx_http_ferry_handler.c */
ngx_int_t ngx_http_ferry_content(ngx_http_request_t *r);
/* "relay" when FERRY_DATA_PATH=relay was in nginx's environment. */
int ngx_http_ferry_relay_only(void);

#endif
