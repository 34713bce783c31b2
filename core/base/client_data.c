/* client_data.c — validation of client_data_json (DESIGN.md "Client data"):
 * a table of fields, each with its kind and length cap, and the checks for
 * e-mail addresses, E.164 phones, ISO 3166 countries, IANA time zones and
 * web site URLs. */
#include "client_data.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema.h"
#include "util.h"

#define ROOT "client_data"
#define EMAIL_MAX 254
#define EMAIL_LOCAL_MAX 64
#define TZ_NAME_MAX 64
#define CUSTOM_MAX_KEYS 100
#define CUSTOM_KEY_MAX 100
#define CUSTOM_VALUE_MAX 5000
#define TAGS_MAX 50
#define TAG_MAX 100

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
 * 0, or -1 with the reason in why ("the domain ends with a dot"). */
static int hostname_check(const char *s, size_t len, const char *noun, char *why, size_t wl)
{
	size_t i, label = 0;

	if (len == 0)
		return snprintf(why, wl, "empty %s", noun), -1;
	if (s[0] == '.')
		return snprintf(why, wl, "the %s starts with a dot", noun), -1;
	if (s[len - 1] == '.')
		return snprintf(why, wl, "the %s ends with a dot", noun), -1;
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return snprintf(why, wl, "consecutive dots in the %s", noun), -1;
			if (s[i - 1] == '-')
				return snprintf(why, wl, "a %s label ends with a hyphen", noun), -1;
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-') {
			if (c == '@')
				return snprintf(why, wl, "more than one '@' (quote the local part "
							  "if it contains one)"),
				       -1;
			if (c > 0x20 && c < 0x7f)
				return snprintf(why, wl, "invalid character '%c' in the %s", c,
						noun),
				       -1;
			return snprintf(why, wl, "invalid character in the %s", noun), -1;
		}
		if (label == 0 && c == '-')
			return snprintf(why, wl, "a %s label starts with a hyphen", noun), -1;
		if (++label > 63)
			return snprintf(why, wl, "a %s label is longer than 63 characters", noun),
			       -1;
	}
	if (s[len - 1] == '-')
		return snprintf(why, wl, "a %s label ends with a hyphen", noun), -1;
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
 * quote included; -1 with why when malformed. */
static long quoted_local_len(const char *s, size_t len, char *why, size_t wl)
{
	size_t i;

	for (i = 1; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '"')
			return (long)i + 1;
		if (c == '\\') {
			c = i + 1 < len ? (unsigned char)s[i + 1] : 0;
			if (!((c >= 33 && c <= 126) || c == ' ' || c == '\t'))
				return snprintf(why, wl, "invalid escape in the quoted local part"),
				       -1;
			i++;
		} else if (!is_qtext(c)) {
			return snprintf(why, wl, "invalid character in the quoted local part"), -1;
		}
	}
	return snprintf(why, wl, "unterminated quoted local part"), -1;
}

/* Length of the dot-atom local part (up to, not including, the '@'). */
static long dot_atom_local_len(const char *s, size_t len, char *why, size_t wl)
{
	size_t i;

	for (i = 0; i < len && s[i] != '@'; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			if (i == 0)
				return snprintf(why, wl, "the local part starts with a dot"), -1;
			if (s[i - 1] == '.')
				return snprintf(why, wl, "consecutive dots in the local part"), -1;
			continue;
		}
		if (is_atext(c))
			continue;
		if (memchr(s, '<', len))
			return snprintf(why, wl, "display names are not allowed; give only the "
						  "address, like owner@acme.example"),
			       -1;
		if (c == ' ' || c == '"' || c == '\\' || c == '(' || c == ')' || c == ',' ||
		    c == ':' || c == ';' || c == '[' || c == ']')
			return snprintf(why, wl, "'%c' in the local part needs quoting", c), -1;
		return snprintf(why, wl, "invalid character in the local part"), -1;
	}
	if (i == len)
		return snprintf(why, wl, "missing '@'"), -1;
	if (i == 0)
		return snprintf(why, wl, "missing the part before '@'"), -1;
	if (s[i - 1] == '.')
		return snprintf(why, wl, "the local part ends with a dot"), -1;
	return (long)i;
}

