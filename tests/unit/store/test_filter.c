/* Tests src/store/filter.c: the ListProducts filter grammar (product-server(8)
 * "Filter grammar"), its error offsets and limits, and in-memory matching.
 * SQL compilation is tested against SQLite in test_filter_sql.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "store/filter.h"

static arena *A;

static int group_setup(void **state) {
  (void)state;
  A = arena_create(1 << 16);
  return A ? 0 : -1;
}
static int group_teardown(void **state) {
  (void)state;
  arena_destroy(A);
  return 0;
}
static int reset_arena(void **state) {
  (void)state;
  arena_reset(A);
  return 0;
}

static filter *parse_len(const char *text, size_t len) {
  filter *f = NULL;
  char err[256];
  if (filter_parse(text, len, A, &f, err, sizeof err) != 0) fail_msg("parse of [%.*s] failed: %s", (int)len, text, err);
  return f;
}
static filter *parse(const char *text) { return parse_len(text, strlen(text)); }

/* Asserts that text fails with a message "filter: ...<needle>... at offset <offset>". */
static void assert_error_len(const char *text, size_t len, size_t offset, const char *needle) {
  filter *f = NULL;
  char err[256];
  int rc = filter_parse(text, len, A, &f, err, sizeof err);
  if (rc == 0) fail_msg("[%.*s] parsed, want an error", (int)len, text);
  assert_int_equal(rc, FILTER_EINVAL);
  char want[48];
  snprintf(want, sizeof want, " at offset %zu", offset);
  size_t el = strlen(err), wl = strlen(want);
  if (strncmp(err, "filter: ", 8) != 0 || el < wl || strcmp(err + el - wl, want) != 0)
    fail_msg("[%.*s]: got \"%s\", want offset %zu", (int)len, text, err, offset);
  if (needle && !strstr(err, needle)) fail_msg("[%.*s]: got \"%s\", want it to mention \"%s\"", (int)len, text, err, needle);
  assert_null(f);
}
#define assert_error(text, offset, needle) assert_error_len(text, strlen(text), offset, needle)

static product item(const char *name, const char *desc, double price) {
  return (product){.id = "00000000-0000-0000-0000-000000000000", .name = (char *)name,
                   .description = (char *)desc, .price = price};
}

static bool matches(const char *text, const product *p) { return filter_match(parse(text), p); }

/* ------------------------------------------------------------ basics --- */

static void empty_and_whitespace_only_filters_parse_to_null(void **state) {
  (void)state;
  const char *cases[] = {"", " ", " \t\r\n  ", "\n"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    filter *f = (filter *)&f;
    char err[64];
    assert_int_equal(filter_parse(cases[i], strlen(cases[i]), A, &f, err, sizeof err), 0);
    assert_null(f);
  }
  filter *f = (filter *)&f;
  assert_int_equal(filter_parse(NULL, 0, A, &f, NULL, 0), 0);
  assert_null(f);
  product p = item("a", "", 1);
  assert_true(filter_match(NULL, &p));
  /* Other whitespace is not whitespace. */
  assert_error("\vprice = 1", 0, "unexpected byte 0x0B");
  assert_error("price\f= 1", 5, "0x0C");
}

static void price_supports_every_comparison_operator(void **state) {
  (void)state;
  product p = item("a", "", 5.5);
  assert_true(matches("price = 5.5", &p));
  assert_false(matches("price = 5", &p));
  assert_true(matches("price != 5", &p));
  assert_false(matches("price != 5.5", &p));
  assert_true(matches("price < 6", &p));
  assert_false(matches("price < 5.5", &p));
  assert_true(matches("price <= 5.5", &p));
  assert_false(matches("price <= 5.4", &p));
  assert_true(matches("price > 5", &p));
  assert_false(matches("price > 5.5", &p));
  assert_true(matches("price >= 5.5", &p));
  assert_false(matches("price >= 5.6", &p));
  product zero = item("a", "", 0);
  assert_true(matches("price = -0", &zero));
  assert_true(matches("price > -1e-300", &zero));
}

