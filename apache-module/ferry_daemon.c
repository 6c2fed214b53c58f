/*
 * ferry_daemon.c: the Apache parent owns the ferry core (mod_cgid's shape).
 *
 * Lifecycle
 *   - post_config, real pass only (never the AP_SQ_MS_CREATE_PRE_CONFIG dry
 *     run): create the instance dir, write config.json, fork + setsid + exec
 *     `<node> --max-semi-space-size=1 <PassengerRoot>/build/core/src/main.js --config <dir>/config.json`
 *     and wait (bounded) for its module socket.
 *   - The core's pid and all state that must survive `apachectl graceful` /
 *     `restart` live in s->process->pool userdata. A later post_config finds
 *     the core alive, rewrites config.json with the next generation and sends
 *     SIGHUP instead of starting a new core (docs/core-config.md).
 *   - apr_proc_other_child_register (per pconf) with ferry_core_maint: if the
 *     core dies while httpd is not stopping, it is restarted (with a capped
 *     backoff for a core that keeps dying young).
 *   - A pconf cleanup tells a restart (pconf cleared, AP_SQ_MS_DESTROY_CONFIG:
 *     keep the core) from a stop (process pool destroyed, AP_SQ_MS_EXITING:
 *     SIGTERM the core, wait for it a bounded time, remove the sockets). It
 *     acts only in the Apache parent: children never signal the core.
 *
 * No function pointer is ever stored in the process-pool state: the module is
 * unloaded and reloaded on every restart, so only pconf-scoped registrations
 * (cleanups, other-child) may point into our code.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "ap_mpm.h"
#include "unixd.h"
#include "apr_strings.h"
#include "apr_file_io.h"
#include "apr_file_info.h"
#include "apr_thread_proc.h"
#include "apr_time.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ferry_log.h"
#include "ferry_config.h"
#include "ferry_daemon.h"

APLOG_USE_MODULE(ferry);

#define FERRY_DAEMON_USERDATA_KEY "ferry_daemon_state"
/* The core script, relative to PassengerRoot. */
#define FERRY_CORE_SCRIPT "build/core/src/main.js"
/* V8 flags of the core process (see exec_core). */
#define FERRY_CORE_NODE_FLAGS "--max-semi-space-size=1"
/* How long post_config waits for the module socket of a fresh core. */
#define FERRY_CORE_READY_WAIT apr_time_from_sec(5)
/* How long a stopping Apache waits for the core to exit after SIGTERM. */
#define FERRY_CORE_STOP_WAIT apr_time_from_sec(8)
/* A core that dies younger than this counts as a crash loop (backoff). */
#define FERRY_CORE_MIN_LIFETIME apr_time_from_sec(5)
#define FERRY_CORE_MAX_BACKOFF apr_time_from_msec(1000)
#define FERRY_POLL_INTERVAL apr_time_from_msec(25)

/* Everything that must survive a graceful restart. Lives in
 * s->process->pool; strings that change per generation live in gen_pool,
 * a subpool of the process pool recreated on every real post_config. */
typedef struct {
    apr_pool_t *gen_pool;       /* per-generation strings */
    apr_proc_t proc;            /* the core; proc.pid == 0 when none */
    pid_t parent_pid;           /* the Apache parent */
    apr_int64_t generation;     /* bumped on every real post_config */
    apr_time_t started_at;      /* when the core was last started */
    int quick_deaths;           /* consecutive deaths younger than MIN_LIFETIME */
    int registered;             /* other-child registered in the current pconf */
    /* per generation (gen_pool) */
    const char *instance_dir;
    const char *config_path;
    const char *module_socket;
    const char *control_socket;
    const char *node;           /* resolved interpreter path */
    const char *script;         /* <PassengerRoot>/build/core/src/main.js */
    const char *log_file;       /* PassengerLogFile or NULL */
    /* valid only for the current pconf */
    apr_pool_t *pconf;
    server_rec *server;
} ferry_daemon_state;

