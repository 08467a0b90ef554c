/* Value syntax for the config module: addresses, etcd endpoint lists, the
 * store spec's redaction, and the start-up description; see config.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "store/store.h"

#define CONFIG_MAX_ETCD_ENDPOINTS 64
#define CONFIG_HOSTNAME_MAX 253

/* A value for a message: at most 64 bytes, control characters replaced. */
static const char *shown(const char *v, size_t n, char *buf, size_t bufsz) {
  size_t i = 0;
  for (; i < n && v[i] && i + 1 < bufsz && i < 64; i++) {
    unsigned char ch = (unsigned char)v[i];
    buf[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  buf[i] = '\0';
  return buf;
}

int config_parse_uint(const char *s, int64_t max, int64_t *out) {
  if (!s || !*s) return -1;
  int64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
    if (v > max) return -1;
  }
  *out = v;
  return 0;
}

/* Decimal digits only: "-1", "+1", " 1" and "" are refused. */
static int parse_port(const char *s, size_t n, int *out) {
  if (n == 0) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
    if (v > 65535) return -1;
  }
  *out = (int)v;
  return 0;
}

static bool all_digits_and_dots(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) return false;
  return true;
}

/* A DNS name or an IPv4 literal; anything else would only fail later at
 * bind or resolve time with a vaguer message. */
static int check_hostname(const char *h, size_t n, char *err, size_t errlen) {
  char buf[80];
  if (n == 0) {
    snprintf(err, errlen, "empty host (want HOST:PORT, e.g. 127.0.0.1:50051)");
    return -1;
  }
  if (n > CONFIG_HOSTNAME_MAX) {
    snprintf(err, errlen, "host is longer than %d bytes", CONFIG_HOSTNAME_MAX);
    return -1;
  }
  if (all_digits_and_dots(h, n)) {
    char tmp[64];
    struct in_addr a;
    if (n >= sizeof tmp) goto bad;
    memcpy(tmp, h, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, &a) != 1) goto bad;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    char ch = h[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_';
    if (!ok) goto bad;
  }
  return 0;
bad:
  snprintf(err, errlen, "bad host '%s'", shown(h, n, buf, sizeof buf));
  return -1;
}

/* "[v6]" or "[v6%zone]": the part inside the brackets. */
static int check_ipv6(const char *h, size_t n, char *err, size_t errlen) {
  char buf[80];
  char tmp[64];
  struct in6_addr a;
  size_t addr_len = n;
  const char *pct = memchr(h, '%', n);
  if (pct) {
    addr_len = (size_t)(pct - h);
    size_t zlen = n - addr_len - 1;
    if (zlen == 0 || zlen > 32) goto bad;
    for (size_t i = addr_len + 1; i < n; i++) {
      char ch = h[i];
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_'))
        goto bad;
    }
  }
  if (addr_len == 0 || addr_len >= sizeof tmp) goto bad;
  memcpy(tmp, h, addr_len);
  tmp[addr_len] = '\0';
  if (inet_pton(AF_INET6, tmp, &a) != 1) goto bad;
  return 0;
bad:
  snprintf(err, errlen, "bad IPv6 address '[%s]'", shown(h, n, buf, sizeof buf));
  return -1;
}

static int addr_fill(config_addr *out, const char *host, size_t hlen, int port, bool v6,
                     char *err, size_t errlen) {
  if (hlen >= sizeof out->host) {
    snprintf(err, errlen, "host is too long");
    return -1;
  }
  memset(out, 0, sizeof *out);
  memcpy(out->host, host, hlen);
  out->host[hlen] = '\0';
  out->port = port;
  snprintf(out->text, sizeof out->text, v6 ? "[%s]:%d" : "%s:%d", out->host, port);
  out->set = true;
  return 0;
}

