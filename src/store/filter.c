/* ListProducts filter: lexer, recursive-descent parser and in-memory
 * evaluator (product-server(8) "Filter grammar"; SQL compilation is in
 * filter_sql.c). Every error names the 0-based byte offset of the problem
 * and never quotes user strings, so messages are safe to return and log. */
#include "store/filter.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/filter_node.h"

typedef enum tok_kind { TOK_EOF, TOK_LPAREN, TOK_RPAREN, TOK_OP, TOK_STRING, TOK_NUMBER, TOK_IDENT } tok_kind;

typedef struct token {
  tok_kind kind;
  size_t off; /* source span */
  size_t len;
  filter_op op;   /* TOK_OP */
  char *str;      /* TOK_STRING: decoded, NUL-terminated, in the arena */
  size_t str_len;
  double num;     /* TOK_NUMBER */
} token;

typedef struct parser {
  const char *s;
  size_t len;
  size_t pos; /* next byte the lexer reads */
  arena *a;
  token tok; /* the current (lookahead) token */
  char *err;
  size_t errlen;
  bool oom; /* the failure was the arena's, not the filter's */
} parser;

static const char *const field_names[] = {
    [FILTER_FIELD_PRICE] = "price",           [FILTER_FIELD_NAME] = "name",
    [FILTER_FIELD_DESCRIPTION] = "description", [FILTER_FIELD_CATEGORIES] = "categories",
    [FILTER_FIELD_CREATED_AT] = "created_at", [FILTER_FIELD_UPDATED_AT] = "updated_at",
};
static const char *const op_names[] = {
    [FILTER_EQ] = "=", [FILTER_NE] = "!=", [FILTER_LT] = "<",  [FILTER_LE] = "<=",
    [FILTER_GT] = ">", [FILTER_GE] = ">=", [FILTER_HAS] = ":",
};

/* ------------------------------------------------------------ errors --- */

