/*
 * ferry_pass.h: the passes of one Apache child / nginx worker
 * (docs/protocol.md "Passes"): per app, the core's permission to send the
 * app's further requests straight to the processes it named, until the
 * pass expires or the app's restart file changes (with sticky sessions,
 * the process the request's cookie names: ferry_sticky_id); and how many
 * requests this child has in flight on each app process (to pick the
 * least busy).
 *
 * Pure C99 + POSIX (stat, mmap) and the compiler's __atomic builtins (no
 * httpd, APR or nginx types): compiled into
 * both modules and into apache-module/test/pass_test.c. No locking inside:
 * Apache calls it under the app connection cache's mutex, nginx workers are
 * single-threaded. Memory is malloc'd; the table lives as long as the
 * child (or until ferry_pass_table_destroy).
 */
#ifndef FERRY_PASS_H
#define FERRY_PASS_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_proto.h"

/* At most this many apps with a pass per child (expired ones go first,
 * then the one expiring soonest). */
#define FERRY_PASS_APPS_MAX 64

typedef struct ferry_pass_table_t ferry_pass_table_t;

/* NULL when out of memory. */
ferry_pass_table_t *ferry_pass_table_create(void);
void ferry_pass_table_destroy(ferry_pass_table_t *t);

/* A LEASE for app key was read at now_us (microseconds, any clock that
 * only moves forward): with a pass, the app's pass becomes that one (valid
 * until now_us + ttl); without one, the app's pass is dropped. Out of
 * memory: the app has no pass. */
void ferry_pass_store(ferry_pass_table_t *t, const char *key,
                      const ferry_frame_t *lease, int64_t now_us);

/* The app's pass is dropped (a PROCEED for it). */
void ferry_pass_drop(ferry_pass_table_t *t, const char *key);

/* Every pass is dropped (the core connection was lost: a new core knows
 * nothing of them). In-flight counts stay. */
void ferry_pass_clear_all(ferry_pass_table_t *t);

/* What a usable pass allows: the process ids (LEASE ids) a request may be
 * sent to, and the headers to add to the app's response (2 * nadd: name,
 * value). Borrowed from the table: valid until the next store, drop,
 * clear or check on it — copy what is kept past the caller's lock.
 * With sticky sessions (the LEASE's pass.sticky; sticky_cookie NULL and
 * the rest 0 without) the request's cookie picks the process
 * (ferry_sticky_id) and the response gets sticky_add_headers instead of
 * add_headers, then "Set-Cookie" with sticky_set_cookie[j] (HTTPS:
 * sticky_set_cookie_https[j]) of the chosen procs[j]. */
typedef struct {
    const char *const *procs;
    size_t nprocs;
    const ferry_str_t *add_headers;
    size_t nadd;
    const char *sticky_cookie;                  /* the cookie's name */
    const char *const *sticky_ids;              /* nprocs, as procs */
    const char *const *sticky_set_cookie;       /* nprocs */
    const char *const *sticky_set_cookie_https; /* nprocs */
    const ferry_str_t *sticky_add_headers;      /* 2 * nsticky_add */
    size_t nsticky_add;
    const char *restart_file;
    int64_t restart_mtime_ns;
    /* The restart file is due a stat() now (ferry_pass_lookup: see
     * ferry_pass_set_restart_interval; ferry_pass_check stats it itself). */
    int restart_due;
} ferry_pass_view_t;

/* A pass's restart file is stat'ed at most once per interval_us by the
 * callers of this table (PassengerStatThrottleRate, the interval of the
 * core's own restart checks); between stats the last answer stands. 0 (the
 * default): on every use. A new pass is always due its first stat. */
void ferry_pass_set_restart_interval(ferry_pass_table_t *t, int64_t interval_us);

/* 1 when app key has a pass usable at now_us: not expired, and its restart
 * file as the core saw it (absent when restart_mtime is -1, else with that
 * mtime in ns; checked with stat() here when due). 0 otherwise; a pass that expired
 * or whose restart file differs is dropped on the way. Once half its ttl is
 * gone, one call (the first after that) gets 0 while the pass stays: that
 * request asks the core, whose LEASE renews the pass (or drops it). While
 * that renewal is out the others keep using the pass, past its ttl too but
 * never past twice its ttl: then it is dropped. */
int ferry_pass_check(ferry_pass_table_t *t, const char *key, int64_t now_us,
                     ferry_pass_view_t *view);

/* ferry_pass_check() without the stat(): for a caller that holds a lock and,
 * when view->restart_due, stats the view's restart file after releasing it
 * (with ferry_pass_restart_unchanged(); on a mismatch it drops the pass).
 * A due answer counts as the interval's stat: concurrent callers of the
 * same pass get restart_due 0 until the interval has passed again. */
int ferry_pass_lookup(ferry_pass_table_t *t, const char *key, int64_t now_us,
                      ferry_pass_view_t *view);