int config_parse_addr(const char *text, config_addr *out, char *err, size_t errlen) {
  char buf[80];
  int port;
  if (!text || !text[0]) {
    snprintf(err, errlen, "empty address (want HOST:PORT)");
    return -1;
  }
  size_t n = strlen(text);
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close) {
      snprintf(err, errlen, "bad address '%s': missing ']'", shown(text, n, buf, sizeof buf));
      return -1;
    }
    size_t hlen = (size_t)(close - text - 1);
    if (close[1] != ':') {
      snprintf(err, errlen, "bad address '%s': want [IPv6]:PORT", shown(text, n, buf, sizeof buf));
      return -1;
    }
    if (check_ipv6(text + 1, hlen, err, errlen) != 0) return -1;
    const char *p = close + 2;
    if (parse_port(p, strlen(p), &port) != 0) goto bad_port;
    return addr_fill(out, text + 1, hlen, port, true, err, errlen);
  }
  const char *colon = strrchr(text, ':');
  if (!colon) {
    /* A bare port means every interface, as PORT=N does. */
    if (parse_port(text, n, &port) != 0) goto bad_port;
    return addr_fill(out, "0.0.0.0", 7, port, false, err, errlen);
  }
  if (memchr(text, ':', (size_t)(colon - text))) {
    snprintf(err, errlen, "bad address '%s': an IPv6 address needs brackets, e.g. [::1]:50051",
             shown(text, n, buf, sizeof buf));
    return -1;
  }
  size_t hlen = (size_t)(colon - text);
  if (check_hostname(text, hlen, err, errlen) != 0) return -1;
  if (parse_port(colon + 1, strlen(colon + 1), &port) != 0) goto bad_port;
  return addr_fill(out, text, hlen, port, false, err, errlen);
bad_port:
  snprintf(err, errlen, "bad address '%s': the port must be a number 0..65535",
           shown(text, n, buf, sizeof buf));
  return -1;
}

/* One endpoint, trimmed: [http:// | https://]HOST:PORT[/]. */
static int etcd_endpoint(const char *s, size_t n, char **out, char *err, size_t errlen) {
  char buf[80];
  char tmp[300];
  const char *scheme = "http";
  const char *sep = NULL;
  for (size_t i = 0; i + 2 < n; i++)
    if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
      sep = s + i;
      break;
    }
  if (sep) {
    size_t slen = (size_t)(sep - s);
    if (slen == 4 && strncasecmp(s, "http", 4) == 0) {
      scheme = "http";
    } else if (slen == 5 && strncasecmp(s, "https", 5) == 0) {
      scheme = "https";
    } else {
      snprintf(err, errlen, "endpoint '%s': the scheme must be http or https",
               shown(s, n, buf, sizeof buf));
      return -1;
    }
    n -= slen + 3;
    s = sep + 3;
  }
  if (n > 0 && s[n - 1] == '/') n--;
  if (n == 0 || n >= sizeof tmp || memchr(s, '/', n) || memchr(s, '@', n)) {
    snprintf(err, errlen, "endpoint '%s': want http://HOST:PORT or HOST:PORT",
             shown(s, n, buf, sizeof buf));
    return -1;
  }
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  config_addr a;
  char why[160];
  /* A bare port would mean 0.0.0.0, which is no address to connect to. */
  if (!strchr(tmp, ':') || config_parse_addr(tmp, &a, why, sizeof why) != 0) {
    snprintf(err, errlen, "endpoint '%s': want http://HOST:PORT or HOST:PORT",
             shown(tmp, n, buf, sizeof buf));
    return -1;
  }
  size_t need = strlen(scheme) + 3 + strlen(a.text) + 1;
  *out = malloc(need);
  if (!*out) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  snprintf(*out, need, "%s://%s", scheme, a.text);
  return 0;
}

static void free_list(char **list, size_t n) {
  if (!list) return;
  for (size_t i = 0; i < n; i++) free(list[i]);
  free(list);
}

int config_parse_etcd_endpoints(const char *list, char ***out, size_t *n_out, char *err,
                                size_t errlen) {
  char **items = NULL;
  size_t n = 0;
  *out = NULL;
  *n_out = 0;
  if (!list || !list[0]) {
    snprintf(err, errlen, "empty endpoint list");
    return -1;
  }
  items = calloc(CONFIG_MAX_ETCD_ENDPOINTS + 1, sizeof *items);
  if (!items) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  const char *p = list;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *b = p;
    while (len > 0 && (*b == ' ' || *b == '\t')) b++, len--;
    while (len > 0 && (b[len - 1] == ' ' || b[len - 1] == '\t')) len--;
    if (len == 0) {
      snprintf(err, errlen, "empty entry in the endpoint list");
      goto fail;
    }
    if (n == CONFIG_MAX_ETCD_ENDPOINTS) {
      snprintf(err, errlen, "more than %d endpoints", CONFIG_MAX_ETCD_ENDPOINTS);
      goto fail;
    }
    if (etcd_endpoint(b, len, &items[n], err, errlen) != 0) goto fail;
    n++;
    if (!end) break;
    p = end + 1;
  }
  *out = items;
  *n_out = n;
  return 0;
