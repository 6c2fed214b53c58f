/*
 * pass_test.c: ferry_pass.c, a child's passes and in-flight counts
 * (docs/protocol.md "Passes"): stored from decoded LEASEs, usable until the
 * ttl runs out or the restart file changes, dropped by a LEASE without a
 * pass, cleared all at once; least-busy picking and choosing.
 *
 * Prints "ok - …" / "not ok - …" lines and "C tests: N passed, M failed".
 */
#include <fcntl.h>
#include <stdio.h>
#include <errno.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ferry_pass.h"

static int passed, failed;

static void result(const char *what, int ok)
{
    if (ok) {
        passed++;
        printf("ok - pass: %s\n", what);
    }
    else {
        failed++;
        printf("not ok - pass: %s\n", what);
    }
}

/* A decoded LEASE (with a pass when ttl > 0) kept with its decoder. */
typedef struct {
    ferry_decoder_t *dec;
    ferry_frame_t f;
} lease_t;

/* le encoded, then decoded into l (1), as a module reads a LEASE. */
static int decode_lease(lease_t *l, const ferry_lease_t *le)
{
    msgpack_sbuffer sb;
    int rc;

    msgpack_sbuffer_init(&sb);
    l->dec = ferry_decoder_create();
    rc = ferry_encode_lease(&sb, le) == 0
         && ferry_decoder_feed(l->dec, sb.data, sb.size) == 0
         && ferry_decoder_next(l->dec, &l->f) == FERRY_PROTO_OK;
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static int make_lease(lease_t *l, int64_t ttl, const char *const *procs,
                      size_t nprocs, const char *file, int64_t mtime)
{
    static const ferry_str_t add[] = {
        { "X-Powered-By", 12 }, { "Ferry", 5 }
    };
    ferry_lease_t le;

    memset(&le, 0, sizeof(le));
    le.id = procs != NULL ? procs[0] : "c.1";
    le.pid = 42;
    le.head = "GET / HTTP/1.1\r\n\r\n";
    le.head_len = strlen(le.head);
    le.add_headers = add;
    le.nadd = 1;
    le.has_pass = ttl > 0;
    le.pass_ttl_ms = ttl;
    le.pass_procs = procs;
    le.npass_procs = nprocs;
    le.restart_file = file;
    le.restart_mtime_ns = mtime;
    return decode_lease(l, &le);
}

static void free_lease(lease_t *l)
{
    ferry_decoder_destroy(l->dec);
}

static int64_t mtime_ns(const char *path)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        return -1;
    }
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

/* The in-flight counts children share: a forked child's requests count in
 * the parent's picks. */
static void shared_counts(void)
{
    static const char *const ids[] = { "s.1", "s.2", "s.3" };
    ferry_pass_table_t *t = ferry_pass_table_create();
    int go[2], done[2], ok, st;
    char b = 0;
    pid_t child;
    size_t i;

    if (t == NULL || ferry_pass_shared_create() != 0 || pipe(go) != 0
        || pipe(done) != 0) {
        result("shared counts: set up", 0);
        return;
    }
    child = fork();
    if (child == 0) {
        ferry_pass_table_t *c = ferry_pass_table_create();

        ferry_pass_begin(c, "s.1");
        ferry_pass_begin(c, "s.1");
        ferry_pass_begin(c, "s.2");
        if (write(done[1], &b, 1) != 1 || read(go[0], &b, 1) != 1) {
            _exit(1);
        }
        ferry_pass_end(c, "s.1");
        _exit(0);                       /* s.1 and s.2 still count 1 each */
    }
    ok = child > 0 && read(done[0], &b, 1) == 1;
    result("shared: another child's requests count in this one's picks",
           ok && ferry_pass_busy(t, "s.1") == 2 && ferry_pass_busy(t, "s.2") == 1
           && ferry_pass_inflight(t, "s.1") == 0
           && ferry_pass_pick(t, ids, 3) == 2);
    ferry_pass_begin(t, "s.3");
    ferry_pass_begin(t, "s.3");
    ferry_pass_begin(t, "s.3");
    result("shared: ... added to its own",
           ferry_pass_busy(t, "s.3") == 3 && ferry_pass_inflight(t, "s.3") == 3
           && ferry_pass_pick(t, ids, 3) == 1);
    ok = write(go[1], &b, 1) == 1 && waitpid(child, &st, 0) == child
         && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    result("shared: its ends count down; what a dead child left stays",
           ok && ferry_pass_busy(t, "s.1") == 1 && ferry_pass_busy(t, "s.2") == 1);
    ok = 1;
    for (i = 0; i < 3000; i++) {
        char id[32];

        snprintf(id, sizeof(id), "many.%zu", i);
        ferry_pass_begin(t, id);
    }
    for (i = 0; i < 3000; i++) {
        char id[32];

        snprintf(id, sizeof(id), "many.%zu", i);
        ok = ok && ferry_pass_busy(t, id) == 1;
        ferry_pass_end(t, id);
        ok = ok && ferry_pass_busy(t, id) == 0;
    }
    result("shared: more ids than slots count per child past a full table",
           ok && ferry_pass_busy(t, "s.3") == 3);
    if (ferry_pass_shared_create() != 0) {
        result("shared: a new generation's table", 0);
        return;
    }
    result("shared: a new generation's table starts from this child's own",
           ferry_pass_busy(t, "s.1") == 0 && ferry_pass_busy(t, "s.3") == 3);
    ferry_pass_end(t, "s.3");
    ferry_pass_begin(t, "s.3");
    result("shared: counts made in the old table end harmlessly",
           ferry_pass_busy(t, "s.3") == 3 && ferry_pass_inflight(t, "s.3") == 3);
    ferry_pass_shared_destroy();
    result("shared: none: per child", ferry_pass_busy(t, "s.3") == 3
           && ferry_pass_busy(t, "s.1") == 0);
    ferry_pass_table_destroy(t);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
}

