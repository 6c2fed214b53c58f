/*
 * proto_test.c: standalone test of ferry_proto.c against the golden frames in
 * test/fixtures/protocol/ (see the README there).
 *
 *   proto_test <fixtures dir>
 *
 * Every good vector must decode (fed whole, and fed one byte at a time) and
 * re-encode byte-exact through the module's encoders; every *.bad.hex must be
 * rejected (an error, or an incomplete frame at end of stream). Prints
 * "C tests: N passed, M failed" last; exits 1 on any failure.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ferry_proto.h"

static int passed, failed;

static void result(const char *name, const char *what, int ok, const char *why)
{
    if (ok) {
        passed++;
        printf("ok - %s: %s\n", name, what);
    }
    else {
        failed++;
        printf("not ok - %s: %s (%s)\n", name, what, why ? why : "");
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Read a .hex file into bytes (whitespace ignored). Returns malloc'd data. */
static char *read_hex(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "r");
    char *out;
    size_t cap = 4096, n = 0;
    int c, hi = -1;

    if (fp == NULL) {
        return NULL;
    }
    out = malloc(cap);
    while (out && (c = fgetc(fp)) != EOF) {
        int v = hexval(c);
        if (v < 0) {
            continue;
        }
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n == cap) {
            char *nb = realloc(out, cap * 2);
            if (nb == NULL) {
                free(out);
                out = NULL;
                break;
            }
            out = nb;
            cap *= 2;
        }
        out[n++] = (char)(hi << 4 | v);
        hi = -1;
    }
    fclose(fp);
    *len = n;
    return out;
}

