/*
 * ferry_pass.c: the passes of one Apache child / nginx worker and its
 * in-flight counts per app process (see ferry_pass.h). Small linear tables:
 * a child serves a few apps and has at most a thread's worth of requests in
 * flight. Each pass is one malloc'd block (its key, ids, headers, sticky
 * data and restart file copied out of the LEASE, whose buffer the decoder
 * reuses). Also the sticky id of a request, read as the core reads it.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L     /* struct stat's st_mtim */
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE             /* MAP_ANONYMOUS */
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "ferry_pass.h"

typedef struct {
    void *block;                /* the one allocation holding the rest */
    const char *key;
    int64_t expires_us;         /* the ttl's end */
    int64_t renew_us;           /* from then on, one caller renews it */
    int64_t grace_us;           /* ... and the others may use it until then */
    int renewing;               /* that caller was told */
    const char **procs;
    size_t nprocs;
    ferry_str_t *add;
    size_t nadd;
    const char *sticky_cookie;  /* NULL: no sticky data */
    const char **sticky_ids;    /* nprocs each */
    const char **sticky_set_cookie;
    const char **sticky_set_cookie_https;
    ferry_str_t *sticky_add;
    size_t nsticky_add;
    const char *restart_file;
    int64_t restart_mtime_ns;
    int restart_checked;        /* restart_checked_us is set */
    int64_t restart_checked_us; /* the last due answer */
    int64_t grow_us;            /* the last FERRY_PASS_GROW answer (0: none) */
} pass_t;

typedef struct {
    char *id;
    size_t n;
    size_t slot;                /* its shared counter, or NO_SLOT */
    uint64_t key;               /* the id's key there */
} count_t;

struct ferry_pass_table_t {
    pass_t passes[FERRY_PASS_APPS_MAX];
    size_t npasses;
    count_t *counts;
    size_t ncounts;
    size_t capcounts;
    int64_t restart_interval_us;
};

ferry_pass_table_t *ferry_pass_table_create(void)
{
    return calloc(1, sizeof(ferry_pass_table_t));
}

void ferry_pass_set_restart_interval(ferry_pass_table_t *t, int64_t interval_us)
{
    t->restart_interval_us = interval_us > 0 ? interval_us : 0;
}

static void remove_pass(ferry_pass_table_t *t, size_t i)
{
    free(t->passes[i].block);
    t->passes[i] = t->passes[--t->npasses];
}

void ferry_pass_clear_all(ferry_pass_table_t *t)
{
    while (t->npasses > 0) {
        remove_pass(t, t->npasses - 1);
    }
}

void ferry_pass_table_destroy(ferry_pass_table_t *t)
{
    size_t i;

    if (t == NULL) {
        return;
    }
    ferry_pass_clear_all(t);
    for (i = 0; i < t->ncounts; i++) {
        free(t->counts[i].id);
    }
    free(t->counts);
    free(t);
}

static pass_t *find(ferry_pass_table_t *t, const char *key, size_t *index)
{
    size_t i;

    for (i = 0; i < t->npasses; i++) {
        if (strcmp(t->passes[i].key, key) == 0) {
            *index = i;
            return &t->passes[i];
        }
    }
    return NULL;
}

void ferry_pass_drop(ferry_pass_table_t *t, const char *key)
{
    size_t i;

    if (find(t, key, &i) != NULL) {
        remove_pass(t, i);
    }
}

/* Room for one more pass: expired ones go, else the one expiring first. */
static void make_room(ferry_pass_table_t *t, int64_t now_us)
{
    size_t i, soonest = 0;

    for (i = t->npasses; i-- > 0;) {
        if (t->passes[i].grace_us <= now_us) {
            remove_pass(t, i);
        }
    }
    if (t->npasses < FERRY_PASS_APPS_MAX) {
        return;
    }
    for (i = 1; i < t->npasses; i++) {
        if (t->passes[i].expires_us < t->passes[soonest].expires_us) {
            soonest = i;
        }
    }
    remove_pass(t, soonest);
}

/* Copy n bytes to *p as a NUL-terminated string; advance *p. */
static char *copy_str(char **p, const char *s, size_t n)
{
    char *out = *p;

    memcpy(out, s, n);
    out[n] = '\0';
    *p += n + 1;
    return out;
}

