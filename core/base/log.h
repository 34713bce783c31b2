/* log.h — structured logging to stderr: JSON lines (default) or text.
 *
 * log_info("job claimed", "job_id", id, "agency_id", aid, NULL);
 * Fields are key/value string pairs terminated by NULL. Values are never
 * interpreted; callers must not pass secrets (use crypto_token_fingerprint).
 */
#ifndef GHL_LOG_H
#define GHL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

void log_configure(enum log_level level, enum log_format format);
enum log_level log_get_level(void);
/* Parse "debug|info|warn|error" / "json|text"; 0 on success. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
const char *log_level_name(enum log_level l);

void log_msg(enum log_level level, const char *msg, ...) __attribute__((sentinel));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
