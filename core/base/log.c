/* log.c — structured logging: one JSON object (or text line) per event on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "util.h"

static enum log_level g_level = LOG_INFO;
static enum log_format g_format = LOG_FORMAT_JSON;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_configure(enum log_level level, enum log_format format)
{
	g_level = level;
	g_format = format;
}

enum log_level log_get_level(void)
{
	return g_level;
}

const char *log_level_name(enum log_level l)
{
	return level_names[l];
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (!strcmp(s, "json"))
		*out = LOG_FORMAT_JSON;
	else if (!strcmp(s, "text"))
		*out = LOG_FORMAT_TEXT;
	else
		return -1;
	return 0;
}

static void format_time(char *out, size_t n)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%03dZ", (int)(tv.tv_usec / 1000));
}

void log_msg(enum log_level level, const char *msg, ...)
{
	if (level < g_level)
		return;
	char ts[40];
	format_time(ts, sizeof(ts));
	struct buf b;
	buf_init(&b);
	va_list ap;
	va_start(ap, msg);
	if (g_format == LOG_FORMAT_JSON) {
		struct jw w;
		jw_init(&w, &b);
		jw_object_begin(&w);
		jw_key(&w, "time");
		jw_string(&w, ts);
		jw_key(&w, "level");
		jw_string(&w, level_names[level]);
		jw_key(&w, "message");
		jw_string(&w, msg);
		const char *k;
		while ((k = va_arg(ap, const char *)) != NULL) {
			const char *v = va_arg(ap, const char *);
			jw_key(&w, k);
			jw_string(&w, v);
		}
		jw_object_end(&w);
	} else {
		buf_printf(&b, "%s %-5s %s", ts, level_names[level], msg);
		const char *k;
		while ((k = va_arg(ap, const char *)) != NULL) {
			const char *v = va_arg(ap, const char *);
			buf_printf(&b, " %s=%s", k, v ? v : "-");
		}
	}
	va_end(ap);
	buf_putc(&b, '\n');
	/* One write per line so concurrent processes do not interleave. */
	ssize_t r = write(STDERR_FILENO, b.data, b.len);
	(void)r;
	buf_clear(&b);
}