/* A pass with sticky data is kept with it (copied out of the LEASE); a
 * pass without has none. */
static void sticky_pass(ferry_pass_table_t *t, const char *file, int64_t m)
{
    static const char *const procs[] = { "s.1", "s.2" };
    static const char *const ids[] = { "1234567", "4000000000" };
    static const char *const sc[] = { "r=1234567; Path=/",
                                      "r=4000000000; Path=/" };
    static const char *const sch[] = { "r=1234567; Path=/; Secure",
                                       "r=4000000000; Path=/; Secure" };
    static const ferry_str_t add[] = {
        { "X-Powered-By", 12 }, { "Ferry", 5 },
        { "Set-Cookie", 10 }, { "r=1234567; Path=/", 17 }
    };
    ferry_lease_t le;
    lease_t l;
    ferry_pass_view_t v;
    int ok;

    memset(&le, 0, sizeof(le));
    le.id = "s.1";
    le.pid = 42;
    le.head = "GET / HTTP/1.1\r\n\r\n";
    le.head_len = strlen(le.head);
    le.add_headers = add;
    le.nadd = 2;
    le.has_pass = 1;
    le.pass_ttl_ms = 500;
    le.pass_procs = procs;
    le.npass_procs = 2;
    le.restart_file = file;
    le.restart_mtime_ns = m;
    le.has_sticky = 1;
    le.sticky_cookie = "r";
    le.sticky_ids = ids;
    le.sticky_set_cookie = sc;
    le.sticky_set_cookie_https = sch;
    le.sticky_add_headers = add;
    le.nsticky_add = 1;
    ok = decode_lease(&l, &le);
    ferry_pass_store(t, "sticky", &l.f, 1000000);
    /* The decoder's buffer is gone: the pass holds copies. */
    free_lease(&l);
    ok = ok && ferry_pass_check(t, "sticky", 1000001, &v) && v.nprocs == 2
         && v.sticky_cookie != NULL && !strcmp(v.sticky_cookie, "r")
         && !strcmp(v.procs[1], "s.2")
         && !strcmp(v.sticky_ids[0], "1234567")
         && !strcmp(v.sticky_ids[1], "4000000000")
         && !strcmp(v.sticky_set_cookie[1], "r=4000000000; Path=/")
         && !strcmp(v.sticky_set_cookie_https[0], "r=1234567; Path=/; Secure")
         && v.nsticky_add == 1 && v.sticky_add_headers[0].len == 12
         && !strcmp(v.sticky_add_headers[1].ptr, "Ferry")
         && v.nadd == 2 && !strcmp(v.add_headers[3].ptr, "r=1234567; Path=/");
    result("a sticky pass keeps its cookie name, ids, Set-Cookie values and "
           "add_headers", ok);
    result("sticky: the index of a process's id",
           ferry_pass_index("4000000000", v.sticky_ids, v.nprocs) == 1
           && ferry_pass_index("4000000001", v.sticky_ids, v.nprocs)
              == FERRY_PASS_NONE);

    le.has_sticky = 0;
    ok = decode_lease(&l, &le);
    ferry_pass_store(t, "sticky", &l.f, 1000002);
    free_lease(&l);
    ok = ok && ferry_pass_check(t, "sticky", 1000003, &v) && v.nprocs == 2
         && v.sticky_cookie == NULL && v.sticky_ids == NULL
         && v.sticky_set_cookie == NULL && v.sticky_set_cookie_https == NULL
         && v.sticky_add_headers == NULL && v.nsticky_add == 0;
    result("a pass without sticky data has none (NULL, 0)", ok);
    ferry_pass_drop(t, "sticky");
}