/* The restart file is as the core saw it: absent when mtime_ns is -1, else
 * with that mtime in ns (one stat()). */
int ferry_pass_restart_unchanged(const char *file, int64_t mtime_ns);

/* In-flight counts shared by all children (Apache) or workers (nginx).
 * The parent (Apache's post_config, nginx's master in init_module) maps a
 * small table of atomic counters before it forks them, so every child's
 * picks see the requests all of them have in flight on each app process,
 * as mod_proxy_balancer's busyness does, instead of only its own: that
 * matters most for a prefork child, which has one request at a time.
 * Keyed by a hash of the process id; a collision or a full table only
 * makes those counts per child again (they steer, they decide nothing).
 * A child that dies with requests in flight leaves them counted until the
 * next generation's table (Apache graceful or restart, nginx reload), which
 * ferry_pass_shared_create() maps afresh, unmapping the parent's previous
 * one (children forked before keep theirs). 0, or -1 with errno (mmap):
 * then counts are per child. */
int ferry_pass_shared_create(void);

/* The parent's table is unmapped (Apache: pconf's cleanup); counts are
 * per child in children forked afterwards. */
void ferry_pass_shared_destroy(void);

/* In-flight counts per process id: a request on process id starts / ends
 * (counts are kept for any id, with or without a pass). */
void ferry_pass_begin(ferry_pass_table_t *t, const char *id);
void ferry_pass_end(ferry_pass_table_t *t, const char *id);
size_t ferry_pass_inflight(const ferry_pass_table_t *t, const char *id);

/* Requests in flight on process id in all children (the shared table),
 * or in this one when there is none or it holds no slot for id. Picking
 * and choosing (below) go by this. */
size_t ferry_pass_busy(const ferry_pass_table_t *t, const char *id);

/* The index of the id among ids[0..n) with the fewest requests in flight
 * (ferry_pass_busy; the first of equals); n must be > 0. */
size_t ferry_pass_pick(const ferry_pass_table_t *t, const char *const *ids,
                       size_t n);

/* 1 when id is one of ids[0..n). */
int ferry_pass_listed(const char *id, const char *const *ids, size_t n);

/* The index of id in ids[0..n), or FERRY_PASS_NONE. */
#define FERRY_PASS_NONE ((size_t)-1)
size_t ferry_pass_index(const char *id, const char *const *ids, size_t n);

/* The buffer for a sticky id: up to 10 digits and a NUL. */
#define FERRY_STICKY_ID_SIZE 11

/* The sticky-session id a request carries, read exactly as the core reads
 * it (core/src/policy/sticky.ts parseStickyCookie over the head's Cookie
 * headers): headers are the REQUEST_HEAD's flat name/value list (2 *
 * nheaders strings); every "Cookie" one (any case), in order, is split on
 * ';'; the first part whose name (before its first '=', trimmed) is
 * cookie decides: its value trimmed, one pair of surrounding double quotes
 * removed, is the id when it is decimal 1..4294967295 without a leading
 * zero, else there is none. Trimming is JavaScript's trim() over the
 * header's bytes as the core holds them (one char per byte): tab, LF, VT,
 * FF, CR, space and 0xA0. 1 with the id in out, or 0 (no such cookie,
 * not a valid id, or an empty cookie name). Pure: no locks, no
 * allocation. */
int ferry_sticky_id(const char *const *headers, size_t nheaders,
                    const char *cookie, char out[FERRY_STICKY_ID_SIZE]);

/* ferry_pass_choose(): the request goes to the core for a connection. */
#define FERRY_PASS_GROW ((size_t)-1)

/* A pass request may go to the core for a connection at most once per this
 * many microseconds per app and child (ferry_pass_choose). */
#define FERRY_PASS_GROW_US 10000

/* Which idle connection a pass request of app key takes: ids[0..n) are the
 * processes (of the pass) this child holds an idle connection to, n > 0.
 * The index of the least busy of them (ferry_pass_pick), or FERRY_PASS_GROW
 * when a process of the pass that this child holds no idle connection to
 * has fewer requests in flight than that one: then the request takes the
 * normal REQUEST_HEAD, and the core's LEASE brings a connection to the
 * process least busy by its count, so a child's connections follow the
 * load instead of staying where its first ones went. At most one request
 * per FERRY_PASS_GROW_US per app and child grows so (a process the core
 * keeps not choosing costs no more than that). */
size_t ferry_pass_choose(ferry_pass_table_t *t, const char *key,
                         const char *const *ids, size_t n, int64_t now_us);

/* The app process pid has exited or is exiting (/proc/<pid>/stat: gone,
 * a zombie, or PF_EXITING set), so a connection of it that closed did so
 * because it died (on the request, perhaps), not because it closed a kept
 * connection while alive. Used to decide whether a request that met a
 * clean close may be sent again. 1 when it cannot be read. */
int ferry_proc_exiting(int64_t pid);

#endif