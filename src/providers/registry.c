/* registry.c: the table of delivery providers, looked up by name, and the process-wide
 * libcurl setup they share. */
#include "http_client.h"
#include "provider.h"
#include "transport.h"

#include <curl/curl.h>
#include <string.h>

/* Each provider file defines one of these. */
extern const struct provider_ops provider_console;
extern const struct provider_ops provider_smtp;
extern const struct provider_ops provider_webhook;
extern const struct provider_ops provider_twilio;
extern const struct provider_ops provider_sendgrid;
extern const struct provider_ops provider_postmark;
extern const struct provider_ops provider_resend;
extern const struct provider_ops provider_mailgun;
extern const struct provider_ops provider_ses;
extern const struct provider_ops provider_vonage;
extern const struct provider_ops provider_messagebird;

static const struct provider_ops *const g_providers[] = {
    &provider_smtp,    &provider_sendgrid, &provider_twilio, &provider_webhook,
    &provider_console, &provider_postmark, &provider_resend, &provider_mailgun,
    &provider_ses,     &provider_vonage,   &provider_messagebird,
    NULL,
};

const struct provider_ops *provider_find(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; g_providers[i]; i++)
        if (strcmp(g_providers[i]->name, name) == 0)
            return g_providers[i];
    return NULL;
}

const struct provider_ops *const *provider_all(void)
{
    return g_providers;
}

int provider_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? HR_OK : HR_IO;
}

void provider_global_cleanup(void)
{
    transport_default_stop(); /* cancels what is in flight, closes the connections */
    curl_global_cleanup();
}
