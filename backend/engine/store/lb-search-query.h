/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LB_SEARCH_QUERY_ERROR (lb_search_query_error_quark ())

/* Every code is final: the user must change the query. The message says how. */
typedef enum
{
  LB_SEARCH_QUERY_ERROR_INVALID,       /* not UTF-8 */
  LB_SEARCH_QUERY_ERROR_TOO_LONG,      /* over LB_SEARCH_QUERY_MAX_LENGTH bytes, or nested too deep */
  LB_SEARCH_QUERY_ERROR_PARENTHESES,   /* a "(" not closed or a ")" not opened */
  LB_SEARCH_QUERY_ERROR_DATE,          /* before:/after:/date: with something that is not a date */
  LB_SEARCH_QUERY_ERROR_FILTER,        /* is:/has: value unknown, contradictory, or a filter
                                        * under OR or inside a left-out group */
  LB_SEARCH_QUERY_ERROR_ONLY_EXCLUDED, /* text that only says what to leave out */
} LbSearchQueryError;

GQuark lb_search_query_error_quark (void);

#define LB_SEARCH_QUERY_MAX_LENGTH 4096
#define LB_SEARCH_QUERY_MAX_DEPTH 8

typedef enum
{
  LB_SEARCH_TRISTATE_ANY,
  LB_SEARCH_TRISTATE_YES,
  LB_SEARCH_TRISTATE_NO,
} LbSearchTristate;

/* What the store's search runs: an FTS5 MATCH expression over the columns subject,
 * sender, recipients and body, and filters on the messages table, all ANDed. */
typedef struct
{
  char *match;          /* FTS5 MATCH expression, or NULL when the query has no text terms */
  gint64 after;         /* messages on or after this time (unix seconds), 0 = none */
  gint64 before;        /* messages strictly before this time, 0 = none */
  int unread;           /* LbSearchTristate */
  int flagged;          /* LbSearchTristate */
  int has_attachment;   /* LbSearchTristate */
  GPtrArray *folders;   /* char*, folder names, any of them (compare case-insensitively);
                         * empty = every folder; never NULL */
} LbSearchQuery;

LbSearchQuery *lb_search_query_parse (const char *text,
                                      GDateTime  *now,
                                      GTimeZone  *tz,
                                      GError    **error);
void           lb_search_query_free  (LbSearchQuery *query);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbSearchQuery, lb_search_query_free)

G_END_DECLS
