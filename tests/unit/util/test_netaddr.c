/* test_netaddr.c: the egress guard's address rules: classification of IPv4 and IPv6
 * addresses (embedded IPv4 forms included), CIDR parsing and the allowlist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/util/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static enum netaddr_class cls(const char *s)
{
    struct netaddr a;
    assert_int_equal(netaddr_parse(str_c(s), &a), HR_OK);
    return netaddr_classify(&a);
}

static void test_classify_v4(void **state)
{
    (void)state;
    assert_int_equal(cls("0.0.0.0"), NETADDR_UNSPECIFIED);
    assert_int_equal(cls("0.1.2.3"), NETADDR_UNSPECIFIED);
    assert_int_equal(cls("127.0.0.1"), NETADDR_LOOPBACK);
    assert_int_equal(cls("127.255.255.254"), NETADDR_LOOPBACK);
    assert_int_equal(cls("10.0.0.1"), NETADDR_PRIVATE);
    assert_int_equal(cls("172.16.0.1"), NETADDR_PRIVATE);
    assert_int_equal(cls("172.31.255.255"), NETADDR_PRIVATE);
    assert_int_equal(cls("172.32.0.1"), NETADDR_PUBLIC);
    assert_int_equal(cls("172.15.255.255"), NETADDR_PUBLIC);
    assert_int_equal(cls("192.168.1.1"), NETADDR_PRIVATE);
    assert_int_equal(cls("169.254.169.254"), NETADDR_LINK_LOCAL);
    assert_int_equal(cls("100.64.0.1"), NETADDR_CGNAT);
    assert_int_equal(cls("100.127.255.255"), NETADDR_CGNAT);
    assert_int_equal(cls("100.128.0.1"), NETADDR_PUBLIC);
    assert_int_equal(cls("224.0.0.1"), NETADDR_MULTICAST);
    assert_int_equal(cls("239.255.255.250"), NETADDR_MULTICAST);
    assert_int_equal(cls("255.255.255.255"), NETADDR_BROADCAST);
    assert_int_equal(cls("240.0.0.1"), NETADDR_RESERVED);
    assert_int_equal(cls("198.18.0.1"), NETADDR_RESERVED);
    assert_int_equal(cls("8.8.8.8"), NETADDR_PUBLIC);
    assert_int_equal(cls("1.1.1.1"), NETADDR_PUBLIC);
    assert_int_equal(cls("93.184.216.34"), NETADDR_PUBLIC);
}

static void test_classify_v6(void **state)
{
    (void)state;
    assert_int_equal(cls("::"), NETADDR_UNSPECIFIED);
    assert_int_equal(cls("::1"), NETADDR_LOOPBACK);
    assert_int_equal(cls("fc00::1"), NETADDR_PRIVATE);
    assert_int_equal(cls("fd12:3456::1"), NETADDR_PRIVATE);
    assert_int_equal(cls("fe80::1"), NETADDR_LINK_LOCAL);
    assert_int_equal(cls("febf::1"), NETADDR_LINK_LOCAL);
    assert_int_equal(cls("fec0::1"), NETADDR_PRIVATE);
    assert_int_equal(cls("ff02::1"), NETADDR_MULTICAST);
    assert_int_equal(cls("2001:db8::1"), NETADDR_RESERVED);
    assert_int_equal(cls("2606:4700:4700::1111"), NETADDR_PUBLIC);
    assert_int_equal(cls("2a00:1450:4001::200e"), NETADDR_PUBLIC);
    /* IPv4 inside IPv6: mapped, compatible, NAT64, 6to4 */
    assert_int_equal(cls("::ffff:127.0.0.1"), NETADDR_LOOPBACK);
    assert_int_equal(cls("::ffff:7f00:1"), NETADDR_LOOPBACK);
    assert_int_equal(cls("::ffff:10.1.2.3"), NETADDR_PRIVATE);
    assert_int_equal(cls("::ffff:169.254.169.254"), NETADDR_LINK_LOCAL);
    assert_int_equal(cls("::ffff:0.0.0.0"), NETADDR_UNSPECIFIED);
    assert_int_equal(cls("::ffff:8.8.8.8"), NETADDR_PUBLIC);
    assert_int_equal(cls("::127.0.0.1"), NETADDR_LOOPBACK);
    assert_int_equal(cls("::192.168.0.1"), NETADDR_PRIVATE);
    assert_int_equal(cls("64:ff9b::a9fe:a9fe"), NETADDR_LINK_LOCAL);
    assert_int_equal(cls("2002:7f00:1::"), NETADDR_LOOPBACK);
    assert_int_equal(cls("2002:0808:0808::1"), NETADDR_PUBLIC);
}

