/* test_client_data.c — unit tests for core/base/client_data.c: the field checks
 * (e-mail, phone, country, time zone) and whole documents with the exact
 * problems they yield. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_data.h"
#include "formats.h"
#include "json.h"
#include "schema.h"
#include "testlib.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static struct json *parse(const char *text)
{
	struct err e = {0};
	struct json *v = json_parse(text, strlen(text), JSON_DEFAULT_MAX_DEPTH, &e);

	ck_assert_msg(v != NULL, "parse of '%s' failed: %s", text, e.msg);
	return v;
}

/* n copies of c (malloc'd). */
static char *rep(char c, size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- e-mail -------------------------------------------------------------- */

/* clang-format off */
static const char *const emails_ok[] = {
	"owner@acme.example",
	"o'hara@x.example",
	"\"a b\"@x.example",
	"\"a@b\"@x.example",
	"\"a..b\"@x.example",
	"\"a\\\"b\"@x.example",
	"\"a\\\\b\"@x.example",
	"\"\"@x.example",
	"a+tag@x.example",
	"a.b.c@x.example",
	"A.B@X.EXAMPLE",
	"!#$%&'*+-/=?^_`{|}~@x.example",
	"a@localhost",
	"a@b",
	"a@x-y.example",
	"a@1.2",
	"a@xn--bcher-kva.example",
	"x@[192.0.2.1]",
	"x@[IPv6:2001:db8::1]",
	"x@[ipv6:::1]",
	"x@[IPv6:::ffff:192.0.2.1]",
	"user.name+tag-1@sub.domain.example",
};
/* clang-format on */

/* clang-format off */
static const char *const emails_bad[] = {
	"",
	"a",
	"@x.example",
	"a@",
	"a..b@x",
	".a@x.example",
	"a.@x.example",
	"a@x.example.",
	"a@.x.example",
	"a@x..example",
	"a b@x.example",
	"a\"b@x.example",
	"a(b)@x.example",
	"a,b@x.example",
	"a:b@x.example",
	"a;b@x.example",
	"a[b]@x.example",
	"a\\b@x.example",
	"Ada <a@x.example>",
	"\"Ada\" <a@x.example>",
	"<a@x.example>",
	"a@b@x.example",
	"a@-x.example",
	"a@x-.example",
	"a@x.-y.example",
	"a@x_y.example",
	"a@x!.example",
	"a@[300.1.1.1]",
	"a@[1.2.3]",
	"a@[01.2.3.4]",
	"a@[IPv6:zz]",
	"a@[IPv6:192.0.2.1]",
	"a@[x]",
	"a@[]",
	"a@[192.0.2.1",
	"a@192.0.2.1]",
	"\"a\"b@x.example",
	"\"a\".b@x.example",
	"\"unterminated@x.example",
	"\"a\\\"@x.example",
	"(comment)a@x.example",
	"a@x.example (comment)",
	"a@x.example ",
	" a@x.example",
	"\xc3\xbc@x.example",
	"a@\xc3\xbc.example",
	"a\n@x.example",
	"a@x.example\n",
	"a\t@x.example",
	"\"a\nb\"@x.example",
	"\"a\"\"b\"@x.example",
	"a@x:25",
};
/* clang-format on */

START_TEST(test_email_valid)
{
	ck_assert_msg(format_email_valid(emails_ok[_i]), "'%s' refused", emails_ok[_i]);
}
END_TEST

START_TEST(test_email_invalid)
{
	ck_assert_msg(!format_email_valid(emails_bad[_i]), "'%s' accepted", emails_bad[_i]);
}
END_TEST

START_TEST(test_email_lengths)
{
	char *local64 = rep('a', 64), *local65 = rep('a', 65), *label63 = rep('b', 63);
	char *label64 = rep('b', 64);
	char buf[512];

	/* local part: 64 ok, 65 too long */
	snprintf(buf, sizeof(buf), "%s@x.example", local64);
	ck_assert(format_email_valid(buf));
	snprintf(buf, sizeof(buf), "%s@x.example", local65);
	ck_assert(!format_email_valid(buf));
	/* a quoted local part counts its quotes */
	snprintf(buf, sizeof(buf), "\"%.62s\"@x.example", local64);
	ck_assert(format_email_valid(buf));
	snprintf(buf, sizeof(buf), "\"%.63s\"@x.example", local64);
	ck_assert(!format_email_valid(buf));
	/* domain labels: 63 ok, 64 too long */
	snprintf(buf, sizeof(buf), "a@%s.example", label63);
	ck_assert(format_email_valid(buf));
	snprintf(buf, sizeof(buf), "a@%s.example", label64);
	ck_assert(!format_email_valid(buf));
	/* the whole address: 254 ok, 255 too long (64 + 1 + 63.63.61 = 254) */
	snprintf(buf, sizeof(buf), "%s@%s.%s.%.61s", local64, label63, label63, label63);
	ck_assert_uint_eq(strlen(buf), 254);
	ck_assert(format_email_valid(buf));
	snprintf(buf, sizeof(buf), "%s@%s.%s.%.62s", local64, label63, label63, label63);
	ck_assert_uint_eq(strlen(buf), 255);
	ck_assert(!format_email_valid(buf));
	ck_assert(!format_email_valid(NULL));
	free(local64);
	free(local65);
	free(label63);
	free(label64);
}
END_TEST

/* ---- phone --------------------------------------------------------------- */

/* clang-format off */
static const char *const phones_ok[] = {
	"+15555550100", "+12345678", "+123456789012345", "+442071838750", "+4915123456789",
	"+81312345678", "+9999999999",
};
/* clang-format on */

/* clang-format off */
static const char *const phones_bad[] = {
	"",
	"+",
	"15555550100",
	"+1234567",
	"+1234567890123456",
	"+0123456789",
	"+1 555 555 0100",
	"+1-555-555-0100",
	"+1(555)5550100",
	"++15555550100",
	"+1555555010a",
	" +15555550100",
	"+15555550100 ",
	"00441234567890",
	"+１5555550100",
	"+1.5555550100",
};
/* clang-format on */

START_TEST(test_phone_valid)
{
	ck_assert_msg(format_phone_valid(phones_ok[_i]), "'%s' refused", phones_ok[_i]);
}
END_TEST

START_TEST(test_phone_invalid)
{
	ck_assert_msg(!format_phone_valid(phones_bad[_i]), "'%s' accepted", phones_bad[_i]);
	ck_assert(!format_phone_valid(NULL));
}
END_TEST

/* ---- country ------------------------------------------------------------- */

/* The officially assigned ISO 3166-1 alpha-2 codes (ISO 3166 Maintenance
 * Agency; 249 codes). */
/* clang-format off */
static const char *const countries[] = {
	"AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
	"AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ",
	"BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK",
	"CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM",
	"DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR",
	"GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
	"GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN",
	"IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN",
	"KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV",
	"LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ",
	"MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI",
	"NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
	"PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC",
	"SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV",
	"SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR",
	"TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
	"VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};
/* clang-format on */

/* clang-format off */
static const char *const countries_bad[] = {
	/* withdrawn (transitionally reserved) */
	"YU", "CS", "AN", "ZR", "TP", "BU", "DD", "NT", "FX",
	/* exceptionally reserved, user-assigned, unassigned */
	"SU", "UK", "EU", "XK", "AA", "QM", "XA", "ZZ", "AB", "JA",
	/* not two capitals */
	"us", "Us", "uS", "U", "USA", "", "00", "U1", "U ", " US", "US ",
};
/* clang-format on */

START_TEST(test_country_list)
{
	size_t i;
	int a, b, n = 0;
	char code[3] = {0};

	ck_assert_uint_eq(N_ELEMS(countries), 249);
	for (i = 0; i < N_ELEMS(countries); i++)
		ck_assert_msg(format_country_valid(countries[i]), "%s refused", countries[i]);
	/* nothing outside the list is accepted */
	for (a = 'A'; a <= 'Z'; a++) {
		for (b = 'A'; b <= 'Z'; b++) {
			code[0] = (char)a;
			code[1] = (char)b;
			n += format_country_valid(code);
		}
	}
	ck_assert_int_eq(n, 249);
}
END_TEST

START_TEST(test_country_invalid)
{
	ck_assert_msg(!format_country_valid(countries_bad[_i]), "'%s' accepted", countries_bad[_i]);
	ck_assert(!format_country_valid(NULL));
}
END_TEST

/* tzdata's ISO 3166 table and our list agree. tzdata is a test dependency
 * (scripts/lib.sh installs it): without it this fails rather than pass unseen. */
START_TEST(test_country_matches_tzdata)
{
	FILE *f = fopen("/usr/share/zoneinfo/iso3166.tab", "re");
	char line[256];
	int n = 0;

	ck_assert_msg(f,
		      "/usr/share/zoneinfo/iso3166.tab: %s — install tzdata (scripts/lib.sh "
		      "does) to run this test",
		      strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || strlen(line) < 3)
			continue;
		line[2] = '\0';
		ck_assert_msg(format_country_valid(line), "%s (iso3166.tab) refused", line);
		n++;
	}
	fclose(f);
	ck_assert_int_eq(n, 249);
}
END_TEST

/* ---- time zone ----------------------------------------------------------- */

/* clang-format off */
static const char *const zones_ok[] = {
	"US/Central", "America/New_York", "UTC", "Etc/UTC", "Europe/London", "Asia/Kolkata",
	"Australia/Sydney", "Pacific/Honolulu", "Canada/Eastern", "America/Argentina/Buenos_Aires",
};
/* clang-format on */

/* clang-format off */
static const char *const zones_bad[] = {
	"../etc/passwd",
	"/etc/passwd",
	"America/../../../etc/passwd",
	"America/./New_York",
	".hidden",
	"America//New_York",
	"America/New_York/",
	"/America/New_York",
	"",
	"Mars/Olympus_Mons",
	"america/new_york",
	"America/New York",
	"America/New_York ",
	"America\\New_York",
	"posix/UTC",
	"right/UTC",
	"localtime",
	"posixrules",
	"Factory",
	"zone.tab",
	"iso3166.tab",
	"tzdata.zi",
	"leapseconds",
	"America",
	"US",
	"Europe/London.",
	"UTC\n",
	"America/New_York\xc3\xa9",
	"EST5EDT%",
};
/* clang-format on */

START_TEST(test_timezone_valid)
{
	ck_assert_msg(format_timezone_valid(zones_ok[_i]), "'%s' refused", zones_ok[_i]);
}
END_TEST

START_TEST(test_timezone_invalid)
{
	ck_assert_msg(!format_timezone_valid(zones_bad[_i]), "'%s' accepted", zones_bad[_i]);
	ck_assert(!format_timezone_valid(NULL));
}
END_TEST

START_TEST(test_timezone_long_name)
{
	char *s = rep('A', 65);

	ck_assert(!format_timezone_valid(s));
	free(s);
}
END_TEST

/* Names beyond the built-in list are found in tzdata (a test dependency, see
 * test_country_matches_tzdata). */
START_TEST(test_timezone_from_tzdata)
{
	ck_assert_msg(access("/usr/share/zoneinfo/Asia/Kathmandu", F_OK) == 0,
		      "/usr/share/zoneinfo/Asia/Kathmandu: %s — install tzdata (scripts/lib.sh "
		      "does) to run this test",
		      strerror(errno));
	unsetenv("TZDIR");
	ck_assert(format_timezone_valid("Asia/Kathmandu"));
	ck_assert(format_timezone_valid("Etc/GMT+5"));
	ck_assert(format_timezone_valid("America/Indiana/Indianapolis"));
}
END_TEST

/* Without tzdata, the built-in common names still work. */
START_TEST(test_timezone_builtin)
{
	setenv("TZDIR", "/nonexistent/zoneinfo", 1);
	ck_assert(format_timezone_valid("US/Central"));
	ck_assert(format_timezone_valid("America/New_York"));
	ck_assert(format_timezone_valid("Europe/Berlin"));
	ck_assert(format_timezone_valid("UTC"));
	ck_assert(!format_timezone_valid("Asia/Kathmandu"));
	ck_assert(!format_timezone_valid("../etc/passwd"));
	unsetenv("TZDIR");
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* $TZDIR is honoured; only regular TZif files count. */
START_TEST(test_timezone_tzdir)
{
	char dir[] = "/tmp/test_client_data_XXXXXX";
	char *sub, *zone, *text, *fifo, *outside;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	sub = xasprintf("%s/Fake", dir);
	zone = xasprintf("%s/Fake/Zone", dir);
	text = xasprintf("%s/Fake/Text", dir);
	fifo = xasprintf("%s/Fake/Fifo", dir);
	outside = xasprintf("%s/Fake/Link", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	write_file(zone, "TZif2 fake");
	write_file(text, "not a zone");
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(symlink("Zone", outside), 0);
	setenv("TZDIR", dir, 1);
	ck_assert(format_timezone_valid("Fake/Zone"));
	ck_assert(format_timezone_valid("Fake/Link"));
	ck_assert(!format_timezone_valid("Fake/Text"));
	ck_assert(!format_timezone_valid("Fake/Fifo"));
	ck_assert(!format_timezone_valid("Fake"));
	ck_assert(!format_timezone_valid("Fake/Missing"));
	ck_assert(format_timezone_valid("US/Central")); /* built in */
	unsetenv("TZDIR");
	unlink(outside);
	unlink(fifo);
	unlink(text);
	unlink(zone);
	rmdir(sub);
	rmdir(dir);
	free(outside);
	free(fifo);
	free(text);
	free(zone);
	free(sub);
}
END_TEST

/* ---- client_data_validate ------------------------------------------------ */

struct dcase {
	const char *data;
	const char *want; /* the problems array */
};

#define OK_BASE "\"name\":\"Acme\",\"email\":\"a@acme.example\""

/* clang-format off */
static const struct dcase dcases[] = {
	/* the example from DESIGN.md */
	{ "{\"name\": \"Acme Dental\", \"email\": \"owner@acme.example\","
	  " \"first_name\": \"Ada\", \"last_name\": \"Lovelace\", \"phone\": \"+15555550100\","
	  " \"address\": \"1 Main St\", \"city\": \"Austin\", \"state\": \"TX\","
	  " \"postal_code\": \"78701\", \"country\": \"US\","
	  " \"website\": \"https://acme.example\", \"timezone\": \"US/Central\","
	  " \"custom_values\": {\"welcome_text\": \"Hi\"}, \"tags\": [\"dental\"],"
	  " \"external_id\": \"crm-4711\"}",
	  "[]" },
	{ "{" OK_BASE "}", "[]" },
	{ "{\"name\":\"Caf\\u00e9 \\u00dcber\",\"email\":\"\\\"a b\\\"@[192.0.2.1]\"}", "[]" },
	/* shape */
	{ "[]", "[{\"field\":\"client_data\",\"message\":\"expected object, got array\"}]" },
	{ "\"x\"", "[{\"field\":\"client_data\",\"message\":\"expected object, got string\"}]" },
	{ "null", "[{\"field\":\"client_data\",\"message\":\"expected object, got null\"}]" },
	{ "{}",
	  "[{\"field\":\"client_data.name\",\"message\":\"required\"},"
	  "{\"field\":\"client_data.email\",\"message\":\"required\"}]" },
	/* name */
	{ "{\"name\":\"\",\"email\":\"a@acme.example\"}",
	  "[{\"field\":\"client_data.name\",\"message\":\"must not be empty\"}]" },
	{ "{\"name\":\"   \",\"email\":\"a@acme.example\"}",
	  "[{\"field\":\"client_data.name\",\"message\":\"must not be blank\"}]" },
	{ "{\"name\":12,\"email\":\"a@acme.example\"}",
	  "[{\"field\":\"client_data.name\",\"message\":\"expected string, got integer\"}]" },
	{ "{\"name\":null,\"email\":\"a@acme.example\"}",
	  "[{\"field\":\"client_data.name\",\"message\":\"expected string, got null\"}]" },
	{ "{\"name\":\"a\\nb\",\"email\":\"a@acme.example\"}",
	  "[{\"field\":\"client_data.name\",\"message\":\"contains a control character\"}]" },
	{ "{\"name\":\"a\\u0000b\",\"email\":\"a@acme.example\"}",
	  "[{\"field\":\"client_data.name\",\"message\":\"contains a control character\"}]" },
	/* email */
	{ "{\"name\":\"A\",\"email\":\"x\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: missing "
	  "'@'\"}]" },
	{ "{\"name\":\"A\",\"email\":\"a..b@x\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: "
	  "consecutive dots in the local part\"}]" },
	{ "{\"name\":\"A\",\"email\":\"a@x.example.\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: the "
	  "domain ends with a dot\"}]" },
	{ "{\"name\":\"A\",\"email\":\"Ada <a@x.example>\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: display "
	  "names are not allowed; give only the address, like owner@acme.example\"}]" },
	{ "{\"name\":\"A\",\"email\":\"\\\"Ada\\\" <a@x.example>\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: display "
	  "names are not allowed; give only the address, like owner@acme.example\"}]" },
	{ "{\"name\":\"A\",\"email\":\"a b@x.example\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: ' ' in "
	  "the local part needs quoting\"}]" },
	{ "{\"name\":\"A\",\"email\":\"a@b@x.example\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: more "
	  "than one '@' (quote the local part if it contains one)\"}]" },
	{ "{\"name\":\"A\",\"email\":\"a@x_y.example\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: invalid "
	  "character '_' in the domain\"}]" },
	{ "{\"name\":\"A\",\"email\":\"a@[300.0.0.1]\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: invalid "
	  "address literal (use [192.0.2.1] or [IPv6:2001:db8::1])\"}]" },
	{ "{\"name\":\"A\",\"email\":\"@x.example\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: missing "
	  "the part before '@'\"}]" },
	{ "{\"name\":\"A\",\"email\":\"a@\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: missing "
	  "the domain after '@'\"}]" },
	{ "{\"name\":\"A\",\"email\":\"\\u00fc@x.example\"}",
	  "[{\"field\":\"client_data.email\",\"message\":\"not a valid email address: only "
	  "ASCII characters are allowed\"}]" },
	{ "{\"name\":\"A\",\"email\":[\"a@x.example\"]}",
	  "[{\"field\":\"client_data.email\",\"message\":\"expected string, got array\"}]" },
	/* phone */
	{ "{" OK_BASE ",\"phone\":\"+0155555501\"}",
	  "[{\"field\":\"client_data.phone\",\"message\":\"not an E.164 phone number: the "
	  "country code cannot start with 0\"}]" },
	{ "{" OK_BASE ",\"phone\":\"+1 555 555 0100\"}",
	  "[{\"field\":\"client_data.phone\",\"message\":\"not an E.164 phone number: only "
	  "digits after '+', no spaces or punctuation\"}]" },
	{ "{" OK_BASE ",\"phone\":\"5555550100\"}",
	  "[{\"field\":\"client_data.phone\",\"message\":\"not an E.164 phone number: start "
	  "with '+' and the country code, e.g. +15555550100\"}]" },
	{ "{" OK_BASE ",\"phone\":\"+1234567\"}",
	  "[{\"field\":\"client_data.phone\",\"message\":\"not an E.164 phone number: too "
	  "short (8 to 15 digits after '+')\"}]" },
	{ "{" OK_BASE ",\"phone\":\"+1234567890123456\"}",
	  "[{\"field\":\"client_data.phone\",\"message\":\"not an E.164 phone number: too "
	  "long (8 to 15 digits after '+')\"}]" },
	{ "{" OK_BASE ",\"phone\":15555550100}",
	  "[{\"field\":\"client_data.phone\",\"message\":\"expected string, got integer\"}]" },
	/* country */
	{ "{" OK_BASE ",\"country\":\"YU\"}",
	  "[{\"field\":\"client_data.country\",\"message\":\"not an ISO 3166-1 alpha-2 code "
	  "(e.g. US, GB, DE)\"}]" },
	{ "{" OK_BASE ",\"country\":\"us\"}",
	  "[{\"field\":\"client_data.country\",\"message\":\"not an ISO 3166-1 alpha-2 code: "
	  "write it in capitals (US)\"}]" },
	{ "{" OK_BASE ",\"country\":\"UK\"}",
	  "[{\"field\":\"client_data.country\",\"message\":\"not an ISO 3166-1 alpha-2 code "
	  "(the United Kingdom is GB)\"}]" },
	{ "{" OK_BASE ",\"country\":\"USA\"}",
	  "[{\"field\":\"client_data.country\",\"message\":\"not an ISO 3166-1 alpha-2 code "
	  "(e.g. US, GB, DE)\"}]" },
	/* timezone */
	{ "{" OK_BASE ",\"timezone\":\"../etc/passwd\"}",
	  "[{\"field\":\"client_data.timezone\",\"message\":\"not a known IANA time zone name "
	  "(e.g. America/New_York)\"}]" },
	{ "{" OK_BASE ",\"timezone\":\"America/New_York\"}", "[]" },
	/* website */
	{ "{" OK_BASE ",\"website\":\"http://acme.example:8080/p/a?q=1&r=%20#frag\"}", "[]" },
	{ "{" OK_BASE ",\"website\":\"HTTPS://ACME.EXAMPLE\"}", "[]" },
	{ "{" OK_BASE ",\"website\":\"https://[2001:db8::1]:443/\"}", "[]" },
	{ "{" OK_BASE ",\"website\":\"https://192.0.2.1\"}", "[]" },
	{ "{" OK_BASE ",\"website\":\"ftp://acme.example\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: must be "
	  "an http:// or https:// URL\"}]" },
	{ "{" OK_BASE ",\"website\":\"acme.example\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: must be "
	  "an http:// or https:// URL\"}]" },
	{ "{" OK_BASE ",\"website\":\"https://acme\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: the "
	  "host must be a domain name like acme.example\"}]" },
	{ "{" OK_BASE ",\"website\":\"https://\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: missing "
	  "host\"}]" },
	{ "{" OK_BASE ",\"website\":\"https://user:pw@acme.example\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: user "
	  "names in the URL are not allowed\"}]" },
	{ "{" OK_BASE ",\"website\":\"https://acme.example:99999\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: invalid "
	  "port\"}]" },
	{ "{" OK_BASE ",\"website\":\"https://acme.example:\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: invalid "
	  "port\"}]" },
	{ "{" OK_BASE ",\"website\":\"https://acme.example/a b\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: spaces, "
	  "control and non-ASCII characters must be percent-encoded\"}]" },
	{ "{" OK_BASE ",\"website\":\"https://ac_me.example/\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: invalid "
	  "character '_' in the host\"}]" },
	{ "{" OK_BASE ",\"website\":\"https://[zz]/\"}",
	  "[{\"field\":\"client_data.website\",\"message\":\"not a valid web site URL: invalid "
	  "IPv6 address in the host\"}]" },
	/* optional text fields */
	{ "{" OK_BASE ",\"first_name\":\"\"}",
	  "[{\"field\":\"client_data.first_name\",\"message\":\"must not be empty\"}]" },
	{ "{" OK_BASE ",\"city\":null}",
	  "[{\"field\":\"client_data.city\",\"message\":\"expected string, got null\"}]" },
	{ "{" OK_BASE ",\"address\":\"1 Main St\\r\\nSuite 2\"}",
	  "[{\"field\":\"client_data.address\",\"message\":\"contains a control character\"}]" },
	{ "{" OK_BASE ",\"postal_code\":\"123456789012345678901\"}",
	  "[{\"field\":\"client_data.postal_code\",\"message\":\"longer than 20 characters\"}]" },
	{ "{" OK_BASE ",\"state\":true}",
	  "[{\"field\":\"client_data.state\",\"message\":\"expected string, got boolean\"}]" },
	{ "{" OK_BASE ",\"external_id\":1.5}",
	  "[{\"field\":\"client_data.external_id\",\"message\":\"expected string, got number\"}]" },
	/* tags */
	{ "{" OK_BASE ",\"tags\":[]}", "[]" },
	{ "{" OK_BASE ",\"tags\":[\"a\",\"\",3,\"x\",\" \"]}",
	  "[{\"field\":\"client_data.tags[1]\",\"message\":\"must not be empty\"},"
	  "{\"field\":\"client_data.tags[2]\",\"message\":\"expected string, got integer\"},"
	  "{\"field\":\"client_data.tags[4]\",\"message\":\"must not be blank\"}]" },
	{ "{" OK_BASE ",\"tags\":\"dental\"}",
	  "[{\"field\":\"client_data.tags\",\"message\":\"expected array, got string\"}]" },
	/* custom_values */
	{ "{" OK_BASE ",\"custom_values\":{}}", "[]" },
	{ "{" OK_BASE ",\"custom_values\":{\"s\":\"multi\\nline\",\"n\":1.5,\"b\":false}}", "[]" },
	{ "{" OK_BASE ",\"custom_values\":{\"o\":{},\"\":\"x\",\"a.b\":null,\"l\":[1]}}",
	  "[{\"field\":\"client_data.custom_values.o\",\"message\":\"expected string, number "
	  "or boolean, got object\"},"
	  "{\"field\":\"client_data.custom_values[\\\"\\\"]\",\"message\":\"empty key\"},"
	  "{\"field\":\"client_data.custom_values[\\\"a.b\\\"]\",\"message\":\"expected string, "
	  "number or boolean, got null\"},"
	  "{\"field\":\"client_data.custom_values.l\",\"message\":\"expected string, number or "
	  "boolean, got array\"}]" },
	{ "{" OK_BASE ",\"custom_values\":{\"a\\tb\":1}}",
	  "[{\"field\":\"client_data.custom_values[\\\"a\\\\tb\\\"]\",\"message\":\"key "
	  "contains a control character\"}]" },
	{ "{" OK_BASE ",\"custom_values\":[]}",
	  "[{\"field\":\"client_data.custom_values\",\"message\":\"expected object, got "
	  "array\"}]" },
	/* unknown and duplicate fields */
	{ "{" OK_BASE ",\"emial\":\"x\"}",
	  "[{\"field\":\"client_data.emial\",\"message\":\"unknown field (did you mean "
	  "\\\"email\\\"?)\"}]" },
	{ "{" OK_BASE ",\"firstName\":\"Ada\"}",
	  "[{\"field\":\"client_data.firstName\",\"message\":\"unknown field (did you "
	  "mean \\\"first_name\\\"?)\"}]" },
	{ "{" OK_BASE ",\"zip\":\"78701\"}",
	  "[{\"field\":\"client_data.zip\",\"message\":\"unknown field\"}]" },
	{ "{" OK_BASE ",\"Phone\":\"+15555550100\"}",
	  "[{\"field\":\"client_data.Phone\",\"message\":\"unknown field (did you mean "
	  "\\\"phone\\\"?)\"}]" },
	{ "{" OK_BASE ",\"foo\":1,\"bar baz\":2}",
	  "[{\"field\":\"client_data.foo\",\"message\":\"unknown field\"},"
	  "{\"field\":\"client_data[\\\"bar baz\\\"]\",\"message\":\"unknown field\"}]" },
	{ "{" OK_BASE ",\"name\":\"Again\"}",
	  "[{\"field\":\"client_data.name\",\"message\":\"duplicate field\"}]" },
	/* several problems: document order, then what is missing */
	{ "{\"tags\":[1],\"zz\":0,\"phone\":\"+1\",\"country\":\"YU\",\"timezone\":\"Mars/Base\"}",
	  "[{\"field\":\"client_data.tags[0]\",\"message\":\"expected string, got integer\"},"
	  "{\"field\":\"client_data.zz\",\"message\":\"unknown field\"},"
	  "{\"field\":\"client_data.phone\",\"message\":\"not an E.164 phone number: too short "
	  "(8 to 15 digits after '+')\"},"
	  "{\"field\":\"client_data.country\",\"message\":\"not an ISO 3166-1 alpha-2 code "
	  "(e.g. US, GB, DE)\"},"
	  "{\"field\":\"client_data.timezone\",\"message\":\"not a known IANA time zone name "
	  "(e.g. America/New_York)\"},"
	  "{\"field\":\"client_data.name\",\"message\":\"required\"},"
	  "{\"field\":\"client_data.email\",\"message\":\"required\"}]" },
};
/* clang-format on */

START_TEST(test_validate_table)
{
	const struct dcase *c = &dcases[_i];
	struct json *data = parse(c->data), *want = parse(c->want);
	struct json *problems = json_new_array();
	char *got, *wants;
	size_t n;

	n = client_data_validate(data, problems);
	got = json_to_string(problems);
	wants = json_to_string(want);
	ck_assert_msg(strcmp(got, wants) == 0, "data %s:\n got  %s\n want %s", c->data, got, wants);
	ck_assert_uint_eq(n, json_len(problems));
	free(wants);
	free(got);
	json_free(problems);
	json_free(want);
	json_free(data);
}
END_TEST

/* Adds key: string value to obj. */
static void set_str(struct json *obj, const char *key, const char *val)
{
	json_object_set_take(obj, key, json_new_string(val));
}

/* Validates data, expects exactly one problem (or none when field is NULL). */
static void expect_one(struct json *data, const char *field, const char *message)
{
	struct json *problems = json_new_array();
	size_t n = client_data_validate(data, problems);
	char *s = json_to_string(problems);

	if (!field) {
		ck_assert_msg(n == 0, "unexpected problems: %s", s);
	} else {
		ck_assert_msg(n == 1, "want one problem, got %s", s);
		ck_assert_str_eq(json_get_str(json_at(problems, 0), "field"), field);
		ck_assert_str_eq(json_get_str(json_at(problems, 0), "message"), message);
	}
	free(s);
	json_free(problems);
}

static struct json *base(void)
{
	struct json *d = json_new_object();

	set_str(d, "name", "Acme");
	set_str(d, "email", "a@acme.example");
	return d;
}

START_TEST(test_length_caps)
{
	static const struct {
		const char *field;
		size_t max;
		/* clang-format off */
	} caps[] = {
		{ "name", 255 },	 { "first_name", 100 }, { "last_name", 100 },
		{ "address", 255 },	 { "city", 100 },	 { "state", 100 },
		{ "postal_code", 20 }, { "external_id", 255 },
	};
	size_t i;

	for (i = 0; i < N_ELEMS(caps); i++) {
		struct json *d = base();
		char *ok = rep('x', caps[i].max), *bad = rep('x', caps[i].max + 1);
		char *path = xasprintf("client_data.%s", caps[i].field);
		char *msg = xasprintf("longer than %zu characters", caps[i].max);

		set_str(d, caps[i].field, ok);
		expect_one(d, NULL, NULL);
		set_str(d, caps[i].field, bad);
		expect_one(d, path, msg);
		free(msg);
		free(path);
		free(bad);
		free(ok);
		json_free(d);
	}
}
END_TEST

START_TEST(test_length_counts_characters)
{
	struct json *d = base();
	struct buf b;
	int i;

	buf_init(&b);
	for (i = 0; i < 255; i++)
		buf_puts(&b, "\xc3\xa9"); /* 255 characters, 510 bytes */
	set_str(d, "name", buf_cstr(&b));
	expect_one(d, NULL, NULL);
	buf_puts(&b, "\xc3\xa9");
	set_str(d, "name", buf_cstr(&b));
	expect_one(d, "client_data.name", "longer than 255 characters");
	buf_clear(&b);
	json_free(d);
}
END_TEST

START_TEST(test_website_length)
{
	struct json *d = base();
	char *path = rep('p', 2048 - strlen("https://acme.example/"));
	char *url = xasprintf("https://acme.example/%s", path);
	char *longer = xasprintf("%sp", url);

	ck_assert_uint_eq(strlen(url), 2048);
	set_str(d, "website", url);
	expect_one(d, NULL, NULL);
	set_str(d, "website", longer);
	expect_one(d, "client_data.website", "longer than 2048 characters");
	free(longer);
	free(url);
	free(path);
	json_free(d);
}
END_TEST

START_TEST(test_tags_caps)
{
	struct json *d = base(), *tags = json_new_array();
	char *t100 = rep('t', 100), *t101 = rep('t', 101);
	int i;

	for (i = 0; i < 50; i++)
		json_array_push_take(tags, json_new_string(t100));
	json_object_set_take(d, "tags", tags);
	expect_one(d, NULL, NULL);
	json_array_push_take(tags, json_new_string("one more"));
	expect_one(d, "client_data.tags", "more than 50 items");
	tags = json_new_array();
	json_array_push_take(tags, json_new_string(t101));
	json_object_set_take(d, "tags", tags);
	expect_one(d, "client_data.tags[0]", "longer than 100 characters");
	free(t101);
	free(t100);
	json_free(d);
}
END_TEST

START_TEST(test_custom_values_caps)
{
	struct json *d = base(), *cv = json_new_object();
	char *k100 = rep('k', 100), *k101 = rep('k', 101);
	char *v5000 = rep('v', 5000), *v5001 = rep('v', 5001);
	char *field;
	int i;

	for (i = 0; i < 100; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		json_object_set_take(cv, key, json_new_int(i));
	}
	json_object_set_take(d, "custom_values", cv);
	expect_one(d, NULL, NULL);
	json_object_set_take(cv, "one_more", json_new_bool(1));
	expect_one(d, "client_data.custom_values", "more than 100 keys");

	cv = json_new_object();
	json_object_set_take(cv, k100, json_new_string(v5000));
	json_object_set_take(d, "custom_values", cv);
	expect_one(d, NULL, NULL);
	json_object_set_take(cv, k100, json_new_string(v5001));
	field = xasprintf("client_data.custom_values.%s", k100);
	expect_one(d, field, "longer than 5000 characters");
	free(field);

	cv = json_new_object();
	json_object_set_take(cv, k101, json_new_string("x"));
	json_object_set_take(d, "custom_values", cv);
	field = xasprintf("client_data.custom_values.%s", k101);
	expect_one(d, field, "key longer than 100 characters");
	free(field);
	free(v5001);
	free(v5000);
	free(k101);
	free(k100);
	json_free(d);
}
END_TEST

START_TEST(test_email_field_lengths)
{
	struct json *d = base();
	char *local = rep('a', 65), *email = xasprintf("%s@x.example", local);
	char *label = rep('b', 250), *lng = xasprintf("a@%s.com", label);

	set_str(d, "email", email);
	expect_one(d, "client_data.email",
		   "not a valid email address: the local part is longer than 64 characters");
	set_str(d, "email", lng);
	expect_one(d, "client_data.email", "not a valid email address: longer than 254 characters");
	free(lng);
	free(label);
	free(email);
	free(local);
	json_free(d);
}
END_TEST

START_TEST(test_validate_caps_problems)
{
	struct json *d = json_new_object(), *problems = json_new_array();
	const struct json *last;
	size_t n;
	int i;

	for (i = 0; i < 300; i++) {
		char key[16];

		snprintf(key, sizeof(key), "x%d", i);
		json_object_set_take(d, key, json_new_null());
	}
	n = client_data_validate(d, problems);
	ck_assert_uint_eq(n, SCHEMA_MAX_PROBLEMS + 1);
	ck_assert_uint_eq(json_len(problems), n);
	last = json_at(problems, SCHEMA_MAX_PROBLEMS);
	ck_assert_str_eq(json_get_str(last, "field"), "client_data");
	ck_assert_str_eq(json_get_str(last, "message"),
			 "too many problems; only the first 100 are listed");
	json_free(problems);
	json_free(d);
}
END_TEST

START_TEST(test_validate_null_and_counting)
{
	struct json *problems = json_new_array();
	struct json *d = parse("{\"name\":\"\",\"email\":\"\"}");

	ck_assert_uint_eq(client_data_validate(NULL, problems), 1);
	ck_assert_str_eq(json_get_str(json_at(problems, 0), "field"), "client_data");
	ck_assert_str_eq(json_get_str(json_at(problems, 0), "message"), "required");
	/* appends to what is there, returns what it added */
	ck_assert_uint_eq(client_data_validate(d, problems), 2);
	ck_assert_uint_eq(json_len(problems), 3);
	/* problems may be NULL */
	ck_assert_uint_eq(client_data_validate(d, NULL), 2);
	json_free(d);
	json_free(problems);
}
END_TEST

/* The schema is one schema_check accepts, and names exactly the known fields. */
START_TEST(test_schema_is_valid)
{
	const struct json *schema = client_data_schema();
	const struct json *props = json_get(schema, "properties");
	struct err e = {0};

	ck_assert_ptr_eq(schema, client_data_schema());
	ck_assert_msg(schema_check(schema, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(json_len(props), 15);
	for (size_t i = 0; i < json_len(props); i++)
		ck_assert(client_data_field_known(props->u.obj.keys[i]));
	ck_assert(!client_data_field_known("zip"));
	ck_assert(!client_data_field_known(NULL));
}
END_TEST

static Suite *client_data_suite(void)
{
	Suite *s = suite_create("client_data");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_email_valid, 0, (int)N_ELEMS(emails_ok));
	tcase_add_loop_test(tc, test_email_invalid, 0, (int)N_ELEMS(emails_bad));
	tcase_add_test(tc, test_email_lengths);
	tcase_add_loop_test(tc, test_phone_valid, 0, (int)N_ELEMS(phones_ok));
	tcase_add_loop_test(tc, test_phone_invalid, 0, (int)N_ELEMS(phones_bad));
	tcase_add_test(tc, test_country_list);
	tcase_add_loop_test(tc, test_country_invalid, 0, (int)N_ELEMS(countries_bad));
	tcase_add_test(tc, test_country_matches_tzdata);
	tcase_add_loop_test(tc, test_timezone_valid, 0, (int)N_ELEMS(zones_ok));
	tcase_add_loop_test(tc, test_timezone_invalid, 0, (int)N_ELEMS(zones_bad));
	tcase_add_test(tc, test_timezone_long_name);
	tcase_add_test(tc, test_timezone_from_tzdata);
	tcase_add_test(tc, test_timezone_builtin);
	tcase_add_test(tc, test_timezone_tzdir);
	tcase_add_loop_test(tc, test_validate_table, 0, (int)N_ELEMS(dcases));
	tcase_add_test(tc, test_length_caps);
	tcase_add_test(tc, test_length_counts_characters);
	tcase_add_test(tc, test_website_length);
	tcase_add_test(tc, test_tags_caps);
	tcase_add_test(tc, test_custom_values_caps);
	tcase_add_test(tc, test_email_field_lengths);
	tcase_add_test(tc, test_validate_caps_problems);
	tcase_add_test(tc, test_validate_null_and_counting);
	tcase_add_test(tc, test_schema_is_valid);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run_suite(client_data_suite());
}

/* clang-format on */