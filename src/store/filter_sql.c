/* Compiles a parsed filter to a parameterised SQL WHERE fragment (schema
 * contract in filter.h). The SQL text is built only from constants in this
 * file and placeholder numbers; every user value becomes a filter_param. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "store/filter.h"
#include "store/filter_node.h"

/* Two passes over the tree: the first (buf == NULL) measures the text and
 * counts the parameters, the second writes into exact-size arena buffers. */
typedef struct sql_writer {
  filter_dialect dialect;
  char *buf;
  size_t len;
  filter_param *params;
  size_t n_params;
  int first_param;
} sql_writer;

static const char *const column_names[] = {
    [FILTER_FIELD_PRICE] = "price",         [FILTER_FIELD_NAME] = "name",
    [FILTER_FIELD_DESCRIPTION] = "description", [FILTER_FIELD_CATEGORIES] = "",
    [FILTER_FIELD_CREATED_AT] = "created_us", [FILTER_FIELD_UPDATED_AT] = "updated_us",
};
static const char *const sql_ops[] = {
    [FILTER_EQ] = " = ",  [FILTER_NE] = " <> ", [FILTER_LT] = " < ", [FILTER_LE] = " <= ",
    [FILTER_GT] = " > ",  [FILTER_GE] = " >= ", [FILTER_HAS] = "",
};

#define PG_ASCII_FOLD "'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'"

static void emit(sql_writer *w, const char *s) {
  size_t n = strlen(s);
  if (w->buf) memcpy(w->buf + w->len, s, n);
  w->len += n;
}

/* Appends the next placeholder ("?N" / "$N::cast") and records its value. */
static void emit_param(sql_writer *w, filter_param v) {
  char ph[48];
  long long number = (long long)w->first_param + (long long)w->n_params;
  if (w->dialect == FILTER_SQL_POSTGRES) {
    const char *cast = v.kind == FILTER_PARAM_TEXT     ? "text"
                       : v.kind == FILTER_PARAM_DOUBLE ? "double precision"
                                                       : "bigint";
    snprintf(ph, sizeof ph, "$%lld::%s", number, cast);
  } else {
    snprintf(ph, sizeof ph, "?%lld", number);
  }
  emit(w, ph);
  if (w->params) w->params[w->n_params] = v;
  w->n_params++;
}

static filter_param text_param(const char *s, size_t n) {
  return (filter_param){.kind = FILTER_PARAM_TEXT, .text = s, .text_len = n};
}

static void emit_comparison(sql_writer *w, const filter *f) {
  const char *col = column_names[f->field];
  emit(w, "(");
  switch (f->field) {
  case FILTER_FIELD_PRICE:
    emit(w, col);
    emit(w, sql_ops[f->op]);
    emit_param(w, (filter_param){.kind = FILTER_PARAM_DOUBLE, .d = f->number});
    break;
  case FILTER_FIELD_CREATED_AT:
  case FILTER_FIELD_UPDATED_AT:
    emit(w, col);
    emit(w, sql_ops[f->op]);
    emit_param(w, (filter_param){.kind = FILTER_PARAM_INT64, .i = f->us});
    break;
  case FILTER_FIELD_CATEGORIES:
    emit(w, "EXISTS (SELECT 1 FROM product_categories c WHERE c.product_id = products.id AND c.value = ");
    emit_param(w, text_param(f->text, f->text_len));
    emit(w, ")");
    break;
  case FILTER_FIELD_NAME:
  case FILTER_FIELD_DESCRIPTION:
    if (f->op != FILTER_HAS) {
      emit(w, col);
      emit(w, sql_ops[f->op]);
      emit_param(w, text_param(f->text, f->text_len));
    } else if (w->dialect == FILTER_SQL_POSTGRES) {
      /* translate(), not lower(): PostgreSQL's lower() follows the locale. */
      emit(w, "strpos(translate(");
      emit(w, col);
      emit(w, ", " PG_ASCII_FOLD "), ");
      emit_param(w, text_param(f->folded, f->text_len));
      emit(w, ") > 0");
    } else {
      /* SQLite's built-in lower() folds ASCII only, as the contract wants. */
      emit(w, "instr(lower(");
      emit(w, col);
      emit(w, "), ");
      emit_param(w, text_param(f->folded, f->text_len));
      emit(w, ") > 0");
    }
    break;
  }
  emit(w, ")");
}

/* Recursion depth is bounded by the parser (at most ~3 per paren level). */
static void emit_node(sql_writer *w, const filter *f) {
  switch (f->kind) {
  case FILTER_OR:
  case FILTER_AND:
    emit(w, "(");
    for (const filter *c = f->child; c; c = c->next) {
      if (c != f->child) emit(w, f->kind == FILTER_OR ? " OR " : " AND ");
      emit_node(w, c);
    }
    emit(w, ")");
    break;
  case FILTER_NOT:
    emit(w, "(NOT ");
    emit_node(w, f->child);
    emit(w, ")");
    break;
  case FILTER_CMP: emit_comparison(w, f); break;
  }
}

int filter_to_sql(const filter *f, filter_dialect d, int first_param, arena *a, filter_sql *out) {
  if (!out || !a || first_param < 1) return -1;
  *out = (filter_sql){0};
  if (!f) {
    out->sql = arena_strdup(a, "(1 = 1)");
    return out->sql ? 0 : -1;
  }
  sql_writer w = {.dialect = d, .first_param = first_param};
  emit_node(&w, f);
  /* The last placeholder number must still be an int. */
  if (w.n_params > 0 && w.n_params - 1 > (size_t)(INT_MAX - first_param)) return -1;
  size_t n_params = w.n_params;
  char *buf = arena_alloc(a, w.len + 1);
  filter_param *params = arena_calloc(a, n_params ? n_params : 1, sizeof *params);
  if (!buf || !params) return -1;
  w = (sql_writer){.dialect = d, .first_param = first_param, .buf = buf, .params = params};
  emit_node(&w, f);
  buf[w.len] = '\0';
  out->sql = buf;
  out->params = params;
  out->n_params = n_params;
  return 0;
}
