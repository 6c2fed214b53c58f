/*
 * ferry_proto.h: the mod_ferry <-> core wire protocol, version 2
 * (docs/protocol.md): length-prefixed msgpack frames.
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

/* The version the module sends: 2 = sequential exchanges on one connection.
 * Decoding accepts heads of FERRY_PROTO_MIN_VERSION and up. */
#define FERRY_PROTO_VERSION 2
#define FERRY_PROTO_MIN_VERSION 1

/* Frame types (the first array element). */
#define FERRY_FRAME_REQUEST_HEAD  1
#define FERRY_FRAME_BODY          2
#define FERRY_FRAME_END           3
#define FERRY_FRAME_RESPONSE_HEAD 4
#define FERRY_FRAME_ABORT         5

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
} ferry_frame_t;

/* Name and value of RESPONSE_HEAD header i (0 <= i < nheaders). */
void ferry_frame_header(const ferry_frame_t *f, size_t i,
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

/* The REQUEST_HEAD fields the module knows; "app" and "env" are packed by
 * callbacks (ferry_pack_app / ferry_pack_env on the Apache side). Headers
 * are a flat name/value array of 2 * nheaders NUL-terminated strings. */
typedef struct {
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
    /* Each packs exactly one msgpack value (a map for app, an array for
     * env) and returns 0; NULL packs an empty map/array. */
    int (*pack_app)(msgpack_packer *pk, void *ctx);
    int (*pack_env)(msgpack_packer *pk, void *ctx);
    void *ctx;
} ferry_request_head_t;

/* Each returns 0, or -1 on failure (callback error, over limit). */
int ferry_encode_request_head(msgpack_sbuffer *sb, const ferry_request_head_t *h);
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

/* Pack a NUL-terminated string. */
int ferry_pack_cstr(msgpack_packer *pk, const char *s);

#endif
