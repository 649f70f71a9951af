/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-store"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-search-query.h"

/*
 * The search box's language, read purely (text in, LbSearchQuery out, no I/O, no
 * SQLite), as Gmail, notmuch and Geary users type it:
 *
 *   meet            prefix match in every column ("meet"*: finds "meeting")
 *   "exact words"   a phrase, no prefix
 *   from: to: cc: bcc: subject: body:   the same, in one FTS5 column (to/cc/bcc are all
 *                   "recipients"); the value may be quoted: from:"Alice Smith"
 *   -word, NOT word leave out; a left-out word is matched exactly, not as a prefix, so
 *                   that -re does not also hide "report"
 *   a OR b          either (upper case only); AND is accepted and changes nothing
 *   ( … )           grouping, at most LB_SEARCH_QUERY_MAX_DEPTH deep
 *   is:unread is:read is:flagged is:starred is:unflagged is:unstarred has:attachment(s)
 *   folder:Name in:Name   (quoted allowed); several folders mean any of them
 *   before:DATE after:DATE date:DATE (also older_than:/newer_than: for before:/after:)
 *
 * Text is cut into tokens the way FTS5's unicode61 tokenizer cuts it (letters, digits,
 * private use; everything else separates), and every token is quoted, so no input gives
 * FTS5 a syntax error: alice@example.org becomes the phrase "alice example org"*. Case and
 * diacritics are left for FTS5 (remove_diacritics 2) to fold. A word without any letter
 * or digit (emoji, punctuation) is dropped. Unknown prefixes (foo:bar) are plain text.
 *
 * Dates. Every DATE names a period: YYYY-MM-DD (or YYYY/MM/DD) a day, YYYY-MM a month,
 * YYYY a year, "today" and "yesterday" a day — day boundaries at local midnight in the
 * given time zone — and Nd, Nw, Nm, Ny the span from N days/weeks/months/years ago until
 * now. after:X means on or after the start of X, before:X strictly before the start of X,
 * date:X within X. So before:2024-03-01 excludes 1 March, after:2024-03-01 includes it,
 * after:7d is the last 7 days, before:1y mail older than a year. Several date filters
 * narrow each other (the latest after, the earliest before).
 *
 * Forgiving, for a search that runs as the user types: an unclosed quote runs to the end
 * of the text; a known prefix with nothing after it (from:), a dangling OR/AND, and a NOT
 * or - with nothing to apply to are ignored. Errors, each with a sentence for the user:
 * invalid UTF-8, more than LB_SEARCH_QUERY_MAX_LENGTH bytes, unbalanced parentheses or
 * too deep, a bad date, an unknown is:/has: value, contradictory flags (is:read
 * is:unread), a filter among OR's choices or inside a left-out group (the filters are
 * columns of the messages table, ANDed with the text match, so they cannot sit under
 * OR), -folder: and -date:, and text that only leaves out: FTS5's NOT needs something on
 * its left, so "-spam" alone or "a OR -b" cannot be expressed; "-spam is:unread" is
 * refused too rather than silently ignoring the exclusion.
 */

G_DEFINE_QUARK (lb-search-query-error-quark, lb_search_query_error)

typedef enum
{
  FIELD_COLUMN,
  FIELD_IS,
  FIELD_HAS,
  FIELD_FOLDER,
  FIELD_BEFORE,
  FIELD_AFTER,
  FIELD_DATE,
} FieldKind;

typedef struct
{
  const char *name;
  FieldKind kind;
  const char *column; /* FIELD_COLUMN: the FTS5 column */
} Field;

static const Field fields[] = {
  { "from", FIELD_COLUMN, "sender" },
  { "to", FIELD_COLUMN, "recipients" },
  { "cc", FIELD_COLUMN, "recipients" },
  { "bcc", FIELD_COLUMN, "recipients" },
  { "subject", FIELD_COLUMN, "subject" },
  { "body", FIELD_COLUMN, "body" },
  { "is", FIELD_IS, NULL },
  { "has", FIELD_HAS, NULL },
  { "folder", FIELD_FOLDER, NULL },
  { "in", FIELD_FOLDER, NULL },
  { "before", FIELD_BEFORE, NULL },
  { "older_than", FIELD_BEFORE, NULL },
  { "after", FIELD_AFTER, NULL },
  { "newer_than", FIELD_AFTER, NULL },
  { "date", FIELD_DATE, NULL },
};

typedef enum
{
  LEX_WORD,
  LEX_PHRASE,
  LEX_FIELD,
  LEX_LPAREN,
  LEX_RPAREN,
  LEX_OR,
  LEX_AND,
  LEX_NOT,
  LEX_END,
} LexKind;