__attribute__((format(printf, 3, 4))) static int fail_at(parser *p, size_t off, const char *fmt, ...) {
  if (p->errlen == 0) return -1;
  char msg[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(p->err, p->errlen, "filter: %s at offset %zu", msg, off);
  return -1;
}

static int fail_oom(parser *p) {
  p->oom = true;
  if (p->errlen) snprintf(p->err, p->errlen, "filter: out of memory");
  return -1;
}

/* Describes the current token for "unexpected ..." messages without quoting
 * user text: identifiers are [A-Za-z0-9_] only, strings are not shown. */
static void describe_token(const parser *p, char *buf, size_t n) {
  const token *t = &p->tok;
  switch (t->kind) {
  case TOK_EOF: snprintf(buf, n, "end of filter"); break;
  case TOK_LPAREN: snprintf(buf, n, "'('"); break;
  case TOK_RPAREN: snprintf(buf, n, "')'"); break;
  case TOK_OP: snprintf(buf, n, "operator '%s'", op_names[t->op]); break;
  case TOK_STRING: snprintf(buf, n, "a string"); break;
  case TOK_NUMBER: snprintf(buf, n, "a number"); break;
  case TOK_IDENT:
    snprintf(buf, n, "'%.*s%s'", (int)(t->len > 32 ? 32 : t->len), p->s + t->off, t->len > 32 ? "..." : "");
    break;
  }
}

/* ------------------------------------------------------------- lexer --- */

static bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_ident_start(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_ident(unsigned char c) { return is_ident_start(c) || is_digit(c); }

/* Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF) at s[0..n), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t need;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n <= need || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i <= need; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return need + 1;
}

static int lex_string(parser *p) {
  size_t start = p->pos;
  const unsigned char *s = (const unsigned char *)p->s;
  char *buf = arena_alloc(p->a, p->len - start); /* decoded is shorter than raw */
  if (!buf) return fail_oom(p);
  size_t n = 0, i = start + 1;
  for (;;) {
    if (i >= p->len) return fail_at(p, start, "unterminated string");
    unsigned char c = s[i];
    if (c == '"') {
      i++;
      break;
    }
    if (c == '\\') {
      if (i + 1 >= p->len) return fail_at(p, start, "unterminated string");
      if (s[i + 1] != '"' && s[i + 1] != '\\')
        return fail_at(p, i, "invalid escape (only \\\" and \\\\ are allowed)");
      buf[n++] = (char)s[i + 1];
      i += 2;
    } else if (c == 0) {
      return fail_at(p, i, "NUL byte in string");
    } else if (c < 0x80) {
      buf[n++] = (char)c;
      i++;
    } else {
      size_t k = utf8_seq_len(s + i, p->len - i);
      if (k == 0) return fail_at(p, i, "invalid UTF-8 in string");
      memcpy(buf + n, s + i, k);
      n += k;
      i += k;
    }
  }
  buf[n] = '\0';
  p->tok.kind = TOK_STRING;
  p->tok.str = buf;
  p->tok.str_len = n;
  p->pos = i;
  return 0;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* NUMBER := -? digits ( . digits )? ( (e|E) (+|-)? digits )?, finite. The
 * conversion uses the C locale whatever the process' locale is. */
static int lex_number(parser *p) {
  size_t start = p->pos, i = start;
  const char *s = p->s;
  if (s[i] == '-') i++;
  if (i >= p->len || !is_digit((unsigned char)s[i])) return fail_at(p, start, "invalid number");
  while (i < p->len && is_digit((unsigned char)s[i])) i++;
  if (i < p->len && s[i] == '.') {
    i++;
    if (i >= p->len || !is_digit((unsigned char)s[i])) return fail_at(p, start, "invalid number");
    while (i < p->len && is_digit((unsigned char)s[i])) i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= p->len || !is_digit((unsigned char)s[i])) return fail_at(p, start, "invalid number");
    while (i < p->len && is_digit((unsigned char)s[i])) i++;
  }
  /* "5x", "1.2.3": one bad token, not a number followed by garbage. */
  if (i < p->len && (is_ident((unsigned char)s[i]) || s[i] == '.'))
    return fail_at(p, start, "invalid number");
  char *copy = arena_strndup(p->a, s + start, i - start);
  if (!copy) return fail_oom(p);
  pthread_once(&c_locale_once, c_locale_init);
  char *end = NULL;
  double v = c_locale ? strtod_l(copy, &end, c_locale) : strtod(copy, &end);
  if (end != copy + (i - start)) return fail_at(p, start, "invalid number");
  if (!isfinite(v)) return fail_at(p, start, "number out of range (must be a finite double)");
  p->tok.kind = TOK_NUMBER;
  p->tok.num = v;
  p->pos = i;
  return 0;
}

/* Reads the next token into p->tok; non-zero (message written) on error. */
static int lex(parser *p) {
  while (p->pos < p->len && is_ws((unsigned char)p->s[p->pos])) p->pos++;
  memset(&p->tok, 0, sizeof p->tok);
  p->tok.off = p->pos;
  if (p->pos >= p->len) {
    p->tok.kind = TOK_EOF;
    return 0;
  }
  unsigned char c = (unsigned char)p->s[p->pos];
  unsigned char c2 = p->pos + 1 < p->len ? (unsigned char)p->s[p->pos + 1] : 0;
  size_t start = p->pos;
  int rc = 0;
  p->tok.kind = TOK_OP;
  switch (c) {
  case '(': p->tok.kind = TOK_LPAREN; p->pos++; break;
  case ')': p->tok.kind = TOK_RPAREN; p->pos++; break;
  case '=': p->tok.op = FILTER_EQ; p->pos++; break;
  case ':': p->tok.op = FILTER_HAS; p->pos++; break;
  case '<': p->tok.op = c2 == '=' ? FILTER_LE : FILTER_LT; p->pos += c2 == '=' ? 2 : 1; break;
  case '>': p->tok.op = c2 == '=' ? FILTER_GE : FILTER_GT; p->pos += c2 == '=' ? 2 : 1; break;
  case '!':
    if (c2 != '=') return fail_at(p, start, "unexpected character '!'");
    p->tok.op = FILTER_NE;
    p->pos += 2;
    break;
  case '"': rc = lex_string(p); break;
  default:
    if (c == '-' || is_digit(c)) {
      rc = lex_number(p);
    } else if (is_ident_start(c)) {
      p->tok.kind = TOK_IDENT;
      while (p->pos < p->len && is_ident((unsigned char)p->s[p->pos])) p->pos++;
    } else if (c > 0x20 && c < 0x7f) {
      return fail_at(p, start, "unexpected character '%c'", c);
    } else {
      return fail_at(p, start, "unexpected byte 0x%02X", c);
    }
  }
  p->tok.len = p->pos - start;
  return rc;
}

/* ------------------------------------------------------------- times --- */

static bool two_digits(const char *s, int *out) {
  if (!is_digit((unsigned char)s[0]) || !is_digit((unsigned char)s[1])) return false;
  *out = (s[0] - '0') * 10 + (s[1] - '0');
  return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil): no timegm, no time zone database, no locale. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : dim[m - 1];
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 'T' and
 * 'Z' in either case. Fractions beyond microseconds are truncated; a leap
 * second (60) is rejected because the stored times cannot hold one. */
static bool parse_rfc3339(const char *s, size_t n, int64_t *out_us) {
  int c1, c2, mon, day, hh, mi, ss;
  if (n < 20) return false;
  if (!two_digits(s, &c1) || !two_digits(s + 2, &c2) || s[4] != '-' || !two_digits(s + 5, &mon) ||
      s[7] != '-' || !two_digits(s + 8, &day) || (s[10] != 'T' && s[10] != 't') ||
      !two_digits(s + 11, &hh) || s[13] != ':' || !two_digits(s + 14, &mi) || s[16] != ':' ||
      !two_digits(s + 17, &ss))
    return false;
  int year = c1 * 100 + c2;
  size_t i = 19;
  int64_t frac = 0;
  if (s[i] == '.') {
    size_t digits = 0;
    for (i++; i < n && is_digit((unsigned char)s[i]); i++, digits++)
      if (digits < 6) frac = frac * 10 + (s[i] - '0');
    if (digits == 0) return false;
    for (; digits < 6; digits++) frac *= 10;
  }
  int64_t offset_s = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < n && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (n - i < 6 || !two_digits(s + i + 1, &oh) || s[i + 3] != ':' || !two_digits(s + i + 4, &om))
      return false;
    if (oh > 23 || om > 59) return false;
    offset_s = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return false;
  }
  if (i != n) return false;
  if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hh > 23 || mi > 59 || ss > 59)
    return false;
  int64_t secs = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mi * 60 + ss - offset_s;
  *out_us = secs * 1000000 + frac;
  return true;
}

