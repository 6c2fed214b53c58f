/*
 * ferry_app_head.h: the request head an app process receives (docs/protocol.md
 * "LEASE", `head`), built by the module itself for a request on a pass
 * (docs/protocol.md "Passes"). Byte-identical to what the core puts in a
 * LEASE for the same REQUEST_HEAD (core/src/exchange/lease.ts
 * leaseRequestHead() over exchange/headers.ts appRequestHeaders()); the
 * fixture test/fixtures/protocol/app-heads.txt holds both to it.
 *
 * Pure C99 (no httpd, APR or nginx types): compiled into both modules and
 * into apache-module/test/app_head_test.c.
 */
#ifndef FERRY_APP_HEAD_H
#define FERRY_APP_HEAD_H

#include <stddef.h>

#include "ferry_proto.h"

/* The marker header of a pass request (the app's loader counts and strips
 * it; both head builders drop one the client sent). */
#define FERRY_PASS_HEADER "X-Ferry-Pass"

/* The request line, the forwarded headers (hop-by-hop ones and those named
 * in Connection removed, X-Forwarded-For appended to, X-Forwarded-Proto set,
 * Host added when absent, Content-Length only with a body,
 * Transfer-Encoding: chunked for a body of unknown length, Connection and
 * Upgrade on an upgrade, Expect and a client's X-Ferry-Pass dropped), then
 * "X-Ferry-Pass: 1" when pass != 0, and the blank line.
 *
 * Returns the length of the head; it is written into buf only when it fits
 * (length <= cap: else call again with a larger buffer). *chunked is set to
 * 1 when the body must be sent chunked, else 0. Returns 0 when the head
 * cannot be built the way the core would build it — the method or a header
 * name is not a token, a value holds CR or LF, the uri is empty or holds a
 * space or control byte, the uri or a value is not valid UTF-8 (the core's
 * decoding would change those bytes), server_name or remote_addr is not
 * ASCII: the request then takes the slow path (REQUEST_HEAD to the core). */
size_t ferry_app_head(const ferry_request_head_t *h, int pass, char *buf,
                      size_t cap, int *chunked);

#endif