/* Copy a name/value pair to out[0..1] (strings at *p). */
static void copy_pair(char **p, ferry_str_t *out, ferry_str_t name,
                      ferry_str_t value)
{
    out[0].ptr = copy_str(p, name.ptr, name.len);
    out[0].len = name.len;
    out[1].ptr = copy_str(p, value.ptr, value.len);
    out[1].len = value.len;
}

void ferry_pass_store(ferry_pass_table_t *t, const char *key,
                      const ferry_frame_t *lease, int64_t now_us)
{
    pass_t ps, *old;
    ferry_str_t s, name, value;
    size_t i, size, nptrs, keylen = strlen(key);
    size_t nprocs = lease->npass_procs;
    size_t nsadd = lease->has_sticky ? lease->nsticky_add : 0;
    char *block, *p;
    int64_t grow_us = 0;

    old = find(t, key, &i);
    if (old != NULL) {
        grow_us = old->grow_us;         /* a renewal: the interval goes on */
        remove_pass(t, i);
    }
    if (!lease->has_pass) {
        return;
    }
    /* One block: pointers first (aligned by malloc): procs, and with
     * sticky data its ids and both Set-Cookie lists; the header pairs;
     * then the strings. */
    nptrs = lease->has_sticky ? 4 * nprocs : nprocs;
    size = nptrs * sizeof(char *)
           + 2 * (lease->nadd + nsadd) * sizeof(ferry_str_t)
           + keylen + 1 + lease->restart_file.len + 1;
    for (i = 0; i < nprocs; i++) {
        size += ferry_frame_pass_proc(lease, i).len + 1;
        if (lease->has_sticky) {
            size += ferry_frame_sticky_id(lease, i).len + 1
                    + ferry_frame_sticky_set_cookie(lease, i, 0).len + 1
                    + ferry_frame_sticky_set_cookie(lease, i, 1).len + 1;
        }
    }
    for (i = 0; i < lease->nadd; i++) {
        ferry_frame_add_header(lease, i, &name, &value);
        size += name.len + 1 + value.len + 1;
    }
    for (i = 0; i < nsadd; i++) {
        ferry_frame_sticky_add_header(lease, i, &name, &value);
        size += name.len + 1 + value.len + 1;
    }
    if (lease->has_sticky) {
        size += lease->sticky_cookie.len + 1;
    }
    block = malloc(size);
    if (block == NULL) {
        return;
    }
    memset(&ps, 0, sizeof(ps));
    ps.procs = (const char **)(void *)block;
    ps.add = (ferry_str_t *)(void *)(block + nptrs * sizeof(char *));
    p = block + nptrs * sizeof(char *)
        + 2 * (lease->nadd + nsadd) * sizeof(ferry_str_t);
    for (i = 0; i < nprocs; i++) {
        s = ferry_frame_pass_proc(lease, i);
        ps.procs[i] = copy_str(&p, s.ptr, s.len);
    }
    ps.nprocs = nprocs;
    for (i = 0; i < lease->nadd; i++) {
        ferry_frame_add_header(lease, i, &name, &value);
        copy_pair(&p, &ps.add[2 * i], name, value);
    }
    ps.nadd = lease->nadd;
    if (lease->has_sticky) {
        ps.sticky_ids = ps.procs + nprocs;
        ps.sticky_set_cookie = ps.procs + 2 * nprocs;
        ps.sticky_set_cookie_https = ps.procs + 3 * nprocs;
        ps.sticky_add = ps.add + 2 * lease->nadd;
        for (i = 0; i < nprocs; i++) {
            s = ferry_frame_sticky_id(lease, i);
            ps.sticky_ids[i] = copy_str(&p, s.ptr, s.len);
            s = ferry_frame_sticky_set_cookie(lease, i, 0);
            ps.sticky_set_cookie[i] = copy_str(&p, s.ptr, s.len);
            s = ferry_frame_sticky_set_cookie(lease, i, 1);
            ps.sticky_set_cookie_https[i] = copy_str(&p, s.ptr, s.len);
        }
        for (i = 0; i < nsadd; i++) {
            ferry_frame_sticky_add_header(lease, i, &name, &value);
            copy_pair(&p, &ps.sticky_add[2 * i], name, value);
        }
        ps.nsticky_add = nsadd;
        ps.sticky_cookie = copy_str(&p, lease->sticky_cookie.ptr,
                                    lease->sticky_cookie.len);
    }
    ps.restart_file = copy_str(&p, lease->restart_file.ptr,
                               lease->restart_file.len);
    ps.restart_mtime_ns = lease->restart_mtime_ns;
    ps.expires_us = now_us + lease->pass_ttl_ms * 1000;
    ps.renew_us = now_us + lease->pass_ttl_ms * 500;
    ps.grace_us = ps.expires_us + lease->pass_ttl_ms * 1000;
    ps.key = copy_str(&p, key, keylen);
    ps.block = block;
    ps.grow_us = grow_us;
    make_room(t, now_us);
    t->passes[t->npasses++] = ps;
}

