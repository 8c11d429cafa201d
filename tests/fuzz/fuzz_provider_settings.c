/* fuzz_provider_settings.c: libFuzzer target for provider settings, as POST/PUT
 * /providers hands them over: every provider's own settings parser (validate: SMTP host,
 * port and secure; webhook url, method, headers and authentication; SendGrid and Twilio
 * keys, sids and base_url...), its addressable() check against a profile, the masking of
 * secrets in answers (providers_mask_settings, URL passwords) and the `limits` parser.
 * Input: one JSON value. An object with "settings" (and optionally "profile" and
 * "limits") is taken apart; any other value is fed whole as settings, profile and
 * limits. Contracts: validate answers 0 or HR_INVAL with a message; a masked top-level
 * string secret shows only "****" and at most its last 4 characters. */
#include "fuzz_common.h"
#include "../../src/api/templates.h"
#include "../../src/engine/limit.h"
#include "../../src/providers/http_client.h"
#include "../../src/providers/provider.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dup_keys: o has two members with the same key (cJSON keeps both; lookups see the
 * first), so a masked copy may legitimately differ from what a lookup shows */
static bool dup_keys(const cJSON *o)
{
    for (const cJSON *a = o ? o->child : NULL; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return true;
    return false;
}

static void check_masked(const cJSON *settings, const cJSON *masked, const char *const *secrets)
{
    if (!cJSON_IsObject(settings) || dup_keys(settings) || !secrets)
        return;
    for (size_t i = 0; secrets[i]; i++) {
        const cJSON *v, *m;
        size_t ml;
        if (strchr(secrets[i], '.'))
            continue; /* nested: the dotted path is the provider's business */
        v = cJSON_GetObjectItemCaseSensitive(settings, secrets[i]);
        m = cJSON_GetObjectItemCaseSensitive(masked, secrets[i]);
        if (!v || cJSON_IsNull(v))
            continue;
        CHECK(cJSON_IsString(m));
        CHECK(strncmp(m->valuestring, "****", 4) == 0);
        ml = strlen(m->valuestring);
        CHECK(ml < PROVIDERS_MASK_MAX);
        if (cJSON_IsString(v) && strlen(v->valuestring) > 8)
            CHECK(strcmp(m->valuestring, v->valuestring) != 0);
    }
}

/* cJSON allocates through xalloc here as in herald (src/main.c), so the fuzzer runs the
 * same cJSON code paths (printing without realloc) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_use_xalloc();
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    cJSON *root = NULL;
    const cJSON *settings, *profile, *limits;
    const struct provider_ops *const *all = provider_all();
    struct herr err;

    if (size > 64 * 1024 || json_parse_bounded((const char *)data, size, 32, &root, NULL) < 0)
        return 0;
    settings = cJSON_GetObjectItemCaseSensitive(root, "settings");
    if (cJSON_IsObject(root) && settings) {
        profile = cJSON_GetObjectItemCaseSensitive(root, "profile");
        limits = cJSON_GetObjectItemCaseSensitive(root, "limits");
    } else {
        settings = profile = limits = root;
    }

    for (size_t i = 0; all[i]; i++) {
        const struct provider_ops *p = all[i];
        cJSON *masked;
        int rc;
        herr_clear(&err);
        if (p->validate) {
            rc = p->validate(settings, &err);
            CHECK(rc == 0 || rc == HR_INVAL);
            CHECK(rc == 0 || err.msg[0] != '\0');
            CHECK(memchr(err.msg, '\0', sizeof err.msg) != NULL);
        }
        if (p->addressable)
            (void)p->addressable(profile, settings);
        masked = cJSON_Duplicate(settings, 1);
        providers_mask_settings(masked, p->secret_fields);
        check_masked(settings, masked, p->secret_fields);
        cJSON_Delete(masked);
    }
    {
        struct limit_cfg lc;
        herr_clear(&err);
        if (limit_cfg_parse(limits, &lc, &err) == 0)
            CHECK(lc.concurrency >= 0 && lc.per_second >= 0);
        else
            CHECK(err.msg[0] != '\0');
    }
    if (cJSON_IsObject(settings)) { /* URL settings with a password in them */
        const cJSON *u;
        cJSON_ArrayForEach(u, settings)
        {
            char out[2100];
            if (cJSON_IsString(u) && http_client_url_mask_password(u->valuestring, out, sizeof out))
                CHECK(memchr(out, '\0', sizeof out) != NULL);
        }
    }
    cJSON_Delete(root);
    return 0;
}