static void test_parse_and_format(void **state)
{
    struct netaddr a;
    char t[NETADDR_TEXT_MAX];
    (void)state;
    assert_int_equal(netaddr_parse(str_c("127.0.0.1"), &a), HR_OK);
    assert_true(netaddr_is_v4(&a));
    netaddr_format(&a, t, sizeof t);
    assert_string_equal(t, "127.0.0.1");
    assert_int_equal(netaddr_parse(str_c("0:0:0:0:0:0:0:1"), &a), HR_OK);
    assert_false(netaddr_is_v4(&a));
    netaddr_format(&a, t, sizeof t);
    assert_string_equal(t, "::1");
    /* ::ffff:a.b.c.d is the same address as a.b.c.d */
    assert_int_equal(netaddr_parse(str_c("::ffff:10.0.0.1"), &a), HR_OK);
    assert_true(netaddr_is_v4(&a));
    netaddr_format(&a, t, sizeof t);
    assert_string_equal(t, "10.0.0.1");
    assert_int_equal(netaddr_parse(str_c(""), &a), HR_INVAL);
    assert_int_equal(netaddr_parse(str_c("localhost"), &a), HR_INVAL);
    assert_int_equal(netaddr_parse(str_c("127.1"), &a), HR_INVAL);
    assert_int_equal(netaddr_parse(str_c("127.0.0.256"), &a), HR_INVAL);
    assert_int_equal(netaddr_parse(str_c("[::1]"), &a), HR_INVAL);
    assert_int_equal(netaddr_parse((struct str){"1.2.3.4\0x", 9}, &a), HR_INVAL);
}

static void test_from_sockaddr(void **state)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr un = {.sa_family = AF_UNIX};
    struct netaddr a;
    (void)state;
    memset(&in4, 0, sizeof in4);
    in4.sin_family = AF_INET;
    inet_pton(AF_INET, "169.254.169.254", &in4.sin_addr);
    assert_int_equal(netaddr_from_sockaddr((struct sockaddr *)&in4, sizeof in4, &a), HR_OK);
    assert_int_equal(netaddr_classify(&a), NETADDR_LINK_LOCAL);
    assert_int_equal(netaddr_from_sockaddr((struct sockaddr *)&in4, 4, &a), HR_INVAL);
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
    assert_int_equal(netaddr_from_sockaddr((struct sockaddr *)&in6, sizeof in6, &a), HR_OK);
    assert_int_equal(netaddr_classify(&a), NETADDR_LOOPBACK);
    assert_int_equal(netaddr_from_sockaddr(&un, sizeof un, &a), HR_INVAL);
    assert_int_equal(netaddr_from_sockaddr(NULL, 0, &a), HR_INVAL);
}

static bool in_cidr(const char *cidr, const char *addr)
{
    struct netaddr_cidr c;
    struct netaddr a;
    assert_int_equal(netaddr_cidr_parse(str_c(cidr), &c), HR_OK);
    assert_int_equal(netaddr_parse(str_c(addr), &a), HR_OK);
    return netaddr_cidr_contains(&c, &a);
}

