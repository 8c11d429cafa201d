/* main.c: the herald process: command line, configuration (flags over environment over
 * defaults), start-up of store, queue and HTTP server, signal handling and an orderly
 * stop. Subcommands: serve, keys, migrate-store, seed. */
#include "admin/migrate.h"
#include "admin/seed.h"
#include "api/api.h"
#include "http/http.h"
#include "engine/automation.h"
#include "engine/defcache.h"
#include "engine/hooks.h"
#include "engine/send.h"
#include "engine/fanout.h"
#include "ingest/ingest.h"
#include "ingest/segment.h"
#include "providers/http_client.h"
#include "providers/provider.h"
#include "render/hbs.h"
#include "queue/builtin.h"
#include "queue/queue.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/str.h"
#include "util/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define EXIT_USAGE 2

struct config {
    const char *listen;
    const char *store;
    int workers;
    int http_threads;          /* --http-threads: accepted, ignored (a thread per connection) */
    int64_t max_body;
    int64_t dedup_window_s;
    int64_t retry_base_ms;
    int64_t max_write_queue;
    int64_t lease_ms;
    int64_t retry_max_ms;
    int64_t provider_timeout_ms;
    int64_t provider_concurrency; /* 0: ENGINE_PROVIDER_CONCURRENCY_DEFAULT */
    const char *log_level;
    const char *egress_allow; /* CIDR list, may be "" */
    const char *cors_allow;   /* origins list, may be "" */
    const char *public_url;   /* base of unsubscribe and tracking links, may be ""
                                 (then: no unsubscribe links; tracking: http://<listen>) */
    const char *unsub_mailto; /* List-Unsubscribe mailto address, may be "" */
    const char *unsub_ttl;    /* unsubscribe links' lifetime in days, "" or "0": none */
    int64_t max_conns;        /* 0: from the open-file limit */
    int64_t max_conns_per_ip; /* 0: no limit */
    int64_t header_timeout_s;
    int64_t body_timeout_s;
    int64_t max_buffered;
};

static const char usage_main[] =
    "herald: a self-hosted notification engine that speaks Courier's API.\n"
    "\n"
    "usage: herald <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve                 run the server (see herald serve --help)\n"
    "  keys create --kind admin|write [--scope client|server] [--name NAME]\n"
    "                        create an API key and print it (shown once); a write key\n"
    "                        is client-scoped (safe in a browser) unless --scope server\n"
    "  keys list             list keys (prefix, kind, scope, name, created, revoked)\n"
    "  keys revoke PREFIX    revoke the key whose first 12 characters are PREFIX\n"
    "  migrate-store --from DSN --to DSN [--batch N] [--force]\n"
    "                        copy a whole installation to another store (e.g. SQLite to\n"
    "                        PostgreSQL): keys, documents, events, catalog, messages with\n"
    "                        their history, pending jobs. Stop the server first (a SQLite\n"
    "                        store a live herald serves is refused). Batches of\n"
    "                        N rows (default 500), one transaction each; a rerun resumes\n"
    "                        after an interruption. Ends with a table of row counts per\n"
    "                        table and exits 0 only when source and target counts match.\n"
    "                        Refuses a target holding another workspace unless --force.\n"
    "  seed [--profiles N] [--messages M] [--batch B]\n"
    "                        for benchmarks (bench/growth.sh): write N realistic profiles\n"
    "                        (u0..u<N-1>) and M SENT messages with their 5 history rows\n"
    "                        each, B messages per transaction (default 5000). Messages\n"
    "                        only into a store that holds none yet. Prints the rows written\n"
    "                        and the time taken. Refused beside a live server (SQLite).\n"
    "\n"
    "Every command takes --store DSN (env HERALD_STORE; default sqlite:./var/herald.db).\n"
    "  herald --help         this text\n";