static int email_check(const char *s, size_t len, char *why, size_t wl)
{
	size_t i;
	long local;
	const char *dom;
	size_t dlen;

	if (len > EMAIL_MAX)
		return snprintf(why, wl, "longer than %d characters", EMAIL_MAX), -1;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return snprintf(why, wl, "only ASCII characters are allowed"), -1;
		else if (is_ctl((unsigned char)s[i]) && s[i] != '\t')
			return snprintf(why, wl, "contains a control character"), -1;
	if (len > 0 && s[0] == '"')
		local = quoted_local_len(s, len, why, wl);
	else
		local = dot_atom_local_len(s, len, why, wl);
	if (local < 0)
		return -1;
	if ((size_t)local == len || s[local] != '@') {
		if (memchr(s, '<', len))
			return snprintf(why, wl, "display names are not allowed; give only the "
						  "address, like owner@acme.example"),
			       -1;
		return snprintf(why, wl, "expected '@' after the quoted local part"), -1;
	}
	if (local > EMAIL_LOCAL_MAX)
		return snprintf(why, wl, "the local part is longer than %d characters",
				EMAIL_LOCAL_MAX),
		       -1;
	dom = s + local + 1;
	dlen = len - (size_t)local - 1;
	if (dlen == 0)
		return snprintf(why, wl, "missing the domain after '@'"), -1;
	if (dom[0] == '[') {
		if (!address_literal_ok(dom, dlen))
			return snprintf(why, wl, "invalid address literal (use [192.0.2.1] or "
						  "[IPv6:2001:db8::1])"),
			       -1;
		return 0;
	}
	return hostname_check(dom, dlen, "domain", why, wl);
}

int client_data_email_valid(const char *s)
{
	char why[160];

	return s && email_check(s, strlen(s), why, sizeof(why)) == 0;
}

/* ---- phone --------------------------------------------------------------- */

static int phone_check(const char *s, size_t len, char *why, size_t wl)
{
	size_t i, digits = 0;

	if (len == 0 || s[0] != '+')
		return snprintf(why, wl, "start with '+' and the country code, e.g. "
					  "+15555550100"),
		       -1;
	for (i = 1; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return snprintf(why, wl, "only digits after '+', no spaces or punctuation"),
			       -1;
		digits++;
	}
	if (digits > 0 && s[1] == '0')
		return snprintf(why, wl, "the country code cannot start with 0"), -1;
	if (digits < 8)
		return snprintf(why, wl, "too short (8 to 15 digits after '+')"), -1;
	if (digits > 15)
		return snprintf(why, wl, "too long (8 to 15 digits after '+')"), -1;
	return 0;
}

int client_data_phone_valid(const char *s)
{
	char why[96];

	return s && phone_check(s, strlen(s), why, sizeof(why)) == 0;
}

/* ---- country ------------------------------------------------------------- */

/* The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted. */
static const char countries[] =
	"ADAEAFAGAIALAMAOAQARASATAUAWAXAZ"
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
		int cmp = countries[2 * mid] != a ? (unsigned char)countries[2 * mid] - (unsigned char)a
						  : (unsigned char)countries[2 * mid + 1] -
							    (unsigned char)b;

		if (cmp == 0)
			return 1;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int client_data_country_valid(const char *s)
{
	return s && strlen(s) == 2 && country_known(s[0], s[1]);
}

