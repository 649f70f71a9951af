/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib.h>
#include <sqlite3.h>
#include <string.h>

#include "lb-search-query.h"

/* The search language: what each form turns into, the dates, the errors; and proof that
 * every MATCH expression produced is valid FTS5 — each one is run against an in-memory
 * FTS5 table shaped like the store's (nasty input, the fuzz corpus, random queries,
 * nesting and length at the limits) — and that the queries find the right rows. */

/* 2024-06-15 12:00 at UTC+02:00, a Saturday */
#define NOW_UNIX G_GINT64_CONSTANT (1718445600)

typedef struct
{
  sqlite3 *db;
  sqlite3_stmt *stmt;
  GTimeZone *tz;
  GDateTime *now;
} Fixture;

static const struct
{
  const char *subject, *sender, *recipients, *body;
} rows[] = {
  { "Meeting tomorrow", "Alice Smith <alice@example.org>", "Bob <bob@example.com>",
    "Let's meet at the café at noon." },
  { "Re: Quarterly report", "Bob <bob@example.com>",
    "Alice Smith <alice@example.org>, carol@example.net",
    "The report is attached. O'Brien approved." },
  { "Newsletter: Spring deals", "Shop <news@shop.example>", "alice@example.org",
    "Unsubscribe at any time. Crème brûlée recipe inside." },
  { "Lunch", "Carol <carol@example.net>", "Bob <bob@example.com>",
    "Smith and Alice are coming too" },
};

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (NOW_UNIX);
  sqlite3_stmt *insert;

  (void) data;
  g_assert_cmpint (sqlite3_open (":memory:", &f->db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (f->db,
                                 "CREATE VIRTUAL TABLE t USING fts5(subject, sender, "
                                 "recipients, body, tokenize = 'unicode61 remove_diacritics 2', "
                                 "prefix = '2 3')",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (f->db, "INSERT INTO t (rowid, subject, sender, "
                                       "recipients, body) VALUES (?, ?, ?, ?, ?)",
                                       -1, &insert, NULL), ==, SQLITE_OK);
  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      sqlite3_bind_int (insert, 1, i + 1);
      sqlite3_bind_text (insert, 2, rows[i].subject, -1, SQLITE_STATIC);
      sqlite3_bind_text (insert, 3, rows[i].sender, -1, SQLITE_STATIC);
      sqlite3_bind_text (insert, 4, rows[i].recipients, -1, SQLITE_STATIC);
      sqlite3_bind_text (insert, 5, rows[i].body, -1, SQLITE_STATIC);
      g_assert_cmpint (sqlite3_step (insert), ==, SQLITE_DONE);
      sqlite3_reset (insert);
    }
  sqlite3_finalize (insert);
  g_assert_cmpint (sqlite3_prepare_v2 (f->db, "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid",
                                       -1, &f->stmt, NULL), ==, SQLITE_OK);
  f->tz = g_time_zone_new_offset (2 * 3600);
  f->now = g_date_time_to_timezone (utc, f->tz);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  (void) data;
  sqlite3_finalize (f->stmt);
  sqlite3_close (f->db);
  g_time_zone_unref (f->tz);
  g_date_time_unref (f->now);
}

/* The rows @match finds, as "1,3"; fails the test when FTS5 refuses the expression. */
static char *
run_match (Fixture    *f,
           const char *match,
           const char *input)
{
  GString *found = g_string_new (NULL);
  int rc;

  sqlite3_reset (f->stmt);
  sqlite3_bind_text (f->stmt, 1, match, -1, SQLITE_TRANSIENT);
  while ((rc = sqlite3_step (f->stmt)) == SQLITE_ROW)
    g_string_append_printf (found, "%s%d", found->len > 0 ? "," : "",
                            sqlite3_column_int (f->stmt, 0));
  if (rc != SQLITE_DONE)
    g_error ("FTS5 refused %s (from %s): %s", match, input, sqlite3_errmsg (f->db));
  return g_string_free (found, FALSE);
}

static LbSearchQuery *
parse (Fixture    *f,
       const char *text)
{
  g_autoptr(GError) error = NULL;
  LbSearchQuery *query = lb_search_query_parse (text, f->now, f->tz, &error);

  g_assert_no_error (error);
  g_assert_nonnull (query);
  return query;
}

