/* keys.c: creating API keys and the first-start bootstrap of the workspace. A key is
 * "<kind prefix>_" + 40 random base62 characters; the store keeps its SHA-256 and its
 * first 12 characters (the prefix operators use to list and revoke it). A write key has
 * a scope (enum key_scope): the bootstrap write key of a new workspace is a client key,
 * since the first write key is the one pasted into a browser snippet. */
#include "api.h"

#include "../util/crypto.h"
#include "../util/log.h"

#include <stdio.h>
#include <string.h>

#define KEY_RANDOM_CHARS 40

struct create_arg {
    int kind;
    int scope;
    const char *name;
    int64_t now_ms;
    char *out;     /* the new key, cap >= API_KEY_MAX */
    char *out2;    /* bootstrap: the write key */
    bool bootstrap;
    bool created;
};

static void key_make(int kind, int scope, const char *name, int64_t now_ms, char *key,
                     struct key_rec *k)
{
    char rnd[KEY_RANDOM_CHARS + 1];
    crypto_token(rnd, KEY_RANDOM_CHARS);
    snprintf(key, API_KEY_MAX, "%s_%s", kind == KEY_WRITE ? "wk" : "hk", rnd);
    memset(k, 0, sizeof *k);
    k->kind = kind;
    k->scope = scope;
    str_copy(k->prefix, sizeof k->prefix, (struct str){key, API_KEY_PREFIX_LEN});
    str_copy(k->name, sizeof k->name, str_c(name ? name : ""));
    crypto_sha256(key, strlen(key), k->hash);
    k->created_ms = now_ms;
}

static int create_tx(struct store_txn *t, void *varg)
{
    struct create_arg *a = varg;
    struct key_rec k;
    int rc;
    if (a->bootstrap) {
        char ts[32];
        snprintf(ts, sizeof ts, "%lld", (long long)a->now_ms);
        /* the meta row decides: of several nodes starting at once on one empty store,
         * only the one whose insert lands creates (and prints) keys */
        rc = store_meta_add(t, "workspace.created_ms", str_c(ts));
        if (rc == HR_CONFLICT)
            return HR_OK;
        if (rc < 0)
            return rc;
        key_make(KEY_ADMIN, KEY_SCOPE_SERVER, "bootstrap admin", a->now_ms, a->out, &k);
        if ((rc = store_key_insert(t, &k)) < 0)
            return rc;
        key_make(KEY_WRITE, KEY_SCOPE_CLIENT, "bootstrap write", a->now_ms, a->out2, &k);
        if ((rc = store_key_insert(t, &k)) < 0)
            return rc;
        a->created = true;
        return HR_OK;
    }
    key_make(a->kind, a->scope, a->name, a->now_ms, a->out, &k);
    rc = store_key_insert(t, &k);
    if (rc == HR_OK)
        a->created = true;
    return rc;
}

int api_key_create(struct store *s, int kind, int scope, const char *name, int64_t now_ms,
                   char *out, struct herr *err)
{
    struct create_arg a = {.kind = kind, .scope = scope, .name = name, .now_ms = now_ms,
                           .out = out};
    if (kind != KEY_ADMIN && kind != KEY_WRITE)
        return herr_set(err, HR_INVAL, "key kind must be admin or write");
    if (scope != KEY_SCOPE_SERVER && scope != KEY_SCOPE_CLIENT)
        return herr_set(err, HR_INVAL, "key scope must be client or server");
    if (kind == KEY_ADMIN && scope != KEY_SCOPE_SERVER)
        return herr_set(err, HR_INVAL, "only a write key has a client scope");
    return store_write(s, create_tx, &a, err);
}

int api_bootstrap(struct store *s, int64_t now_ms, char *admin_key, char *write_key,
                  bool *created, struct herr *err)
{
    struct create_arg a = {.now_ms = now_ms, .out = admin_key, .out2 = write_key, .bootstrap = true};
    struct arena *ar = arena_new(256);
    struct str v;
    int rc = store_meta_get(s, "workspace.created_ms", ar, &v);
    arena_free(ar);
    *created = false;
    if (rc == HR_OK)
        return HR_OK; /* already bootstrapped: nothing to print */
    if (rc != HR_NOTFOUND)
        return herr_set(err, rc, "could not read the workspace: %s", hr_rc_str(rc));
    rc = store_write(s, create_tx, &a, err);
    *created = rc == HR_OK && a.created;
    return rc;
}