static void name_and_description_equality_is_exact_and_colon_is_ascii_case_insensitive(void **state) {
  (void)state;
  product p = item("Red Apple", "Crisp and JUICY", 1);
  assert_true(matches("name = \"Red Apple\"", &p));
  assert_false(matches("name = \"red apple\"", &p));
  assert_false(matches("name = \"Red\"", &p));
  assert_true(matches("name != \"red apple\"", &p));
  assert_false(matches("name != \"Red Apple\"", &p));
  assert_true(matches("name : \"APPLE\"", &p));
  assert_true(matches("name:\"d a\"", &p));
  assert_true(matches("name:\"\"", &p));
  assert_false(matches("name:\"pear\"", &p));
  assert_true(matches("description:\"juicy\"", &p));
  assert_true(matches("description = \"Crisp and JUICY\"", &p));
  assert_false(matches("description = \"crisp and juicy\"", &p));
  /* ASCII folding only: É and é are different letters to ':'. */
  product accented = item("\xc3\x89t\xc3\xa9", "", 1); /* "Été" */
  assert_true(matches("name:\"\xc3\x89T\xc3\xa9\"", &accented));
  assert_false(matches("name:\"\xc3\xa9t\xc3\xa9\"", &accented));
  /* A NULL description counts as empty. */
  product bare = item("x", NULL, 1);
  assert_true(matches("description = \"\"", &bare));
  assert_true(matches("description:\"\"", &bare));
  assert_false(matches("description:\"a\"", &bare));
}

/* Naive reference for the KMP substring search in filter_match. */
static bool naive_contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(hay), m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++) {
    size_t k = 0;
    while (k < m) {
      char a = hay[i + k], b = needle[k];
      if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
      if (b >= 'A' && b <= 'Z') b = (char)(b + 32);
      if (a != b) break;
      k++;
    }
    if (k == m) return true;
  }
  return false;
}

static uint32_t lcg(uint32_t *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return *seed >> 16;
}

static void colon_substring_search_agrees_with_a_naive_search(void **state) {
  (void)state;
  /* Needles over a two-letter alphabet (in both cases) and haystacks built
   * from pieces of the needle: the self-overlapping patterns where a wrong
   * KMP failure table would skip a match. */
  uint32_t seed = 12345;
  for (int round = 0; round < 20000; round++) {
    char hay[40], needle[10], text[64];
    size_t nn = lcg(&seed) % sizeof needle, hn = 0;
    for (size_t i = 0; i < nn; i++) needle[i] = "aAbB"[lcg(&seed) % (i % 3 ? 4 : 2)];
    needle[nn] = '\0';
    while (hn < sizeof hay - 1) {
      size_t piece = nn ? lcg(&seed) % (nn + 1) : 0;
      if (piece == 0) {
        hay[hn++] = "abAB"[lcg(&seed) % 4];
        continue;
      }
      for (size_t i = 0; i < piece && hn < sizeof hay - 1; i++) hay[hn++] = needle[i];
    }
    hay[lcg(&seed) % sizeof hay] = '\0';
    hay[sizeof hay - 1] = '\0';
    snprintf(text, sizeof text, "name:\"%s\"", needle);
    product p = item(hay, "", 0);
    if (matches(text, &p) != naive_contains_ci(hay, needle)) fail_msg("needle '%s' in '%s'", needle, hay);
    arena_reset(A);
  }
}

static void categories_colon_means_has_an_equal_element(void **state) {
  (void)state;
  char *cats[] = {"fruit", "Red", "x' OR 1=1 --"};
  product p = item("a", "", 1);
  p.categories = cats;
  p.n_categories = 3;
  assert_true(matches("categories:\"fruit\"", &p));
  assert_true(matches("categories : \"Red\"", &p));
  assert_false(matches("categories:\"red\"", &p)); /* exact, not case-insensitive */
  assert_false(matches("categories:\"fru\"", &p)); /* an element, not a substring */
  assert_false(matches("categories:\"\"", &p));
  assert_true(matches("categories:\"x' OR 1=1 --\"", &p));
  product none = item("a", "", 1);
  assert_false(matches("categories:\"fruit\"", &none));
  assert_true(matches("NOT categories:\"fruit\"", &none));
}

