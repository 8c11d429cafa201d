/* test_util.c: the leaf helpers: str, buf, arena, clock parsing, crypto, json bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/util/arena.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/clock.h"
#include "../../../src/util/crypto.h"
#include "../../../src/util/id.h"
#include "../../../src/util/json.h"
#include "../../../src/util/str.h"
#include "../../../src/util/xalloc.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_str_to_i64(void **state)
{
    int64_t v = 0;
    assert_int_equal(str_to_i64(STR_LIT("42"), &v), HR_OK);
    assert_int_equal(v, 42);
    assert_int_equal(str_to_i64(STR_LIT("-9223372036854775808"), &v), HR_OK);
    assert_true(v == INT64_MIN);
    assert_int_equal(str_to_i64(STR_LIT("9223372036854775808"), &v), HR_INVAL);
    assert_int_equal(str_to_i64(STR_LIT("12a"), &v), HR_INVAL);
    assert_int_equal(str_to_i64(STR_LIT(""), &v), HR_INVAL);
    assert_int_equal(str_to_i64(STR_LIT("-"), &v), HR_INVAL);
}

static void test_buf_cap(void **state)
{
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append_c(&b, "12345678"), HR_OK);
    assert_int_equal(buf_putc(&b, 'x'), HR_TOOBIG);
    assert_string_equal(buf_cstr(&b), "12345678"); /* unchanged by the failed append */
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "%d-%s", 7, "ab"), HR_OK);
    assert_string_equal(buf_cstr(&b), "7-ab");
    assert_int_equal(buf_printf(&b, "%0300d", 1), HR_TOOBIG);
    buf_cleanup(&b);
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_printf(&b, "%0300d", 1), HR_OK); /* the long path of buf_printf */
    assert_int_equal(b.len, 300);
    buf_cleanup(&b);
}

static int cleanups;
static void count_cleanup(void *p) { cleanups += *(int *)p; }

static void test_arena(void **state)
{
    struct arena *a = arena_new(256);
    int one = 1;
    char *big;
    for (int i = 0; i < 1000; i++) {
        char *p = arena_sprintf(a, "item-%d", i);
        assert_non_null(p);
        assert_int_equal(((uintptr_t)p) % 16, 0);
    }
    big = arena_alloc(a, 100000);
    memset(big, 1, 100000);
    arena_defer(a, count_cleanup, &one);
    arena_reset(a);
    assert_int_equal(cleanups, 1);
    assert_int_equal(arena_used(a), 0);
    assert_string_equal(arena_strndup(a, "abcdef", 3), "abc");
    arena_defer(a, count_cleanup, &one);
    arena_free(a);
    assert_int_equal(cleanups, 2);
}

static void test_time_parse(void **state)
{
    int64_t ms;
    char out[32];
    assert_int_equal(time_parse_iso("2015-12-12T19:11:01.169Z", 24, &ms), HR_OK);
    time_fmt_iso(ms, out, sizeof out);
    assert_string_equal(out, "2015-12-12T19:11:01.169Z");
    assert_int_equal(time_parse_iso("1970-01-01T00:00:00Z", 20, &ms), HR_OK);
    assert_true(ms == 0);
    assert_int_equal(time_parse_iso("2024-10-11T06:37:25+07:00", 25, &ms), HR_OK);
    time_fmt_iso(ms, out, sizeof out);
    assert_string_equal(out, "2024-10-10T23:37:25.000Z");
    assert_int_equal(time_parse_iso("2025-01-01", 10, &ms), HR_OK);
    assert_int_equal(time_parse_iso("2015-2-02T00:30:08.276Z", 23, &ms), HR_INVAL);
    assert_int_equal(time_parse_iso("2015-02-30T00:00:00Z", 20, &ms), HR_INVAL);
    assert_int_equal(time_parse_iso("2015-02-02T00:00:00Zjunk", 24, &ms), HR_INVAL);
}

/* crypto_sha256 (a fetched algorithm, a context per thread): FIPS 180-2's vectors, the
 * same answers again on the reused context, and from other threads, each with its own */
static void *sha_thread(void *arg)
{
    uint8_t d[32];
    char hex[65];
    for (int i = 0; i < 1000; i++) {
        crypto_sha256("abc", 3, d);
        crypto_hex(d, 32, hex);
        if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
            return arg;
    }
    return NULL;
}

