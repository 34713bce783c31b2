/* ssrf_guard.c — the public-address check for outbound requests to URLs
 * users give; see ssrf_guard.h. */
#include "ssrf_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "log.h"

/* An IPv4 range: address and prefix length, host byte order. */
struct v4_range {
	uint32_t net;
	int bits;
	const char *what;
};

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static const struct v4_range v4_refused[] = {
	{V4(0, 0, 0, 0), 8, "this network"},
	{V4(10, 0, 0, 0), 8, "private"},
	{V4(100, 64, 0, 0), 10, "shared (carrier-grade NAT, cloud metadata)"},
	{V4(127, 0, 0, 0), 8, "loopback"},
	{V4(169, 254, 0, 0), 16, "link-local (cloud metadata)"},
	{V4(172, 16, 0, 0), 12, "private"},
	{V4(192, 0, 0, 0), 24, "IETF protocol assignments (cloud metadata)"},
	{V4(192, 0, 2, 0), 24, "documentation"},
	{V4(192, 168, 0, 0), 16, "private"},
	{V4(198, 18, 0, 0), 15, "benchmarking"},
	{V4(198, 51, 100, 0), 24, "documentation"},
	{V4(203, 0, 113, 0), 24, "documentation"},
	{V4(168, 63, 129, 16), 32, "cloud metadata"},
	{V4(224, 0, 0, 0), 4, "multicast"},
	{V4(240, 0, 0, 0), 4, "reserved"},
};

/* The refused range a falls in, or NULL when it is public. */
static const char *v4_refused_range(uint32_t a)
{
	for (size_t i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++) {
		const struct v4_range *r = &v4_refused[i];
		uint32_t mask = r->bits ? ~(uint32_t)0 << (32 - r->bits) : 0;
		if ((a & mask) == r->net)
			return r->what;
	}
	return NULL;
}

static uint32_t v4_at(const uint8_t *p)
{
	return V4(p[0], p[1], p[2], p[3]);
}

static const char *v6_refused_range(const uint8_t *a)
{
	static const uint8_t zero[12] = {0};
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	/* IPv4 inside IPv6: mapped, compatible (and :: and ::1), NAT64, 6to4 */
	if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12))
		return v4_refused_range(v4_at(a + 12));
	if (!memcmp(a, zero, 12)) {
		uint32_t v4 = v4_at(a + 12);
		return v4 == 0 ? "unspecified" : v4 == 1 ? "loopback" : "IPv4-compatible";
	}
	if (a[0] == 0x20 && a[1] == 0x02)
		return v4_refused_range(v4_at(a + 2));
	const char *what = NULL;
	if (a[0] == 0xff)
		what = "multicast";
	else if ((a[0] & 0xfe) == 0xfc)
		what = "unique local (private, cloud metadata)";
	else if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		what = "link-local";
	else if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		what = "site-local";
	else if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0)
		what = "Teredo";
	else if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		what = "documentation";
	else if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b)
		what = "local-use NAT64";
	else if (a[0] == 0x01 && a[1] == 0 && !a[2] && !a[3] && !a[4] && !a[5] && !a[6] && !a[7])
		what = "discard";
	return what;
}

int ssrf_addr_is_public(const struct sockaddr *sa, struct err *e)
{
	const char *what = "not an IP address";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		what = v4_refused_range(ntohl(in->sin_addr.s_addr));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		what = v6_refused_range(in6->sin6_addr.s6_addr);
	}
	if (!what)
		return 1;
	err_setc(e, ERR_INVALID, "%s", what);
	return 0;
}

curl_socket_t ssrf_guard_opensocket(void *clientp, curlsocktype purpose,
				    struct curl_sockaddr *address)
{
	(void)clientp;
	struct err why = {.msg = "not a connection"};
	if (purpose == CURLSOCKTYPE_IPCXN && ssrf_addr_is_public(&address->addr, &why))
		return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
	char text[INET6_ADDRSTRLEN] = "?";
	const void *raw = NULL;
	if (address->family == AF_INET)
		raw = &((const struct sockaddr_in *)(const void *)&address->addr)->sin_addr;
	else if (address->family == AF_INET6)
		raw = &((const struct sockaddr_in6 *)(const void *)&address->addr)->sin6_addr;
	if (raw)
		inet_ntop(address->family, raw, text, sizeof text);
	log_warn("outbound request refused: not a public address", "address", text, "range",
		 why.msg, "hint", "notify_webhook_allow_private = on allows private addresses",
		 NULL);
	return CURL_SOCKET_BAD;
}