/* ------------------------------------------------------------ parser --- */

static bool is_keyword(const parser *p, const char *kw) {
  size_t n = strlen(kw);
  return p->tok.kind == TOK_IDENT && p->tok.len == n && memcmp(p->s + p->tok.off, kw, n) == 0;
}

static filter *new_node(parser *p, filter_kind kind) {
  filter *f = arena_calloc(p->a, 1, sizeof *f);
  if (!f) {
    fail_oom(p);
    return NULL;
  }
  f->kind = kind;
  return f;
}

static bool op_allowed(filter_field field, filter_op op) {
  switch (field) {
  case FILTER_FIELD_NAME:
  case FILTER_FIELD_DESCRIPTION: return op == FILTER_EQ || op == FILTER_NE || op == FILTER_HAS;
  case FILTER_FIELD_CATEGORIES: return op == FILTER_HAS;
  default: return op != FILTER_HAS;
  }
}

/* Prepares ':' on name/description: the ASCII-folded needle and its KMP
 * failure table, so matching is linear in the haystack. */
static int prepare_substring(parser *p, filter *f) {
  f->folded = arena_alloc(p->a, f->text_len + 1);
  f->kmp = arena_alloc(p->a, (f->text_len ? f->text_len : 1) * sizeof *f->kmp);
  if (!f->folded || !f->kmp) return fail_oom(p);
  for (size_t i = 0; i < f->text_len; i++) {
    unsigned char c = (unsigned char)f->text[i];
    f->folded[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  f->folded[f->text_len] = '\0';
  uint32_t k = 0;
  if (f->text_len) f->kmp[0] = 0;
  for (size_t i = 1; i < f->text_len; i++) {
    while (k > 0 && f->folded[i] != f->folded[k]) k = f->kmp[k - 1];
    if (f->folded[i] == f->folded[k]) k++;
    f->kmp[i] = k;
  }
  return 0;
}

static filter *parse_comparison(parser *p) {
  size_t field_off = p->tok.off, field_len = p->tok.len;
  int field = -1;
  for (size_t i = 0; i < sizeof field_names / sizeof field_names[0]; i++)
    if (strlen(field_names[i]) == field_len && memcmp(p->s + field_off, field_names[i], field_len) == 0)
      field = (int)i;
  if (field < 0) {
    fail_at(p, field_off, "unknown field '%.*s%s'", (int)(field_len > 32 ? 32 : field_len),
            p->s + field_off, field_len > 32 ? "..." : "");
    return NULL;
  }
  const char *fname = field_names[field];
  if (lex(p)) return NULL;
  if (p->tok.kind != TOK_OP) {
    char what[64];
    describe_token(p, what, sizeof what);
    fail_at(p, p->tok.off, "expected an operator after '%s', found %s", fname, what);
    return NULL;
  }
  filter_op op = p->tok.op;
  if (!op_allowed((filter_field)field, op)) {
    fail_at(p, p->tok.off, "operator '%s' cannot be used with '%s'", op_names[op], fname);
    return NULL;
  }
  if (lex(p)) return NULL;
  filter *f = new_node(p, FILTER_CMP);
  if (!f) return NULL;
  f->field = (filter_field)field;
  f->op = op;
  switch (f->field) {
  case FILTER_FIELD_PRICE:
    if (p->tok.kind != TOK_NUMBER) {
      fail_at(p, p->tok.off, "'price' needs a number");
      return NULL;
    }
    f->number = p->tok.num;
    break;
  case FILTER_FIELD_CREATED_AT:
  case FILTER_FIELD_UPDATED_AT:
    if (p->tok.kind != TOK_STRING || !parse_rfc3339(p->tok.str, p->tok.str_len, &f->us)) {
      fail_at(p, p->tok.off, "'%s' needs an RFC 3339 time with an offset, as a string", fname);
      return NULL;
    }
    break;
  default:
    if (p->tok.kind != TOK_STRING) {
      fail_at(p, p->tok.off, "'%s' needs a string", fname);
      return NULL;
    }
    f->text = p->tok.str;
    f->text_len = p->tok.str_len;
    if (op == FILTER_HAS && f->field != FILTER_FIELD_CATEGORIES && prepare_substring(p, f)) return NULL;
    break;
  }
  if (lex(p)) return NULL;
  return f;
}

static filter *parse_or(parser *p, int depth);

static filter *parse_primary(parser *p, int depth) {
  char what[64];
  switch (p->tok.kind) {
  case TOK_LPAREN: {
    if (depth >= FILTER_MAX_DEPTH) {
      fail_at(p, p->tok.off, "nested deeper than %d levels", FILTER_MAX_DEPTH);
      return NULL;
    }
    if (lex(p)) return NULL;
    filter *inner = parse_or(p, depth + 1);
    if (!inner) return NULL;
    if (p->tok.kind != TOK_RPAREN) {
      describe_token(p, what, sizeof what);
      fail_at(p, p->tok.off, "expected ')', found %s", what);
      return NULL;
    }
    if (lex(p)) return NULL;
    return inner;
  }
  case TOK_IDENT:
    if (is_keyword(p, "AND") || is_keyword(p, "OR")) break;
    return parse_comparison(p);
  default: break;
  }
  describe_token(p, what, sizeof what);
  fail_at(p, p->tok.off, "expected a comparison or '(', found %s", what);
  return NULL;
}

/* NOT chains are counted in a loop, not recursed into, and folded by
 * parity: NOT NOT x is x in two-valued logic (every column is NOT NULL). */
static filter *parse_not(parser *p, int depth) {
  bool negate = false;
  while (is_keyword(p, "NOT")) {
    negate = !negate;
    if (lex(p)) return NULL;
  }
  filter *f = parse_primary(p, depth);
  if (!f || !negate) return f;
  if (f->kind == FILTER_NOT) return f->child;
  filter *n = new_node(p, FILTER_NOT);
  if (n) n->child = f;
  return n;
}

typedef filter *(*parse_fn)(parser *p, int depth);

/* operand ( KW operand )* as one n-ary node (or the operand alone). */
static filter *parse_chain(parser *p, int depth, const char *kw, filter_kind kind, parse_fn operand) {
  filter *first = operand(p, depth);
  if (!first || !is_keyword(p, kw)) return first;
  filter *node = new_node(p, kind);
  if (!node) return NULL;
  node->child = first;
  filter *last = first;
  while (is_keyword(p, kw)) {
    if (lex(p)) return NULL;
    filter *next = operand(p, depth);
    if (!next) return NULL;
    last->next = next;
    last = next;
  }
  return node;
}

static filter *parse_and(parser *p, int depth) { return parse_chain(p, depth, "AND", FILTER_AND, parse_not); }
static filter *parse_or(parser *p, int depth) { return parse_chain(p, depth, "OR", FILTER_OR, parse_and); }

int filter_parse(const char *text, size_t len, arena *a, filter **out, char *err, size_t errlen) {
  parser p = {.s = text, .len = len, .a = a, .err = err, .errlen = err ? errlen : 0};
  if (p.errlen) err[0] = '\0';
  if (!out || !a || (!text && len)) {
    if (p.errlen) snprintf(err, errlen, "filter: invalid arguments");
    return FILTER_EINVAL;
  }
  *out = NULL;
  if (len > FILTER_MAX_BYTES) {
    fail_at(&p, FILTER_MAX_BYTES, "longer than %d bytes", FILTER_MAX_BYTES);
    return FILTER_EINVAL;
  }
  if (lex(&p)) return p.oom ? FILTER_ENOMEM : FILTER_EINVAL;
  if (p.tok.kind == TOK_EOF) return 0;
  filter *f = parse_or(&p, 0);
  if (!f) return p.oom ? FILTER_ENOMEM : FILTER_EINVAL;
  if (p.tok.kind != TOK_EOF) {
    char what[64];
    describe_token(&p, what, sizeof what);
    fail_at(&p, p.tok.off, "expected AND, OR or the end, found %s", what);
    return FILTER_EINVAL;
  }
  *out = f;
  return 0;
}

/* ---------------------------------------------------------- evaluate --- */

static bool contains_folded(const char *hay, const filter *f) {
  size_t m = f->text_len, q = 0;
  if (m == 0) return true;
  for (const unsigned char *h = (const unsigned char *)hay; *h; h++) {
    char c = (char)(*h >= 'A' && *h <= 'Z' ? *h + 32 : *h);
    while (q > 0 && f->folded[q] != c) q = f->kmp[q - 1];
    if (f->folded[q] == c) q++;
    if (q == m) return true;
  }
  return false;
}

static bool equals_text(const char *s, const filter *f) {
  return strlen(s) == f->text_len && memcmp(s, f->text, f->text_len) == 0;
}

static bool compare_double(double a, filter_op op, double b) {
  switch (op) {
  case FILTER_EQ: return a == b;
  case FILTER_NE: return a != b;
  case FILTER_LT: return a < b;
  case FILTER_LE: return a <= b;
  case FILTER_GT: return a > b;
  case FILTER_GE: return a >= b;
  default: return false;
  }
}

static bool compare_i64(int64_t a, filter_op op, int64_t b) {
  switch (op) {
  case FILTER_EQ: return a == b;
  case FILTER_NE: return a != b;
  case FILTER_LT: return a < b;
  case FILTER_LE: return a <= b;
  case FILTER_GT: return a > b;
  case FILTER_GE: return a >= b;
  default: return false;
  }
}

static bool match_text(const char *s, const filter *f) {
  if (!s) s = "";
  if (f->op == FILTER_HAS) return contains_folded(s, f);
  bool eq = equals_text(s, f);
  return f->op == FILTER_EQ ? eq : !eq;
}

static bool match_comparison(const filter *f, const product *p) {
  switch (f->field) {
  case FILTER_FIELD_PRICE: return compare_double(p->price, f->op, f->number);
  case FILTER_FIELD_NAME: return match_text(p->name, f);
  case FILTER_FIELD_DESCRIPTION: return match_text(p->description, f);
  case FILTER_FIELD_CATEGORIES:
    for (size_t i = 0; i < p->n_categories; i++)
      if (p->categories && p->categories[i] && equals_text(p->categories[i], f)) return true;
    return false;
  case FILTER_FIELD_CREATED_AT: return compare_i64(p->created_us, f->op, f->us);
  case FILTER_FIELD_UPDATED_AT: return compare_i64(p->updated_us, f->op, f->us);
  }
  return false;
}

bool filter_match(const filter *f, const product *p) {
  if (!f) return true;
  switch (f->kind) {
  case FILTER_OR:
    for (const filter *c = f->child; c; c = c->next)
      if (filter_match(c, p)) return true;
    return false;
  case FILTER_AND:
    for (const filter *c = f->child; c; c = c->next)
      if (!filter_match(c, p)) return false;
    return true;
  case FILTER_NOT: return !filter_match(f->child, p);
  case FILTER_CMP: return match_comparison(f, p);
  }
  return false;
}
