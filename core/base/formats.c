/* formats.c — the string formats every validator shares (schema "format"
 * keywords, client data, request bodies): e-mail addresses, E.164 phones,
 * ISO 3166 countries, IANA time zones, web site URLs and UUIDs. See formats.h. */
#include "formats.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define EMAIL_MAX 254
#define EMAIL_LOCAL_MAX 64
#define TZ_NAME_MAX 64

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- character classes --------------------------------------------------- */

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext. */
static int is_atext(int c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 5322 qtext, plus the white space FWS allows inside a quoted string. */
static int is_qtext(int c)
{
	return c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126) || c == ' ' || c == '\t';
}

static int is_ctl(int c)
{
	return (c >= 0 && c < 0x20) || c == 0x7f;
}

/* ---- host names ---------------------------------------------------------- */

/* Dot-separated labels of letters, digits and hyphens (RFC 1035 / 5321).
 * 0, or ERR_INVALID with the reason in e ("the domain ends with a dot"). */
static int hostname_check(const char *s, size_t len, const char *noun, struct err *e)
{
	size_t i, label = 0;

	if (len == 0)
		return err_setc(e, ERR_INVALID, "empty %s", noun);
	if (s[0] == '.')
		return err_setc(e, ERR_INVALID, "the %s starts with a dot", noun);
	if (s[len - 1] == '.')
		return err_setc(e, ERR_INVALID, "the %s ends with a dot", noun);
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return err_setc(e, ERR_INVALID, "consecutive dots in the %s", noun);
			if (s[i - 1] == '-')
				return err_setc(e, ERR_INVALID, "a %s label ends with a hyphen",
						noun);
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-') {
			if (c == '@')
				return err_setc(e, ERR_INVALID,
						"more than one '@' (quote the local part "
						"if it contains one)");
			if (c > 0x20 && c < 0x7f)
				return err_setc(e, ERR_INVALID, "invalid character '%c' in the %s",
						c, noun);
			return err_setc(e, ERR_INVALID, "invalid character in the %s", noun);
		}
		if (label == 0 && c == '-')
			return err_setc(e, ERR_INVALID, "a %s label starts with a hyphen", noun);
		if (++label > 63)
			return err_setc(e, ERR_INVALID, "a %s label is longer than 63 characters",
					noun);
	}
	if (s[len - 1] == '-')
		return err_setc(e, ERR_INVALID, "a %s label ends with a hyphen", noun);
	return 0;
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 address literals). */
static int address_literal_ok(const char *s, size_t len)
{
	char tmp[64];
	unsigned char addr[16];
	int family = AF_INET;

	if (len < 2 || s[0] != '[' || s[len - 1] != ']')
		return 0;
	s++;
	len -= 2;
	if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		family = AF_INET6;
		s += 5;
		len -= 5;
	}
	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(family, tmp, addr) == 1;
}

/* ---- e-mail -------------------------------------------------------------- */

/* Length of the quoted-string local part starting at s[0] == '"', closing
 * quote included; ERR_INVALID with the reason in e when malformed. */
static long quoted_local_len(const char *s, size_t len, struct err *e)
{
	size_t i;

	for (i = 1; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '"')
			return (long)i + 1;
		if (c == '\\') {
			c = i + 1 < len ? (unsigned char)s[i + 1] : 0;
			if (!((c >= 33 && c <= 126) || c == ' ' || c == '\t'))
				return err_setc(e, ERR_INVALID,
						"invalid escape in the quoted local part");
			i++;
		} else if (!is_qtext(c)) {
			return err_setc(e, ERR_INVALID,
					"invalid character in the quoted local part");
		}
	}
	return err_setc(e, ERR_INVALID, "unterminated quoted local part");
}

/* Length of the dot-atom local part (up to, not including, the '@'). */
static long dot_atom_local_len(const char *s, size_t len, struct err *e)
{
	size_t i;

	for (i = 0; i < len && s[i] != '@'; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			if (i == 0)
				return err_setc(e, ERR_INVALID, "the local part starts with a dot");
			if (s[i - 1] == '.')
				return err_setc(e, ERR_INVALID,
						"consecutive dots in the local part");
			continue;
		}
		if (is_atext(c))
			continue;
		if (memchr(s, '<', len))
			return err_setc(e, ERR_INVALID,
					"display names are not allowed; give only the "
					"address, like owner@acme.example");
		if (c == ' ' || c == '"' || c == '\\' || c == '(' || c == ')' || c == ',' ||
		    c == ':' || c == ';' || c == '[' || c == ']')
			return err_setc(e, ERR_INVALID, "'%c' in the local part needs quoting", c);
		return err_setc(e, ERR_INVALID, "invalid character in the local part");
	}
	if (i == len)
		return err_setc(e, ERR_INVALID, "missing '@'");
	if (i == 0)
		return err_setc(e, ERR_INVALID, "missing the part before '@'");
	if (s[i - 1] == '.')
		return err_setc(e, ERR_INVALID, "the local part ends with a dot");
	return (long)i;
}

