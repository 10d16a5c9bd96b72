#include "httpd/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"

struct tls_config {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

struct tls_conn {
    mbedtls_ssl_context ssl;
    struct buf in; /* ciphertext received, not yet consumed */
    size_t in_off;
    struct buf *out; /* where records to send go, during a call */
    int handshake_done;
};

static void log_tls(const char *event, const char *what, int rc)
{
    char msg[160];
    mbedtls_strerror(rc, msg, sizeof msg);
    log_warn(event, "%s: %s (-0x%04x)", what, msg, (unsigned)-rc);
}

static int seed(struct tls_config *c)
{
    mbedtls_entropy_init(&c->entropy);
    mbedtls_ctr_drbg_init(&c->drbg);
    static const unsigned char pers[] = "soldr-mgmt";
    return mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy, pers,
                                 sizeof pers - 1);
}

int tls_config_load(struct tls_config **out, const char *cert_path, const char *key_path)
{
    struct tls_config *c = calloc(1, sizeof *c);
    if (!c)
        return UV_ENOMEM;
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_x509_crt_init(&c->cert);
    mbedtls_pk_init(&c->key);
    int rc = seed(c);
    if (rc) {
        log_tls("tls.config", "cannot seed the random generator", rc);
    } else if ((rc = mbedtls_x509_crt_parse_file(&c->cert, cert_path)) != 0) {
        log_tls("tls.config", cert_path, rc);
    } else if ((rc = mbedtls_pk_parse_keyfile(&c->key, key_path, NULL)) != 0) {
        log_tls("tls.config", key_path, rc);
    } else if ((rc = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_SERVER,
                                                 MBEDTLS_SSL_TRANSPORT_STREAM,
                                                 MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        log_tls("tls.config", "defaults", rc);
    } else if ((rc = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert, &c->key)) != 0) {
        log_tls("tls.config", "certificate and key do not match", rc);
    }
    if (rc) {
        tls_config_free(c);
        return SOLDR_ECONFIG;
    }
    mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
    mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3); /* TLS 1.2+ */
    *out = c;
    return 0;
}

void tls_config_free(struct tls_config *c)
{
    if (!c)
        return;
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_x509_crt_free(&c->cert);
    mbedtls_pk_free(&c->key);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->entropy);
    free(c);
}

/* ---- memory BIO --------------------------------------------------------------- */

