/*
 * ferry_proto.c: frame encoder and incremental decoder for the mod_ferry <->
 * core protocol, versions 2 and 3 (docs/protocol.md). msgpack-c only: no
 * httpd/APR, so the unit test in test/proto_test.c links this file alone.
 * The only file of the module that speaks msgpack.
 */
#include <stdlib.h>
#include <string.h>

#include "ferry_proto.h"

#define FERRY_DECODER_INITIAL (FERRY_BODY_CHUNK + 256)

struct ferry_decoder_t {
    char *buf;
    size_t cap;
    size_t start;               /* first unconsumed byte */
    size_t end;                 /* one past the last received byte */
    msgpack_unpacked result;    /* the last frame's objects */
    int has_result;
};

const char *ferry_proto_strstatus(ferry_proto_status st)
{
    switch (st) {
    case FERRY_PROTO_OK:
        return "ok";
    case FERRY_PROTO_NEED_MORE:
        return "incomplete frame";
    case FERRY_PROTO_TOO_LARGE:
        return "frame over the size limit";
    case FERRY_PROTO_MALFORMED:
        return "malformed frame";
    case FERRY_PROTO_NOMEM:
        return "out of memory";
    }
    return "unknown";
}

static uint32_t get_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;

    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16)
           | ((uint32_t)u[2] << 8) | (uint32_t)u[3];
}

static void put_be32(char *p, uint32_t v)
{
    unsigned char *u = (unsigned char *)p;

    u[0] = (unsigned char)(v >> 24);
    u[1] = (unsigned char)(v >> 16);
    u[2] = (unsigned char)(v >> 8);
    u[3] = (unsigned char)v;
}

static int is_str(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR;
}

static int is_int(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER
           || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

/* An array of strings with an even number of elements (name/value pairs). */
static int is_str_pairs(const msgpack_object *o)
{
    uint32_t i;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size % 2 != 0) {
        return 0;
    }
    for (i = 0; i < o->via.array.size; i++) {
        if (!is_str(&o->via.array.ptr[i])) {
            return 0;
        }
    }
    return 1;
}

static int str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);

    return is_str(o) && o->via.str.size == n
           && memcmp(o->via.str.ptr, s, n) == 0;
}

