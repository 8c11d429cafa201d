/* json.c: UTF-8 and depth validation before cJSON, and accessors. */
#include "json.h"

#include "xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void json_use_xalloc(void)
{
    /* cJSON then grows printed text by allocate + copy (it keeps realloc only for the
     * plain malloc/free pair); buffers double, so the cost stays linear */
    cJSON_Hooks h = {.malloc_fn = xmalloc, .free_fn = free};
    cJSON_InitHooks(&h);
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        unsigned cp = c & (0x3f >> need);
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* scan_ok: scan brackets outside strings; returns false when depth exceeds max, and
 * sets *nul when a string holds the escape \u0000 (cJSON would end the C string there,
 * silently cutting an id or a name short). */
static bool scan_ok(const char *p, size_t n, int max, bool *nul)
{
    int depth = 0;
    bool in_str = false;
    *nul = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\') {
                if (i + 5 < n && p[i + 1] == 'u' && memcmp(p + i + 2, "0000", 4) == 0)
                    *nul = true;
                i++;
            } else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if (c == '}' || c == ']')
            depth--;
    }
    return true;
}

int json_parse_bounded(const char *p, size_t n, int max_depth, cJSON **out, struct herr *err)
{
    const char *end = NULL;
    cJSON *v;
    bool nul;
    *out = NULL;
    if (n == 0)
        return herr_set(err, HR_INVAL, "request body is empty; expected JSON");
    if (!utf8_valid(p, n))
        return herr_set(err, HR_INVAL, "request body is not valid UTF-8");
    if (memchr(p, '\0', n))
        return herr_set(err, HR_INVAL, "request body contains a NUL byte");
    if (!scan_ok(p, n, max_depth, &nul))
        return herr_set(err, HR_INVAL, "JSON nesting is deeper than %d levels", max_depth);
    if (nul)
        return herr_set(err, HR_INVAL,
                        "a JSON string holds \\u0000 (NUL), which herald does not accept");
    v = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    if (!v) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = (at && at >= p && at <= p + n) ? (size_t)(at - p) : 0;
        return herr_set(err, HR_INVAL, "malformed JSON near byte %zu", off);
    }
    /* trailing garbage other than whitespace is an error */
    if (end) {
        while (end < p + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (end < p + n) {
            cJSON_Delete(v);
            return herr_set(err, HR_INVAL, "malformed JSON: trailing data at byte %zu",
                            (size_t)(end - p));
        }
    }
    *out = v;
    return HR_OK;
}

const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool json_i64(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble > 9.2e18 ||
        v->valuedouble < -9.2e18)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

bool json_bool(const cJSON *obj, const char *key, bool dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsTrue(v))
        return true;
    if (cJSON_IsFalse(v))
        return false;
    return dflt;
}

cJSON *json_obj(const cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsObject(v) ? v : NULL;
}

cJSON *json_arr(const cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsArray(v) ? v : NULL;
}

char *json_print(const cJSON *v)
{
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    return s ? s : xstrdup("null");
}