static void times_compare_in_microseconds_with_any_offset(void **state) {
  (void)state;
  product p = item("a", "", 1);
  p.created_us = 1709210096789000; /* 2024-02-29T12:34:56.789Z */
  p.updated_us = 1686835800000000; /* 2023-06-15T08:00:00-05:30 */
  assert_true(matches("created_at = \"2024-02-29T12:34:56.789Z\"", &p));
  assert_true(matches("created_at = \"2024-02-29t13:34:56.789000+01:00\"", &p));
  assert_true(matches("created_at = \"2024-02-29T12:34:56.7890009z\"", &p)); /* truncated past µs */
  assert_true(matches("created_at > \"2024-02-29T12:34:56.788999Z\"", &p));
  assert_false(matches("created_at > \"2024-02-29T12:34:56.789Z\"", &p));
  assert_true(matches("created_at >= \"2024-02-29T12:34:56.789Z\"", &p));
  assert_true(matches("created_at < \"2024-02-29T12:34:56.789001Z\"", &p));
  assert_true(matches("created_at <= \"2024-02-29T07:34:56.789-05:00\"", &p));
  assert_true(matches("created_at != \"2024-02-29T12:34:56Z\"", &p));
  assert_true(matches("updated_at = \"2023-06-15T08:00:00-05:30\"", &p));
  assert_true(matches("updated_at = \"2023-06-15T13:30:00Z\"", &p));
  p.created_us = 0;
  assert_true(matches("created_at = \"1970-01-01T00:00:00Z\"", &p));
  assert_true(matches("created_at = \"1969-12-31T23:00:00-01:00\"", &p));
  assert_true(matches("created_at = \"1970-01-01T00:00:00-00:00\"", &p));
  p.created_us = 1799500000; /* 1969-12-31T23:59:59.5-00:30 */
  assert_true(matches("created_at = \"1969-12-31T23:59:59.5-00:30\"", &p));
  p.created_us = -62167219200000000; /* year 0 */
  assert_true(matches("created_at = \"0000-01-01T00:00:00Z\"", &p));
  p.created_us = 253402300799999999;
  assert_true(matches("created_at = \"9999-12-31T23:59:59.999999Z\"", &p));
  p.created_us = 951867000000000;
  assert_true(matches("created_at = \"2000-03-01T00:30:00+01:00\"", &p));
  p.created_us = 951782400000000; /* 2000-02-29: a leap day in a century year */
  assert_true(matches("created_at = \"2000-02-29T00:00:00Z\"", &p));
}

static void invalid_times_are_rejected_at_the_value(void **state) {
  (void)state;
  const char *bad[] = {
      "2024-01-01T00:00:00",        /* no offset */
      "2024-01-01 00:00:00Z",       /* space separator */
      "2024-01-01",                 /* date only */
      "2023-02-29T00:00:00Z",       /* not a leap year */
      "1900-02-29T00:00:00Z",       /* century, not a leap year */
      "2024-04-31T00:00:00Z",       /* April has 30 days */
      "2024-13-01T00:00:00Z",       "2024-00-01T00:00:00Z", "2024-01-00T00:00:00Z",
      "2024-01-32T00:00:00Z",       "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
      "2024-01-01T00:00:60Z",       /* leap seconds are not stored */
      "2024-01-01T00:00:00+24:00",  "2024-01-01T00:00:00+01:60", "2024-01-01T00:00:00+0100",
      "2024-01-01T00:00:00+01",     "2024-01-01T00:00:00.Z",     "2024-01-01T00:00:00Zjunk",
      "2024-1-01T00:00:00Z",        "+2024-01-01T00:00:00Z",     "yesterday", "",
      "2024-01-01T00:00:00.123+01:00x",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[128];
    snprintf(text, sizeof text, "created_at > \"%s\"", bad[i]);
    assert_error(text, 13, "RFC 3339");
    snprintf(text, sizeof text, "price > 1 OR updated_at = \"%s\"", bad[i]);
    assert_error(text, 26, "RFC 3339");
  }
  assert_error("created_at > 5", 13, "RFC 3339");
  assert_error("created_at : \"2024-01-01T00:00:00Z\"", 11, "operator ':'");
}