const msgpack_object *ferry_map_get(const msgpack_object *map, const char *key)
{
    uint32_t i;

    if (map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (i = 0; i < map->via.map.size; i++) {
        if (str_eq(&map->via.map.ptr[i].key, key)) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}

void ferry_frame_header(const ferry_frame_t *f, size_t i,
                        ferry_str_t *name, ferry_str_t *value)
{
    const msgpack_object *n = &f->headers[2 * i];
    const msgpack_object *v = &f->headers[2 * i + 1];

    name->ptr = n->via.str.ptr;
    name->len = n->via.str.size;
    value->ptr = v->via.str.ptr;
    value->len = v->via.str.size;
}

void ferry_frame_add_header(const ferry_frame_t *f, size_t i,
                            ferry_str_t *name, ferry_str_t *value)
{
    const msgpack_object *n = &f->add[2 * i];
    const msgpack_object *v = &f->add[2 * i + 1];

    name->ptr = n->via.str.ptr;
    name->len = n->via.str.size;
    value->ptr = v->via.str.ptr;
    value->len = v->via.str.size;
}

static ferry_str_t str_at(const msgpack_object *arr, size_t i)
{
    ferry_str_t s;

    s.ptr = arr[i].via.str.ptr;
    s.len = arr[i].via.str.size;
    return s;
}

ferry_str_t ferry_frame_pass_proc(const ferry_frame_t *f, size_t i)
{
    return str_at(f->pass_procs, i);
}

ferry_str_t ferry_frame_sticky_id(const ferry_frame_t *f, size_t i)
{
    return str_at(f->sticky_ids, i);
}

ferry_str_t ferry_frame_sticky_set_cookie(const ferry_frame_t *f, size_t i,
                                          int https)
{
    return str_at(https ? f->sticky_set_cookie_https : f->sticky_set_cookie, i);
}

void ferry_frame_sticky_add_header(const ferry_frame_t *f, size_t i,
                                   ferry_str_t *name, ferry_str_t *value)
{
    *name = str_at(f->sticky_add, 2 * i);
    *value = str_at(f->sticky_add, 2 * i + 1);
}

/* ---- Validation --------------------------------------------------------- */

typedef enum { K_STR, K_INT, K_BOOL, K_PAIRS, K_MAP, K_STRS, K_BIN } ferry_kind;

/* An array of strings (any number). */
static int is_strs(const msgpack_object *o)
{
    uint32_t i;

    if (o->type != MSGPACK_OBJECT_ARRAY) {
        return 0;
    }
    for (i = 0; i < o->via.array.size; i++) {
        if (!is_str(&o->via.array.ptr[i])) {
            return 0;
        }
    }
    return 1;
}

static const struct {
    const char *key;
    ferry_kind kind;
    int required;
} head_keys[] = {
    { "v",           K_INT,   1 },
    { "method",      K_STR,   1 },
    { "uri",         K_STR,   1 },
    { "proto",       K_STR,   0 },
    { "headers",     K_PAIRS, 1 },
    { "remote_addr", K_STR,   0 },
    { "remote_port", K_INT,   0 },
    { "server_name", K_STR,   0 },
    { "server_port", K_INT,   0 },
    { "https",       K_BOOL,  0 },
    { "has_body",    K_BOOL,  0 },
    { "upgrade",     K_BOOL,  0 },
    { "gen",         K_INT,   0 },
    { "app",         K_MAP,   1 },
    { "env",         K_PAIRS, 0 },
    { "held",        K_STRS,  0 },
    { "pass",        K_BOOL,  0 },
    { "pass_sticky", K_BOOL,  0 },
};

typedef struct {
    const char *key;
    ferry_kind kind;
    int required;
} ferry_key_t;

/* LEASE and DONE maps (docs/protocol.md, "Version 3: leases"). */
static const ferry_key_t lease_keys[] = {
    { "id",          K_STR,   1 },
    { "pid",         K_INT,   1 },
    { "reuse",       K_BOOL,  1 },
    { "head",        K_BIN,   1 },
    { "chunked",     K_BOOL,  0 },
    { "add_headers", K_PAIRS, 0 },
    { "deadline",    K_INT,   0 },
    { "pass",        K_MAP,   0 },
    { NULL,          K_STR,   0 }
};

/* The LEASE's pass map (docs/protocol.md "Passes"). */
static const ferry_key_t pass_keys[] = {
    { "ttl",           K_INT,   1 },
    { "procs",         K_STRS,  1 },
    { "sticky",        K_MAP,   0 },
    { "restart_file",  K_STR,   1 },
    { "restart_mtime", K_INT,   1 },
    { NULL,            K_STR,   0 }
};

/* The pass's sticky map (an app with sticky sessions). */
static const ferry_key_t sticky_keys[] = {
    { "cookie",           K_STR,   1 },
    { "ids",              K_STRS,  1 },
    { "set_cookie",       K_STRS,  1 },
    { "set_cookie_https", K_STRS,  1 },
    { "add_headers",      K_PAIRS, 1 },
    { NULL,               K_STR,   0 }
};

static const ferry_key_t done_keys[] = {
    { "id",          K_STR,   1 },
    { "outcome",     K_STR,   1 },
    { "status",      K_INT,   0 },
    { "bytes_in",    K_INT,   0 },
    { "bytes_out",   K_INT,   0 },
    { "duration_us", K_INT,   0 },
    { "reusable",    K_BOOL,  0 },
    { NULL,          K_STR,   0 }
};

static int kind_ok(const msgpack_object *o, ferry_kind kind)
{
    switch (kind) {
    case K_STR:
        return is_str(o);
    case K_INT:
        return is_int(o);
    case K_BOOL:
        return o->type == MSGPACK_OBJECT_BOOLEAN;
    case K_PAIRS:
        return is_str_pairs(o);
    case K_MAP:
        return o->type == MSGPACK_OBJECT_MAP;
    case K_STRS:
        return is_strs(o);
    case K_BIN:
        return o->type == MSGPACK_OBJECT_BIN;
    }
    return 0;
}

static int map_has_str_keys(const msgpack_object *map)
{
    uint32_t i;

    for (i = 0; i < map->via.map.size; i++) {
        if (!is_str(&map->via.map.ptr[i].key)) {
            return 0;
        }
    }
    return 1;
}

/* A map with string keys whose listed keys have the right kinds. */
static int validate_map(const msgpack_object *map, const ferry_key_t *keys)
{
    const msgpack_object *v;
    size_t i;

    if (map->type != MSGPACK_OBJECT_MAP || !map_has_str_keys(map)) {
        return -1;
    }
    for (i = 0; keys[i].key != NULL; i++) {
        v = ferry_map_get(map, keys[i].key);
        if (v == NULL ? keys[i].required : !kind_ok(v, keys[i].kind)) {
            return -1;
        }
    }
    return 0;
}

static int64_t int_of(const msgpack_object *o)
{
    if (o == NULL) {
        return 0;
    }
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64
                                                      : (int64_t)o->via.u64;
}

static int bool_of(const msgpack_object *o)
{
    return o != NULL && o->via.boolean;
}

static void str_of(const msgpack_object *o, ferry_str_t *out)
{
    out->ptr = o ? o->via.str.ptr : NULL;
    out->len = o ? o->via.str.size : 0;
}

/* A signed value that fits int64 (msgpack-c gives uint64 above 2^63). */
static int fits_int64(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
           || o->via.u64 <= (uint64_t)INT64_MAX;
}

/* The pass's optional sticky map: a cookie name, and an id, a Set-Cookie
 * and an HTTPS Set-Cookie for each of the pass's procs (nprocs). */
static int decode_sticky(const msgpack_object *m, size_t nprocs,
                         ferry_frame_t *f)
{
    const msgpack_object *ids, *sc, *sch, *add;

    if (validate_map(m, sticky_keys) != 0) {
        return -1;
    }
    str_of(ferry_map_get(m, "cookie"), &f->sticky_cookie);
    ids = ferry_map_get(m, "ids");
    sc = ferry_map_get(m, "set_cookie");
    sch = ferry_map_get(m, "set_cookie_https");
    add = ferry_map_get(m, "add_headers");
    if (f->sticky_cookie.len == 0 || ids->via.array.size != nprocs
        || sc->via.array.size != nprocs || sch->via.array.size != nprocs) {
        return -1;
    }
    f->sticky_ids = ids->via.array.ptr;
    f->sticky_set_cookie = sc->via.array.ptr;
    f->sticky_set_cookie_https = sch->via.array.ptr;
    f->nsticky_add = add->via.array.size / 2;
    f->sticky_add = add->via.array.ptr;
    f->has_sticky = 1;
    return 0;
}

/* The LEASE's optional pass: ttl > 0, 1 to FERRY_HELD_MAX non-empty
 * process ids, an absolute restart file, mtime >= -1; sticky data for
 * each process when present. */
static int decode_pass(const msgpack_object *m, ferry_frame_t *f)
{
    const msgpack_object *o;
    uint32_t i;

    if (validate_map(m, pass_keys) != 0) {
        return -1;
    }
    o = ferry_map_get(m, "ttl");
    if (!fits_int64(o) || int_of(o) <= 0) {
        return -1;
    }
    f->pass_ttl_ms = int_of(o);
    o = ferry_map_get(m, "procs");
    if (o->via.array.size == 0 || o->via.array.size > FERRY_HELD_MAX) {
        return -1;
    }
    for (i = 0; i < o->via.array.size; i++) {
        if (o->via.array.ptr[i].via.str.size == 0) {
            return -1;
        }
    }
    f->npass_procs = o->via.array.size;
    f->pass_procs = o->via.array.ptr;
    str_of(ferry_map_get(m, "restart_file"), &f->restart_file);
    if (f->restart_file.len == 0 || f->restart_file.ptr[0] != '/'
        || memchr(f->restart_file.ptr, '\0', f->restart_file.len) != NULL) {
        return -1;
    }
    o = ferry_map_get(m, "restart_mtime");
    if (!fits_int64(o) || int_of(o) < -1) {
        return -1;
    }
    f->restart_mtime_ns = int_of(o);
    o = ferry_map_get(m, "sticky");
    if (o != NULL && decode_sticky(o, f->npass_procs, f) != 0) {
        return -1;
    }
    f->has_pass = 1;
    return 0;
}

static int decode_lease(const msgpack_object *m, ferry_frame_t *f)
{
    const msgpack_object *o;

    if (validate_map(m, lease_keys) != 0) {
        return -1;
    }
    str_of(ferry_map_get(m, "id"), &f->id);
    f->pid = int_of(ferry_map_get(m, "pid"));
    f->reuse = bool_of(ferry_map_get(m, "reuse"));
    o = ferry_map_get(m, "head");
    f->lease_head = o->via.bin.ptr;
    f->lease_head_len = o->via.bin.size;
    f->chunked = bool_of(ferry_map_get(m, "chunked"));
    o = ferry_map_get(m, "add_headers");
    if (o != NULL) {
        f->nadd = o->via.array.size / 2;
        f->add = o->via.array.ptr;
    }
    f->deadline_ms = int_of(ferry_map_get(m, "deadline"));
    if (f->id.len == 0 || f->lease_head_len == 0 || f->deadline_ms < 0) {
        return -1;
    }
    o = ferry_map_get(m, "pass");
    return o != NULL ? decode_pass(o, f) : 0;
}

static int decode_done(const msgpack_object *m, ferry_frame_t *f)
{
    if (validate_map(m, done_keys) != 0) {
        return -1;
    }
    str_of(ferry_map_get(m, "id"), &f->id);
    str_of(ferry_map_get(m, "outcome"), &f->outcome);
    f->done_status = int_of(ferry_map_get(m, "status"));
    f->bytes_in = int_of(ferry_map_get(m, "bytes_in"));
    f->bytes_out = int_of(ferry_map_get(m, "bytes_out"));
    f->duration_us = int_of(ferry_map_get(m, "duration_us"));
    f->reusable = bool_of(ferry_map_get(m, "reusable"));
    return 0;
}

static int validate_request_head(const msgpack_object *head)
{
    const msgpack_object *v;
    size_t i;

    if (head->type != MSGPACK_OBJECT_MAP || !map_has_str_keys(head)) {
        return -1;
    }
    for (i = 0; i < sizeof(head_keys) / sizeof(head_keys[0]); i++) {
        v = ferry_map_get(head, head_keys[i].key);
        if (v == NULL) {
            if (head_keys[i].required) {
                return -1;
            }
            continue;
        }
        if (!kind_ok(v, head_keys[i].kind)) {
            return -1;
        }
    }
    v = ferry_map_get(head, "v");
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER
        || v->via.u64 < FERRY_PROTO_MIN_VERSION
        || v->via.u64 > FERRY_PROTO_VERSION) {
        return -1;
    }
    if (!map_has_str_keys(ferry_map_get(head, "app"))) {
        return -1;
    }
    return 0;
}

/* Check the frame array o and fill f. */
static ferry_proto_status validate_frame(const msgpack_object *o,
                                         ferry_frame_t *f)
{
    const msgpack_object *e;
    uint32_t n;

    memset(f, 0, sizeof(*f));
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1) {
        return FERRY_PROTO_MALFORMED;
    }
    e = o->via.array.ptr;
    n = o->via.array.size;
    if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return FERRY_PROTO_MALFORMED;
    }
    switch (e[0].via.u64) {
    case FERRY_FRAME_REQUEST_HEAD:
        if (n < 2 || validate_request_head(&e[1]) != 0) {
            return FERRY_PROTO_MALFORMED;
        }
        f->head = &e[1];
        break;
    case FERRY_FRAME_BODY:
        if (n < 2 || e[1].type != MSGPACK_OBJECT_BIN) {
            return FERRY_PROTO_MALFORMED;
        }
        f->data = e[1].via.bin.ptr;
        f->len = e[1].via.bin.size;
        break;
    case FERRY_FRAME_END:
        break;
    case FERRY_FRAME_RESPONSE_HEAD:
        if (n < 3 || e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
            || e[1].via.u64 < 100 || e[1].via.u64 > 599
            || !is_str_pairs(&e[2])) {
            return FERRY_PROTO_MALFORMED;
        }
        f->status = (int)e[1].via.u64;
        f->nheaders = e[2].via.array.size / 2;
        f->headers = e[2].via.array.ptr;
        break;
    case FERRY_FRAME_ABORT:
        if (n < 3 || !is_str(&e[1]) || !is_str(&e[2])) {
            return FERRY_PROTO_MALFORMED;
        }
        f->code.ptr = e[1].via.str.ptr;
        f->code.len = e[1].via.str.size;
        f->message.ptr = e[2].via.str.ptr;
        f->message.len = e[2].via.str.size;
        break;
    case FERRY_FRAME_LEASE:
        if (n < 2 || decode_lease(&e[1], f) != 0) {
            return FERRY_PROTO_MALFORMED;
        }
        break;
    case FERRY_FRAME_PROCEED:
        break;
    case FERRY_FRAME_DONE:
        if (n < 2 || decode_done(&e[1], f) != 0) {
            return FERRY_PROTO_MALFORMED;
        }
        break;
    default:
        return FERRY_PROTO_MALFORMED;
    }
    f->type = (int)e[0].via.u64;
    return FERRY_PROTO_OK;
}