typedef struct
{
  LexKind kind;
  char *text;          /* WORD, PHRASE: the text; FIELD: the value */
  char *source;        /* FIELD: key:value as typed, for messages */
  const Field *field;
  gboolean quoted;     /* FIELD: the value was quoted */
} Lexeme;

typedef enum
{
  NODE_TERM,
  NODE_FILTER,
  NODE_AND,
  NODE_OR,
} NodeKind;

typedef enum
{
  FILTER_UNREAD,
  FILTER_FLAGGED,
  FILTER_ATTACHMENT,
  FILTER_FOLDER,
  FILTER_BEFORE,
  FILTER_AFTER,
  FILTER_DATE,
} FilterKind;

typedef struct _Node Node;
struct _Node
{
  NodeKind kind;
  gboolean negated;

  /* TERM */
  const char *column;  /* NULL = every column */
  GPtrArray *tokens;   /* char* */
  gboolean prefix;

  /* FILTER */
  FilterKind filter;
  char *source;
  char *folder;
  LbSearchTristate tristate;
  gint64 start;
  gint64 end;
  gboolean has_end;

  /* AND, OR */
  GPtrArray *children; /* Node* */
};

typedef struct
{
  GArray *lexemes;
  guint pos;
  GDateTime *now;      /* in tz */
  GTimeZone *tz;
} Parser;

static void
node_free (Node *node)
{
  if (node == NULL)
    return;
  g_clear_pointer (&node->tokens, g_ptr_array_unref);
  g_clear_pointer (&node->children, g_ptr_array_unref);
  g_free (node->source);
  g_free (node->folder);
  g_free (node);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Node, node_free)

static void
lexeme_clear (Lexeme *lexeme)
{
  g_free (lexeme->text);
  g_free (lexeme->source);
}

void
lb_search_query_free (LbSearchQuery *query)
{
  if (query == NULL)
    return;
  g_free (query->match);
  g_ptr_array_unref (query->folders);
  g_free (query);
}

/* unicode61's default token characters are the categories L*, N* and Co; combining
 * marks are kept with the letter before them, as remove_diacritics folds them away. */
static gboolean
is_token_char (gunichar c,
               gboolean in_token)
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
    case G_UNICODE_PRIVATE_USE:
      return TRUE;
    case G_UNICODE_SPACING_MARK:
    case G_UNICODE_ENCLOSING_MARK:
    case G_UNICODE_NON_SPACING_MARK:
      return in_token;
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_UNASSIGNED:
    case G_UNICODE_SURROGATE:
    case G_UNICODE_CONNECT_PUNCTUATION:
    case G_UNICODE_DASH_PUNCTUATION:
    case G_UNICODE_CLOSE_PUNCTUATION:
    case G_UNICODE_FINAL_PUNCTUATION:
    case G_UNICODE_INITIAL_PUNCTUATION:
    case G_UNICODE_OTHER_PUNCTUATION:
    case G_UNICODE_OPEN_PUNCTUATION:
    case G_UNICODE_CURRENCY_SYMBOL:
    case G_UNICODE_MODIFIER_SYMBOL:
    case G_UNICODE_MATH_SYMBOL:
    case G_UNICODE_OTHER_SYMBOL:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
    case G_UNICODE_SPACE_SEPARATOR:
    default:
      return FALSE;
    }
}

static GPtrArray *
split_tokens (const char *text)
{
  GPtrArray *tokens = g_ptr_array_new_with_free_func (g_free);
  const char *start = NULL;
  const char *p;

  for (p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gboolean token_char = is_token_char (g_utf8_get_char (p), start != NULL);

      if (token_char && start == NULL)
        start = p;
      else if (!token_char && start != NULL)
        {
          g_ptr_array_add (tokens, g_strndup (start, p - start));
          start = NULL;
        }
    }
  if (start != NULL)
    g_ptr_array_add (tokens, g_strndup (start, p - start));
  return tokens;
}

/* Lexing */

static gboolean
ends_word (gunichar c)
{
  return g_unichar_isspace (c) || c == '(' || c == ')' || c == '"';
}

/* From just after an opening quote to the closing one, or to the end of the text. */
static char *
read_quoted (const char **p)
{
  const char *start = *p;
  const char *close = strchr (start, '"');

  if (close == NULL)
    {
      *p = start + strlen (start);
      return g_strdup (start);
    }
  *p = close + 1;
  return g_strndup (start, close - start);
}

static const Field *
lookup_field (const char *word,
              gsize       key_len)
{
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    if (strlen (fields[i].name) == key_len &&
        g_ascii_strncasecmp (fields[i].name, word, key_len) == 0)
      return &fields[i];
  return NULL;
}