/* ------------------------------------------------------- precedence --- */

static void not_binds_tighter_than_and(void **state) {
  (void)state;
  product cheap = item("a", "", 0.5);
  /* (NOT price > 5) AND price > 1: false; NOT (price > 5 AND price > 1) would be true. */
  assert_false(matches("NOT price > 5 AND price > 1", &cheap));
  assert_true(matches("NOT (price > 5 AND price > 1)", &cheap));
}

static void and_binds_tighter_than_or(void **state) {
  (void)state;
  product a = item("a", "", 1);
  /* name = a OR (name = b AND price > 5): true; (a OR b) AND price > 5 would be false. */
  assert_true(matches("name = \"a\" OR name = \"b\" AND price > 5", &a));
  assert_false(matches("(name = \"a\" OR name = \"b\") AND price > 5", &a));
  assert_true(matches("price > 5 AND name = \"b\" OR name = \"a\"", &a));
  assert_false(matches("price > 5 AND (name = \"b\" OR name = \"a\")", &a));
  /* NOT applies to one operand of OR only. */
  assert_true(matches("NOT name = \"a\" OR price = 1", &a));
  assert_false(matches("NOT (name = \"a\" OR price = 1)", &a));
}

static void chains_of_not_fold_by_parity(void **state) {
  (void)state;
  product p = item("a", "", 10);
  assert_true(matches("NOT NOT price > 5", &p));
  assert_false(matches("NOT NOT NOT price > 5", &p));
  assert_true(matches("NOT (NOT (NOT (NOT price > 5)))", &p));
  assert_false(matches("NOT(NOT(NOT price>5))", &p));
  /* 250 NOTs (1009 bytes) parse without deep recursion. */
  char buf[FILTER_MAX_BYTES + 1];
  size_t n = 0;
  for (int i = 0; i < 250; i++) {
    memcpy(buf + n, "NOT ", 4);
    n += 4;
  }
  memcpy(buf + n, "price > 5", 9);
  n += 9;
  assert_true(filter_match(parse_len(buf, n), &p));
  assert_false(filter_match(parse_len(buf + 4, n - 4), &p)); /* 249 NOTs: odd */
}

static void long_chains_and_whitespace_between_tokens(void **state) {
  (void)state;
  product p = item("n", "d", 42);
  char buf[FILTER_MAX_BYTES + 1];
  size_t n = 0;
  for (int i = 0; i < 80; i++) n += (size_t)snprintf(buf + n, sizeof buf - n, "%sprice=%d", i ? " OR " : "", i);
  assert_true(filter_match(parse_len(buf, n), &p));
  assert_true(matches("\t price\r\n>=\n42 \tAND\r\n(name=\"n\")", &p));
  assert_true(matches("(price>1)AND(name:\"N\")OR(price<0)", &p));
  assert_true(matches("NOT(price<1)", &p));
  assert_true(matches("price=42 AND name=\"n\"", &p));
  /* A number runs into the next letter: one bad token, not "42" then "AND". */
  assert_error("price=42AND name=\"n\"", 6, "invalid number");
}

/* ------------------------------------------------------------ lexing --- */

