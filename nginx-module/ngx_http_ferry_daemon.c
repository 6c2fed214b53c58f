/*
 * ngx_http_ferry_daemon.c: the nginx master starts and supervises the ferry
 * core (one core per nginx instance), as ferry_daemon.c does under Apache.
 *
 * Lifecycle
 *   - init_module, in the process that read the configuration (the master,
 *     or the process that becomes it once nginx daemonizes; never under
 *     `nginx -t`, and `nginx -s` never gets that far): create the instance
 *     dir `<registry>/ferry-<pid>`, write config.json (the same fields as
 *     under Apache: docs/core-config.md) and fork the supervisor.
 *   - The supervisor is a small child of the master: it forks + execs the
 *     core (`<node> --max-semi-space-size=1 <passenger_root>/build/core/src/main.js
 *     --config ...`, as under Apache),
 *     restarts it when it dies (capped backoff for a core that keeps dying
 *     young), passes SIGHUP on, and on SIGTERM or when the lifeline pipe
 *     from the master reaches EOF (nginx is gone, however it ended) stops the
 *     core with SIGTERM (bounded wait) and removes the instance dir.
 *   - The master keeps the lifeline's write end (close-on-exec; workers and
 *     the cache processes close their copy in init_process). On the first
 *     start it waits (bounded) for the core's module socket; a core that
 *     exits before listening makes nginx refuse to start.
 *   - A reload (SIGHUP to the master) runs init_module again in the master:
 *     config.json is rewritten with the next generation and the supervisor
 *     gets SIGHUP, which it passes to the core (apps redeploy per
 *     passenger_redeploy_on_graceful).
 *   - `nginx -s reopen` (SIGUSR1 to the master): nginx has no module hook
 *     for it, but before it reopens each of its open files it calls that
 *     file's flush handler. The master sets one on an open file nobody else
 *     flushes (the error log's, else the first other named one) and from
 *     there sends SIGUSR1 to the supervisor, which reopens its own stderr
 *     (nginx's error log) and passes the signal to the core: the core
 *     reopens its log file and the apps' log files (FERRY0306).
 *   - exit_master: SIGTERM to the supervisor.
 *
 * State that must survive a reload lives in this file's statics: nginx
 * opens the new cycle's modules before it closes the old cycle's, so the
 * shared object (and its data) stays loaded.
 */
#include "ngx_http_ferry.h"

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* The core script, relative to passenger_root. */
#define FERRY_CORE_SCRIPT       "build/core/src/main.js"
/* V8 flags of the core process: the same as under Apache (ferry_daemon.c). */
#define FERRY_CORE_NODE_FLAGS   "--max-semi-space-size=1"
/* How long the first start waits for the module socket of the core. */
#define FERRY_CORE_READY_MS     5000
/* How long the supervisor waits for the core to exit after SIGTERM. */
#define FERRY_CORE_STOP_MS      8000
/* A core that dies younger than this counts as a crash loop (backoff). */
#define FERRY_CORE_MIN_LIFE_MS  5000
#define FERRY_CORE_BACKOFF_MS   1000
#define FERRY_POLL_MS           25

/* The running instance (see "State" above). */
static ngx_pid_t     supervisor_pid = 0;
static int           lifeline_fd = -1;      /* master: write end */
static int64_t       generation = 0;
static char          instance_dir[NGX_MAX_PATH];
static char          config_path[NGX_MAX_PATH];
static char          module_socket[NGX_MAX_PATH];
static char          control_socket[NGX_MAX_PATH];
static ngx_uid_t     worker_uid;
static ngx_gid_t     worker_gid;
static char          error_log_path[NGX_MAX_PATH];  /* "" unless a file */

/* ------------------------------------------------------------------------ */
/* The core's config file                                                  */

/* Append s as a JSON string literal. */
static u_char *
json_str(u_char *p, u_char *last, u_char *s, size_t len)
{
    size_t  i;

    if (p < last) {
        *p++ = '"';
    }
    for (i = 0; i < len && p + 7 < last; i++) {
        switch (s[i]) {
        case '"':  *p++ = '\\'; *p++ = '"';  break;
        case '\\': *p++ = '\\'; *p++ = '\\'; break;
        case '\n': *p++ = '\\'; *p++ = 'n';  break;
        case '\r': *p++ = '\\'; *p++ = 'r';  break;
        case '\t': *p++ = '\\'; *p++ = 't';  break;
        default:
            if (s[i] < 0x20) {
                p = ngx_slprintf(p, last, "\\u%04xd", (ngx_uint_t) s[i]);
            } else {
                *p++ = s[i];
            }
        }
    }
    if (p < last) {
        *p++ = '"';
    }
    return p;
}