static void
push (GArray  *lexemes,
      LexKind  kind,
      char    *text)
{
  Lexeme lexeme = { kind, text, NULL, NULL, FALSE };

  g_array_append_val (lexemes, lexeme);
}

static GArray *
lex (const char *text)
{
  GArray *lexemes = g_array_new (FALSE, TRUE, sizeof (Lexeme));
  const char *p = text;

  g_array_set_clear_func (lexemes, (GDestroyNotify) lexeme_clear);
  while (*p != '\0')
    {
      gunichar c = g_utf8_get_char (p);
      const char *start;
      g_autofree char *word = NULL;
      const char *colon;
      const Field *field;

      if (g_unichar_isspace (c))
        {
          p = g_utf8_next_char (p);
          continue;
        }
      if (c == '(' || c == ')')
        {
          push (lexemes, c == '(' ? LEX_LPAREN : LEX_RPAREN, NULL);
          p++;
          continue;
        }
      if (c == '"')
        {
          p++;
          push (lexemes, LEX_PHRASE, read_quoted (&p));
          continue;
        }
      /* A leading "-" leaves out what follows it directly; "a-b" is one word. */
      if (c == '-' && p[1] != '\0' && !g_unichar_isspace (g_utf8_get_char (p + 1)))
        {
          push (lexemes, LEX_NOT, NULL);
          p++;
          continue;
        }

      start = p;
      while (*p != '\0' && !ends_word (g_utf8_get_char (p)))
        p = g_utf8_next_char (p);
      word = g_strndup (start, p - start);

      if (strcmp (word, "OR") == 0)
        push (lexemes, LEX_OR, NULL);
      else if (strcmp (word, "AND") == 0)
        push (lexemes, LEX_AND, NULL);
      else if (strcmp (word, "NOT") == 0)
        push (lexemes, LEX_NOT, NULL);
      else if ((colon = strchr (word, ':')) != NULL &&
               (field = lookup_field (word, colon - word)) != NULL)
        {
          Lexeme lexeme = { LEX_FIELD, NULL, NULL, field, FALSE };

          if (colon[1] == '\0' && *p == '"')
            {
              p++;
              lexeme.text = read_quoted (&p);
              lexeme.quoted = TRUE;
              lexeme.source = g_strdup_printf ("%s\"%s\"", word, lexeme.text);
            }
          else
            {
              lexeme.text = g_strdup (colon + 1);
              lexeme.source = g_strdup (word);
            }
          g_array_append_val (lexemes, lexeme);
        }
      else
        push (lexemes, LEX_WORD, g_steal_pointer (&word));
    }
  push (lexemes, LEX_END, NULL);
  return lexemes;
}

/* Dates */

static gboolean
midnight (GTimeZone *tz,
          GDate     *date,
          gint64    *out)
{
  g_autoptr(GDateTime) dt = NULL;

  if (!g_date_valid (date) || g_date_get_year (date) > 9999)
    return FALSE;
  dt = g_date_time_new (tz, g_date_get_year (date), g_date_get_month (date),
                        g_date_get_day (date), 0, 0, 0);
  if (dt == NULL)
    return FALSE;
  *out = g_date_time_to_unix (dt);
  return TRUE;
}

static gboolean
parse_number (const char *s,
              gsize       len,
              gsize       max_digits,
              guint      *out)
{
  guint n = 0;

  if (len == 0 || len > max_digits)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (s[i]))
        return FALSE;
      n = n * 10 + (s[i] - '0');
    }
  *out = n;
  return TRUE;
}

/* Nd, Nw, Nm, Ny: from that long ago until now. */
static gboolean
parse_relative (Parser     *parser,
                const char *value,
                gint64     *start)
{
  gsize len = strlen (value);
  g_autoptr(GDateTime) dt = NULL;
  guint n;

  if (len < 2 || strchr ("dwmy", g_ascii_tolower (value[len - 1])) == NULL ||
      !parse_number (value, len - 1, 6, &n))
    return FALSE;
  switch (g_ascii_tolower (value[len - 1]))
    {
    case 'd':
      dt = g_date_time_add_days (parser->now, -(int) n);
      break;
    case 'w':
      dt = g_date_time_add_weeks (parser->now, -(int) n);
      break;
    case 'm':
      dt = g_date_time_add_months (parser->now, -(int) n);
      break;
    default:
      dt = g_date_time_add_years (parser->now, -(int) n);
      break;
    }
  if (dt == NULL)
    return FALSE;
  *start = g_date_time_to_unix (dt);
  return TRUE;
}