/* ---- Structural pre-check ---------------------------------------------- */

/* Read an n-byte big-endian length at p[*pos]; -1 when out of bytes. */
static int read_len(const unsigned char *p, size_t len, size_t *pos, int n,
                    uint64_t *out)
{
    int i;

    if (len - *pos < (size_t)n) {
        return -1;
    }
    *out = 0;
    for (i = 0; i < n; i++) {
        *out = (*out << 8) | p[(*pos)++];
    }
    return 0;
}

/* Walk the msgpack value in p[0..len) without allocating: every string/bin
 * fits and every container announces no more elements than bytes remain.
 * msgpack-c allocates a container's element array from its header before
 * reading the elements, so a lying header ([array32 0xffffffff]) must be
 * refused before it gets there. */
static int plausible(const unsigned char *p, size_t len)
{
    size_t pos = 0;
    uint64_t pending = 1, skip, items, n;
    unsigned char b;

    while (pending > 0) {
        if (pos >= len || pending > len - pos) {
            return 0;
        }
        b = p[pos++];
        skip = items = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        }
        else if ((b & 0xe0) == 0xa0) {
            skip = b & 0x1f;
        }
        else if ((b & 0xf0) == 0x90) {
            items = b & 0x0f;
        }
        else if ((b & 0xf0) == 0x80) {
            items = 2 * (uint64_t)(b & 0x0f);
        }
        else {
            int lb = 0;                 /* bytes of a length field */
            int is_map = 0, is_cont = 0, is_ext = 0;

            switch (b) {
            case 0xc4: case 0xd9: lb = 1; break;        /* bin8, str8 */
            case 0xc5: case 0xda: lb = 2; break;        /* bin16, str16 */
            case 0xc6: case 0xdb: lb = 4; break;        /* bin32, str32 */
            case 0xc7: lb = 1; is_ext = 1; break;       /* ext8/16/32 */
            case 0xc8: lb = 2; is_ext = 1; break;
            case 0xc9: lb = 4; is_ext = 1; break;
            case 0xcc: case 0xd0: skip = 1; break;      /* ints, floats */
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xca: case 0xce: case 0xd2: skip = 4; break;
            case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                 /* fixext + type */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: lb = 2; is_cont = 1; break;      /* array16/32 */
            case 0xdd: lb = 4; is_cont = 1; break;
            case 0xde: lb = 2; is_cont = is_map = 1; break; /* map16/32 */
            case 0xdf: lb = 4; is_cont = is_map = 1; break;
            default:                                    /* 0xc1 */
                return 0;
            }
            if (lb > 0) {
                if (read_len(p, len, &pos, lb, &n) != 0) {
                    return 0;
                }
                if (is_cont) {
                    items = is_map ? 2 * n : n;
                }
                else {
                    skip = n + (uint64_t)is_ext;
                }
            }
        }
        if (skip > len - pos) {
            return 0;
        }
        pos += (size_t)skip;
        pending = pending - 1 + items;
    }
    return 1;
}

