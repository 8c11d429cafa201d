/* walbuf.h: a VFS layer over SQLite's default one that gathers a commit's writes to the
 * WAL file into one write.
 *
 * Why: SQLite writes each WAL frame as two writes (its 24-byte header, then the page), so
 * a commit of the flow bench's ~160 dirty pages made ~325 pwrite() calls, each a system
 * call into ext4 with its locking, on the writer thread that bounds every write path;
 * now ~6.
 *
 * How: for a file opened as a WAL (SQLITE_OPEN_WAL), writes that continue the previous
 * one (or land inside what is held) go into a buffer; the buffer goes to the file in one
 * write before anything that must see it: xSync (SQLite syncs the WAL at every commit
 * under synchronous=FULL, before it publishes the new frames in the wal-index, which is
 * what other connections read by), a read of the held range, xTruncate, xFileSize,
 * xClose, a write that does not continue it, and when it is full; in writes of at most
 * 120 KiB, since the unix VFS takes no more per call. So nothing reads the
 * file while it lacks what was written, and a commit's frames are on disk, synced,
 * before the commit returns, as without the layer. The database file's xShmBarrier,
 * which SQLite calls between the two copies of a new wal-index header, writes out what
 * its WAL holds too (a commit without a sync). Only a WAL on a device that reports
 * SQLITE_IOCAP_POWERSAFE_OVERWRITE is buffered (elsewhere SQLite pads and syncs inside
 * a frame). A failed write of the buffer is the failed result of the call that forced it
 * (SQLITE_FULL from a full disk, as before, now at xSync); the bytes not written stay held
 * for the next write. Every other file, and every other call, goes to the default VFS. */
#ifndef HERALD_STORE_SQLITE_WALBUF_H
#define HERALD_STORE_SQLITE_WALBUF_H

#include <stdint.h>

#define WALBUF_CAP ((size_t)4 << 20) /* bytes held at most before they are written */

/* sqlite_walbuf_install: register the layer as SQLite's default VFS. Call once per
 * process, after sqlite3_initialize and before any connection. Returns 0 (also when it
 * is installed already), or an SQLite error code (the default VFS then stays). */
int sqlite_walbuf_install(void);

/* sqlite_walbuf_stats: writes to WAL files taken into buffers, and writes of buffers to
 * the files, since the process started (for tests and metrics). Either may be NULL. */
void sqlite_walbuf_stats(uint64_t *buffered, uint64_t *flushed);

#endif
