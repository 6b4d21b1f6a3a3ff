/*
 * LD_PRELOAD shim that gives wrk and h2load a TLS client certificate.
 *
 * Neither tool has a client-certificate option, and every proxy the bench
 * measures requires one. Both create their one SSL_CTX with SSL_CTX_new, so
 * wrapping that call (and SSL_CTX_new_ex, which OpenSSL 3's own tools use;
 * the real ones are found with dlsym(RTLD_NEXT)) is enough:
 * the context they get back already holds our certificate and key. Nothing
 * else in the tools changes, so their load generation stays C-fast.
 *
 * Environment (read at each SSL_CTX_new):
 *   WRK_CLIENT_CERT  PEM certificate chain (leaf first)        required
 *   WRK_CLIENT_KEY   PEM private key                           required
 *   WRK_TLS_MAX      "1.2" or "1.3": highest version offered   optional
 *   WRK_TLS_RESUME   "1": resume sessions on reconnect; else never  optional
 *
 * Resumption is decided here, not left to the tools: wrk reuses one SSL
 * object per connection slot (SSL_clear on reconnect keeps its last session,
 * so it would resume whenever the server allows), h2load makes a new one per
 * connection. Every handshake starts with SSL_set_fd, so the shim sets the
 * session there, before the first message: none (a full handshake, the "new handshakes" scenario), or
 * with WRK_TLS_RESUME=1 the latest session this thread received (new-session
 * callback; TLS 1.3 tickets arrive after the handshake). Thread-local, because
 * both tools run one event loop per thread and never share an SSL.
 *
 * At exit the shim prints "BENCH_TLS handshakes=N resumed=M" on stderr, so the
 * bench can check that a "resumed" figure really measured resumptions and a
 * "new" one none.
 *
 * Without a usable certificate the shim aborts the process with a message:
 * a benchmark that silently runs without a client certificate would measure
 * refusals.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread SSL_SESSION *latest_session;
static int want_resume = -1; /* -1: environment not read yet */
static unsigned long handshakes, resumed;

static int resume_wanted(void) {
  if (want_resume < 0) {
    const char *resume = getenv("WRK_TLS_RESUME");
    want_resume = resume && strcmp(resume, "1") == 0;
  }
  return want_resume;
}

/* Counts a connection whose handshake finished, before its SSL is reset. */
static void count(SSL *ssl) {
  if (!ssl || !SSL_is_init_finished(ssl)) return;
  __atomic_fetch_add(&handshakes, 1, __ATOMIC_RELAXED);
  if (SSL_session_reused(ssl)) __atomic_fetch_add(&resumed, 1, __ATOMIC_RELAXED);
}

__attribute__((destructor)) static void report(void) {
  if (handshakes) fprintf(stderr, "BENCH_TLS handshakes=%lu resumed=%lu\n", handshakes, resumed);
}

static int keep_session(SSL *ssl, SSL_SESSION *session) {
  (void)ssl;
  /* A resumed TLS 1.3 handshake hands back the session we already hold:
   * returning 0 lets OpenSSL drop the extra reference, and ours stays. */
  if (session == latest_session) return 0;
  if (latest_session) SSL_SESSION_free(latest_session);
  latest_session = session;
  return 1; /* we keep the reference */
}

static void die(const char *what, const char *path) {
  fprintf(stderr, "wrk-client-cert: %s %s\n", what, path ? path : "");
  ERR_print_errors_fp(stderr);
  exit(2);
}

/* Loads the certificate and settings into a new context. Idempotent: both wrappers may see one context. */
static SSL_CTX *configure(SSL_CTX *ctx) {
  if (!ctx) return ctx;

  const char *cert = getenv("WRK_CLIENT_CERT");
  const char *key = getenv("WRK_CLIENT_KEY");
  if (!cert || !key) die("set WRK_CLIENT_CERT and WRK_CLIENT_KEY to PEM files;", "missing");
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) die("cannot load certificate", cert);
  /* This also checks that the key is the certificate's. */
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) die("cannot load the key (or it is not the certificate's):", key);

  const char *max = getenv("WRK_TLS_MAX");
  if (max && strcmp(max, "1.2") == 0) SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  else if (max && strcmp(max, "1.3") == 0) SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  else if (max && *max) die("WRK_TLS_MAX must be 1.2 or 1.3, got", max);

  /* The callback fires only with client caching on; wrk sets that mode itself too. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  if (resume_wanted()) SSL_CTX_sess_set_new_cb(ctx, keep_session);
  return ctx;
}

/* wrk and h2load call SSL_CTX_new; OpenSSL 3's own tools (openssl s_client) call SSL_CTX_new_ex. */
SSL_CTX *SSL_CTX_new(const SSL_METHOD *method) {
  static SSL_CTX *(*real_new)(const SSL_METHOD *);
  if (!real_new) real_new = (SSL_CTX * (*)(const SSL_METHOD *)) dlsym(RTLD_NEXT, "SSL_CTX_new");
  return configure(real_new(method));
}

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method) {
  static SSL_CTX *(*real_new_ex)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
  if (!real_new_ex) real_new_ex = (SSL_CTX * (*)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *)) dlsym(RTLD_NEXT, "SSL_CTX_new_ex");
  return configure(real_new_ex(libctx, propq, method));
}

int SSL_set_fd(SSL *ssl, int fd) {
  static int (*real_set_fd)(SSL *, int);
  if (!real_set_fd) real_set_fd = (int (*)(SSL *, int))dlsym(RTLD_NEXT, "SSL_set_fd");
  /* wrk calls SSL_set_fd again on every retry of a handshake in progress. */
  if (SSL_in_before(ssl)) SSL_set_session(ssl, resume_wanted() ? latest_session : NULL);
  return real_set_fd(ssl, fd);
}

int SSL_clear(SSL *ssl) {
  static int (*real_clear)(SSL *);
  if (!real_clear) real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
  count(ssl);
  return real_clear(ssl);
}

void SSL_free(SSL *ssl) {
  static void (*real_free)(SSL *);
  if (!real_free) real_free = (void (*)(SSL *))dlsym(RTLD_NEXT, "SSL_free");
  count(ssl);
  real_free(ssl);
}