static const char usage_serve[] =
    "usage: herald serve [options]\n"
    "\n"
    "options (each also read from the environment variable shown; flags win):\n"
    "  --listen ADDR        address to listen on            HERALD_LISTEN       127.0.0.1:8080\n"
    "  --store DSN          sqlite:PATH or postgres://...   HERALD_STORE        sqlite:./var/herald.db\n"
    "  --workers N          job worker threads              HERALD_WORKERS      4\n"
    "  --http-threads N     ignored (a thread per connection) HERALD_HTTP_THREADS\n"
    "  --max-body BYTES     largest request body (413 above) HERALD_MAX_BODY    6291456\n"
    "  --log-level LEVEL    debug|info|warn|error           HERALD_LOG_LEVEL    info\n"
    "  --dedup-window SECS  Segment messageId dedup window  HERALD_DEDUP_WINDOW 86400\n"
    "  --retry-base-ms MS   first delivery retry delay      HERALD_RETRY_BASE_MS 5000\n"
    "  --retry-max-ms MS    longest delivery retry delay    HERALD_RETRY_MAX_MS 3600000\n"
    "  --provider-timeout-ms MS  one provider call (1000..600000)\n"
    "                                                       HERALD_PROVIDER_TIMEOUT_MS 10000\n"
    "  --provider-concurrency N  calls in flight per provider on this node when the\n"
    "                       provider sets no limits.concurrency (1..10000)\n"
    "                                                       HERALD_PROVIDER_CONCURRENCY 1000\n"
    "  --max-write-queue N  waiting writes before 429       HERALD_MAX_WRITE_QUEUE 8192\n"
    "  --lease-ms MS        job lease length (1000..3600000) HERALD_LEASE_MS    60000\n"
    "                       a job whose node dies runs again once its lease ends\n"
    "  --max-conns N        open connections in all (64..1000000)\n"
    "                                                       HERALD_MAX_CONNS    nofile/2, <= 16384\n"
    "                       the open-file limit is raised to its hard limit at start\n"
    "  --max-conns-per-ip N open connections per IPv4 address or IPv6 /64; 0: no\n"
    "                       limit (behind a reverse proxy every client is the proxy)\n"
    "                                                       HERALD_MAX_CONNS_PER_IP 256\n"
    "  --header-timeout SECS  request headers must be complete this long after the\n"
    "                       connection opens or its previous answer; also the idle\n"
    "                       keep-alive limit (1..3600)      HERALD_HEADER_TIMEOUT 10\n"
    "  --body-timeout SECS  a request body may take this long plus 1 s per 1024\n"
    "                       bytes received (1..3600)        HERALD_BODY_TIMEOUT 20\n"
    "  --max-buffered BYTES request bodies held in memory, all requests together (one\n"
    "                       address: 1/16 of it, at least 6 MiB); 503 + Retry-After\n"
    "                       above it                        HERALD_MAX_BUFFERED 268435456\n"
    "  --cors-allow ORIGINS comma-separated origins (https://app.example.com) whose\n"
    "                       pages may call the admin API; \"*\": any. Same-origin pages\n"
    "                       always may; /v1/* takes any origin (write keys are public)\n"
    "                                                       HERALD_CORS_ALLOW   (none)\n"
    "  --public-url URL     how recipients reach this server (https://herald.example.com):\n"
    "                       emails of a topic that is not REQUIRED carry a one-click\n"
    "                       List-Unsubscribe link to URL/u/<token> (none without it);\n"
    "                       the base of open pixels and click links of templates with\n"
    "                       tracking on (without it: http://LISTEN)\n"
    "                                                       HERALD_PUBLIC_URL   (none)\n"
    "  --unsubscribe-mailto ADDR  also a mailto: in List-Unsubscribe\n"
    "                                                       HERALD_UNSUBSCRIBE_MAILTO (none)\n"
    "  --unsubscribe-ttl-days N  unsubscribe links expire after N days (0..3650)\n"
    "                                                       HERALD_UNSUBSCRIBE_TTL_DAYS 0 (never)\n"
    "  --egress-allow CIDRS comma-separated blocks that webhook and fetch-data targets\n"
    "                       may reach although not public   HERALD_EGRESS_ALLOW (none)\n"
    "                       e.g. 127.0.0.0/8,::1/128 or 10.20.0.0/16; without it, those\n"
    "                       targets are refused on loopback, private, link-local, CGNAT,\n"
    "                       multicast and reserved addresses\n"
    "\n"
    "On the first start with a new store, herald creates the workspace and prints an\n"
    "admin API key and a Segment write key once, as HERALD_ADMIN_KEY=... and\n"
    "HERALD_WRITE_KEY=... lines on stdout. Only their hashes are stored.\n"
    "SIGTERM or SIGINT stops accepting, finishes requests in flight, gives back job\n"
    "leases and exits 0.\n";

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? v : dflt;
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v;
    if (str_to_i64(str_c(s), &v) < 0 || v < lo || v > hi)
        return HR_INVAL;
    *out = v;
    return HR_OK;
}

static void config_defaults(struct config *c)
{
    c->listen = env_or("HERALD_LISTEN", "127.0.0.1:8080");
    c->store = env_or("HERALD_STORE", "sqlite:./var/herald.db");
    c->log_level = env_or("HERALD_LOG_LEVEL", "info");
    c->egress_allow = env_or("HERALD_EGRESS_ALLOW", "");
    c->cors_allow = env_or("HERALD_CORS_ALLOW", "");
    c->public_url = env_or("HERALD_PUBLIC_URL", "");
    c->unsub_mailto = env_or("HERALD_UNSUBSCRIBE_MAILTO", "");
    c->unsub_ttl = env_or("HERALD_UNSUBSCRIBE_TTL_DAYS", "");
    c->max_conns = 0;
    c->max_conns_per_ip = 256;
    c->header_timeout_s = 10;
    c->body_timeout_s = 20;
    c->max_buffered = 256LL << 20;
    c->workers = 4;
    c->http_threads = 64;
    c->max_body = 6 * 1024 * 1024;
    c->dedup_window_s = 86400;
    c->retry_base_ms = 5000;
    c->max_write_queue = 0;
    c->lease_ms = 60000;
    c->retry_max_ms = 3600000;
    c->provider_timeout_ms = 10000;
    c->provider_concurrency = 0;
}

/* The connection guard's numeric settings: flag, environment variable, range. */
static const struct {
    const char *flag, *env;
    int64_t lo, hi;
} net_opts[] = {
    {"--max-conns", "HERALD_MAX_CONNS", 64, 1000000},
    {"--max-conns-per-ip", "HERALD_MAX_CONNS_PER_IP", 0, 1000000},
    {"--header-timeout", "HERALD_HEADER_TIMEOUT", 1, 3600},
    {"--body-timeout", "HERALD_BODY_TIMEOUT", 1, 3600},
    {"--max-buffered", "HERALD_MAX_BUFFERED", 1LL << 20, 1LL << 40},
};

