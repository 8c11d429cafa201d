/* migrations.h: herald's SQLite schema as numbered, append-only migrations, applied
 * at open and recorded in schema_migrations(version, applied_ms). */
#ifndef HERALD_STORE_SQLITE_MIGRATIONS_H
#define HERALD_STORE_SQLITE_MIGRATIONS_H

#include "../../util/rc.h"

#include <sqlite3.h>
#include <stdint.h>

/* sqlite_schema_latest: the highest migration version this build knows. Pure. */
int sqlite_schema_latest(void);

/* sqlite_migrate: apply, inside one BEGIN IMMEDIATE transaction on db, every migration
 * not yet recorded in schema_migrations, recording each with applied_ms = now_ms.
 * Applies nothing twice; re-running on an up-to-date database changes nothing.
 * Returns 0, HR_INVAL (the database is newer than this build, or the migration table
 * is malformed) or a mapped SQLite error (HR_BUSY, HR_FULL, HR_IO), with a message in
 * err; on failure nothing is applied. db must not be inside a transaction. Call from
 * the thread that owns db. */
int sqlite_migrate(sqlite3 *db, int64_t now_ms, struct herr *err) HR_MUSTCHECK;
/* sqlite_migrate_to: the same, up to version upto only (tests build an older schema). */
int sqlite_migrate_to(sqlite3 *db, int64_t now_ms, int upto, struct herr *err) HR_MUSTCHECK;

#endif