/* ---- Decoder ------------------------------------------------------------ */

ferry_decoder_t *ferry_decoder_create(void)
{
    ferry_decoder_t *dec = calloc(1, sizeof(*dec));

    if (dec == NULL) {
        return NULL;
    }
    dec->buf = malloc(FERRY_DECODER_INITIAL);
    if (dec->buf == NULL) {
        free(dec);
        return NULL;
    }
    dec->cap = FERRY_DECODER_INITIAL;
    msgpack_unpacked_init(&dec->result);
    return dec;
}

static void release_result(ferry_decoder_t *dec)
{
    if (dec->has_result) {
        msgpack_unpacked_destroy(&dec->result);
        msgpack_unpacked_init(&dec->result);
        dec->has_result = 0;
    }
}

void ferry_decoder_destroy(ferry_decoder_t *dec)
{
    if (dec == NULL) {
        return;
    }
    release_result(dec);
    msgpack_unpacked_destroy(&dec->result);
    free(dec->buf);
    free(dec);
}

int ferry_decoder_space(ferry_decoder_t *dec, size_t min,
                        char **buf, size_t *avail)
{
    size_t want, newcap;
    char *nb;

    release_result(dec);
    if (dec->start > 0) {
        memmove(dec->buf, dec->buf + dec->start, dec->end - dec->start);
        dec->end -= dec->start;
        dec->start = 0;
    }
    if (min > FERRY_FRAME_MAX + 4) {
        min = FERRY_FRAME_MAX + 4;
    }
    want = dec->end + min;
    if (dec->end >= 4) {
        /* Make room for the whole frame being received (up to the limit;
         * an oversized one is rejected by ferry_decoder_next). */
        uint32_t len = get_be32(dec->buf);
        if (len <= FERRY_FRAME_MAX && (size_t)len + 4 > want) {
            want = (size_t)len + 4;
        }
    }
    if (want > dec->cap) {
        newcap = dec->cap * 2;
        if (newcap < want) {
            newcap = want;
        }
        nb = realloc(dec->buf, newcap);
        if (nb == NULL) {
            return -1;
        }
        dec->buf = nb;
        dec->cap = newcap;
    }
    *buf = dec->buf + dec->end;
    *avail = dec->cap - dec->end;
    return 0;
}