static u_char *
json_cstr(u_char *p, u_char *last, const char *s)
{
    return json_str(p, last, (u_char *) s, ngx_strlen(s));
}

/* The `server` object: every server option that is set, in its units. */
static u_char *
json_server(u_char *p, u_char *last, ngx_http_ferry_main_conf_t *mcf,
    ngx_cycle_t *cycle)
{
    ngx_http_ferry_value_t  *v;
    ngx_str_t               *url;
    ngx_uint_t               i, n = 0;

    p = ngx_slprintf(p, last, "{");
    if (mcf->server != NULL) {
        v = mcf->server->elts;
        for (i = 0; i < mcf->server->nelts; i++, n++) {
            p = ngx_slprintf(p, last, "%s\n    ", n ? "," : "");
            p = json_cstr(p, last, v[i].opt->key);
            p = ngx_slprintf(p, last, ": ");
            switch (v[i].opt->type) {
            case NGX_HTTP_FERRY_STR:
                p = json_str(p, last, v[i].str.data, v[i].str.len);
                break;
            case NGX_HTTP_FERRY_FLAG:
                p = ngx_slprintf(p, last, "%s", v[i].num ? "true" : "false");
                break;
            default:
                p = ngx_slprintf(p, last, "%i", v[i].num);
            }
        }
    }
    if (mcf->prestart != NULL && mcf->prestart->nelts > 0) {
        p = ngx_slprintf(p, last, "%s\n    \"prestart\": [", n++ ? "," : "");
        url = mcf->prestart->elts;
        for (i = 0; i < mcf->prestart->nelts; i++) {
            p = ngx_slprintf(p, last, "%s", i ? ", " : "");
            p = json_str(p, last, url[i].data, url[i].len);
        }
        p = ngx_slprintf(p, last, "]");
    }
    /* nginx's error log when it is a file and passenger_log_file is unset:
     * the core opens it by name, so its lines follow a rotation. */
    if (ngx_http_ferry_value(mcf->server, "log_file") == NULL
        && cycle->log->file != NULL && cycle->log->file->name.len > 0
        && cycle->log->file->name.data[0] == '/')
    {
        p = ngx_slprintf(p, last, "%s\n    \"error_log\": ", n++ ? "," : "");
        p = json_str(p, last, cycle->log->file->name.data,
                     ngx_strlen(cycle->log->file->name.data));
    }
    return ngx_slprintf(p, last, "%s}", n ? "\n  " : "");
}

/* Write config.json atomically (temp file + rename), mode 0600. */
static ngx_int_t
write_config(ngx_cycle_t *cycle, ngx_http_ferry_main_conf_t *mcf)
{
    ngx_core_conf_t  *ccf;
    u_char           *buf, *p, *last;
    char              tmp[NGX_MAX_PATH + 8];
    size_t            size = 64 * 1024;
    ssize_t           n;
    int               fd;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);
    buf = ngx_pnalloc(cycle->pool, size);
    if (buf == NULL) {
        return NGX_ERROR;
    }
    last = buf + size;
    p = ngx_slprintf(buf, last, "{\n  \"version\": 1,\n  \"generation\": %L,\n"
                     "  \"integration_mode\": \"nginx\",\n"
                     "  \"instance_dir\": ", generation);
    p = json_cstr(p, last, instance_dir);
    p = ngx_slprintf(p, last, ",\n  \"module_socket\": ");
    p = json_cstr(p, last, module_socket);
    p = ngx_slprintf(p, last, ",\n  \"control_socket\": ");
    p = json_cstr(p, last, control_socket);
    p = ngx_slprintf(p, last, ",\n  \"apache_uid\": %L,\n  \"apache_gid\": %L,\n"
                     "  \"parent_pid\": 0,\n  \"lifeline_fd\": 3,\n"
                     "  \"front_pid_file\": ",
                     (int64_t) worker_uid, (int64_t) worker_gid);
    /* nginx's master is known by its pid file only: it daemonizes after
     * this; the core accepts the workers' uid from its children only */
    p = json_str(p, last, ccf->pid.data, ccf->pid.len);
    p = ngx_slprintf(p, last, ",\n  \"redeploy_on_graceful\": ");
    if (mcf->redeploy.len > 0) {
        p = json_str(p, last, mcf->redeploy.data, mcf->redeploy.len);
    } else {
        p = json_cstr(p, last, "all");
    }
    p = ngx_slprintf(p, last, ",\n  \"server\": ");
    p = json_server(p, last, mcf, cycle);
    p = ngx_slprintf(p, last, "\n}\n");
    if (p + 1 >= last) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "FERRY0410: Cannot write core config %s: over %uz bytes",
                      config_path, size);
        return NGX_ERROR;
    }

    ngx_snprintf((u_char *) tmp, sizeof(tmp), "%s.tmp%Z", config_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "FERRY0411: Cannot write core config %s", tmp);
        return NGX_ERROR;
    }
    n = write(fd, buf, p - buf);
    if (n != p - buf || close(fd) != 0 || rename(tmp, config_path) != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "FERRY0412: Cannot write core config %s", config_path);
        if (n != p - buf) {
            close(fd);
        }
        unlink(tmp);
        return NGX_ERROR;
    }
    return NGX_OK;
}