/* Copies for the data path. Reset whenever the DSO is reloaded, set again in
 * post_config; children inherit them. */
static const char *core_socket_path = NULL;
static const char *core_instance_dir = NULL;
static apr_int64_t config_generation = 0;
static pid_t core_pid = 0;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static int core_is_root(void)
{
    return geteuid() == 0;
}

/* Resolve the node interpreter: an absolute/relative path is taken as is,
 * a bare name is searched on PATH. Returns NULL when not executable. */
static const char *resolve_node(apr_pool_t *p, const char *configured)
{
    const char *name = (configured && *configured) ? configured : "node";
    const char *path;
    char *dirs, *dir, *last;

    if (strchr(name, '/')) {
        return access(name, X_OK) == 0 ? name : NULL;
    }
    path = getenv("PATH");
    if (!path || !*path) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    dirs = apr_pstrdup(p, path);
    for (dir = apr_strtok(dirs, ":", &last); dir; dir = apr_strtok(NULL, ":", &last)) {
        const char *candidate = apr_pstrcat(p, *dir ? dir : ".", "/", name, NULL);
        struct stat st;
        if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode)
            && access(candidate, X_OK) == 0) {
            return candidate;
        }
    }
    return NULL;
}

/* Has the core exited? Reaps it if so (WNOHANG). A zombie counts as exited. */
static int core_has_exited(pid_t pid, int *status)
{
    pid_t r;

    if (pid <= 0) {
        return 1;
    }
    do {
        r = waitpid(pid, status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid) {
        return 1;
    }
    if (r < 0 && errno == ECHILD) {
        /* Not our child (any more): it was reaped elsewhere, so the core is
         * gone; never probe the pid, it may belong to someone else now. */
        return 1;
    }
    return 0;
}

static const char *describe_exit(apr_pool_t *p, int status)
{
    if (WIFEXITED(status)) {
        return apr_psprintf(p, "exit code %d", WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return apr_psprintf(p, "signal %d", WTERMSIG(status));
    }
    return "an unknown status";
}

/* ------------------------------------------------------------------------ */
/* The instance directory and config.json                                  */

/* The instance dir this configuration asks for:
 * <PassengerInstanceRegistryDir or DefaultRuntimeDir>/ferry-<parent pid>.
 * Creates the registry dir when it is missing. NULL on error (logged). */
static const char *instance_dir_path(apr_pool_t *p, ferry_daemon_state *st,
                                     server_rec *s, int create_registry)
{
    const char *registry = ferry_conf_instance_registry_dir(s);
    const char *name = apr_psprintf(p, "ferry-%" APR_PID_T_FMT, st->parent_pid);
    apr_status_t rv;

    if (!registry || !*registry) {
        return ap_runtime_dir_relative(p, name);
    }
    registry = ap_server_root_relative(p, registry);
    if (!registry) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FERRY_LOGNO(0200)
                     "Cannot use PassengerInstanceRegistryDir: invalid path");
        return NULL;
    }
    if (create_registry) {
        rv = apr_dir_make_recursive(registry, APR_FPROT_OS_DEFAULT, p);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FERRY_LOGNO(0201)
                         "Cannot create instance registry dir %s", registry);
            return NULL;
        }
    }
    return apr_pstrcat(p, registry, "/", name, NULL);
}

static void set_instance_paths(ferry_daemon_state *st, const char *dir)
{
    apr_pool_t *p = st->gen_pool;

    st->instance_dir = apr_pstrdup(p, dir);
    st->config_path = apr_pstrcat(p, dir, "/config.json", NULL);
    st->module_socket = apr_pstrcat(p, dir, "/module.sock", NULL);
    st->control_socket = apr_pstrcat(p, dir, "/control.sock", NULL);
}

/* Create (or take over a stale) instance dir with the least permissions
 * that work: 0711 when root (app users and Apache's User must traverse it to
 * reach their sockets, nobody may list it), 0700 otherwise. */