void ferry_decoder_commit(ferry_decoder_t *dec, size_t n)
{
    dec->end += n;
}

int ferry_decoder_feed(ferry_decoder_t *dec, const char *data, size_t n)
{
    char *buf;
    size_t avail;

    while (n > 0) {
        if (ferry_decoder_space(dec, n, &buf, &avail) != 0) {
            return -1;
        }
        if (avail > n) {
            avail = n;
        }
        memcpy(buf, data, avail);
        ferry_decoder_commit(dec, avail);
        data += avail;
        n -= avail;
    }
    return 0;
}

/* The frame type, if the start of the payload shows it (array header, then
 * a positive fixint); 0 when not (yet) known. */
static int peek_type(const unsigned char *p, size_t n)
{
    size_t at;

    if (n < 1) {
        return 0;
    }
    if ((p[0] & 0xf0) == 0x90) {
        at = 1;
    }
    else if (p[0] == 0xdc) {
        at = 3;
    }
    else if (p[0] == 0xdd) {
        at = 5;
    }
    else {
        return 0;
    }
    return (n > at && p[at] < 0x80) ? p[at] : 0;
}

static int is_head_type(int type)
{
    return type == FERRY_FRAME_REQUEST_HEAD
           || type == FERRY_FRAME_RESPONSE_HEAD;
}