static void keywords_and_fields_are_case_sensitive(void **state) {
  (void)state;
  assert_error("price > 1 and price < 3", 10, "'and'");
  assert_error("price > 1 Or price < 3", 10, "'Or'");
  assert_error("not price > 1", 0, "unknown field 'not'");
  assert_error("Price > 1", 0, "unknown field 'Price'");
  assert_error("NAME = \"x\"", 0, "unknown field 'NAME'");
  assert_error("foo = 1", 0, "unknown field 'foo'");
  assert_error("price > 1 AND foo = \"x\"", 14, "unknown field 'foo'");
  assert_error("price > 1 AND created = \"x\"", 14, "unknown field 'created'");
  assert_error("AND price > 1", 0, "'AND'");
}

static void strings_decode_only_quote_and_backslash_escapes(void **state) {
  (void)state;
  product p = item("say \"hi\" \\ ok", "", 1);
  assert_true(matches("name = \"say \\\"hi\\\" \\\\ ok\"", &p));
  assert_false(matches("name = \"say \\\"hi\\\" \\\\\\\\ ok\"", &p));
  product raw = item("tab\there\nnewline", "", 1); /* raw control characters are plain bytes */
  assert_true(matches("name = \"tab\there\nnewline\"", &raw));
  assert_error("name = \"a\\nb\"", 9, "invalid escape");
  assert_error("name = \"\\u0041\"", 8, "invalid escape");
  assert_error("name = \"\\'\"", 8, "invalid escape");
  assert_error("name = \"abc", 7, "unterminated string");
  assert_error("name = \"abc\\\"", 7, "unterminated string");
  assert_error("name = \"abc\\", 7, "unterminated string");
  assert_error("price > 1 AND name = \"", 21, "unterminated string");
}

static void invalid_utf8_in_strings_is_rejected_at_the_bad_byte(void **state) {
  (void)state;
  assert_error("name = \"a\xc3\x28\"", 9, "UTF-8");          /* bad continuation */
  assert_error("name = \"\xc0\xaf\"", 8, "UTF-8");           /* overlong '/' */
  assert_error("name = \"\xe0\x80\xaf\"", 8, "UTF-8");       /* overlong 3-byte */
  assert_error("name = \"ab\xed\xa0\x80\"", 10, "UTF-8");    /* surrogate */
  assert_error("name = \"\xf4\x90\x80\x80\"", 8, "UTF-8");   /* above U+10FFFF */
  assert_error("name = \"\xf5\x80\x80\x80\"", 8, "UTF-8");
  assert_error("name = \"\x80\"", 8, "UTF-8");               /* lone continuation */
  assert_error("name = \"\xe2\x82\"", 8, "UTF-8");           /* truncated by the quote */
  assert_error_len("name = \"\xe2\x82", 10, 8, "UTF-8");   /* truncated by the end */
  assert_error("name = \"\xff\"", 8, "UTF-8");
  product p = item("caf\xc3\xa9 \xf0\x9f\x8d\x8e \xe2\x82\xac", "", 1);
  assert_true(matches("name = \"caf\xc3\xa9 \xf0\x9f\x8d\x8e \xe2\x82\xac\"", &p));
  assert_true(matches("name:\"\xf0\x9f\x8d\x8e\"", &p));
  /* Bytes outside strings are not UTF-8 text but unexpected bytes. */
  assert_error("price > 1 \xc3\xa9", 10, "0xC3");
}

static void nul_bytes_count_toward_the_length_and_are_rejected(void **state) {
  (void)state;
  static const char in_string[] = "name = \"a\0b\"";
  assert_error_len(in_string, sizeof in_string - 1, 9, "NUL byte");
  static const char trailing[] = "price = 1\0";
  assert_error_len(trailing, sizeof trailing - 1, 9, "0x00");
  static const char leading[] = "\0price = 1";
  assert_error_len(leading, sizeof leading - 1, 0, "0x00");
}