int format_email_check(const char *s, size_t len, struct err *e)
{
	size_t i;
	long local;
	const char *dom;
	size_t dlen;

	if (len > EMAIL_MAX)
		return err_setc(e, ERR_INVALID, "longer than %d characters", EMAIL_MAX);
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return err_setc(e, ERR_INVALID, "only ASCII characters are allowed");
		else if (is_ctl((unsigned char)s[i]) && s[i] != '\t')
			return err_setc(e, ERR_INVALID, "contains a control character");
	if (len > 0 && s[0] == '"')
		local = quoted_local_len(s, len, e);
	else
		local = dot_atom_local_len(s, len, e);
	if (local < 0)
		return ERR_INVALID;
	if ((size_t)local == len || s[local] != '@') {
		if (memchr(s, '<', len))
			return err_setc(e, ERR_INVALID,
					"display names are not allowed; give only the "
					"address, like owner@acme.example");
		return err_setc(e, ERR_INVALID, "expected '@' after the quoted local part");
	}
	if (local > EMAIL_LOCAL_MAX)
		return err_setc(e, ERR_INVALID, "the local part is longer than %d characters",
				EMAIL_LOCAL_MAX);
	dom = s + local + 1;
	dlen = len - (size_t)local - 1;
	if (dlen == 0)
		return err_setc(e, ERR_INVALID, "missing the domain after '@'");
	if (dom[0] == '[') {
		if (!address_literal_ok(dom, dlen))
			return err_setc(e, ERR_INVALID,
					"invalid address literal (use [192.0.2.1] or "
					"[IPv6:2001:db8::1])");
		return 0;
	}
	return hostname_check(dom, dlen, "domain", e);
}

int format_email_valid(const char *s)
{
	return s && format_email_check(s, strlen(s), NULL) == 0;
}

/* ---- phone --------------------------------------------------------------- */

int format_phone_check(const char *s, size_t len, struct err *e)
{
	size_t i, digits = 0;

	if (len == 0 || s[0] != '+')
		return err_setc(e, ERR_INVALID,
				"start with '+' and the country code, e.g. "
				"+15555550100");
	for (i = 1; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return err_setc(e, ERR_INVALID,
					"only digits after '+', no spaces or punctuation");
		digits++;
	}
	if (digits > 0 && s[1] == '0')
		return err_setc(e, ERR_INVALID, "the country code cannot start with 0");
	if (digits < 8)
		return err_setc(e, ERR_INVALID, "too short (8 to 15 digits after '+')");
	if (digits > 15)
		return err_setc(e, ERR_INVALID, "too long (8 to 15 digits after '+')");
	return 0;
}

int format_phone_valid(const char *s)
{
	return s && format_phone_check(s, strlen(s), NULL) == 0;
}

/* ---- country ------------------------------------------------------------- */

/* The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted. */
static const char countries[] = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZ"
				"BABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZ"
				"CACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZ"
				"DEDJDKDMDODZ"
				"ECEEEGEHERESET"
				"FIFJFKFMFOFR"
				"GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGY"
				"HKHMHNHRHTHU"
				"IDIEILIMINIOIQIRISIT"
				"JEJMJOJP"
				"KEKGKHKIKMKNKPKRKWKYKZ"
				"LALBLCLILKLRLSLTLULVLY"
				"MAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZ"
				"NANCNENFNGNINLNONPNRNUNZ"
				"OM"
				"PAPEPFPGPHPKPLPMPNPRPSPTPWPY"
				"QA"
				"RERORSRURW"
				"SASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZ"
				"TCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZ"
				"UAUGUMUSUYUZ"
				"VAVCVEVGVIVNVU"
				"WFWS"
				"YEYT"
				"ZAZMZW";

