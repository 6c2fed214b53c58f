/*
 * ferry_detect.c: which kind of app lives in an app root (ferry_detect.h):
 * Passenger's autodetection, with a minimal JSON reader for
 * Passengerfile.json and the per-child cache of the results.
 */

#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_file_io.h"
#include "apr_hash.h"
#include "apr_lib.h"
#include "apr_strings.h"
#if APR_HAS_THREADS
#include "apr_thread_mutex.h"
#endif

#include "ferry_config.h"
#include "ferry_detect.h"
#include "ferry_log.h"

APLOG_USE_MODULE(ferry);

/* Passenger reads at most this much of Passengerfile.json. */
#define FERRY_PASSENGERFILE_MAX (512 * 1024)
/* Entries in the per-child detection cache before it is emptied. */
#define FERRY_DETECT_CACHE_MAX 512

/* 1 = exists (regular file or directory per want_dir), 0 = no, -1 = EACCES. */
int ferry_detect_probe(apr_pool_t *p, const char *dir, const char *name, int want_dir,
                 apr_status_t *rvp)
{
    apr_finfo_t fi;
    apr_status_t rv = apr_stat(&fi, apr_pstrcat(p, dir, "/", name, NULL),
                               APR_FINFO_TYPE, p);
    if (rv == APR_SUCCESS || rv == APR_INCOMPLETE) {
        return want_dir ? fi.filetype == APR_DIR : fi.filetype == APR_REG;
    }
    if (APR_STATUS_IS_EACCES(rv)) {
        *rvp = rv;
        return -1;
    }
    return 0;
}

/* Minimal JSON reading for Passengerfile.json: only a top-level string
 * member is extracted; everything else is skipped. */
typedef struct {
    const char *s;
    const char *end;
} json_t;

