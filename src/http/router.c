/* router.c: route-table matching and method names for the HTTP server. Pure functions
 * over the caller's table: a path is split into segments, literal segments compare
 * byte for byte (undecoded), ":name" captures one non-empty segment and a final "*"
 * captures the rest; only the chosen route's captures are percent-decoded (into the
 * request arena). Thread-safe: no shared state. */
#include "http.h"

#include "../util/json.h"

#include <string.h>

static const struct {
    int m;
    const char *name;
} methods[] = {
    {HTTP_GET, "GET"},     {HTTP_HEAD, "HEAD"},     {HTTP_POST, "POST"},       {HTTP_PUT, "PUT"},
    {HTTP_PATCH, "PATCH"}, {HTTP_DELETE, "DELETE"}, {HTTP_OPTIONS, "OPTIONS"},
};

int http_method_parse(const char *m)
{
    if (!m)
        return 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0) /* methods are case-sensitive (RFC 9110) */
            return methods[i].m;
    return 0;
}

const char *http_method_name(int m)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].m == m)
            return methods[i].name;
    return "UNKNOWN";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* pct_decode: decode %XX escapes of in into the arena ('+' stays '+': this is a path).
 * Returns 0, or HR_INVAL for a truncated or non-hex escape, an escaped NUL, or a result
 * that is not UTF-8 (ids go into JSON answers and the store as text). */
static int pct_decode(struct arena *a, struct str in, struct str *out)
{
    int rc = HR_OK;
    char *p = arena_alloc(a, in.len + 1);
    size_t o = 0;

    for (size_t i = 0; i < in.len; i++) {
        if (in.p[i] != '%') {
            p[o++] = in.p[i];
            continue;
        }
        int hi = i + 2 < in.len ? hexval(in.p[i + 1]) : -1;
        int lo = i + 2 < in.len ? hexval(in.p[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            rc = HR_INVAL;
            goto out;
        }
        p[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    p[o] = '\0';
    if (!utf8_valid(p, o)) {
        rc = HR_INVAL;
        goto out;
    }
    *out = (struct str){p, o};
out:
    return rc;
}

/* shape: does path fit pattern? Fills caps with the raw captured slices. */
static bool shape(const char *pat, struct str path, struct str *caps, int *ncaps)
{
    size_t i = 0;
    const char *q = pat;
    int n = 0;

    if (!q || q[0] != '/')
        return false;
    while (*q) {
        const char *qe;
        size_t ie;
        if (*q != '/' || i >= path.len || path.p[i] != '/')
            return false;
        q++;
        i++;
        qe = strchr(q, '/');
        if (!qe)
            qe = q + strlen(q);
        if (qe - q == 1 && q[0] == '*' && *qe == '\0') {
            if (i >= path.len || n >= HTTP_MAX_PARAMS)
                return false;
            caps[n++] = (struct str){path.p + i, path.len - i};
            i = path.len;
            q = qe;
            break;
        }
        ie = i;
        while (ie < path.len && path.p[ie] != '/')
            ie++;
        if (q[0] == ':') {
            if (ie == i || n >= HTTP_MAX_PARAMS)
                return false;
            caps[n++] = (struct str){path.p + i, ie - i};
        } else if ((size_t)(qe - q) != ie - i || memcmp(q, path.p + i, ie - i) != 0) {
            return false;
        }
        q = qe;
        i = ie;
    }
    *ncaps = n;
    return i == path.len;
}

/* HEAD is served by GET routes (without the body). */
static bool method_fits(int route_m, int m)
{
    return route_m == m || (m == HTTP_HEAD && route_m == HTTP_GET);
}

/* http_route_match: see http.h. A HEAD request matches a GET route (an explicit HEAD
 * route listed earlier wins); the first route in table order whose pattern and method
 * fit is returned. When that route's captures hold an invalid %-escape (or %00), or
 * decode to bytes that are not UTF-8, returns NULL with *allowed = -1 (answer 400).
 * Any thread. */
const struct http_route *http_route_match(const struct http_route *routes, int method,
                                          struct str path, struct arena *a,
                                          struct str *params, int *nparams, int *allowed)
{
    const struct http_route *found = NULL;
    struct str caps[HTTP_MAX_PARAMS];
    int ncaps = 0, mask = 0;
    const char *qm;

    *nparams = 0;
    *allowed = 0;
    if (path.len && (qm = memchr(path.p, '?', path.len)) != NULL)
        path.len = (size_t)(qm - path.p);
    if (path.len > 1 && path.p[path.len - 1] == '/')
        path.len--;
    for (const struct http_route *r = routes; r && r->pattern; r++) {
        int nc = 0;
        struct str c[HTTP_MAX_PARAMS];
        if (!shape(r->pattern, path, c, &nc))
            continue;
        if (method_fits(r->method, method)) {
            found = r;
            ncaps = nc;
            memcpy(caps, c, sizeof c);
            break;
        }
        mask |= r->method;
    }
    if (!found) {
        *allowed = mask;
        goto out;
    }
    for (int k = 0; k < ncaps; k++) {
        if (pct_decode(a, caps[k], &params[k]) < 0) {
            *allowed = -1;
            found = NULL;
            goto out;
        }
    }
    *nparams = ncaps;
out:
    return found;
}