static apr_status_t make_instance_dir(ferry_daemon_state *st, server_rec *s)
{
    const char *dir = instance_dir_path(st->gen_pool, st, s, 1);
    mode_t mode = core_is_root() ? 0711 : 0700;
    struct stat sb;
    apr_status_t rv;

    if (!dir) {
        return APR_EBADPATH;
    }
    if (mkdir(dir, mode) != 0) {
        if (errno != EEXIST) {
            rv = APR_FROM_OS_ERROR(errno);
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FERRY_LOGNO(0202)
                         "Cannot create instance dir %s", dir);
            return rv;
        }
        /* Left over from an earlier Apache with the same pid, or our own
         * from before a restart. Take it only if it is a real dir we own. */
        if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid()) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FERRY_LOGNO(0203)
                         "Cannot use instance dir %s: it exists and is not a "
                         "directory owned by uid %ld; remove it",
                         dir, (long)geteuid());
            return APR_EEXIST;
        }
    }
    /* mkdir applies the umask; set the mode we mean. */
    if (chmod(dir, mode) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FERRY_LOGNO(0204)
                     "Cannot set the mode of instance dir %s", dir);
        return rv;
    }
    set_instance_paths(st, dir);
    return APR_SUCCESS;
}

/* Write config.json atomically (temp file + rename) so the core never reads
 * a half-written file after SIGHUP. Mode 0600: only the core reads it.
 * apache_uid/gid are who Apache's children run as: `User`/`Group` when the
 * parent is root, else the parent's own ids (httpd does not switch then). */
static apr_status_t write_config(ferry_daemon_state *st, server_rec *s,
                                 apr_pool_t *ptemp)
{
    const char *server_json = ferry_server_options_json(ptemp, s);
    const char *redeploy =
        ferry_conf_redeploy_name(ferry_conf_redeploy_on_graceful(s));
    const char *tmp = apr_pstrcat(ptemp, st->config_path, ".tmp", NULL);
    const char *body;
    apr_file_t *f;
    apr_size_t len;
    apr_status_t rv;

    body = apr_psprintf(ptemp,
        "{\n"
        "  \"version\": 1,\n"
        "  \"generation\": %" APR_INT64_T_FMT ",\n"
        "  \"instance_dir\": %s,\n"
        "  \"module_socket\": %s,\n"
        "  \"control_socket\": %s,\n"
        "  \"apache_uid\": %ld,\n"
        "  \"apache_gid\": %ld,\n"
        "  \"parent_pid\": %" APR_PID_T_FMT ",\n"
        "  \"lifeline_fd\": -1,\n"
        "  \"redeploy_on_graceful\": %s,\n"
        "  \"server\": %s\n"
        "}\n",
        st->generation,
        ferry_json_str(ptemp, st->instance_dir),
        ferry_json_str(ptemp, st->module_socket),
        ferry_json_str(ptemp, st->control_socket),
        (long)(core_is_root() ? ap_unixd_config.user_id : geteuid()),
        (long)(core_is_root() ? ap_unixd_config.group_id : getegid()),
        st->parent_pid,
        ferry_json_str(ptemp, (redeploy && *redeploy) ? redeploy : "all"),
        (server_json && *server_json) ? server_json : "{}");

    rv = apr_file_open(&f, tmp,
                       APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, ptemp);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FERRY_LOGNO(0205)
                     "Cannot write core config %s", tmp);
        return rv;
    }
    len = strlen(body);
    rv = apr_file_write_full(f, body, len, NULL);
    if (rv == APR_SUCCESS) {
        rv = apr_file_flush(f);
    }
    apr_file_close(f);
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, st->config_path, ptemp);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FERRY_LOGNO(0206)
                     "Cannot write core config %s", st->config_path);
        apr_file_remove(tmp, ptemp);
    }
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Starting and stopping the core                                          */

