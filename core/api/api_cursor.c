/* api_cursor.c — opaque pagination cursors: base64url of "<created_at>|<id>",
 * and their strict decoding. See api.h. */
#include "api.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

char *api_cursor_encode(const char *created_at, const char *id)
{
	char *raw = xasprintf("%s|%s", created_at, id);
	char *c = crypto_base64url_encode(raw, strlen(raw));
	free(raw);
	return c;
}

/* "YYYY-MM-DDTHH:MM:SS.ffffff" */
static int is_cursor_ts(const char *s, size_t n)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddddd";
	if (n != sizeof(shape) - 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return 0;
	}
	return 1;
}

int api_cursor_decode(const char *cursor, char **created_at, char **id)
{
	unsigned char *raw = NULL;
	size_t n = 0;
	if (!cursor || strlen(cursor) > 200 ||
	    crypto_base64url_decode(cursor, strlen(cursor), &raw, &n, NULL))
		return -1;
	const char *bar = memchr(raw, '|', n);
	int rc = -1;
	if (bar && is_cursor_ts((const char *)raw, (size_t)(bar - (const char *)raw))) {
		char *i = xstrndup(bar + 1, n - (size_t)(bar + 1 - (const char *)raw));
		if (api_is_uuid(i) && strlen(i) == n - (size_t)(bar + 1 - (const char *)raw)) {
			*created_at = xstrndup((const char *)raw,
					       (size_t)(bar - (const char *)raw));
			*id = i;
			rc = 0;
		} else {
			free(i);
		}
	}
	free(raw);
	return rc;
}
