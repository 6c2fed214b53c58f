/*
 * ferry-exec-helper: the last step before an app runs. The core starts it
 * (as root when user switching applies); it sets the resource limits, drops
 * privileges for good (supplementary groups, gid, uid), sets the parent-death
 * signal, changes directory, and execs the app. Nothing here runs app code.
 *
 * Usage:
 *   ferry-exec-helper [--user NAME | --uid N] [--group NAME | --gid N]
 *                     [--nofile N] [--pdeathsig SIG] [--setsid]
 *                     [--chdir DIR] -- PROGRAM [ARG...]
 *
 * --user NAME     run as NAME: uid and primary gid from the passwd database,
 *                 supplementary groups from initgroups(NAME, gid)
 * --uid N         run as uid N (no name: the only group is the primary gid)
 * --group/--gid   override the primary gid (supplementary groups stay NAME's)
 * --nofile N      RLIMIT_NOFILE soft and hard limit (set before dropping root)
 * --pdeathsig SIG signal (number or TERM/KILL/INT/HUP) delivered when the
 *                 parent (the Ferry core) dies; set after the uid change,
 *                 because the kernel clears it on credential changes
 * --setsid        start a new session (process group leader)
 * --chdir DIR     change directory after dropping privileges, so the check
 *                 is made as the app's user
 *
 * Every failure prints one line "ferry-exec-helper: Cannot ..." on stderr and
 * exits with a distinct code (see FERRY_EXEC_* below and docs/loader.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#define FERRY_EXEC_USAGE      64  /* bad arguments (EX_USAGE) */