/* net_field: the config field of net_opts[i]. */
static int64_t *net_field(struct config *c, size_t i)
{
    int64_t *f[] = {&c->max_conns, &c->max_conns_per_ip, &c->header_timeout_s,
                    &c->body_timeout_s, &c->max_buffered};
    return f[i];
}

/* config_numbers: numeric settings from the environment, then validated. */
static int config_env_numbers(struct config *c)
{
    int64_t v;
    const char *e;
    if ((e = getenv("HERALD_WORKERS")) && e[0]) {
        if (parse_int(e, 1, 256, &v) < 0)
            return fprintf(stderr, "herald: HERALD_WORKERS must be 1..256\n"), HR_INVAL;
        c->workers = (int)v;
    }
    if ((e = getenv("HERALD_HTTP_THREADS")) && e[0]) {
        if (parse_int(e, 1, 1024, &v) < 0)
            return fprintf(stderr, "herald: HERALD_HTTP_THREADS must be 1..1024\n"), HR_INVAL;
        c->http_threads = (int)v;
    }
    if ((e = getenv("HERALD_MAX_BODY")) && e[0]) {
        if (parse_int(e, 1024, 1LL << 30, &v) < 0)
            return fprintf(stderr, "herald: HERALD_MAX_BODY must be 1024..1073741824\n"),
                   HR_INVAL;
        c->max_body = v;
    }
    if ((e = getenv("HERALD_MAX_WRITE_QUEUE")) && e[0]) {
        if (parse_int(e, 1, 1000000, &v) < 0)
            return fprintf(stderr, "herald: HERALD_MAX_WRITE_QUEUE must be 1..1000000\n"),
                   HR_INVAL;
        c->max_write_queue = v;
    }
    if ((e = getenv("HERALD_RETRY_BASE_MS")) && e[0]) {
        if (parse_int(e, 10, 3600000, &v) < 0)
            return fprintf(stderr, "herald: HERALD_RETRY_BASE_MS must be 10..3600000\n"),
                   HR_INVAL;
        c->retry_base_ms = v;
    }
    if ((e = getenv("HERALD_RETRY_MAX_MS")) && e[0]) {
        if (parse_int(e, 10, 86400000, &v) < 0)
            return fprintf(stderr, "herald: HERALD_RETRY_MAX_MS must be 10..86400000\n"),
                   HR_INVAL;
        c->retry_max_ms = v;
    }
    if ((e = getenv("HERALD_PROVIDER_TIMEOUT_MS")) && e[0]) {
        if (parse_int(e, 1000, 600000, &v) < 0)
            return fprintf(stderr, "herald: HERALD_PROVIDER_TIMEOUT_MS must be 1000..600000\n"),
                   HR_INVAL;
        c->provider_timeout_ms = v;
    }
    if ((e = getenv("HERALD_PROVIDER_CONCURRENCY")) && e[0]) {
        if (parse_int(e, 1, LIMIT_CONCURRENCY_MAX, &v) < 0)
            return fprintf(stderr, "herald: HERALD_PROVIDER_CONCURRENCY must be 1..%d\n",
                           LIMIT_CONCURRENCY_MAX),
                   HR_INVAL;
        c->provider_concurrency = v;
    }
    if ((e = getenv("HERALD_LEASE_MS")) && e[0]) {
        if (parse_int(e, 1000, 3600000, &v) < 0)
            return fprintf(stderr, "herald: HERALD_LEASE_MS must be 1000..3600000\n"), HR_INVAL;
        c->lease_ms = v;
    }
    for (size_t i = 0; i < sizeof net_opts / sizeof net_opts[0]; i++) {
        if ((e = getenv(net_opts[i].env)) && e[0]) {
            if (parse_int(e, net_opts[i].lo, net_opts[i].hi, &v) < 0)
                return fprintf(stderr, "herald: %s must be %lld..%lld\n", net_opts[i].env,
                               (long long)net_opts[i].lo, (long long)net_opts[i].hi),
                       HR_INVAL;
            *net_field(c, i) = v;
        }
    }
    if ((e = getenv("HERALD_DEDUP_WINDOW")) && e[0]) {
        if (parse_int(e, 0, 366LL * 86400, &v) < 0)
            return fprintf(stderr, "herald: HERALD_DEDUP_WINDOW must be 0..31622400 seconds\n"),
                   HR_INVAL;
        c->dedup_window_s = v;
    }
    return HR_OK;
}

/* take_opt: match "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i. */
static int take_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "herald: %s needs a value\n", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

/* open_store: claim: this command must not run beside a live herald on the store
 * (serve; seed and migrate-store, whose long bulk transactions and half-copied state a
 * live server must not see); keys runs beside one (short, ordinary transactions). */
static int open_store(const char *dsn, bool claim, struct store **s)
{
    struct herr err;
    herr_clear(&err);
    if ((claim ? store_open_claimed : store_open)(dsn, hclock_system(), s, &err) < 0) {
        /* only the scheme: a postgres:// DSN may carry a password */
        fprintf(stderr, "herald: cannot open the %.*s store: %s\n", (int)strcspn(dsn, ":"), dsn,
                err.msg);
        return HR_IO;
    }
    return HR_OK;
}

