/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-search-query.h"

/* libFuzzer target for the search-query parser. Without SQLite at hand, the MATCH
 * expression is checked against the grammar the parser promises to write, a subset of
 * FTS5's: OR of AND of NOT of (column : "token token"* | ( … )), every quote closed,
 * every token made of token characters. The unit test runs the same corpus through
 * SQLite's FTS5 itself. */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static const char *expr_or (const char *p, guint depth);

static gboolean
skip (const char **p,
      const char  *literal)
{
  gsize len = strlen (literal);

  if (strncmp (*p, literal, len) != 0)
    return FALSE;
  *p += len;
  return TRUE;
}

static const char *
phrase (const char *p)
{
  static const char *const columns[] = { "subject : ", "sender : ", "recipients : ",
                                         "body : " };
  gboolean at_token_start = TRUE;

  for (guint i = 0; i < G_N_ELEMENTS (columns); i++)
    if (skip (&p, columns[i]))
      break;
  if (!skip (&p, "\""))
    return NULL;
  for (;;)
    {
      gunichar c = g_utf8_get_char (p);

      if (c == '"' || c == ' ')
        {
          if (at_token_start)
            return NULL; /* an empty token */
          p++;
          if (c == '"')
            break;
          at_token_start = TRUE;
          continue;
        }
      if (c == '\0' || (at_token_start && !g_unichar_isalpha (c) &&
                        g_unichar_type (c) != G_UNICODE_DECIMAL_NUMBER &&
                        g_unichar_type (c) != G_UNICODE_LETTER_NUMBER &&
                        g_unichar_type (c) != G_UNICODE_OTHER_NUMBER &&
                        g_unichar_type (c) != G_UNICODE_PRIVATE_USE))
        return NULL;
      if (g_unichar_ispunct (c) || g_unichar_isspace (c) || g_unichar_iscntrl (c))
        return NULL;
      at_token_start = FALSE;
      p = g_utf8_next_char (p);
    }
  skip (&p, "*");
  return p;
}

static const char *
unary (const char *p,
       guint       depth)
{
  if (!skip (&p, "("))
    return phrase (p);
  if (depth > 4 * LB_SEARCH_QUERY_MAX_DEPTH)
    return NULL;
  p = expr_or (p, depth + 1);
  if (p == NULL || !skip (&p, ")"))
    return NULL;
  return p;
}

static const char *
expr_binary (const char *p,
             guint       depth,
             guint       level)
{
  static const char *const ops[] = { " OR ", " AND ", " NOT " };

  p = level < 2 ? expr_binary (p, depth, level + 1) : unary (p, depth);
  while (p != NULL && skip (&p, ops[level]))
    p = level < 2 ? expr_binary (p, depth, level + 1) : unary (p, depth);
  return p;
}

static const char *
expr_or (const char *p,
         guint       depth)
{
  return expr_binary (p, depth, 0);
}

static void
check (const char *text)
{
  g_autoptr(GTimeZone) tz = g_time_zone_new_utc ();
  g_autoptr(GDateTime) now = g_date_time_new (tz, 2024, 6, 15, 12, 0, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSearchQuery) query = lb_search_query_parse (text, now, tz, &error);
  g_autoptr(LbSearchQuery) again = lb_search_query_parse (text, now, tz, NULL);

  if (query == NULL)
    {
      if (again != NULL || error == NULL || error->domain != LB_SEARCH_QUERY_ERROR ||
          error->message[0] == '\0' || !g_utf8_validate (error->message, -1, NULL))
        __builtin_trap ();
      return;
    }
  if (again == NULL || g_strcmp0 (query->match, again->match) != 0 ||
      query->after != again->after || query->before != again->before)
    __builtin_trap ();
  if (query->match != NULL)
    {
      const char *end = expr_or (query->match, 0);

      if (!g_utf8_validate (query->match, -1, NULL) || end == NULL || *end != '\0')
        __builtin_trap ();
    }
  if (query->unread > LB_SEARCH_TRISTATE_NO || query->flagged > LB_SEARCH_TRISTATE_NO ||
      query->has_attachment > LB_SEARCH_TRISTATE_NO)
    __builtin_trap ();
  for (guint i = 0; i < query->folders->len; i++)
    {
      const char *folder = g_ptr_array_index (query->folders, i);

      if (folder[0] == '\0' || !g_utf8_validate (folder, -1, NULL))
        __builtin_trap ();
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);

  check (text);
  return 0;
}