/* ferry_sticky_id(): the cases of test/unit/policy/sticky.test.ts
 * (parseStickyCookie) and more. Each case: up to 3 Cookie header values
 * (NULL ends), the cookie name, the id wanted (NULL: none). */
static void sticky_ids(void)
{
    static const struct {
        const char *title;
        const char *cookies[3];
        const char *name;
        const char *want;
    } cases[] = {
        { "no Cookie header", { NULL }, NULL, NULL },
        { "empty header", { "" }, NULL, NULL },
        { "the only cookie", { "_passenger_route=123" }, NULL, "123" },
        { "among others, with spaces",
          { "a=1;  _passenger_route=42 ; b=2" }, NULL, "42" },
        { "quoted value", { "_passenger_route=\"77\"" }, NULL, "77" },
        { "first occurrence wins",
          { "_passenger_route=5; _passenger_route=6" }, NULL, "5" },
        { "a cookie whose name only contains ours is ignored",
          { "x_passenger_route=9; _passenger_route x=8" }, NULL, NULL },
        { "... (name with a suffix)",
          { "x_passenger_route=9; _passenger_routex=8" }, NULL, NULL },
        { "zero is not an id", { "_passenger_route=0" }, NULL, NULL },
        { "leading zero is not an id", { "_passenger_route=012" }, NULL,
          NULL },
        { "01 is not an id", { "_passenger_route=01" }, NULL, NULL },
        { "non-numeric value", { "_passenger_route=abc" }, NULL, NULL },
        { "negative value", { "_passenger_route=-3" }, NULL, NULL },
        { "above 2^32-1", { "_passenger_route=4294967296" }, NULL, NULL },
        { "exactly 2^32-1", { "_passenger_route=4294967295" }, NULL,
          "4294967295" },
        { "11 digits", { "_passenger_route=10000000000" }, NULL, NULL },
        { "several Cookie headers are all searched",
          { "a=1", "_passenger_route=31" }, NULL, "31" },
        { "custom cookie name", { "route=8; _passenger_route=9" }, "route",
          "8" },
        { "value with = inside is invalid", { "_passenger_route=1=2" },
          NULL, NULL },
        { "part without = is skipped", { "junk; _passenger_route=4" }, NULL,
          "4" },
        /* Edge cases: parseStickyCookie gives the same. */
        { "empty value", { "_passenger_route=" }, NULL, NULL },
        { "empty quotes", { "_passenger_route=\"\"" }, NULL, NULL },
        { "one quote only", { "_passenger_route=\"7" }, NULL, NULL },
        { "a lone quote", { "_passenger_route=\"" }, NULL, NULL },
        { "spaces inside the quotes", { "_passenger_route=\" 7 \"" }, NULL,
          NULL },
        { "two pairs of quotes: one removed",
          { "_passenger_route=\"\"7\"\"" }, NULL, NULL },
        { "spaces around the name and the value",
          { "  _passenger_route \t=  \"19\"  ;x=1" }, NULL, "19" },
        { "tab, VT, FF trimmed", { "\t\v\f_passenger_route=\t\v\f23\t" },
          NULL, "23" },
        { "0xA0 (NBSP as a byte) trimmed",
          { "\xa0_passenger_route=24\xa0" }, NULL, "24" },
        { "0x85 not trimmed", { "_passenger_route=25\x85" }, NULL, NULL },
        { "space inside the value", { "_passenger_route=2 5" }, NULL, NULL },
        { "a plus sign", { "_passenger_route=+5" }, NULL, NULL },
        { "the first match wins even when invalid",
          { "_passenger_route=x; _passenger_route=5" }, NULL, NULL },
        { "... across Cookie headers too",
          { "_passenger_route=0", "_passenger_route=5" }, NULL, NULL },
        { "a later header when the first has no such cookie",
          { "a=1; b=2", "c=3; _passenger_route=6; _passenger_route=7" },
          NULL, "6" },
        { "name match is case-sensitive", { "_Passenger_Route=5" }, NULL,
          NULL },
        { "an empty cookie name never matches", { "=5" }, "", NULL },
        { "trailing semicolon", { "_passenger_route=8;" }, NULL, "8" },
        { "empty parts", { ";;_passenger_route=9;;" }, NULL, "9" },
        { "the highest 10-digit value", { "_passenger_route=9999999999" },
          NULL, NULL },
        { "1", { "_passenger_route=1" }, NULL, "1" },
    };
    const char *headers[10];
    char id[FERRY_STICKY_ID_SIZE], what[256];
    size_t i, k, n;
    int got;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Other headers around the Cookie ones, and the name in varying
         * case: any "Cookie" header counts, nothing else. */
        n = 0;
        headers[2 * n] = "Host";
        headers[2 * n + 1] = "_passenger_route=99";
        n++;
        for (k = 0; k < 3 && cases[i].cookies[k] != NULL; k++) {
            headers[2 * n] = k == 0 ? "Cookie" : k == 1 ? "cookie" : "COOKIE";
            headers[2 * n + 1] = cases[i].cookies[k];
            n++;
        }
        headers[2 * n] = "Cookies";
        headers[2 * n + 1] = "_passenger_route=98";
        n++;
        memset(id, 'x', sizeof(id));
        got = ferry_sticky_id(headers, n, cases[i].name ? cases[i].name
                                                        : "_passenger_route",
                              id);
        snprintf(what, sizeof(what), "sticky id: %s", cases[i].title);
        result(what, cases[i].want == NULL ? got == 0
                     : got == 1 && strcmp(id, cases[i].want) == 0);
    }
    result("sticky id: no headers at all",
           ferry_sticky_id(NULL, 0, "_passenger_route", id) == 0);
    result("sticky id: a NULL cookie name",
           ferry_sticky_id(headers, 1, NULL, id) == 0);
}