ferry_proto_status ferry_decoder_next(ferry_decoder_t *dec, ferry_frame_t *f)
{
    size_t have = dec->end - dec->start;
    const char *p = dec->buf + dec->start;
    uint32_t len;
    size_t off = 0;
    msgpack_unpack_return ur;
    ferry_proto_status st;

    release_result(dec);
    if (have < 4) {
        return FERRY_PROTO_NEED_MORE;
    }
    len = get_be32(p);
    if (len > FERRY_FRAME_MAX) {
        return FERRY_PROTO_TOO_LARGE;
    }
    if (len > FERRY_HEAD_FRAME_MAX
        && is_head_type(peek_type((const unsigned char *)p + 4, have - 4))) {
        return FERRY_PROTO_TOO_LARGE;
    }
    if (len == 0) {
        return FERRY_PROTO_MALFORMED;
    }
    if (have - 4 < len) {
        return FERRY_PROTO_NEED_MORE;
    }

    if (!plausible((const unsigned char *)p + 4, len)) {
        return FERRY_PROTO_MALFORMED;
    }
    ur = msgpack_unpack_next(&dec->result, p + 4, len, &off);
    dec->has_result = 1;
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        return FERRY_PROTO_NOMEM;
    }
    if (ur != MSGPACK_UNPACK_SUCCESS && ur != MSGPACK_UNPACK_EXTRA_BYTES) {
        return FERRY_PROTO_MALFORMED;
    }
    if (off != len) {
        /* The payload is exactly ONE msgpack value. */
        return FERRY_PROTO_MALFORMED;
    }
    st = validate_frame(&dec->result.data, f);
    if (st != FERRY_PROTO_OK) {
        return st;
    }
    if (len > FERRY_HEAD_FRAME_MAX && is_head_type(f->type)) {
        return FERRY_PROTO_TOO_LARGE;
    }
    dec->start += 4 + (size_t)len;
    return FERRY_PROTO_OK;
}

size_t ferry_decoder_pending(const ferry_decoder_t *dec, const char **data)
{
    *data = dec->buf + dec->start;
    return dec->end - dec->start;
}

void ferry_decoder_consume(ferry_decoder_t *dec, size_t len)
{
    if (len > dec->end - dec->start) {
        len = dec->end - dec->start;
    }
    dec->start += len;
}

/* ---- Encoders ----------------------------------------------------------- */

size_t ferry_frame_begin(msgpack_sbuffer *sb)
{
    static const char zero[4] = { 0, 0, 0, 0 };
    size_t start = sb->size;

    msgpack_sbuffer_write(sb, zero, sizeof(zero));
    return start;
}

int ferry_frame_finish(msgpack_sbuffer *sb, size_t start, size_t limit)
{
    size_t plen;

    if (sb->size < start + 4) {
        return -1;
    }
    plen = sb->size - start - 4;
    if (plen > limit || plen == 0) {
        sb->size = start;
        return -1;
    }
    put_be32(sb->data + start, (uint32_t)plen);
    return 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (msgpack_pack_str(pk, n) != 0) {
        return -1;
    }
    return n ? msgpack_pack_str_body(pk, s, n) : 0;
}

static int pack_key_str(msgpack_packer *pk, const char *key, const char *val)
{
    return (pack_cstr(pk, key) || pack_cstr(pk, val)) ? -1 : 0;
}

static int pack_key_int(msgpack_packer *pk, const char *key, int64_t val)
{
    return (pack_cstr(pk, key) || msgpack_pack_int64(pk, val)) ? -1 : 0;
}

static int pack_key_bool(msgpack_packer *pk, const char *key, int val)
{
    if (pack_cstr(pk, key) != 0) {
        return -1;
    }
    return val ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

static int pack_strs(msgpack_packer *pk, const char *const *v, size_t n)
{
    size_t i;
    int rc = msgpack_pack_array(pk, n);

    for (i = 0; i < n && rc == 0; i++) {
        rc = pack_cstr(pk, v[i]);
    }
    return rc;
}

/* The "app" map: options in the caller's order (the table's). */
static int pack_app(msgpack_packer *pk, const ferry_opt_t *app, size_t napp)
{
    size_t i;
    int rc = msgpack_pack_map(pk, napp);

    for (i = 0; i < napp && rc == 0; i++) {
        switch (app[i].type) {
        case FERRY_OPT_STR:
            rc = pack_key_str(pk, app[i].key, app[i].s);
            break;
        case FERRY_OPT_INT:
            rc = pack_key_int(pk, app[i].key, app[i].i);
            break;
        case FERRY_OPT_BOOL:
            rc = pack_key_bool(pk, app[i].key, (int)app[i].i);
            break;
        }
    }
    return rc;
}

int ferry_encode_request_head(msgpack_sbuffer *sb, const ferry_request_head_t *h)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);
    int v3 = h->version >= 3;
    int rc = 0;

    if (h->version < FERRY_PROTO_MIN_VERSION
        || h->version > FERRY_PROTO_VERSION) {
        sb->size = start;
        return -1;
    }
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    rc |= msgpack_pack_array(&pk, 2);
    rc |= msgpack_pack_int(&pk, FERRY_FRAME_REQUEST_HEAD);
    /* Keys in the order of the tables in docs/protocol.md; v3 adds held,
     * and pass and pass_sticky each when it is true. */
    rc |= msgpack_pack_map(&pk, v3 ? 16 + (h->pass ? 1 : 0)
                                     + (h->pass_sticky ? 1 : 0) : 15);
    rc |= pack_key_int(&pk, "v", h->version);
    rc |= pack_key_str(&pk, "method", h->method);
    rc |= pack_key_str(&pk, "uri", h->uri);
    rc |= pack_key_str(&pk, "proto", h->proto);
    rc |= pack_cstr(&pk, "headers");
    rc |= pack_strs(&pk, h->headers, 2 * h->nheaders);
    rc |= pack_key_str(&pk, "remote_addr", h->remote_addr);
    rc |= pack_key_int(&pk, "remote_port", h->remote_port);
    rc |= pack_key_str(&pk, "server_name", h->server_name);
    rc |= pack_key_int(&pk, "server_port", h->server_port);
    rc |= pack_key_bool(&pk, "https", h->https);
    rc |= pack_key_bool(&pk, "has_body", h->has_body);
    rc |= pack_key_bool(&pk, "upgrade", h->upgrade);
    rc |= pack_key_int(&pk, "gen", h->gen);
    rc |= pack_cstr(&pk, "app");
    rc |= pack_app(&pk, h->app, h->napp);
    rc |= pack_cstr(&pk, "env");
    rc |= pack_strs(&pk, h->env, 2 * h->nenv);
    if (v3) {
        rc |= pack_cstr(&pk, "held");
        rc |= pack_strs(&pk, h->held, h->nheld);
        if (h->pass) {
            rc |= pack_key_bool(&pk, "pass", 1);
        }
        if (h->pass_sticky) {
            rc |= pack_key_bool(&pk, "pass_sticky", 1);
        }
    }
    if (rc != 0) {
        sb->size = start;
        return -1;
    }
    return ferry_frame_finish(sb, start, FERRY_HEAD_FRAME_MAX);
}