fail:
  free_list(items, n);
  return -1;
}

/* Appends s[0..n) to out at *pos, truncating to fit. */
static void put(char *out, size_t outlen, size_t *pos, const char *s, size_t n) {
  if (*pos + 1 >= outlen) return;
  size_t room = outlen - 1 - *pos;
  if (n > room) n = room;
  memcpy(out + *pos, s, n);
  *pos += n;
  out[*pos] = '\0';
}

/* The store owns the spec's grammar, so it owns the redaction too. */
void config_redact_store_spec(const char *spec, char *out, size_t outlen) {
  store_spec_redact(spec, out, outlen);
}

static void describe_addr(log_line *l, const char *key, const config_addr *a) {
  if (a->set) log_line_str(l, key, a->text);
}

static void describe_str(log_line *l, const char *key, const char *v) {
  if (v) log_line_str(l, key, v);
}

void config_describe(const config *c, log_line *l) {
  char buf[1024];
  if (!c || !l) return;
  describe_addr(l, "listen", &c->listen);
  describe_str(l, "tls_cert", c->tls_cert);
  describe_str(l, "tls_key", c->tls_key);
  describe_str(l, "tls_client_ca", c->tls_client_ca);
  if (c->tls_cert) log_line_str(l, "tls_min_version", c->tls13_only ? "1.3" : "1.2");
  log_line_bool(l, "insecure", c->insecure);
  if (c->jwt_secret.bytes) {
    snprintf(buf, sizeof buf, "<redacted, %zu bytes>", c->jwt_secret.len);
    log_line_str(l, "jwt_secret", buf);
  }
  describe_str(l, "jwt_keys_file", c->jwt_keys_file);
  describe_str(l, "jwt_revocations_file", c->jwt_revocations_file);
  describe_str(l, "jwt_issuer", c->jwt_issuer);
  describe_str(l, "jwt_audience", c->jwt_audience);
  log_line_int(l, "jwt_leeway_s", c->jwt_leeway_s);
  if (c->store_spec) {
    config_redact_store_spec(c->store_spec, buf, sizeof buf);
    log_line_str(l, "store", buf);
  }
  log_line_str(l, "log_format", c->log_format == LOG_FORMAT_TEXT ? "text" : "json");
  log_line_str(l, "h2_guard", c->h2_guard_off ? "off" : "on");
  describe_str(l, "ready_file", c->ready_file);
  describe_addr(l, "health_listen", &c->health_listen);
  describe_addr(l, "metrics_listen", &c->metrics_listen);
  if (c->etcd_endpoints && c->n_etcd_endpoints > 0) {
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->n_etcd_endpoints; i++) {
      if (i) put(buf, sizeof buf, &pos, ",", 1);
      put(buf, sizeof buf, &pos, c->etcd_endpoints[i], strlen(c->etcd_endpoints[i]));
    }
    log_line_str(l, "etcd_endpoints", buf);
  }
  describe_addr(l, "advertise_addr", &c->advertise);
  log_line_int(l, "threads", c->threads);
  log_line_int(l, "drain_ms", c->drain_ms);
  config_describe_limits(c, l);
  config_describe_rate_limits(c, l);
  /* The URL only (OTEL_EXPORTER_OTLP_HEADERS may hold a collector's key),
   * and without any user:password@ it carries. */
  if (c->tracing.otlp_url) {
    const char *u = c->tracing.otlp_url;
    const char *host = strstr(u, "://");
    host = host ? host + 3 : u;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
      snprintf(buf, sizeof buf, "%.*s<redacted>%s", (int)(host - u), u, at);
    else
      snprintf(buf, sizeof buf, "%s", u);
    log_line_str(l, "otlp_traces_url", buf);
  }
  log_line_str(l, "traces_sampler", trace_sampler_name(c->tracing.sampler));
}