int ferry_pass_restart_unchanged(const char *file, int64_t mtime_ns)
{
    struct stat st;
    int64_t ns;

    if (stat(file, &st) != 0) {
        return errno == ENOENT && mtime_ns == -1;
    }
    ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + (int64_t)st.st_mtim.tv_nsec;
    return ns == mtime_ns;
}

int ferry_pass_lookup(ferry_pass_table_t *t, const char *key, int64_t now_us,
                      ferry_pass_view_t *view)
{
    pass_t *ps;
    size_t i;

    ps = find(t, key, &i);
    if (ps == NULL) {
        return 0;
    }
    if (now_us >= ps->grace_us) {
        remove_pass(t, i);
        return 0;
    }
    if (now_us >= ps->renew_us && !ps->renewing) {
        /* Half the ttl is gone: this one request asks the core (its LEASE
         * brings the next pass, or none) while the others keep using this
         * one, so the pass does not run out under a burst of them. */
        ps->renewing = 1;
        return 0;
    }
    /* Past the ttl only while that renewal is out (its caller was told,
     * its LEASE has not come): a core slow to answer, or the first request
     * after a pause, does not send every request of the child to the core
     * at once. Never past a second ttl. */
    view->procs = ps->procs;
    view->nprocs = ps->nprocs;
    view->add_headers = ps->add;
    view->nadd = ps->nadd;
    view->sticky_cookie = ps->sticky_cookie;
    view->sticky_ids = ps->sticky_ids;
    view->sticky_set_cookie = ps->sticky_set_cookie;
    view->sticky_set_cookie_https = ps->sticky_set_cookie_https;
    view->sticky_add_headers = ps->sticky_add;
    view->nsticky_add = ps->nsticky_add;
    view->restart_file = ps->restart_file;
    view->restart_mtime_ns = ps->restart_mtime_ns;
    view->restart_due = !ps->restart_checked || t->restart_interval_us == 0
                        || now_us - ps->restart_checked_us
                           >= t->restart_interval_us;
    if (view->restart_due) {
        ps->restart_checked = 1;
        ps->restart_checked_us = now_us;
    }
    return 1;
}

int ferry_pass_check(ferry_pass_table_t *t, const char *key, int64_t now_us,
                     ferry_pass_view_t *view)
{
    if (!ferry_pass_lookup(t, key, now_us, view)) {
        return 0;
    }
    if (view->restart_due
        && !ferry_pass_restart_unchanged(view->restart_file,
                                         view->restart_mtime_ns)) {
        ferry_pass_drop(t, key);
        return 0;
    }
    return 1;
}

/* ---- The shared table (ferry_pass_shared_create) ------------------------
 * SHARED_SLOTS counters in one anonymous shared mapping. A slot's word is
 * the key (the top 40 bits of the id's FNV-1a hash, never 0) above a
 * 24-bit count, so that a slot is taken, counted up and given up with one
 * compare-and-swap each and no lock: a child counting up checks the key in
 * the same swap that another child would need to take the slot over, and
 * only a slot counting 0 that nobody has counted up for SHARED_IDLE_S
 * seconds is taken over (an app process that has gone). An id is looked
 * for at SHARED_PROBES slots from its hash. */