/* Parses @text; if it parses, its MATCH must be valid FTS5. Returns whether it parsed. */
static gboolean
check_valid (Fixture    *f,
             const char *text,
             gsize       len)
{
  g_autofree char *copy = g_strndup (text, len);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSearchQuery) query = NULL;

  if (strlen (copy) != len)
    return FALSE; /* a NUL inside: not something a search entry gives */
  query = lb_search_query_parse (copy, f->now, f->tz, &error);
  if (query == NULL)
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == LB_SEARCH_QUERY_ERROR);
      g_assert_true (error->message[0] != '\0');
      return FALSE;
    }
  g_assert_no_error (error);
  g_assert_nonnull (query->folders);
  if (query->match != NULL)
    {
      g_assert_true (g_utf8_validate (query->match, -1, NULL));
      g_free (run_match (f, query->match, copy));
    }
  return TRUE;
}

static void
test_text (Fixture       *f,
           gconstpointer  data)
{
  static const struct
  {
    const char *input, *match;
  } cases[] = {
    { "", NULL },
    { "   \t ", NULL },
    { "meet", "\"meet\"*" },
    { "meet lunch", "\"meet\"* AND \"lunch\"*" },
    { "\"quarterly report\"", "\"quarterly report\"" },
    { "alice@example.org", "\"alice example org\"*" },
    { "o'brien", "\"o brien\"*" },
    { "re:", "\"re\"*" },
    { "x-y", "\"x y\"*" },
    { "foo:bar", "\"foo bar\"*" },
    { "from:alice", "sender : \"alice\"*" },
    { "From:alice", "sender : \"alice\"*" },
    { "to:bob cc:carol bcc:dave", "recipients : \"bob\"* AND recipients : \"carol\"* AND "
                                  "recipients : \"dave\"*" },
    { "subject:re:hello", "subject : \"re hello\"*" },
    { "body:report", "body : \"report\"*" },
    { "from:\"Alice Smith\"", "sender : \"Alice Smith\"" },
    { "-newsletter alice", "\"alice\"* NOT \"newsletter\"" },
    { "alice NOT from:shop -spam", "\"alice\"* NOT (sender : \"shop\" OR \"spam\")" },
    { "lunch OR quarterly", "\"lunch\"* OR \"quarterly\"*" },
    { "a b OR c", "(\"a\"* AND \"b\"*) OR \"c\"*" },
    { "a AND b", "\"a\"* AND \"b\"*" },
    { "(alice OR bob) -lunch", "(\"alice\"* OR \"bob\"*) NOT \"lunch\"" },
    { "smith -(from:alice OR from:bob)",
      "\"smith\"* NOT (sender : \"alice\"* OR sender : \"bob\"*)" },
    { "a -(b -c)", "\"a\"* NOT (\"b\"* NOT \"c\")" },
    { "a OR (b -c)", "\"a\"* OR (\"b\"* NOT \"c\")" },
    { "((((a))))", "\"a\"*" },
    { "()", NULL },
    { "a ()", "\"a\"*" },
    /* forgiven while typing */
    { "\"unclosed quote", "\"unclosed quote\"" },
    { "a OR", "\"a\"*" },
    { "OR a", "\"a\"*" },
    { "a OR OR b", "\"a\"* OR \"b\"*" },
    { "a -", "\"a\"*" },
    { "a NOT", "\"a\"*" },
    { "a from:", "\"a\"*" },
    { "a from:\"\"", "\"a\"*" },
    { "\"OR\" \"NOT\"", "\"OR\" AND \"NOT\"" },
    { "or not", "\"or\"* AND \"not\"*" },
    /* what FTS5 would read as syntax is only text here */
    { "NEAR(a b)", "\"NEAR\"* AND \"a\"* AND \"b\"*" },
    { "^caret *star col:umn", "\"caret\"* AND \"star\"* AND \"col umn\"*" },
    { "😀 ... --- ''", NULL },
    { "café 日本語", "\"café\"* AND \"日本語\"*" },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(LbSearchQuery) query = parse (f, cases[i].input);

      g_test_message ("%s -> %s", cases[i].input, query->match);
      g_assert_cmpstr (query->match, ==, cases[i].match);
      g_assert_cmpint (query->after, ==, 0);
      g_assert_cmpint (query->before, ==, 0);
      g_assert_cmpint (query->unread, ==, LB_SEARCH_TRISTATE_ANY);
      g_assert_cmpint (query->flagged, ==, LB_SEARCH_TRISTATE_ANY);
      g_assert_cmpint (query->has_attachment, ==, LB_SEARCH_TRISTATE_ANY);
      g_assert_cmpuint (query->folders->len, ==, 0);
      if (query->match != NULL)
        g_free (run_match (f, query->match, cases[i].input));
    }
}

