#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

long long time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_format_ms(long long ms, char out[25])
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, 25, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 25 - n, ".%03uZ", (unsigned)(ms % 1000) % 1000u);
}

/* Appends s to out[*n..cap) JSON-escaped; truncates silently at cap. */
static void json_escape_into(char *out, size_t *n, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)c;
        } else if (c < 0x20) {
            memcpy(out + *n, "\\u00", 4);
            out[*n + 4] = hex[c >> 4];
            out[*n + 5] = hex[c & 15];
            *n += 6;
        } else {
            out[(*n)++] = (char)c;
        }
    }
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_threshold)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char ts[25];
    time_format_ms(time_now_ms(), ts);
    char line[4608];
    int head = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"", ts,
                        level_names[level]);
    size_t n = (size_t)head;
    json_escape_into(line, &n, sizeof line - 16, event);
    memcpy(line + n, "\",\"msg\":\"", 9);
    n += 9;
    json_escape_into(line, &n, sizeof line - 4, msg);
    memcpy(line + n, "\"}\n", 3);
    n += 3;
    /* One write: a line is never interleaved with another thread's. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