static int country_known(char a, char b)
{
	size_t lo = 0, hi = (sizeof(countries) - 1) / 2;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = countries[2 * mid] != a
				  ? (unsigned char)countries[2 * mid] - (unsigned char)a
				  : (unsigned char)countries[2 * mid + 1] - (unsigned char)b;

		if (cmp == 0)
			return 1;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int format_country_valid(const char *s)
{
	return s && strlen(s) == 2 && country_known(s[0], s[1]);
}

static int country_err(const char *s, struct err *e)
{
	char up[3] = {0};

	if (strlen(s) == 2) {
		up[0] = (char)(s[0] >= 'a' && s[0] <= 'z' ? s[0] - 'a' + 'A' : s[0]);
		up[1] = (char)(s[1] >= 'a' && s[1] <= 'z' ? s[1] - 'a' + 'A' : s[1]);
	}
	if (up[0] && country_known(up[0], up[1]))
		return err_setc(e, ERR_INVALID,
				"not an ISO 3166-1 alpha-2 code: write it in capitals (%s)", up);
	if (strcmp(up, "UK") == 0)
		return err_setc(e, ERR_INVALID,
				"not an ISO 3166-1 alpha-2 code (the United Kingdom is GB)");
	return err_setc(e, ERR_INVALID, "not an ISO 3166-1 alpha-2 code (e.g. US, GB, DE)");
}

/* ---- time zone ----------------------------------------------------------- */

/* Common names, accepted even where tzdata is not installed. */
static const char *const common_zones[] = {
	"UTC",
	"Etc/UTC",
	"GMT",
	"Etc/GMT",
	"US/Eastern",
	"US/Central",
	"US/Mountain",
	"US/Pacific",
	"US/Alaska",
	"US/Hawaii",
	"US/Arizona",
	"Canada/Atlantic",
	"Canada/Eastern",
	"Canada/Central",
	"Canada/Mountain",
	"Canada/Pacific",
	"America/New_York",
	"America/Chicago",
	"America/Denver",
	"America/Phoenix",
	"America/Los_Angeles",
	"America/Anchorage",
	"America/Halifax",
	"America/St_Johns",
	"America/Toronto",
	"America/Winnipeg",
	"America/Edmonton",
	"America/Vancouver",
	"America/Mexico_City",
	"America/Bogota",
	"America/Lima",
	"America/Santiago",
	"America/Sao_Paulo",
	"America/Argentina/Buenos_Aires",
	"America/Puerto_Rico",
	"Pacific/Honolulu",
	"Pacific/Auckland",
	"Europe/London",
	"Europe/Dublin",
	"Europe/Lisbon",
	"Europe/Madrid",
	"Europe/Paris",
	"Europe/Brussels",
	"Europe/Amsterdam",
	"Europe/Berlin",
	"Europe/Zurich",
	"Europe/Vienna",
	"Europe/Rome",
	"Europe/Stockholm",
	"Europe/Oslo",
	"Europe/Copenhagen",
	"Europe/Helsinki",
	"Europe/Warsaw",
	"Europe/Prague",
	"Europe/Athens",
	"Europe/Istanbul",
	"Europe/Kyiv",
	"Europe/Moscow",
	"Africa/Cairo",
	"Africa/Johannesburg",
	"Africa/Lagos",
	"Africa/Nairobi",
	"Asia/Jerusalem",
	"Asia/Riyadh",
	"Asia/Dubai",
	"Asia/Tehran",
	"Asia/Karachi",
	"Asia/Kolkata",
	"Asia/Dhaka",
	"Asia/Bangkok",
	"Asia/Jakarta",
	"Asia/Singapore",
	"Asia/Manila",
	"Asia/Hong_Kong",
	"Asia/Shanghai",
	"Asia/Taipei",
	"Asia/Seoul",
	"Asia/Tokyo",
	"Australia/Perth",
	"Australia/Adelaide",
	"Australia/Brisbane",
	"Australia/Sydney",
	"Australia/Melbourne",
};

/* Names that live in zoneinfo but are not zones a client sits in. */
static int tz_reserved(const char *s)
{
	return str_has_prefix(s, "posix/") || str_has_prefix(s, "right/") ||
	       strcmp(s, "localtime") == 0 || strcmp(s, "posixrules") == 0 ||
	       strcmp(s, "Factory") == 0;
}

static int tz_name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TZ_NAME_MAX || s[0] == '/' || s[len - 1] == '/')
		return 0;
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '/') {
			if (s[i + 1] == '/')
				return 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '+')
			return 0; /* also rules out '.', so no "..", no hidden files */
	}
	return !tz_reserved(s);
}

/* A regular file starting with the TZif magic under $TZDIR. */
static int tz_file_ok(const char *name)
{
	const char *dir = getenv("TZDIR");
	char magic[4];
	struct stat st;
	char *path;
	int fd, ok = 0;

	if (!dir || !*dir)
		dir = "/usr/share/zoneinfo";
	path = xasprintf("%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	free(path);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
	    memcmp(magic, "TZif", 4) == 0)
		ok = 1;
	close(fd);
	return ok;
}

int format_timezone_valid(const char *s)
{
	size_t i;

	if (!s || !tz_name_ok(s, strlen(s)))
		return 0;
	for (i = 0; i < N_ELEMS(common_zones); i++)
		if (strcmp(s, common_zones[i]) == 0)
			return 1;
	return tz_file_ok(s);
}

