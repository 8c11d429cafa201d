/* test_resources.c: the pure parts of the template, brand and provider resources
 * (ids, payload checks, version names, equality, secret masks, keeping masked secrets,
 * provider order) and the two engine helpers over a real SQLite store:
 * engine_template_published() and engine_channel_providers() (with its cache), which
 * read the documents these resources write. */
#include "../../../src/api/templates.h"
#include "../../../src/engine/defcache.h"
#include "../../../src/engine/send.h"
#include "../../../src/store/store.h"
#include "../../../src/util/arena.h"
#include "../../../src/util/clock.h"
#include "../../../src/util/json.h"
#include "../../../src/util/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* J: parse a test literal the way outside input is parsed. */
static cJSON *J(const char *s)
{
    cJSON *v = NULL;
    struct herr err;
    assert_int_equal(json_parse_bounded(s, strlen(s), JSON_MAX_DEPTH_DEFAULT, &v, &err), HR_OK);
    return v;
}

#define CONTENT "{\"version\":\"2022-01-01\",\"elements\":[{\"type\":\"text\",\"content\":\"Hi {{name}}\"}]}"

/* ---- templates ------------------------------------------------------------------------ */

static void test_ids(void **state)
{
    char id[RESOURCE_ID_NEW_LEN + 1], other[RESOURCE_ID_NEW_LEN + 1];
    char longest[RESOURCE_ID_MAX + 2];
    (void)state;

    assert_true(template_id_valid(STR_LIT("nt_abc")));
    assert_true(template_id_valid(STR_LIT("a.b:c-d_E9")));
    assert_false(template_id_valid(STR_NULL));
    assert_false(template_id_valid(STR_LIT("a b")));
    assert_false(template_id_valid(STR_LIT("a@v001")));
    assert_false(template_id_valid(STR_LIT("a/b")));
    assert_false(template_id_valid(STR_LIT("caf\xc3\xa9")));
    memset(longest, 'x', sizeof longest);
    assert_true(template_id_valid((struct str){longest, RESOURCE_ID_MAX}));
    assert_false(template_id_valid((struct str){longest, RESOURCE_ID_MAX + 1}));

    template_id_new("nt_", id, sizeof id);
    template_id_new("nt_", other, sizeof other);
    assert_int_equal(strlen(id), 29);
    assert_memory_equal(id, "nt_", 3);
    for (size_t i = 3; i < 29; i++)
        assert_true((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9'));
    assert_string_not_equal(id, other);
    assert_true(template_id_valid(str_c(id)));
}

static void test_version_parse(void **state)
{
    (void)state;
    assert_int_equal(template_version_parse("v001"), 1);
    assert_int_equal(template_version_parse("v010"), 10);
    assert_int_equal(template_version_parse("v999"), 999);
    assert_int_equal(template_version_parse("v000"), 0);
    assert_int_equal(template_version_parse("v1"), 0);
    assert_int_equal(template_version_parse("v0001"), 0);
    assert_int_equal(template_version_parse("V001"), 0);
    assert_int_equal(template_version_parse("v0a1"), 0);
    assert_int_equal(template_version_parse("draft"), 0);
    assert_int_equal(template_version_parse(NULL), 0);
}

/* fields_err: template_fields(literal) must fail with rc and a message containing want. */
static void fields_err(const char *lit, int rc, const char *want)
{
    struct herr err;
    cJSON *n = J(lit), *f;
    herr_clear(&err);
    f = template_fields(n, &err);
    if (f)
        fail_msg("accepted: %s", lit);
    assert_int_equal(err.rc, rc);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" lacks \"%s\" for %s", err.msg, want, lit);
    cJSON_Delete(n);
}

static void test_fields(void **state)
{
    struct herr err;
    cJSON *n, *f, *want;
    char *s;
    (void)state;

    n = J("{\"name\":\"Order shipped\",\"content\":" CONTENT ",\"extra\":1}");
    f = template_fields(n, &err);
    assert_non_null(f);
    want = J("{\"name\":\"Order shipped\",\"tags\":[],\"brand\":null,\"subscription\":null,"
             "\"routing\":null,\"content\":" CONTENT "}");
    s = json_print(f);
    if (!cJSON_Compare(f, want, 1))
        fail_msg("normalised to %s", s);
    free(s);
    cJSON_Delete(want);
    cJSON_Delete(f);
    cJSON_Delete(n);

    n = J("{\"name\":\"n\",\"tags\":[\"a\",\"b\"],\"brand\":{\"id\":\"acme\"},"
          "\"subscription\":{\"topic_id\":\"t\"},\"routing\":{\"method\":\"all\",\"channels\":"
          "[\"email\",{\"method\":\"single\",\"channels\":[\"sms\",\"push\"]}]},\"content\":" CONTENT "}");
    f = template_fields(n, &err);
    assert_non_null(f);
    assert_true(template_same(f, n));
    cJSON_Delete(f);
    cJSON_Delete(n);

    n = J("{\"name\":\"n\",\"routing\":{\"strategy_id\":\"rs_1\"},\"content\":" CONTENT "}");
    f = template_fields(n, &err);
    assert_non_null(f);
    cJSON_Delete(f);
    cJSON_Delete(n);

    fields_err("{\"content\":" CONTENT "}", HR_INVAL, "name");
    fields_err("{\"name\":\"\",\"content\":" CONTENT "}", HR_INVAL, "name");
    fields_err("{\"name\":7,\"content\":" CONTENT "}", HR_INVAL, "name");
    fields_err("{\"name\":\"n\"}", HR_INVAL, "content");
    fields_err("{\"name\":\"n\",\"content\":null}", HR_INVAL, "content");
    fields_err("{\"name\":\"n\",\"content\":\"text\"}", HR_INVAL, "content");
    fields_err("{\"name\":\"n\",\"content\":{\"elements\":[{\"type\":\"nope\"}]}}", HR_INVAL,
               "content");
    fields_err("{\"name\":\"n\",\"tags\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\","
               "\"10\"],\"content\":" CONTENT "}",
               HR_INVAL, "tags");
    fields_err("{\"name\":\"n\",\"tags\":[\"0123456789012345678901234567890\"],\"content\":" CONTENT
               "}",
               HR_INVAL, "tag");
    fields_err("{\"name\":\"n\",\"tags\":[1],\"content\":" CONTENT "}", HR_INVAL, "tag");
    fields_err("{\"name\":\"n\",\"brand\":\"acme\",\"content\":" CONTENT "}", HR_INVAL, "brand");
    fields_err("{\"name\":\"n\",\"brand\":{},\"content\":" CONTENT "}", HR_INVAL, "brand");
    fields_err("{\"name\":\"n\",\"subscription\":{\"topic_id\":5},\"content\":" CONTENT "}",
               HR_INVAL, "subscription");
    fields_err("{\"name\":\"n\",\"routing\":{\"method\":\"any\",\"channels\":[]},\"content\":" CONTENT
               "}",
               HR_INVAL, "routing");
    fields_err("{\"name\":\"n\",\"routing\":{\"method\":\"all\",\"channels\":[\"\"]},\"content\":"
               CONTENT "}",
               HR_INVAL, "routing");
    fields_err("{\"name\":\"n\",\"routing\":{\"method\":\"all\",\"channels\":[{\"method\":\"all\","
               "\"channels\":[{\"method\":\"all\",\"channels\":[{\"method\":\"all\",\"channels\":["
               "{\"method\":\"all\",\"channels\":[\"email\"]}]}]}]}]},\"content\":" CONTENT "}",
               HR_INVAL, "deeper");
}

static void test_name_chars(void **state)
{
    /* 256 characters of two bytes each pass; 257 do not */
    char lit[2048];
    struct buf b;
    struct herr err;
    cJSON *n, *f;
    (void)state;
    for (int count = 256; count <= 257; count++) {
        buf_init(&b, sizeof lit);
        assert_int_equal(buf_append_c(&b, "{\"name\":\""), 0);
        for (int i = 0; i < count; i++)
            assert_int_equal(buf_append_c(&b, "\xc3\xa9"), 0);
        assert_int_equal(buf_append_c(&b, "\",\"content\":" CONTENT "}"), 0);
        n = J(buf_cstr(&b));
        f = template_fields(n, &err);
        if (count == 256)
            assert_non_null(f);
        else
            assert_null(f);
        cJSON_Delete(f);
        cJSON_Delete(n);
        buf_cleanup(&b);
    }
}

static void test_same(void **state)
{
    cJSON *a = J("{\"id\":\"x\",\"name\":\"n\",\"tags\":[],\"brand\":null,\"subscription\":null,"
                 "\"routing\":null,\"content\":{\"b\":1,\"a\":[1,2]},\"state\":\"DRAFT\",\"updated\":1}");
    cJSON *b = J("{\"name\":\"n\",\"tags\":[],\"brand\":null,\"subscription\":null,\"routing\":null,"
                 "\"content\":{\"a\":[1,2.0],\"b\":1},\"state\":\"PUBLISHED\",\"updated\":2}");
    cJSON *c = J("{\"name\":\"n\",\"tags\":[\"x\"],\"brand\":null,\"subscription\":null,"
                 "\"routing\":null,\"content\":{\"a\":[1,2],\"b\":1}}");
    cJSON *d = J("{\"name\":\"n\",\"tags\":[],\"brand\":null,\"subscription\":null,\"routing\":null,"
                 "\"content\":{\"a\":[2,1],\"b\":1}}");
    (void)state;
    assert_true(template_same(a, b));
    assert_false(template_same(a, c));
    assert_false(template_same(a, d));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cJSON_Delete(d);
}

/* ---- brands ------------------------------------------------------------------------------- */

static int brand(const char *lit, bool creating, struct herr *err)
{
    cJSON *b = J(lit);
    int rc;
    herr_clear(err);
    rc = brands_check(b, creating, err);
    cJSON_Delete(b);
    return rc;
}

static void test_brands_check(void **state)
{
    struct herr err;
    (void)state;
    assert_int_equal(brand("{\"name\":\"Acme\"}", true, &err), HR_OK);
    assert_int_equal(
        brand("{\"name\":\"Acme\",\"id\":\"acme\",\"settings\":{\"colors\":{\"primary\":\"#fff\","
              "\"secondary\":\"red\"},\"email\":{\"header\":{\"logo\":{\"href\":\"https://a.example/l.png\"}}}},"
              "\"snippets\":{\"items\":[{\"name\":\"sig\",\"value\":\"Bye\"}]}}",
              true, &err),
        HR_OK);
    assert_int_equal(brand("{\"name\":\"Acme\",\"settings\":null,\"snippets\":null}", false, &err),
                     HR_OK);
    assert_int_equal(brand("{\"name\":\"A\",\"settings\":{\"email\":{\"header\":{\"logo\":{\"href\":"
                           "\"HTTP://a.example\"}}}}}",
                           true, &err),
                     HR_OK);
    /* an id in a PUT body is ignored (the path names the brand) */
    assert_int_equal(brand("{\"name\":\"A\",\"id\":\"bad id\"}", false, &err), HR_OK);

    assert_int_equal(brand("{}", true, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "name"));
    assert_int_equal(brand("{\"name\":\"\"}", true, &err), HR_INVAL);
    assert_int_equal(brand("{\"name\":\"A\",\"id\":\"bad id\"}", true, &err), HR_INVAL);
    assert_int_equal(brand("{\"name\":\"A\",\"id\":5}", true, &err), HR_INVAL);
    assert_int_equal(brand("{\"name\":\"A\",\"settings\":[]}", true, &err), HR_INVAL);
    assert_int_equal(brand("{\"name\":\"A\",\"settings\":{\"colors\":{\"primary\":1}}}", true, &err),
                     HR_INVAL);
    assert_non_null(strstr(err.msg, "colors.primary"));
    assert_int_equal(brand("{\"name\":\"A\",\"settings\":{\"colors\":\"red\"}}", true, &err),
                     HR_INVAL);
    assert_int_equal(brand("{\"name\":\"A\",\"settings\":{\"email\":{\"header\":{\"logo\":{\"href\":"
                           "\"javascript:alert(1)\"}}}}}",
                           true, &err),
                     HR_INVAL);
    assert_non_null(strstr(err.msg, "href"));
    assert_int_equal(brand("{\"name\":\"A\",\"settings\":{\"email\":{\"header\":{\"logo\":{\"href\":"
                           "\"https://\"}}}}}",
                           true, &err),
                     HR_INVAL);
    assert_int_equal(brand("{\"name\":\"A\",\"settings\":{\"email\":[]}}", true, &err), HR_INVAL);
    assert_int_equal(brand("{\"name\":\"A\",\"snippets\":{\"items\":{}}}", true, &err), HR_INVAL);
    assert_int_equal(brand("{\"name\":\"A\",\"snippets\":{\"items\":[{\"name\":\"x\"}]}}", true, &err),
                     HR_INVAL);
}

/* ---- providers --------------------------------------------------------------------------- */

static void mask_of(const char *lit, const char *want)
{
    char m[PROVIDERS_MASK_MAX];
    cJSON *v = J(lit);
    providers_mask(v, m);
    assert_string_equal(m, want);
    cJSON_Delete(v);
}

static void test_mask(void **state)
{
    (void)state;
    mask_of("\"supersecret-1234\"", "****1234");
    mask_of("\"12345678\"", "****5678");
    mask_of("\"1234567\"", "****");
    mask_of("\"\"", "****");
    mask_of("42", "****");
    mask_of("{\"a\":\"b\"}", "****");
    /* characters, not bytes: 8 characters of which the last 4 are multi-byte */
    mask_of("\"abcd\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91\"", "****\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91");
    /* 7 characters in 10 bytes: too short */
    mask_of("\"abcd\xc3\xa9\xc3\xa9\xe2\x82\xac\"", "****");
}

static const char *const SECRET_FIELDS[] = {"password", "authentication.token", "missing.x", NULL};

static void test_mask_settings_and_keep(void **state)
{
    cJSON *stored = J("{\"host\":\"h\",\"password\":\"hunter2-hunter2\",\"authentication\":"
                      "{\"mode\":\"bearer\",\"token\":\"tok-abcdefgh\"}}");
    cJSON *shown = cJSON_Duplicate(stored, 1), *edited, *want;
    (void)state;

    providers_mask_settings(shown, SECRET_FIELDS);
    want = J("{\"host\":\"h\",\"password\":\"****ter2\",\"authentication\":{\"mode\":\"bearer\","
             "\"token\":\"****efgh\"}}");
    assert_true(cJSON_Compare(shown, want, 1));
    cJSON_Delete(want);

    /* sent back unchanged: the stored secrets come back */
    edited = cJSON_Duplicate(shown, 1);
    providers_keep_secrets(edited, stored, SECRET_FIELDS);
    assert_true(cJSON_Compare(edited, stored, 1));
    cJSON_Delete(edited);

    /* a new value stays; a mask of something else stays as sent */
    edited = J("{\"password\":\"new-password\",\"authentication\":{\"token\":\"****zzzz\"}}");
    providers_keep_secrets(edited, stored, SECRET_FIELDS);
    want = J("{\"password\":\"new-password\",\"authentication\":{\"token\":\"****zzzz\"}}");
    assert_true(cJSON_Compare(edited, want, 1));
    cJSON_Delete(want);
    cJSON_Delete(edited);

    /* NULL or empty lists change nothing; non-objects are ignored */
    providers_mask_settings(shown, NULL);
    providers_keep_secrets(shown, NULL, SECRET_FIELDS);
    providers_mask_settings(NULL, SECRET_FIELDS);
    cJSON_Delete(shown);
    cJSON_Delete(stored);
}

static void test_order(void **state)
{
    cJSON *arr = J("[{\"id\":\"e\",\"channel\":\"webhook\",\"priority\":1,\"created\":1},"
                   "{\"id\":\"d\",\"channel\":\"sms\",\"priority\":100,\"created\":1},"
                   "{\"id\":\"c\",\"channel\":\"email\",\"priority\":100,\"created\":2},"
                   "{\"id\":\"b\",\"channel\":\"email\",\"priority\":100,\"created\":1},"
                   "{\"id\":\"a\",\"channel\":\"email\",\"priority\":5,\"created\":9},"
                   "{\"id\":\"f\",\"channel\":\"email\",\"created\":1}]");
    const cJSON *v[6];
    const char *want[] = {"a", "b", "f", "c", "d", "e"};
    int i = 0;
    const cJSON *it;
    (void)state;
    cJSON_ArrayForEach(it, arr) v[i++] = it;
    qsort(v, 6, sizeof v[0], providers_cmp);
    for (i = 0; i < 6; i++)
        assert_string_equal(json_str(v[i], "id"), want[i]);
    cJSON_Delete(arr);
}

/* ---- over a store ------------------------------------------------------------------------ */

struct fx {
    char dir[64];
    char dsn[160];
    struct hclock_manual clock;
    struct store *s;
    struct arena *a;
};

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct herr err;
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/herald-resources-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->dsn, sizeof f->dsn, "sqlite:%s/herald.db", f->dir);
    hclock_manual_init(&f->clock, 1700000000000LL);
    if (store_open(f->dsn, &f->clock.base, &f->s, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return -1;
    }
    f->a = arena_new(4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    arena_free(f->a);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

struct put {
    const char *coll, *id, *body;
};

static int put_tx(struct store_txn *t, void *arg)
{
    const struct put *p = arg;
    return store_doc_put(t, p->coll, str_c(p->id), str_c(p->body), 1, NULL);
}

static void put(struct fx *f, const char *coll, const char *id, const char *body)
{
    struct put p = {coll, id, body};
    struct herr err;
    assert_int_equal(store_write(f->s, put_tx, &p, &err), HR_OK);
}

static void test_template_published(void **state)
{
    struct fx *f = *state;
    cJSON *out = (cJSON *)1;

    assert_int_equal(engine_template_published(f->s, STR_LIT("nt_none"), &out), HR_NOTFOUND);
    assert_null(out);
    assert_int_equal(engine_template_published(f->s, STR_LIT("bad id"), &out), HR_NOTFOUND);

    put(f, TEMPLATES_COLL, "nt_draft", "{\"id\":\"nt_draft\",\"version_count\":0,\"archived\":false}");
    assert_int_equal(engine_template_published(f->s, STR_LIT("nt_draft"), &out), HR_CONFLICT);
    assert_null(out);

    put(f, TEMPLATES_COLL, "nt_pub",
        "{\"id\":\"nt_pub\",\"version_count\":2,\"published_version\":\"v002\",\"archived\":false}");
    put(f, TEMPLATES_VERSIONS_COLL, "nt_pub@v001", "{\"id\":\"nt_pub\",\"version\":\"v001\"}");
    put(f, TEMPLATES_VERSIONS_COLL, "nt_pub@v002", "{\"id\":\"nt_pub\",\"version\":\"v002\"}");
    assert_int_equal(engine_template_published(f->s, STR_LIT("nt_pub"), &out), HR_OK);
    assert_string_equal(json_str(out, "version"), "v002");
    cJSON_Delete(out);

    put(f, TEMPLATES_COLL, "nt_gone",
        "{\"id\":\"nt_gone\",\"version_count\":1,\"published_version\":\"v001\",\"archived\":true}");
    put(f, TEMPLATES_VERSIONS_COLL, "nt_gone@v001", "{\"id\":\"nt_gone\",\"version\":\"v001\"}");
    assert_int_equal(engine_template_published(f->s, STR_LIT("nt_gone"), &out), HR_NOTFOUND);
    assert_null(out);
}

/* engine_template_cached: the published version through the cache; errors are not cached */
static void test_template_cached(void **state)
{
    struct fx *f = *state;
    struct defcache *dc = defcache_new();
    struct engine e = {.store = f->s, .clock = &f->clock.base, .tmpls = dc};
    struct defset *hold = NULL;
    const cJSON *v = NULL;
    char long_id[200];

    assert_int_equal(engine_template_cached(&e, "nt_c", &hold, &v), HR_NOTFOUND);
    assert_null(hold);
    assert_null(v);
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    assert_int_equal(engine_template_cached(&e, long_id, &hold, &v), HR_NOTFOUND);
    put(f, TEMPLATES_COLL, "nt_c", "{\"id\":\"nt_c\",\"version_count\":1,\"archived\":false}");
    put(f, TEMPLATES_VERSIONS_COLL, "nt_c@v001", "{\"id\":\"nt_c\",\"version\":\"v001\"}");
    /* a miss was not cached: the template shows at once */
    assert_int_equal(engine_template_cached(&e, "nt_c", &hold, &v), HR_OK);
    assert_string_equal(json_str(v, "version"), "v001");
    defset_unref(hold);

    /* published again without a word to the cache: v001 until the TTL runs out */
    put(f, TEMPLATES_COLL, "nt_c", "{\"id\":\"nt_c\",\"version_count\":2,\"archived\":false}");
    put(f, TEMPLATES_VERSIONS_COLL, "nt_c@v002", "{\"id\":\"nt_c\",\"version\":\"v002\"}");
    assert_int_equal(engine_template_cached(&e, "nt_c", &hold, &v), HR_OK);
    assert_string_equal(json_str(v, "version"), "v001");
    defset_unref(hold);
    hclock_manual_advance(&f->clock, DEFCACHE_TTL_MS);
    assert_int_equal(engine_template_cached(&e, "nt_c", &hold, &v), HR_OK);
    assert_string_equal(json_str(v, "version"), "v002");
    defset_unref(hold);

    /* archived through this process (notifications.c calls defcache_changed): at once */
    put(f, TEMPLATES_COLL, "nt_c", "{\"id\":\"nt_c\",\"version_count\":2,\"archived\":true}");
    defcache_changed();
    assert_int_equal(engine_template_cached(&e, "nt_c", &hold, &v), HR_NOTFOUND);
    assert_null(v);
    defcache_free(dc);
}

static int default_brand_tx(struct store_txn *t, void *arg)
{
    return store_meta_set(t, "default_brand_id", str_c(arg));
}

/* the name of the brand engine_brand_cached gives for id (NULL: the default), or "-" */
static const char *brand_name(struct engine *e, const char *id, char *out, size_t cap)
{
    struct defset *hold = NULL;
    const cJSON *b = NULL;
    assert_int_equal(engine_brand_cached(e, id, &hold, &b), HR_OK);
    snprintf(out, cap, "%s", b ? json_str(b, "name") : "-");
    defset_unref(hold);
    return out;
}

/* engine_brand_cached: a brand by id or the default one, through the cache */
static void test_brand_cached(void **state)
{
    struct fx *f = *state;
    struct defcache *dc = defcache_new();
    struct engine e = {.store = f->s, .clock = &f->clock.base, .brands = dc};
    struct defset *hold = (struct defset *)1;
    const cJSON *b = (const cJSON *)1;
    struct herr err;
    char n[64];

    /* none yet, and no default: no brand (a miss is cached too) */
    assert_string_equal(brand_name(&e, "acme", n, sizeof n), "-");
    assert_string_equal(brand_name(&e, NULL, n, sizeof n), "-");
    assert_int_equal(engine_brand_cached(&e, "", &hold, &b), HR_NOTFOUND);
    assert_null(hold);
    assert_null(b);

    /* made through this process (brands.c and settings.c call defcache_changed): at once */
    put(f, "brands", "acme", "{\"id\":\"acme\",\"name\":\"Acme\"}");
    put(f, "brands", "zeta", "{\"id\":\"zeta\",\"name\":\"Zeta\"}");
    assert_int_equal(store_write(f->s, default_brand_tx, "zeta", &err), HR_OK);
    defcache_changed();
    assert_string_equal(brand_name(&e, "acme", n, sizeof n), "Acme");
    assert_string_equal(brand_name(&e, NULL, n, sizeof n), "Zeta");

    /* changed without a word to the cache (another node): the old one until the TTL */
    put(f, "brands", "acme", "{\"id\":\"acme\",\"name\":\"Acme 2\"}");
    assert_int_equal(store_write(f->s, default_brand_tx, "acme", &err), HR_OK);
    assert_string_equal(brand_name(&e, "acme", n, sizeof n), "Acme");
    assert_string_equal(brand_name(&e, NULL, n, sizeof n), "Zeta");
    hclock_manual_advance(&f->clock, DEFCACHE_TTL_MS);
    assert_string_equal(brand_name(&e, "acme", n, sizeof n), "Acme 2");
    assert_string_equal(brand_name(&e, NULL, n, sizeof n), "Acme 2");

    /* a default that names no brand, and a record that does not parse: none */
    assert_int_equal(store_write(f->s, default_brand_tx, "gone", &err), HR_OK);
    put(f, "brands", "acme", "{not json");
    defcache_changed();
    assert_string_equal(brand_name(&e, NULL, n, sizeof n), "-");
    assert_string_equal(brand_name(&e, "acme", n, sizeof n), "-");
    defcache_free(dc);
}

/* the ids of channel's providers as engine_channel_providers gives them, comma-joined */
static const char *channel_ids(struct engine *e, const char *channel, char *out, size_t cap)
{
    struct defset *set = NULL;
    size_t len = 0;
    assert_int_equal(engine_channel_providers(e, channel, &set), HR_OK);
    out[0] = 0;
    for (size_t i = 0; i < set->n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", set->ids[i]);
    defset_unref(set);
    return out;
}

static void test_providers_for_channel(void **state)
{
    struct fx *f = *state;
    struct defcache *dc = defcache_new();
    struct engine e = {.store = f->s, .clock = &f->clock.base, .provs = dc};
    struct defset *set = NULL;
    char ids[256];

    assert_string_equal(channel_ids(&e, "email", ids, sizeof ids), "");

    put(f, PROVIDERS_COLL, "pr_b",
        "{\"id\":\"pr_b\",\"provider\":\"smtp\",\"channel\":\"email\",\"priority\":100,"
        "\"enabled\":true,\"created\":5,\"settings\":{\"password\":\"full-secret\"}}");
    put(f, PROVIDERS_COLL, "pr_a",
        "{\"id\":\"pr_a\",\"provider\":\"sendgrid\",\"channel\":\"email\",\"priority\":1,"
        "\"enabled\":true,\"created\":9,\"settings\":{}}");
    put(f, PROVIDERS_COLL, "pr_c",
        "{\"id\":\"pr_c\",\"provider\":\"smtp\",\"channel\":\"email\",\"priority\":100,"
        "\"enabled\":true,\"created\":1,\"settings\":{}}");
    put(f, PROVIDERS_COLL, "pr_d",
        "{\"id\":\"pr_d\",\"provider\":\"smtp\",\"channel\":\"email\",\"priority\":0,"
        "\"enabled\":false,\"created\":1,\"settings\":{}}");
    put(f, PROVIDERS_COLL, "pr_e",
        "{\"id\":\"pr_e\",\"provider\":\"twilio\",\"channel\":\"sms\",\"priority\":0,"
        "\"enabled\":true,\"created\":1,\"settings\":{}}");

    /* "email" was cached empty a moment ago: the puts above did not say a provider
     * changed, so it stays until the TTL runs out */
    assert_string_equal(channel_ids(&e, "email", ids, sizeof ids), "");
    hclock_manual_advance(&f->clock, DEFCACHE_TTL_MS);
    /* by priority, then creation; the disabled one and other channels left out */
    assert_string_equal(channel_ids(&e, "email", ids, sizeof ids), "pr_a,pr_c,pr_b");
    assert_int_equal(engine_channel_providers(&e, "email", &set), HR_OK);
    /* secrets stay in full for the engine */
    assert_string_equal(json_str(json_obj(set->defs[2], "settings"), "password"), "full-secret");
    defset_unref(set);
    assert_string_equal(channel_ids(&e, "sms", ids, sizeof ids), "pr_e");
    assert_string_equal(channel_ids(&e, "push", ids, sizeof ids), "");

    /* a change made through this process (the providers API calls defcache_changed)
     * shows at once */
    put(f, PROVIDERS_COLL, "pr_f",
        "{\"id\":\"pr_f\",\"provider\":\"smtp\",\"channel\":\"email\",\"priority\":0,"
        "\"enabled\":true,\"created\":1,\"settings\":{}}");
    assert_string_equal(channel_ids(&e, "email", ids, sizeof ids), "pr_a,pr_c,pr_b");
    defcache_changed();
    assert_string_equal(channel_ids(&e, "email", ids, sizeof ids), "pr_f,pr_a,pr_c,pr_b");

    /* without a cache (provs NULL) every call reads */
    e.provs = NULL;
    put(f, PROVIDERS_COLL, "pr_g",
        "{\"id\":\"pr_g\",\"provider\":\"twilio\",\"channel\":\"sms\",\"priority\":5,"
        "\"enabled\":true,\"created\":1,\"settings\":{}}");
    assert_string_equal(channel_ids(&e, "sms", ids, sizeof ids), "pr_e,pr_g");
    defcache_free(dc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_version_parse),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_name_chars),
        cmocka_unit_test(test_same),
        cmocka_unit_test(test_brands_check),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_mask_settings_and_keep),
        cmocka_unit_test(test_order),
        cmocka_unit_test_setup_teardown(test_template_published, setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_brand_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_providers_for_channel, setup, teardown),
    };
    log_set_level(LOG_ERROR);
    return cmocka_run_group_tests_name("resources", tests, NULL, NULL);
}
