/* test_ssrf_guard.c — core/base/ssrf_guard.c: which addresses an outbound
 * request to a user's URL may reach. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <string.h>

#include "ssrf_guard.h"
#include "testlib.h"

/* Is text (an IPv4 or IPv6 literal) public? why gets the range otherwise. */
static int is_public(const char *text, struct err *why)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	else
		ck_abort_msg("not an address: %s", text);
	return ssrf_addr_is_public((struct sockaddr *)&ss, why);
}

START_TEST(test_refused_ranges)
{
	static const char *const refused[][2] = {
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"0.0.0.0", "this network"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"169.254.169.254", "link-local"},
		{"100.100.100.200", "shared"},
		{"100.64.0.1", "shared"},
		{"192.0.0.192", "IETF"},
		{"168.63.129.16", "metadata"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"198.18.0.1", "benchmarking"},
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"64:ff9b::7f00:1", "loopback"},
		{"2002:7f00:1::", "loopback"},
		{"2002:a00:1::1", "private"},
		{"fe80::1", "link-local"},
		{"fd00:ec2::254", "unique local"},
		{"fc00::1", "unique local"},
		{"ff02::1", "multicast"},
		{"2001::1", "Teredo"},
		{"2001:db8::1", "documentation"},
		{"::7f00:1", "IPv4-compatible"},
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct err why = {.msg = ""};
		ck_assert_msg(!is_public(refused[i][0], &why), "%s is public", refused[i][0]);
		ck_assert_msg(strstr(why.msg, refused[i][1]), "%s: range \"%s\", want \"%s\"",
			      refused[i][0], why.msg, refused[i][1]);
	}
}
END_TEST

START_TEST(test_public_addresses)
{
	static const char *const ok[] = {"8.8.8.8",	     "1.1.1.1",	       "172.15.255.255",
					 "172.32.0.1",	     "100.63.255.255", "100.128.0.1",
					 "192.169.0.1",	     "169.255.0.1",    "93.184.216.34",
					 "2606:4700::1111",  "2a00:1450::1",   "::ffff:8.8.8.8",
					 "64:ff9b::808:808", "2002:808:808::"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct err why = {.msg = ""};
		ck_assert_msg(is_public(ok[i], &why), "%s refused as %s", ok[i], why.msg);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ssrf_guard");
	TCase *t = tcase_create("all");
	tcase_add_test(t, test_refused_ranges);
	tcase_add_test(t, test_public_addresses);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tl_run_suite(suite());
}