static void test_sha256_vectors(void **state)
{
    static const char *const msg2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    uint8_t d[32];
    char hex[65];
    pthread_t th[4];
    crypto_sha256("", 0, d);
    crypto_hex(d, 32, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    crypto_sha256(msg2, strlen(msg2), d);
    crypto_hex(d, 32, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sha_thread, (void *)1), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        assert_int_equal(pthread_join(th[i], &bad), 0);
        assert_null(bad);
    }
    assert_null(sha_thread((void *)1));
}

/* time_fmt_iso writes four-digit years digit by digit: the same bytes as the printf form,
 * across the range (negative instants included) and at its ends; other years and short
 * buffers still go through snprintf */
static void test_time_fmt_iso_digits(void **state)
{
    const int64_t edge[] = {0, -1, 999, -999, -1000, 1, 86399999, TIME_ISO_MIN_MS,
                            TIME_ISO_MAX_MS, TIME_ISO_MIN_MS - 1, TIME_ISO_MAX_MS + 1,
                            1796655788607LL, 951782400000LL /* 2000-02-29 */};
    const size_t nedge = sizeof edge / sizeof edge[0];
    uint64_t x = 88172645463325252ULL;
    char out[96], want[96];
    for (size_t i = 0; i < nedge + 20000; i++) {
        int64_t ms;
        if (i < nedge) {
            ms = edge[i];
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ms = TIME_ISO_MIN_MS + (int64_t)(x % (uint64_t)(TIME_ISO_MAX_MS - TIME_ISO_MIN_MS));
        }
        struct tm tm;
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        gmtime_r(&secs, &tm);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ms - (int64_t)secs * 1000));
        time_fmt_iso(ms, out, sizeof out);
        if (strcmp(out, want) != 0)
            fail_msg("ms=%lld: %s, want %s", (long long)ms, out, want);
    }
    time_fmt_iso(0, out, 10); /* too short for the whole form: cut as snprintf cuts */
    assert_string_equal(out, "1970-01-0");
}

