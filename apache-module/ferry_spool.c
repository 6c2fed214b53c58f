/*
 * ferry_spool.c: the direct path's response spool (ferry_spool.h). Memory
 * first (heap buckets up to PassengerResponseBufferHighWatermark), then one
 * temporary file in PassengerDataBufferDir (APR_FOPEN_DELONCLOSE, closed
 * with r->pool). All writes happen before the first read (the request is
 * sent, then the response relayed), so the file is written at its end and
 * read from its start.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_buckets.h"
#include "apr_file_io.h"
#include "apr_strings.h"

#include "ferry_config.h"
#include "ferry_log.h"
#include "ferry_spool.h"

APLOG_USE_MODULE(ferry);

struct ferry_spool_t {
    request_rec *r;
    apr_bucket_brigade *mem;    /* up to the watermark, in memory */
    apr_size_t mem_len;         /* bytes held in mem now */
    apr_size_t mem_total;       /* bytes ever written to mem */
    apr_size_t watermark;
    apr_file_t *file;           /* past the watermark */
    apr_off_t file_len;         /* bytes written to the file */
    apr_off_t file_read;        /* bytes read back */
};

ferry_spool_t *ferry_spool_create(request_rec *r)
{
    ferry_spool_t *sp = apr_pcalloc(r->pool, sizeof(*sp));

    sp->r = r;
    sp->mem = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    sp->watermark = ferry_conf_response_watermark(r->server);
    return sp;
}

static apr_status_t open_file(ferry_spool_t *sp)
{
    request_rec *r = sp->r;
    const char *dir = ferry_conf_data_buffer_dir(r->server);
    char *path;
    apr_status_t rv;

    if (dir == NULL && apr_temp_dir_get(&dir, r->pool) != APR_SUCCESS) {
        dir = "/tmp";
    }
    path = apr_pstrcat(r->pool, dir, "/ferry-response.XXXXXX", NULL);
    rv = apr_file_mktemp(&sp->file, path, APR_FOPEN_CREATE | APR_FOPEN_READ
                         | APR_FOPEN_WRITE | APR_FOPEN_EXCL
                         | APR_FOPEN_DELONCLOSE, r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FERRY_LOGNO(0122)
                      "Cannot create a response spool file in %s "
                      "(PassengerDataBufferDir)", dir);
        sp->file = NULL;
        return rv;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                  "spooling the response past %" APR_SIZE_T_FMT " bytes to %s",
                  sp->mem_total, path);
    return APR_SUCCESS;
}

apr_status_t ferry_spool_write(ferry_spool_t *sp, const char *data,
                               apr_size_t len)
{
    apr_size_t n = len;
    apr_status_t rv;

    if (sp->file == NULL && sp->mem_len + len <= sp->watermark) {
        APR_BRIGADE_INSERT_TAIL(sp->mem,
            apr_bucket_heap_create(data, len, NULL,
                                   sp->r->connection->bucket_alloc));
        sp->mem_len += len;
        sp->mem_total += len;
        return APR_SUCCESS;
    }
    if (sp->file == NULL && (rv = open_file(sp)) != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_write_full(sp->file, data, len, &n);
    sp->file_len += (apr_off_t)n;
    return rv;
}

apr_status_t ferry_spool_read(ferry_spool_t *sp, char *buf, apr_size_t *len)
{
    apr_bucket *b;
    const char *data;
    apr_size_t n;
    apr_off_t at;
    apr_status_t rv;

    if (!APR_BRIGADE_EMPTY(sp->mem)) {
        b = APR_BRIGADE_FIRST(sp->mem);
        rv = apr_bucket_read(b, &data, &n, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (n > *len) {
            apr_bucket_split(b, *len);
            n = *len;
        }
        memcpy(buf, data, n);
        apr_bucket_delete(b);
        sp->mem_len -= n;
        *len = n;
        return APR_SUCCESS;
    }
    if (sp->file == NULL || sp->file_read >= sp->file_len) {
        *len = 0;
        return APR_SUCCESS;
    }
    if (sp->file_read == 0) {
        at = 0;
        rv = apr_file_seek(sp->file, APR_SET, &at);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    if ((apr_off_t)*len > sp->file_len - sp->file_read) {
        *len = (apr_size_t)(sp->file_len - sp->file_read);
    }
    rv = apr_file_read(sp->file, buf, len);
    sp->file_read += (apr_off_t)*len;
    return rv;
}

apr_size_t ferry_spool_in_memory(const ferry_spool_t *sp)
{
    return sp->mem_total;
}

apr_off_t ferry_spool_in_file(const ferry_spool_t *sp)
{
    return sp->file_len;
}