static void close_inherited_fds(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (close_range(3, ~0U, 0) == 0) {
        return;
    }
#endif
    {
        long max = sysconf(_SC_OPEN_MAX), fd;
        if (max < 0 || max > 65536) {
            max = 65536;
        }
        for (fd = 3; fd < max; fd++) {
            close((int)fd);
        }
    }
}

/* In the forked child: detach from Apache and exec the core. Never returns. */
static void exec_core(const ferry_daemon_state *st)
{
    const char *argv[6];
    sigset_t none;
    int fd, sig;

    /* Own session: Apache's process-group signals (and Ctrl-C on a
     * foreground httpd) must not reach the core; the module signals it. */
    setsid();
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            signal(sig, SIG_DFL);
        }
    }

    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0 && fd != STDIN_FILENO) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
    /* stdout and stderr: PassengerLogFile if set, else Apache's stderr,
     * which httpd points at the main ErrorLog once logs are open. */
    if (st->log_file) {
        fd = open(st->log_file, O_WRONLY | O_CREAT | O_APPEND, 0640);
        if (fd >= 0 && fd != STDERR_FILENO) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    dup2(STDERR_FILENO, STDOUT_FILENO);
    close_inherited_fds();
    if (chdir("/") != 0) {
        /* not fatal: the core uses absolute paths */
    }

    /* A small young generation: the core allocates little that lives, so
     * frequent cheap scavenges keep its RSS low under load (docs/performance.md). */
    argv[0] = st->node;
    argv[1] = FERRY_CORE_NODE_FLAGS;
    argv[2] = st->script;
    argv[3] = "--config";
    argv[4] = st->config_path;
    argv[5] = NULL;
    execv(st->node, (char *const *)argv);
    {
        /* Apache's error log is our stderr: say why before dying. */
        char msg[512];
        int n = snprintf(msg, sizeof(msg),
                         "ferry: Cannot exec core %s %s: %s\n",
                         st->node, st->script, strerror(errno));
        if (n > 0) {
            ssize_t w = write(STDERR_FILENO, msg, (size_t)n);
            (void)w;
        }
    }
    _exit(127);
}

/* Fork the core. Unlinks stale sockets first (the old core is gone), so
 * "socket exists" means "this core listens". */
static apr_status_t spawn_core(ferry_daemon_state *st, server_rec *s)
{
    pid_t pid;

    unlink(st->module_socket);
    unlink(st->control_socket);

    pid = fork();
    if (pid < 0) {
        apr_status_t rv = APR_FROM_OS_ERROR(errno);
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FERRY_LOGNO(0207)
                     "Cannot fork the ferry core");
        return rv;
    }
    if (pid == 0) {
        exec_core(st);
    }
    st->proc.pid = pid;
    st->proc.in = st->proc.out = st->proc.err = NULL;
    st->started_at = apr_time_now();
    core_pid = pid;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FERRY_LOGNO(0208)
                 "Started ferry core (pid %" APR_PID_T_FMT ", generation %"
                 APR_INT64_T_FMT "): %s %s --config %s",
                 pid, st->generation, st->node, st->script, st->config_path);
    return APR_SUCCESS;
}

/* Is the module socket there and connectable by Apache's children? The core
 * creates it, then gives it to Apache's User/Group (docs/protocol.md): until
 * then a child's connect() would fail with EACCES. Connecting needs write
 * permission on the socket. */