static void country_check(const char *s, char *why, size_t wl)
{
	char up[3] = { 0 };

	if (strlen(s) == 2) {
		up[0] = (char)(s[0] >= 'a' && s[0] <= 'z' ? s[0] - 'a' + 'A' : s[0]);
		up[1] = (char)(s[1] >= 'a' && s[1] <= 'z' ? s[1] - 'a' + 'A' : s[1]);
	}
	if (up[0] && country_known(up[0], up[1]))
		snprintf(why, wl, "not an ISO 3166-1 alpha-2 code: write it in capitals (%s)", up);
	else if (strcmp(up, "UK") == 0)
		snprintf(why, wl, "not an ISO 3166-1 alpha-2 code (the United Kingdom is GB)");
	else
		snprintf(why, wl, "not an ISO 3166-1 alpha-2 code (e.g. US, GB, DE)");
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

int client_data_timezone_valid(const char *s)
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
static int authority_check(const char *s, size_t len, char *why, size_t wl)
{
	const char *colon;
	size_t hlen = len;
	unsigned char addr[16];
	char tmp[64];

	if (memchr(s, '@', len))
		return snprintf(why, wl, "user names in the URL are not allowed"), -1;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		hlen = close ? (size_t)(close - s) + 1 : len;
		if (!close || hlen - 2 >= sizeof(tmp))
			return snprintf(why, wl, "invalid IPv6 address in the host"), -1;
		memcpy(tmp, s + 1, hlen - 2);
		tmp[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, addr) != 1)
			return snprintf(why, wl, "invalid IPv6 address in the host"), -1;
	} else {
		colon = memchr(s, ':', len);
		hlen = colon ? (size_t)(colon - s) : len;
		if (hostname_check(s, hlen, "host", why, wl) < 0)
			return -1;
		if (!memchr(s, '.', hlen))
			return snprintf(why, wl, "the host must be a domain name like "
						  "acme.example"),
			       -1;
	}
	if (hlen < len && (s[hlen] != ':' || !port_ok(s + hlen + 1, len - hlen - 1)))
		return snprintf(why, wl, "invalid port"), -1;
	return 0;
}

static int url_check(const char *s, size_t len, char *why, size_t wl)
{
	size_t i, start, end;

	if (len >= 7 && strncasecmp(s, "http://", 7) == 0)
		start = 7;
	else if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
		start = 8;
	else
		return snprintf(why, wl, "must be an http:// or https:// URL"), -1;
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return snprintf(why, wl, "spaces, control and non-ASCII characters must be "
						  "percent-encoded"),
			       -1;
	}
	for (end = start; end < len && !strchr("/?#", s[end]); end++)
		;
	if (end == start)
		return snprintf(why, wl, "missing host"), -1;
	return authority_check(s + start, end - start, why, wl);
}

/* ---- client_data_validate ------------------------------------------------ */

enum kind { K_TEXT, K_EMAIL, K_PHONE, K_COUNTRY, K_TIMEZONE, K_URL, K_CUSTOM, K_TAGS };

struct field {
	const char *name;
	enum kind kind;
	unsigned max; /* characters, for strings */
	int required;
};

static const struct field fields[] = {
	{ "name", K_TEXT, 255, 1 },
	{ "email", K_EMAIL, EMAIL_MAX, 1 },
	{ "first_name", K_TEXT, 100, 0 },
	{ "last_name", K_TEXT, 100, 0 },
	{ "phone", K_PHONE, 16, 0 },
	{ "address", K_TEXT, 255, 0 },
	{ "city", K_TEXT, 100, 0 },
	{ "state", K_TEXT, 100, 0 },
	{ "postal_code", K_TEXT, 20, 0 },
	{ "country", K_COUNTRY, 2, 0 },
	{ "website", K_URL, 2048, 0 },
	{ "timezone", K_TIMEZONE, TZ_NAME_MAX, 0 },
	{ "custom_values", K_CUSTOM, 0, 0 },
	{ "tags", K_TAGS, 0, 0 },
	{ "external_id", K_TEXT, 255, 0 },
};

struct ctx {
	struct json *problems;
	struct buf path;
	size_t added;
};