int ferry_encode_app_env(msgpack_sbuffer *sb, const ferry_opt_t *app,
                         size_t napp, const char *const *env, size_t nenv)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (msgpack_pack_array(&pk, 2) || pack_app(&pk, app, napp)
        || pack_strs(&pk, env, 2 * nenv)) {
        return -1;
    }
    return 0;
}

static int pack_bin(msgpack_packer *pk, const char *data, size_t len)
{
    if (msgpack_pack_bin(pk, len) != 0) {
        return -1;
    }
    return len > 0 ? msgpack_pack_bin_body(pk, data, len) : 0;
}

/* Flat name/value pairs given with their lengths. */
static int pack_pairs(msgpack_packer *pk, const ferry_str_t *v, size_t npairs)
{
    size_t i;
    int rc = msgpack_pack_array(pk, 2 * npairs);

    for (i = 0; i < 2 * npairs && rc == 0; i++) {
        rc = msgpack_pack_str(pk, v[i].len);
        if (rc == 0 && v[i].len > 0) {
            rc = msgpack_pack_str_body(pk, v[i].ptr, v[i].len);
        }
    }
    return rc;
}

/* The pass's sticky map, keys in the order of docs/protocol.md. */
static int pack_sticky(msgpack_packer *pk, const ferry_lease_t *l)
{
    int rc = 0;

    rc |= msgpack_pack_map(pk, 5);
    rc |= pack_key_str(pk, "cookie", l->sticky_cookie);
    rc |= pack_cstr(pk, "ids");
    rc |= pack_strs(pk, l->sticky_ids, l->npass_procs);
    rc |= pack_cstr(pk, "set_cookie");
    rc |= pack_strs(pk, l->sticky_set_cookie, l->npass_procs);
    rc |= pack_cstr(pk, "set_cookie_https");
    rc |= pack_strs(pk, l->sticky_set_cookie_https, l->npass_procs);
    rc |= pack_cstr(pk, "add_headers");
    rc |= pack_pairs(pk, l->sticky_add_headers, l->nsticky_add);
    return rc;
}

int ferry_encode_lease(msgpack_sbuffer *sb, const ferry_lease_t *l)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);
    int rc = 0;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    rc |= msgpack_pack_array(&pk, 2);
    rc |= msgpack_pack_int(&pk, FERRY_FRAME_LEASE);
    rc |= msgpack_pack_map(&pk, l->has_pass ? 8 : 7);
    rc |= pack_key_str(&pk, "id", l->id);
    rc |= pack_key_int(&pk, "pid", l->pid);
    rc |= pack_key_bool(&pk, "reuse", l->reuse);
    rc |= pack_cstr(&pk, "head");
    rc |= pack_bin(&pk, l->head, l->head_len);
    rc |= pack_key_bool(&pk, "chunked", l->chunked);
    rc |= pack_cstr(&pk, "add_headers");
    rc |= pack_pairs(&pk, l->add_headers, l->nadd);
    rc |= pack_key_int(&pk, "deadline", l->deadline_ms);
    if (l->has_pass) {
        rc |= pack_cstr(&pk, "pass");
        rc |= msgpack_pack_map(&pk, l->has_sticky ? 5 : 4);
        rc |= pack_key_int(&pk, "ttl", l->pass_ttl_ms);
        rc |= pack_cstr(&pk, "procs");
        rc |= pack_strs(&pk, l->pass_procs, l->npass_procs);
        if (l->has_sticky) {
            rc |= pack_cstr(&pk, "sticky");
            rc |= pack_sticky(&pk, l);
        }
        rc |= pack_key_str(&pk, "restart_file", l->restart_file);
        rc |= pack_key_int(&pk, "restart_mtime", l->restart_mtime_ns);
    }
    if (rc != 0) {
        sb->size = start;
        return -1;
    }
    return ferry_frame_finish(sb, start, FERRY_FRAME_MAX);
}