static void json_ws(json_t *j)
{
    while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n'
                             || *j->s == '\r')) {
        j->s++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parse a JSON string at j->s (the opening quote); decoded into *out when
 * out != NULL. Returns 0 on success. */
static int json_string(json_t *j, apr_pool_t *p, const char **out)
{
    char *buf = NULL, *o = NULL;

    if (j->s >= j->end || *j->s != '"') {
        return -1;
    }
    j->s++;
    if (out) {
        o = buf = apr_palloc(p, (apr_size_t)(j->end - j->s) + 1);
    }
    while (j->s < j->end && *j->s != '"') {
        unsigned int cp;
        char c = *j->s++;
        if ((unsigned char)c < 0x20) {
            return -1;
        }
        if (c != '\\') {
            if (o) *o++ = c;
            continue;
        }
        if (j->s >= j->end) {
            return -1;
        }
        c = *j->s++;
        switch (c) {
        case '"': case '\\': case '/': if (o) *o++ = c; break;
        case 'b': if (o) *o++ = '\b'; break;
        case 'f': if (o) *o++ = '\f'; break;
        case 'n': if (o) *o++ = '\n'; break;
        case 'r': if (o) *o++ = '\r'; break;
        case 't': if (o) *o++ = '\t'; break;
        case 'u':
            if (j->end - j->s < 4) {
                return -1;
            }
            cp = 0;
            for (int k = 0; k < 4; k++) {
                int h = hexval(j->s[k]);
                if (h < 0) {
                    return -1;
                }
                cp = cp * 16 + (unsigned int)h;
            }
            j->s += 4;
            if (cp == 0) {
                return -1; /* no NUL inside a C string */
            }
            if (o) {
                /* UTF-8; surrogate halves are kept as-is (3 bytes each). */
                if (cp < 0x80) {
                    *o++ = (char)cp;
                }
                else if (cp < 0x800) {
                    *o++ = (char)(0xC0 | (cp >> 6));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                }
                else {
                    *o++ = (char)(0xE0 | (cp >> 12));
                    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                }
            }
            break;
        default:
            return -1;
        }
    }
    if (j->s >= j->end) {
        return -1;
    }
    j->s++; /* closing quote */
    if (o) {
        *o = '\0';
        *out = buf;
    }
    return 0;
}

static int json_skip(json_t *j, int depth)
{
    json_ws(j);
    if (j->s >= j->end || depth > 64) {
        return -1;
    }
    if (*j->s == '"') {
        return json_string(j, NULL, NULL);
    }
    if (*j->s == '{' || *j->s == '[') {
        char close = (*j->s == '{') ? '}' : ']';
        int obj = (close == '}');
        j->s++;
        json_ws(j);
        if (j->s < j->end && *j->s == close) {
            j->s++;
            return 0;
        }
        for (;;) {
            if (obj) {
                json_ws(j);
                if (json_string(j, NULL, NULL) != 0) return -1;
                json_ws(j);
                if (j->s >= j->end || *j->s++ != ':') return -1;
            }
            if (json_skip(j, depth + 1) != 0) return -1;
            json_ws(j);
            if (j->s >= j->end) return -1;
            if (*j->s == ',') { j->s++; continue; }
            if (*j->s == close) { j->s++; return 0; }
            return -1;
        }
    }
    /* number, true, false, null */
    if (!(apr_isalnum(*j->s) || *j->s == '-')) {
        return -1;
    }
    while (j->s < j->end && (apr_isalnum(*j->s) || *j->s == '-' || *j->s == '+'
                             || *j->s == '.')) {
        j->s++;
    }
    return 0;
}

/* The string value of top-level member key; NULL if absent or not a
 * string; *bad = 1 when the text is not a JSON object. */
static const char *json_top_string(apr_pool_t *p, const char *text, apr_size_t len,
                                   const char *key, int *bad)
{
    json_t j = { text, text + len };
    const char *found = NULL;

    *bad = 1;
    json_ws(&j);
    if (j.s >= j.end || *j.s++ != '{') {
        return NULL;
    }
    json_ws(&j);
    if (j.s < j.end && *j.s == '}') {
        *bad = 0;
        return NULL;
    }
    for (;;) {
        const char *name;
        json_ws(&j);
        if (json_string(&j, p, &name) != 0) return NULL;
        json_ws(&j);
        if (j.s >= j.end || *j.s++ != ':') return NULL;
        json_ws(&j);
        if (strcmp(name, key) == 0 && j.s < j.end && *j.s == '"') {
            if (json_string(&j, p, &found) != 0) return NULL;
        }
        else if (json_skip(&j, 1) != 0) {
            return NULL;
        }
        json_ws(&j);
        if (j.s >= j.end) return NULL;
        if (*j.s == ',') { j.s++; continue; }
        if (*j.s == '}') break;
        return NULL;
    }
    *bad = 0;
    return found;
}

/* app_start_command from <app_root>/Passengerfile.json, or NULL. */
static const char *passengerfile_command(request_rec *r, apr_pool_t *p,
                                         const char *app_root)
{
    const char *path = apr_pstrcat(p, app_root, "/Passengerfile.json", NULL);
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    const char *cmd;
    int bad;
    apr_status_t rv;

    if (apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, p) != APR_SUCCESS) {
        return NULL;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE, f);
    if (rv != APR_SUCCESS || fi.filetype != APR_REG || fi.size > FERRY_PASSENGERFILE_MAX) {
        apr_file_close(f);
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, FERRY_LOGNO(0009)
                      "Cannot read %s: not a regular file of at most %d bytes; "
                      "ignoring it", path, FERRY_PASSENGERFILE_MAX);
        return NULL;
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(p, n + 1);
    rv = apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, FERRY_LOGNO(0010)
                      "Cannot read %s; ignoring it", path);
        return NULL;
    }
    buf[n] = '\0';
    cmd = json_top_string(p, buf, n, "app_start_command", &bad);
    if (bad) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FERRY_LOGNO(0011)
                      "Cannot parse %s: not a JSON object; ignoring it", path);
        return NULL;
    }
    return (cmd && *cmd) ? cmd : NULL;
}

/* Probe app_root as Passenger's autodetection does (plus a configured
 * startup file). Allocates from p. */