static void
test_filters (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(LbSearchQuery) q1 = parse (f, "is:unread is:flagged has:attachment");
  g_autoptr(LbSearchQuery) q2 = parse (f, "is:read is:unstarred HAS:Attachments");
  g_autoptr(LbSearchQuery) q3 = parse (f, "-is:unread -is:starred is:Read");
  g_autoptr(LbSearchQuery) q4 = NULL;
  g_autoptr(LbSearchQuery) q5 = NULL;
  g_autoptr(LbSearchQuery) q6 = NULL;
  g_autoptr(GError) error = NULL;

  (void) data;
  g_assert_null (q1->match);
  g_assert_cmpint (q1->unread, ==, LB_SEARCH_TRISTATE_YES);
  g_assert_cmpint (q1->flagged, ==, LB_SEARCH_TRISTATE_YES);
  g_assert_cmpint (q1->has_attachment, ==, LB_SEARCH_TRISTATE_YES);
  g_assert_cmpint (q2->unread, ==, LB_SEARCH_TRISTATE_NO);
  g_assert_cmpint (q2->flagged, ==, LB_SEARCH_TRISTATE_NO);
  g_assert_cmpint (q2->has_attachment, ==, LB_SEARCH_TRISTATE_YES);
  g_assert_null (lb_search_query_parse ("is:unread -is:unread", f->now, f->tz, &error));
  g_assert_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_FILTER);
  g_clear_error (&error);
  g_assert_cmpint (q3->unread, ==, LB_SEARCH_TRISTATE_NO);
  g_assert_cmpint (q3->flagged, ==, LB_SEARCH_TRISTATE_NO);

  /* Several folders: any of them; duplicates (ignoring case) once. */
  q4 = parse (f, "report folder:Inbox in:\"Sent Items\" FOLDER:inbox (folder:Archive)");
  g_assert_cmpstr (q4->match, ==, "\"report\"*");
  g_assert_cmpuint (q4->folders->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (q4->folders, 0), ==, "Inbox");
  g_assert_cmpstr (g_ptr_array_index (q4->folders, 1), ==, "Sent Items");
  g_assert_cmpstr (g_ptr_array_index (q4->folders, 2), ==, "Archive");
  q5 = parse (f, "folder:a OR folder:b");
  g_assert_null (q5->match);
  g_assert_cmpuint (q5->folders->len, ==, 2);

  /* Filters inside a group that is ANDed in are fine. */
  q6 = parse (f, "alice (is:unread (bob has:attachment))");
  g_assert_cmpstr (q6->match, ==, "\"alice\"* AND \"bob\"*");
  g_assert_cmpint (q6->unread, ==, LB_SEARCH_TRISTATE_YES);
  g_assert_cmpint (q6->has_attachment, ==, LB_SEARCH_TRISTATE_YES);
}