/* ------------------------------------------------------------------------ */
/* The supervisor (a child of the master)                                  */

static volatile sig_atomic_t  sv_hup, sv_usr1, sv_term;

static void
sv_signal(int signo)
{
    if (signo == SIGHUP) {
        sv_hup = 1;
    } else if (signo == SIGUSR1) {
        sv_usr1 = 1;
    } else {
        sv_term = 1;
    }
}

/* A log line in nginx's error-log shape, on stderr (nginx's error log). */
static void
sv_log(const char *level, ngx_err_t err, const char *fmt, ...)
{
    u_char    line[2048], *p, *last = line + sizeof(line) - 1;
    va_list   args;

    ngx_time_update();
    p = ngx_slprintf(line, last, "%V [%s] %P#0: ", &ngx_cached_err_log_time,
                     level, ngx_getpid());
    va_start(args, fmt);
    p = ngx_vslprintf(p, last, fmt, args);
    va_end(args);
    if (err) {
        p = ngx_slprintf(p, last, " (%d: %s)", err, strerror(err));
    }
    *p++ = '\n';
    if (write(STDERR_FILENO, line, p - line) < 0) {
        /* nowhere else to say it */
    }
}

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) ftw;
    if (flag == FTW_DP) {
        rmdir(path);
    } else {
        unlink(path);
    }
    return 0;
}

/* Point stderr at nginx's error log file again (after a rotation). */
static void
sv_reopen_stderr(void)
{
    int  fd;

    if (error_log_path[0] == '\0') {
        return;
    }
    fd = open(error_log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd == -1) {
        sv_log("error", errno, "FERRY0422: Cannot reopen nginx's error log %s",
               error_log_path);
        return;
    }
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* Fork + exec the core; the lifeline's read end becomes its fd 3. */
static ngx_pid_t
sv_spawn(const char *node, const char *script, const char *log_file, int life)
{
    ngx_pid_t   pid;
    sigset_t    none;
    int         fd, sig;
    char       *argv[6];

    unlink(module_socket);
    unlink(control_socket);

    pid = fork();
    if (pid != 0) {
        return pid;
    }

    /* The core: own session, default signals, stdin /dev/null, stdout and
     * stderr the log (passenger_log_file, else nginx's error log). */
    setsid();
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            signal(sig, SIG_DFL);
        }
    }
    fd = open("/dev/null", O_RDONLY);
    if (fd > 0) {
        dup2(fd, STDIN_FILENO);
        close(fd);
    }
    if (log_file != NULL) {
        fd = open(log_file, O_WRONLY | O_CREAT | O_APPEND, 0640);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    dup2(STDERR_FILENO, STDOUT_FILENO);
    if (life != 3) {
        dup2(life, 3);           /* clears close-on-exec */
    } else {
        fcntl(3, F_SETFD, 0);
    }
    for (fd = 4; fd < 1024; fd++) {
        close(fd);
    }
    if (chdir("/") != 0) {
        /* not fatal: the core uses absolute paths */
    }
    argv[0] = (char *) node;
    argv[1] = FERRY_CORE_NODE_FLAGS;
    argv[2] = (char *) script;
    argv[3] = "--config";
    argv[4] = config_path;
    argv[5] = NULL;
    execv(node, argv);
    sv_log("emerg", errno, "FERRY0413: Cannot exec the ferry core %s %s",
           node, script);
    _exit(127);
}