static int socket_ready(const ferry_daemon_state *st)
{
    struct stat sb;

    if (stat(st->module_socket, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
        return 0;
    }
    if (!core_is_root()) {
        return 1;   /* children run as we do */
    }
    return (sb.st_uid == ap_unixd_config.user_id && (sb.st_mode & S_IWUSR))
           || (sb.st_gid == ap_unixd_config.group_id && (sb.st_mode & S_IWGRP))
           || (sb.st_mode & S_IWOTH);
}

/* Wait (bounded) until the fresh core listens on its module socket. Returns
 * APR_SUCCESS, APR_TIMEUP (still starting: the data path's connect retry
 * covers the rest) or APR_EGENERAL when the core exited (reaped; proc.pid
 * is then 0). */
static apr_status_t wait_core_ready(ferry_daemon_state *st, server_rec *s)
{
    apr_time_t deadline = apr_time_now() + FERRY_CORE_READY_WAIT;
    int status = 0;

    for (;;) {
        if (socket_ready(st)) {
            return APR_SUCCESS;
        }
        if (core_has_exited(st->proc.pid, &status)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FERRY_LOGNO(0209)
                         "Cannot start the ferry core: it exited with %s before "
                         "listening on %s; its output is in the error log above",
                         describe_exit(s->process->pool, status), st->module_socket);
            st->proc.pid = 0;
            core_pid = 0;
            return APR_EGENERAL;
        }
        if (apr_time_now() >= deadline) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FERRY_LOGNO(0210)
                         "The ferry core (pid %" APR_PID_T_FMT ") is not ready on "
                         "%s after %d s (not listening, or the socket is not yet "
                         "connectable by uid %ld/gid %ld); requests will wait for it",
                         st->proc.pid, st->module_socket,
                         (int)apr_time_sec(FERRY_CORE_READY_WAIT),
                         (long)ap_unixd_config.user_id, (long)ap_unixd_config.group_id);
            return APR_TIMEUP;
        }
        apr_sleep(FERRY_POLL_INTERVAL);
    }
}

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP) {
        rmdir(path);
    }
    else {
        unlink(path);
    }
    return 0;
}

/* Apache is stopping: SIGTERM the core (it drains and exits), wait for it a
 * bounded time, and remove what we created. */
static void stop_core(ferry_daemon_state *st)
{
    server_rec *s = st->server;
    int status = 0;

    if (st->proc.pid > 0 && !core_has_exited(st->proc.pid, &status)) {
        apr_time_t deadline = apr_time_now() + FERRY_CORE_STOP_WAIT;
        int exited = 0;

        kill(st->proc.pid, SIGTERM);
        while (apr_time_now() < deadline) {
            if (core_has_exited(st->proc.pid, &status)) {
                exited = 1;
                break;
            }
            apr_sleep(FERRY_POLL_INTERVAL);
        }
        if (!exited) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FERRY_LOGNO(0211)
                         "The ferry core (pid %" APR_PID_T_FMT ") is still draining "
                         "%d s after SIGTERM; leaving it to finish on its own",
                         st->proc.pid, (int)apr_time_sec(FERRY_CORE_STOP_WAIT));
            st->proc.pid = 0;
            return;   /* it still uses its instance dir */
        }
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FERRY_LOGNO(0212)
                     "Stopped ferry core (pid %" APR_PID_T_FMT ")", st->proc.pid);
    }
    st->proc.pid = 0;
    core_pid = 0;
    if (st->instance_dir) {
        /* The core is gone: its instance dir (sockets, pid file, app socket
         * dir) is stale. We created it; remove it without following links. */
        nftw(st->instance_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* ------------------------------------------------------------------------ */
/* Supervision                                                             */

static void ferry_core_maint(int reason, void *data, apr_wait_t status);

static void register_core(ferry_daemon_state *st)
{
    if (st->proc.pid > 0 && !st->registered) {
        apr_proc_other_child_register(&st->proc, ferry_core_maint, st, NULL,
                                      st->pconf);
        st->registered = 1;
    }
}

static int httpd_is_stopping(void)
{
    int mpm_state = AP_MPMQ_STOPPING;

    if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) != APR_SUCCESS) {
        return 1;   /* cannot tell: do not restart */
    }
    return mpm_state == AP_MPMQ_STOPPING
           || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_EXITING;
}