static void
test_dates (Fixture       *f,
            gconstpointer  data)
{
  const gint64 day = 86400;
  /* local midnights at UTC+02:00 */
  const gint64 jun15 = NOW_UNIX - 12 * 3600;
  const gint64 mar1 = G_GINT64_CONSTANT (1709244000);
  const gint64 feb1 = G_GINT64_CONSTANT (1706738400);
  const gint64 jan1 = G_GINT64_CONSTANT (1704060000);
  static const struct
  {
    const char *input;
    gint64 after, before;
  } cases[] = {
    { "after:2024-03-01", 1709244000, 0 },
    { "before:2024-03-01", 0, 1709244000 },
    { "after:2024/3/1", 1709244000, 0 },
    { "date:2024-02-29", 1709157600, 1709244000 },
    { "date:2024-02", 1706738400, 1709244000 },
    { "date:2024", 1704060000, 1735682400 },
    { "after:2024-02 before:2024-03", 1706738400, 1709244000 },
    /* the latest after and the earliest before */
    { "after:2024 after:2024-02 before:2024-03 before:2025", 1706738400, 1709244000 },
    { "-before:2024-03-01", 1709244000, 0 },
    { "-after:2024-03-01", 0, 1709244000 },
    { "date:today", 1718402400, 1718488800 },
    { "date:yesterday", 1718316000, 1718402400 },
    { "after:TODAY", 1718402400, 0 },
    { "after:7d", 1718445600 - 7 * 86400, 0 },
    { "newer_than:2w", 1718445600 - 14 * 86400, 0 },
    { "before:1y", 0, 1686823200 },      /* 2023-06-15 12:00 */
    { "older_than:3m", 0, 1710496800 },  /* 2024-03-15 12:00 */
    { "date:7D", 1718445600 - 7 * 86400, 0 },
    { "date:0d", 1718445600, 0 },
    { "date:9999-12-31", 253402207200, 0 },
  };

  (void) data;
  g_assert_cmpint (jun15, ==, 1718402400);
  g_assert_cmpint (mar1, ==, feb1 + 29 * day);
  g_assert_cmpint (feb1, ==, jan1 + 31 * day);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(LbSearchQuery) query = parse (f, cases[i].input);

      g_test_message ("%s -> [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", cases[i].input,
                      query->after, query->before);
      g_assert_null (query->match);
      g_assert_cmpint (query->after, ==, cases[i].after);
      g_assert_cmpint (query->before, ==, cases[i].before);
    }
}

static void
test_dates_dst (void)
{
  g_autoptr(GTimeZone) tz = g_time_zone_new_identifier ("Europe/Berlin");
  g_autoptr(GDateTime) now = NULL;
  g_autoptr(LbSearchQuery) query = NULL;
  g_autoptr(GError) error = NULL;

  if (tz == NULL)
    {
      g_test_skip ("no tzdata for Europe/Berlin");
      return;
    }
  /* 31 March 2024 has 23 hours in Berlin; its midnight is at +01:00, the next at +02:00. */
  now = g_date_time_new (tz, 2024, 3, 31, 18, 0, 0);
  query = lb_search_query_parse ("date:today", now, tz, &error);
  g_assert_no_error (error);
  g_assert_cmpint (query->after, ==, 1711839600);
  g_assert_cmpint (query->before, ==, 1711839600 + 23 * 3600);
  g_clear_pointer (&query, lb_search_query_free);
  query = lb_search_query_parse ("after:1d", now, tz, &error);
  g_assert_no_error (error);
  g_assert_cmpint (query->after, ==, g_date_time_to_unix (now) - 23 * 3600);
  g_clear_pointer (&query, lb_search_query_free);
  /* NULL for now and local zone: runs, gives something in the past */
  query = lb_search_query_parse ("after:1d", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (query->after, <, g_get_real_time () / G_USEC_PER_SEC);
  g_assert_cmpint (query->after, >, g_get_real_time () / G_USEC_PER_SEC - 3 * 86400);
}

static void
test_errors (Fixture       *f,
             gconstpointer  data)
{
  static const struct
  {
    const char *input;
    int code;
    const char *message;
  } cases[] = {
    { "before:2024-13-45", LB_SEARCH_QUERY_ERROR_DATE, "“2024-13-45” is not a date" },
    { "after:2023-02-29", LB_SEARCH_QUERY_ERROR_DATE, "“2023-02-29” is not a date" },
    { "date:24-01-01", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "date:2024-01-", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "date:2024-01-01-01", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "date:0000", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "after:tomorrow", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "after:7x", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "after:d", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "after:9999999d", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "after:999999y", LB_SEARCH_QUERY_ERROR_DATE, NULL },
    { "(a", LB_SEARCH_QUERY_ERROR_PARENTHESES, "A “(” in the search is not closed" },
    { "a)", LB_SEARCH_QUERY_ERROR_PARENTHESES, "A “)” in the search has no matching “(”" },
    { "(a))(", LB_SEARCH_QUERY_ERROR_PARENTHESES, NULL },
    { ":)", LB_SEARCH_QUERY_ERROR_PARENTHESES, NULL },
    { "is:important", LB_SEARCH_QUERY_ERROR_FILTER, NULL },
    { "has:pdf", LB_SEARCH_QUERY_ERROR_FILTER, NULL },
    { "is:read is:unread", LB_SEARCH_QUERY_ERROR_FILTER,
      "“is:unread” contradicts another filter in the search" },
    { "a OR is:unread", LB_SEARCH_QUERY_ERROR_FILTER,
      "“is:unread” cannot be one of the choices of OR" },
    { "(a after:2024) OR b", LB_SEARCH_QUERY_ERROR_FILTER, NULL },
    { "folder:a OR b", LB_SEARCH_QUERY_ERROR_FILTER, NULL },
    { "a -(b is:unread)", LB_SEARCH_QUERY_ERROR_FILTER, NULL },
    { "a -folder:Inbox", LB_SEARCH_QUERY_ERROR_FILTER, NULL },
    { "a -date:2024", LB_SEARCH_QUERY_ERROR_FILTER, NULL },
    { "-spam", LB_SEARCH_QUERY_ERROR_ONLY_EXCLUDED,
      "Search for something as well as what to leave out" },
    { "-spam is:unread", LB_SEARCH_QUERY_ERROR_ONLY_EXCLUDED, NULL },
    { "NOT a NOT b", LB_SEARCH_QUERY_ERROR_ONLY_EXCLUDED, NULL },
    { "a OR -b", LB_SEARCH_QUERY_ERROR_ONLY_EXCLUDED, NULL },
    { "a -(-b)", LB_SEARCH_QUERY_ERROR_ONLY_EXCLUDED, NULL },
    { "a\xff", LB_SEARCH_QUERY_ERROR_INVALID, NULL },
    { "\xc3", LB_SEARCH_QUERY_ERROR_INVALID, NULL },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LbSearchQuery) query = lb_search_query_parse (cases[i].input, f->now, f->tz,
                                                              &error);

      {
        /* Escaped: some inputs are not UTF-8, and TAP output must be. */
        g_autofree char *shown = g_strescape (cases[i].input, NULL);

        g_test_message ("%s -> %s", shown, error != NULL ? error->message : "(parsed)");
      }
      g_assert_null (query);
      g_assert_error (error, LB_SEARCH_QUERY_ERROR, cases[i].code);
      if (cases[i].message != NULL)
        g_assert_cmpstr (error->message, ==, cases[i].message);
      /* and without anyone asking for the error */
      g_assert_null (lb_search_query_parse (cases[i].input, f->now, f->tz, NULL));
    }
}

