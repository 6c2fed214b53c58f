/*
 * ferry_spool.h: response bytes the direct path read from the app before
 * the client could take them (implemented in ferry_spool.c): held in memory
 * up to PassengerResponseBufferHighWatermark, beyond that in a temporary
 * file in PassengerDataBufferDir (deleted on close). Written while the
 * request goes out, read back (first in, first out) when it is done.
 */
#ifndef FERRY_SPOOL_H
#define FERRY_SPOOL_H

#include "httpd.h"

typedef struct ferry_spool_t ferry_spool_t;

/* A spool for r (everything lives in r->pool). */
ferry_spool_t *ferry_spool_create(request_rec *r);

/* Append len bytes. Fails (logged) when the file cannot be created or
 * written. */
apr_status_t ferry_spool_write(ferry_spool_t *sp, const char *data,
                               apr_size_t len);

/* Up to *len of the oldest bytes into buf; *len is 0 when it is empty. */
apr_status_t ferry_spool_read(ferry_spool_t *sp, char *buf, apr_size_t *len);

/* Bytes written so far: in memory, and to the file. */
apr_size_t ferry_spool_in_memory(const ferry_spool_t *sp);
apr_off_t ferry_spool_in_file(const ferry_spool_t *sp);

#endif