/* YYYY, YYYY-MM, YYYY-MM-DD, with "-" or "/"; today, yesterday. */
static gboolean
parse_calendar (Parser     *parser,
                const char *value,
                gint64     *start,
                gint64     *end,
                gboolean   *has_end)
{
  guint parts[3] = { 0, 1, 1 };
  guint n_parts = 0;
  const char *p = value;
  GDate date;

  g_date_clear (&date, 1);
  if (g_ascii_strcasecmp (value, "today") == 0 || g_ascii_strcasecmp (value, "yesterday") == 0)
    {
      g_date_set_dmy (&date, g_date_time_get_day_of_month (parser->now),
                      g_date_time_get_month (parser->now), g_date_time_get_year (parser->now));
      if (g_ascii_tolower (value[0]) == 'y')
        g_date_subtract_days (&date, 1);
      n_parts = 3;
    }
  else
    {
      while (n_parts < 3)
        {
          gsize part_len = strcspn (p, "-/");

          if ((n_parts == 0 && part_len != 4) ||
              !parse_number (p, part_len, 2 + 2 * (n_parts == 0), &parts[n_parts]))
            return FALSE;
          n_parts++;
          p += part_len;
          if (*p == '\0')
            break;
          p++;
        }
      if (*p != '\0' || parts[0] == 0 || !g_date_valid_dmy (parts[2], parts[1], parts[0]))
        return FALSE;
      g_date_set_dmy (&date, parts[2], parts[1], parts[0]);
    }

  if (!midnight (parser->tz, &date, start))
    return FALSE;
  if (n_parts == 1)
    g_date_add_years (&date, 1);
  else if (n_parts == 2)
    g_date_add_months (&date, 1);
  else
    g_date_add_days (&date, 1);
  /* The day after 9999-12-31 has no GDateTime: the period stays open. */
  *has_end = midnight (parser->tz, &date, end);
  return TRUE;
}

/* The period a DATE names: [start, end), or from start on when !has_end. */
static gboolean
parse_date (Parser     *parser,
            const char *value,
            gint64     *start,
            gint64     *end,
            gboolean   *has_end,
            GError    **error)
{
  *has_end = FALSE;
  if (parse_relative (parser, value, start) ||
      parse_calendar (parser, value, start, end, has_end))
    return TRUE;
  g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_DATE,
               _("“%s” is not a date"), value);
  return FALSE;
}

/* Parsing into a tree */

static Node *parse_or (Parser *parser, guint depth, GError **error);

static Lexeme *
peek (Parser *parser)
{
  return &g_array_index (parser->lexemes, Lexeme, parser->pos);
}

static Node *
node_new (NodeKind kind)
{
  Node *node = g_new0 (Node, 1);

  node->kind = kind;
  if (kind == NODE_AND || kind == NODE_OR)
    node->children = g_ptr_array_new_with_free_func ((GDestroyNotify) node_free);
  return node;
}

static Node *
term_new (const char *text,
          const char *column,
          gboolean    prefix)
{
  Node *node = node_new (NODE_TERM);

  node->tokens = split_tokens (text);
  node->column = column;
  node->prefix = prefix;
  return node;
}

static Node *
filter_new (Parser  *parser,
            Lexeme  *lexeme,
            GError **error)
{
  g_autoptr(Node) node = node_new (NODE_FILTER);
  const char *value = lexeme->text;

  node->source = g_strdup (lexeme->source);
  switch (lexeme->field->kind)
    {
    case FIELD_IS:
      if (g_ascii_strcasecmp (value, "unread") == 0 || g_ascii_strcasecmp (value, "read") == 0)
        node->filter = FILTER_UNREAD;
      else if (g_ascii_strcasecmp (value, "flagged") == 0 ||
               g_ascii_strcasecmp (value, "starred") == 0 ||
               g_ascii_strcasecmp (value, "unflagged") == 0 ||
               g_ascii_strcasecmp (value, "unstarred") == 0)
        node->filter = FILTER_FLAGGED;
      else
        {
          g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_FILTER,
                       _("“%s” is not a filter; try is:unread, is:read, is:flagged or "
                         "is:unflagged"), lexeme->source);
          return NULL;
        }
      node->tristate = g_ascii_strcasecmp (value, "unread") == 0 ||
                       g_ascii_strcasecmp (value, "flagged") == 0 ||
                       g_ascii_strcasecmp (value, "starred") == 0 ? LB_SEARCH_TRISTATE_YES
                                                                  : LB_SEARCH_TRISTATE_NO;
      break;

    case FIELD_HAS:
      if (g_ascii_strcasecmp (value, "attachment") != 0 &&
          g_ascii_strcasecmp (value, "attachments") != 0)
        {
          g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_FILTER,
                       _("“%s” is not a filter; try has:attachment"), lexeme->source);
          return NULL;
        }
      node->filter = FILTER_ATTACHMENT;
      node->tristate = LB_SEARCH_TRISTATE_YES;
      break;

    case FIELD_FOLDER:
      node->filter = FILTER_FOLDER;
      node->folder = g_strdup (value);
      break;

    case FIELD_BEFORE:
    case FIELD_AFTER:
    case FIELD_DATE:
      node->filter = lexeme->field->kind == FIELD_BEFORE ? FILTER_BEFORE :
                     lexeme->field->kind == FIELD_AFTER ? FILTER_AFTER : FILTER_DATE;
      if (!parse_date (parser, value, &node->start, &node->end, &node->has_end, error))
        return NULL;
      break;

    case FIELD_COLUMN:
    default:
      g_assert_not_reached ();
    }
  return g_steal_pointer (&node);
}