static int bio_send(void *ctx, const unsigned char *p, size_t n)
{
    struct tls_conn *t = ctx;
    if (!t->out || buf_append(t->out, p, n) != 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    return (int)n;
}

static int bio_recv(void *ctx, unsigned char *p, size_t n)
{
    struct tls_conn *t = ctx;
    size_t left = t->in.len - t->in_off;
    if (left == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (n > left)
        n = left;
    memcpy(p, t->in.data + t->in_off, n);
    t->in_off += n;
    return (int)n;
}

struct tls_conn *tls_conn_new(struct tls_config *cfg)
{
    struct tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    buf_init(&t->in, 1 << 20);
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &cfg->conf) != 0) {
        tls_conn_free(t);
        return NULL;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    return t;
}

void tls_conn_free(struct tls_conn *t)
{
    if (!t)
        return;
    mbedtls_ssl_free(&t->ssl);
    buf_free(&t->in);
    free(t);
}

int tls_conn_recv(struct tls_conn *t, const char *data, size_t len, struct buf *plain,
                  struct buf *out)
{
    if (t->in_off == t->in.len) {
        buf_reset(&t->in);
        t->in_off = 0;
    }
    if (buf_append(&t->in, data, len) != 0)
        return SOLDR_EMALFORMED;
    t->out = out;
    int rc = 0;
    while (!t->handshake_done) {
        rc = mbedtls_ssl_handshake(&t->ssl);
        if (rc == 0)
            t->handshake_done = 1;
        else
            break;
    }
    if (t->handshake_done) {
        unsigned char tmp[16384];
        for (;;) {
            rc = mbedtls_ssl_read(&t->ssl, tmp, sizeof tmp);
            if (rc > 0) {
                if (buf_append(plain, tmp, (size_t)rc) != 0) {
                    rc = MBEDTLS_ERR_SSL_ALLOC_FAILED;
                    break;
                }
                continue;
            }
            break;
        }
        if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
            rc = MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY; /* the peer is done */
    }
    t->out = NULL;
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
    if (rc != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        log_tls("tls.conn", "TLS connection failed", rc);
    return SOLDR_EMALFORMED;
}

int tls_conn_send(struct tls_conn *t, const void *data, size_t len, struct buf *out)
{
    t->out = out;
    const unsigned char *p = data;
    int rc = 0;
    while (len > 0) {
        rc = mbedtls_ssl_write(&t->ssl, p, len);
        if (rc <= 0)
            break;
        p += rc;
        len -= (size_t)rc;
        rc = 0;
    }
    t->out = NULL;
    return rc < 0 ? SOLDR_EMALFORMED : 0;
}

/* ---- certificates ---------------------------------------------------------------- */

static int write_file(const char *path, const unsigned char *data, size_t len, mode_t mode)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, data, len);
    int ok = w == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int tls_selfsigned_ensure(const char *cert_path, const char *key_path, const char *cn)
{
    struct stat sb;
    if (stat(cert_path, &sb) == 0 && stat(key_path, &sb) == 0)
        return 0;
    struct tls_config seedc;
    memset(&seedc, 0, sizeof seedc);
    mbedtls_pk_context key;
    mbedtls_x509write_cert crt;
    mbedtls_mpi serial;
    mbedtls_pk_init(&key);
    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&serial);
    unsigned char pem[8192], kpem[4096];
    char subject[256], from[16], to[16];
    snprintf(subject, sizeof subject, "CN=%s,O=soldr", cn);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(from, sizeof from, "%Y%m%d%H%M%S", &tm);
    tm.tm_year += 10;
    strftime(to, sizeof to, "%Y%m%d%H%M%S", &tm);
    int rc = seed(&seedc);
    if (!rc)
        rc = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (!rc)
        rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key),
                                 mbedtls_ctr_drbg_random, &seedc.drbg);
    if (!rc)
        rc = mbedtls_mpi_fill_random(&serial, 16, mbedtls_ctr_drbg_random, &seedc.drbg);
    if (!rc) {
        mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
        mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
        mbedtls_x509write_crt_set_subject_key(&crt, &key);
        mbedtls_x509write_crt_set_issuer_key(&crt, &key);
        rc = mbedtls_x509write_crt_set_subject_name(&crt, subject);
    }
    if (!rc)
        rc = mbedtls_x509write_crt_set_issuer_name(&crt, subject);
    if (!rc)
        rc = mbedtls_x509write_crt_set_serial(&crt, &serial);
    if (!rc)
        rc = mbedtls_x509write_crt_set_validity(&crt, from, to);
    if (!rc)
        rc = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1);
    if (!rc)
        rc = mbedtls_x509write_crt_pem(&crt, pem, sizeof pem, mbedtls_ctr_drbg_random, &seedc.drbg);
    if (!rc)
        rc = mbedtls_pk_write_key_pem(&key, kpem, sizeof kpem);
    if (rc)
        log_tls("tls.selfsigned", "cannot create a certificate", rc);
    else if (write_file(key_path, kpem, strlen((char *)kpem), 0600) != 0 ||
             write_file(cert_path, pem, strlen((char *)pem), 0644) != 0) {
        log_error("tls.selfsigned", "cannot write %s / %s: %s", cert_path, key_path,
                  strerror(errno));
        rc = -1;
    }
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_pk_free(&key);
    mbedtls_ctr_drbg_free(&seedc.drbg);
    mbedtls_entropy_free(&seedc.entropy);
    return rc ? SOLDR_ECONFIG : 0;
}

int tls_fingerprint(const char *cert_path, char out[96])
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int rc = mbedtls_x509_crt_parse_file(&crt, cert_path);
    if (rc == 0) {
        unsigned char h[32];
        mbedtls_sha256_ret(crt.raw.p, crt.raw.len, h, 0);
        for (int i = 0; i < 32; i++)
            snprintf(out + i * 3, 4, "%02X%s", h[i], i < 31 ? ":" : "");
    }
    mbedtls_x509_crt_free(&crt);
    return rc ? SOLDR_ECONFIG : 0;
}