static void
test_limits (Fixture       *f,
             gconstpointer  data)
{
  /* each opens one parenthesis */
  static const char *const shapes[] = { "a# -(b# ", "a# OR (b# ", "a# -(b# OR ",
                                        "-c# a# OR (b# -d# ", "a# (b# OR -c# ",
                                        "a# -(b# OR c# -d# ", "x# -y# (a# OR ",
                                        "a# OR -y# x# (b# -c# ", "(" };
  static const char *const units[] = { "a ", "a OR ", "-a b ", "x@y.z ", "from:\"q r\" ",
                                       "😀", "é", "\"", "(a) ", "NOT " };
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSearchQuery) query = NULL;
  g_autoptr(GString) deep = g_string_new (NULL);
  g_autofree char *too_long = g_strnfill (LB_SEARCH_QUERY_MAX_LENGTH + 1, 'a');

  (void) data;
  /* The longest search of every kind is still one FTS5 accepts. */
  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    {
      g_autoptr(GString) text = g_string_new ("z ");

      while (text->len + strlen (units[i]) <= LB_SEARCH_QUERY_MAX_LENGTH)
        g_string_append (text, units[i]);
      g_assert_true (check_valid (f, text->str, text->len));
    }
  g_assert_null (lb_search_query_parse (too_long, f->now, f->tz, &error));
  g_assert_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_TOO_LONG);
  g_clear_error (&error);
  too_long[LB_SEARCH_QUERY_MAX_LENGTH] = '\0';
  query = lb_search_query_parse (too_long, f->now, f->tz, &error);
  g_assert_no_error (error);

  /* Nesting at the limit, in the shapes that nest FTS5's parser deepest, is accepted by
   * FTS5 (whose parser stack overflows at about 30 levels); one more is an error. */
  for (guint shape = 0; shape < G_N_ELEMENTS (shapes); shape++)
    for (guint extra = 0; extra < 2; extra++)
      {
        guint depth = LB_SEARCH_QUERY_MAX_DEPTH + extra;

        g_string_truncate (deep, 0);
        for (guint i = 0; i < depth; i++)
          {
            g_autofree char *n = g_strdup_printf ("%u", i);
            g_auto(GStrv) pieces = g_strsplit (shapes[shape], "#", -1);
            g_autofree char *unit = g_strjoinv (n, pieces);

            g_string_append (deep, unit);
          }
        g_string_append (deep, "z");
        for (guint i = 0; i < depth; i++)
          g_string_append_c (deep, ')');
        g_test_message ("depth %u: %s", depth, deep->str);
        g_assert_true (check_valid (f, deep->str, deep->len) == (extra == 0));
      }
  g_assert_null (lb_search_query_parse (deep->str, f->now, f->tz, &error));
  g_assert_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_TOO_LONG);
}