#define SHARED_SLOTS 1024
#define SHARED_PROBES 8
#define SHARED_IDLE_S 60
#define COUNT_BITS 24
#define COUNT_MASK ((UINT64_C(1) << COUNT_BITS) - 1)
#define NO_SLOT ((size_t)-1)

typedef struct {
    uint64_t word;              /* key << COUNT_BITS | count */
    int64_t used_s;             /* the last count up (monotonic seconds) */
} slot_t;

static slot_t *shared;          /* the parent's, inherited by its children */

int ferry_pass_shared_create(void)
{
    void *m = mmap(NULL, SHARED_SLOTS * sizeof(slot_t),
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (m == MAP_FAILED) {
        return -1;
    }
    ferry_pass_shared_destroy();
    shared = m;                 /* zero-filled: every slot free */
    return 0;
}

void ferry_pass_shared_destroy(void)
{
    if (shared != NULL) {
        munmap(shared, SHARED_SLOTS * sizeof(slot_t));
        shared = NULL;
    }
}

static uint64_t key_of(const char *id)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (; *id != '\0'; id++) {
        h = (h ^ (unsigned char)*id) * UINT64_C(1099511628211);
    }
    h >>= COUNT_BITS;
    return h != 0 ? h : 1;
}

static int64_t now_s(void)
{
    struct timespec ts;

#ifdef CLOCK_MONOTONIC_COARSE
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
        return ts.tv_sec;
    }
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* The slot holding key, or NO_SLOT. */
static size_t slot_find(uint64_t key)
{
    size_t i, p;
    uint64_t w;

    for (p = 0; p < SHARED_PROBES; p++) {
        i = (size_t)((key + p) % SHARED_SLOTS);
        w = __atomic_load_n(&shared[i].word, __ATOMIC_ACQUIRE);
        if (w >> COUNT_BITS == key) {
            return i;
        }
    }
    return NO_SLOT;
}

/* Count slot i up (delta 1) or down (-1) while it holds key, within the
 * count's range; 0 when it does not hold key (any more) or is at the end of
 * the range. */