static void numbers_follow_the_contract_grammar(void **state) {
  (void)state;
  product p = item("a", "", 1000);
  assert_true(matches("price = 1000", &p));
  assert_true(matches("price = 1e3", &p));
  assert_true(matches("price = 1E+3", &p));
  assert_true(matches("price = 10000e-1", &p));
  assert_true(matches("price = 001000.000", &p));
  assert_true(matches("price > -12.5e2", &p));
  assert_true(matches("price > 1e-999", &p)); /* underflows to 0: finite */
  /* A 300-digit integer is 1e299: finite. */
  char big[400];
  int n = snprintf(big, sizeof big, "price < 1");
  memset(big + n, '0', 299);
  big[n + 299] = '\0';
  assert_true(matches(big, &p));

  const char *bad[] = {"1.", ".5", "1.e3", "1e", "1e+", "-", "--1", "1.2.3", "5x", "0x10", "1e3.5", "12_3", "-.5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[64];
    snprintf(text, sizeof text, "price > %s", bad[i]);
    if (bad[i][0] == '.')
      assert_error(text, 8, "unexpected character '.'");
    else
      assert_error(text, 8, "invalid number");
  }
  assert_error("price > +1", 8, "unexpected character '+'");
  assert_error("price > 1e999", 8, "finite");
  assert_error("price > -1e999", 8, "finite");
  big[n + 299] = '0'; /* 350 digits: 1e349, not finite */
  memset(big + n + 300, '0', 50);
  big[n + 350] = '\0';
  assert_error(big, 8, "finite");
  assert_error("price > Infinity", 8, "'price' needs a number");
  assert_error("price > NaN", 8, "'price' needs a number");
}

/* ------------------------------------------------------------ errors --- */

static void values_of_the_wrong_type_are_rejected_at_the_value(void **state) {
  (void)state;
  assert_error("price = \"5\"", 8, "'price' needs a number");
  assert_error("name = 5", 7, "'name' needs a string");
  assert_error("description != -1", 15, "'description' needs a string");
  assert_error("categories : 5", 13, "'categories' needs a string");
  assert_error("name = description", 7, "'name' needs a string");
  assert_error("updated_at >= 1700000000", 14, "RFC 3339");
}

static void operators_not_allowed_for_a_field_are_rejected_at_the_operator(void **state) {
  (void)state;
  assert_error("name < \"x\"", 5, "operator '<'");
  assert_error("name >= \"x\"", 5, "operator '>='");
  assert_error("description > \"x\"", 12, "operator '>'");
  assert_error("categories = \"x\"", 11, "operator '='");
  assert_error("categories != \"x\"", 11, "operator '!='");
  assert_error("price : 1", 6, "operator ':'");
  assert_error("updated_at : \"2024-01-01T00:00:00Z\"", 11, "operator ':'");
}

static void syntax_errors_name_the_offset(void **state) {
  (void)state;
  assert_error("price", 5, "expected an operator");
  assert_error("price 5", 6, "expected an operator");
  assert_error("price >", 7, "needs a number");
  assert_error("price !! 5", 6, "unexpected character '!'");
  assert_error("price =! 5", 7, "unexpected character '!'");
  assert_error("price == 5", 7, "needs a number");
  assert_error("(price > 1", 10, "expected ')'");
  assert_error("((price > 1)", 12, "expected ')'");
  assert_error("price > 1)", 9, "found ')'");
  assert_error("()", 1, "expected a comparison");
  assert_error("price > 1 AND", 13, "end of filter");
  assert_error("price > 1 AND AND price < 2", 14, "'AND'");
  assert_error("price > 1 OR OR price < 2", 13, "'OR'");
  assert_error("price > 1 price < 2", 10, "found 'price'");
  assert_error("price > 1 \"x\"", 10, "found a string");
  assert_error("= 5", 0, "expected a comparison");
  assert_error("5 = price", 0, "expected a comparison");
  assert_error("\"name\" = \"x\"", 0, "expected a comparison");
  assert_error("NOT", 3, "end of filter");
  assert_error("NOT NOT", 7, "end of filter");
  assert_error("name = \"x\" @", 11, "unexpected character '@'");
  assert_error("name = \"x\";", 10, "unexpected character ';'");
  assert_error("name = 'x'", 7, "unexpected character");
  assert_error("name.first = \"x\"", 4, "unexpected character '.'");
  assert_error("price > 1 && price < 2", 10, "unexpected character '&'");
  assert_error("price > 1 AND (price < 2 OR)", 27, "expected a comparison");
}