/* Is the module socket there and connectable by nginx's workers? (The core
 * gives it to their user/group once it listens.) */
static int
socket_ready(void)
{
    struct stat  sb;

    if (stat(module_socket, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
        return 0;
    }
    if (geteuid() != 0) {
        return 1;
    }
    return (sb.st_uid == worker_uid && (sb.st_mode & S_IWUSR))
           || (sb.st_gid == worker_gid && (sb.st_mode & S_IWGRP))
           || (sb.st_mode & S_IWOTH);
}

/* Stop the core: SIGTERM, wait a bounded time, remove the instance dir. */
static void
sv_stop(ngx_pid_t core)
{
    ngx_msec_t  waited;
    int         status;

    if (core > 0) {
        kill(core, SIGTERM);
        for (waited = 0; waited < FERRY_CORE_STOP_MS; waited += FERRY_POLL_MS) {
            if (waitpid(core, &status, WNOHANG) == core) {
                sv_log("notice", 0, "FERRY0414: Stopped ferry core (pid %P)", core);
                core = 0;
                break;
            }
            ngx_msleep(FERRY_POLL_MS);
        }
        if (core > 0) {
            sv_log("warn", 0, "FERRY0415: The ferry core (pid %P) is still "
                   "draining %d s after SIGTERM; leaving it to finish on its own",
                   core, FERRY_CORE_STOP_MS / 1000);
            return;     /* it still uses its instance dir */
        }
    }
    nftw(instance_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The supervisor's life. Never returns. */
static void
sv_run(const char *node, const char *script, const char *log_file, int life)
{
    struct sigaction  sa;
    struct pollfd     pfd;
    sigset_t          block, none;
    ngx_msec_t        started, now, delay;
    ngx_pid_t         core = 0;
    ngx_uint_t        quick = 0;
    char              drain[64];
    int               status, first = 1;
    struct timespec   ts;

    ngx_memzero(&sa, sizeof(sa));
    sa.sa_handler = sv_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGQUIT);
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&none);

    ngx_time_update();
    started = ngx_current_msec;
    for ( ;; ) {
        if (core == 0) {
            core = sv_spawn(node, script, log_file, life);
            if (core == -1) {
                sv_log("emerg", errno, "FERRY0416: Cannot fork the ferry core");
                _exit(1);
            }
            ngx_time_update();
            started = ngx_current_msec;
            sv_log("notice", 0, "FERRY0417: Started ferry core (pid %P): "
                   "%s %s %s --config %s", core, node, FERRY_CORE_NODE_FLAGS,
                   script, config_path);
        }

        pfd.fd = life;
        pfd.events = POLLIN;
        pfd.revents = 0;
        ts.tv_sec = 0;
        ts.tv_nsec = 250 * 1000000L;
        if (ppoll(&pfd, 1, &ts, &none) > 0) {
            if (read(life, drain, sizeof(drain)) <= 0) {
                sv_term = 1;        /* EOF: the master is gone */
            }
        }
        if (sv_term) {
            sv_stop(core);
            _exit(0);
        }
        if (sv_hup) {
            sv_hup = 0;
            kill(core, SIGHUP);
        }
        if (sv_usr1) {
            /* `nginx -s reopen`: the supervisor's own lines follow nginx's
             * error log to the new file; the core reopens its logs */
            sv_usr1 = 0;
            sv_reopen_stderr();
            kill(core, SIGUSR1);
        }
        if (first && socket_ready()) {
            first = 0;
        }
        if (waitpid(core, &status, WNOHANG) != core) {
            continue;
        }

        /* The core died. */
        if (first) {
            /* before it ever listened: the master refuses to start */
            sv_log("emerg", 0, "FERRY0418: Cannot start the ferry core: it "
                   "exited with %s %d before listening on %s; its output is "
                   "above", WIFSIGNALED(status) ? "signal" : "exit code",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                   module_socket);
            _exit(2);
        }
        sv_log("error", 0, "FERRY0419: The ferry core (pid %P) died with %s %d; "
               "restarting it", core,
               WIFSIGNALED(status) ? "signal" : "exit code",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        core = 0;
        ngx_time_update();
        now = ngx_current_msec;
        if (now - started < FERRY_CORE_MIN_LIFE_MS) {
            for (delay = 100, status = 0; (ngx_uint_t) status < quick
                 && delay < FERRY_CORE_BACKOFF_MS; status++)
            {
                delay *= 2;
            }
            quick++;
            ngx_msleep(ngx_min(delay, FERRY_CORE_BACKOFF_MS));
        } else {
            quick = 0;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* The master's side                                                       */

/* A path: absolute as given, else relative to nginx's prefix. */
static ngx_int_t
full_path(ngx_cycle_t *cycle, ngx_str_t *in, char *out, size_t size)
{
    ngx_str_t  name = *in;

    if (ngx_conf_full_name(cycle, &name, 0) != NGX_OK
        || name.len + 1 > size)
    {
        return NGX_ERROR;
    }
    ngx_memcpy(out, name.data, name.len);
    out[name.len] = '\0';
    return NGX_OK;
}

/* Resolve the node interpreter: a path is taken as is, a bare name is
 * searched on PATH. NULL when not executable. */
static char *
resolve_node(ngx_cycle_t *cycle, ngx_str_t *configured)
{
    const char  *path = getenv("PATH");
    u_char      *name, *dirs, *dir, *end, *cand;
    struct stat  sb;

    name = (configured != NULL && configured->len > 0)
           ? ngx_pstrdup(cycle->pool, configured) : (u_char *) "node";
    if (name == NULL) {
        return NULL;
    }
    if (configured != NULL && configured->len > 0) {
        name[configured->len] = '\0';
    }
    if (ngx_strchr(name, '/') != NULL) {
        return access((char *) name, X_OK) == 0 ? (char *) name : NULL;
    }
    if (path == NULL || *path == '\0') {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    dirs = (u_char *) path;
    for (dir = dirs; *dir; dir = *end ? end + 1 : end) {
        end = (u_char *) ngx_strchr(dir, ':');
        if (end == NULL) {
            end = dir + ngx_strlen(dir);
        }
        cand = ngx_pnalloc(cycle->pool, (end - dir) + ngx_strlen(name) + 3);
        if (cand == NULL) {
            return NULL;
        }
        ngx_sprintf(cand, "%*s/%s%Z", (size_t) (end - dir), dir, name);
        if (end == dir) {
            ngx_sprintf(cand, "./%s%Z", name);
        }
        if (stat((char *) cand, &sb) == 0 && S_ISREG(sb.st_mode)
            && access((char *) cand, X_OK) == 0)
        {
            return (char *) cand;
        }
    }
    return NULL;
}

/* The first start: instance dir, config, supervisor, wait for the core. */
static ngx_int_t
start_core(ngx_cycle_t *cycle, ngx_http_ferry_main_conf_t *mcf,
    ngx_http_ferry_loc_conf_t *lcf)
{
    ngx_core_conf_t         *ccf;
    ngx_http_ferry_value_t  *v;
    char                     registry[NGX_MAX_PATH], script[NGX_MAX_PATH];
    char                    *node, *log_file = NULL, *slash;
    char                     log_buf[NGX_MAX_PATH];
    struct stat              sb;
    ngx_msec_t               waited;
    ngx_pid_t                pid;
    mode_t                   mode = geteuid() == 0 ? 0711 : 0700;
    int                      fds[2], status;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);
    worker_uid = geteuid() == 0 ? ccf->user : geteuid();
    worker_gid = geteuid() == 0 ? ccf->group : getegid();

    /* <passenger_root>/build/core/src/main.js and the node to run it */
    if (mcf->root.len + sizeof(FERRY_CORE_SCRIPT) + 1 > sizeof(script)) {
        return NGX_ERROR;
    }
    ngx_snprintf((u_char *) script, sizeof(script), "%V/%s%Z", &mcf->root,
                 FERRY_CORE_SCRIPT);
    if (stat(script, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "FERRY0402: Cannot start the ferry core: %s is missing; "
                      "check passenger_root and build ferry (npm run build)",
                      script);
        return NGX_ERROR;
    }
    v = ngx_http_ferry_value(lcf->app, "nodejs");
    node = resolve_node(cycle, v ? &v->str : NULL);
    if (node == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "FERRY0403: Cannot start the ferry core: Node.js "
                      "interpreter \"%V\" not found or not executable "
                      "(passenger_nodejs, PATH=%s)",
                      v ? &v->str : &(ngx_str_t) ngx_string("node"),
                      getenv("PATH") ? getenv("PATH") : "");
        return NGX_ERROR;
    }
    v = ngx_http_ferry_value(mcf->server, "log_file");
    if (v != NULL) {
        if (full_path(cycle, &v->str, log_buf, sizeof(log_buf)) != NGX_OK) {
            return NGX_ERROR;
        }
        log_file = log_buf;
    }

    /* the instance dir: <passenger_instance_registry_dir, else the pid
     * file's dir>/ferry-<pid> */
    if (mcf->instance_registry_dir.len > 0) {
        if (full_path(cycle, &mcf->instance_registry_dir, registry,
                      sizeof(registry)) != NGX_OK)
        {
            return NGX_ERROR;
        }
        if (mkdir(registry, 0755) != 0 && ngx_errno != NGX_EEXIST) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "FERRY0404: Cannot create instance registry dir %s",
                          registry);
            return NGX_ERROR;
        }
    } else {
        if (full_path(cycle, &ccf->pid, registry, sizeof(registry)) != NGX_OK) {
            return NGX_ERROR;
        }
        slash = strrchr(registry, '/');
        if (slash != NULL) {
            *(slash == registry ? slash + 1 : slash) = '\0';
        }
    }
    ngx_snprintf((u_char *) instance_dir, sizeof(instance_dir),
                 "%s/ferry-%P%Z", registry, ngx_pid);
    if (mkdir(instance_dir, mode) != 0) {
        if (ngx_errno != NGX_EEXIST || lstat(instance_dir, &sb) != 0
            || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid())
        {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "FERRY0405: Cannot create instance dir %s (or it "
                          "exists and is not a directory owned by uid %d)",
                          instance_dir, (int) geteuid());
            return NGX_ERROR;
        }
    }
    if (chmod(instance_dir, mode) != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "FERRY0406: Cannot set the mode of instance dir %s",
                      instance_dir);
        return NGX_ERROR;
    }
    error_log_path[0] = '\0';
    if (cycle->log->file != NULL && cycle->log->file->name.len > 0
        && cycle->log->file->name.data[0] == '/'
        && cycle->log->file->name.len < sizeof(error_log_path))
    {
        ngx_memcpy(error_log_path, cycle->log->file->name.data,
                   cycle->log->file->name.len);
        error_log_path[cycle->log->file->name.len] = '\0';
    }
    ngx_snprintf((u_char *) config_path, sizeof(config_path),
                 "%s/config.json%Z", instance_dir);
    ngx_snprintf((u_char *) module_socket, sizeof(module_socket),
                 "%s/module.sock%Z", instance_dir);
    ngx_snprintf((u_char *) control_socket, sizeof(control_socket),
                 "%s/control.sock%Z", instance_dir);

    generation = 1;
    if (write_config(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (pipe2(fds, O_CLOEXEC) != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "FERRY0407: Cannot create the core's lifeline pipe");
        return NGX_ERROR;
    }
    pid = fork();
    if (pid == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "FERRY0408: Cannot fork the ferry supervisor");
        close(fds[0]);
        close(fds[1]);
        return NGX_ERROR;
    }
    if (pid == 0) {
        /* the supervisor: keep stderr (nginx's error log) and the
         * lifeline's read end; nginx's listening sockets and files go */
        int  fd;

        /* nginx points its stderr at the error log only after this hook:
         * the supervisor's lines (and the core's output) go there now */
        if (cycle->log->file != NULL && cycle->log->file->fd != NGX_INVALID_FILE
            && cycle->log->file->fd != STDERR_FILENO)
        {
            dup2(cycle->log->file->fd, STDERR_FILENO);
        }
        close(fds[1]);
        if (fds[0] != 3) {
            dup2(fds[0], 3);
            close(fds[0]);
        }
        for (fd = 4; fd < 1024; fd++) {
            close(fd);
        }
        ngx_pid = ngx_getpid();
        sv_run(node, script, log_file, 3);
    }
    close(fds[0]);
    lifeline_fd = fds[1];
    supervisor_pid = pid;

    /* Wait (bounded) until the core listens; a supervisor that exits means
     * the core could not start: nginx refuses to start. */
    for (waited = 0; waited < FERRY_CORE_READY_MS; waited += FERRY_POLL_MS) {
        if (socket_ready()) {
            return NGX_OK;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "FERRY0409: Cannot start nginx with Ferry: the ferry "
                          "core did not start (see the lines above)");
            supervisor_pid = 0;
            close(lifeline_fd);
            lifeline_fd = -1;
            nftw(instance_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
            return NGX_ERROR;
        }
        ngx_msleep(FERRY_POLL_MS);
    }
    ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                  "FERRY0420: The ferry core is not ready on %s after %d s; "
                  "requests will wait for it", module_socket,
                  FERRY_CORE_READY_MS / 1000);
    return NGX_OK;
}