static void test_cidr(void **state)
{
    struct netaddr_cidr c;
    char t[NETADDR_TEXT_MAX];
    (void)state;
    assert_true(in_cidr("127.0.0.0/8", "127.0.0.1"));
    assert_true(in_cidr("127.0.0.0/8", "127.255.0.9"));
    assert_false(in_cidr("127.0.0.0/8", "128.0.0.1"));
    assert_true(in_cidr("10.1.2.3", "10.1.2.3"));
    assert_false(in_cidr("10.1.2.3", "10.1.2.4"));
    assert_true(in_cidr("172.16.0.0/12", "172.31.1.1"));
    assert_false(in_cidr("172.16.0.0/12", "172.32.1.1"));
    assert_true(in_cidr("0.0.0.0/0", "8.8.8.8"));
    assert_false(in_cidr("0.0.0.0/0", "::1")); /* an IPv4 /0 is all of IPv4, no more */
    assert_true(in_cidr("::/0", "::1"));
    assert_true(in_cidr("::/0", "8.8.8.8"));
    assert_true(in_cidr("::1/128", "::1"));
    assert_false(in_cidr("::1/128", "::2"));
    assert_true(in_cidr("fd00::/8", "fd12::5"));
    assert_true(in_cidr("10.0.0.0/9", "10.127.0.1"));
    assert_false(in_cidr("10.0.0.0/9", "10.128.0.1"));
    assert_true(in_cidr(" 192.168.0.0/16 ", "192.168.4.4"));
    /* host bits are cleared */
    assert_int_equal(netaddr_cidr_parse(str_c("10.9.8.7/8"), &c), HR_OK);
    netaddr_format(&c.addr, t, sizeof t);
    assert_string_equal(t, "10.0.0.0");
    assert_int_equal(c.bits, 96 + 8);
    /* bad blocks */
    const char *bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1",
                         "10.0.0.0/8x", "10.0.0.0/ 8", "example.com/8", "10.0.0.0/0008",
                         "10.0.0.0/+8", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(netaddr_cidr_parse(str_c(bad[i]), &c), HR_INVAL);
}

static void test_allowlist(void **state)
{
    struct netaddr_allow l;
    struct herr err = {0};
    struct netaddr a;
    (void)state;
    assert_int_equal(netaddr_allow_parse(NULL, &l, &err), HR_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(netaddr_allow_parse("", &l, &err), HR_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(netaddr_allow_parse("127.0.0.0/8,::1/128", &l, &err), HR_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(netaddr_parse(str_c("127.0.0.1"), &a), HR_OK);
    assert_true(netaddr_allow_match(&l, &a));
    assert_int_equal(netaddr_parse(str_c("::1"), &a), HR_OK);
    assert_true(netaddr_allow_match(&l, &a));
    /* the IPv4-compatible form of an allowed IPv4 address is allowed too */
    assert_int_equal(netaddr_parse(str_c("::127.0.0.2"), &a), HR_OK);
    assert_true(netaddr_allow_match(&l, &a));
    assert_int_equal(netaddr_parse(str_c("10.0.0.1"), &a), HR_OK);
    assert_false(netaddr_allow_match(&l, &a));
    assert_int_equal(netaddr_parse(str_c("169.254.169.254"), &a), HR_OK);
    assert_false(netaddr_allow_match(&l, &a));
    assert_false(netaddr_allow_match(NULL, &a));

    assert_int_equal(netaddr_allow_parse(" 10.0.0.0/8 , fd00::/8 ", &l, &err), HR_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(netaddr_parse(str_c("10.200.0.1"), &a), HR_OK);
    assert_true(netaddr_allow_match(&l, &a));
    assert_int_equal(netaddr_parse(str_c("127.0.0.1"), &a), HR_OK);
    assert_false(netaddr_allow_match(&l, &a));
    /* ::1 is not 0.0.0.1 */
    assert_int_equal(netaddr_allow_parse("0.0.0.0/8", &l, &err), HR_OK);
    assert_int_equal(netaddr_parse(str_c("::1"), &a), HR_OK);
    assert_false(netaddr_allow_match(&l, &a));

    assert_int_equal(netaddr_allow_parse("10.0.0.0/8,,::1", &l, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(netaddr_allow_parse("10.0.0.0/8,", &l, &err), HR_INVAL);
    assert_int_equal(netaddr_allow_parse("10.0.0.0/8,localhost", &l, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "\"localhost\""));
    {
        char many[NETADDR_ALLOW_MAX * 16 + 32] = "";
        size_t o = 0;
        for (int i = 0; i <= NETADDR_ALLOW_MAX; i++)
            o += (size_t)snprintf(many + o, sizeof many - o, "%s10.0.%d.0/24", i ? "," : "", i);
        assert_int_equal(netaddr_allow_parse(many, &l, &err), HR_INVAL);
        assert_non_null(strstr(err.msg, "more than"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_v4),      cmocka_unit_test(test_classify_v6),
        cmocka_unit_test(test_parse_and_format), cmocka_unit_test(test_from_sockaddr),
        cmocka_unit_test(test_cidr),             cmocka_unit_test(test_allowlist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