static void
test_nasty (Fixture       *f,
            gconstpointer  data)
{
  static const char *const inputs[] = {
    "\"", "\"\"", "\"\"\"", "a\"b", "\"a\" \"", "\"\"a\"\"", "'", "''", "`",
    "*", "**", "a*", "*a", "\"a\"*", "a * b", "from:*", "from:\"*\"",
    ":", "::", "a:", ":a", "a:b:c", "from::", "from:a:b", "subject:\"re: x\"",
    "^", "^a", "a^b", "sender : a", "{sender}:a", "{sender recipients} : a", "-sender:a",
    "NEAR(", "NEAR(a b", "NEAR(a b)", "NEAR(a b, 3)", "a NEAR b", "NEAR", "near(a)",
    "(", ")", "()", "(()", "())", "( )", "((a) (b))", ")(", "a (OR) b", "(NOT)", "(-)",
    "AND", "OR", "NOT", "AND OR NOT", "a AND", "AND a", "a NOT NOT b", "- - -", "--a",
    "-", "-\"\"", "-()", "-(a)", "a -(b)", "a - b", "a -\"b c\"", "NOT(a) b",
    "+", "a+b", "+a", "a + b", "\"a\" + \"b\"", "~a", "a|b", "a&b", "!a", "a;b", "a,b",
    "é", "e\xcc\x81", "\xcc\x81", "\xcc\x81\xcc\x81" "a", "ß", "İ", "ﬁ", "Ω", "Å",
    "日本語", "中文 搜索", "한국어", "العربية", "עברית", "ไทย", "हिन्दी",
    "😀", "👩‍👩‍👧", "🥰 x", "🇩🇪", "a😀b", "\xef\xb8\x8f", "\xe2\x80\x8b", "\xe2\x80\x8d",
    "\xef\xbb\xbf" "a", "\xee\x80\x80", "\xf3\xb0\x80\x80", "\xf4\x8f\xbf\xbf",
    "\x01\x02\x03", "a\tb\nc\rd", "\x1b[31mred", "\x7f", "a\x0b" "b\x0c" "c",
    "\xc2\xa0nbsp", "\xe3\x80\x80ideographic", "\xe2\x80\xa8line",
    "%", "%s%n", "\\", "\\\"", "a\\\"b", "$", "@", "@@", "a@", "@a", "#", "<a@b>",
    "from:\"unclosed", "to:\"", "is:", "has:", "folder:", "in:\"\"", "date:", "before:\"\"",
    "folder:\"a b\" OR folder:c", "folder:\"*\"", "folder:(", "folder:)",
    "is:unread OR is:unread", "(is:unread)", "-(is:unread)", "NOT is:unread",
    "a OR b OR c OR d", "a OR (b OR (c OR d))", "(a OR b) (c OR d) -(e OR f)",
    "0", "00", "1d", "after:0d", "after:000000d", "date:1970", "date:1969-12-31",
    "before:1970-01-01", "date:0001", "date:0001-01-01",
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (inputs); i++)
    check_valid (f, inputs[i], strlen (inputs[i]));
}

static void
test_corpus (Fixture       *f,
             gconstpointer  data)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "search-query", NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0, parsed = 0;

  (void) data;
  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *text = NULL;
      gsize len;

      g_assert_true (g_file_get_contents (path, &text, &len, NULL));
      parsed += check_valid (f, text, len);
      n++;
    }
  g_assert_cmpuint (n, >=, 20);
  g_assert_cmpuint (parsed, >=, 20);
}

