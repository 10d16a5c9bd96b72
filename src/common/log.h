/* Operational logs: one JSON object per line on stderr (journald keeps it),
 * so that stdout carries nothing but request records.
 *   {"ts":"2026-11-22T05:03:48.123Z","level":"info","event":"ingest.listen","msg":"..."}
 * Each line goes out in a single write(2), so lines from threads never mix.
 * The level threshold is the one piece of process-wide state outside main.c:
 * it is set once at start-up, before any thread exists. */
#ifndef SOLDR_LOG_H
#define SOLDR_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int log_level_parse(const char *s);
/* event: a short dotted name ("store.commit_failed"); the message is printf-formatted
 * and JSON-escaped. Never put secrets or request bodies in a log line. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(ev, ...) log_msg(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_msg(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_msg(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_msg(LOG_ERROR, ev, __VA_ARGS__)

/* Wall clock in unix milliseconds. */
long long time_now_ms(void);
/* Formats unix ms as RFC 3339 UTC with milliseconds; out must hold 25 bytes. */
void time_format_ms(long long ms, char out[25]);

#endif
