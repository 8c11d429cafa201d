/* netaddr.c: address classification, CIDR blocks and the egress allowlist (see
 * netaddr.h). */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool netaddr_is_v4(const struct netaddr *a)
{
    return memcmp(a->b, v4_mapped_prefix, 12) == 0;
}

static void set_v4(struct netaddr *out, const uint8_t v4[4])
{
    memcpy(out->b, v4_mapped_prefix, 12);
    memcpy(out->b + 12, v4, 4);
}

int netaddr_parse(struct str s, struct netaddr *out)
{
    char tmp[64];
    uint8_t v4[4];
    if (s.len == 0 || s.len >= sizeof tmp)
        return HR_INVAL;
    str_copy(tmp, sizeof tmp, s);
    if (strlen(tmp) != s.len)
        return HR_INVAL; /* a NUL inside */
    if (inet_pton(AF_INET, tmp, v4) == 1) {
        set_v4(out, v4);
        return HR_OK;
    }
    if (inet_pton(AF_INET6, tmp, out->b) == 1)
        return HR_OK;
    return HR_INVAL;
}

int netaddr_from_sockaddr(const struct sockaddr *sa, size_t len, struct netaddr *out)
{
    if (!sa)
        return HR_INVAL;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uint8_t v4[4];
        memcpy(v4, &in->sin_addr, 4);
        set_v4(out, v4);
        return HR_OK;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->b, &in6->sin6_addr, 16);
        return HR_OK;
    }
    return HR_INVAL;
}

/* in4: a (host order) lies in net/bits (host order). */
static bool in4(uint32_t a, uint32_t net, unsigned bits)
{
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (a & mask) == net;
}

static enum netaddr_class classify_v4(const uint8_t v[4])
{
    uint32_t a = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
    if (in4(a, 0x00000000u, 8))
        return NETADDR_UNSPECIFIED;
    if (in4(a, 0x7f000000u, 8))
        return NETADDR_LOOPBACK;
    if (in4(a, 0x0a000000u, 8) || in4(a, 0xac100000u, 12) || in4(a, 0xc0a80000u, 16))
        return NETADDR_PRIVATE;
    if (in4(a, 0xa9fe0000u, 16))
        return NETADDR_LINK_LOCAL;
    if (in4(a, 0x64400000u, 10))
        return NETADDR_CGNAT;
    if (in4(a, 0xe0000000u, 4))
        return NETADDR_MULTICAST;
    if (a == 0xffffffffu)
        return NETADDR_BROADCAST;
    if (in4(a, 0xf0000000u, 4) ||  /* 240/4 */
        in4(a, 0xc0000000u, 24) || /* 192.0.0/24 protocol assignments */
        in4(a, 0xc0000200u, 24) || /* 192.0.2/24 documentation */
        in4(a, 0xc6120000u, 15) || /* 198.18/15 benchmarking */
        in4(a, 0xc6336400u, 24) || /* 198.51.100/24 documentation */
        in4(a, 0xcb007100u, 24))   /* 203.0.113/24 documentation */
        return NETADDR_RESERVED;
    return NETADDR_PUBLIC;
}

/* embedded_v4: the IPv4 address an IPv6 address carries, if any (mapped, compatible,
 * NAT64 well-known prefix, 6to4). */
static bool embedded_v4(const struct netaddr *a, uint8_t v4[4])
{
    static const uint8_t zero12[12] = {0};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(a->b, v4_mapped_prefix, 12) == 0 || memcmp(a->b, nat64, 12) == 0) {
        memcpy(v4, a->b + 12, 4);
        return true;
    }
    if (memcmp(a->b, zero12, 12) == 0) {
        /* ::/96 compatible, except :: and ::1 which are themselves */
        if (a->b[12] == 0 && a->b[13] == 0 && a->b[14] == 0 && a->b[15] <= 1)
            return false;
        memcpy(v4, a->b + 12, 4);
        return true;
    }
    if (a->b[0] == 0x20 && a->b[1] == 0x02) {
        memcpy(v4, a->b + 2, 4);
        return true;
    }
    return false;
}

enum netaddr_class netaddr_classify(const struct netaddr *a)
{
    static const uint8_t zero15[15] = {0};
    static const uint8_t doc[4] = {0x20, 0x01, 0x0d, 0xb8};
    static const uint8_t discard[8] = {0x01, 0x00, 0, 0, 0, 0, 0, 0};
    uint8_t v4[4];
    if (memcmp(a->b, zero15, 15) == 0 && a->b[15] <= 1)
        return a->b[15] == 0 ? NETADDR_UNSPECIFIED : NETADDR_LOOPBACK;
    if (embedded_v4(a, v4))
        return classify_v4(v4);
    if ((a->b[0] & 0xfe) == 0xfc)
        return NETADDR_PRIVATE; /* fc00::/7 unique local */
    if (a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80)
        return NETADDR_LINK_LOCAL; /* fe80::/10 */
    if (a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0xc0)
        return NETADDR_PRIVATE; /* fec0::/10 site-local (deprecated) */
    if (a->b[0] == 0xff)
        return NETADDR_MULTICAST;
    if (memcmp(a->b, doc, 4) == 0 || memcmp(a->b, discard, 8) == 0)
        return NETADDR_RESERVED;
    return NETADDR_PUBLIC;
}

