/*
 * ngx_http_ferry_nofile.c: is a path under a location's root a regular file
 * (a static file, or Passenger's page cache: ngx_http_ferry_handler.c)?
 * With a short negative cache per worker, as nginx's open_file_cache keeps
 * errors (open_file_cache_errors): a path found missing (or not a regular
 * file) is not stat'ed again for FERRY_NOFILE_TTL ms, so a request for an
 * app's "/" costs no stat() of public/index.html each time. A file that
 * appears is served from at most FERRY_NOFILE_TTL ms later; one found is
 * never remembered (each request stats it, and nginx's static module opens
 * it), so a file that goes away is seen at once. docs/nginx.md, "Requests".
 *
 * Direct-mapped by a hash of the path: FERRY_NOFILE_SLOTS misses at most,
 * a newer one takes an older one's slot; paths longer than
 * FERRY_NOFILE_PATH_MAX are always stat'ed. nginx workers are single
 * threaded: no locking.
 */
#include "ngx_http_ferry.h"

#define FERRY_NOFILE_TTL        100     /* ms */
#define FERRY_NOFILE_SLOTS      128
#define FERRY_NOFILE_PATH_MAX   255

typedef struct {
    ngx_msec_t  until;          /* the miss is trusted while before it */
    uint32_t    hash;
    uint16_t    len;            /* 0: empty */
    u_char      path[FERRY_NOFILE_PATH_MAX];
} nofile_slot_t;

static nofile_slot_t  nofile[FERRY_NOFILE_SLOTS];


int
ngx_http_ferry_is_file(u_char *path, size_t len)
{
    ngx_file_info_t   fi;
    nofile_slot_t    *s = NULL;
    uint32_t          hash = 0;

    if (len <= FERRY_NOFILE_PATH_MAX) {
        hash = ngx_crc32_short(path, len);
        s = &nofile[hash % FERRY_NOFILE_SLOTS];
        if (s->len == len && s->hash == hash
            && (ngx_msec_int_t) (s->until - ngx_current_msec) > 0
            && ngx_memcmp(s->path, path, len) == 0)
        {
            return 0;
        }
    }
    if (ngx_file_info(path, &fi) != NGX_FILE_ERROR && ngx_is_file(&fi)) {
        return 1;
    }
    if (s != NULL) {
        s->until = ngx_current_msec + FERRY_NOFILE_TTL;
        s->hash = hash;
        s->len = (uint16_t) len;
        ngx_memcpy(s->path, path, len);
    }
    return 0;
}