/* The flush handler of the hooked open file: nginx calls it before it
 * reopens that file, in the master on `nginx -s reopen` (and in workers on
 * a reopen and at exit, where it does nothing). */
static void
reopen_flush(ngx_open_file_t *file, ngx_log_t *log)
{
    (void) file;
    if ((ngx_process != NGX_PROCESS_MASTER && ngx_process != NGX_PROCESS_SINGLE)
        || ngx_terminate || ngx_quit || supervisor_pid <= 0)
    {
        return;
    }
    if (kill(supervisor_pid, SIGUSR1) != 0) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "FERRY0423: Cannot ask the ferry supervisor (pid %P) "
                      "to reopen the core's log files", supervisor_pid);
    }
}

/* Hook reopen_flush on one open file of the cycle that has no flush
 * handler: the error log's, else the first other named one. */
static void
hook_reopen(ngx_cycle_t *cycle)
{
    ngx_list_part_t  *part = &cycle->open_files.part;
    ngx_open_file_t  *file = part->elts, *f = cycle->log->file;
    ngx_uint_t        i;

    if (f != NULL && f->name.len > 0
        && (f->flush == NULL || f->flush == reopen_flush))
    {
        f->flush = reopen_flush;
        return;
    }
    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return;     /* no file nginx reopens: `ferry reopen-logs` */
            }
            part = part->next;
            file = part->elts;
            i = 0;
        }
        if (file[i].name.len > 0
            && (file[i].flush == NULL || file[i].flush == reopen_flush))
        {
            file[i].flush = reopen_flush;
            return;
        }
    }
}