/* ---- serve ------------------------------------------------------------------- */

struct expire_arg {
    int64_t now, n;
};

/* unpark_on_release: limit_on_release's hook: the queue (arg) runs a job parked for the
 * slot that came free. */
static void unpark_on_release(void *arg, uint64_t key)
{
    queue_unpark(arg, key);
}

static int expire_tx(struct store_txn *t, void *varg)
{
    struct expire_arg *a = varg;
    int rc = store_job_expire_leases(t, a->now, &a->n);
    return rc == HR_UNAVAIL ? HR_OK : rc;
}

/* raise_nofile: the open-file soft limit up to the hard limit: every connection is a
 * descriptor, and the HTTP server sizes its connection cap from this limit. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            LOG_W("server.nofile", "soft=%llu hard=%llu msg=\"cannot raise the open-file limit\"",
                  (unsigned long long)was, (unsigned long long)rl.rlim_max);
    }
}

/* unsub_opts_check: --public-url is an http(s) URL and --unsubscribe-mailto an address,
 * both without spaces, quotes, <> or control characters (they go into a mail header);
 * --unsubscribe-ttl-days is 0..3650. -1 with a message on stderr otherwise. */
static int unsub_opts_check(const struct config *c, int64_t *ttl_days)
{
    const char *vals[2] = {c->public_url, c->unsub_mailto};
    *ttl_days = 0;
    for (int i = 0; i < 2; i++)
        for (const char *p = vals[i]; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("<>\"\\,", *p))
                return fprintf(stderr, "herald: %s has a character a mail header cannot carry\n",
                               i ? "--unsubscribe-mailto" : "--public-url"),
                       -1;
    if (c->public_url[0] && strncmp(c->public_url, "https://", 8) != 0 &&
        strncmp(c->public_url, "http://", 7) != 0)
        return fprintf(stderr, "herald: --public-url must start with https:// or http://\n"), -1;
    if (strlen(c->public_url) > 200)
        return fprintf(stderr, "herald: --public-url is longer than 200 bytes\n"), -1;
    if (c->unsub_mailto[0] && (!strchr(c->unsub_mailto, '@') || strchr(c->unsub_mailto, '?') ||
                               strlen(c->unsub_mailto) > 254))
        return fprintf(stderr, "herald: --unsubscribe-mailto must be an email address\n"), -1;
    if (c->unsub_ttl[0] && parse_int(c->unsub_ttl, 0, 3650, ttl_days) < 0)
        return fprintf(stderr, "herald: --unsubscribe-ttl-days must be 0..3650\n"), -1;
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    int64_t unsub_ttl_days = 0;
    struct config cfg;
    struct store *st = NULL;
    struct queue *q = NULL;
    struct http_server *srv = NULL;
    struct api_ctx actx;
    struct ingest ig = {0};
    struct engine eng;
    struct hbs_cache *hbs = NULL;
    struct limit_table *limits = NULL;
    struct defcache *defs = NULL, *provs = NULL, *tmpls = NULL, *brands = NULL;
    struct queue_cfg qcfg;
    struct http_cfg hcfg;
    struct herr err;
    enum log_level lvl;
    sigset_t sigs;
    int sig = 0, rc = 1;
    const char *v;
    int64_t num;
    char admin_key[API_KEY_MAX], write_key[API_KEY_MAX];
    bool created = false;
    struct netaddr_allow egress;
    char public_url[512];
    struct job_handler handlers[] = {
        {"ping", queue_ping_run, NULL},
        {INGEST_JOB_KIND, ingest_events_run, &ig},
        {SEND_ROUTE_KIND, engine_route_run, &eng},
        {SEND_DELIVER_KIND, engine_deliver_run, &eng},
        {SEND_FANOUT_KIND, engine_fanout_run, &eng},
        {AUTOMATION_STEP_KIND, automation_step_run, &eng},
        {HOOKS_JOB_KIND, hooks_deliver_run, &eng},
    };

    config_defaults(&cfg);
    if (config_env_numbers(&cfg) < 0)
        return EXIT_USAGE;
    for (int i = 0; i < argc; i++) {
        int m;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_serve, stdout);
            return 0;
        }
        if ((m = take_opt(argc, argv, &i, "--listen", &cfg.listen)) ||
            (m = take_opt(argc, argv, &i, "--store", &cfg.store)) ||
            (m = take_opt(argc, argv, &i, "--log-level", &cfg.log_level)) ||
            (m = take_opt(argc, argv, &i, "--egress-allow", &cfg.egress_allow)) ||
            (m = take_opt(argc, argv, &i, "--cors-allow", &cfg.cors_allow)) ||
            (m = take_opt(argc, argv, &i, "--public-url", &cfg.public_url)) ||
            (m = take_opt(argc, argv, &i, "--unsubscribe-mailto", &cfg.unsub_mailto)) ||
            (m = take_opt(argc, argv, &i, "--unsubscribe-ttl-days", &cfg.unsub_ttl))) {
            if (m < 0)
                return EXIT_USAGE;
            continue;
        }
        m = 0;
        for (size_t k = 0; k < sizeof net_opts / sizeof net_opts[0] && !m; k++) {
            if (!(m = take_opt(argc, argv, &i, net_opts[k].flag, &v)))
                continue;
            if (m < 0 || parse_int(v, net_opts[k].lo, net_opts[k].hi, &num) < 0)
                return fprintf(stderr, "herald: %s must be %lld..%lld\n", net_opts[k].flag,
                               (long long)net_opts[k].lo, (long long)net_opts[k].hi),
                       EXIT_USAGE;
            *net_field(&cfg, k) = num;
        }
        if (m)
            continue;
        if ((m = take_opt(argc, argv, &i, "--workers", &v))) {
            if (m < 0 || parse_int(v, 1, 256, &num) < 0)
                return fprintf(stderr, "herald: --workers must be 1..256\n"), EXIT_USAGE;
            cfg.workers = (int)num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--http-threads", &v))) {
            if (m < 0 || parse_int(v, 1, 1024, &num) < 0)
                return fprintf(stderr, "herald: --http-threads must be 1..1024\n"), EXIT_USAGE;
            cfg.http_threads = (int)num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--max-body", &v))) {
            if (m < 0 || parse_int(v, 1024, 1LL << 30, &num) < 0)
                return fprintf(stderr, "herald: --max-body must be 1024..1073741824\n"),
                       EXIT_USAGE;
            cfg.max_body = num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--max-write-queue", &v))) {
            if (m < 0 || parse_int(v, 1, 1000000, &num) < 0)
                return fprintf(stderr, "herald: --max-write-queue must be 1..1000000\n"),
                       EXIT_USAGE;
            cfg.max_write_queue = num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--retry-base-ms", &v))) {
            if (m < 0 || parse_int(v, 10, 3600000, &num) < 0)
                return fprintf(stderr, "herald: --retry-base-ms must be 10..3600000\n"),
                       EXIT_USAGE;
            cfg.retry_base_ms = num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--retry-max-ms", &v))) {
            if (m < 0 || parse_int(v, 10, 86400000, &num) < 0)
                return fprintf(stderr, "herald: --retry-max-ms must be 10..86400000\n"),
                       EXIT_USAGE;
            cfg.retry_max_ms = num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--provider-timeout-ms", &v))) {
            if (m < 0 || parse_int(v, 1000, 600000, &num) < 0)
                return fprintf(stderr, "herald: --provider-timeout-ms must be 1000..600000\n"),
                       EXIT_USAGE;
            cfg.provider_timeout_ms = num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--provider-concurrency", &v))) {
            if (m < 0 || parse_int(v, 1, LIMIT_CONCURRENCY_MAX, &num) < 0)
                return fprintf(stderr, "herald: --provider-concurrency must be 1..%d\n",
                               LIMIT_CONCURRENCY_MAX),
                       EXIT_USAGE;
            cfg.provider_concurrency = num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--lease-ms", &v))) {
            if (m < 0 || parse_int(v, 1000, 3600000, &num) < 0)
                return fprintf(stderr, "herald: --lease-ms must be 1000..3600000\n"), EXIT_USAGE;
            cfg.lease_ms = num;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--dedup-window", &v))) {
            if (m < 0 || parse_int(v, 0, 366LL * 86400, &num) < 0)
                return fprintf(stderr, "herald: --dedup-window must be 0..31622400 seconds\n"),
                       EXIT_USAGE;
            cfg.dedup_window_s = num;
            continue;
        }
        fprintf(stderr, "herald serve: unknown option %s (see herald serve --help)\n", argv[i]);
        return EXIT_USAGE;
    }
    if (log_level_parse(cfg.log_level, &lvl) < 0) {
        fprintf(stderr, "herald: --log-level must be debug, info, warn or error\n");
        return EXIT_USAGE;
    }
    log_set_level(lvl);
    if (unsub_opts_check(&cfg, &unsub_ttl_days) < 0)
        return EXIT_USAGE;
    herr_clear(&err);
    if (netaddr_allow_parse(cfg.egress_allow, &egress, &err) < 0) {
        fprintf(stderr, "herald: --egress-allow (HERALD_EGRESS_ALLOW): %s\n", err.msg);
        return EXIT_USAGE;
    }

    /* Signals are taken by sigwait below; block them before any thread starts so
     * every thread inherits the mask. */
    raise_nofile();
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    herr_clear(&err);
    if (open_store(cfg.store, true, &st) < 0)
        goto out;
    st->write_queue_max = (size_t)cfg.max_write_queue;
    if (api_bootstrap(st, time_now_ms(), admin_key, write_key, &created, &err) < 0) {
        LOG_E("server.bootstrap_failed", "error=\"%s\"", err.msg);
        goto out;
    }
    if (created) {
        printf("HERALD_ADMIN_KEY=%s\nHERALD_WRITE_KEY=%s\n", admin_key, write_key);
        fflush(stdout);
        LOG_I("server.bootstrap", "msg=\"new workspace: the admin API key and the Segment "
                                  "write key (client scope) were printed on stdout, once; keep them\"");
    }
    memset(admin_key, 0, sizeof admin_key);
    memset(write_key, 0, sizeof write_key);

    if (provider_global_init() < 0) {
        LOG_E("server.providers_failed", "msg=\"cannot initialise libcurl\"");
        goto out;
    }
    http_client_egress_allow(&egress);
    LOG_I("server.egress", "allow=\"%s\" blocks=%zu msg=\"webhook and fetch-data targets "
                           "on non-public addresses are refused unless listed\"",
          cfg.egress_allow, egress.n);
    hbs = hbs_cache_new(4096, 64u << 20);
    memset(&eng, 0, sizeof eng);
    eng.store = st;
    eng.public_url = cfg.public_url;
    eng.unsub_mailto = cfg.unsub_mailto;
    eng.unsub_ttl_s = unsub_ttl_days * 86400;
    eng.clock = hclock_system();
    eng.event_data = seg_run_data_new; /* runs and messages refer to their event's data */
    eng.event_data_take = seg_run_data_take;
    eng.event_data_view = seg_run_data_view;
    if (cfg.public_url[0]) /* tracking links (engine/tracking.h): no trailing slash */
        snprintf(public_url, sizeof public_url, "%.*s", (int)strcspn(cfg.public_url, "?#"),
                 cfg.public_url);
    else
        snprintf(public_url, sizeof public_url, "http://%s%s",
                 cfg.listen[0] == ':' ? "localhost" : "", cfg.listen);
    while (strlen(public_url) > 8 && public_url[strlen(public_url) - 1] == '/')
        public_url[strlen(public_url) - 1] = 0;
    if (strncmp(public_url, "http://", 7) && strncmp(public_url, "https://", 8)) {
        fprintf(stderr, "herald: --public-url (HERALD_PUBLIC_URL) must be an http(s) URL\n");
        rc = EXIT_USAGE;
        goto out;
    }
    eng.track_url = public_url;
    eng.hbs = hbs;
    eng.defs = defs = defcache_new();
    eng.provs = provs = defcache_new();
    eng.tmpls = tmpls = defcache_new();
    eng.brands = brands = defcache_new();
    eng.message_timeout_ms = SEND_TIMEOUT_DEFAULT_MS;
    eng.provider_timeout_ms = cfg.provider_timeout_ms;
    eng.backoff_base_ms = cfg.retry_base_ms;
    eng.backoff_max_ms = cfg.retry_max_ms > cfg.retry_base_ms ? cfg.retry_max_ms : cfg.retry_base_ms;
    /* calls no longer hold a worker (they run on the transport's loop), so the default
     * cap only bounds what one provider sees from this node at once */
    eng.limits = limits = limit_table_new(0);
    eng.provider_concurrency = cfg.provider_concurrency > 0 ? (int)cfg.provider_concurrency
                                                            : ENGINE_PROVIDER_CONCURRENCY_DEFAULT;

    ig.store = st;
    ig.clock = hclock_system();
    ig.dedup_window_ms = cfg.dedup_window_s * 1000;
    ig.trigger = automation_trigger_event;
    ig.trigger_ctx = &eng;
    ig.cache = evcache_new(EVCACHE_SLOTS_DEFAULT, EVCACHE_BYTES_DEFAULT, EVCACHE_STALE_MS);
    /* one writer (SQLite): the events job's commit would run on it anyway, so the accept
     * applies its events itself. Shared (PostgreSQL): accepts run on every node at once and
     * must not wait on the profile and catalog rows the events lock; a job does that */
    ig.apply_at_accept = !store_shared(st);
    ig.ensure_apart = store_shared(st);

    {
        struct expire_arg ea = {time_now_ms(), 0};
        if (store_write(st, expire_tx, &ea, &err) == HR_OK && ea.n > 0)
            LOG_W("server.orphan_leases", "jobs=%lld msg=\"leases of a stopped process were "
                                          "ended; those jobs run again now\"",
                  (long long)ea.n);
    }

    /* status webhooks: every message status write enqueues its events (hooks.h) */
    st->on_message = hooks_on_message;
    st->on_message_arg = &eng;

    queue_cfg_defaults(&qcfg);
    qcfg.workers = cfg.workers;
    qcfg.lease_ms = cfg.lease_ms;
    q = queue_new(st, hclock_system(), &qcfg, handlers, sizeof handlers / sizeof handlers[0]);
    /* a freed provider slot wakes a delivery parked for it (queue.h, DEFER); the queue
     * is freed after the last release (queue_stop settles every ticket) */
    limit_on_release(limits, unpark_on_release, q);
    if (queue_start(q) < 0) {
        LOG_E("server.queue_failed", "msg=\"cannot start workers\"");
        goto out;
    }
    ig.queue = q;

    actx.store = st;
    actx.queue = q;
    actx.ingest = &ig;
    actx.engine = &eng;
    actx.clock = hclock_system();
    memset(&hcfg, 0, sizeof hcfg);
    hcfg.listen = cfg.listen;
    hcfg.max_body = (size_t)cfg.max_body;
    hcfg.max_conns = (int)cfg.max_conns;
    hcfg.max_conns_per_ip = cfg.max_conns_per_ip > 0 ? (int)cfg.max_conns_per_ip : -1;
    hcfg.header_timeout_s = (int)cfg.header_timeout_s;
    hcfg.body_timeout_s = (int)cfg.body_timeout_s;
    hcfg.max_buffered = (size_t)cfg.max_buffered;
    hcfg.cors_allow = cfg.cors_allow;
    hcfg.routes = api_routes;
    hcfg.handler_ctx = &actx;
    hcfg.auth = api_authenticate;
    hcfg.auth_ctx = &actx;
    hcfg.wrap = api_idempotency_wrap;
    hcfg.wrap_ctx = &actx;
    if (http_server_start(&hcfg, &srv, &err) < 0) {
        LOG_E("server.listen_failed", "addr=%s error=\"%s\"", cfg.listen, err.msg);
        goto out;
    }
    LOG_I("server.listening", "addr=%s port=%d store=%.*s workers=%d provider_concurrency=%d",
          cfg.listen, http_server_port(srv), (int)strcspn(cfg.store, ":"), cfg.store, cfg.workers,
          eng.provider_concurrency);

    while (sigwait(&sigs, &sig) != 0 && errno == EINTR)
        ;
    LOG_I("server.stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    http_server_stop(srv); /* stop accepting, finish requests in flight */
    queue_free(q);         /* finish running jobs, give back leases */
    if (limits)
        limit_on_release(limits, NULL, NULL); /* the queue it named is gone */
    store_close(st);
    evcache_free(ig.cache);
    hbs_cache_free(hbs);
    limit_table_free(limits);
    defcache_free(defs);
    defcache_free(provs);
    defcache_free(tmpls);
    defcache_free(brands);
    provider_global_cleanup();
    if (rc == 0)
        LOG_I("server.stopped", "exit=0");
    return rc;
}