#define FERRY_EXEC_NOUSER     67  /* unknown user or group (EX_NOUSER) */
#define FERRY_EXEC_PRIVDROP   77  /* could not drop privileges, or root regained (EX_NOPERM) */
#define FERRY_EXEC_OSERR      71  /* setrlimit/prctl/setsid failed (EX_OSERR) */
#define FERRY_EXEC_CHDIR      72  /* chdir failed */
#define FERRY_EXEC_NOEXEC     126 /* program found but not executable */
#define FERRY_EXEC_NOTFOUND   127 /* program not found */

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("ferry-exec-helper: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_signal(const char *s)
{
    long v;
    if (parse_long(s, 1, 64, &v) == 0) {
        return (int)v;
    }
    if (strncmp(s, "SIG", 3) == 0) {
        s += 3;
    }
    if (strcmp(s, "TERM") == 0) return SIGTERM;
    if (strcmp(s, "KILL") == 0) return SIGKILL;
    if (strcmp(s, "INT") == 0) return SIGINT;
    if (strcmp(s, "HUP") == 0) return SIGHUP;
    if (strcmp(s, "USR1") == 0) return SIGUSR1;
    if (strcmp(s, "USR2") == 0) return SIGUSR2;
    return -1;
}

static const char *need_value(int argc, char **argv, int i)
{
    if (i + 1 >= argc) {
        die(FERRY_EXEC_USAGE, "Cannot parse arguments: %s needs a value", argv[i]);
    }
    return argv[i + 1];
}

int main(int argc, char **argv)
{
    const char *user = NULL;
    const char *group = NULL;
    const char *chdir_to = NULL;
    long uid = -1;
    long gid = -1;
    long nofile = -1;
    int pdeathsig = 0;
    int want_setsid = 0;
    int i;
    pid_t parent = getppid();

    /* Step One: parse the options up to "--". */
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        else if (strcmp(a, "--user") == 0) {
            user = need_value(argc, argv, i++);
        }
        else if (strcmp(a, "--group") == 0) {
            group = need_value(argc, argv, i++);
        }
        else if (strcmp(a, "--uid") == 0) {
            if (parse_long(need_value(argc, argv, i++), 0, (long)UINT_MAX - 1, &uid) != 0) {
                die(FERRY_EXEC_USAGE, "Cannot parse arguments: --uid needs a number");
            }
        }
        else if (strcmp(a, "--gid") == 0) {
            if (parse_long(need_value(argc, argv, i++), 0, (long)UINT_MAX - 1, &gid) != 0) {
                die(FERRY_EXEC_USAGE, "Cannot parse arguments: --gid needs a number");
            }
        }
        else if (strcmp(a, "--nofile") == 0) {
            if (parse_long(need_value(argc, argv, i++), 1, 1L << 30, &nofile) != 0) {
                die(FERRY_EXEC_USAGE, "Cannot parse arguments: --nofile needs a positive number");
            }
        }
        else if (strcmp(a, "--pdeathsig") == 0) {
            pdeathsig = parse_signal(need_value(argc, argv, i++));
            if (pdeathsig < 0) {
                die(FERRY_EXEC_USAGE, "Cannot parse arguments: --pdeathsig needs a signal (TERM, KILL, 15 ...)");
            }
        }
        else if (strcmp(a, "--setsid") == 0) {
            want_setsid = 1;
        }
        else if (strcmp(a, "--chdir") == 0) {
            chdir_to = need_value(argc, argv, i++);
        }
        else {
            die(FERRY_EXEC_USAGE, "Cannot parse arguments: unknown option %s", a);
        }
    }
    if (i >= argc) {
        die(FERRY_EXEC_USAGE, "Cannot parse arguments: no program after --");
    }
    if (user != NULL && uid >= 0) {
        die(FERRY_EXEC_USAGE, "Cannot parse arguments: give --user or --uid, not both");
    }
    if (group != NULL && gid >= 0) {
        die(FERRY_EXEC_USAGE, "Cannot parse arguments: give --group or --gid, not both");
    }

    /* Step Two: resolve names (NSS), before anything changes. */
    if (user != NULL) {
        struct passwd *pw;
        errno = 0;
        pw = getpwnam(user);
        if (pw == NULL) {
            die(FERRY_EXEC_NOUSER, "Cannot find user %s: %s", user,
                errno != 0 ? strerror(errno) : "no such user");
        }
        uid = (long)pw->pw_uid;
        if (gid < 0 && group == NULL) {
            gid = (long)pw->pw_gid;
        }
    }
    if (group != NULL) {
        struct group *gr;
        errno = 0;
        gr = getgrnam(group);
        if (gr == NULL) {
            die(FERRY_EXEC_NOUSER, "Cannot find group %s: %s", group,
                errno != 0 ? strerror(errno) : "no such group");
        }
        gid = (long)gr->gr_gid;
    }
    if (uid >= 0 && gid < 0) {
        struct passwd *pw = getpwuid((uid_t)uid);
        if (pw == NULL) {
            die(FERRY_EXEC_NOUSER, "Cannot find the primary group of uid %ld: give --gid", uid);
        }
        gid = (long)pw->pw_gid;
    }

    /* Step Three: session and limits, while we may still raise hard limits. */
    if (want_setsid && getpid() != getsid(0) && setsid() < 0) {
        die(FERRY_EXEC_OSERR, "Cannot start a new session: %s", strerror(errno));
    }
    if (nofile > 0) {
        struct rlimit rl;
        rl.rlim_cur = (rlim_t)nofile;
        rl.rlim_max = (rlim_t)nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            die(FERRY_EXEC_OSERR, "Cannot set RLIMIT_NOFILE to %ld: %s", nofile, strerror(errno));
        }
    }

    /* Step Four: drop privileges for good: groups, then gid, then uid. */
    if (uid >= 0) {
        gid_t g = (gid_t)gid;
        if (user != NULL) {
            if (initgroups(user, g) != 0) {
                die(FERRY_EXEC_PRIVDROP, "Cannot set the supplementary groups of %s: %s", user, strerror(errno));
            }
        }
        else if (setgroups(1, &g) != 0) {
            die(FERRY_EXEC_PRIVDROP, "Cannot set the supplementary groups to %ld: %s", gid, strerror(errno));
        }
        if (setresgid(g, g, g) != 0) {
            die(FERRY_EXEC_PRIVDROP, "Cannot set gid %ld: %s", gid, strerror(errno));
        }
        if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
            die(FERRY_EXEC_PRIVDROP, "Cannot set uid %ld: %s", uid, strerror(errno));
        }
        if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
            die(FERRY_EXEC_PRIVDROP, "Cannot drop privileges: root could be regained");
        }
        if (getuid() != (uid_t)uid || geteuid() != (uid_t)uid
            || getgid() != g || getegid() != g) {
            die(FERRY_EXEC_PRIVDROP, "Cannot drop privileges: ids are not %ld:%ld after the switch", uid, gid);
        }
    }
    else if (gid >= 0) {
        die(FERRY_EXEC_USAGE, "Cannot parse arguments: --group/--gid needs --user or --uid");
    }

    /* Step Five: parent-death signal (cleared by the kernel on uid changes, so
     * set it now), then make sure the parent did not already die. */
    if (pdeathsig > 0) {
        if (prctl(PR_SET_PDEATHSIG, pdeathsig) != 0) {
            die(FERRY_EXEC_OSERR, "Cannot set the parent-death signal: %s", strerror(errno));
        }
        if (getppid() != parent) {
            die(FERRY_EXEC_OSERR, "Cannot start the app: the Ferry core already exited");
        }
    }

    if (chdir_to != NULL && chdir(chdir_to) != 0) {
        die(FERRY_EXEC_CHDIR, "Cannot chdir to %s: %s", chdir_to, strerror(errno));
    }

    execvp(argv[i], &argv[i]);
    die(errno == ENOENT ? FERRY_EXEC_NOTFOUND : FERRY_EXEC_NOEXEC,
        "Cannot execute %s: %s", argv[i], strerror(errno));
    return FERRY_EXEC_NOEXEC;
}
