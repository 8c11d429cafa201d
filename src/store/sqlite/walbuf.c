/* walbuf.c: the WAL write buffer over SQLite's default VFS (see walbuf.h). A file of ours
 * is a struct wfile followed by the default VFS's own file object, which does the I/O. A
 * file is used by one connection, so by one thread at a time: no lock here. */
#include "walbuf.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct wfile {
    sqlite3_file base;     /* pMethods: ours */
    sqlite3_file *real;    /* the default VFS's file, right after this struct */
    bool wal;              /* a WAL on a power-safe-overwrite device: writes are gathered */
    struct wfile *link;    /* a WAL: its database file; a database file: its open WAL */
    unsigned char *buf;    /* NULL until the first gathered write; WALBUF_CAP bytes */
    size_t len;            /* bytes held */
    sqlite3_int64 off;     /* file offset of buf[0] */
};

static sqlite3_vfs *base_vfs;
static sqlite3_vfs vfs;
static atomic_uint_fast64_t n_buffered, n_flushed;

static struct wfile *wf(sqlite3_file *f)
{
    return (struct wfile *)f;
}

/* The unix VFS writes at most 0x1ffff bytes per call: it masks the length with that
 * (seekAndWriteFd: nBuf &= 0x1ffff), as SQLite never writes more than a page at once.
 * So the buffer goes out in chunks under it: ~6 calls for a 660 KB commit. */
#define CHUNK ((size_t)120 << 10)

/* flush: write what f holds. On a failure the bytes not written stay held (at the front
 * of the buffer), so the next flush tries them again: SQLite may go on after an error
 * at a read (a statement rolled back, not the transaction) and commit frames that an
 * earlier statement spilled. A later write over them replaces them in the buffer. */
static int flush(struct wfile *f)
{
    int rc = SQLITE_OK;
    size_t at = 0;
    while (at < f->len) {
        size_t n = f->len - at < CHUNK ? f->len - at : CHUNK;
        atomic_fetch_add_explicit(&n_flushed, 1, memory_order_relaxed);
        rc = f->real->pMethods->xWrite(f->real, f->buf + at, (int)n,
                                       f->off + (sqlite3_int64)at);
        if (rc != SQLITE_OK)
            break;
        at += n;
    }
    if (at > 0 && at < f->len)
        memmove(f->buf, f->buf + at, f->len - at);
    f->off += (sqlite3_int64)at;
    f->len -= at;
    return rc;
}

static int w_close(sqlite3_file *pf)
{
    struct wfile *f = wf(pf);
    int rc = flush(f), rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    if (f->link && f->link->link == f)
        f->link->link = NULL; /* the other end forgets this one */
    f->link = NULL;
    free(f->buf);
    f->buf = NULL;
    f->len = 0;
    return rc != SQLITE_OK ? rc : rc2;
}