/* ---- keys -------------------------------------------------------------------- */

static int revoke_tx(struct store_txn *t, void *prefix)
{
    return store_key_revoke(t, prefix, time_now_ms());
}

static int cmd_keys(int argc, char **argv)
{
    const char *dsn = env_or("HERALD_STORE", "sqlite:./var/herald.db");
    const char *kind = NULL, *name = "", *sub = argc > 0 ? argv[0] : NULL, *arg = NULL;
    const char *scope = NULL;
    struct store *st = NULL;
    struct herr err;
    int rc = EXIT_USAGE;

    herr_clear(&err);
    log_set_level(LOG_WARN);
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = take_opt(argc, argv, &i, "--store", &dsn)) ||
            (m = take_opt(argc, argv, &i, "--kind", &kind)) ||
            (m = take_opt(argc, argv, &i, "--scope", &scope)) ||
            (m = take_opt(argc, argv, &i, "--name", &name))) {
            if (m < 0)
                return EXIT_USAGE;
            continue;
        }
        if (argv[i][0] == '-' || arg) {
            fprintf(stderr, "herald keys: unexpected argument %s\n", argv[i]);
            return EXIT_USAGE;
        }
        arg = argv[i];
    }
    if (!sub || (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke"))) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(sub, "create") == 0 && (!kind || (strcmp(kind, "admin") && strcmp(kind, "write")))) {
        fprintf(stderr, "herald keys create: --kind admin|write is required\n");
        return EXIT_USAGE;
    }
    if (scope && (strcmp(sub, "create") || strcmp(kind, "write") ||
                  (strcmp(scope, "client") && strcmp(scope, "server")))) {
        fprintf(stderr, "herald keys create: --scope client|server goes with --kind write\n");
        return EXIT_USAGE;
    }
    if (strcmp(sub, "revoke") == 0 && !arg) {
        fprintf(stderr, "herald keys revoke: give the key's prefix (its first 12 characters)\n");
        return EXIT_USAGE;
    }
    if (open_store(dsn, false, &st) < 0)
        return 1;
    rc = 1;
    if (strcmp(sub, "create") == 0) {
        char key[API_KEY_MAX];
        bool write = strcmp(kind, "write") == 0;
        int sc = write && !(scope && strcmp(scope, "server") == 0) ? KEY_SCOPE_CLIENT
                                                                    : KEY_SCOPE_SERVER;
        if (api_key_create(st, write ? KEY_WRITE : KEY_ADMIN, sc, name, time_now_ms(), key,
                           &err) < 0) {
            fprintf(stderr, "herald keys create: %s\n", err.msg[0] ? err.msg : "failed");
            goto out;
        }
        printf("%s\n", key);
    } else if (strcmp(sub, "list") == 0) {
        struct arena *a = arena_new(4096);
        struct key_rec *k = NULL;
        size_t n = 0;
        if (store_key_list(st, a, &k, &n) < 0) {
            fprintf(stderr, "herald keys list: cannot read keys\n");
            arena_free(a);
            goto out;
        }
        printf("%-14s %-6s %-6s %-24s %-25s %s\n", "PREFIX", "KIND", "SCOPE", "NAME", "CREATED",
               "REVOKED");
        for (size_t i = 0; i < n; i++) {
            char c[32], r[32] = "-";
            time_fmt_iso(k[i].created_ms, c, sizeof c);
            if (k[i].revoked_ms)
                time_fmt_iso(k[i].revoked_ms, r, sizeof r);
            printf("%-14s %-6s %-6s %-24s %-25s %s\n", k[i].prefix,
                   k[i].kind == KEY_WRITE ? "write" : "admin",
                   k[i].kind != KEY_WRITE ? "-"
                   : k[i].scope == KEY_SCOPE_CLIENT ? "client"
                                                    : "server",
                   k[i].name, c, r);
        }
        arena_free(a);
    } else {
        if (store_write(st, revoke_tx, (void *)arg, &err) < 0) {
            fprintf(stderr, "herald keys revoke: no active key with prefix %s\n", arg);
            goto out;
        }
        printf("revoked %s\n", arg);
    }
    rc = 0;
out:
    store_close(st);
    return rc;
}

