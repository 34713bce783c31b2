/* client_data.h — validation of a job's client_data_json (DESIGN.md "Client
 * data"): the fields, their kinds and caps, as a schema (schema.h) that
 * schema.c validates; the string formats are formats.h's.
 *
 * Fields (anything else is an "unknown field"):
 *   name          required, string, 1..255 characters, not blank
 *   email         required, RFC 5322 addr-spec (see formats.h)
 *   first_name, last_name, city, state             strings, 1..100 characters
 *   address, external_id                           strings, 1..255 characters
 *   postal_code                                    string, 1..20 characters
 *   website       http:// or https:// URL, at most 2048 characters
 *   phone         E.164 (see formats.h)
 *   country       ISO 3166-1 alpha-2 (see formats.h)
 *   timezone      IANA name (see formats.h)
 *   custom_values object, at most 100 keys of 1..100 characters, each value a
 *                 string (at most 5000 characters), number or boolean
 *   tags          array of at most 50 strings of 1..100 characters
 * Optional fields, when present, must hold a value: null and "" are refused
 * (omit the field instead). Text fields (tags included) refuse control
 * characters and blank values (only spaces and tabs); so do custom_values'
 * keys (not their values).
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

/* The schema of client data (schema.h's subset; it passes schema_check):
 * built on first use, kept for the process's life, never NULL. */
const struct json *client_data_schema(void);

/* 1 when name is one of the fields above (a step's client_fields must be). */
int client_data_field_known(const char *name);

#endif
