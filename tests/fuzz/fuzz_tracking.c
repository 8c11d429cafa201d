/* fuzz_tracking.c: libFuzzer target for open/click tracking (src/engine/tracking.h), the
 * code behind the unauthenticated /t/o and /t/c routes. The input, as a token, goes
 * through tracking_token_check (a token it accepts must carry an http(s) link for a
 * click, none for an open, and re-signing what it decoded must give the same token);
 * as HTML it goes through tracking_rewrite_html, whose every click link must check back
 * to an http(s) link. */
#include "fuzz_common.h"
#include "../../src/engine/tracking.h"
#include "../../src/util/json.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t KEY[32] = {7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1,
                                7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1};
#define BASE "https://t.test"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_use_xalloc();
    return 0;
}

static void check_links(const char *html)
{
    static char link[TRACK_LINK_MAX + 1], id[256], tok[TRACK_TOKEN_MAX + 1];
    char kind;
    for (const char *p = strstr(html, BASE "/t/c/"); p; p = strstr(p + 1, BASE "/t/c/")) {
        const char *t = p + strlen(BASE "/t/c/");
        size_t n = strcspn(t, "\"' >");
        CHECK(n <= TRACK_TOKEN_MAX);
        memcpy(tok, t, n);
        tok[n] = 0;
        CHECK(tracking_token_check(KEY, str_c(tok), &kind, id, sizeof id, link, sizeof link) == 0);
        CHECK(kind == 'c' && strcmp(id, "1-msg") == 0);
        CHECK(strncasecmp(link, "http://", 7) == 0 || strncasecmp(link, "https://", 8) == 0);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static char link[TRACK_LINK_MAX + 1], id[256];
    char kind = 0, *s = malloc(size + 1), *out;
    memcpy(s, data, size);
    s[size] = '\0';
    if (tracking_token_check(KEY, (struct str){s, size}, &kind, id, sizeof id, link, sizeof link) == 0) {
        char *again = tracking_token(KEY, kind, id, link);
        CHECK(kind == 'c' ? link[0] != 0 : kind == 'o' && link[0] == 0);
        CHECK(strcmp(again, s) == 0); /* one spelling per token */
        free(again);
    }
    out = tracking_rewrite_html(s, KEY, BASE, "1-msg", size % 2 == 0, true);
    if (out) {
        if (!strstr(s, "/t/c/")) /* else the input's own text would be checked as ours */
            check_links(out);
        free(out);
    }
    free(s);
    return 0;
}