static void problem(struct ctx *c, const char *msg)
{
	if (c->added > SCHEMA_MAX_PROBLEMS)
		return;
	if (c->added == SCHEMA_MAX_PROBLEMS) {
		char tmp[96];

		snprintf(tmp, sizeof(tmp), "too many problems; only the first %d are listed",
			 SCHEMA_MAX_PROBLEMS);
		c->added += schema_problem_add(c->problems, ROOT, tmp);
		return;
	}
	c->added += schema_problem_add(c->problems, buf_cstr(&c->path), msg);
}

static void problemf(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problemf(struct ctx *c, const char *fmt, ...)
{
	struct buf m;
	va_list ap;

	buf_init(&m);
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	problem(c, buf_cstr(&m));
	buf_free(&m);
}

static void path_push_key(struct ctx *c, const char *key)
{
	schema_path_key(&c->path, key, strlen(key));
}

static void path_pop(struct ctx *c, size_t mark)
{
	c->path.len = mark;
	if (c->path.data)
		c->path.data[mark] = '\0';
}

static const char *type_of(const struct json *v)
{
	if (v->type == JSON_NUMBER && v->u.num.is_int)
		return "integer";
	return json_type_name(v->type);
}

static int has_ctl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (is_ctl((unsigned char)s[i]))
			return 1;
	return 0;
}

static int blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

/* A string of 1..max characters without control characters; 0 or -1 after
 * reporting. */
static int check_text(struct ctx *c, const struct json *v, unsigned max)
{
	if (v->type != JSON_STRING) {
		problemf(c, "expected string, got %s", type_of(v));
		return -1;
	}
	if (v->u.str.len == 0) {
		problem(c, "must not be empty");
		return -1;
	}
	if (has_ctl(v->u.str.s, v->u.str.len)) {
		problem(c, "contains a control character");
		return -1;
	}
	if (max && schema_utf8_len(v->u.str.s, v->u.str.len) > max) {
		problemf(c, "longer than %u characters", max);
		return -1;
	}
	if (blank(v->u.str.s, v->u.str.len)) {
		problem(c, "must not be blank");
		return -1;
	}
	return 0;
}

static void check_custom_values(struct ctx *c, const struct json *v)
{
	size_t i, mark = c->path.len;

	if (v->type != JSON_OBJECT) {
		problemf(c, "expected object, got %s", type_of(v));
		return;
	}
	if (v->u.obj.n > CUSTOM_MAX_KEYS)
		problemf(c, "more than %d keys", CUSTOM_MAX_KEYS);
	for (i = 0; i < v->u.obj.n && c->added <= SCHEMA_MAX_PROBLEMS; i++) {
		const char *k = v->u.obj.keys[i];
		const struct json *x = v->u.obj.vals[i];
		size_t klen = strlen(k);

		path_push_key(c, k);
		if (klen == 0)
			problem(c, "empty key");
		else if (has_ctl(k, klen))
			problem(c, "key contains a control character");
		else if (schema_utf8_len(k, klen) > CUSTOM_KEY_MAX)
			problemf(c, "key longer than %d characters", CUSTOM_KEY_MAX);
		else if (x->type == JSON_STRING &&
			 schema_utf8_len(x->u.str.s, x->u.str.len) > CUSTOM_VALUE_MAX)
			problemf(c, "longer than %d characters", CUSTOM_VALUE_MAX);
		else if (x->type == JSON_STRING && strlen(x->u.str.s) != x->u.str.len)
			problem(c, "must not contain NUL characters");
		else if (x->type != JSON_STRING && x->type != JSON_NUMBER && x->type != JSON_BOOL)
			problemf(c, "expected string, number or boolean, got %s", type_of(x));
		path_pop(c, mark);
	}
}

static void check_tags(struct ctx *c, const struct json *v)
{
	size_t i, mark = c->path.len;

	if (v->type != JSON_ARRAY) {
		problemf(c, "expected array, got %s", type_of(v));
		return;
	}
	if (v->u.arr.n > TAGS_MAX)
		problemf(c, "more than %d items", TAGS_MAX);
	for (i = 0; i < v->u.arr.n && c->added <= SCHEMA_MAX_PROBLEMS; i++) {
		buf_printf(&c->path, "[%zu]", i);
		check_text(c, v->u.arr.items[i], TAG_MAX);
		path_pop(c, mark);
	}
}