/* Called by httpd's parent (apr_proc_other_child_*). */
static void ferry_core_maint(int reason, void *data, apr_wait_t status)
{
    ferry_daemon_state *st = data;
    server_rec *s = st->server;

    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(st);
        st->registered = 0;
        if (getpid() != st->parent_pid || httpd_is_stopping()) {
            st->proc.pid = 0;
            core_pid = 0;
            break;
        }
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FERRY_LOGNO(0213)
                     "The ferry core (pid %" APR_PID_T_FMT ") died with %s; "
                     "restarting it", st->proc.pid,
                     /* The MPM passes the decoded exit code or signal number,
                      * not a raw wait status, and loses which of the two. */
                     reason == APR_OC_REASON_LOST ? "an unknown status"
                         : apr_psprintf(st->pconf, "status %d (its exit code "
                                        "or the signal that ended it)", status));
        /* A core that keeps dying young is restarted with a capped backoff
         * (this runs in the parent's maintenance loop: keep it short). */
        if (apr_time_now() - st->started_at < FERRY_CORE_MIN_LIFETIME) {
            apr_interval_time_t delay = apr_time_from_msec(100);
            int i;
            for (i = 0; i < st->quick_deaths && delay < FERRY_CORE_MAX_BACKOFF; i++) {
                delay *= 2;
            }
            if (delay > FERRY_CORE_MAX_BACKOFF) {
                delay = FERRY_CORE_MAX_BACKOFF;
            }
            st->quick_deaths++;
            apr_sleep(delay);
        }
        else {
            st->quick_deaths = 0;
        }
        st->proc.pid = 0;
        core_pid = 0;
        if (spawn_core(st, s) == APR_SUCCESS) {
            register_core(st);
        }
        break;
    case APR_OC_REASON_RESTART:
        /* httpd restarts or stops its children: the core is not one of
         * them; it survives restarts, the pconf cleanup handles a stop. */
        break;
    case APR_OC_REASON_UNREGISTER:
        /* pconf is being cleared or we unregistered ourselves: never kill
         * the core here (unlike mod_cgid), it outlives the generation. */
        st->registered = 0;
        break;
    default:
        break;
    }
}

/* pconf cleanup: a restart keeps the core, a stop ends it. */
static apr_status_t ferry_daemon_pconf_cleanup(void *data)
{
    ferry_daemon_state *st = data;

    if (getpid() != st->parent_pid) {
        return APR_SUCCESS;             /* a child exiting: not ours to stop */
    }
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_EXITING) {
        stop_core(st);
    }
    /* On a restart: nothing; the next post_config re-registers. */
    st->registered = 0;
    st->pconf = NULL;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Hooks                                                                   */

static ferry_daemon_state *get_state(server_rec *s)
{
    ferry_daemon_state *st = NULL;
    apr_pool_t *pp = s->process->pool;

    apr_pool_userdata_get((void **)&st, FERRY_DAEMON_USERDATA_KEY, pp);
    if (!st) {
        st = apr_pcalloc(pp, sizeof(*st));
        st->parent_pid = getpid();
        apr_pool_userdata_set(st, FERRY_DAEMON_USERDATA_KEY,
                              apr_pool_cleanup_null, pp);
    }
    return st;
}

/* Resolve and check everything the core needs, into a new gen_pool.
 *
 * With a live core (graceful/restart), its instance dir stays where it is
 * (the core was started with that config path), and a PassengerRoot,
 * PassengerNodejs or registry change applies when the core next starts: a
 * notice says so. A broken PassengerRoot/node is then only a warning, so a
 * graceful never takes Apache down while the running core is fine. */