/* lenient: fmt(parse(in)) == want, or HR_INVAL when want is NULL */
static void lenient(const char *in, const char *want)
{
    int64_t ms = 0;
    char out[32];
    int rc = time_parse_lenient(in, strlen(in), &ms);
    if (!want) {
        if (rc != HR_INVAL)
            fail_msg("%s: parsed, expected HR_INVAL", in);
        return;
    }
    if (rc != HR_OK)
        fail_msg("%s: HR_INVAL, expected %s", in, want);
    time_fmt_iso(ms, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_time_parse_lenient(void **state)
{
    int64_t ms;
    /* everything strict ISO takes */
    lenient("2015-12-12T19:11:01.169Z", "2015-12-12T19:11:01.169Z");
    lenient("2024-10-11T06:37:25+07:00", "2024-10-10T23:37:25.000Z");
    lenient("2025-01-01", "2025-01-01T00:00:00.000Z");
    /* the loose forms: Segment's own batch sample, one-digit fields, '/', compact, zones */
    lenient("2015-2-02T00:30:12.984Z", "2015-02-02T00:30:12.984Z");
    lenient("2015-2-2T0:30:5Z", "2015-02-02T00:30:05.000Z");
    lenient("2015/02/02 00:30", "2015-02-02T00:30:00.000Z");
    lenient("20150202", "2015-02-02T00:00:00.000Z");
    lenient(" 2015-02-02T00:30:12.9 UTC ", "2015-02-02T00:30:12.900Z");
    lenient("2015-02-02T00:30:12 +0100", "2015-02-01T23:30:12.000Z");
    /* epoch numbers as text: 10 digits seconds, 13 digits milliseconds */
    lenient("1420000000", "2014-12-31T04:26:40.000Z");
    lenient("1420000000000", "2014-12-31T04:26:40.000Z");
    lenient("1420000000.5", "2014-12-31T04:26:40.500Z");
    /* not dates */
    lenient("not-a-date", NULL);
    lenient("", NULL);
    lenient("2015-13-01", NULL);
    lenient("2015-2-30", NULL);
    lenient("2015-02-02T24:00", NULL);
    lenient("2015-02-02T00:30Zjunk", NULL);
    lenient("2015-02-02T00:30 EST", NULL);
    lenient("12345678", NULL);
    lenient("99999999999999999999", NULL);
    /* numbers: below 31557600000 seconds, else milliseconds; outside years 0..9999 refused */
    assert_int_equal(time_from_epoch(1420000000, &ms), HR_OK);
    assert_true(ms == 1420000000000LL);
    assert_int_equal(time_from_epoch(1420000000000.0, &ms), HR_OK);
    assert_true(ms == 1420000000000LL);
    assert_int_equal(time_from_epoch(31557599999.0, &ms), HR_OK);
    assert_true(ms == 31557599999000LL);
    assert_int_equal(time_from_epoch(31557600000.0, &ms), HR_OK);
    assert_true(ms == 31557600000LL);
    assert_int_equal(time_from_epoch(3e14, &ms), HR_INVAL); /* year 11476 */
    assert_int_equal(time_from_epoch(1e300, &ms), HR_INVAL);
}

static void test_crypto(void **state)
{
    uint8_t mac[20], out[64];
    char hex[41];
    size_t n;
    /* RFC 2202 test case 2 */
    crypto_hmac_sha1(STR_LIT("Jefe"), "what do ya want for nothing?", 28, mac);
    crypto_hex(mac, 20, hex);
    assert_string_equal(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    assert_true(crypto_ct_equal("abc", 3, "abc", 3));
    assert_false(crypto_ct_equal("abc", 3, "abd", 3));
    assert_false(crypto_ct_equal("abc", 3, "abcd", 4));
    assert_int_equal(crypto_b64_decode(STR_LIT("d2tfMTIzOg=="), out, sizeof out, &n), HR_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(out, "wk_123:", 7);
    assert_int_equal(crypto_b64_decode(STR_LIT("d2t*"), out, sizeof out, &n), HR_INVAL);
    char tok[41];
    crypto_token(tok, 40);
    assert_int_equal(strlen(tok), 40);
    char id[ID_LEN + 1];
    id_new(0x65f240a0LL * 1000, id);
    assert_int_equal(strlen(id), ID_LEN);
    assert_memory_equal(id, "1-65f240a0-", 11);
}

/* A derived id is a pure function of (seed, time), of id_new's shape, with the time to
 * the millisecond given: ids derived from one parent sort beside it. */
static void test_id_derive(void **state)
{
    (void)state;
    char a[ID_LEN + 1], b[ID_LEN + 1], c[ID_LEN + 1];
    uint8_t dig[32];
    char hex[65];
    const int64_t t = 0x65f240a0LL * 1000 + 999;
    id_derive("run:x:1", t, a);
    id_derive("run:x:1", t, b);
    id_derive("run:x:2", t, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), ID_LEN);
    crypto_sha256("run:x:1", 7, dig);
    crypto_hex(dig, 11, hex);
    assert_memory_equal(a, "1-65f240a0-3e7", 14);
    assert_memory_equal(a + 14, hex, 21);
    /* the time round-trips, and orders ids: 1 ms later sorts after */
    assert_int_equal(id_time_ms(a), t);
    id_derive("run:x:1", t + 1, b);
    assert_memory_equal(b, "1-65f240a1-000", 14);
    assert_true(strcmp(a, b) < 0);
    id_new(42 * 1000 + 7, c);
    assert_memory_equal(c, "1-0000002a-007", 14);
    assert_int_equal(id_time_ms(c), 42007);
    /* an id from before (24 random or hashed digits): its second only */
    assert_int_equal(id_time_ms("1-65f240a0-fff4de9bcf9f22c0c8374de9"), 0x65f240a0LL * 1000);
    assert_int_equal(id_time_ms("1-65f240a0-x"), 0x65f240a0LL * 1000);
    assert_int_equal(id_time_ms("1-65f240a0"), 0);
    assert_int_equal(id_time_ms("1-65f2"), 0);
    assert_int_equal(id_time_ms("1-65F240A0-x"), 0);
    assert_int_equal(id_time_ms("2-65f240a0-x"), 0);
    assert_int_equal(id_time_ms("req_1"), 0);
    assert_int_equal(id_time_ms(""), 0);
    assert_int_equal(id_time_ms(NULL), 0);
    id_derive("s", -5, c);
    assert_memory_equal(c, "1-00000000-000", 14);
    /* the derivation from before ids carried their time: all 32 digits hashed */
    crypto_hex(dig, 16, hex);
    id_derive_hashed("run:x:1", c);
    assert_memory_equal(c, "1-", 2);
    assert_memory_equal(c + 2, hex, 8);
    assert_int_equal(c[10], '-');
    assert_memory_equal(c + 11, hex + 8, 24);
    assert_int_equal(strlen(c), ID_LEN);
}

static void test_json_bounded(void **state)
{
    cJSON *v = NULL;
    struct herr err;
    char *deep;
    assert_int_equal(json_parse_bounded("{\"a\":[1,2]}", 11, 64, &v, &err), HR_OK);
    cJSON_Delete(v);
    assert_int_equal(json_parse_bounded("{\"a\":", 5, 64, &v, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "malformed JSON"));
    assert_int_equal(json_parse_bounded("\"\xc3\x28\"", 4, 64, &v, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "UTF-8"));
    assert_int_equal(json_parse_bounded("{} x", 4, 64, &v, &err), HR_INVAL);
    deep = malloc(20001);
    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    deep[20000] = 0;
    assert_int_equal(json_parse_bounded(deep, 20000, 64, &v, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "deeper"));
    free(deep);
    /* brackets inside strings do not count as depth */
    assert_int_equal(json_parse_bounded("[\"[[[[[[\"]", 10, 2, &v, &err), HR_OK);
    cJSON_Delete(v);
    /* \u0000 would cut the C string short: refused; an escaped backslash before
     * "u0000" is plain text */
    assert_int_equal(json_parse_bounded("{\"id\":\"a\\u0000b\"}", 17, 64, &v, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "u0000"));
    assert_int_equal(json_parse_bounded("{\"id\":\"a\\\\u0000b\"}", 18, 64, &v, &err), HR_OK);
    assert_string_equal(json_str(v, "id"), "a\\u0000b");
    cJSON_Delete(v);
    assert_true(utf8_valid("\xe2\x82\xac", 3));
    assert_false(utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(utf8_valid("\xc0\xaf", 2));     /* overlong */
}

/* json_use_xalloc: cJSON's allocator is xmalloc, so exhaustion aborts with xalloc's message
 * (before, cJSON_malloc returned NULL and the child exited 0). Run in a child process. */
static void test_json_xalloc_hooks(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* the sanitizer's allocator reports a huge request itself */
#else
    int fds[2], status = 0;
    char out[256] = "";
    ssize_t n;
    pid_t pid;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        void *p;
        dup2(fds[1], 2);
        json_use_xalloc();
        p = cJSON_malloc((size_t)1 << 62);
        cJSON_free(p);
        _exit(0);
    }
    close(fds[1]);
    n = read(fds[0], out, sizeof out - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    assert_non_null(strstr(out, "out of memory allocating"));
#endif
}

/* test_json_duplicate_members: json_drop_duplicate_members keeps the first of repeated
 * member names, at every level and in large objects (the sorted path), so a check and a
 * merge read one value */
static void test_json_duplicate_members(void **state)
{
    (void)state;
    cJSON *v = NULL;
    struct herr err;
    const char *doc = "{\"traits\":{\"webhook\":0,\"email\":\"a@x\",\"webhook\":{\"url\":\"u\"},"
                      "\"email\":\"evil@x\"},\"n\":[{\"k\":1,\"k\":2}]}";
    assert_int_equal(json_parse_bounded(doc, strlen(doc), 64, &v, &err), HR_OK);
    json_drop_duplicate_members(v);
    char *out = cJSON_PrintUnformatted(v);
    assert_string_equal(out, "{\"traits\":{\"webhook\":0,\"email\":\"a@x\"},\"n\":[{\"k\":1}]}");
    free(out);
    cJSON_Delete(v);

    /* 40 members, every name three times, interleaved: 40 kept, each its first value */
    char big[4096];
    size_t len = 0;
    len += (size_t)snprintf(big + len, sizeof big - len, "{");
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < 40; i++)
            len += (size_t)snprintf(big + len, sizeof big - len, "%s\"m%d\":%d",
                                    r == 0 && i == 0 ? "" : ",", i, r);
    len += (size_t)snprintf(big + len, sizeof big - len, "}");
    assert_int_equal(json_parse_bounded(big, len, 64, &v, &err), HR_OK);
    assert_int_equal(cJSON_GetArraySize(v), 120); /* parsing keeps them (RFC 6902 A.13) */
    json_drop_duplicate_members(v);
    assert_int_equal(cJSON_GetArraySize(v), 40);
    for (cJSON *it = v->child; it; it = it->next)
        assert_int_equal(it->valueint, 0);
    cJSON_Delete(v);
}

/* json_print writes what cJSON_PrintUnformatted writes: hand-picked numbers at the
 * edges of its fast paths (2^31, 2^53, 15 and 17 significant digits, decimals at 1e-4
 * and 1e15), every byte in strings, random decimals of 1-17 digits, and random trees of
 * them */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static double rnd_decimal(void)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                                 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
    uint64_t r = rnd();
    double m = (double)(rnd() % (uint64_t)p10[1 + r % 17]);
    return m / p10[(r >> 8) % 18] * ((r >> 16) & 1 ? -1 : 1);
}

static double rnd_number(void)
{
    static const double picks[] = {0.0, -0.0, 1, -1, 2147483647.0, 2147483648.0, -2147483648.0,
                                   -2147483649.0, 9007199254740991.0, 9007199254740992.0,
                                   -9007199254740992.0, 9007199254740994.0, 1e15, 1e16, 1e17,
                                   1765000000123.0, 1765000000123456.0, 0.1, 1.5, 1.0 / 3,
                                   -1e-300, 1e300, 123456789012345678.0, 5e-324, 1e21, 1e22,
                                   49.99, -19.99, 0.0001, 0.00012, 0.0000999, 1e-5,
                                   99999999999999.9, 999999999999999.9, 0.1 + 0.2,
                                   123456789.123456, 12345678901234.5, 1.000000000000001};
    uint64_t r = rnd();
    switch (r % 5) {
    case 4: /* up to 17 digits, up to 17 of them after the point */
        return rnd_decimal();
    case 0:
        return picks[(r >> 8) % (sizeof picks / sizeof picks[0])];
    case 1:
        return (double)(int64_t)(rnd() >> (r >> 8) % 64) * ((r >> 16) & 1 ? -1 : 1);
    case 2: {
        uint64_t bits = rnd();
        double d;
        memcpy(&d, &bits, sizeof d);
        return d; /* any double, NaN and infinities included */
    }
    default:
        return (double)(int64_t)(rnd() % 2000001) / 1000.0 - 1000.0;
    }
}

static char *rnd_text(char *b, size_t cap)
{
    size_t n = rnd() % (cap - 1);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(rnd() % 255 + 1);
    b[n] = 0;
    return b;
}

static cJSON *rnd_tree(int depth)
{
    char t[24];
    int kind = (int)(rnd() % (depth > 0 ? 7 : 5));
    switch (kind) {
    case 0: return cJSON_CreateNull();
    case 1: return cJSON_CreateBool(rnd() & 1);
    case 2:
    case 3: return cJSON_CreateNumber(rnd_number());
    case 4: return cJSON_CreateString(rnd_text(t, sizeof t));
    case 5: {
        cJSON *a = cJSON_CreateArray();
        for (int n = (int)(rnd() % 4); n > 0; n--)
            cJSON_AddItemToArray(a, rnd_tree(depth - 1));
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        for (int n = (int)(rnd() % 4); n > 0; n--)
            cJSON_AddItemToObject(o, rnd_text(t, sizeof t), rnd_tree(depth - 1));
        return o;
    }
    }
}

static void expect_same_print(const cJSON *v)
{
    char *ours = json_print(v), *theirs = cJSON_PrintUnformatted(v);
    assert_non_null(theirs);
    assert_string_equal(ours, theirs);
    free(ours);
    cJSON_free(theirs);
}

static void test_json_print_as_cjson(void **state)
{
    static const char *docs[] = {
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\\u0001\\n\\\"\\\\/\u00e9\",\"e\":true,\"f\":false}",
        "[]", "{}", "[[],{}]", "\"\"", "0", "-0", "1e400", "1765000000123", "1765000000123456",
        "9007199254740993", "0.30000000000000004", "-12.5e-7", "[1,-1,2147483648,-2147483649]",
    };
    cJSON *raw;
    char bytes[256];
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cJSON *v = cJSON_Parse(docs[i]);
        assert_non_null(v);
        expect_same_print(v);
        cJSON_Delete(v);
    }
    for (int i = 1; i < 256; i++) /* every byte a string can hold */
        bytes[i - 1] = (char)i;
    bytes[255] = 0;
    raw = cJSON_CreateString(bytes);
    expect_same_print(raw);
    cJSON_Delete(raw);
    raw = cJSON_CreateRaw("{\"pre\":1}"); /* raw text is copied as it is */
    expect_same_print(raw);
    cJSON_Delete(raw);
    for (int i = 0; i < 200000; i++) {
        cJSON *v = cJSON_CreateNumber(rnd_decimal());
        expect_same_print(v);
        cJSON_Delete(v);
    }
    for (int i = 0; i < 20000; i++) {
        cJSON *v = rnd_tree(4);
        expect_same_print(v);
        cJSON_Delete(v);
    }
    {
        char *np = json_print(NULL);
        assert_string_equal(np, "null");
        free(np);
    }
}

/* crypto_random: small requests come from a per-thread pool refilled by RAND_bytes. Across
 * several refills no two 16-byte draws are equal, no draw is all zeros (the pool wipes what
 * it hands out: a bug reusing bytes would repeat or zero them), every byte value occurs,
 * odd-sized draws in between shift the pool's offset, and a request larger than the
 * pool's limit is filled at both ends. */
static int cmp16(const void *a, const void *b) { return memcmp(a, b, 16); }

static void test_crypto_random_pool(void **state)
{
    (void)state;
    enum { N = 1000 }; /* 16,000 bytes: ~16 refills of the 1 KiB pool */
    static unsigned char draws[N][16];
    unsigned char zero[16] = {0}, big[300], odd[7];
    int seen[256] = {0}, distinct = 0;
    for (int i = 0; i < N; i++) {
        crypto_random(draws[i], 16);
        assert_memory_not_equal(draws[i], zero, 16);
        for (int k = 0; k < 16; k++)
            seen[draws[i][k]] = 1;
        if (i % 97 == 0) {
            crypto_random(odd, sizeof odd); /* misaligns the pool's offset */
        }
    }
    qsort(draws, N, 16, cmp16);
    for (int i = 1; i < N; i++)
        assert_memory_not_equal(draws[i - 1], draws[i], 16);
    for (int v = 0; v < 256; v++)
        distinct += seen[v];
    assert_int_equal(distinct, 256);
    memset(big, 0, sizeof big);
    crypto_random(big, sizeof big);
    assert_memory_not_equal(big, zero, 16);
    assert_memory_not_equal(big + sizeof big - 16, zero, 16);
}

/* xalloc_allocated: the count follows a block's malloc and free (the release unit tests
 * link jemalloc, as herald does; 8 MiB is past what its thread caches keep; under a
 * sanitizer the allocator cannot say) */
static void test_xalloc_allocated(void **state)
{
    (void)state;
    enum { BIG = 8 << 20 };
    uint64_t before = 0;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    assert_int_equal(xalloc_allocated(&before), -1);
    assert_int_equal(before, 0);
#else
    uint64_t held = 0, after = 0;
    assert_int_equal(xalloc_allocated(&before), 0);
    assert_true(before > 0);
    char *p = xmalloc(BIG);
    memset(p, 1, BIG);
    assert_int_equal(xalloc_allocated(&held), 0);
    assert_true(held >= before + BIG);
    free(p);
    assert_int_equal(xalloc_allocated(&after), 0);
    assert_true(after + BIG <= held);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_to_i64), cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_arena),      cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_parse_lenient),
        cmocka_unit_test(test_time_fmt_iso_digits),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_crypto),     cmocka_unit_test(test_id_derive),
        cmocka_unit_test(test_json_bounded),
        cmocka_unit_test(test_json_xalloc_hooks),
        cmocka_unit_test(test_json_duplicate_members),
        cmocka_unit_test(test_json_print_as_cjson),
        cmocka_unit_test(test_crypto_random_pool),
        cmocka_unit_test(test_xalloc_allocated),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
