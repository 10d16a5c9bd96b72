/* faultfs: an LD_PRELOAD interposer that makes storage fail on purpose.
 *
 * It watches the file descriptors of files whose path ends with one of the
 * suffixes in FAULTFS_MATCH (tracked from open/open64/openat/openat64/creat,
 * forgotten on close) and fails write/pwrite/pwrite64/writev/fsync/fdatasync
 * on them with an errno of your choice. Everything else passes through.
 *
 * Environment (read once, at the first intercepted call):
 *   FAULTFS_MATCH       comma-separated path suffixes   [soldr.db,soldr.db-wal]
 *   FAULTFS_OPS         comma-separated subset of write,pwrite,fsync,fdatasync
 *                       (pwrite covers pwrite64 and pwritev; write covers writev)
 *                                                       [write,pwrite,fsync,fdatasync]
 *   FAULTFS_ERRNO       EIO, ENOSPC, EDQUOT, EROFS, EFBIG or a number   [EIO]
 *   FAULTFS_FAIL_AFTER  N: the Nth matching operation fails (1 = the first);
 *                       0 or unset: no fault at all                       [0]
 *   FAULTFS_MODE        once: only the Nth fails; until-cleared: the Nth
 *                       and every later one fail until the clear file
 *                       exists                                         [once]
 *   FAULTFS_ARM_FILE    if set, operations are counted only once this file
 *                       exists (so start-up and migrations run clean)
 *   FAULTFS_CLEAR_FILE  until-cleared: failing stops once this file exists;
 *                       removing it and touching the arm file again does
 *                       NOT re-arm (one fault episode per process)
 *   FAULTFS_LOG         if set, one line per injected failure is appended
 *                       there: "<op> <errno> <path>"
 *
 * The state is process-wide (atomics, no locks), so it works from SQLite's
 * writer thread as well as from anywhere else.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD      65536
#define MAX_SUFFIX  8
#define OP_WRITE    1
#define OP_PWRITE   2
#define OP_FSYNC    4
#define OP_FDATASYNC 8

static atomic_uchar tracked[MAX_FD];
static char *paths[MAX_FD]; /* for the log only; written before tracked[] is set */

static atomic_int inited;
static int cfg_ops = OP_WRITE | OP_PWRITE | OP_FSYNC | OP_FDATASYNC;
static int cfg_errno = EIO;
static long cfg_after;
static int cfg_until_cleared;
static const char *cfg_arm, *cfg_clear, *cfg_log;
static char *suffixes[MAX_SUFFIX];
static int nsuffixes;

static atomic_int armed;   /* counting has begun */
static atomic_long counted; /* matching operations since armed */
static atomic_int cleared;  /* until-cleared: the clear file was seen */

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_close)(int);

