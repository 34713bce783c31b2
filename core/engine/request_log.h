/* request_log.h — the GHL requests of step runs, for the job timeline: each
 * request a step made becomes a job_requests row (through the journal's
 * batch), its bodies with secrets masked and cut to REQUEST_LOG_BODY_CAP. */
#ifndef GHL_REQUEST_LOG_H
#define GHL_REQUEST_LOG_H

struct journal;
struct json;

/* Bytes of a body kept (masked JSON text); the rest is cut with a note. */
#define REQUEST_LOG_BODY_CAP 4096
/* Requests recorded per step run (a step polling longer records no more). */
#define REQUEST_LOG_MAX_PER_RUN 50
/* What a masked value reads. */
#define REQUEST_LOG_MASK "***"

struct request_record {
	const char *job_id;
	int step_index, attempt, compensate;
	const char *method, *path, *query; /* query: NULL or "a=b&c=d" */
	int status;			   /* 0: no answer (see error) */
	long long duration_ms;
	const char *trace_id, *error;	  /* NULL: none */
	const char *request_body;	  /* JSON text or NULL */
	const struct json *response_body; /* or NULL */
};

/* 1 when a JSON key or query parameter named k holds a secret: token,
 * password, secret, authorization, api key, … (case-insensitive). */
int request_log_secret_name(const char *k);

/* Replace, in place, every value under a secret name in v by REQUEST_LOG_MASK. */
void request_log_mask(struct json *v);

/* The row as a JSON object text (malloc'd): masked and capped. */
char *request_log_record_json(const struct request_record *r);

/* Queue the row on the journal (NULL: nowhere). */
void request_log_write(struct journal *j, const struct request_record *r);

#endif