/* Returns NULL with no error for something that means nothing (from: alone). */
static Node *
parse_primary (Parser  *parser,
               guint    depth,
               GError **error)
{
  Lexeme *lexeme = peek (parser);
  g_autoptr(Node) group = NULL;

  parser->pos++;
  switch (lexeme->kind)
    {
    case LEX_LPAREN:
      if (depth >= LB_SEARCH_QUERY_MAX_DEPTH)
        {
          g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_TOO_LONG,
                       _("The search has too many parentheses inside each other (at most %d)"),
                       LB_SEARCH_QUERY_MAX_DEPTH);
          return NULL;
        }
      group = parse_or (parser, depth + 1, error);
      if (group == NULL)
        return NULL;
      if (peek (parser)->kind != LEX_RPAREN)
        {
          g_set_error_literal (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_PARENTHESES,
                               _("A “(” in the search is not closed"));
          return NULL;
        }
      parser->pos++;
      return g_steal_pointer (&group);

    case LEX_WORD:
      return term_new (lexeme->text, NULL, TRUE);

    case LEX_PHRASE:
      return term_new (lexeme->text, NULL, FALSE);

    case LEX_FIELD:
      if (lexeme->text[0] == '\0')
        return NULL;
      if (lexeme->field->kind == FIELD_COLUMN)
        return term_new (lexeme->text, lexeme->field->column, !lexeme->quoted);
      return filter_new (parser, lexeme, error);

    case LEX_RPAREN:
    case LEX_OR:
    case LEX_AND:
    case LEX_NOT:
    case LEX_END:
    default:
      g_assert_not_reached ();
    }
}

static gboolean
ends_operand (LexKind kind)
{
  return kind == LEX_END || kind == LEX_RPAREN || kind == LEX_OR || kind == LEX_AND;
}

static Node *
parse_and (Parser  *parser,
           guint    depth,
           GError **error)
{
  g_autoptr(Node) node = node_new (NODE_AND);

  while (peek (parser)->kind != LEX_END && peek (parser)->kind != LEX_RPAREN &&
         peek (parser)->kind != LEX_OR)
    {
      gboolean negated = FALSE;
      g_autoptr(GError) local_error = NULL;
      Node *child;

      if (peek (parser)->kind == LEX_AND)
        {
          parser->pos++;
          continue;
        }
      while (peek (parser)->kind == LEX_NOT)
        {
          negated = !negated;
          parser->pos++;
        }
      /* A NOT with nothing after it, as while typing "a -". */
      if (ends_operand (peek (parser)->kind))
        continue;
      child = parse_primary (parser, depth, &local_error);
      if (local_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      if (child == NULL)
        continue;
      child->negated ^= negated;
      g_ptr_array_add (node->children, child);
    }
  return g_steal_pointer (&node);
}

static Node *
parse_or (Parser  *parser,
          guint    depth,
          GError **error)
{
  g_autoptr(Node) node = node_new (NODE_OR);

  for (;;)
    {
      Node *child = parse_and (parser, depth, error);

      if (child == NULL)
        return NULL;
      /* A dangling OR ("a OR", "OR b", "a OR OR b") is ignored. */
      if (child->children->len > 0)
        g_ptr_array_add (node->children, child);
      else
        node_free (child);
      if (peek (parser)->kind != LEX_OR)
        break;
      parser->pos++;
    }
  return g_steal_pointer (&node);
}

/* Filters: they become columns of LbSearchQuery, so they may only be reached from the
 * top through ANDs, never under OR or inside a left-out group. */

typedef enum
{
  PLACE_TOP,
  PLACE_OR,
  PLACE_NOT,
} Place;

static gboolean
set_tristate (int         *field,
              int          value,
              const char  *source,
              GError     **error)
{
  if (*field != LB_SEARCH_TRISTATE_ANY && *field != value)
    {
      g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_FILTER,
                   _("“%s” contradicts another filter in the search"), source);
      return FALSE;
    }
  *field = value;
  return TRUE;
}