const char *netaddr_class_text(enum netaddr_class c)
{
    switch (c) {
    case NETADDR_PUBLIC:
        return "a public address";
    case NETADDR_UNSPECIFIED:
        return "an unspecified address";
    case NETADDR_LOOPBACK:
        return "a loopback address";
    case NETADDR_PRIVATE:
        return "a private address";
    case NETADDR_LINK_LOCAL:
        return "a link-local address";
    case NETADDR_CGNAT:
        return "a shared (CGNAT) address";
    case NETADDR_MULTICAST:
        return "a multicast address";
    case NETADDR_BROADCAST:
        return "a broadcast address";
    case NETADDR_RESERVED:
        return "a reserved address";
    }
    return "an unknown kind of address";
}

void netaddr_format(const struct netaddr *a, char *out, size_t cap)
{
    char tmp[INET6_ADDRSTRLEN];
    const char *r = netaddr_is_v4(a) ? inet_ntop(AF_INET, a->b + 12, tmp, sizeof tmp)
                                     : inet_ntop(AF_INET6, a->b, tmp, sizeof tmp);
    if (cap == 0)
        return;
    str_copy(out, cap, str_c(r ? r : "?"));
}

static struct str trim(struct str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

int netaddr_cidr_parse(struct str s, struct netaddr_cidr *out)
{
    const char *slash;
    struct str addr;
    int64_t bits;
    unsigned max, total;
    s = trim(s);
    slash = s.len ? memchr(s.p, '/', s.len) : NULL;
    addr = slash ? (struct str){s.p, (size_t)(slash - s.p)} : s;
    if (netaddr_parse(addr, &out->addr) < 0)
        return HR_INVAL;
    max = netaddr_is_v4(&out->addr) ? 32 : 128;
    if (slash) {
        struct str b = {slash + 1, s.len - (size_t)(slash + 1 - s.p)};
        if (b.len == 0 || b.len > 3 || b.p[0] < '0' || b.p[0] > '9' ||
            str_to_i64(b, &bits) < 0 || bits < 0 || bits > (int64_t)max)
            return HR_INVAL;
    } else {
        bits = max;
    }
    total = (unsigned)bits + (128 - max);
    out->bits = total;
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = total >= (i + 1) * 8 ? 8 : total > i * 8 ? total - i * 8 : 0;
        out->addr.b[i] &= (uint8_t)(keep == 0 ? 0 : 0xff << (8 - keep));
    }
    return HR_OK;
}

bool netaddr_cidr_contains(const struct netaddr_cidr *c, const struct netaddr *a)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr.b, a->b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a->b[full] ^ c->addr.b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int netaddr_allow_parse(const char *list, struct netaddr_allow *out, struct herr *err)
{
    const char *p = list;
    memset(out, 0, sizeof *out);
    if (!list || !list[0])
        return HR_OK;
    for (;;) {
        const char *comma = strchr(p, ',');
        struct str item = trim((struct str){p, comma ? (size_t)(comma - p) : strlen(p)});
        if (item.len == 0)
            return herr_set(err, HR_INVAL, "an empty item in the egress allowlist");
        if (out->n >= NETADDR_ALLOW_MAX)
            return herr_set(err, HR_INVAL, "the egress allowlist has more than %d blocks",
                            NETADDR_ALLOW_MAX);
        if (netaddr_cidr_parse(item, &out->v[out->n]) < 0)
            return herr_set(err, HR_INVAL,
                            "\"%.*s\" in the egress allowlist is not an address or CIDR block "
                            "(e.g. 10.0.0.0/8, fd00::/8)",
                            item.len > 64 ? 64 : (int)item.len, item.p);
        out->n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return HR_OK;
}

bool netaddr_allow_match(const struct netaddr_allow *l, const struct netaddr *a)
{
    struct netaddr e;
    uint8_t v4[4];
    bool has_v4 = !netaddr_is_v4(a) && embedded_v4(a, v4);
    if (has_v4)
        set_v4(&e, v4);
    for (size_t i = 0; l && i < l->n; i++)
        if (netaddr_cidr_contains(&l->v[i], a) || (has_v4 && netaddr_cidr_contains(&l->v[i], &e)))
            return true;
    return false;
}
