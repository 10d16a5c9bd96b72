/* TLS for httpd connections (mbedtls), as a pure transport over memory
 * buffers: ciphertext read from the socket goes in, plaintext for the HTTP
 * parser comes out, and the other way round. No socket calls here, so the
 * connection code stays one and the same for plain and TLS connections.
 * TLS 1.2 is the minimum. Not thread-safe: one thread per config (mgmt). */
#ifndef SOLDR_TLS_H
#define SOLDR_TLS_H

#include <stddef.h>

#include "common/buf.h"
#include "common/errors.h"

struct tls_config;
struct tls_conn;

/* Loads a PEM certificate (chain) and key. SOLDR_ECONFIG (logged) if they
 * cannot be read or do not match. */
SOLDR_MUST_USE int tls_config_load(struct tls_config **out, const char *cert_path,
                                   const char *key_path);
void tls_config_free(struct tls_config *cfg);

/* Creates cert_path and key_path (a self-signed ECDSA P-256 pair for
 * CN=common_name, valid 10 years, key file mode 0600) unless both exist. */
SOLDR_MUST_USE int tls_selfsigned_ensure(const char *cert_path, const char *key_path,
                                         const char *common_name);
/* The SHA-256 fingerprint of the certificate in cert_path as "AB:CD:...". */
SOLDR_MUST_USE int tls_fingerprint(const char *cert_path, char out[96]);

struct tls_conn *tls_conn_new(struct tls_config *cfg);
void tls_conn_free(struct tls_conn *t);
/* Takes ciphertext from the peer; appends decrypted application data to
 * plain and any records to send back (handshake, alerts) to out.
 * Returns 0, or SOLDR_EMALFORMED when the peer broke the protocol or the
 * handshake failed (close the connection after sending `out`). */
SOLDR_MUST_USE int tls_conn_recv(struct tls_conn *t, const char *data, size_t len,
                                 struct buf *plain, struct buf *out);
/* Encrypts application data into out. 0 or an error (close). */
SOLDR_MUST_USE int tls_conn_send(struct tls_conn *t, const void *data, size_t len, struct buf *out);

#endif