/* init_module: start the core (first time) or hand it the new config. */
ngx_int_t
ngx_http_ferry_daemon_init(ngx_cycle_t *cycle)
{
    ngx_http_ferry_main_conf_t  *mcf;
    ngx_http_ferry_loc_conf_t   *lcf;
    ngx_http_conf_ctx_t         *ctx;

    if (ngx_test_config || ngx_process == NGX_PROCESS_SIGNALLER
        || cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NGX_OK;
    }
    ctx = (ngx_http_conf_ctx_t *) cycle->conf_ctx[ngx_http_module.index];
    mcf = ctx->main_conf[ngx_http_ferry_module.ctx_index];
    lcf = ctx->loc_conf[ngx_http_ferry_module.ctx_index];
    if (mcf->root.len == 0) {
        /* the module is loaded but not configured: no core */
        return NGX_OK;
    }

    if (supervisor_pid > 0 && kill(supervisor_pid, 0) == 0) {
        /* a reload: the running core gets the new config */
        generation++;
        if (write_config(cycle, mcf) != NGX_OK) {
            return NGX_OK;      /* keep serving with the old one */
        }
        kill(supervisor_pid, SIGHUP);
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "FERRY0421: Sent generation %L to the ferry core "
                      "(SIGHUP); apps redeploy per "
                      "passenger_redeploy_on_graceful", generation);
        hook_reopen(cycle);
        return NGX_OK;
    }
    if (start_core(cycle, mcf, lcf) != NGX_OK) {
        return NGX_ERROR;
    }
    hook_reopen(cycle);
    return NGX_OK;
}

/* init_process: workers (and the cache processes) never hold the lifeline. */
void
ngx_http_ferry_daemon_init_process(void)
{
    if (lifeline_fd != -1) {
        close(lifeline_fd);
        lifeline_fd = -1;
    }
}

/* exit_master: nginx stops; the supervisor stops the core. */
void
ngx_http_ferry_daemon_exit_master(void)
{
    if (supervisor_pid > 0) {
        kill(supervisor_pid, SIGTERM);
        supervisor_pid = 0;
    }
    if (lifeline_fd != -1) {
        close(lifeline_fd);
        lifeline_fd = -1;
    }
}

/* The core's module socket (for the data path). */
const char *
ngx_http_ferry_core_socket(void)
{
    return module_socket;
}

/* The configuration generation (workers inherit it from the master). */
int64_t
ngx_http_ferry_generation(void)
{
    return generation;
}