static void filters_of_1024_bytes_pass_and_1025_fail(void **state) {
  (void)state;
  char buf[FILTER_MAX_BYTES + 2];
  /* name = "aaa...a" of exactly 1024 bytes. */
  memcpy(buf, "name = \"", 8);
  memset(buf + 8, 'a', FILTER_MAX_BYTES - 9);
  buf[FILTER_MAX_BYTES - 1] = '"';
  assert_non_null(parse_len(buf, FILTER_MAX_BYTES));
  buf[FILTER_MAX_BYTES - 1] = 'a';
  buf[FILTER_MAX_BYTES] = '"';
  assert_error_len(buf, FILTER_MAX_BYTES + 1, FILTER_MAX_BYTES, "longer than 1024 bytes");
  /* Whitespace counts too. */
  memset(buf, ' ', sizeof buf);
  memcpy(buf, "price > 1", 9);
  assert_non_null(parse_len(buf, FILTER_MAX_BYTES));
  assert_error_len(buf, FILTER_MAX_BYTES + 1, FILTER_MAX_BYTES, "longer than 1024 bytes");
}

/* Builds depth '(' + "price > 1" + depth ')' (optionally "NOT " before each '('). */
static size_t nested(char *buf, int depth, bool with_not) {
  size_t n = 0;
  for (int i = 0; i < depth; i++) {
    if (with_not) {
      memcpy(buf + n, "NOT ", 4);
      n += 4;
    }
    buf[n++] = '(';
  }
  memcpy(buf + n, "price > 1", 9);
  n += 9;
  for (int i = 0; i < depth; i++) buf[n++] = ')';
  return n;
}

static void sixteen_levels_of_parentheses_pass_and_seventeen_fail(void **state) {
  (void)state;
  char buf[256];
  product p = item("a", "", 2);
  size_t n = nested(buf, 16, false);
  assert_true(filter_match(parse_len(buf, n), &p));
  n = nested(buf, 17, false);
  assert_error_len(buf, n, 16, "nested deeper than 16 levels");
  /* NOT does not count as a level; the 17th '(' is at 16*5 + 4. */
  n = nested(buf, 16, true);
  assert_true(filter_match(parse_len(buf, n), &p)); /* 16 NOTs: even */
  n = nested(buf, 17, true);
  assert_error_len(buf, n, 84, "nested deeper");
  /* Levels are counted along one path, not in total. */
  char wide[600];
  size_t w = nested(wide, 16, false);
  memcpy(wide + w, " AND ", 5);
  w += 5;
  w += nested(wide + w, 16, false);
  assert_true(filter_match(parse_len(wide, w), &p));
  memcpy(wide + w, " OR ", 4);
  w += 4;
  size_t third = w;
  w += nested(wide + w, 17, false);
  assert_error_len(wide, w, third + 16, "nested deeper");
}

/* ----------------------------------------------------------- hostile --- */

static void sql_looking_values_are_stored_and_matched_verbatim(void **state) {
  (void)state;
  product inj = item("x' OR 1=1 --", "\"); DROP TABLE products; --", 1);
  product plain = item("x", "", 1);
  assert_true(matches("name = \"x' OR 1=1 --\"", &inj));
  assert_false(matches("name = \"x' OR 1=1 --\"", &plain));
  assert_true(matches("description = \"\\\"); DROP TABLE products; --\"", &inj));
  assert_true(matches("name:\"' or 1=1\"", &inj));
  assert_false(matches("name:\"%\"", &plain)); /* LIKE wildcards mean nothing */
  assert_false(matches("name:\"_\"", &plain));
  product pct = item("100%_done", "", 1);
  assert_true(matches("name:\"0%_D\"", &pct));
}

