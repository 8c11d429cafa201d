/* netaddr.h: IP addresses for the egress guard. Classifies an address as public or as
 * one a user-controlled request must not reach (loopback, private, link-local, ...),
 * parses CIDR blocks and the operator's allowlist ("127.0.0.0/8,::1/128"), and matches
 * an address against it. Pure: no DNS, no sockets, no global state.
 *
 * Every address is held in the 16-byte IPv6 form; an IPv4 address is its IPv4-mapped
 * form ::ffff:a.b.c.d, so an IPv4 CIDR /n is /96+n inside. */
#ifndef HERALD_UTIL_NETADDR_H
#define HERALD_UTIL_NETADDR_H

#include "rc.h"
#include "str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NETADDR_ALLOW_MAX 64   /* CIDR blocks in one allowlist */
#define NETADDR_TEXT_MAX 48    /* netaddr_format output, NUL included */

struct netaddr {
    uint8_t b[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
};

struct netaddr_cidr {
    struct netaddr addr; /* host bits cleared */
    unsigned bits;       /* 0..128 in the 16-byte form */
};

struct netaddr_allow {
    struct netaddr_cidr v[NETADDR_ALLOW_MAX];
    size_t n;
};

enum netaddr_class {
    NETADDR_PUBLIC = 0,
    NETADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
    NETADDR_LOOPBACK,    /* 127.0.0.0/8, ::1 */
    NETADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
    NETADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    NETADDR_CGNAT,       /* 100.64/10 */
    NETADDR_MULTICAST,   /* 224/4, ff00::/8 */
    NETADDR_BROADCAST,   /* 255.255.255.255 */
    NETADDR_RESERVED,    /* 240/4, 192.0.0/24, 198.18/15, documentation and discard blocks */
};

/* netaddr_is_v4: true when a holds an IPv4 address (the ::ffff:0:0/96 form). */
bool netaddr_is_v4(const struct netaddr *a);

/* netaddr_parse: a literal IPv4 (dotted quad) or IPv6 address, no brackets, no zone.
 * Returns HR_OK, or HR_INVAL when s is not one. */
int netaddr_parse(struct str s, struct netaddr *out) HR_MUSTCHECK;

/* netaddr_from_sockaddr: the address of an AF_INET or AF_INET6 socket address of len
 * bytes. Returns HR_OK, or HR_INVAL for another family or a short length. */
int netaddr_from_sockaddr(const struct sockaddr *sa, size_t len, struct netaddr *out) HR_MUSTCHECK;

/* netaddr_classify: what kind of address a is. An IPv6 address that embeds an IPv4 one
 * (IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16)
 * is classified by the IPv4 address it carries. */
enum netaddr_class netaddr_classify(const struct netaddr *a);

/* netaddr_class_text: "a loopback address", "a private address"...; static, never NULL. */
const char *netaddr_class_text(enum netaddr_class c);

/* netaddr_format: a as text into out (cap >= NETADDR_TEXT_MAX): dotted quad for IPv4,
 * RFC 5952 for IPv6. */
void netaddr_format(const struct netaddr *a, char *out, size_t cap);

/* netaddr_cidr_parse: "ADDR/BITS" (0..32 for IPv4, 0..128 for IPv6) or a bare ADDR (one
 * address). Host bits are cleared. Surrounding spaces are allowed. Returns HR_OK or
 * HR_INVAL. */
int netaddr_cidr_parse(struct str s, struct netaddr_cidr *out) HR_MUSTCHECK;

/* netaddr_cidr_contains: true when a lies in c. */
bool netaddr_cidr_contains(const struct netaddr_cidr *c, const struct netaddr *a);

/* netaddr_allow_parse: a comma-separated list of CIDR blocks into out (cleared first;
 * caller's storage). NULL or "" is the empty list. Returns HR_OK, or HR_INVAL with the
 * bad item named in err (empty items, bad blocks, more than NETADDR_ALLOW_MAX). */
int netaddr_allow_parse(const char *list, struct netaddr_allow *out, struct herr *err) HR_MUSTCHECK;

/* netaddr_allow_match: true when a, or the IPv4 address it embeds, lies in one of the
 * list's blocks. */
bool netaddr_allow_match(const struct netaddr_allow *l, const struct netaddr *a);

#endif