static void check_field(struct ctx *c, const struct field *f, const struct json *v)
{
	char why[192];
	const char *s;

	if (f->kind == K_CUSTOM) {
		check_custom_values(c, v);
		return;
	}
	if (f->kind == K_TAGS) {
		check_tags(c, v);
		return;
	}
	if (check_text(c, v, f->kind == K_TEXT || f->kind == K_URL ? f->max : 0) < 0)
		return;
	s = v->u.str.s;
	switch (f->kind) {
	case K_EMAIL:
		if (email_check(s, v->u.str.len, why, sizeof(why)) < 0)
			problemf(c, "not a valid email address: %s", why);
		break;
	case K_PHONE:
		if (phone_check(s, v->u.str.len, why, sizeof(why)) < 0)
			problemf(c, "not an E.164 phone number: %s", why);
		break;
	case K_COUNTRY:
		if (!client_data_country_valid(s)) {
			country_check(s, why, sizeof(why));
			problem(c, why);
		}
		break;
	case K_TIMEZONE:
		if (!client_data_timezone_valid(s))
			problem(c, "not a known IANA time zone name (e.g. America/New_York)");
		break;
	case K_URL:
		if (url_check(s, v->u.str.len, why, sizeof(why)) < 0)
			problemf(c, "not a valid web site URL: %s", why);
		break;
	case K_TEXT:
	case K_CUSTOM:
	case K_TAGS:
		break;
	}
}

/* Levenshtein distance of short strings, capped at 3. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[33];

	if (la > 32 || lb > 32)
		return 3;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] < 3 ? row[lb] : 3;
}

static void unknown_field(struct ctx *c, const char *key)
{
	size_t i, best = 3, at = 0;

	for (i = 0; i < N_ELEMS(fields); i++) {
		size_t d = edit_distance(key, fields[i].name);

		if (d < best) {
			best = d;
			at = i;
		}
	}
	if (best <= 2 && strlen(key) > best)
		problemf(c, "unknown field (did you mean \"%s\"?)", fields[at].name);
	else
		problem(c, "unknown field");
}

static const struct field *field_find(const char *key)
{
	size_t i;

	for (i = 0; i < N_ELEMS(fields); i++)
		if (strcmp(fields[i].name, key) == 0)
			return &fields[i];
	return NULL;
}

static void check_object(struct ctx *c, const struct json *data)
{
	unsigned char seen[N_ELEMS(fields)] = { 0 };
	size_t i, mark = c->path.len;

	for (i = 0; i < data->u.obj.n && c->added <= SCHEMA_MAX_PROBLEMS; i++) {
		const char *k = data->u.obj.keys[i];
		const struct field *f = field_find(k);

		path_push_key(c, k);
		if (!f) {
			unknown_field(c, k);
		} else if (seen[f - fields]) {
			problem(c, "duplicate field");
		} else {
			seen[f - fields] = 1;
			check_field(c, f, data->u.obj.vals[i]);
		}
		path_pop(c, mark);
	}
	for (i = 0; i < N_ELEMS(fields); i++) {
		if (!fields[i].required || seen[i])
			continue;
		path_push_key(c, fields[i].name);
		problem(c, "required");
		path_pop(c, mark);
	}
}

size_t client_data_validate(const struct json *data, struct json *problems)
{
	struct ctx c;

	c.problems = problems;
	c.added = 0;
	buf_init(&c.path);
	buf_puts(&c.path, ROOT);
	if (!data)
		problem(&c, "required");
	else if (data->type != JSON_OBJECT)
		problemf(&c, "expected object, got %s", type_of(data));
	else
		check_object(&c, data);
	buf_free(&c.path);
	return c.added;
}