/* ---- migrate-store ------------------------------------------------------------- */

static int cmd_migrate(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *batch = "500";
    struct migrate_opts o = {500, false, stderr, false, stdout};
    struct store *src = NULL, *dst = NULL;
    struct herr err;
    int64_t v;
    int rc = 1;

    herr_clear(&err);
    log_set_level(LOG_WARN);
    for (int i = 0; i < argc; i++) {
        int m;
        if (strcmp(argv[i], "--force") == 0) {
            o.force = true;
            continue;
        }
        if ((m = take_opt(argc, argv, &i, "--from", &from)) ||
            (m = take_opt(argc, argv, &i, "--to", &to)) ||
            (m = take_opt(argc, argv, &i, "--batch", &batch))) {
            if (m < 0)
                return EXIT_USAGE;
            continue;
        }
        fprintf(stderr, "herald migrate-store: unexpected argument %s\n", argv[i]);
        return EXIT_USAGE;
    }
    if (!from || !to) {
        fprintf(stderr, "herald migrate-store: --from DSN and --to DSN are required\n");
        return EXIT_USAGE;
    }
    if (parse_int(batch, 1, 10000, &v) < 0) {
        fprintf(stderr, "herald migrate-store: --batch must be 1..10000\n");
        return EXIT_USAGE;
    }
    if (strcmp(from, to) == 0) {
        fprintf(stderr, "herald migrate-store: --from and --to name the same store\n");
        return EXIT_USAGE;
    }
    o.batch = (size_t)v;
    o.tty = isatty(STDERR_FILENO) == 1;
    if (open_store(from, true, &src) < 0 || open_store(to, true, &dst) < 0)
        goto out;
    if (migrate_store(src, dst, &o, &err) < 0) {
        fprintf(stderr, "herald migrate-store: %s\n", err.msg[0] ? err.msg : "failed");
        goto out;
    }
    fprintf(stderr, "herald migrate-store: done; every count matches\n");
    rc = 0;
out:
    store_close(dst);
    store_close(src);
    return rc;
}

