/*
 * ferry_proto.h: the mod_ferry <-> core wire protocol, versions 2 and 3
 * (docs/protocol.md): length-prefixed msgpack frames. msgpack-c is used
 * here only: the rest of the module builds frames from the plain C types
 * below (ferry_opt_t for the app options, string arrays for the rest).
 *
 * Pure C99 + msgpack-c: no httpd or APR types, so apache-module/test/proto_test.c
 * links it without Apache. Encoders append complete frames to a msgpack_sbuffer;
 * the decoder is incremental (feed it socket reads, take frames out) and
 * enforces the frame size limits.
 */
#ifndef FERRY_PROTO_H
#define FERRY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

/* The newest version: 3 = leases (the direct path). The module sends 2
 * (the relay path) unless FERRY_DATA_PATH=direct (ferry_handler.c).
 * Decoding accepts heads of FERRY_PROTO_MIN_VERSION up to this. */
#define FERRY_PROTO_VERSION 3
#define FERRY_PROTO_RELAY_VERSION 2
#define FERRY_PROTO_MIN_VERSION 1
/* At most this many ids in a v3 head's "held". */
#define FERRY_HELD_MAX 16

/* Frame types (the first array element). */
#define FERRY_FRAME_REQUEST_HEAD  1
#define FERRY_FRAME_BODY          2
#define FERRY_FRAME_END           3
#define FERRY_FRAME_RESPONSE_HEAD 4
#define FERRY_FRAME_ABORT         5
#define FERRY_FRAME_LEASE         6     /* v3 */
#define FERRY_FRAME_PROCEED       7     /* v3 */
#define FERRY_FRAME_DONE          8     /* v3 */

/* Limits: payload bytes (the 4-byte length prefix not counted). */
#define FERRY_HEAD_FRAME_MAX  (1024 * 1024)
#define FERRY_FRAME_MAX       (4 * 1024 * 1024)
/* The largest BODY chunk the module sends. */
#define FERRY_BODY_CHUNK      (64 * 1024)
/* Room for the length prefix + [2, bin32 header] of a BODY frame. */
#define FERRY_BODY_PREFIX_MAX 16

/* Decoder results. */
typedef enum {
    FERRY_PROTO_OK = 0,        /* a frame was decoded */
    FERRY_PROTO_NEED_MORE,     /* feed more bytes */
    FERRY_PROTO_TOO_LARGE,     /* the length prefix is over the limit */
    FERRY_PROTO_MALFORMED,     /* not a valid frame of this version */
    FERRY_PROTO_NOMEM          /* allocation failed */
} ferry_proto_status;

/* Human-readable text for a status (static storage). */
const char *ferry_proto_strstatus(ferry_proto_status st);

/* One string in a decoded frame: not NUL-terminated, points into the
 * decoder's buffer. */
typedef struct {
    const char *ptr;
    size_t len;
} ferry_str_t;

/* A decoded frame. Pointers stay valid until the next call to
 * ferry_decoder_next(), ferry_decoder_space() or ferry_decoder_destroy(). */
typedef struct {
    int type;                          /* FERRY_FRAME_* */
    /* BODY */
    const char *data;
    size_t len;
    /* RESPONSE_HEAD */
    int status;
    size_t nheaders;                   /* number of name/value pairs */
    const msgpack_object *headers;     /* 2 * nheaders str objects */
    /* ABORT */
    ferry_str_t code;
    ferry_str_t message;
    /* REQUEST_HEAD: the validated head map (only tests and tools need it) */
    const msgpack_object *head;
    /* LEASE (and DONE: id) */
    ferry_str_t id;
    int64_t pid;
    int reuse;
    const char *lease_head;            /* the request head for the app */
    size_t lease_head_len;
    int chunked;
    size_t nadd;                       /* add_headers: name/value pairs */
    const msgpack_object *add;         /* 2 * nadd str objects */
    int64_t deadline_ms;               /* 0 = none */
    /* LEASE "pass" (docs/protocol.md "Passes"): has_pass is 0 when absent */
    int has_pass;
    int64_t pass_ttl_ms;               /* > 0 */
    size_t npass_procs;                /* 1..FERRY_HELD_MAX */
    const msgpack_object *pass_procs;  /* npass_procs non-empty str objects */
    ferry_str_t restart_file;          /* absolute path */
    int64_t restart_mtime_ns;          /* -1 = the file is absent */
    /* Its optional "sticky" map (an app with sticky sessions): has_sticky
     * is 0 when absent. ids, set_cookie and set_cookie_https hold
     * npass_procs str objects each, in the order of procs. */
    int has_sticky;
    ferry_str_t sticky_cookie;         /* the cookie's name, not empty */
    const msgpack_object *sticky_ids;
    const msgpack_object *sticky_set_cookie;
    const msgpack_object *sticky_set_cookie_https;
    size_t nsticky_add;                /* sticky add_headers: pairs */
    const msgpack_object *sticky_add;  /* 2 * nsticky_add str objects */
    /* DONE (a module -> core frame: decoded by tests only) */
    ferry_str_t outcome;
    int64_t done_status;
    int64_t bytes_in;
    int64_t bytes_out;
    int64_t duration_us;
    int reusable;
} ferry_frame_t;