static int slot_add(size_t i, uint64_t key, int delta)
{
    uint64_t w = __atomic_load_n(&shared[i].word, __ATOMIC_ACQUIRE);

    for (;;) {
        if (w >> COUNT_BITS != key
            || (delta > 0 ? (w & COUNT_MASK) == COUNT_MASK
                          : (w & COUNT_MASK) == 0)) {
            return 0;
        }
        if (__atomic_compare_exchange_n(&shared[i].word, &w,
                                        delta > 0 ? w + 1 : w - 1, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            return 1;
        }
    }
}

/* Count one up for key: in its slot, else in a free or forsaken one taken
 * for it. NO_SLOT when none of its probes can be had. */
static size_t slot_count_up(uint64_t key)
{
    size_t i, p, tries;
    uint64_t w;
    int64_t now = now_s();

    for (tries = 0; tries < 4; tries++) {
        i = slot_find(key);
        if (i != NO_SLOT) {
            if (slot_add(i, key, 1)) {
                __atomic_store_n(&shared[i].used_s, now, __ATOMIC_RELAXED);
                return i;
            }
            continue;           /* taken over meanwhile: again */
        }
        for (p = 0; p < SHARED_PROBES; p++) {
            i = (size_t)((key + p) % SHARED_SLOTS);
            w = __atomic_load_n(&shared[i].word, __ATOMIC_ACQUIRE);
            for (;;) {
                if (w >> COUNT_BITS == key) {
                    /* another child took it for the key meanwhile */
                    if (slot_add(i, key, 1)) {
                        __atomic_store_n(&shared[i].used_s, now,
                                         __ATOMIC_RELAXED);
                        return i;
                    }
                    break;
                }
                if (w != 0
                    && ((w & COUNT_MASK) != 0
                        || now - __atomic_load_n(&shared[i].used_s,
                                                 __ATOMIC_RELAXED)
                           < SHARED_IDLE_S)) {
                    break;      /* another process's */
                }
                if (__atomic_compare_exchange_n(&shared[i].word, &w,
                                                (key << COUNT_BITS) | 1, 0,
                                                __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE)) {
                    __atomic_store_n(&shared[i].used_s, now,
                                     __ATOMIC_RELAXED);
                    return i;
                }
                /* w is what won: look at it again */
            }
        }
        if (slot_find(key) == NO_SLOT) {
            return NO_SLOT;     /* no room at its probes */
        }
    }
    return NO_SLOT;
}

/* ---- In-flight counts --------------------------------------------------- */

static count_t *find_count(const ferry_pass_table_t *t, const char *id)
{
    size_t i;

    for (i = 0; i < t->ncounts; i++) {
        if (strcmp(t->counts[i].id, id) == 0) {
            return &t->counts[i];
        }
    }
    return NULL;
}

void ferry_pass_begin(ferry_pass_table_t *t, const char *id)
{
    count_t *c = find_count(t, id), *grown;
    size_t cap;

    if (c != NULL) {
        /* this child's count in the slot holds it for the key */
        if (c->slot != NO_SLOT
            && (shared == NULL || !slot_add(c->slot, c->key, 1))) {
            c->slot = NO_SLOT;  /* the table changed under it: per child */
        }
        c->n++;
        return;
    }
    if (t->ncounts == t->capcounts) {
        cap = t->capcounts ? 2 * t->capcounts : 16;
        grown = realloc(t->counts, cap * sizeof(count_t));
        if (grown == NULL) {
            return;                     /* uncounted: it reads as idle */
        }
        t->counts = grown;
        t->capcounts = cap;
    }
    c = &t->counts[t->ncounts];
    c->id = malloc(strlen(id) + 1);
    if (c->id == NULL) {
        return;
    }
    strcpy(c->id, id);
    c->n = 1;
    c->key = key_of(id);
    c->slot = shared != NULL ? slot_count_up(c->key) : NO_SLOT;
    t->ncounts++;
}

void ferry_pass_end(ferry_pass_table_t *t, const char *id)
{
    count_t *c = find_count(t, id);

    if (c == NULL) {
        return;
    }
    if (c->slot != NO_SLOT && shared != NULL) {
        (void)slot_add(c->slot, c->key, -1);
    }
    if (--c->n == 0) {
        free(c->id);
        *c = t->counts[--t->ncounts];
    }
}

size_t ferry_pass_inflight(const ferry_pass_table_t *t, const char *id)
{
    const count_t *c = find_count(t, id);

    return c != NULL ? c->n : 0;
}

size_t ferry_pass_busy(const ferry_pass_table_t *t, const char *id)
{
    size_t i;

    if (shared != NULL && (i = slot_find(key_of(id))) != NO_SLOT) {
        return (size_t)(__atomic_load_n(&shared[i].word, __ATOMIC_ACQUIRE)
                        & COUNT_MASK);
    }
    return ferry_pass_inflight(t, id);
}

size_t ferry_pass_pick(const ferry_pass_table_t *t, const char *const *ids,
                       size_t n)
{
    size_t i, best = 0, bestn = ferry_pass_busy(t, ids[0]), k;

    for (i = 1; i < n && bestn > 0; i++) {
        k = ferry_pass_busy(t, ids[i]);
        if (k < bestn) {
            best = i;
            bestn = k;
        }
    }
    return best;
}

size_t ferry_pass_index(const char *id, const char *const *ids, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(ids[i], id) == 0) {
            return i;
        }
    }
    return FERRY_PASS_NONE;
}

int ferry_pass_listed(const char *id, const char *const *ids, size_t n)
{
    return ferry_pass_index(id, ids, n) != FERRY_PASS_NONE;
}

/* ---- Sticky sessions ---------------------------------------------------- */

/* JavaScript's trim() over a byte string (the core's header values hold
 * one char per byte): WhiteSpace and LineTerminator below 0x100. */
static int js_space(unsigned char c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0xa0;
}

static void js_trim(const char **s, const char **e)
{
    while (*s < *e && js_space((unsigned char)**s)) {
        (*s)++;
    }
    while (*e > *s && js_space((unsigned char)(*e)[-1])) {
        (*e)--;
    }
}

