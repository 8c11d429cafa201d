/* openapi.c: GET /openapi.json, herald's OpenAPI 3.1 description. The document is
 * docs/openapi.yaml, written in JSON syntax (valid YAML 1.2) so that the same bytes,
 * embedded at build time (src/util/embedded.h), are served as JSON. */
#include "api.h"

#include "../util/embedded.h"

#define OPENAPI_FILE "docs/openapi.yaml"

void api_openapi(void *vctx, struct http_req *req, struct http_resp *resp)
{
    const struct embedded_file *f = embedded_find(OPENAPI_FILE);
    if (!f) {
        http_resp_error(resp, 500, "api_error", "the OpenAPI document was not embedded");
        return;
    }
    http_resp_raw(resp, 200, "application/json", (struct str){(const char *)f->data, f->len});
}