/* Name and value of RESPONSE_HEAD header i (0 <= i < nheaders). */
void ferry_frame_header(const ferry_frame_t *f, size_t i,
                        ferry_str_t *name, ferry_str_t *value);

/* Name and value of LEASE add_headers pair i (0 <= i < nadd). */
void ferry_frame_add_header(const ferry_frame_t *f, size_t i,
                            ferry_str_t *name, ferry_str_t *value);

/* Process id i of the LEASE's pass (0 <= i < npass_procs). */
ferry_str_t ferry_frame_pass_proc(const ferry_frame_t *f, size_t i);

/* Of a pass with sticky data (has_sticky), for process i (0 <= i <
 * npass_procs): its sticky id, and the Set-Cookie value pinning a client
 * to it (https: the HTTPS one). */
ferry_str_t ferry_frame_sticky_id(const ferry_frame_t *f, size_t i);
ferry_str_t ferry_frame_sticky_set_cookie(const ferry_frame_t *f, size_t i,
                                          int https);

/* Name and value of the sticky add_headers pair i (0 <= i < nsticky_add). */
void ferry_frame_sticky_add_header(const ferry_frame_t *f, size_t i,
                                   ferry_str_t *name, ferry_str_t *value);

/* Look up key in a msgpack map object; NULL when absent. */
const msgpack_object *ferry_map_get(const msgpack_object *map, const char *key);

/* ---- Decoder ------------------------------------------------------------ */

typedef struct ferry_decoder_t ferry_decoder_t;

/* Allocates with malloc (the Apache side registers a pool cleanup that calls
 * ferry_decoder_destroy). NULL when out of memory. */
ferry_decoder_t *ferry_decoder_create(void);
void ferry_decoder_destroy(ferry_decoder_t *dec);

/* Writable space for the next read: at least min bytes (grows the buffer;
 * min is capped to what the largest frame needs). Returns 0, or -1 when out
 * of memory. Invalidates the last frame's pointers. */
int ferry_decoder_space(ferry_decoder_t *dec, size_t min,
                        char **buf, size_t *avail);

/* n bytes were written into the space returned by ferry_decoder_space(). */
void ferry_decoder_commit(ferry_decoder_t *dec, size_t n);

/* Copy n bytes in (convenience for tests). Returns 0 or -1 (out of memory). */
int ferry_decoder_feed(ferry_decoder_t *dec, const char *data, size_t n);

/* Decode the next complete frame. On FERRY_PROTO_OK *f is filled and the
 * frame is consumed. TOO_LARGE and MALFORMED are final: the connection must
 * be closed. */
ferry_proto_status ferry_decoder_next(ferry_decoder_t *dec, ferry_frame_t *f);

/* Bytes received but not consumed as frames (after a 101 these are the
 * first bytes of the tunnelled stream). */
size_t ferry_decoder_pending(const ferry_decoder_t *dec, const char **data);

/* Mark len pending bytes consumed (used when handing them to the tunnel). */
void ferry_decoder_consume(ferry_decoder_t *dec, size_t len);

/* ---- Encoders ----------------------------------------------------------- */

/* Start a frame in sb (reserves the length prefix); returns its offset. */
size_t ferry_frame_begin(msgpack_sbuffer *sb);

/* Patch the length prefix of the frame begun at offset start. Returns 0, or
 * -1 when the payload is over limit (the caller discards the buffer). */
int ferry_frame_finish(msgpack_sbuffer *sb, size_t start, size_t limit);