static void detect_uncached(request_rec *r, apr_pool_t *p, const char *app_root,
                            const char *startup_file, ferry_detect_t *out)
{
    apr_status_t rv = APR_SUCCESS;
    int e;

    memset(out, 0, sizeof(*out));
    out->start_command = passengerfile_command(r, p, app_root);
    if (out->start_command) {
        out->kind = FERRY_DETECT_GENERIC;
        return;
    }
    if (startup_file && (e = ferry_detect_probe(p, app_root, startup_file, 0, &rv)) != 0) {
        out->kind = e > 0 ? FERRY_DETECT_NODE : FERRY_DETECT_EACCES;
        out->rv = rv;
        return;
    }
    if ((e = ferry_detect_probe(p, app_root, "config.ru", 0, &rv)) != 0) {
        out->kind = e > 0 ? FERRY_DETECT_OTHER : FERRY_DETECT_EACCES;
    }
    else if ((e = ferry_detect_probe(p, app_root, FERRY_DEFAULT_STARTUP_FILE, 0, &rv)) != 0) {
        out->kind = e > 0 ? FERRY_DETECT_NODE : FERRY_DETECT_EACCES;
    }
    else if (ferry_detect_probe(p, app_root, "passenger_wsgi.py", 0, &rv) > 0
             || ferry_detect_probe(p, app_root, ".meteor", 1, &rv) > 0) {
        out->kind = FERRY_DETECT_OTHER;
    }
    out->rv = rv;
}

/* The per-child cache: app root + startup file -> detection, with time. */
typedef struct {
    ferry_detect_t d;
    apr_time_t checked;
} detect_entry_t;

static apr_pool_t *cache_pool;
static apr_hash_t *cache;
#if APR_HAS_THREADS
static apr_thread_mutex_t *cache_mutex;
#endif

void ferry_detect_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

    if (apr_pool_create(&cache_pool, p) != APR_SUCCESS) {
        cache_pool = NULL;
        return;
    }
#if APR_HAS_THREADS
    rv = apr_thread_mutex_create(&cache_mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, FERRY_LOGNO(0012)
                     "Cannot create the app detection cache lock; app "
                     "detection will not be cached");
        cache_pool = NULL;
        return;
    }
#else
    (void)rv;
    (void)s;
#endif
    cache = apr_hash_make(cache_pool);
}

void ferry_detect(request_rec *r, const char *app_root, const char *startup_file,
                   ferry_detect_t *out)
{
    const ferry_server_conf_t *sc = ferry_server_conf(r->server);
    int rate = sc->stat_throttle_rate != FERRY_UNSET
               ? sc->stat_throttle_rate : FERRY_DEFAULT_STAT_THROTTLE_RATE;
    const char *key;
    detect_entry_t *e;
    apr_time_t now = r->request_time;

    if (cache_pool == NULL || rate == 0) {
        detect_uncached(r, r->pool, app_root, startup_file, out);
        return;
    }
    key = apr_pstrcat(r->pool, app_root, "\n", startup_file ? startup_file : "", NULL);
#if APR_HAS_THREADS
    apr_thread_mutex_lock(cache_mutex);
#endif
    e = apr_hash_get(cache, key, APR_HASH_KEY_STRING);
    if (e != NULL && now >= e->checked && now - e->checked < apr_time_from_sec(rate)) {
        *out = e->d;
        if (out->start_command) {
            out->start_command = apr_pstrdup(r->pool, out->start_command);
        }
#if APR_HAS_THREADS
        apr_thread_mutex_unlock(cache_mutex);
#endif
        return;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(cache_mutex);
#endif

    /* Probe without holding the lock; racing threads just probe twice. */
    detect_uncached(r, r->pool, app_root, startup_file, out);

#if APR_HAS_THREADS
    apr_thread_mutex_lock(cache_mutex);
#endif
    if (apr_hash_count(cache) >= FERRY_DETECT_CACHE_MAX) {
        apr_pool_clear(cache_pool);
        cache = apr_hash_make(cache_pool);
    }
    e = apr_hash_get(cache, key, APR_HASH_KEY_STRING);
    if (e == NULL) {
        e = apr_palloc(cache_pool, sizeof(*e));
        key = apr_pstrdup(cache_pool, key);
        apr_hash_set(cache, key, APR_HASH_KEY_STRING, e);
    }
    e->d = *out;
    if (out->start_command) {
        e->d.start_command = apr_pstrdup(cache_pool, out->start_command);
    }
    e->checked = now;
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(cache_mutex);
#endif
}