int ferry_encode_proceed(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (msgpack_pack_array(&pk, 1)
        || msgpack_pack_int(&pk, FERRY_FRAME_PROCEED)) {
        sb->size = start;
        return -1;
    }
    return ferry_frame_finish(sb, start, FERRY_FRAME_MAX);
}

int ferry_encode_done(msgpack_sbuffer *sb, const ferry_done_t *d)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);
    int rc = 0;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    rc |= msgpack_pack_array(&pk, 2);
    rc |= msgpack_pack_int(&pk, FERRY_FRAME_DONE);
    rc |= msgpack_pack_map(&pk, 7);
    rc |= pack_key_str(&pk, "id", d->id);
    rc |= pack_key_str(&pk, "outcome", d->outcome);
    rc |= pack_key_int(&pk, "status", d->status);
    rc |= pack_key_int(&pk, "bytes_in", d->bytes_in);
    rc |= pack_key_int(&pk, "bytes_out", d->bytes_out);
    rc |= pack_key_int(&pk, "duration_us", d->duration_us);
    rc |= pack_key_bool(&pk, "reusable", d->reusable);
    if (rc != 0) {
        sb->size = start;
        return -1;
    }
    return ferry_frame_finish(sb, start, FERRY_FRAME_MAX);
}

int ferry_encode_body(msgpack_sbuffer *sb, const char *data, size_t len)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);
    int rc = 0;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    rc |= msgpack_pack_array(&pk, 2);
    rc |= msgpack_pack_int(&pk, FERRY_FRAME_BODY);
    rc |= msgpack_pack_bin(&pk, len);
    if (len > 0) {
        rc |= msgpack_pack_bin_body(&pk, data, len);
    }
    if (rc != 0) {
        sb->size = start;
        return -1;
    }
    return ferry_frame_finish(sb, start, FERRY_FRAME_MAX);
}

int ferry_encode_end(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (msgpack_pack_array(&pk, 1) || msgpack_pack_int(&pk, FERRY_FRAME_END)) {
        sb->size = start;
        return -1;
    }
    return ferry_frame_finish(sb, start, FERRY_FRAME_MAX);
}

int ferry_encode_abort(msgpack_sbuffer *sb, const char *code, const char *message)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);
    int rc = 0;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    rc |= msgpack_pack_array(&pk, 3);
    rc |= msgpack_pack_int(&pk, FERRY_FRAME_ABORT);
    rc |= pack_cstr(&pk, code);
    rc |= pack_cstr(&pk, message);
    if (rc != 0) {
        sb->size = start;
        return -1;
    }
    return ferry_frame_finish(sb, start, FERRY_FRAME_MAX);
}

int ferry_encode_response_head(msgpack_sbuffer *sb, int status,
                               const ferry_str_t *headers, size_t nheaders)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);
    size_t i;
    int rc = 0;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    rc |= msgpack_pack_array(&pk, 3);
    rc |= msgpack_pack_int(&pk, FERRY_FRAME_RESPONSE_HEAD);
    rc |= msgpack_pack_int(&pk, status);
    rc |= msgpack_pack_array(&pk, 2 * nheaders);
    for (i = 0; i < 2 * nheaders; i++) {
        rc |= msgpack_pack_str(&pk, headers[i].len);
        if (headers[i].len > 0) {
            rc |= msgpack_pack_str_body(&pk, headers[i].ptr, headers[i].len);
        }
    }
    if (rc != 0) {
        sb->size = start;
        return -1;
    }
    return ferry_frame_finish(sb, start, FERRY_HEAD_FRAME_MAX);
}

size_t ferry_body_prefix(char *out, size_t len)
{
    unsigned char *u = (unsigned char *)out;
    size_t hdr;

    u[4] = 0x92;                        /* fixarray of 2 */
    u[5] = FERRY_FRAME_BODY;            /* positive fixint */
    if (len < 0x100) {
        u[6] = 0xc4;                    /* bin 8 */
        u[7] = (unsigned char)len;
        hdr = 4;
    }
    else if (len < 0x10000) {
        u[6] = 0xc5;                    /* bin 16 */
        u[7] = (unsigned char)(len >> 8);
        u[8] = (unsigned char)len;
        hdr = 5;
    }
    else {
        u[6] = 0xc6;                    /* bin 32 */
        put_be32(out + 7, (uint32_t)len);
        hdr = 7;
    }
    put_be32(out, (uint32_t)(hdr + len));
    return 4 + hdr;
}