static void *sym(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void resolve(void)
{
    real_write = sym("write");
    real_writev = sym("writev");
    real_pwrite = sym("pwrite");
    real_pwrite64 = sym("pwrite64");
    real_pwritev = sym("pwritev");
    real_fsync = sym("fsync");
    real_fdatasync = sym("fdatasync");
    real_open = sym("open");
    real_open64 = sym("open64");
    real_openat = sym("openat");
    real_openat64 = sym("openat64");
    real_creat = sym("creat");
    real_close = sym("close");
}

static int parse_errno(const char *s)
{
    static const struct {
        const char *name;
        int value;
    } names[] = {{"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT},
                 {"EROFS", EROFS},   {"EFBIG", EFBIG},   {"EPERM", EPERM},
                 {"EACCES", EACCES}, {"EAGAIN", EAGAIN}, {NULL, 0}};
    for (int i = 0; names[i].name; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].value;
    int v = atoi(s);
    return v > 0 ? v : EIO;
}

static void init(void)
{
    int expected = 0;
    if (atomic_load(&inited) == 2)
        return;
    if (!atomic_compare_exchange_strong(&inited, &expected, 1)) {
        while (atomic_load(&inited) != 2)
            ; /* another thread is initialising: it takes microseconds */
        return;
    }
    resolve();
    const char *m = getenv("FAULTFS_MATCH");
    char *list = strdup(m && *m ? m : "soldr.db,soldr.db-wal");
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && nsuffixes < MAX_SUFFIX;
         t = strtok_r(NULL, ",", &save))
        suffixes[nsuffixes++] = t;
    const char *ops = getenv("FAULTFS_OPS");
    if (ops && *ops) {
        cfg_ops = 0;
        if (strstr(ops, "pwrite"))
            cfg_ops |= OP_PWRITE;
        /* "write" alone (not only as part of "pwrite") */
        for (const char *p = ops; (p = strstr(p, "write")); p += 5)
            if (p == ops || p[-1] == ',')
                cfg_ops |= OP_WRITE;
        if (strstr(ops, "fdatasync"))
            cfg_ops |= OP_FDATASYNC;
        for (const char *p = ops; (p = strstr(p, "fsync")); p += 5)
            if (p == ops || p[-1] == ',')
                cfg_ops |= OP_FSYNC;
    }
    const char *e = getenv("FAULTFS_ERRNO");
    if (e && *e)
        cfg_errno = parse_errno(e);
    const char *n = getenv("FAULTFS_FAIL_AFTER");
    cfg_after = n ? atol(n) : 0;
    const char *mode = getenv("FAULTFS_MODE");
    cfg_until_cleared = mode && strcmp(mode, "until-cleared") == 0;
    cfg_arm = getenv("FAULTFS_ARM_FILE");
    cfg_clear = getenv("FAULTFS_CLEAR_FILE");
    cfg_log = getenv("FAULTFS_LOG");
    if (cfg_arm && !*cfg_arm)
        cfg_arm = NULL;
    if (cfg_clear && !*cfg_clear)
        cfg_clear = NULL;
    if (cfg_log && !*cfg_log)
        cfg_log = NULL;
    atomic_store(&armed, cfg_arm == NULL);
    atomic_store(&inited, 2);
}

static int matches(const char *path)
{
    size_t pl = strlen(path);
    for (int i = 0; i < nsuffixes; i++) {
        size_t sl = strlen(suffixes[i]);
        if (pl >= sl && strcmp(path + pl - sl, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

static void track(int fd, const char *path)
{
    if (fd < 0 || fd >= MAX_FD)
        return;
    if (path && matches(path)) {
        char *old = paths[fd];
        paths[fd] = strdup(path);
        free(old);
        atomic_store(&tracked[fd], 1);
    } else {
        atomic_store(&tracked[fd], 0);
    }
}

static void log_fault(const char *op, int fd)
{
    if (!cfg_log)
        return;
    char line[PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s %d %s\n", op, cfg_errno,
                     paths[fd] ? paths[fd] : "?");
    int lfd = real_open(cfg_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0)
        return;
    if (n > 0)
        (void)!real_write(lfd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    real_close(lfd);
}

/* 1 if this operation is to fail (errno is then set). */
static int inject(int op, const char *name, int fd)
{
    init();
    if (fd < 0 || fd >= MAX_FD || !atomic_load(&tracked[fd]) || !(cfg_ops & op) || cfg_after <= 0)
        return 0;
    if (!atomic_load(&armed)) {
        if (access(cfg_arm, F_OK) != 0)
            return 0;
        atomic_store(&armed, 1);
    }
    if (atomic_load(&cleared))
        return 0;
    long k = atomic_fetch_add(&counted, 1) + 1;
    int fail;
    if (cfg_until_cleared) {
        fail = k >= cfg_after;
        if (fail && cfg_clear && access(cfg_clear, F_OK) == 0) {
            atomic_store(&cleared, 1);
            fail = 0;
        }
    } else {
        fail = k == cfg_after;
    }
    if (!fail)
        return 0;
    log_fault(name, fd);
    errno = cfg_errno;
    return 1;
}

/* ---- tracking ---------------------------------------------------------------- */

static int wants_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

int open(const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (wants_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int fd = real_open(path, flags, mode);
    track(fd, path);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (wants_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int fd = real_open64(path, flags, mode);
    track(fd, path);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (wants_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int fd = real_openat(dirfd, path, flags, mode);
    track(fd, path);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (wants_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int fd = real_openat64(dirfd, path, flags, mode);
    track(fd, path);
    return fd;
}

int creat(const char *path, mode_t mode)
{
    init();
    int fd = real_creat(path, mode);
    track(fd, path);
    return fd;
}

int close(int fd)
{
    init();
    if (fd >= 0 && fd < MAX_FD)
        atomic_store(&tracked[fd], 0);
    return real_close(fd);
}

/* ---- faults ------------------------------------------------------------------ */

ssize_t write(int fd, const void *buf, size_t n)
{
    if (inject(OP_WRITE, "write", fd))
        return -1;
    return real_write(fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    if (inject(OP_WRITE, "writev", fd))
        return -1;
    return real_writev(fd, iov, cnt);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (inject(OP_PWRITE, "pwrite", fd))
        return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    if (inject(OP_PWRITE, "pwrite64", fd))
        return -1;
    return real_pwrite64(fd, buf, n, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    if (inject(OP_PWRITE, "pwritev", fd))
        return -1;
    return real_pwritev(fd, iov, cnt, off);
}

int fsync(int fd)
{
    if (inject(OP_FSYNC, "fsync", fd))
        return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    if (inject(OP_FDATASYNC, "fdatasync", fd))
        return -1;
    return real_fdatasync(fd);
}