static void
narrow_after (LbSearchQuery *query,
              gint64         start)
{
  if (query->after == 0 || start > query->after)
    query->after = start;
}

static void
narrow_before (LbSearchQuery *query,
               gint64         start)
{
  /* 0 means "none"; a period starting exactly at the epoch still excludes everything
   * after it. */
  if (start == 0)
    start = -1;
  if (query->before == 0 || start < query->before)
    query->before = start;
}

static gboolean
apply_filter (LbSearchQuery  *query,
              Node           *node,
              GError        **error)
{
  int flip = node->tristate == LB_SEARCH_TRISTATE_YES ? LB_SEARCH_TRISTATE_NO
                                                      : LB_SEARCH_TRISTATE_YES;
  int value = node->negated ? flip : (int) node->tristate;

  switch (node->filter)
    {
    case FILTER_UNREAD:
      return set_tristate (&query->unread, value, node->source, error);
    case FILTER_FLAGGED:
      return set_tristate (&query->flagged, value, node->source, error);
    case FILTER_ATTACHMENT:
      return set_tristate (&query->has_attachment, value, node->source, error);

    case FILTER_FOLDER:
      if (node->negated)
        {
          g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_FILTER,
                       _("“%s” cannot be left out; search in the folders you want instead"),
                       node->source);
          return FALSE;
        }
      for (guint i = 0; i < query->folders->len; i++)
        {
          g_autofree char *a = g_utf8_casefold (g_ptr_array_index (query->folders, i), -1);
          g_autofree char *b = g_utf8_casefold (node->folder, -1);

          if (strcmp (a, b) == 0)
            return TRUE;
        }
      g_ptr_array_add (query->folders, g_strdup (node->folder));
      return TRUE;

    /* -before:X is after:X and the other way round: both split time at the start of X. */
    case FILTER_BEFORE:
    case FILTER_AFTER:
      if ((node->filter == FILTER_AFTER) != node->negated)
        narrow_after (query, node->start);
      else
        narrow_before (query, node->start);
      return TRUE;

    case FILTER_DATE:
      if (node->negated)
        {
          g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_FILTER,
                       _("“%s” cannot be left out; use before: or after: instead"),
                       node->source);
          return FALSE;
        }
      narrow_after (query, node->start);
      if (node->has_end)
        narrow_before (query, node->end);
      return TRUE;

    default:
      g_assert_not_reached ();
    }
}

static gboolean
apply_filters (LbSearchQuery  *query,
               Node           *node,
               Place           place,
               GError        **error)
{
  switch (node->kind)
    {
    case NODE_TERM:
      return TRUE;

    case NODE_FILTER:
      if (place == PLACE_OR)
        {
          g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_FILTER,
                       _("“%s” cannot be one of the choices of OR"), node->source);
          return FALSE;
        }
      if (place == PLACE_NOT)
        {
          g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_FILTER,
                       _("“%s” cannot be left out as part of a group"), node->source);
          return FALSE;
        }
      return apply_filter (query, node, error);

    case NODE_AND:
    case NODE_OR:
      if (place == PLACE_TOP && node->negated)
        place = PLACE_NOT;
      else if (place == PLACE_TOP && node->kind == NODE_OR && node->children->len > 1)
        {
          gboolean folders_only = TRUE;

          /* folder:a OR folder:b says what folder:a folder:b says. */
          for (guint i = 0; i < node->children->len && folders_only; i++)
            {
              Node *child = g_ptr_array_index (node->children, i);

              while (child->kind != NODE_TERM && child->kind != NODE_FILTER &&
                     child->children->len == 1 && !child->negated)
                child = g_ptr_array_index (child->children, 0);
              folders_only = child->kind == NODE_FILTER && child->filter == FILTER_FOLDER;
            }
          if (!folders_only)
            place = PLACE_OR;
        }
      for (guint i = 0; i < node->children->len; i++)
        if (!apply_filters (query, g_ptr_array_index (node->children, i), place, error))
          return FALSE;
      return TRUE;

    default:
      g_assert_not_reached ();
    }
}

/* Writing FTS5. Every node becomes a conjunction: positive expressions ANDed, then each
 * negative one left out with NOT, which FTS5 only has as a binary operator ("a NOT b"),
 * so a conjunction is written only when it has something positive. */