/* One "app" option (docs/protocol.md "App options"): its key and a str,
 * int or bool value. ferry_map.c lists them in the table's order. */
typedef enum { FERRY_OPT_STR, FERRY_OPT_INT, FERRY_OPT_BOOL } ferry_opt_type;

typedef struct {
    const char *key;
    ferry_opt_type type;
    const char *s;                      /* FERRY_OPT_STR */
    int64_t i;                          /* FERRY_OPT_INT, FERRY_OPT_BOOL */
} ferry_opt_t;

/* The REQUEST_HEAD fields. Headers and env are flat name/value arrays of
 * 2 * n NUL-terminated strings; held (v3 only) is nheld lease ids. */
typedef struct {
    int version;                        /* FERRY_PROTO_RELAY_VERSION or 3 */
    const char *method;
    const char *uri;
    const char *proto;
    const char *const *headers;
    size_t nheaders;
    const char *remote_addr;
    int64_t remote_port;
    const char *server_name;
    int64_t server_port;
    int https;
    int has_body;
    int upgrade;
    int64_t gen;
    const ferry_opt_t *app;
    size_t napp;
    const char *const *env;
    size_t nenv;                        /* pairs */
    const char *const *held;            /* v3 */
    size_t nheld;
    int pass;                           /* v3: the module can use passes
                                         * (sent only when set) */
    int pass_sticky;                    /* v3: ... and route them by the
                                         * sticky cookie (sent only when
                                         * set, after pass) */
} ferry_request_head_t;

/* The LEASE fields (the core's side of v3; the module encodes it in tests). */
typedef struct {
    const char *id;
    int64_t pid;
    int reuse;
    const char *head;
    size_t head_len;
    int chunked;
    const ferry_str_t *add_headers;     /* 2 * nadd */
    size_t nadd;
    int64_t deadline_ms;
    /* The optional pass (sent only when has_pass is set). */
    int has_pass;
    int64_t pass_ttl_ms;
    const char *const *pass_procs;
    size_t npass_procs;
    const char *restart_file;
    int64_t restart_mtime_ns;
    /* The pass's optional sticky map (sent only when has_sticky is set):
     * ids, set_cookie and set_cookie_https have npass_procs entries. */
    int has_sticky;
    const char *sticky_cookie;
    const char *const *sticky_ids;
    const char *const *sticky_set_cookie;
    const char *const *sticky_set_cookie_https;
    const ferry_str_t *sticky_add_headers;  /* 2 * nsticky_add */
    size_t nsticky_add;
} ferry_lease_t;

/* The DONE report (docs/protocol.md "DONE"). */
typedef struct {
    const char *id;
    const char *outcome;                /* ok, app_error, timeout, client_aborted, stale */
    int64_t status;
    int64_t bytes_in;
    int64_t bytes_out;
    int64_t duration_us;
    int reusable;
} ferry_done_t;

/* Each returns 0, or -1 on failure (over limit, out of memory). */
int ferry_encode_request_head(msgpack_sbuffer *sb, const ferry_request_head_t *h);
int ferry_encode_lease(msgpack_sbuffer *sb, const ferry_lease_t *l);
int ferry_encode_proceed(msgpack_sbuffer *sb);
int ferry_encode_done(msgpack_sbuffer *sb, const ferry_done_t *d);
/* [app, env] as one msgpack array, no frame prefix (the mapping test
 * double shows what a REQUEST_HEAD would carry). */
int ferry_encode_app_env(msgpack_sbuffer *sb, const ferry_opt_t *app,
                         size_t napp, const char *const *env, size_t nenv);
int ferry_encode_body(msgpack_sbuffer *sb, const char *data, size_t len);
int ferry_encode_end(msgpack_sbuffer *sb);
int ferry_encode_abort(msgpack_sbuffer *sb, const char *code, const char *message);
/* headers: 2 * nheaders strings given with their lengths. */
int ferry_encode_response_head(msgpack_sbuffer *sb, int status,
                               const ferry_str_t *headers, size_t nheaders);

/* Write the length prefix and [2, bin header] of a BODY frame carrying len
 * bytes into out (FERRY_BODY_PREFIX_MAX bytes); the data follows it on the
 * wire. Returns the prefix length. len must be <= FERRY_BODY_CHUNK. */
size_t ferry_body_prefix(char *out, size_t len);

#endif