int main(void)
{
    static const char *const procs[] = { "n.1", "n.2", "n.3" };
    char dir[] = "/tmp/ferry-pass-test.XXXXXX";
    char file[256], other[256];
    ferry_pass_table_t *t = ferry_pass_table_create();
    ferry_pass_view_t v;
    lease_t l;
    struct timespec ts[2];
    int64_t now = 1000000, m;
    int fd, ok;
    size_t i;

    if (mkdtemp(dir) == NULL || t == NULL) {
        printf("not ok - pass: set up\nC tests: 0 passed, 1 failed\n");
        return 1;
    }
    snprintf(file, sizeof(file), "%s/restart.txt", dir);
    snprintf(other, sizeof(other), "%s/absent.txt", dir);
    fd = open(file, O_CREAT | O_WRONLY, 0644);
    close(fd);
    m = mtime_ns(file);

    /* Store and check. */
    result("no pass before any LEASE", !ferry_pass_check(t, "app", now, &v));
    ok = make_lease(&l, 200, procs, 3, file, m);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    ok = ok && ferry_pass_check(t, "app", now + 99999, &v)
         && ferry_pass_check(t, "app", now + 99999, &v) && v.nprocs == 3
         && !strcmp(v.procs[0], "n.1") && !strcmp(v.procs[2], "n.3")
         && v.nadd == 1 && v.add_headers[0].len == 12
         && !memcmp(v.add_headers[0].ptr, "X-Powered-By", 12)
         && !memcmp(v.add_headers[1].ptr, "Ferry", 5)
         && v.add_headers[1].ptr[5] == '\0';
    result("a stored pass is usable within its ttl, with its procs and "
           "headers (copied out of the decoder)", ok);
    result("past half its ttl, one caller is sent to the core to renew it",
           !ferry_pass_check(t, "app", now + 199999, &v));
    result("... the others keep using it",
           ferry_pass_check(t, "app", now + 199999, &v)
           && ferry_pass_check(t, "app", now + 199999, &v));
    result("another app has no pass", !ferry_pass_check(t, "app2", now, &v));
    result("while that renewal is out, the others keep using it past its "
           "ttl",
           ferry_pass_check(t, "app", now + 200000, &v)
           && ferry_pass_check(t, "app", now + 399999, &v));
    result("... never at twice its ttl",
           !ferry_pass_check(t, "app", now + 400000, &v));
    result("... and it is gone after", !ferry_pass_check(t, "app", now, &v));
    make_lease(&l, 200, procs, 3, other, -1);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("after a pause past its ttl, the first request renews it and the "
           "others keep using it meanwhile",
           !ferry_pass_check(t, "app", now + 250000, &v)
           && ferry_pass_check(t, "app", now + 250001, &v)
           && ferry_pass_check(t, "app", now + 399999, &v)
           && !ferry_pass_check(t, "app", now + 400000, &v));
    make_lease(&l, 200, procs, 3, other, -1);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("a pass unused for twice its ttl is dropped, not renewed from",
           !ferry_pass_check(t, "app", now + 400000, &v)
           && !ferry_pass_check(t, "app", now + 400001, &v));
    make_lease(&l, 200, procs, 3, other, -1);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    make_lease(&l, 0, NULL, 0, NULL, 0);
    result("a renewal answered without a pass ends it at once",
           !ferry_pass_check(t, "app", now + 150000, &v)
           && (ferry_pass_store(t, "app", &l.f, now + 150001), 1)
           && !ferry_pass_check(t, "app", now + 150002, &v));
    free_lease(&l);

    /* The restart file. */
    make_lease(&l, 200, procs, 2, file, m);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    ts[0].tv_sec = ts[1].tv_sec = 1700000000;
    ts[0].tv_nsec = ts[1].tv_nsec = 123456789;
    utimensat(AT_FDCWD, file, ts, 0);
    result("a touched restart file ends the pass",
           !ferry_pass_check(t, "app", now, &v));
    make_lease(&l, 200, procs, 2, file, 1700000000123456789LL);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("the mtime is compared in ns",
           ferry_pass_check(t, "app", now, &v));
    result("a renewing caller's new LEASE starts a new half ttl",
           !ferry_pass_check(t, "app", now + 100000, &v));
    make_lease(&l, 200, procs, 2, file, 1700000000123456789LL);
    ferry_pass_store(t, "app", &l.f, now + 100000);
    free_lease(&l);
    result("... so the next calls use the renewed pass",
           ferry_pass_check(t, "app", now + 199999, &v)
           && ferry_pass_check(t, "app", now + 199999, &v));
    make_lease(&l, 200, procs, 2, file, 1700000000123456788LL);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("... to the last ns", !ferry_pass_check(t, "app", now, &v));
    make_lease(&l, 200, procs, 2, file, 1700000000123456788LL);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("lookup does not stat: it returns the file and mtime to check",
           ferry_pass_lookup(t, "app", now, &v)
           && !strcmp(v.restart_file, file)
           && v.restart_mtime_ns == 1700000000123456788LL
           && !ferry_pass_restart_unchanged(v.restart_file, v.restart_mtime_ns)
           && ferry_pass_restart_unchanged(file, 1700000000123456789LL)
           && ferry_pass_restart_unchanged(other, -1));
    make_lease(&l, 200, procs, 2, other, -1);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("an absent restart file matches -1",
           ferry_pass_check(t, "app", now, &v));
    fd = open(other, O_CREAT | O_WRONLY, 0644);
    close(fd);
    result("a restart file that appears ends the pass",
           !ferry_pass_check(t, "app", now, &v));
    make_lease(&l, 200, procs, 2, file, -1);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("a present file does not match -1",
           !ferry_pass_check(t, "app", now, &v));

    /* The restart interval (PassengerStatThrottleRate). */
    m = mtime_ns(file);
    ferry_pass_set_restart_interval(t, 20000);
    make_lease(&l, 200, procs, 2, file, m);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("with an interval, a new pass is due its first stat",
           ferry_pass_lookup(t, "app", now, &v) && v.restart_due);
    result("... the next uses within the interval are not",
           ferry_pass_lookup(t, "app", now + 1, &v) && !v.restart_due
           && ferry_pass_lookup(t, "app", now + 19999, &v) && !v.restart_due);
    result("... one use is due once the interval has passed, the next not",
           ferry_pass_lookup(t, "app", now + 20000, &v) && v.restart_due
           && ferry_pass_lookup(t, "app", now + 20001, &v) && !v.restart_due);
    ts[0].tv_sec = ts[1].tv_sec = 1700000001;
    utimensat(AT_FDCWD, file, ts, 0);
    result("a touched restart file is seen by check only when due",
           ferry_pass_check(t, "app", now + 30000, &v)
           && !ferry_pass_check(t, "app", now + 40000, &v)
           && !ferry_pass_lookup(t, "app", now + 40001, &v));
    ferry_pass_set_restart_interval(t, 0);
    m = mtime_ns(file);
    make_lease(&l, 200, procs, 2, file, m);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("interval 0: every use is due",
           ferry_pass_lookup(t, "app", now, &v) && v.restart_due
           && ferry_pass_lookup(t, "app", now, &v) && v.restart_due);

    /* Process liveness for the clean-close retry rule. */
    {
        pid_t child = fork();
        int st;

        if (child == 0) {
            pause();
            _exit(0);
        }
        result("a running process is not exiting",
               child > 0 && !ferry_proc_exiting(child)
               && !ferry_proc_exiting(getpid()));
        kill(child, SIGKILL);
        while (waitid(P_PID, (id_t)child, NULL, WEXITED | WNOWAIT) != 0
               && errno == EINTR) {
        }
        result("a killed process (a zombie) is exiting",
               ferry_proc_exiting(child));
        waitpid(child, &st, 0);
        result("a reaped one, or no pid, counts as exiting",
               ferry_proc_exiting(child) && ferry_proc_exiting(0));
    }

    /* Dropped by a LEASE without a pass, by drop, by clear_all. */
    m = mtime_ns(file);
    make_lease(&l, 200, procs, 2, file, m);
    ferry_pass_store(t, "app", &l.f, now);
    ferry_pass_store(t, "app2", &l.f, now);
    free_lease(&l);
    make_lease(&l, 0, NULL, 0, NULL, 0);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    result("a LEASE without a pass drops the app's pass only",
           !ferry_pass_check(t, "app", now, &v)
           && ferry_pass_check(t, "app2", now, &v));
    ferry_pass_drop(t, "app2");
    result("drop removes a pass", !ferry_pass_check(t, "app2", now, &v));
    make_lease(&l, 200, procs, 2, file, m);
    ferry_pass_store(t, "app", &l.f, now);
    ferry_pass_store(t, "app2", &l.f, now);
    free_lease(&l);
    ferry_pass_clear_all(t);
    result("clear_all removes every pass",
           !ferry_pass_check(t, "app", now, &v)
           && !ferry_pass_check(t, "app2", now, &v));

    /* A newer LEASE replaces the pass (its procs). */
    make_lease(&l, 200, procs, 3, file, m);
    ferry_pass_store(t, "app", &l.f, now);
    free_lease(&l);
    make_lease(&l, 200, procs + 1, 1, file, m);
    ferry_pass_store(t, "app", &l.f, now + 10);
    free_lease(&l);
    result("a newer pass replaces the older",
           ferry_pass_check(t, "app", now + 10, &v) && v.nprocs == 1
           && !strcmp(v.procs[0], "n.2"));

    /* At most FERRY_PASS_APPS_MAX apps: the one expiring first goes. */
    ferry_pass_clear_all(t);
    for (i = 0; i <= FERRY_PASS_APPS_MAX; i++) {
        char key[32];

        snprintf(key, sizeof(key), "app%zu", i);
        make_lease(&l, 200, procs, 1, file, m);
        ferry_pass_store(t, key, &l.f, now + (int64_t)i);
        free_lease(&l);
    }
    ok = !ferry_pass_check(t, "app0", now + 100, &v);
    for (i = 1; i <= FERRY_PASS_APPS_MAX; i++) {
        char key[32];

        snprintf(key, sizeof(key), "app%zu", i);
        ok = ok && ferry_pass_check(t, key, now + 100, &v);
    }
    result("one app over the limit evicts the pass expiring first", ok);

    /* In-flight counts and picking. */
    result("an unknown id has nothing in flight",
           ferry_pass_inflight(t, "n.1") == 0);
    ferry_pass_begin(t, "n.1");
    ferry_pass_begin(t, "n.1");
    ferry_pass_begin(t, "n.2");
    result("begin counts per id", ferry_pass_inflight(t, "n.1") == 2
           && ferry_pass_inflight(t, "n.2") == 1
           && ferry_pass_inflight(t, "n.3") == 0);
    result("pick takes the least busy", ferry_pass_pick(t, procs, 3) == 2);
    result("pick takes the first of equals",
           ferry_pass_pick(t, procs + 1, 1) == 0);
    ferry_pass_begin(t, "n.3");
    ferry_pass_begin(t, "n.3");
    result("pick: n.2 with 1 beats n.1 and n.3 with 2",
           ferry_pass_pick(t, procs, 3) == 1);
    ferry_pass_end(t, "n.1");
    result("pick: the first of equals (n.1 and n.2 at 1)",
           ferry_pass_pick(t, procs, 3) == 0);
    ferry_pass_end(t, "n.1");
    ferry_pass_end(t, "n.1");            /* one too many: stays at 0 */
    ferry_pass_end(t, "n.9");            /* unknown: nothing */
    result("end counts down to 0 and no further",
           ferry_pass_inflight(t, "n.1") == 0);
    ferry_pass_clear_all(t);
    result("clear_all keeps the counts", ferry_pass_inflight(t, "n.3") == 2);
    for (i = 0; i < 100; i++) {
        char id[32];

        snprintf(id, sizeof(id), "m.%zu", i);
        ferry_pass_begin(t, id);
    }
    ok = ferry_pass_inflight(t, "m.99") == 1 && ferry_pass_inflight(t, "n.3") == 2;
    for (i = 0; i < 100; i++) {
        char id[32];

        snprintf(id, sizeof(id), "m.%zu", i);
        ferry_pass_end(t, id);
        ok = ok && ferry_pass_inflight(t, id) == 0;
    }
    result("counts for 100 ids at once", ok && ferry_pass_inflight(t, "n.3") == 2);

    /* Choosing among idle connections (in flight: n.1 0, n.2 1, n.3 2). */
    m = mtime_ns(file);
    make_lease(&l, 200, procs, 3, file, m);
    ferry_pass_store(t, "grow", &l.f, now);
    free_lease(&l);
    result("choose: an idle least busy process is taken",
           ferry_pass_choose(t, "grow", procs, 3, now) == 0);
    result("choose: a less busy process without an idle connection here "
           "sends the request to the core",
           ferry_pass_choose(t, "grow", procs + 1, 2, now) == FERRY_PASS_GROW);
    result("... once per FERRY_PASS_GROW_US per app",
           ferry_pass_choose(t, "grow", procs + 2, 1, now + 1) == 0
           && ferry_pass_choose(t, "grow", procs + 2, 1,
                                now + FERRY_PASS_GROW_US - 1) == 0
           && ferry_pass_choose(t, "grow", procs + 2, 1,
                                now + FERRY_PASS_GROW_US) == FERRY_PASS_GROW);
    make_lease(&l, 200, procs, 3, file, m);
    ferry_pass_store(t, "grow", &l.f, now + FERRY_PASS_GROW_US + 1);
    free_lease(&l);
    result("... and a renewed pass keeps the interval",
           ferry_pass_choose(t, "grow", procs + 2, 1,
                             now + FERRY_PASS_GROW_US + 2) == 0);
    result("choose: no pass, the least busy idle one",
           ferry_pass_choose(t, "nopass", procs + 2, 1, now) == 0);
    make_lease(&l, 200, procs + 2, 1, file, m);
    ferry_pass_store(t, "solo", &l.f, now);
    free_lease(&l);
    ferry_pass_begin(t, "n.1");
    result("choose: busier processes without an idle connection, or none "
           "outside the pass, leave the idle one",
           ferry_pass_choose(t, "solo", procs + 2, 1, now) == 0
           && ferry_pass_choose(t, "grow", procs + 1, 1,
                                now + 3 * FERRY_PASS_GROW_US) == 0);
    ferry_pass_end(t, "n.1");

    sticky_ids();
    sticky_pass(t, file, m);
    shared_counts();

    ferry_pass_table_destroy(t);
    unlink(file);
    unlink(other);
    rmdir(dir);
    printf("C tests: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