typedef struct
{
  char *text;
  gboolean simple;     /* a single phrase, needs no parentheses */
} Expr;

static void
expr_free (Expr *expr)
{
  g_free (expr->text);
  g_free (expr);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Expr, expr_free)

static Expr *
expr_new (char     *text,
          gboolean  simple)
{
  Expr *expr = g_new (Expr, 1);

  expr->text = text;
  expr->simple = simple;
  return expr;
}

typedef struct
{
  GPtrArray *positive; /* Expr* */
  GPtrArray *negative; /* Expr* */
} Conjunction;

static void
conjunction_init (Conjunction *conj)
{
  conj->positive = g_ptr_array_new_with_free_func ((GDestroyNotify) expr_free);
  conj->negative = g_ptr_array_new_with_free_func ((GDestroyNotify) expr_free);
}

static void
conjunction_clear (Conjunction *conj)
{
  g_clear_pointer (&conj->positive, g_ptr_array_unref);
  g_clear_pointer (&conj->negative, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Conjunction, conjunction_clear)

static void
append_joined (GString    *out,
               GPtrArray  *exprs,
               const char *op)
{
  for (guint i = 0; i < exprs->len; i++)
    {
      Expr *expr = g_ptr_array_index (exprs, i);

      if (i > 0)
        g_string_append (out, op);
      if (expr->simple || exprs->len == 1)
        g_string_append (out, expr->text);
      else
        g_string_append_printf (out, "(%s)", expr->text);
    }
}

static Expr *
render (Conjunction *conj)
{
  GString *out = g_string_new (NULL);
  gboolean simple = conj->positive->len == 1 && conj->negative->len == 0 &&
                    ((Expr *) g_ptr_array_index (conj->positive, 0))->simple;

  g_assert (conj->positive->len > 0);
  if (conj->negative->len == 0)
    {
      append_joined (out, conj->positive, " AND ");
      return expr_new (g_string_free (out, FALSE), simple);
    }
  if (conj->positive->len == 1 && ((Expr *) g_ptr_array_index (conj->positive, 0))->simple)
    append_joined (out, conj->positive, " AND ");
  else
    {
      g_string_append_c (out, '(');
      append_joined (out, conj->positive, " AND ");
      g_string_append_c (out, ')');
    }
  g_string_append (out, " NOT ");
  if (conj->negative->len == 1 && ((Expr *) g_ptr_array_index (conj->negative, 0))->simple)
    append_joined (out, conj->negative, " OR ");
  else
    {
      g_string_append_c (out, '(');
      append_joined (out, conj->negative, " OR ");
      g_string_append_c (out, ')');
    }
  return expr_new (g_string_free (out, FALSE), FALSE);
}

static void
add_expr (Conjunction *conj,
          Expr        *expr,
          gboolean     negated)
{
  g_ptr_array_add (negated ? conj->negative : conj->positive, expr);
}

static void
move_all (GPtrArray *to,
          GPtrArray *from)
{
  for (guint i = 0; i < from->len; i++)
    g_ptr_array_add (to, from->pdata[i]);
  g_free (g_ptr_array_steal (from, NULL));
}

static void
only_excluded (GError **error)
{
  g_set_error_literal (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_ONLY_EXCLUDED,
                       _("Search for something as well as what to leave out"));
}

static char *
term_text (Node *node)
{
  GString *out = g_string_new (NULL);

  if (node->column != NULL)
    g_string_append_printf (out, "%s : ", node->column);
  g_string_append_c (out, '"');
  for (guint i = 0; i < node->tokens->len; i++)
    {
      const char *token = g_ptr_array_index (node->tokens, i);

      if (i > 0)
        g_string_append_c (out, ' ');
      /* Tokens hold letters and digits only; a quote would still be doubled. */
      for (const char *p = token; *p != '\0'; p++)
        {
          if (*p == '"')
            g_string_append_c (out, '"');
          g_string_append_c (out, *p);
        }
    }
  g_string_append_c (out, '"');
  if (node->prefix && !node->negated)
    g_string_append_c (out, '*');
  return g_string_free (out, FALSE);
}

/* Adds what @node says to @conj. */
static gboolean
compile (Node         *node,
         Conjunction  *conj,
         GError      **error)
{
  g_auto(Conjunction) inner = { NULL, NULL };
  g_autoptr(GPtrArray) choices = NULL;

  switch (node->kind)
    {
    case NODE_FILTER:
      return TRUE;

    case NODE_TERM:
      if (node->tokens->len > 0)
        add_expr (conj, expr_new (term_text (node), TRUE), node->negated);
      return TRUE;

    case NODE_OR:
      if (node->children->len > 1)
        break;
      G_GNUC_FALLTHROUGH;
    case NODE_AND:
      conjunction_init (&inner);
      for (guint i = 0; i < node->children->len; i++)
        if (!compile (g_ptr_array_index (node->children, i), &inner, error))
          return FALSE;
      if (!node->negated)
        {
          move_all (conj->positive, inner.positive);
          move_all (conj->negative, inner.negative);
          return TRUE;
        }
      if (inner.positive->len == 0 && inner.negative->len > 0)
        {
          only_excluded (error);
          return FALSE;
        }
      if (inner.positive->len > 0)
        add_expr (conj, render (&inner), TRUE);
      return TRUE;

    default:
      g_assert_not_reached ();
    }

  /* OR of two or more choices */
  choices = g_ptr_array_new_with_free_func ((GDestroyNotify) expr_free);
  for (guint i = 0; i < node->children->len; i++)
    {
      g_auto(Conjunction) choice = { NULL, NULL };

      conjunction_init (&choice);
      if (!compile (g_ptr_array_index (node->children, i), &choice, error))
        return FALSE;
      if (choice.positive->len == 0 && choice.negative->len > 0)
        {
          only_excluded (error);
          return FALSE;
        }
      if (choice.positive->len > 0)
        g_ptr_array_add (choices, render (&choice));
    }
  if (choices->len == 0)
    return TRUE;
  if (choices->len == 1)
    add_expr (conj, g_ptr_array_steal_index (choices, 0), node->negated);
  else
    {
      GString *out = g_string_new (NULL);

      append_joined (out, choices, " OR ");
      add_expr (conj, expr_new (g_string_free (out, FALSE), FALSE), node->negated);
    }
  return TRUE;
}

/**
 * lb_search_query_parse:
 * @text: what the user typed
 * @now: (nullable): the time relative dates count from; %NULL for now
 * @tz: (nullable): the zone whose midnights bound days; %NULL for the local one
 * @error: an %LB_SEARCH_QUERY_ERROR, with a message for the user
 *
 * Reads a search (the language is described at the top of this file). An empty query
 * gives no match expression and no filters: everything.
 *
 * Returns: (transfer full): the query, or %NULL with @error set
 */
LbSearchQuery *
lb_search_query_parse (const char  *text,
                       GDateTime   *now,
                       GTimeZone   *tz,
                       GError     **error)
{
  g_autoptr(LbSearchQuery) query = NULL;
  g_autoptr(GTimeZone) local = NULL;
  g_autoptr(Node) root = NULL;
  g_auto(Conjunction) conj = { NULL, NULL };
  Parser parser = { NULL, 0, NULL, NULL };
  g_autoptr(Expr) match = NULL;
  gsize len;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  len = strlen (text);
  if (len > LB_SEARCH_QUERY_MAX_LENGTH)
    {
      g_set_error (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_TOO_LONG,
                   _("The search is too long (at most %d bytes)"), LB_SEARCH_QUERY_MAX_LENGTH);
      return NULL;
    }
  if (!g_utf8_validate (text, len, NULL))
    {
      g_set_error_literal (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_INVALID,
                           _("The search is not valid text (UTF-8)"));
      return NULL;
    }

  if (tz == NULL)
    tz = local = g_time_zone_new_local ();
  parser.tz = tz;
  parser.now = now != NULL ? g_date_time_to_timezone (now, tz) : g_date_time_new_now (tz);
  parser.lexemes = lex (text);
  root = parse_or (&parser, 0, error);
  if (root != NULL && peek (&parser)->kind == LEX_RPAREN)
    {
      g_set_error_literal (error, LB_SEARCH_QUERY_ERROR, LB_SEARCH_QUERY_ERROR_PARENTHESES,
                           _("A “)” in the search has no matching “(”"));
      g_clear_pointer (&root, node_free);
    }
  g_date_time_unref (parser.now);
  g_array_unref (parser.lexemes);
  if (root == NULL)
    return NULL;

  query = g_new0 (LbSearchQuery, 1);
  query->folders = g_ptr_array_new_with_free_func (g_free);
  if (!apply_filters (query, root, PLACE_TOP, error))
    return NULL;

  conjunction_init (&conj);
  if (!compile (root, &conj, error))
    return NULL;
  if (conj.positive->len == 0 && conj.negative->len > 0)
    {
      only_excluded (error);
      return NULL;
    }
  if (conj.positive->len > 0)
    {
      match = render (&conj);
      query->match = g_steal_pointer (&match->text);
    }
  return g_steal_pointer (&query);
}