/* s..e is a sticky id (core/src/policy/sticky.ts isStickyId): decimal
 * 1..4294967295, no leading zero. */
static int is_sticky_id(const char *s, const char *e)
{
    uint64_t v = 0;
    const char *c;

    if (e - s < 1 || e - s > 10 || *s == '0') {
        return 0;
    }
    for (c = s; c < e; c++) {
        if (*c < '0' || *c > '9') {
            return 0;
        }
        v = v * 10 + (uint64_t)(*c - '0');
    }
    return v <= UINT64_C(4294967295);
}

/* The sticky cookie in one Cookie header value: -1 when it has none, else
 * 1 (the id in out) or 0 (the first such cookie holds no valid id). */
static int sticky_in(const char *h, const char *cookie, size_t clen,
                     char *out)
{
    const char *part = h, *end, *eq, *ns, *ne, *vs, *ve;

    for (;;) {
        end = strchr(part, ';');
        if (end == NULL) {
            end = part + strlen(part);
        }
        eq = memchr(part, '=', (size_t)(end - part));
        if (eq != NULL) {
            ns = part;
            ne = eq;
            js_trim(&ns, &ne);
            if ((size_t)(ne - ns) == clen && memcmp(ns, cookie, clen) == 0) {
                vs = eq + 1;
                ve = end;
                js_trim(&vs, &ve);
                if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
                    vs++;
                    ve--;
                }
                if (!is_sticky_id(vs, ve)) {
                    return 0;
                }
                memcpy(out, vs, (size_t)(ve - vs));
                out[ve - vs] = '\0';
                return 1;
            }
        }
        if (*end == '\0') {
            return -1;
        }
        part = end + 1;
    }
}

/* ASCII case-insensitive "Cookie" (header names are tokens). */
static int is_cookie_header(const char *name)
{
    static const char want[] = "cookie";
    size_t i;

    for (i = 0; i < sizeof(want) - 1; i++) {
        char c = name[i];

        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != want[i]) {
            return 0;
        }
    }
    return name[i] == '\0';
}

int ferry_sticky_id(const char *const *headers, size_t nheaders,
                    const char *cookie, char out[FERRY_STICKY_ID_SIZE])
{
    size_t i, clen = cookie != NULL ? strlen(cookie) : 0;
    int r;

    if (clen == 0) {
        return 0;
    }
    for (i = 0; i < nheaders; i++) {
        if (headers[2 * i] != NULL && headers[2 * i + 1] != NULL
            && is_cookie_header(headers[2 * i])) {
            r = sticky_in(headers[2 * i + 1], cookie, clen, out);
            if (r >= 0) {
                return r;
            }
        }
    }
    return 0;
}

size_t ferry_pass_choose(ferry_pass_table_t *t, const char *key,
                         const char *const *ids, size_t n, int64_t now_us)
{
    size_t best = ferry_pass_pick(t, ids, n), bestn, i;
    pass_t *ps;

    bestn = ferry_pass_busy(t, ids[best]);
    if (bestn == 0 || (ps = find(t, key, &i)) == NULL
        || (ps->grow_us != 0 && now_us - ps->grow_us < FERRY_PASS_GROW_US)) {
        return best;
    }
    for (i = 0; i < ps->nprocs; i++) {
        if (ferry_pass_busy(t, ps->procs[i]) < bestn
            && !ferry_pass_listed(ps->procs[i], ids, n)) {
            ps->grow_us = now_us;
            return FERRY_PASS_GROW;
        }
    }
    return best;
}

/* ---- App processes ------------------------------------------------------ */

int ferry_proc_exiting(int64_t pid)
{
    char path[64], buf[512], state = 'X';
    const char *p;
    unsigned long flags = 0;
    ssize_t n;
    int fd;

    if (pid <= 0) {
        return 1;
    }
    snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 1;
    }
    buf[n] = '\0';
    /* "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm
     * may hold anything, so parse from its last ')'. */
    p = strrchr(buf, ')');
    if (p == NULL
        || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2) {
        return 1;
    }
    return state == 'Z' || state == 'X' || state == 'x'
           || (flags & 0x4) != 0;       /* PF_EXITING */
}
