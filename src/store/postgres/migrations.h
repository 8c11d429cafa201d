/* migrations.h: herald's PostgreSQL schema as numbered, append-only migrations (the
 * same version numbers as the SQLite backend's), applied at open and recorded in
 * schema_migrations(version, applied_ms). */
#ifndef HERALD_STORE_POSTGRES_MIGRATIONS_H
#define HERALD_STORE_POSTGRES_MIGRATIONS_H

#include "../../util/rc.h"

#include <libpq-fe.h>
#include <stdint.h>

/* The advisory lock (two-key form) under which migrations run: one node at a time. */
/* Advisory lock keys (two-key form), in classes of herald's own ("hera" + n). */
#define PG_LOCK_CLASS 1751478881     /* (PG_LOCK_CLASS, PG_LOCK_MIGRATE): migrations */
#define PG_LOCK_MIGRATE 1
#define PG_LOCK_CATALOG_FOLD 2       /* (PG_LOCK_CLASS, ...): one catalog fold at a time */
#define PG_LOCK_DOC_CLASS 1751478882 /* (PG_LOCK_DOC_CLASS, hashtext(coll/id)): doc_get_txn */

/* pg_schema_latest: the highest migration version this build knows. Pure. */
int pg_schema_latest(void);

/* pg_migrate: apply, inside one transaction on conn that first takes
 * pg_advisory_xact_lock(PG_LOCK_CLASS, PG_LOCK_MIGRATE), every migration not yet
 * recorded in schema_migrations, recording each with applied_ms = now_ms. Nodes that
 * start at once wait for each other, so each version is applied exactly once.
 * Returns 0, HR_INVAL (the database is newer than this build) or a mapped error
 * (HR_UNAVAIL, HR_FULL, HR_IO) with a message in err; on failure nothing is applied.
 * conn must be idle (not inside a transaction); the calling thread owns it. */
int pg_migrate(PGconn *conn, int64_t now_ms, struct herr *err) HR_MUSTCHECK;

#endif