static char *dup_str(const msgpack_object *o)
{
    char *s;

    if (o == NULL || o->type != MSGPACK_OBJECT_STR) {
        return NULL;
    }
    s = malloc(o->via.str.size + 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    return s;
}

static char *dup_view(ferry_str_t v)
{
    return strndup(v.len > 0 ? v.ptr : "", v.len);
}

static long long get_int(const msgpack_object *o)
{
    if (o == NULL) {
        return 0;
    }
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (long long)o->via.i64
                                                      : (long long)o->via.u64;
}

static int get_bool(const msgpack_object *o)
{
    return o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

/* Re-encode a decoded frame with the module's encoders into sb. */
static int reencode(const ferry_frame_t *f, msgpack_sbuffer *sb)
{
    int rc = -1;
    size_t i;

    switch (f->type) {
    case FERRY_FRAME_REQUEST_HEAD: {
        const msgpack_object *hd = ferry_map_get(f->head, "headers");
        const msgpack_object *app = ferry_map_get(f->head, "app");
        const msgpack_object *env = ferry_map_get(f->head, "env");
        const msgpack_object *held = ferry_map_get(f->head, "held");
        ferry_request_head_t h;
        ferry_opt_t *opts;
        char **hv, **ev, **lv;
        size_t n = hd->via.array.size;
        size_t ne = env ? env->via.array.size : 0;
        size_t nl = held ? held->via.array.size : 0;
        size_t na = app->via.map.size;

        memset(&h, 0, sizeof(h));
        hv = calloc(n + 1, sizeof(char *));
        ev = calloc(ne + 1, sizeof(char *));
        lv = calloc(nl + 1, sizeof(char *));
        opts = calloc(na + 1, sizeof(ferry_opt_t));
        for (i = 0; i < n; i++) {
            hv[i] = dup_str(&hd->via.array.ptr[i]);
        }
        for (i = 0; i < ne; i++) {
            ev[i] = dup_str(&env->via.array.ptr[i]);
        }
        for (i = 0; i < nl; i++) {
            lv[i] = dup_str(&held->via.array.ptr[i]);
        }
        for (i = 0; i < na; i++) {
            const msgpack_object *val = &app->via.map.ptr[i].val;

            opts[i].key = dup_str(&app->via.map.ptr[i].key);
            if (val->type == MSGPACK_OBJECT_STR) {
                opts[i].type = FERRY_OPT_STR;
                opts[i].s = dup_str(val);
            }
            else if (val->type == MSGPACK_OBJECT_BOOLEAN) {
                opts[i].type = FERRY_OPT_BOOL;
                opts[i].i = val->via.boolean;
            }
            else {
                opts[i].type = FERRY_OPT_INT;
                opts[i].i = get_int(val);
            }
        }
        h.version = (int)get_int(ferry_map_get(f->head, "v"));
        h.method = dup_str(ferry_map_get(f->head, "method"));
        h.uri = dup_str(ferry_map_get(f->head, "uri"));
        h.proto = dup_str(ferry_map_get(f->head, "proto"));
        h.headers = (const char *const *)hv;
        h.nheaders = n / 2;
        h.remote_addr = dup_str(ferry_map_get(f->head, "remote_addr"));
        h.remote_port = get_int(ferry_map_get(f->head, "remote_port"));
        h.server_name = dup_str(ferry_map_get(f->head, "server_name"));
        h.server_port = get_int(ferry_map_get(f->head, "server_port"));
        h.https = get_bool(ferry_map_get(f->head, "https"));
        h.has_body = get_bool(ferry_map_get(f->head, "has_body"));
        h.upgrade = get_bool(ferry_map_get(f->head, "upgrade"));
        h.gen = get_int(ferry_map_get(f->head, "gen"));
        h.app = opts;
        h.napp = na;
        h.env = (const char *const *)ev;
        h.nenv = ne / 2;
        h.held = (const char *const *)lv;
        h.nheld = nl;
        h.pass = get_bool(ferry_map_get(f->head, "pass"));
        h.pass_sticky = get_bool(ferry_map_get(f->head, "pass_sticky"));
        rc = ferry_encode_request_head(sb, &h);
        for (i = 0; i < n; i++) {
            free(hv[i]);
        }
        for (i = 0; i < ne; i++) {
            free(ev[i]);
        }
        for (i = 0; i < nl; i++) {
            free(lv[i]);
        }
        for (i = 0; i < na; i++) {
            free((char *)opts[i].key);
            free((char *)opts[i].s);
        }
        free(hv);
        free(ev);
        free(lv);
        free(opts);
        free((char *)h.method);
        free((char *)h.uri);
        free((char *)h.proto);
        free((char *)h.remote_addr);
        free((char *)h.server_name);
        break;
    }
    case FERRY_FRAME_BODY: {
        /* Both the buffered encoder and the zero-copy prefix path. */
        char prefix[FERRY_BODY_PREFIX_MAX];
        size_t plen, start = sb->size;

        rc = ferry_encode_body(sb, f->data, f->len);
        if (rc == 0) {
            plen = ferry_body_prefix(prefix, f->len);
            if (sb->size - start != plen + f->len
                || memcmp(sb->data + start, prefix, plen) != 0) {
                rc = -1;
            }
        }
        break;
    }
    case FERRY_FRAME_END:
        rc = ferry_encode_end(sb);
        break;
    case FERRY_FRAME_RESPONSE_HEAD: {
        ferry_str_t *hs = calloc(2 * f->nheaders + 1, sizeof(ferry_str_t));

        for (i = 0; i < f->nheaders; i++) {
            ferry_frame_header(f, i, &hs[2 * i], &hs[2 * i + 1]);
        }
        rc = ferry_encode_response_head(sb, f->status, hs, f->nheaders);
        free(hs);
        break;
    }
    case FERRY_FRAME_ABORT: {
        char *code = malloc(f->code.len + 1), *msg = malloc(f->message.len + 1);

        memcpy(code, f->code.ptr, f->code.len);
        code[f->code.len] = '\0';
        memcpy(msg, f->message.ptr, f->message.len);
        msg[f->message.len] = '\0';
        rc = ferry_encode_abort(sb, code, msg);
        free(code);
        free(msg);
        break;
    }
    case FERRY_FRAME_LEASE: {
        ferry_lease_t l;
        ferry_str_t *hs = calloc(2 * f->nadd + 1, sizeof(ferry_str_t));
        ferry_str_t *shs = calloc(2 * f->nsticky_add + 1, sizeof(ferry_str_t));
        char *id = strndup(f->id.ptr, f->id.len);
        char **procs = calloc(f->npass_procs + 1, sizeof(char *));
        char **sids = calloc(f->npass_procs + 1, sizeof(char *));
        char **sc = calloc(f->npass_procs + 1, sizeof(char *));
        char **sch = calloc(f->npass_procs + 1, sizeof(char *));
        char *restart = strndup(f->restart_file.ptr ? f->restart_file.ptr : "",
                                f->restart_file.len);
        char *cookie = strndup(f->sticky_cookie.ptr ? f->sticky_cookie.ptr : "",
                               f->sticky_cookie.len);

        for (i = 0; i < f->nadd; i++) {
            ferry_frame_add_header(f, i, &hs[2 * i], &hs[2 * i + 1]);
        }
        memset(&l, 0, sizeof(l));
        l.id = id;
        l.pid = f->pid;
        l.reuse = f->reuse;
        l.head = f->lease_head;
        l.head_len = f->lease_head_len;
        l.chunked = f->chunked;
        l.add_headers = hs;
        l.nadd = f->nadd;
        l.deadline_ms = f->deadline_ms;
        for (i = 0; i < f->npass_procs; i++) {
            ferry_str_t p = ferry_frame_pass_proc(f, i);

            procs[i] = strndup(p.ptr, p.len);
        }
        l.has_pass = f->has_pass;
        l.pass_ttl_ms = f->pass_ttl_ms;
        l.pass_procs = (const char *const *)procs;
        l.npass_procs = f->npass_procs;
        l.restart_file = restart;
        l.restart_mtime_ns = f->restart_mtime_ns;
        if (f->has_sticky) {
            for (i = 0; i < f->npass_procs; i++) {
                ferry_str_t v = ferry_frame_sticky_id(f, i);

                sids[i] = dup_view(v);
                v = ferry_frame_sticky_set_cookie(f, i, 0);
                sc[i] = dup_view(v);
                v = ferry_frame_sticky_set_cookie(f, i, 1);
                sch[i] = dup_view(v);
            }
            for (i = 0; i < f->nsticky_add; i++) {
                ferry_frame_sticky_add_header(f, i, &shs[2 * i],
                                              &shs[2 * i + 1]);
            }
        }
        l.has_sticky = f->has_sticky;
        l.sticky_cookie = cookie;
        l.sticky_ids = (const char *const *)sids;
        l.sticky_set_cookie = (const char *const *)sc;
        l.sticky_set_cookie_https = (const char *const *)sch;
        l.sticky_add_headers = shs;
        l.nsticky_add = f->nsticky_add;
        rc = ferry_encode_lease(sb, &l);
        for (i = 0; i < f->npass_procs; i++) {
            free(procs[i]);
            free(sids[i]);
            free(sc[i]);
            free(sch[i]);
        }
        free(procs);
        free(sids);
        free(sc);
        free(sch);
        free(restart);
        free(cookie);
        free(shs);
        free(hs);
        free(id);
        break;
    }
    case FERRY_FRAME_PROCEED:
        rc = ferry_encode_proceed(sb);
        break;
    case FERRY_FRAME_DONE: {
        ferry_done_t d;
        char *id = strndup(f->id.ptr, f->id.len);
        char *outcome = strndup(f->outcome.ptr, f->outcome.len);

        d.id = id;
        d.outcome = outcome;
        d.status = f->done_status;
        d.bytes_in = f->bytes_in;
        d.bytes_out = f->bytes_out;
        d.duration_us = f->duration_us;
        d.reusable = f->reusable;
        rc = ferry_encode_done(sb, &d);
        free(id);
        free(outcome);
        break;
    }
    }
    return rc;
}

/* Decode data fed in pieces of `step` bytes; 0 when exactly one frame
 * decodes and nothing is left over. On success, re-encode into sb. */
static int decode_one(const char *data, size_t len, size_t step,
                      msgpack_sbuffer *sb, const char **why)
{
    ferry_decoder_t *dec = ferry_decoder_create();
    ferry_frame_t f;
    ferry_proto_status st = FERRY_PROTO_NEED_MORE;
    size_t off = 0, n;
    const char *rest;
    int frames = 0, rc = -1;

    *why = "no frame";
    while (dec) {
        st = ferry_decoder_next(dec, &f);
        if (st == FERRY_PROTO_OK) {
            frames++;
            if (frames > 1) {
                *why = "more than one frame";
                break;
            }
            if (sb != NULL && reencode(&f, sb) != 0) {
                *why = "re-encoding failed";
                break;
            }
            continue;
        }
        if (st != FERRY_PROTO_NEED_MORE) {
            *why = ferry_proto_strstatus(st);
            break;
        }
        if (off == len) {
            if (frames == 1 && ferry_decoder_pending(dec, &rest) == 0) {
                rc = 0;
            }
            else if (frames == 1) {
                *why = "bytes left over";
            }
            else {
                *why = "incomplete frame at end of stream";
            }
            break;
        }
        n = len - off < step ? len - off : step;
        if (ferry_decoder_feed(dec, data + off, n) != 0) {
            *why = "out of memory";
            break;
        }
        off += n;
    }
    ferry_decoder_destroy(dec);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_vector(const char *dir, const char *name)
{
    char path[4096];
    char *data;
    size_t len;
    const char *why = "";
    int ok;
    int bad = ends_with(name, ".bad.hex");
    msgpack_sbuffer sb;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    data = read_hex(path, &len);
    if (data == NULL) {
        result(name, "read", 0, "cannot read file");
        return;
    }
    if (bad) {
        result(name, "rejected (whole)",
               decode_one(data, len, len ? len : 1, NULL, &why) != 0, "accepted");
        result(name, "rejected (byte by byte)",
               decode_one(data, len, 1, NULL, &why) != 0, "accepted");
    }
    else {
        msgpack_sbuffer_init(&sb);
        ok = decode_one(data, len, 1, NULL, &why) == 0;
        result(name, "decodes byte by byte", ok, why);
        if (decode_one(data, len, len, &sb, &why) != 0) {
            result(name, "decodes and re-encodes", 0, why);
        }
        else {
            result(name, "re-encodes byte-exact",
                   sb.size == len && memcmp(sb.data, data, len) == 0,
                   "bytes differ");
        }
        msgpack_sbuffer_destroy(&sb);
    }
    free(data);
}

/* Checks that need no vector: limits on the encoding side, body prefixes,
 * several frames in one buffer, leftover bytes after a frame. */
static void test_builtin(void)
{
    msgpack_sbuffer sb;
    ferry_decoder_t *dec;
    ferry_frame_t f;
    char *big, prefix[FERRY_BODY_PREFIX_MAX];
    const char *rest;
    size_t sizes[] = { 0, 1, 255, 256, 65535, 65536 };
    size_t i;
    int ok;

    msgpack_sbuffer_init(&sb);
    big = calloc(1, FERRY_FRAME_MAX + 1);
    result("builtin", "BODY over 4 MiB is refused by the encoder",
           ferry_encode_body(&sb, big, FERRY_FRAME_MAX) != 0 && sb.size == 0,
           "encoded");

    ok = 1;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t plen;
        msgpack_sbuffer_clear(&sb);
        ferry_encode_body(&sb, big, sizes[i]);
        plen = ferry_body_prefix(prefix, sizes[i]);
        if (sb.size != plen + sizes[i] || memcmp(sb.data, prefix, plen) != 0) {
            ok = 0;
        }
    }
    result("builtin", "BODY prefix matches the encoder for 0..64 KiB", ok,
           "mismatch");

    /* END + BODY("xy") + 3 raw bytes in one buffer. */
    msgpack_sbuffer_clear(&sb);
    ferry_encode_end(&sb);
    ferry_encode_body(&sb, "xy", 2);
    msgpack_sbuffer_write(&sb, "raw", 3);
    dec = ferry_decoder_create();
    ferry_decoder_feed(dec, sb.data, sb.size);
    ok = ferry_decoder_next(dec, &f) == FERRY_PROTO_OK && f.type == FERRY_FRAME_END
         && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
         && f.type == FERRY_FRAME_BODY && f.len == 2 && memcmp(f.data, "xy", 2) == 0
         && ferry_decoder_next(dec, &f) == FERRY_PROTO_NEED_MORE
         && ferry_decoder_pending(dec, &rest) == 3 && memcmp(rest, "raw", 3) == 0;
    result("builtin", "frames then raw bytes: frames decode, rest is pending",
           ok, "mismatch");
    ferry_decoder_destroy(dec);

    /* A 4 MiB BODY frame (the limit) decodes. */
    msgpack_sbuffer_clear(&sb);
    ok = ferry_encode_body(&sb, big, FERRY_FRAME_MAX - 16) == 0;
    dec = ferry_decoder_create();
    ok = ok && ferry_decoder_feed(dec, sb.data, sb.size) == 0
         && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
         && f.len == FERRY_FRAME_MAX - 16;
    result("builtin", "a BODY frame just under 4 MiB decodes", ok, "rejected");
    ferry_decoder_destroy(dec);

    /* Containers that announce more elements than bytes remain are refused
     * before msgpack-c allocates for them. */
    {
        static const char liar[] = { 0, 0, 0, 7, (char)0x92, 0x04,
                                     (char)0xdd, (char)0xff, (char)0xff,
                                     (char)0xff, (char)0xff };
        dec = ferry_decoder_create();
        ferry_decoder_feed(dec, liar, sizeof(liar));
        result("builtin", "array32 of 4G elements in 11 bytes is malformed",
               ferry_decoder_next(dec, &f) == FERRY_PROTO_MALFORMED, "accepted");
        ferry_decoder_destroy(dec);
    }

    /* LEASE and DONE shapes (v3). */
    {
        static const struct { const char *hex; const char *why; } bad[] = {
            /* [6, {id: "a", pid: 1, reuse: false}]: no head */
            { "920683a26964a161a370696401a5726575736" "5c2", "LEASE without head" },
            /* [6, {id: "a", pid: 1, reuse: false, head: "x"}]: head is str */
            { "920684a26964a161a370696401a572657573" "65c2a468656164a178",
              "LEASE head as str" },
            /* [6, {id: "", pid: 1, reuse: true, head: b"x"}]: empty id */
            { "920684a26964a0a370696401a572657573" "65c3a468656164c40178",
              "LEASE with an empty id" },
            /* [8, {id: "a"}]: no outcome */
            { "920881a26964a161", "DONE without outcome" },
            /* [6]: no map */
            { "9106", "LEASE without its map" },
        };
        char frame[256];

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            size_t hl = strlen(bad[i].hex) / 2, k;

            frame[0] = frame[1] = frame[2] = 0;
            frame[3] = (char)hl;
            for (k = 0; k < hl; k++) {
                frame[4 + k] = (char)(hexval(bad[i].hex[2 * k]) << 4
                                      | hexval(bad[i].hex[2 * k + 1]));
            }
            dec = ferry_decoder_create();
            ferry_decoder_feed(dec, frame, hl + 4);
            result("builtin", bad[i].why,
                   ferry_decoder_next(dec, &f) == FERRY_PROTO_MALFORMED,
                   "accepted");
            ferry_decoder_destroy(dec);
        }
        /* A minimal LEASE: optional keys default. */
        dec = ferry_decoder_create();
        {
            static const char ok_hex[] =
                "920684a26964a161a370696401a572657573" "65c3a468656164c40178";
            size_t hl = strlen(ok_hex) / 2, k;

            frame[0] = frame[1] = frame[2] = 0;
            frame[3] = (char)hl;
            for (k = 0; k < hl; k++) {
                frame[4 + k] = (char)(hexval(ok_hex[2 * k]) << 4
                                      | hexval(ok_hex[2 * k + 1]));
            }
            ferry_decoder_feed(dec, frame, hl + 4);
            ok = ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
                 && f.type == FERRY_FRAME_LEASE && f.reuse && !f.chunked
                 && f.nadd == 0 && f.deadline_ms == 0 && f.pid == 1
                 && f.lease_head_len == 1 && f.id.len == 1;
            result("builtin", "a LEASE with only id, pid, reuse, head decodes "
                   "with defaults", ok, "mismatch");
        }
        ferry_decoder_destroy(dec);
    }

    free(big);
    msgpack_sbuffer_destroy(&sb);
}

/* Encode a LEASE with the given pass and decode it again; the decoder's
 * status. */
static ferry_proto_status lease_with_pass(int64_t ttl, const char *const *procs,
                                          size_t nprocs, const char *file,
                                          int64_t mtime, ferry_frame_t *f,
                                          ferry_decoder_t *dec)
{
    msgpack_sbuffer sb;
    ferry_lease_t l;
    ferry_proto_status st;

    memset(&l, 0, sizeof(l));
    l.id = "c.1";
    l.pid = 7;
    l.head = "GET / HTTP/1.1\r\n\r\n";
    l.head_len = strlen(l.head);
    l.has_pass = 1;
    l.pass_ttl_ms = ttl;
    l.pass_procs = procs;
    l.npass_procs = nprocs;
    l.restart_file = file;
    l.restart_mtime_ns = mtime;
    msgpack_sbuffer_init(&sb);
    if (ferry_encode_lease(&sb, &l) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return FERRY_PROTO_NOMEM;
    }
    ferry_decoder_feed(dec, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    st = ferry_decoder_next(dec, f);
    return st;
}

/* The LEASE's pass (docs/protocol.md "Passes"): fields decoded, bad values
 * refused; REQUEST_HEAD's pass key. */
static void test_pass(const char *dir)
{
    static const char *const two[] = { "c.1", "c.2" };
    static const char *const empty_id[] = { "" };
    const char *many[FERRY_HELD_MAX + 1];
    char path[4096];
    ferry_decoder_t *dec;
    ferry_frame_t f;
    ferry_str_t p0, p1;
    char *data;
    size_t len, i;
    int ok;

    for (i = 0; i <= FERRY_HELD_MAX; i++) {
        many[i] = "c.9";
    }
    snprintf(path, sizeof(path), "%s/lease-pass.hex", dir);
    data = read_hex(path, &len);
    dec = ferry_decoder_create();
    ok = data != NULL && ferry_decoder_feed(dec, data, len) == 0
         && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
         && f.type == FERRY_FRAME_LEASE && f.has_pass && f.pass_ttl_ms == 200
         && f.npass_procs == 2 && f.restart_mtime_ns == 1765012345123456789LL
         && f.restart_file.len == 24
         && !memcmp(f.restart_file.ptr, "/srv/app/tmp/restart.txt", 24);
    if (ok) {
        p0 = ferry_frame_pass_proc(&f, 0);
        p1 = ferry_frame_pass_proc(&f, 1);
        ok = p0.len == 11 && !memcmp(p0.ptr, "7f3a9c1e.17", 11)
             && p1.len == 10 && !memcmp(p1.ptr, "7f3a9c1e.9", 10);
    }
    result("lease-pass.hex", "pass fields: ttl, procs, restart file, mtime",
           ok, data == NULL ? "cannot read the vector" : "mismatch");
    free(data);
    ferry_decoder_destroy(dec);

    snprintf(path, sizeof(path), "%s/lease-pass-no-restart-file.hex", dir);
    data = read_hex(path, &len);
    dec = ferry_decoder_create();
    ok = data != NULL && ferry_decoder_feed(dec, data, len) == 0
         && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK && f.has_pass
         && f.npass_procs == 1 && f.restart_mtime_ns == -1;
    result("lease-pass-no-restart-file.hex", "restart_mtime -1", ok,
           data == NULL ? "cannot read the vector" : "mismatch");
    free(data);
    ferry_decoder_destroy(dec);

    snprintf(path, sizeof(path), "%s/lease.hex", dir);
    data = read_hex(path, &len);
    dec = ferry_decoder_create();
    ok = data != NULL && ferry_decoder_feed(dec, data, len) == 0
         && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK && !f.has_pass
         && f.npass_procs == 0;
    result("lease.hex", "no pass key: has_pass is 0", ok, "mismatch");
    free(data);
    ferry_decoder_destroy(dec);

    dec = ferry_decoder_create();
    ok = lease_with_pass(1, two, 2, "/a/restart.txt", -1, &f, dec)
         == FERRY_PROTO_OK && f.has_pass && f.restart_mtime_ns == -1;
    result("builtin", "a pass with restart_mtime -1 (no file) decodes", ok,
           "rejected");
    ferry_decoder_destroy(dec);

    {
        static const struct {
            int64_t ttl; int procs; const char *file; int64_t mtime;
            const char *why;
        } bad[] = {
            { 0, 2, "/a/restart.txt", 5, "a pass with ttl 0" },
            { -5, 2, "/a/restart.txt", 5, "a pass with a negative ttl" },
            { 200, 0, "/a/restart.txt", 5, "a pass without procs" },
            { 200, 17, "/a/restart.txt", 5, "a pass with 17 procs" },
            { 200, -1, "/a/restart.txt", 5, "a pass with an empty proc id" },
            { 200, 2, "a/restart.txt", 5, "a pass with a relative restart file" },
            { 200, 2, "", 5, "a pass with an empty restart file" },
            { 200, 2, "/a/restart.txt", -2, "a pass with restart_mtime -2" },
        };

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            const char *const *procs = bad[i].procs == 2 ? two
                                       : bad[i].procs == -1 ? empty_id : many;
            size_t np = bad[i].procs == 2 ? 2 : bad[i].procs == -1 ? 1
                        : (size_t)bad[i].procs;

            dec = ferry_decoder_create();
            result("builtin", bad[i].why,
                   lease_with_pass(bad[i].ttl, procs, np, bad[i].file,
                                   bad[i].mtime, &f, dec)
                   == FERRY_PROTO_MALFORMED, "accepted");
            ferry_decoder_destroy(dec);
        }
    }

    /* REQUEST_HEAD: pass is written only when set. */
    {
        ferry_opt_t app = { "app_root", FERRY_OPT_STR, "/srv/app", 0 };
        ferry_request_head_t h;
        msgpack_sbuffer sb;
        const msgpack_object *o;
        int sizes_ok;

        memset(&h, 0, sizeof(h));
        h.version = 3;
        h.method = "GET";
        h.uri = "/";
        h.app = &app;
        h.napp = 1;
        msgpack_sbuffer_init(&sb);
        ferry_encode_request_head(&sb, &h);
        len = sb.size;
        h.pass = 1;
        ferry_encode_request_head(&sb, &h);
        sizes_ok = sb.size == 2 * len + 6;
        dec = ferry_decoder_create();
        ferry_decoder_feed(dec, sb.data, sb.size);
        ok = ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
             && ferry_map_get(f.head, "pass") == NULL
             && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
             && (o = ferry_map_get(f.head, "pass")) != NULL
             && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
        result("builtin", "REQUEST_HEAD carries pass: true only when set",
               ok && sizes_ok, "mismatch");
        ferry_decoder_destroy(dec);
        sb.size = 0;
        h.version = 2;
        ok = ferry_encode_request_head(&sb, &h) == 0;
        dec = ferry_decoder_create();
        ferry_decoder_feed(dec, sb.data, sb.size);
        ok = ok && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
             && ferry_map_get(f.head, "pass") == NULL;
        result("builtin", "a v2 REQUEST_HEAD never carries pass", ok,
               "mismatch");
        ferry_decoder_destroy(dec);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* Encode l and decode it again; the decoder's status. */
static ferry_proto_status lease_round_trip(const ferry_lease_t *l,
                                           ferry_frame_t *f,
                                           ferry_decoder_t *dec)
{
    msgpack_sbuffer sb;

    msgpack_sbuffer_init(&sb);
    if (ferry_encode_lease(&sb, l) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return FERRY_PROTO_NOMEM;
    }
    ferry_decoder_feed(dec, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return ferry_decoder_next(dec, f);
}

static int view_is(ferry_str_t v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

/* LEASEs whose pass has a malformed sticky map (pack_bad_sticky). */
static const char *const sticky_bad_why[] = {
    "a sticky map with an empty cookie name",
    "a sticky map with fewer ids than procs",
    "a sticky map with fewer set_cookie than procs",
    "a sticky map with more set_cookie_https than procs",
    "a sticky map with an odd add_headers",
    "a sticky map with an int among the ids",
    "a sticky map that is an array",
    "a sticky map without add_headers",
    "a sticky map without cookie",
    "a sticky map whose cookie is an int",
};
#define STICKY_BAD (sizeof(sticky_bad_why) / sizeof(sticky_bad_why[0]))

static void pack_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* n strings "v<i>" (an int at index bad_at, if < n). */
static void pack_list(msgpack_packer *pk, size_t n, size_t bad_at)
{
    static const char *const v[] = { "1", "2", "3" };
    size_t i;

    msgpack_pack_array(pk, n);
    for (i = 0; i < n; i++) {
        if (i == bad_at) {
            msgpack_pack_int(pk, 5);
        }
        else {
            pack_s(pk, v[i % 3]);
        }
    }
}

/* A LEASE frame whose pass (procs c.1, c.2) has the sticky map spoilt as
 * sticky_bad_why[which] says (-1: not spoilt). */
static int pack_bad_sticky(msgpack_sbuffer *sb, int which)
{
    msgpack_packer pk;
    size_t start = ferry_frame_begin(sb);
    int nkeys = 5;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, FERRY_FRAME_LEASE);
    msgpack_pack_map(&pk, 5);
    pack_s(&pk, "id");
    pack_s(&pk, "c.1");
    pack_s(&pk, "pid");
    msgpack_pack_int(&pk, 7);
    pack_s(&pk, "reuse");
    msgpack_pack_true(&pk);
    pack_s(&pk, "head");
    msgpack_pack_bin(&pk, 1);
    msgpack_pack_bin_body(&pk, "x", 1);
    pack_s(&pk, "pass");
    msgpack_pack_map(&pk, 5);
    pack_s(&pk, "ttl");
    msgpack_pack_int(&pk, 500);
    pack_s(&pk, "procs");
    msgpack_pack_array(&pk, 2);
    pack_s(&pk, "c.1");
    pack_s(&pk, "c.2");
    pack_s(&pk, "sticky");
    if (which == 6) {
        msgpack_pack_array(&pk, 0);
    }
    else {
        if (which == 7 || which == 8) {
            nkeys = 4;
        }
        msgpack_pack_map(&pk, nkeys);
        if (which != 8) {
            pack_s(&pk, "cookie");
            if (which == 9) {
                msgpack_pack_int(&pk, 1);
            }
            else {
                pack_s(&pk, which == 0 ? "" : "r");
            }
        }
        pack_s(&pk, "ids");
        pack_list(&pk, which == 1 ? 1 : 2, which == 5 ? 1 : 9);
        pack_s(&pk, "set_cookie");
        pack_list(&pk, which == 2 ? 1 : 2, 9);
        pack_s(&pk, "set_cookie_https");
        pack_list(&pk, which == 3 ? 3 : 2, 9);
        if (which != 7) {
            pack_s(&pk, "add_headers");
            pack_list(&pk, which == 4 ? 1 : 2, 9);
        }
    }
    pack_s(&pk, "restart_file");
    pack_s(&pk, "/a/restart.txt");
    pack_s(&pk, "restart_mtime");
    msgpack_pack_int(&pk, -1);
    return ferry_frame_finish(sb, start, FERRY_FRAME_MAX);
}

static int str_is(const msgpack_object *o, const char *s)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s)
           && memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* The pass's sticky map (docs/protocol.md "Passes"): fields decoded, bad
 * shapes refused; REQUEST_HEAD's pass_sticky key. */
static void test_sticky(void)
{
    static const char *const procs[] = { "c.1", "c.2" };
    static const char *const ids[] = { "11", "22" };
    static const char *const sc[] = { "r=11; Path=/", "r=22; Path=/" };
    static const char *const sch[] = { "r=11; Path=/; Secure",
                                       "r=22; Path=/; Secure" };
    static const ferry_str_t add[] = { { "X-Powered-By", 12 }, { "Ferry", 5 } };
    ferry_lease_t l;
    ferry_decoder_t *dec;
    ferry_frame_t f;
    ferry_str_t n, v;
    size_t i;
    int ok;

    memset(&l, 0, sizeof(l));
    l.id = "c.1";
    l.pid = 7;
    l.head = "GET / HTTP/1.1\r\n\r\n";
    l.head_len = strlen(l.head);
    l.has_pass = 1;
    l.pass_ttl_ms = 500;
    l.pass_procs = procs;
    l.npass_procs = 2;
    l.restart_file = "/a/restart.txt";
    l.restart_mtime_ns = -1;
    l.has_sticky = 1;
    l.sticky_cookie = "r";
    l.sticky_ids = ids;
    l.sticky_set_cookie = sc;
    l.sticky_set_cookie_https = sch;
    l.sticky_add_headers = add;
    l.nsticky_add = 1;

    dec = ferry_decoder_create();
    ok = lease_round_trip(&l, &f, dec) == FERRY_PROTO_OK && f.has_pass
         && f.has_sticky && view_is(f.sticky_cookie, "r")
         && f.nsticky_add == 1;
    for (i = 0; ok && i < 2; i++) {
        ok = view_is(ferry_frame_sticky_id(&f, i), ids[i])
             && view_is(ferry_frame_sticky_set_cookie(&f, i, 0), sc[i])
             && view_is(ferry_frame_sticky_set_cookie(&f, i, 1), sch[i]);
    }
    if (ok) {
        ferry_frame_sticky_add_header(&f, 0, &n, &v);
        ok = view_is(n, "X-Powered-By") && view_is(v, "Ferry");
    }
    result("builtin", "a pass with sticky data decodes: cookie, ids, "
           "Set-Cookie values, add_headers", ok, "mismatch");
    ferry_decoder_destroy(dec);

    l.nsticky_add = 0;
    dec = ferry_decoder_create();
    ok = lease_round_trip(&l, &f, dec) == FERRY_PROTO_OK && f.has_sticky
         && f.nsticky_add == 0;
    result("builtin", "sticky add_headers may be empty", ok, "rejected");
    ferry_decoder_destroy(dec);
    l.nsticky_add = 1;

    l.has_sticky = 0;
    dec = ferry_decoder_create();
    ok = lease_round_trip(&l, &f, dec) == FERRY_PROTO_OK && f.has_pass
         && !f.has_sticky && f.sticky_ids == NULL && f.nsticky_add == 0;
    result("builtin", "a pass without sticky: has_sticky is 0", ok,
           "mismatch");
    ferry_decoder_destroy(dec);
    l.has_sticky = 1;

    {
        msgpack_sbuffer sb;

        msgpack_sbuffer_init(&sb);
        dec = ferry_decoder_create();
        ok = pack_bad_sticky(&sb, -1) == 0
             && ferry_decoder_feed(dec, sb.data, sb.size) == 0
             && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK && f.has_sticky;
        result("builtin", "the hand-packed sticky LEASE unspoilt decodes", ok,
               "rejected");
        ferry_decoder_destroy(dec);
        msgpack_sbuffer_destroy(&sb);
    }
    for (i = 0; i < STICKY_BAD; i++) {
        msgpack_sbuffer sb;

        msgpack_sbuffer_init(&sb);
        dec = ferry_decoder_create();
        ok = pack_bad_sticky(&sb, (int)i) == 0
             && ferry_decoder_feed(dec, sb.data, sb.size) == 0
             && ferry_decoder_next(dec, &f) == FERRY_PROTO_MALFORMED;
        result("builtin", sticky_bad_why[i], ok, "accepted");
        ferry_decoder_destroy(dec);
        msgpack_sbuffer_destroy(&sb);
    }

    /* REQUEST_HEAD: pass_sticky is written only when set, after pass. */
    {
        ferry_opt_t app = { "app_root", FERRY_OPT_STR, "/srv/app", 0 };
        ferry_request_head_t h;
        msgpack_sbuffer sb;
        const msgpack_object *o;
        size_t len;

        memset(&h, 0, sizeof(h));
        h.version = 3;
        h.method = "GET";
        h.uri = "/";
        h.app = &app;
        h.napp = 1;
        h.pass = 1;
        msgpack_sbuffer_init(&sb);
        ferry_encode_request_head(&sb, &h);
        len = sb.size;
        h.pass_sticky = 1;
        ferry_encode_request_head(&sb, &h);
        dec = ferry_decoder_create();
        ferry_decoder_feed(dec, sb.data, sb.size);
        ok = sb.size == 2 * len + 13
             && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
             && ferry_map_get(f.head, "pass_sticky") == NULL
             && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
             && (o = ferry_map_get(f.head, "pass_sticky")) != NULL
             && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean
             && f.head->via.map.size == 18
             && str_is(&f.head->via.map.ptr[16].key, "pass")
             && str_is(&f.head->via.map.ptr[17].key, "pass_sticky");
        result("builtin", "REQUEST_HEAD carries pass_sticky: true only when "
               "set, right after pass", ok, "mismatch");
        ferry_decoder_destroy(dec);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* The golden vectors of sticky passes (test/helpers/protocol-vectors.ts):
 * their fields. */
static void test_sticky_vectors(const char *dir)
{
    static const char *const sc[] = {
        "_passenger_route=1234567; Path=/; SameSite=Lax",
        "_passenger_route=4000000000; Path=/; SameSite=Lax"
    };
    static const char *const sch[] = {
        "_passenger_route=1234567; Path=/; SameSite=Lax; Secure",
        "_passenger_route=4000000000; Path=/; SameSite=Lax; Secure"
    };
    char path[4096];
    ferry_decoder_t *dec;
    ferry_frame_t f;
    ferry_str_t n, v;
    const msgpack_object *o;
    char *data;
    size_t len, i;
    int ok;

    snprintf(path, sizeof(path), "%s/lease-pass-sticky.hex", dir);
    data = read_hex(path, &len);
    dec = ferry_decoder_create();
    ok = data != NULL && ferry_decoder_feed(dec, data, len) == 0
         && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
         && f.type == FERRY_FRAME_LEASE && f.pid == 4242 && f.reuse
         && !f.chunked && f.deadline_ms == 0 && f.nadd == 2
         && f.has_pass && f.pass_ttl_ms == 500 && f.npass_procs == 2
         && view_is(ferry_frame_pass_proc(&f, 0), "7f3a9c1e.17")
         && view_is(ferry_frame_pass_proc(&f, 1), "7f3a9c1e.9")
         && view_is(f.restart_file, "/srv/app/tmp/restart.txt")
         && f.restart_mtime_ns == 1765012345123456789LL
         && f.has_sticky && view_is(f.sticky_cookie, "_passenger_route")
         && view_is(ferry_frame_sticky_id(&f, 0), "1234567")
         && view_is(ferry_frame_sticky_id(&f, 1), "4000000000")
         && f.nsticky_add == 1;
    for (i = 0; ok && i < 2; i++) {
        ok = view_is(ferry_frame_sticky_set_cookie(&f, i, 0), sc[i])
             && view_is(ferry_frame_sticky_set_cookie(&f, i, 1), sch[i]);
    }
    if (ok) {
        ferry_frame_sticky_add_header(&f, 0, &n, &v);
        ok = view_is(n, "X-Powered-By") && view_is(v, "Ferry");
        ferry_frame_add_header(&f, 1, &n, &v);
        ok = ok && view_is(n, "Set-Cookie") && view_is(v, sc[0]);
    }
    result("lease-pass-sticky.hex", "sticky fields: cookie, ids, Set-Cookie "
           "values (HTTP and HTTPS), add_headers", ok,
           data == NULL ? "cannot read the vector" : "mismatch");
    free(data);
    ferry_decoder_destroy(dec);

    snprintf(path, sizeof(path), "%s/request-head-pass-sticky.hex", dir);
    data = read_hex(path, &len);
    dec = ferry_decoder_create();
    ok = data != NULL && ferry_decoder_feed(dec, data, len) == 0
         && ferry_decoder_next(dec, &f) == FERRY_PROTO_OK
         && f.type == FERRY_FRAME_REQUEST_HEAD
         && (o = ferry_map_get(f.head, "pass")) != NULL
         && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean
         && (o = ferry_map_get(f.head, "pass_sticky")) != NULL
         && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean
         && f.head->via.map.size == 18
         && str_is(&f.head->via.map.ptr[17].key, "pass_sticky");
    result("request-head-pass-sticky.hex", "pass: true, then pass_sticky: "
           "true, the last key", ok,
           data == NULL ? "cannot read the vector" : "mismatch");
    free(data);
    ferry_decoder_destroy(dec);
}

/* Deterministic xorshift, so a failure reproduces. */
static unsigned int rnd_state = 2463534242u;

static unsigned int rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

/* Mutated and truncated copies of every good vector, fed in random pieces:
 * the decoder must never crash, never report a frame whose fields are out of
 * the buffer, and end each stream with frames, an error or NEED_MORE. */
static void test_mutations(char **vectors, size_t *lens, size_t nvec)
{
    size_t round, i, off, n, len;
    ferry_decoder_t *dec;
    ferry_frame_t f;
    ferry_proto_status st;
    char *buf;
    int ok = 1, frames = 0, errors = 0;

    for (round = 0; round < 4000 && nvec > 0; round++) {
        i = rnd() % nvec;
        len = lens[i];
        buf = malloc(len + 1);
        memcpy(buf, vectors[i], len);
        switch (rnd() % 3) {
        case 0:                                 /* flip some bytes */
            for (n = 0; n < 1 + rnd() % 4 && len > 0; n++) {
                buf[rnd() % len] = (char)rnd();
            }
            break;
        case 1:                                 /* truncate */
            len = len ? rnd() % len : 0;
            break;
        default:                                /* flip a payload byte only */
            if (len > 4) {
                buf[4 + rnd() % (len - 4)] ^= (char)(1u << (rnd() % 8));
            }
        }
        dec = ferry_decoder_create();
        off = 0;
        for (;;) {
            st = ferry_decoder_next(dec, &f);
            if (st == FERRY_PROTO_OK) {
                frames++;
                if (f.type == FERRY_FRAME_BODY && f.len > len) {
                    ok = 0;
                }
                continue;
            }
            if (st != FERRY_PROTO_NEED_MORE) {
                errors++;
                break;
            }
            if (off == len) {
                break;
            }
            n = 1 + rnd() % 64;
            if (n > len - off) {
                n = len - off;
            }
            ferry_decoder_feed(dec, buf + off, n);
            off += n;
        }
        ferry_decoder_destroy(dec);
        free(buf);
    }
    printf("# mutations: %d frames decoded, %d streams rejected\n",
           frames, errors);
    result("mutations", "4000 mutated/truncated streams decode or fail "
           "cleanly", ok && errors > 0, "bad frame");
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../test/fixtures/protocol";
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL, **vectors;
    size_t n = 0, i, *lens;
    int good = 0, bad = 0;

    if (d == NULL) {
        printf("not ok - cannot open %s\n", dir);
        printf("C tests: 0 passed, 1 failed\n");
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        if (ends_with(de->d_name, ".hex")) {
            names = realloc(names, (n + 1) * sizeof(char *));
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(char *), cmp_names);
    vectors = calloc(n + 1, sizeof(char *));
    lens = calloc(n + 1, sizeof(size_t));
    for (i = 0; i < n; i++) {
        if (ends_with(names[i], ".bad.hex")) {
            bad++;
        }
        else {
            char path[4096];

            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            vectors[good] = read_hex(path, &lens[good]);
            if (vectors[good] != NULL) {
                good++;
            }
        }
        test_vector(dir, names[i]);
        free(names[i]);
    }
    free(names);
    result("fixtures", "at least one good and one bad vector",
           good > 0 && bad > 0, "fixtures missing");
    test_builtin();
    test_pass(dir);
    test_sticky();
    test_sticky_vectors(dir);
    test_mutations(vectors, lens, (size_t)good);
    for (i = 0; i < (size_t)good; i++) {
        free(vectors[i]);
    }
    free(vectors);
    free(lens);
    printf("C tests: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