static int prepare_generation(ferry_daemon_state *st, server_rec *s, int core_alive)
{
    apr_pool_t *old = st->gen_pool, *p;
    const char *root = ferry_conf_root(s);
    const char *log_file = ferry_conf_log_file(s);
    const char *script = NULL, *node = NULL, *problem = NULL;
    struct stat sb;
    int level = core_alive ? APLOG_WARNING : APLOG_ERR;

    apr_pool_create(&p, s->process->pool);
    apr_pool_tag(p, "ferry_daemon_generation");
    st->gen_pool = p;

    /* Passenger's own module left enabled during a migration claims the same
     * directives, and its values win (PassengerRoot points into Passenger):
     * say what to do before the errors that follow from it. */
    if (ap_find_linked_module("mod_passenger.c") != NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FERRY_LOGNO(0221)
                     "Passenger's module (mod_passenger) is loaded next to "
                     "mod_ferry: both claim the Passenger* directives and "
                     "Passenger's values win (PassengerRoot %s); disable it "
                     "with \"a2dismod passenger\" and keep the VirtualHosts "
                     "as they are", root ? root : "(unset)");
    }
    if (!root || !*root) {
        problem = "PassengerRoot is not set";
        ap_log_error(APLOG_MARK, level, 0, s, FERRY_LOGNO(0214)
                     "Cannot start the ferry core: PassengerRoot is not set; "
                     "point it at the ferry install (the directory holding "
                     "build/core)");
    }
    else {
        script = apr_pstrcat(p, root, "/" FERRY_CORE_SCRIPT, NULL);
        if (stat(script, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            problem = "the core script is missing";
            ap_log_error(APLOG_MARK, level, APR_FROM_OS_ERROR(errno), s,
                         FERRY_LOGNO(0215)
                         "Cannot start the ferry core: %s is missing; check "
                         "PassengerRoot and build ferry (npm run build)", script);
            script = NULL;
        }
    }
    node = resolve_node(p, ferry_conf_nodejs(s));
    if (!node) {
        problem = "the Node.js interpreter is missing";
        ap_log_error(APLOG_MARK, level, 0, s, FERRY_LOGNO(0216)
                     "Cannot start the ferry core: Node.js interpreter \"%s\" "
                     "not found or not executable (PassengerNodejs, PATH=%s)",
                     ferry_conf_nodejs(s) ? ferry_conf_nodejs(s) : "node",
                     getenv("PATH") ? getenv("PATH") : "");
    }
    st->log_file = (log_file && *log_file)
                   ? ap_server_root_relative(p, log_file) : NULL;

    if (core_alive && st->instance_dir) {
        const char *wanted = instance_dir_path(p, st, s, 0);
        int moved = wanted && strcmp(wanted, st->instance_dir) != 0;
        int changed = (script && st->script && strcmp(script, st->script) != 0)
                      || (node && st->node && strcmp(node, st->node) != 0);

        if (moved || changed) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FERRY_LOGNO(0219)
                         "%s changed: the running ferry core (pid %"
                         APR_PID_T_FMT ") keeps its instance dir %s and "
                         "program until it restarts; stop and start Apache to "
                         "switch now", moved ? "PassengerInstanceRegistryDir"
                         : "PassengerRoot or PassengerNodejs",
                         st->proc.pid, st->instance_dir);
        }
        /* Keep the running core's paths (copied before the old pool goes). */
        set_instance_paths(st, st->instance_dir);
        st->script = apr_pstrdup(p, script ? script : st->script);
        st->node = apr_pstrdup(p, node ? node : st->node);
        if (old) {
            apr_pool_destroy(old);
        }
        if (problem) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FERRY_LOGNO(0220)
                         "The running ferry core keeps serving, but it could "
                         "not be restarted with this configuration (%s)", problem);
        }
        return OK;
    }

    if (old) {
        apr_pool_destroy(old);
    }
    st->script = script;
    st->node = node;
    st->instance_dir = st->config_path = NULL;
    st->module_socket = st->control_socket = NULL;
    if (problem) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (make_instance_dir(st, s) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

int ferry_daemon_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    ferry_daemon_state *st;
    int first_start, alive, rc, status = 0;

    (void)plog;

    /* The dry run (the first of the two startup passes) only checks config;
     * the DSO is unloaded afterwards and, when httpd daemonizes, the process
     * is not the final parent yet. Start nothing there (mod_cgid does so). */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }

    st = get_state(s);
    if (getpid() != st->parent_pid) {
        return OK;      /* cannot happen in httpd; never act from elsewhere */
    }
    st->pconf = pconf;
    st->server = s;
    st->registered = 0;   /* pconf was cleared: registrations are gone */
    st->generation++;
    first_start = (st->generation == 1);
    alive = st->proc.pid > 0 && !core_has_exited(st->proc.pid, &status);
    if (!alive) {
        st->proc.pid = 0;
    }

    /* Restart vs stop is decided when pconf goes away. Registered before
     * the other-child (pool cleanups run LIFO, so that one goes first). */
    apr_pool_cleanup_register(pconf, st, ferry_daemon_pconf_cleanup,
                              apr_pool_cleanup_null);

    rc = prepare_generation(st, s, alive);
    core_socket_path = st->module_socket;
    core_instance_dir = st->instance_dir;
    config_generation = st->generation;
    if (rc != OK) {
        /* Refuse to start httpd the first time; on a restart keep Apache
         * serving other sites (requests for apps get 503). */
        return first_start ? rc : OK;
    }
    if (write_config(st, s, ptemp) != APR_SUCCESS) {
        return first_start ? HTTP_INTERNAL_SERVER_ERROR : OK;
    }

    if (alive) {
        /* Graceful or full restart: the core lives on with new config. */
        if (kill(st->proc.pid, SIGHUP) == 0) {
            core_pid = st->proc.pid;
            register_core(st);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FERRY_LOGNO(0217)
                         "Sent generation %" APR_INT64_T_FMT " to the ferry core "
                         "(pid %" APR_PID_T_FMT ", SIGHUP); apps redeploy per "
                         "PassengerRedeployOnGraceful", st->generation,
                         st->proc.pid);
            return OK;
        }
        ap_log_error(APLOG_MARK, APLOG_ERR, APR_FROM_OS_ERROR(errno), s,
                     FERRY_LOGNO(0218)
                     "Cannot signal the ferry core (pid %" APR_PID_T_FMT
                     "); starting a new one", st->proc.pid);
    }
    st->proc.pid = 0;

    if (spawn_core(st, s) != APR_SUCCESS) {
        return first_start ? HTTP_INTERNAL_SERVER_ERROR : OK;
    }
    if (wait_core_ready(st, s) == APR_EGENERAL) {
        /* The core died at once: a broken install. Refuse to start httpd
         * the first time; on a restart keep Apache serving other sites. */
        return first_start ? HTTP_INTERNAL_SERVER_ERROR : OK;
    }
    register_core(st);
    return OK;
}

void ferry_daemon_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    (void)s;
    /* Children only read core_socket_path/core_pid inherited from the
     * parent. The pconf cleanup checks the pid, so a child's exit can
     * never stop the core. */
}

const char *ferry_core_socket_path(void)
{
    return core_socket_path;
}

apr_int64_t ferry_config_generation(void)
{
    return config_generation;
}

pid_t ferry_core_pid(void)
{
    /* After the parent restarted a dead core, a child's inherited pid is
     * stale: re-read the pid the core writes into its instance dir. A core
     * running as another user answers EPERM, which means alive. */
    if (core_pid > 0 && (kill(core_pid, 0) == 0 || errno == EPERM)) {
        return core_pid;
    }
    if (core_instance_dir) {
        char path[4096], buf[32];
        ssize_t n;
        int fd;

        apr_snprintf(path, sizeof(path), "%s/core.pid", core_instance_dir);
        fd = open(path, O_RDONLY);
        if (fd >= 0) {
            n = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            if (n > 0) {
                long pid;
                buf[n] = '\0';
                pid = strtol(buf, NULL, 10);
                if (pid > 0) {
                    core_pid = (pid_t)pid;
                }
            }
        }
    }
    return core_pid;
}