static int w_read(sqlite3_file *pf, void *p, int amt, sqlite3_int64 off)
{
    struct wfile *f = wf(pf);
    if (f->len && off < f->off + (sqlite3_int64)f->len && off + amt > f->off) {
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    return f->real->pMethods->xRead(f->real, p, amt, off);
}

static int w_write(sqlite3_file *pf, const void *p, int amt, sqlite3_int64 off)
{
    struct wfile *f = wf(pf);
    size_t n = (size_t)amt;
    if (!f->wal || amt <= 0)
        return f->real->pMethods->xWrite(f->real, p, amt, off);
    if (f->len && off >= f->off && off + amt <= f->off + (sqlite3_int64)f->len) {
        memcpy(f->buf + (off - f->off), p, n); /* a frame rewritten in place */
        atomic_fetch_add_explicit(&n_buffered, 1, memory_order_relaxed);
        return SQLITE_OK;
    }
    if (f->len && (off != f->off + (sqlite3_int64)f->len || f->len + n > WALBUF_CAP)) {
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!f->buf && n < WALBUF_CAP)
        f->buf = malloc(WALBUF_CAP); /* NULL: written through, as without the layer */
    if (!f->buf || n >= WALBUF_CAP) /* more than a page: not SQLite's WAL frames */
        return f->real->pMethods->xWrite(f->real, p, amt, off);
    if (f->len == 0)
        f->off = off;
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    atomic_fetch_add_explicit(&n_buffered, 1, memory_order_relaxed);
    return SQLITE_OK;
}

static int w_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
    struct wfile *f = wf(pf);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int w_sync(sqlite3_file *pf, int flags)
{
    struct wfile *f = wf(pf);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int w_file_size(sqlite3_file *pf, sqlite3_int64 *size)
{
    struct wfile *f = wf(pf);
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int w_lock(sqlite3_file *pf, int lock)
{
    return wf(pf)->real->pMethods->xLock(wf(pf)->real, lock);
}

static int w_unlock(sqlite3_file *pf, int lock)
{
    return wf(pf)->real->pMethods->xUnlock(wf(pf)->real, lock);
}

static int w_check_reserved(sqlite3_file *pf, int *out)
{
    return wf(pf)->real->pMethods->xCheckReservedLock(wf(pf)->real, out);
}

static int w_file_control(sqlite3_file *pf, int op, void *arg)
{
    struct wfile *f = wf(pf);
    if (op == SQLITE_FCNTL_VFS_POINTER) {
        *(sqlite3_vfs **)arg = &vfs;
        return SQLITE_OK;
    }
    if (op == SQLITE_FCNTL_VFSNAME) { /* name the layer too, as SQLite's shims do */
        int rc = f->real->pMethods->xFileControl(f->real, op, arg);
        if (rc == SQLITE_OK && *(char **)arg) {
            char *s = sqlite3_mprintf("%s/%s", vfs.zName, *(char **)arg);
            sqlite3_free(*(char **)arg);
            *(char **)arg = s;
        }
        return rc;
    }
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int w_sector_size(sqlite3_file *pf)
{
    return wf(pf)->real->pMethods->xSectorSize(wf(pf)->real);
}

static int w_device_characteristics(sqlite3_file *pf)
{
    return wf(pf)->real->pMethods->xDeviceCharacteristics(wf(pf)->real);
}

static int w_shm_map(sqlite3_file *pf, int pg, int pgsz, int extend, void volatile **pp)
{
    sqlite3_file *r = wf(pf)->real;
    return r->pMethods->iVersion >= 2 ? r->pMethods->xShmMap(r, pg, pgsz, extend, pp)
                                      : SQLITE_IOERR_SHMMAP;
}

static int w_shm_lock(sqlite3_file *pf, int offset, int n, int flags)
{
    sqlite3_file *r = wf(pf)->real;
    return r->pMethods->iVersion >= 2 ? r->pMethods->xShmLock(r, offset, n, flags)
                                      : SQLITE_IOERR_SHMLOCK;
}

/* w_shm_barrier: SQLite publishes a new wal-index header in two copies with this
 * barrier between them (walIndexWriteHdr), and readers take the header only when the
 * copies match: the database file's WAL writes out what it holds first. With
 * synchronous=FULL its xSync did so already (nothing held here); this covers a commit
 * without a sync. */
static void w_shm_barrier(sqlite3_file *pf)
{
    struct wfile *f = wf(pf);
    sqlite3_file *r = f->real;
    if (f->link && f->link->len)
        (void)flush(f->link); /* a failure keeps the bytes; its xSync reports it */
    if (r->pMethods->iVersion >= 2)
        r->pMethods->xShmBarrier(r);
}

static int w_shm_unmap(sqlite3_file *pf, int del)
{
    sqlite3_file *r = wf(pf)->real;
    return r->pMethods->iVersion >= 2 ? r->pMethods->xShmUnmap(r, del) : SQLITE_OK;
}

static int w_fetch(sqlite3_file *pf, sqlite3_int64 off, int amt, void **pp)
{
    struct wfile *f = wf(pf);
    int rc = flush(f); /* a mapped read must see what was written */
    *pp = NULL;
    if (rc != SQLITE_OK)
        return rc;
    return f->real->pMethods->iVersion >= 3 ? f->real->pMethods->xFetch(f->real, off, amt, pp)
                                            : SQLITE_OK;
}

static int w_unfetch(sqlite3_file *pf, sqlite3_int64 off, void *p)
{
    sqlite3_file *r = wf(pf)->real;
    return r->pMethods->iVersion >= 3 ? r->pMethods->xUnfetch(r, off, p) : SQLITE_OK;
}

#define METHODS(version)                                                                   \
    {                                                                                      \
        .iVersion = version, .xClose = w_close, .xRead = w_read, .xWrite = w_write,        \
        .xTruncate = w_truncate, .xSync = w_sync, .xFileSize = w_file_size,                \
        .xLock = w_lock, .xUnlock = w_unlock, .xCheckReservedLock = w_check_reserved,      \
        .xFileControl = w_file_control, .xSectorSize = w_sector_size,                      \
        .xDeviceCharacteristics = w_device_characteristics, .xShmMap = w_shm_map,          \
        .xShmLock = w_shm_lock, .xShmBarrier = w_shm_barrier, .xShmUnmap = w_shm_unmap,    \
        .xFetch = w_fetch, .xUnfetch = w_unfetch,                                          \
    }
/* one table per version the default VFS's files may have: SQLite reads iVersion to know
 * whether the file can do shared memory (WAL) and mapped reads */
static const sqlite3_io_methods methods_v[3] = {METHODS(1), METHODS(2), METHODS(3)};

static bool ours(const sqlite3_file *pf)
{
    return pf && (pf->pMethods == &methods_v[0] || pf->pMethods == &methods_v[1] ||
                  pf->pMethods == &methods_v[2]);
}

static int w_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *pf, int flags,
                  int *out_flags)
{
    struct wfile *f = wf(pf);
    int rc;
    (void)v;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods) /* a failed xOpen may still need its xClose */
            f->real->pMethods->xClose(f->real);
        return rc; /* pMethods stays NULL: SQLite calls no xClose of ours */
    }
    {
        int ver = f->real->pMethods->iVersion;
        f->base.pMethods = &methods_v[ver < 1 ? 0 : ver > 3 ? 2 : ver - 1];
    }
    /* gather a WAL's writes only where a write cannot damage the bytes around it on a
     * power loss (SQLite pads and syncs mid-frame otherwise), and link it to its
     * database file, whose barrier (w_shm_barrier) comes before readers see new frames */
    if ((flags & SQLITE_OPEN_WAL) && name &&
        (f->real->pMethods->xDeviceCharacteristics(f->real) &
         SQLITE_IOCAP_POWERSAFE_OVERWRITE)) {
        sqlite3_file *db = sqlite3_database_file_object(name);
        if (ours(db)) {
            f->wal = true;
            f->link = wf(db);
            wf(db)->link = f;
        }
    }
    return SQLITE_OK;
}

/* the rest of the VFS: the default one's, called with it */
static int v_delete(sqlite3_vfs *v, const char *name, int sync)
{
    (void)v;
    return base_vfs->xDelete(base_vfs, name, sync);
}
static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return base_vfs->xAccess(base_vfs, name, flags, out);
}
static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return base_vfs->xFullPathname(base_vfs, name, n, out);
}
static void *v_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return base_vfs->xDlOpen(base_vfs, name);
}
static void v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
    (void)v;
    base_vfs->xDlError(base_vfs, n, msg);
}
static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return base_vfs->xDlSym(base_vfs, h, sym);
}
static void v_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    base_vfs->xDlClose(base_vfs, h);
}
static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return base_vfs->xRandomness(base_vfs, n, out);
}
static int v_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return base_vfs->xSleep(base_vfs, us);
}
static int v_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return base_vfs->xCurrentTime(base_vfs, out);
}
static int v_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return base_vfs->xGetLastError ? base_vfs->xGetLastError(base_vfs, n, out) : 0;
}
static int v_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return base_vfs->xCurrentTimeInt64(base_vfs, out);
}

int sqlite_walbuf_install(void)
{
    sqlite3_vfs *d;
    if (base_vfs)
        return SQLITE_OK;
    d = sqlite3_vfs_find(NULL);
    if (!d || d->iVersion < 2 || !d->xCurrentTimeInt64)
        return SQLITE_ERROR;
    base_vfs = d;
    vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct wfile) + d->szOsFile,
        .mxPathname = d->mxPathname,
        .zName = "herald-walbuf",
        .xOpen = w_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_pathname,
        .xDlOpen = v_dlopen,
        .xDlError = v_dlerror,
        .xDlSym = v_dlsym,
        .xDlClose = v_dlclose,
        .xRandomness = v_randomness,
        .xSleep = v_sleep,
        .xCurrentTime = v_current_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_current_time_int64,
    };
    int rc = sqlite3_vfs_register(&vfs, 1);
    if (rc != SQLITE_OK)
        base_vfs = NULL;
    return rc;
}

void sqlite_walbuf_stats(uint64_t *buffered, uint64_t *flushed)
{
    if (buffered)
        *buffered = atomic_load_explicit(&n_buffered, memory_order_relaxed);
    if (flushed)
        *flushed = atomic_load_explicit(&n_flushed, memory_order_relaxed);
}
