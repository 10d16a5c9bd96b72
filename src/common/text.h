/* Bytes as text for JSON documents: UTF-8 validation and base64.
 * JSON strings (and cJSON's NUL-terminated ones) can carry neither NUL nor
 * broken UTF-8, so the API shows a byte string as text only when
 * utf8_valid() says so, and as base64 otherwise. */
#ifndef SOLDR_TEXT_H
#define SOLDR_TEXT_H

#include <stddef.h>

#include "common/buf.h"

/* 1 if s[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, at
 * most U+10FFFF) and holds no NUL byte; else 0. Control characters such as
 * CR, LF and tab are allowed. */
int utf8_valid(const char *s, size_t n);
/* The base64 (RFC 4648, padded) of p[0..n) as a NUL-terminated string the
 * caller frees with free(); NULL if out of memory. */
char *b64_encode(const void *p, size_t n);
/* Appends the bytes that base64 text s[0..n) encodes to out: 0,
 * SOLDR_EMALFORMED if s is not base64, SOLDR_ETOOBIG past out's cap,
 * UV_ENOMEM. */
int b64_decode(const char *s, size_t n, struct buf *out);

#endif
