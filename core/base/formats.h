/* formats.h — the string formats behind the schema module's "format"
 * keyword (email, e164, country, timezone, url, uuid), which step configs,
 * client data and request bodies use. Each check takes a string of len bytes
 * and returns 0, or ERR_INVALID with a reason for a person in e (which may be
 * NULL), without the field's name: "start with '+' and the country code, …". */
#ifndef GHL_FORMATS_H
#define GHL_FORMATS_H

#include <stddef.h>

#include "util.h"

/* RFC 5322 addr-spec without comments, folding white space or obsolete forms:
 * local part a dot-atom or a quoted string ("a b"@x.example); domain a
 * host name (letters, digits and hyphens in dot-separated labels of at most
 * 63 characters, no hyphen at either end) or an address literal
 * ([192.0.2.1], [IPv6:2001:db8::1]). ASCII only; at most 254 characters in
 * all, 64 in the local part. No display names ("Ada <a@x.example>").
 * Returns 1 when valid. */
int format_email_valid(const char *s);

/* E.164: '+' then 8 to 15 digits, the first not 0; nothing else (no spaces).
 * Returns 1 when valid. */
int format_phone_valid(const char *s);

/* One of the 249 officially assigned ISO 3166-1 alpha-2 codes, in capitals
 * ("US", "GB"; not "UK", "EU", "XK" or withdrawn codes like "YU").
 * Returns 1 when valid. */
int format_country_valid(const char *s);

/* An IANA time zone name: one of a built-in list of common names, or a TZif
 * file under $TZDIR (default /usr/share/zoneinfo). The name must look like
 * one (letters, digits, '_', '-', '+', separated by single '/', no component
 * starting with '.', at most 64 characters); the "posix/" and "right/"
 * trees, "localtime", "posixrules" and "Factory" are refused.
 * Returns 1 when valid. */
int format_timezone_valid(const char *s);

/* 8-4-4-4-12 hexadecimal digits, either case. Returns 1 when valid. */
int format_uuid_valid(const char *s);

int format_email_check(const char *s, size_t len, struct err *e);
int format_phone_check(const char *s, size_t len, struct err *e);
int format_country_check(const char *s, size_t len, struct err *e);
int format_timezone_check(const char *s, size_t len, struct err *e);
/* An http:// or https:// URL with a host name or IP address, optional port;
 * spaces, control and non-ASCII characters must be percent-encoded. */
int format_url_check(const char *s, size_t len, struct err *e);

/* By name, for the schema keyword: 1 when name is a known format. */
int format_known(const char *name);
/* Check s against the named format: 0, or ERR_INVALID with a whole message in e
 * ("not a valid email address: the domain …", "not a UUID (…)"). */
int format_check(const char *name, const char *s, size_t len, struct err *e);

#endif