/* ---- seed ------------------------------------------------------------------------ */

static int cmd_seed(int argc, char **argv)
{
    const char *dsn = env_or("HERALD_STORE", "sqlite:./var/herald.db");
    const char *profiles = "0", *messages = "0", *batch = "5000";
    struct seed_opts o = {0, 0, 5000, time_now_ms(), stderr};
    struct seed_result res;
    struct store *st = NULL;
    struct herr err;
    int64_t p, m, b;
    int rc = 1;

    herr_clear(&err);
    log_set_level(LOG_WARN);
    for (int i = 0; i < argc; i++) {
        int k;
        if ((k = take_opt(argc, argv, &i, "--store", &dsn)) ||
            (k = take_opt(argc, argv, &i, "--profiles", &profiles)) ||
            (k = take_opt(argc, argv, &i, "--messages", &messages)) ||
            (k = take_opt(argc, argv, &i, "--batch", &batch))) {
            if (k < 0)
                return EXIT_USAGE;
            continue;
        }
        fprintf(stderr, "herald seed: unexpected argument %s\n", argv[i]);
        return EXIT_USAGE;
    }
    if (parse_int(profiles, 0, 100000000, &p) < 0 || parse_int(messages, 0, 1000000000, &m) < 0 ||
        parse_int(batch, 1, 100000, &b) < 0) {
        fprintf(stderr, "herald seed: --profiles 0..100000000, --messages 0..1000000000, "
                        "--batch 1..100000\n");
        return EXIT_USAGE;
    }
    o.profiles = p;
    o.messages = m;
    o.batch = (size_t)b;
    if (open_store(dsn, true, &st) < 0)
        goto out;
    if (seed_store(st, &o, &res, &err) < 0) {
        fprintf(stderr, "herald seed: %s\n", err.msg[0] ? err.msg : "failed");
        goto out;
    }
    printf("profiles=%" PRId64 " profiles_s=%.1f messages=%" PRId64 " history=%" PRId64
           " messages_s=%.1f\n",
           res.profiles, (double)res.profiles_ms / 1000.0, res.messages, res.history,
           (double)res.messages_ms / 1000.0);
    rc = 0;
out:
    store_close(st);
    return rc;
}

int main(int argc, char **argv)
{
    xalloc_tune();
    json_use_xalloc(); /* cJSON aborts cleanly on OOM, as every other allocation does */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        FILE *f = argc < 2 ? stderr : stdout;
        fputs(usage_main, f);
        fputs("\n", f);
        fputs(usage_serve, f);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "keys") == 0)
        return cmd_keys(argc - 2, argv + 2);
    if (strcmp(argv[1], "migrate-store") == 0)
        return cmd_migrate(argc - 2, argv + 2);
    if (strcmp(argv[1], "seed") == 0)
        return cmd_seed(argc - 2, argv + 2);
    fprintf(stderr, "herald: unknown command %s (see herald --help)\n", argv[1]);
    return EXIT_USAGE;
}
