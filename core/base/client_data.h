/* client_data.h — validation of a job's client_data_json (DESIGN.md "Client
 * data"), and the field checks it is made of, for reuse by the CSV import and
 * the Lua host.
 *
 * Fields (anything else is an "unknown field"):
 *   name          required, string, 1..255 characters, not blank
 *   email         required, RFC 5322 addr-spec (see client_data_email_valid)
 *   first_name, last_name, city, state             strings, 1..100 characters
 *   address, external_id                           strings, 1..255 characters
 *   postal_code                                    string, 1..20 characters
 *   website       http:// or https:// URL, at most 2048 characters
 *   phone         E.164 (see client_data_phone_valid)
 *   country       ISO 3166-1 alpha-2 (see client_data_country_valid)
 *   timezone      IANA name (see client_data_timezone_valid)
 *   custom_values object, at most 100 keys of 1..100 characters, each value a
 *                 string (at most 5000 characters), number or boolean
 *   tags          array of at most 50 strings of 1..100 characters
 * Optional fields, when present, must hold a value: null and "" are refused
 * (omit the field instead). Text fields refuse control characters.
 */
#ifndef GHL_CLIENT_DATA_H
#define GHL_CLIENT_DATA_H

#include <stddef.h>

#include "json.h"

/* Validates data (the parsed client_data_json) and appends one
 * {"field": "client_data.<...>", "message": "..."} per problem to the
 * `problems` array (may be NULL to only count); returns how many this call
 * added, 0 when data is valid. Field paths: "client_data" (the whole value),
 * "client_data.email", "client_data.tags[3]",
 * "client_data.custom_values.welcome_text". Problems are reported in the
 * order of the document, then missing required fields; at most
 * SCHEMA_MAX_PROBLEMS (schema.h) plus a final "too many problems" entry.
 * Messages: "required", "unknown field" (with a "did you mean" hint for a
 * near miss), "expected string, got integer", "longer than 255 characters",
 * "not a valid email address: ...", "not an E.164 phone number: ...", ... */
size_t client_data_validate(const struct json *data, struct json *problems);

/* RFC 5322 addr-spec without comments, folding white space or obsolete forms:
 * local part a dot-atom or a quoted string ("a b"@x.example); domain a
 * host name (letters, digits and hyphens in dot-separated labels of at most
 * 63 characters, no hyphen at either end) or an address literal
 * ([192.0.2.1], [IPv6:2001:db8::1]). ASCII only; at most 254 characters in
 * all, 64 in the local part. No display names ("Ada <a@x.example>").
 * Returns 1 when valid. */
int client_data_email_valid(const char *s);

/* E.164: '+' then 8 to 15 digits, the first not 0; nothing else (no spaces).
 * Returns 1 when valid. */
int client_data_phone_valid(const char *s);

/* One of the 249 officially assigned ISO 3166-1 alpha-2 codes, in capitals
 * ("US", "GB"; not "UK", "EU", "XK" or withdrawn codes like "YU").
 * Returns 1 when valid. */
int client_data_country_valid(const char *s);

/* An IANA time zone name: one of a built-in list of common names, or a TZif
 * file under $TZDIR (default /usr/share/zoneinfo). The name must look like
 * one (letters, digits, '_', '-', '+', separated by single '/', no component
 * starting with '.', at most 64 characters); the "posix/" and "right/"
 * trees, "localtime", "posixrules" and "Factory" are refused.
 * Returns 1 when valid. */
int client_data_timezone_valid(const char *s);

#endif