static void error_messages_never_quote_user_strings(void **state) {
  (void)state;
  const char *cases[] = {"name = \"s3cret-token", "price = \"s3cret-token\"", "name < \"s3cret-token\"",
                         "created_at > \"s3cret-token\"", "name = \"s3cret-token\" s3cret"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    filter *f;
    char err[256];
    assert_int_not_equal(filter_parse(cases[i], strlen(cases[i]), A, &f, err, sizeof err), 0);
    if (strstr(err, "s3cret-token")) fail_msg("message echoes user text: %s", err);
  }
  /* Long identifiers are cut short in the message. */
  char longid[300];
  memset(longid, 'z', 200);
  memcpy(longid + 200, " = 1", 5);
  filter *f;
  char err[256];
  assert_int_not_equal(filter_parse(longid, strlen(longid), A, &f, err, sizeof err), 0);
  assert_true(strlen(err) < 120);
}

static void tiny_or_missing_error_buffers_are_safe(void **state) {
  (void)state;
  filter *f;
  char err[8];
  memset(err, 'X', sizeof err);
  assert_int_not_equal(filter_parse("foo = 1", 7, A, &f, err, sizeof err), 0);
  assert_int_equal(strlen(err), sizeof err - 1);
  assert_int_not_equal(filter_parse("foo = 1", 7, A, &f, NULL, 0), 0);
  assert_int_not_equal(filter_parse("foo = 1", 7, A, &f, err, 0), 0);
  assert_int_not_equal(filter_parse("price = 1", 9, NULL, &f, err, sizeof err), 0);
  assert_int_not_equal(filter_parse("price = 1", 9, A, NULL, err, sizeof err), 0);
}

static void tree_stays_valid_while_a_small_arena_grows(void **state) {
  (void)state;
  /* The tree spans several arena blocks and survives later allocations. */
  arena *small = arena_create(64);
  assert_non_null(small);
  filter *f = NULL;
  char err[128];
  const char *text = "name:\"abc\" AND (categories:\"x\" OR NOT price < 3) AND created_at > \"2020-01-01T00:00:00Z\"";
  assert_int_equal(filter_parse(text, strlen(text), small, &f, err, sizeof err), 0);
  for (int i = 0; i < 100; i++) assert_non_null(arena_alloc(small, 100));
  char *cats[] = {"x"};
  product p = item("xABCx", "", 5);
  p.categories = cats;
  p.n_categories = 1;
  p.created_us = 1600000000000000;
  assert_true(filter_match(f, &p));
  arena_destroy(small);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_teardown(fn, reset_arena)
      T(empty_and_whitespace_only_filters_parse_to_null),
      T(price_supports_every_comparison_operator),
      T(name_and_description_equality_is_exact_and_colon_is_ascii_case_insensitive),
      T(colon_substring_search_agrees_with_a_naive_search),
      T(categories_colon_means_has_an_equal_element),
      T(times_compare_in_microseconds_with_any_offset),
      T(invalid_times_are_rejected_at_the_value),
      T(not_binds_tighter_than_and),
      T(and_binds_tighter_than_or),
      T(chains_of_not_fold_by_parity),
      T(long_chains_and_whitespace_between_tokens),
      T(keywords_and_fields_are_case_sensitive),
      T(strings_decode_only_quote_and_backslash_escapes),
      T(invalid_utf8_in_strings_is_rejected_at_the_bad_byte),
      T(nul_bytes_count_toward_the_length_and_are_rejected),
      T(numbers_follow_the_contract_grammar),
      T(values_of_the_wrong_type_are_rejected_at_the_value),
      T(operators_not_allowed_for_a_field_are_rejected_at_the_operator),
      T(syntax_errors_name_the_offset),
      T(filters_of_1024_bytes_pass_and_1025_fail),
      T(sixteen_levels_of_parentheses_pass_and_seventeen_fail),
      T(sql_looking_values_are_stored_and_matched_verbatim),
      T(error_messages_never_quote_user_strings),
      T(tiny_or_missing_error_buffers_are_safe),
      T(tree_stays_valid_while_a_small_arena_grows),
#undef T
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
