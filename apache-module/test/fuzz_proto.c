/*
 * libFuzzer target for what mod_ferry parses from outside Apache: the frame
 * decoder (every frame type through the generic entry points
 * ferry_decoder_feed/next, so frames added later are covered without
 * changing this file), and the app's HTTP/1.x response head and chunked
 * body on the direct path (ferry_http_parse.c).
 *
 * Input layout: byte 0 picks the target (even: frames, odd: HTTP) and
 * byte 1 the split size, so one frame stream also arrives in pieces, as it
 * does from a socket. Built with -fsanitize=fuzzer,address,undefined by
 * `make fuzz`; seeded with the golden vectors of test/fixtures/protocol
 * (test/fuzz_seeds.sh).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../ferry_proto.h"
#include "../ferry_http_parse.h"

/* Read every byte a frame points at, so the sanitizer sees any overread. */
static volatile size_t sink;

static void touch(const char *p, size_t n)
{
    size_t i, s = 0;

    for (i = 0; i < n; i++) {
        s += (unsigned char)p[i];
    }
    sink += s;
}

static void touch_str(ferry_str_t s)
{
    if (s.ptr != NULL) {
        touch(s.ptr, s.len);
    }
}

static void use_frame(const ferry_frame_t *f)
{
    size_t i;
    ferry_str_t name, value;

    sink += (size_t)f->type + (size_t)f->status;
    if (f->data != NULL) {
        touch(f->data, f->len);
    }
    for (i = 0; i < f->nheaders; i++) {
        ferry_frame_header(f, i, &name, &value);
        touch_str(name);
        touch_str(value);
    }
    for (i = 0; i < f->nadd; i++) {
        ferry_frame_add_header(f, i, &name, &value);
        touch_str(name);
        touch_str(value);
    }
    touch_str(f->code);
    touch_str(f->message);
    touch_str(f->id);
    touch_str(f->outcome);
    if (f->lease_head != NULL) {
        touch(f->lease_head, f->lease_head_len);
    }
}

static void fuzz_frames(const uint8_t *data, size_t size, size_t step)
{
    ferry_decoder_t *dec = ferry_decoder_create();
    ferry_frame_t f;
    ferry_proto_status st = FERRY_PROTO_NEED_MORE;
    size_t at = 0;
    const char *pending;

    if (dec == NULL) {
        return;
    }
    while (at < size) {
        size_t n = size - at < step ? size - at : step;

        if (ferry_decoder_feed(dec, (const char *)data + at, n) != 0) {
            break;
        }
        at += n;
        for (;;) {
            memset(&f, 0, sizeof(f));
            st = ferry_decoder_next(dec, &f);
            if (st != FERRY_PROTO_OK) {
                break;
            }
            use_frame(&f);
        }
        if (st != FERRY_PROTO_NEED_MORE) {
            break;      /* TOO_LARGE, MALFORMED, NOMEM are final */
        }
    }
    pending = NULL;
    if (ferry_decoder_pending(dec, &pending) > 0 && pending != NULL) {
        size_t n = ferry_decoder_pending(dec, &pending);
        touch(pending, n);
        ferry_decoder_consume(dec, n);
    }
    ferry_decoder_destroy(dec);
}

static void fuzz_http(const uint8_t *data, size_t size, int is_head)
{
    ferry_http_head_t h;
    ferry_http_status st;
    size_t pos = 0;
    const char *name, *value;
    size_t nlen, vlen;
    ferry_body_framing fr;

    memset(&h, 0, sizeof(h));
    st = ferry_http_parse_head((const char *)data, size, &h);
    if (st != FERRY_HTTP_OK) {
        return;
    }
    touch(h.reason, h.reason_len);
    while (ferry_http_next_header(&h, &pos, &name, &nlen, &value, &vlen)) {
        touch(name, nlen);
        touch(value, vlen);
        sink += (size_t)ferry_http_is_hop_by_hop(name, nlen, h.status == 101);
        sink += (size_t)ferry_http_has_token(value, vlen, "close");
    }
    fr = ferry_http_framing(&h, is_head);
    sink += (size_t)ferry_http_keeps_alive(&h, fr);
    if (fr == FERRY_BODY_CHUNKED && h.head_len <= size) {
        ferry_chunked_t c;
        const char *in = (const char *)data + h.head_len;
        size_t left = size - h.head_len;

        ferry_chunked_init(&c);
        while (left > 0) {
            size_t used = 0, dlen = 0;
            const char *d = NULL;
            ferry_chunk_status cs = ferry_chunked_next(&c, in, left, &used, &d, &dlen);

            if (d != NULL) {
                touch(d, dlen);
            }
            if (used > left) {
                __builtin_trap();   /* the parser claims more than it was given */
            }
            in += used;
            left -= used;
            if (cs == FERRY_CHUNK_DONE || cs == FERRY_CHUNK_BAD || (cs == FERRY_CHUNK_NEED_MORE && used == 0)) {
                break;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t step;

    if (size < 2) {
        return 0;
    }
    step = (size_t)data[1] == 0 ? size : (size_t)data[1];
    if ((data[0] & 1) == 0) {
        fuzz_frames(data + 2, size - 2, step);
    }
    else {
        fuzz_http(data + 2, size - 2, (data[0] & 2) != 0);
    }
    return 0;
}
