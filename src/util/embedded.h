/* embedded.h: files compiled into the binary at build time. scripts/embed.sh generates
 * the table (build/<variant>/gen/embedded.c, from docs/openapi.yaml and, once it exists,
 * every file under web/); it is linked into libherald.a. Read-only after load, so any
 * thread may read it. */
#ifndef HERALD_UTIL_EMBEDDED_H
#define HERALD_UTIL_EMBEDDED_H

#include <stddef.h>

struct embedded_file {
    const char *path;          /* as given to embed.sh, e.g. "docs/openapi.yaml" */
    const unsigned char *data; /* len bytes, then a NUL that len does not count */
    size_t len;
    const char *content_type;  /* from the file's extension */
};

/* embedded_files: every embedded file, in the order given to embed.sh, ended by an
 * entry whose path is NULL. */
extern const struct embedded_file embedded_files[];

/* embedded_find: the embedded file whose path is exactly `path`, or NULL (also for a
 * NULL path). The result points into the static table. Any thread. */
const struct embedded_file *embedded_find(const char *path);

#endif