/* Queries pieced together at random from the language's parts. */
static void
test_random (Fixture       *f,
             gconstpointer  data)
{
  static const char *const parts[] = {
    "a", "meet", "alice@example.org", "o'brien", "\"", "\"x y\"", "(", ")", "-", "NOT",
    "OR", "AND", "from:", "to:bob", "subject:", "body:\"", "is:unread", "has:attachment",
    "folder:x", "after:7d", "date:2024", "*", "^", ":", "NEAR(", "é", "😀", "日本", " ",
    "  ", "\t", "-(", "x-y", "{sender}", "+", ",",
  };
  guint parsed = 0;

  (void) data;
  for (guint n = 0; n < 20000; n++)
    {
      g_autoptr(GString) text = g_string_new (NULL);
      guint len = g_test_rand_int_range (1, 12);

      for (guint i = 0; i < len; i++)
        {
          g_string_append (text, parts[g_test_rand_int_range (0, G_N_ELEMENTS (parts))]);
          if (g_test_rand_int_range (0, 3) > 0)
            g_string_append_c (text, ' ');
        }
      parsed += check_valid (f, text->str, text->len);
    }
  g_test_message ("%u of 20000 random queries parsed", parsed);
  g_assert_cmpuint (parsed, >, 5000);
}

static void
test_matching (Fixture       *f,
               gconstpointer  data)
{
  static const struct
  {
    const char *input, *rows;
  } cases[] = {
    { "meet", "1" },                        /* prefix: "Meeting", "meet" */
    { "MEETING", "1" },
    { "cafe", "1" },                        /* diacritics either way */
    { "CAFÉ", "1" },
    { "creme brulee", "3" },
    { "crème", "3" },
    { "\"alice smith\"", "1,2" },           /* a phrase; row 4 has "Smith and Alice" */
    { "alice smith", "1,2,4" },
    { "\"alice smi\"", "" },                /* a quoted phrase is not a prefix */
    { "from:alice", "1" },
    { "to:alice", "2,3" },
    { "cc:alice", "2,3" },
    { "from:\"Alice Smith\"", "1" },
    { "alice -newsletter", "1,2,4" },
    { "alice NOT from:shop", "1,2,4" },
    { "-newsletter alice", "1,2,4" },
    { "alice -news", "1,2,4" },             /* a left-out word is exact... */
    { "alice -new", "1,2,3,4" },            /* ...so "new" leaves out nothing */
    { "lunch OR quarterly", "2,4" },
    { "alice@example.org", "1,2,3" },
    { "example.net", "2,4" },
    { "o'brien", "2" },
    { "re:", "2,3" },                       /* "Re:", "report", "recipe" */
    { "subject:report", "2" },
    { "body:report", "2" },
    { "subject:lunch", "4" },
    { "body:lunch", "" },
    { "report -subject:quarterly", "" },
    { "(alice OR bob) -lunch", "1,2,3" },
    { "smith -(from:alice OR from:bob)", "4" },
    { "bob -(to:bob -lunch)", "2,4" },
    { "subject:\"spring deals\"", "3" },
    { "\"deals spring\"", "" },
    { "from:shop OR from:carol", "3,4" },
    { "noon OR (report -approved)", "1" },
    { "a\"b", "" },
    { "at", "1,2,3" },                      /* "at", "attached" */
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(LbSearchQuery) query = parse (f, cases[i].input);
      g_autofree char *found = NULL;

      g_assert_nonnull (query->match);
      found = run_match (f, query->match, cases[i].input);
      g_test_message ("%s -> %s -> %s", cases[i].input, query->match, found);
      g_assert_cmpstr (found, ==, cases[i].rows);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/search-query/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("text", test_text);
  ADD ("filters", test_filters);
  ADD ("dates", test_dates);
  ADD ("errors", test_errors);
  ADD ("limits", test_limits);
  ADD ("nasty", test_nasty);
  ADD ("corpus", test_corpus);
  ADD ("random", test_random);
  ADD ("matching", test_matching);
#undef ADD
  g_test_add_func ("/search-query/dates-dst", test_dates_dst);

  return g_test_run ();
}