/* ---- web site ------------------------------------------------------------ */

static int port_ok(const char *s, size_t len)
{
	size_t i;
	long port = 0;

	if (len == 0 || len > 5)
		return 0;
	for (i = 0; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return 0;
		port = port * 10 + (s[i] - '0');
	}
	return port >= 1 && port <= 65535;
}

/* Host and optional port: "acme.example", "acme.example:8443",
 * "192.0.2.1", "[2001:db8::1]:8080". */
static int authority_check(const char *s, size_t len, struct err *e)
{
	const char *colon;
	size_t hlen = len;
	unsigned char addr[16];
	char tmp[64];

	if (memchr(s, '@', len))
		return err_setc(e, ERR_INVALID, "user names in the URL are not allowed");
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		hlen = close ? (size_t)(close - s) + 1 : len;
		if (!close || hlen - 2 >= sizeof(tmp))
			return err_setc(e, ERR_INVALID, "invalid IPv6 address in the host");
		memcpy(tmp, s + 1, hlen - 2);
		tmp[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, addr) != 1)
			return err_setc(e, ERR_INVALID, "invalid IPv6 address in the host");
	} else {
		colon = memchr(s, ':', len);
		hlen = colon ? (size_t)(colon - s) : len;
		if (hostname_check(s, hlen, "host", e) < 0)
			return ERR_INVALID;
		if (!memchr(s, '.', hlen))
			return err_setc(e, ERR_INVALID,
					"the host must be a domain name like "
					"acme.example");
	}
	if (hlen < len && (s[hlen] != ':' || !port_ok(s + hlen + 1, len - hlen - 1)))
		return err_setc(e, ERR_INVALID, "invalid port");
	return 0;
}

int format_url_check(const char *s, size_t len, struct err *e)
{
	size_t i, start, end;

	if (len >= 7 && strncasecmp(s, "http://", 7) == 0)
		start = 7;
	else if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
		start = 8;
	else
		return err_setc(e, ERR_INVALID, "must be an http:// or https:// URL");
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return err_setc(e, ERR_INVALID,
					"spaces, control and non-ASCII characters must be "
					"percent-encoded");
	}
	for (end = start; end < len && !strchr("/?#", s[end]); end++)
		;
	if (end == start)
		return err_setc(e, ERR_INVALID, "missing host");
	return authority_check(s + start, end - start, e);
}

int format_country_check(const char *s, size_t len, struct err *e)
{
	if (len == 2 && format_country_valid(s))
		return 0;
	return country_err(s, e);
}

int format_timezone_check(const char *s, size_t len, struct err *e)
{
	(void)len;
	if (format_timezone_valid(s))
		return 0;
	return err_setc(e, ERR_INVALID, "not a known IANA time zone name (e.g. America/New_York)");
}

/* ---- UUID ---------------------------------------------------------------- */

int format_uuid_valid(const char *s)
{
	if (!s || strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return 0;
		}
	}
	return 1;
}

/* ---- by name ------------------------------------------------------------- */

/* Reasons are prefixed with what the value is not, where the check's own
 * text does not say it already. */
static const struct {
	const char *name;
	const char *prefix;
	int (*check)(const char *s, size_t len, struct err *e);
} named[] = {
	{"email", "not a valid email address", format_email_check},
	{"e164", "not an E.164 phone number", format_phone_check},
	{"country", "", format_country_check},
	{"timezone", "", format_timezone_check},
	{"url", "not a valid web site URL", format_url_check},
};

static int uuid_check(const char *s, size_t len, struct err *e)
{
	if (strlen(s) == len && format_uuid_valid(s))
		return 0;
	return err_setc(e, ERR_INVALID, "not a UUID (8-4-4-4-12 hexadecimal digits)");
}

int format_known(const char *name)
{
	if (name && strcmp(name, "uuid") == 0)
		return 1;
	for (size_t i = 0; name && i < N_ELEMS(named); i++)
		if (strcmp(name, named[i].name) == 0)
			return 1;
	return 0;
}

int format_check(const char *name, const char *s, size_t len, struct err *e)
{
	if (strcmp(name, "uuid") == 0)
		return uuid_check(s, len, e);
	for (size_t i = 0; i < N_ELEMS(named); i++) {
		if (strcmp(name, named[i].name) != 0)
			continue;
		if (named[i].check(s, len, e) == 0)
			return 0;
		if (*named[i].prefix)
			err_prefix(e, "%s", named[i].prefix);
		return ERR_INVALID;
	}
	return err_setc(e, ERR_INVALID, "unknown format \"%s\"", name);
}
