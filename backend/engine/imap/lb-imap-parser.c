/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-imap"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-imap-parser.h"

/*
 * The IMAP response parser: pure (bytes in, responses out, no I/O) and incremental (any
 * split of the input gives the same responses).
 *
 * It works in two steps. The framer cuts the byte stream into responses: a response is a
 * line of text that may carry literals ("{N}" at the end of a line announces N bytes that
 * belong to the same response, RFC 9051 §4.3), so one response is a sequence of text
 * segments and literal segments. Literals of FETCH responses above a threshold go to the
 * caller's sink as they arrive, so a 50 MB message never sits in memory. The syntax step
 * then reads one complete response, with a cursor over its segments, into an
 * LbImapResponse. Every allocation is bounded by the limits; every failure is a GError.
 */

G_DEFINE_QUARK (lb-imap-parse-error-quark, lb_imap_parse_error)

typedef struct
{
  gboolean literal;
  GByteArray *bytes;   /* text, or an in-memory literal; NULL when streamed */
  guint64 size;        /* literal size */
  gboolean streamed;
  gboolean binary;
} Segment;

typedef enum
{
  FRAME_TEXT,
  FRAME_LITERAL,
} FrameState;

struct _LbImapParser
{
  LbImapParserLimits limits;
  const LbImapLiteralSink *sink;
  gpointer sink_data;

  GPtrArray *segments;   /* Segment* of the response being framed */
  GByteArray *line;      /* the text segment being read */
  gsize text_total;
  FrameState state;
  guint64 literal_left;
  Segment *literal;
  gpointer sink_handle;

  GQueue responses;
  GError *failed;        /* once set, the parser refuses all input */
};

static void
segment_free (gpointer data)
{
  Segment *segment = data;

  if (segment->bytes != NULL)
    g_byte_array_unref (segment->bytes);
  g_free (segment);
}

void
lb_imap_parser_default_limits (LbImapParserLimits *limits)
{
  limits->max_line = 4 * 1024 * 1024;
  limits->max_literal = 64 * 1024 * 1024;
  limits->stream_threshold = 256 * 1024;
  limits->max_depth = 64;
}

LbImapParser *
lb_imap_parser_new (const LbImapParserLimits *limits)
{
  LbImapParser *parser = g_new0 (LbImapParser, 1);

  if (limits != NULL)
    parser->limits = *limits;
  else
    lb_imap_parser_default_limits (&parser->limits);

  parser->segments = g_ptr_array_new_with_free_func (segment_free);
  parser->line = g_byte_array_new ();
  g_queue_init (&parser->responses);
  return parser;
}

static void
abort_sink (LbImapParser *parser)
{
  if (parser->sink_handle != NULL && parser->sink != NULL && parser->sink->abort != NULL)
    parser->sink->abort (parser->sink_handle, parser->sink_data);
  parser->sink_handle = NULL;
}

void
lb_imap_parser_free (LbImapParser *parser)
{
  if (parser == NULL)
    return;

  abort_sink (parser);
  g_ptr_array_unref (parser->segments);
  g_byte_array_unref (parser->line);
  g_queue_clear_full (&parser->responses, (GDestroyNotify) lb_imap_response_free);
  g_clear_error (&parser->failed);
  g_free (parser);
}

void
lb_imap_parser_set_sink (LbImapParser            *parser,
                         const LbImapLiteralSink *sink,
                         gpointer                 user_data)
{
  parser->sink = sink;
  parser->sink_data = user_data;
}

/**
 * lb_imap_parser_is_idle:
 *
 * Returns: whether the parser sits between responses (nothing half-read)
 */
gboolean
lb_imap_parser_is_idle (LbImapParser *parser)
{
  return parser->failed == NULL && parser->segments->len == 0 && parser->line->len == 0 &&
         parser->state == FRAME_TEXT;
}

LbImapResponse *
lb_imap_parser_pop (LbImapParser *parser)
{
  return g_queue_pop_head (&parser->responses);
}

/* A printable excerpt of response text for error messages: never more than 80 bytes,
 * control bytes escaped. */
static char *
excerpt (const guint8 *data,
         gsize         len)
{
  GString *out = g_string_new (NULL);

  for (gsize i = 0; i < len && out->len < 80; i++)
    {
      if (data[i] >= 0x20 && data[i] < 0x7f)
        g_string_append_c (out, (char) data[i]);
      else
        g_string_append_printf (out, "\\x%02x", data[i]);
    }
  if (len > 80)
    g_string_append (out, "…");
  return g_string_free (out, FALSE);
}

static gboolean
fail (LbImapParser *parser,
      GError       *error,
      GError      **out)
{
  abort_sink (parser);
  parser->failed = error;
  g_propagate_error (out, g_error_copy (error));
  return FALSE;
}

/* ---------------------------------------------------------------------------------- */
/* Syntax: a cursor over one complete response                                          */

typedef struct
{
  GPtrArray *segs;
  guint seg;
  gsize pos;
  guint depth;
  const LbImapParserLimits *limits;
  GError *error;
} Cursor;

static const guint8 *
cur_text (Cursor *c,
          gsize  *len)
{
  Segment *s = g_ptr_array_index (c->segs, c->seg);

  *len = s->bytes->len;
  /* An empty GByteArray may have no buffer at all. */
  return s->bytes->data != NULL ? s->bytes->data : (const guint8 *) "";
}

static int
peek (Cursor *c)
{
  gsize len;
  const guint8 *text = cur_text (c, &len);

  return c->pos < len ? text[c->pos] : -1;
}

static gboolean
at_end (Cursor *c)
{
  return peek (c) == -1 && c->seg + 1 >= c->segs->len;
}

G_GNUC_PRINTF (2, 3)
static gboolean
syntax_error (Cursor     *c,
              const char *format,
              ...)
{
  g_autofree char *what = NULL;
  g_autofree char *where = NULL;
  Segment *first = g_ptr_array_index (c->segs, 0);
  va_list ap;

  if (c->error != NULL)
    return FALSE;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  where = excerpt (first->bytes->data, first->bytes->len);
  c->error = g_error_new (LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_SYNTAX,
                          _("The server sent a malformed response (%s at byte %zu of “%s”)"),
                          what, c->pos, where);
  return FALSE;
}

static gboolean
expect (Cursor *c,
        char    ch)
{
  if (peek (c) != (guchar) ch)
    return syntax_error (c, "expected ‘%c’", ch);
  c->pos++;
  return TRUE;
}

static gboolean
skip_sp (Cursor *c)
{
  return expect (c, ' ');
}

/* Lenient about servers that put two spaces where the grammar wants one. */
static void
skip_spaces (Cursor *c)
{
  while (peek (c) == ' ')
    c->pos++;
}

static gboolean
is_atom_char (int ch,
              gboolean allow_bracket)
{
  if (ch < 0x21 || ch == 0x7f)
    return FALSE;
  switch (ch)
    {
    case '(':
    case ')':
    case '{':
    case '"':
      return FALSE;
    case ']':
      return allow_bracket;
    default:
      return TRUE;
    }
}

/* An atom, also a flag ("\Seen", "\*") or a tag. With @allow_bracket, "]" belongs to it. */
static char *
read_atom (Cursor   *c,
           gboolean  allow_bracket)
{
  gsize len;
  const guint8 *text = cur_text (c, &len);
  gsize start = c->pos;

  while (c->pos < len && is_atom_char (text[c->pos], allow_bracket))
    c->pos++;
  if (c->pos == start)
    {
      syntax_error (c, "expected an atom");
      return NULL;
    }
  return g_strndup ((const char *) text + start, c->pos - start);
}

static gboolean
read_number (Cursor  *c,
             guint64 *out)
{
  gsize len;
  const guint8 *text = cur_text (c, &len);
  gsize start = c->pos;
  guint64 n = 0;

  while (c->pos < len && g_ascii_isdigit (text[c->pos]))
    {
      guint digit = text[c->pos] - '0';

      /* number64 (RFC 9051 §9): at most 2^63 - 1. */
      if (n > (G_MAXINT64 - digit) / 10)
        return syntax_error (c, "number too large");
      n = n * 10 + digit;
      c->pos++;
    }
  if (c->pos == start)
    return syntax_error (c, "expected a number");
  *out = n;
  return TRUE;
}

static gboolean
read_number32 (Cursor  *c,
               guint32 *out)
{
  guint64 n;

  if (!read_number (c, &n))
    return FALSE;
  if (n > G_MAXUINT32)
    return syntax_error (c, "number larger than 32 bits");
  *out = (guint32) n;
  return TRUE;
}

static void
ascii_lower (char *s)
{
  for (; *s != '\0'; s++)
    *s = g_ascii_tolower (*s);
}

static LbImapValue *
value_new (LbImapValueKind kind)
{
  LbImapValue *value = g_new0 (LbImapValue, 1);

  value->kind = kind;
  return value;
}

void
lb_imap_value_free (LbImapValue *value)
{
  if (value == NULL)
    return;
  g_free (value->str);
  if (value->list != NULL)
    g_ptr_array_unref (value->list);
  g_free (value);
}

LbImapValue *
lb_imap_value_list_get (const LbImapValue *list,
                        guint              index)
{
  if (list == NULL || list->kind != LB_IMAP_VALUE_LIST || index >= list->list->len)
    return NULL;
  return g_ptr_array_index (list->list, index);
}

/**
 * lb_imap_value_nstring:
 *
 * Returns: (nullable): the text of a string or atom value, %NULL for NIL or anything else
 */
const char *
lb_imap_value_nstring (const LbImapValue *value)
{
  if (value == NULL)
    return NULL;
  if (value->kind == LB_IMAP_VALUE_STRING || value->kind == LB_IMAP_VALUE_ATOM)
    return value->str;
  return NULL;
}

static char *read_quoted_text (Cursor *c, gsize *out_len);

static LbImapValue *
read_quoted (Cursor *c)
{
  gsize len = 0;
  char *str = read_quoted_text (c, &len);
  LbImapValue *value;

  if (str == NULL)
    return NULL;
  value = value_new (LB_IMAP_VALUE_STRING);
  value->str = str;
  value->len = len;
  return value;
}

/* "{N}" or "~{N}" at the end of a text segment, followed by the literal segment. */
static LbImapValue *
read_literal (Cursor *c)
{
  gsize len;
  const guint8 *text = cur_text (c, &len);
  Segment *literal;
  LbImapValue *value;

  if (peek (c) == '~')
    c->pos++;
  if (!expect (c, '{'))
    return NULL;
  /* The framer checked the announcement; skip to the segment's end. */
  while (c->pos < len && text[c->pos] != '}')
    c->pos++;
  if (c->pos + 1 != len || c->seg + 1 >= c->segs->len)
    {
      syntax_error (c, "a literal announcement that does not end the line");
      return NULL;
    }

  literal = g_ptr_array_index (c->segs, c->seg + 1);
  g_assert (literal->literal);

  if (literal->streamed)
    {
      value = value_new (LB_IMAP_VALUE_STREAMED);
      value->number = literal->size;
    }
  else
    {
      value = value_new (LB_IMAP_VALUE_STRING);
      value->len = literal->bytes->len;
      value->str = g_malloc (value->len + 1);
      if (value->len > 0)
        memcpy (value->str, literal->bytes->data, value->len);
      value->str[value->len] = '\0';
    }
  value->literal = TRUE;

  /* Continue with the text after the literal. */
  c->seg += 2;
  c->pos = 0;
  return value;
}

static LbImapValue *read_value (Cursor *c);

static LbImapValue *
read_list (Cursor *c)
{
  LbImapValue *list;

  if (!expect (c, '('))
    return NULL;
  if (++c->depth > c->limits->max_depth)
    {
      if (c->error == NULL)
        c->error = g_error_new (LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_TOO_LONG,
                                _("The server sent a response nested more than %u deep"),
                                c->limits->max_depth);
      return NULL;
    }

  list = value_new (LB_IMAP_VALUE_LIST);
  list->list = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_imap_value_free);
  skip_spaces (c);
  while (peek (c) != ')')
    {
      LbImapValue *item = read_value (c);

      if (item == NULL)
        {
          lb_imap_value_free (list);
          return NULL;
        }
      g_ptr_array_add (list->list, item);
      if (peek (c) != ')' && !skip_sp (c))
        {
          lb_imap_value_free (list);
          return NULL;
        }
      skip_spaces (c);
    }
  c->pos++;
  c->depth--;
  return list;
}

/* Any value: list, string, literal, NIL, number or atom. An atom may carry a bracketed
 * section with spaces, such as BODY[HEADER.FIELDS (DATE FROM)]. */
static LbImapValue *
read_value (Cursor *c)
{
  int ch = peek (c);
  gsize len;
  const guint8 *text;
  gsize start;
  LbImapValue *value;
  gboolean digits = TRUE;

  switch (ch)
    {
    case '(':
      return read_list (c);
    case '"':
      return read_quoted (c);
    case '{':
    case '~':
      return read_literal (c);
    case -1:
      syntax_error (c, "unexpected end of response");
      return NULL;
    default:
      break;
    }

  text = cur_text (c, &len);
  start = c->pos;
  while (c->pos < len && is_atom_char (text[c->pos], FALSE))
    {
      if (text[c->pos] == '[')
        {
          /* A section: up to the matching "]", parentheses and spaces allowed. */
          while (c->pos < len && text[c->pos] != ']')
            c->pos++;
          if (c->pos >= len)
            {
              syntax_error (c, "unterminated ‘[’");
              return NULL;
            }
          digits = FALSE;
        }
      else if (!g_ascii_isdigit (text[c->pos]))
        digits = FALSE;
      c->pos++;
    }
  if (c->pos == start)
    {
      syntax_error (c, "unexpected ‘%c’", ch);
      return NULL;
    }

  if (digits && c->pos - start <= 18)
    {
      value = value_new (LB_IMAP_VALUE_NUMBER);
      value->number = g_ascii_strtoull ((const char *) text + start, NULL, 10);
      return value;
    }
  if (c->pos - start == 3 && g_ascii_strncasecmp ((const char *) text + start, "NIL", 3) == 0)
    return value_new (LB_IMAP_VALUE_NIL);

  value = value_new (LB_IMAP_VALUE_ATOM);
  value->len = c->pos - start;
  value->str = g_strndup ((const char *) text + start, value->len);
  return value;
}

/* A quoted string straight into one allocation of its exact size: the hot path of
 * ENVELOPE and BODYSTRUCTURE, where a value wrapper would double the allocations. */
static char *
read_quoted_text (Cursor *c,
                  gsize  *out_len)
{
  gsize len;
  const guint8 *text = cur_text (c, &len);
  gsize i = c->pos + 1;
  gsize n = 0;
  char *out, *o;

  for (; i < len && text[i] != '"'; i++, n++)
    if (text[i] == '\\')
      {
        /* RFC 9051 §4.3: only \" and \\ are escapes. */
        if (i + 1 >= len || (text[i + 1] != '"' && text[i + 1] != '\\'))
          {
            c->pos = i;
            syntax_error (c, "invalid escape in a quoted string");
            return NULL;
          }
        i++;
      }
  if (i >= len)
    {
      syntax_error (c, "unterminated quoted string");
      return NULL;
    }

  o = out = g_malloc (n + 1);
  for (gsize j = c->pos + 1; j < i; j++)
    {
      if (text[j] == '\\')
        j++;
      *o++ = (char) text[j];
    }
  *o = '\0';
  c->pos = i + 1;
  if (out_len != NULL)
    *out_len = n;
  return out;
}

/* string / NIL, as text (NUL bytes of a literal end it). */
static gboolean
read_nstring (Cursor  *c,
              char   **out)
{
  g_autoptr(LbImapValue) value = NULL;
  gsize len;
  const guint8 *text;

  if (peek (c) == '"')
    return (*out = read_quoted_text (c, NULL)) != NULL;

  text = cur_text (c, &len);
  if (c->pos + 3 <= len && g_ascii_strncasecmp ((const char *) text + c->pos, "NIL", 3) == 0 &&
      (c->pos + 3 == len || !is_atom_char (text[c->pos + 3], TRUE)))
    {
      c->pos += 3;
      *out = NULL;
      return TRUE;
    }

  value = read_value (c);
  if (value == NULL)
    return FALSE;
  switch (value->kind)
    {
    case LB_IMAP_VALUE_NIL:
      *out = NULL;
      return TRUE;
    case LB_IMAP_VALUE_STRING:
      *out = g_steal_pointer (&value->str);
      return TRUE;
    case LB_IMAP_VALUE_ATOM:
    case LB_IMAP_VALUE_NUMBER:
    case LB_IMAP_VALUE_LIST:
    case LB_IMAP_VALUE_STREAMED:
    default:
      return syntax_error (c, "expected a string or NIL");
    }
}

/* astring: atom or string; also a number-looking atom, as mailbox names may be. */
static gboolean
read_astring (Cursor  *c,
              char   **out,
              gsize   *out_len)
{
  g_autoptr(LbImapValue) value = NULL;
  gsize len;
  const guint8 *text;
  gsize start;

  if (peek (c) == '"' || peek (c) == '{' || peek (c) == '~')
    {
      value = read_value (c);
      if (value == NULL)
        return FALSE;
      if (value->kind != LB_IMAP_VALUE_STRING)
        return syntax_error (c, "expected a string");
      if (out_len != NULL)
        *out_len = value->len;
      *out = g_steal_pointer (&value->str);
      return TRUE;
    }

  /* ASTRING-CHAR includes "]" (RFC 9051 §9, resp-specials). */
  text = cur_text (c, &len);
  start = c->pos;
  while (c->pos < len && is_atom_char (text[c->pos], TRUE))
    c->pos++;
  if (c->pos == start)
    return syntax_error (c, "expected an atom or string");
  if (out_len != NULL)
    *out_len = c->pos - start;
  *out = g_strndup ((const char *) text + start, c->pos - start);
  return TRUE;
}

static gboolean
read_string_value (Cursor  *c,
                   char   **out)
{
  if (!read_nstring (c, out))
    return FALSE;
  if (*out == NULL)
    return syntax_error (c, "expected a string, not NIL");
  return TRUE;
}

/* The rest of the line as text, for resp-text. */
static char *
read_rest (Cursor *c)
{
  gsize len;
  const guint8 *text = cur_text (c, &len);
  char *rest;

  rest = g_strndup ((const char *) text + c->pos, len - c->pos);
  c->pos = len;
  return rest;
}

static GPtrArray *
read_flag_list (Cursor *c)
{
  g_autoptr(GPtrArray) flags = g_ptr_array_new_with_free_func (g_free);

  if (!expect (c, '('))
    return NULL;
  skip_spaces (c);
  while (peek (c) != ')')
    {
      char *flag = read_atom (c, FALSE);

      if (flag == NULL)
        return NULL;
      g_ptr_array_add (flags, flag);
      skip_spaces (c);
    }
  c->pos++;
  return g_steal_pointer (&flags);
}

LbImapSet *
lb_imap_set_new (void)
{
  LbImapSet *set = g_new0 (LbImapSet, 1);

  set->ranges = g_array_new (FALSE, FALSE, sizeof (LbImapRange));
  return set;
}

void
lb_imap_set_free (LbImapSet *set)
{
  if (set == NULL)
    return;
  g_array_unref (set->ranges);
  g_free (set);
}

guint64
lb_imap_set_count (const LbImapSet *set)
{
  guint64 n = 0;

  for (guint i = 0; i < set->ranges->len; i++)
    {
      LbImapRange *r = &g_array_index (set->ranges, LbImapRange, i);

      n += (guint64) MAX (r->first, r->last) - MIN (r->first, r->last) + 1;
    }
  return n;
}

gboolean
lb_imap_set_contains (const LbImapSet *set,
                      guint32          n)
{
  for (guint i = 0; i < set->ranges->len; i++)
    {
      LbImapRange *r = &g_array_index (set->ranges, LbImapRange, i);

      if (n >= MIN (r->first, r->last) && n <= MAX (r->first, r->last))
        return TRUE;
    }
  return FALSE;
}

/* The highest number in @set (a range may run downwards, "9:7"), 0 when it is empty. */
guint32
lb_imap_set_max (const LbImapSet *set)
{
  guint32 max = 0;

  for (guint i = 0; i < set->ranges->len; i++)
    {
      LbImapRange *r = &g_array_index (set->ranges, LbImapRange, i);

      max = MAX (max, MAX (r->first, r->last));
    }
  return max;
}

char *
lb_imap_set_to_string (const LbImapSet *set)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < set->ranges->len; i++)
    {
      LbImapRange *r = &g_array_index (set->ranges, LbImapRange, i);

      if (i > 0)
        g_string_append_c (s, ',');
      if (r->first == r->last)
        g_string_append_printf (s, "%u", r->first);
      else
        g_string_append_printf (s, "%u:%u", r->first, r->last);
    }
  return g_string_free (s, FALSE);
}

static LbImapSet *
read_set (Cursor *c)
{
  g_autoptr(LbImapSet) set = lb_imap_set_new ();

  for (;;)
    {
      LbImapRange range;

      if (!read_number32 (c, &range.first))
        return NULL;
      range.last = range.first;
      if (peek (c) == ':')
        {
          c->pos++;
          if (!read_number32 (c, &range.last))
            return NULL;
        }
      g_array_append_val (set->ranges, range);
      if (peek (c) != ',')
        break;
      c->pos++;
    }
  return g_steal_pointer (&set);
}

/* ---------------------------------------------------------------------------------- */
/* Envelope and body structure                                                          */

static void
address_free (gpointer data)
{
  LbImapAddress *address = data;

  g_free (address->name);
  g_free (address->adl);
  g_free (address->mailbox);
  g_free (address->host);
  g_free (address);
}

void
lb_imap_envelope_free (LbImapEnvelope *envelope)
{
  if (envelope == NULL)
    return;
  g_free (envelope->date);
  g_free (envelope->subject);
  g_clear_pointer (&envelope->from, g_ptr_array_unref);
  g_clear_pointer (&envelope->sender, g_ptr_array_unref);
  g_clear_pointer (&envelope->reply_to, g_ptr_array_unref);
  g_clear_pointer (&envelope->to, g_ptr_array_unref);
  g_clear_pointer (&envelope->cc, g_ptr_array_unref);
  g_clear_pointer (&envelope->bcc, g_ptr_array_unref);
  g_free (envelope->in_reply_to);
  g_free (envelope->message_id);
  g_free (envelope);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbImapEnvelope, lb_imap_envelope_free)

static gboolean
read_address_list (Cursor     *c,
                   GPtrArray **out)
{
  g_autoptr(GPtrArray) list = NULL;

  if (peek (c) != '(')
    {
      char *nil = NULL;

      if (!read_nstring (c, &nil))
        return FALSE;
      if (nil != NULL)
        {
          g_free (nil);
          return syntax_error (c, "expected an address list");
        }
      *out = NULL;
      return TRUE;
    }

  c->pos++;
  list = g_ptr_array_new_with_free_func (address_free);
  skip_spaces (c);
  while (peek (c) == '(')
    {
      LbImapAddress *address = g_new0 (LbImapAddress, 1);

      g_ptr_array_add (list, address);
      c->pos++;
      if (!read_nstring (c, &address->name) || !skip_sp (c) ||
          !read_nstring (c, &address->adl) || !skip_sp (c) ||
          !read_nstring (c, &address->mailbox) || !skip_sp (c) ||
          !read_nstring (c, &address->host) || !expect (c, ')'))
        return FALSE;
      skip_spaces (c);
    }
  if (!expect (c, ')'))
    return FALSE;
  *out = g_steal_pointer (&list);
  return TRUE;
}

static LbImapEnvelope *
read_envelope (Cursor *c)
{
  g_autoptr(LbImapEnvelope) env = g_new0 (LbImapEnvelope, 1);

  if (!expect (c, '(') ||
      !read_nstring (c, &env->date) || !skip_sp (c) ||
      !read_nstring (c, &env->subject) || !skip_sp (c) ||
      !read_address_list (c, &env->from) || !skip_sp (c) ||
      !read_address_list (c, &env->sender) || !skip_sp (c) ||
      !read_address_list (c, &env->reply_to) || !skip_sp (c) ||
      !read_address_list (c, &env->to) || !skip_sp (c) ||
      !read_address_list (c, &env->cc) || !skip_sp (c) ||
      !read_address_list (c, &env->bcc) || !skip_sp (c) ||
      !read_nstring (c, &env->in_reply_to) || !skip_sp (c) ||
      !read_nstring (c, &env->message_id) || !expect (c, ')'))
    return NULL;
  return g_steal_pointer (&env);
}

void
lb_imap_body_free (LbImapBody *body)
{
  if (body == NULL)
    return;
  g_free (body->type);
  g_free (body->subtype);
  g_clear_pointer (&body->params, g_ptr_array_unref);
  g_free (body->id);
  g_free (body->description);
  g_free (body->encoding);
  g_free (body->md5);
  g_free (body->disposition);
  g_clear_pointer (&body->disposition_params, g_ptr_array_unref);
  g_free (body->language);
  g_free (body->location);
  g_clear_pointer (&body->children, g_ptr_array_unref);
  lb_imap_envelope_free (body->envelope);
  lb_imap_body_free (body->message);
  g_free (body);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbImapBody, lb_imap_body_free)

const char *
lb_imap_body_get_param (const LbImapBody *body,
                        const char       *name)
{
  if (body->params == NULL)
    return NULL;
  for (guint i = 0; i + 1 < body->params->len; i += 2)
    if (g_ascii_strcasecmp (g_ptr_array_index (body->params, i), name) == 0)
      return g_ptr_array_index (body->params, i + 1);
  return NULL;
}

/* body-fld-param: "(" string SP string *(SP string SP string) ")" / NIL */
static gboolean
read_params (Cursor     *c,
             GPtrArray **out)
{
  g_autoptr(GPtrArray) params = NULL;

  if (peek (c) != '(')
    {
      char *nil = NULL;

      if (!read_nstring (c, &nil))
        return FALSE;
      g_free (nil);
      *out = NULL;
      return TRUE;
    }

  c->pos++;
  params = g_ptr_array_new_with_free_func (g_free);
  skip_spaces (c);
  while (peek (c) != ')')
    {
      char *name = NULL;
      char *value = NULL;

      if (!read_string_value (c, &name))
        return FALSE;
      g_ptr_array_add (params, name);
      if (!skip_sp (c) || !read_nstring (c, &value))
        return FALSE;
      g_ptr_array_add (params, value != NULL ? value : g_strdup (""));
      skip_spaces (c);
    }
  c->pos++;
  *out = g_steal_pointer (&params);
  return TRUE;
}

/* Skips one extension value of any shape. */
static gboolean
skip_value (Cursor *c)
{
  LbImapValue *value = read_value (c);

  lb_imap_value_free (value);
  return value != NULL;
}

/* The optional tail shared by both kinds of body: [disposition [language [location
 * extension*]]], each preceded by SP, up to the closing ")". */
static gboolean
read_body_ext_tail (Cursor     *c,
                    LbImapBody *body)
{
  if (peek (c) != ' ')
    return TRUE;
  c->pos++;

  /* body-fld-dsp: "(" string SP body-fld-param ")" / NIL */
  if (peek (c) == '(')
    {
      c->pos++;
      if (!read_string_value (c, &body->disposition) || !skip_sp (c) ||
          !read_params (c, &body->disposition_params) || !expect (c, ')'))
        return FALSE;
      ascii_lower (body->disposition);
    }
  else if (!skip_value (c))
    return FALSE;

  if (peek (c) != ' ')
    return TRUE;
  c->pos++;

  /* body-fld-lang: nstring / "(" string *(SP string) ")" */
  if (peek (c) == '(')
    {
      g_autoptr(LbImapValue) langs = read_list (c);

      if (langs == NULL)
        return FALSE;
      body->language = g_strdup (lb_imap_value_nstring (lb_imap_value_list_get (langs, 0)));
    }
  else if (!read_nstring (c, &body->language))
    return FALSE;

  if (peek (c) != ' ')
    return TRUE;
  c->pos++;
  if (!read_nstring (c, &body->location))
    return FALSE;

  while (peek (c) == ' ')
    {
      c->pos++;
      if (!skip_value (c))
        return FALSE;
    }
  return TRUE;
}

static LbImapBody *read_body (Cursor *c);

static LbImapBody *
read_body_multipart (Cursor *c)
{
  g_autoptr(LbImapBody) body = g_new0 (LbImapBody, 1);

  body->type = g_strdup ("multipart");
  body->children = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_imap_body_free);
  while (peek (c) == '(')
    {
      LbImapBody *child = read_body (c);

      if (child == NULL)
        return NULL;
      g_ptr_array_add (body->children, child);
      skip_spaces (c);
    }
  if (!read_string_value (c, &body->subtype))
    return NULL;
  ascii_lower (body->subtype);

  /* body-ext-mpart: SP body-fld-param [tail] */
  if (peek (c) == ' ')
    {
      c->pos++;
      if (!read_params (c, &body->params) || !read_body_ext_tail (c, body))
        return NULL;
    }
  return g_steal_pointer (&body);
}

static LbImapBody *
read_body_single (Cursor *c)
{
  g_autoptr(LbImapBody) body = g_new0 (LbImapBody, 1);

  if (!read_string_value (c, &body->type) || !skip_sp (c) ||
      !read_string_value (c, &body->subtype) || !skip_sp (c) ||
      !read_params (c, &body->params) || !skip_sp (c) ||
      !read_nstring (c, &body->id) || !skip_sp (c) ||
      !read_nstring (c, &body->description) || !skip_sp (c) ||
      !read_nstring (c, &body->encoding) || !skip_sp (c) ||
      !read_number (c, &body->size))
    return NULL;
  ascii_lower (body->type);
  ascii_lower (body->subtype);

  if (g_str_equal (body->type, "message") &&
      (g_str_equal (body->subtype, "rfc822") || g_str_equal (body->subtype, "global")) &&
      peek (c) == ' ')
    {
      c->pos++;
      if (!(body->envelope = read_envelope (c)) || !skip_sp (c) ||
          !(body->message = read_body (c)) || !skip_sp (c) || !read_number (c, &body->lines))
        return NULL;
    }
  else if (g_str_equal (body->type, "text") && peek (c) == ' ')
    {
      c->pos++;
      if (!read_number (c, &body->lines))
        return NULL;
    }

  /* body-ext-1part: SP body-fld-md5 [tail] */
  if (peek (c) == ' ')
    {
      c->pos++;
      if (!read_nstring (c, &body->md5) || !read_body_ext_tail (c, body))
        return NULL;
    }
  return g_steal_pointer (&body);
}

static LbImapBody *
read_body (Cursor *c)
{
  LbImapBody *body;

  if (!expect (c, '('))
    return NULL;
  if (++c->depth > c->limits->max_depth)
    {
      if (c->error == NULL)
        c->error = g_error_new (LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_TOO_LONG,
                                _("The server sent a body structure nested more than %u deep"),
                                c->limits->max_depth);
      return NULL;
    }

  body = peek (c) == '(' ? read_body_multipart (c) : read_body_single (c);
  if (body != NULL && !expect (c, ')'))
    g_clear_pointer (&body, lb_imap_body_free);
  c->depth--;
  return body;
}

/* ---------------------------------------------------------------------------------- */
/* Responses                                                                            */

static void
section_free (gpointer data)
{
  LbImapSection *section = data;

  g_free (section->name);
  lb_imap_value_free (section->value);
  g_free (section);
}

static void
fetch_free (LbImapFetch *fetch)
{
  if (fetch == NULL)
    return;
  g_clear_pointer (&fetch->flags, g_ptr_array_unref);
  g_free (fetch->internaldate);
  lb_imap_envelope_free (fetch->envelope);
  lb_imap_body_free (fetch->body);
  g_free (fetch->preview);
  g_clear_pointer (&fetch->sections, g_ptr_array_unref);
  g_clear_pointer (&fetch->other, g_ptr_array_unref);
  g_free (fetch);
}

static void
namespace_entry_free (gpointer data)
{
  LbImapNamespaceEntry *entry = data;

  g_free (entry->prefix);
  g_free (entry);
}

void
lb_imap_response_free (LbImapResponse *r)
{
  if (r == NULL)
    return;
  g_free (r->tag);
  g_free (r->code.name);
  g_free (r->code.raw);
  g_clear_pointer (&r->code.atoms, g_ptr_array_unref);
  lb_imap_set_free (r->code.set);
  lb_imap_set_free (r->code.set2);
  g_free (r->text);
  g_clear_pointer (&r->atoms, g_ptr_array_unref);
  g_clear_pointer (&r->numbers, g_array_unref);
  if (r->list != NULL)
    {
      g_clear_pointer (&r->list->flags, g_ptr_array_unref);
      g_free (r->list->mailbox);
      g_free (r->list->old_name);
      g_free (r->list);
    }
  if (r->mailbox_status != NULL)
    {
      g_free (r->mailbox_status->mailbox);
      g_free (r->mailbox_status);
    }
  if (r->esearch != NULL)
    {
      g_free (r->esearch->tag);
      lb_imap_set_free (r->esearch->all);
      g_free (r->esearch);
    }
  fetch_free (r->fetch);
  lb_imap_set_free (r->vanished);
  for (guint i = 0; i < 3; i++)
    g_clear_pointer (&r->namespaces[i], g_ptr_array_unref);
  g_clear_pointer (&r->id, g_ptr_array_unref);
  lb_imap_value_free (r->other);
  g_free (r->keyword);
  g_free (r);
}

static const struct
{
  const char *name;
  LbImapCodeKind kind;
} code_names[] = {
  { "ALERT", LB_IMAP_CODE_ALERT },
  { "BADCHARSET", LB_IMAP_CODE_BADCHARSET },
  { "CAPABILITY", LB_IMAP_CODE_CAPABILITY },
  { "PARSE", LB_IMAP_CODE_PARSE },
  { "PERMANENTFLAGS", LB_IMAP_CODE_PERMANENTFLAGS },
  { "READ-ONLY", LB_IMAP_CODE_READ_ONLY },
  { "READ-WRITE", LB_IMAP_CODE_READ_WRITE },
  { "TRYCREATE", LB_IMAP_CODE_TRYCREATE },
  { "UIDNEXT", LB_IMAP_CODE_UIDNEXT },
  { "UIDVALIDITY", LB_IMAP_CODE_UIDVALIDITY },
  { "UNSEEN", LB_IMAP_CODE_UNSEEN },
  { "HIGHESTMODSEQ", LB_IMAP_CODE_HIGHESTMODSEQ },
  { "NOMODSEQ", LB_IMAP_CODE_NOMODSEQ },
  { "MODIFIED", LB_IMAP_CODE_MODIFIED },
  { "APPENDUID", LB_IMAP_CODE_APPENDUID },
  { "COPYUID", LB_IMAP_CODE_COPYUID },
  { "UIDNOTSTICKY", LB_IMAP_CODE_UIDNOTSTICKY },
  { "CLOSED", LB_IMAP_CODE_CLOSED },
  { "AUTHENTICATIONFAILED", LB_IMAP_CODE_AUTHENTICATIONFAILED },
  { "AUTHORIZATIONFAILED", LB_IMAP_CODE_AUTHORIZATIONFAILED },
  { "UNAVAILABLE", LB_IMAP_CODE_UNAVAILABLE },
  { "NONEXISTENT", LB_IMAP_CODE_NONEXISTENT },
  { "ALREADYEXISTS", LB_IMAP_CODE_ALREADYEXISTS },
  { "OVERQUOTA", LB_IMAP_CODE_OVERQUOTA },
};

/* The typed arguments of a known response code; on any mismatch the caller keeps the
 * code as OTHER with its raw text, since a server's odd code must not cost the
 * connection. */
static gboolean
read_code_args (Cursor     *c,
                LbImapCode *code)
{
  switch (code->kind)
    {
    case LB_IMAP_CODE_CAPABILITY:
    case LB_IMAP_CODE_BADCHARSET:
      code->atoms = g_ptr_array_new_with_free_func (g_free);
      if (code->kind == LB_IMAP_CODE_BADCHARSET && peek (c) == ' ')
        {
          c->pos++;
          if (peek (c) == '(')
            {
              GPtrArray *list = read_flag_list (c);

              if (list == NULL)
                return FALSE;
              g_ptr_array_unref (code->atoms);
              code->atoms = list;
            }
          return TRUE;
        }
      while (peek (c) == ' ')
        {
          char *atom;

          c->pos++;
          if (peek (c) == ']')
            break;
          if ((atom = read_atom (c, FALSE)) == NULL)
            return FALSE;
          g_ptr_array_add (code->atoms, atom);
        }
      return TRUE;

    case LB_IMAP_CODE_PERMANENTFLAGS:
      return skip_sp (c) && (code->atoms = read_flag_list (c)) != NULL;

    case LB_IMAP_CODE_UIDNEXT:
    case LB_IMAP_CODE_UIDVALIDITY:
    case LB_IMAP_CODE_UNSEEN:
    case LB_IMAP_CODE_HIGHESTMODSEQ:
      return skip_sp (c) && read_number (c, &code->number);

    case LB_IMAP_CODE_MODIFIED:
      return skip_sp (c) && (code->set = read_set (c)) != NULL;

    case LB_IMAP_CODE_APPENDUID:
      return skip_sp (c) && read_number (c, &code->number) && skip_sp (c) &&
             (code->set = read_set (c)) != NULL;

    case LB_IMAP_CODE_COPYUID:
      return skip_sp (c) && read_number (c, &code->number) && skip_sp (c) &&
             (code->set = read_set (c)) != NULL && skip_sp (c) &&
             (code->set2 = read_set (c)) != NULL;

    case LB_IMAP_CODE_NONE:
    case LB_IMAP_CODE_ALERT:
    case LB_IMAP_CODE_PARSE:
    case LB_IMAP_CODE_READ_ONLY:
    case LB_IMAP_CODE_READ_WRITE:
    case LB_IMAP_CODE_TRYCREATE:
    case LB_IMAP_CODE_NOMODSEQ:
    case LB_IMAP_CODE_UIDNOTSTICKY:
    case LB_IMAP_CODE_CLOSED:
    case LB_IMAP_CODE_AUTHENTICATIONFAILED:
    case LB_IMAP_CODE_AUTHORIZATIONFAILED:
    case LB_IMAP_CODE_UNAVAILABLE:
    case LB_IMAP_CODE_NONEXISTENT:
    case LB_IMAP_CODE_ALREADYEXISTS:
    case LB_IMAP_CODE_OVERQUOTA:
    case LB_IMAP_CODE_OTHER:
    default:
      return TRUE;
    }
}

static void
code_clear_args (LbImapCode *code)
{
  g_clear_pointer (&code->atoms, g_ptr_array_unref);
  g_clear_pointer (&code->set, lb_imap_set_free);
  g_clear_pointer (&code->set2, lb_imap_set_free);
  code->number = 0;
}

/* resp-text: ["[" resp-text-code "]" SP] text */
static gboolean
read_resp_text (Cursor         *c,
                LbImapResponse *r)
{
  skip_spaces (c);
  if (peek (c) == '[')
    {
      gsize len;
      const guint8 *text = cur_text (c, &len);
      const guint8 *close;
      gsize args_start, close_pos;

      c->pos++;
      r->code.name = read_atom (c, FALSE);
      if (r->code.name == NULL)
        return FALSE;
      for (char *p = r->code.name; *p != '\0'; p++)
        *p = g_ascii_toupper (*p);
      r->code.kind = LB_IMAP_CODE_OTHER;
      for (guint i = 0; i < G_N_ELEMENTS (code_names); i++)
        if (g_str_equal (r->code.name, code_names[i].name))
          r->code.kind = code_names[i].kind;

      args_start = c->pos;
      close = memchr (text + c->pos, ']', len - c->pos);
      if (close == NULL)
        return syntax_error (c, "unterminated response code");
      close_pos = close - text;
      if (close_pos > args_start + 1)
        r->code.raw = g_strndup ((const char *) text + args_start + 1, close_pos - args_start - 1);

      if (!read_code_args (c, &r->code) || c->pos != close_pos)
        {
          /* Keep the code by name and raw text; the typed reading did not fit. */
          g_clear_error (&c->error);
          code_clear_args (&r->code);
          r->code.kind = LB_IMAP_CODE_OTHER;
        }
      c->pos = close_pos + 1;
      skip_spaces (c);
    }
  r->text = read_rest (c);
  return TRUE;
}

static LbImapStatus
status_from_atom (const char *atom)
{
  if (g_ascii_strcasecmp (atom, "OK") == 0)
    return LB_IMAP_STATUS_OK;
  if (g_ascii_strcasecmp (atom, "NO") == 0)
    return LB_IMAP_STATUS_NO;
  if (g_ascii_strcasecmp (atom, "BAD") == 0)
    return LB_IMAP_STATUS_BAD;
  if (g_ascii_strcasecmp (atom, "PREAUTH") == 0)
    return LB_IMAP_STATUS_PREAUTH;
  if (g_ascii_strcasecmp (atom, "BYE") == 0)
    return LB_IMAP_STATUS_BYE;
  return LB_IMAP_STATUS_NONE;
}

static gboolean
read_atoms_to_end (Cursor     *c,
                   GPtrArray **out)
{
  *out = g_ptr_array_new_with_free_func (g_free);
  while (peek (c) == ' ')
    {
      char *atom;

      c->pos++;
      if (peek (c) == -1)
        break;
      if ((atom = read_atom (c, TRUE)) == NULL)
        return FALSE;
      g_ptr_array_add (*out, atom);
    }
  return TRUE;
}

static gboolean
read_list_data (Cursor         *c,
                LbImapResponse *r)
{
  LbImapList *list = g_new0 (LbImapList, 1);
  char *delimiter = NULL;

  r->list = list;
  if (!skip_sp (c) || (list->flags = read_flag_list (c)) == NULL || !skip_sp (c))
    return FALSE;

  /* QUOTED-CHAR or NIL (a literal is tolerated). */
  if (!read_nstring (c, &delimiter))
    return FALSE;
  if (delimiter != NULL)
    {
      gboolean one_char = strlen (delimiter) == 1;

      list->delimiter = delimiter[0];
      g_free (delimiter);
      if (!one_char)
        return syntax_error (c, "a hierarchy delimiter must be one character");
    }

  if (!skip_sp (c) || !read_astring (c, &list->mailbox, &list->mailbox_len))
    return FALSE;

  /* mbox-list-extended (RFC 5258 §9): CHILDINFO, OLDNAME (RFC 9051), others. */
  if (peek (c) == ' ')
    {
      g_autoptr(LbImapValue) ext = NULL;

      c->pos++;
      if ((ext = read_list (c)) == NULL)
        return FALSE;
      for (guint i = 0; i + 1 < ext->list->len; i += 2)
        {
          LbImapValue *name = g_ptr_array_index (ext->list, i);
          LbImapValue *value = g_ptr_array_index (ext->list, i + 1);
          const char *tag = lb_imap_value_nstring (name);

          if (tag == NULL)
            continue;
          if (g_ascii_strcasecmp (tag, "OLDNAME") == 0)
            {
              g_free (list->old_name);
              list->old_name = g_strdup (lb_imap_value_nstring (lb_imap_value_list_get (value, 0)));
            }
          else if (g_ascii_strcasecmp (tag, "CHILDINFO") == 0 && value->kind == LB_IMAP_VALUE_LIST)
            for (guint j = 0; j < value->list->len; j++)
              if (g_strcmp0 (lb_imap_value_nstring (g_ptr_array_index (value->list, j)),
                             "SUBSCRIBED") == 0)
                list->has_childinfo_subscribed = TRUE;
        }
    }
  return TRUE;
}

static const struct
{
  const char *name;
  LbImapStatusItem item;
  gsize offset;
} status_items[] = {
  { "MESSAGES", LB_IMAP_STATUS_ITEM_MESSAGES, G_STRUCT_OFFSET (LbImapMailboxStatus, messages) },
  { "RECENT", LB_IMAP_STATUS_ITEM_RECENT, G_STRUCT_OFFSET (LbImapMailboxStatus, recent) },
  { "UIDNEXT", LB_IMAP_STATUS_ITEM_UIDNEXT, G_STRUCT_OFFSET (LbImapMailboxStatus, uidnext) },
  { "UIDVALIDITY", LB_IMAP_STATUS_ITEM_UIDVALIDITY,
    G_STRUCT_OFFSET (LbImapMailboxStatus, uidvalidity) },
  { "UNSEEN", LB_IMAP_STATUS_ITEM_UNSEEN, G_STRUCT_OFFSET (LbImapMailboxStatus, unseen) },
  { "DELETED", LB_IMAP_STATUS_ITEM_DELETED, G_STRUCT_OFFSET (LbImapMailboxStatus, deleted) },
  { "SIZE", LB_IMAP_STATUS_ITEM_SIZE, G_STRUCT_OFFSET (LbImapMailboxStatus, size) },
  { "HIGHESTMODSEQ", LB_IMAP_STATUS_ITEM_HIGHESTMODSEQ,
    G_STRUCT_OFFSET (LbImapMailboxStatus, highestmodseq) },
};

static gboolean
read_status_data (Cursor         *c,
                  LbImapResponse *r)
{
  LbImapMailboxStatus *status = g_new0 (LbImapMailboxStatus, 1);

  r->mailbox_status = status;
  if (!skip_sp (c) || !read_astring (c, &status->mailbox, NULL) || !skip_sp (c) ||
      !expect (c, '('))
    return FALSE;
  skip_spaces (c);
  while (peek (c) != ')')
    {
      g_autofree char *name = read_atom (c, FALSE);
      guint64 value;

      if (name == NULL || !skip_sp (c) || !read_number (c, &value))
        return FALSE;
      for (guint i = 0; i < G_N_ELEMENTS (status_items); i++)
        if (g_ascii_strcasecmp (name, status_items[i].name) == 0)
          {
            G_STRUCT_MEMBER (guint64, status, status_items[i].offset) = value;
            status->present |= status_items[i].item;
          }
      skip_spaces (c);
    }
  c->pos++;
  return TRUE;
}

static gboolean
read_search_data (Cursor         *c,
                  LbImapResponse *r)
{
  r->numbers = g_array_new (FALSE, FALSE, sizeof (guint32));
  while (peek (c) == ' ')
    {
      c->pos++;
      if (peek (c) == -1)
        break;
      if (peek (c) == '(')
        {
          /* CONDSTORE (RFC 7162 §3.1.5): "(MODSEQ n)" ends a SEARCH response. */
          g_autofree char *name = NULL;

          c->pos++;
          if ((name = read_atom (c, FALSE)) == NULL || g_ascii_strcasecmp (name, "MODSEQ") != 0 ||
              !skip_sp (c) || !read_number (c, &r->search_modseq) || !expect (c, ')'))
            return syntax_error (c, "expected (MODSEQ n)");
        }
      else
        {
          guint32 n = 0;

          if (!read_number32 (c, &n))
            return FALSE;
          g_array_append_val (r->numbers, n);
        }
    }
  return TRUE;
}

static gboolean
read_esearch_data (Cursor         *c,
                   LbImapResponse *r)
{
  LbImapEsearch *es = g_new0 (LbImapEsearch, 1);

  r->esearch = es;
  if (peek (c) == ' ')
    c->pos++;
  if (peek (c) == '(')
    {
      /* search-correlator: "(" "TAG" SP tag-string ")" */
      g_autofree char *name = NULL;

      c->pos++;
      if ((name = read_atom (c, FALSE)) == NULL || g_ascii_strcasecmp (name, "TAG") != 0 ||
          !skip_sp (c) || !read_astring (c, &es->tag, NULL) || !expect (c, ')'))
        return syntax_error (c, "expected (TAG \"…\")");
      if (peek (c) == ' ')
        c->pos++;
    }

  while (peek (c) != -1)
    {
      g_autofree char *name = read_atom (c, FALSE);

      if (name == NULL)
        return FALSE;
      if (g_ascii_strcasecmp (name, "UID") == 0)
        es->uid = TRUE;
      else
        {
          if (!skip_sp (c))
            return FALSE;
          if (g_ascii_strcasecmp (name, "MIN") == 0)
            es->has_min = read_number32 (c, &es->min);
          else if (g_ascii_strcasecmp (name, "MAX") == 0)
            es->has_max = read_number32 (c, &es->max);
          else if (g_ascii_strcasecmp (name, "COUNT") == 0)
            es->has_count = read_number (c, &es->count);
          else if (g_ascii_strcasecmp (name, "MODSEQ") == 0)
            es->has_modseq = read_number (c, &es->modseq);
          else if (g_ascii_strcasecmp (name, "ALL") == 0)
            {
              lb_imap_set_free (es->all);
              es->all = read_set (c);
            }
          else
            skip_value (c);
          if (c->error != NULL)
            return FALSE;
        }
      if (peek (c) == ' ')
        c->pos++;
    }
  return TRUE;
}

/* msg-att name: an atom with an optional "[section]" and "<origin>". */
static char *
read_fetch_name (Cursor   *c,
                 guint64  *origin,
                 gboolean *has_origin)
{
  gsize len;
  const guint8 *text = cur_text (c, &len);
  gsize start = c->pos;
  char *name;

  while (c->pos < len && is_atom_char (text[c->pos], FALSE) && text[c->pos] != '[' &&
         text[c->pos] != '<')
    c->pos++;
  if (c->pos < len && text[c->pos] == '[')
    {
      while (c->pos < len && text[c->pos] != ']')
        c->pos++;
      if (c->pos >= len)
        {
          syntax_error (c, "unterminated section");
          return NULL;
        }
      c->pos++;
    }
  if (c->pos == start)
    {
      syntax_error (c, "expected a FETCH item");
      return NULL;
    }
  name = g_ascii_strup ((const char *) text + start, c->pos - start);

  *has_origin = FALSE;
  if (c->pos < len && text[c->pos] == '<')
    {
      c->pos++;
      if (!read_number (c, origin) || !expect (c, '>'))
        {
          g_free (name);
          return NULL;
        }
      *has_origin = TRUE;
    }
  return name;
}

static gboolean
read_fetch_data (Cursor         *c,
                 LbImapResponse *r)
{
  LbImapFetch *f = g_new0 (LbImapFetch, 1);

  r->fetch = f;
  if (!skip_sp (c) || !expect (c, '('))
    return FALSE;
  skip_spaces (c);
  while (peek (c) != ')')
    {
      guint64 origin = 0;
      gboolean has_origin = FALSE;
      g_autofree char *name = read_fetch_name (c, &origin, &has_origin);
      gboolean ok = TRUE;

      if (name == NULL || !skip_sp (c))
        return FALSE;

      if (g_str_equal (name, "UID"))
        {
          ok = read_number32 (c, &f->uid);
          f->present |= LB_IMAP_FETCH_UID;
        }
      else if (g_str_equal (name, "FLAGS"))
        {
          g_clear_pointer (&f->flags, g_ptr_array_unref);
          ok = (f->flags = read_flag_list (c)) != NULL;
          f->present |= LB_IMAP_FETCH_FLAGS;
        }
      else if (g_str_equal (name, "INTERNALDATE"))
        {
          g_clear_pointer (&f->internaldate, g_free);
          ok = read_string_value (c, &f->internaldate);
          f->present |= LB_IMAP_FETCH_INTERNALDATE;
        }
      else if (g_str_equal (name, "RFC822.SIZE"))
        {
          ok = read_number (c, &f->size);
          f->present |= LB_IMAP_FETCH_SIZE;
        }
      else if (g_str_equal (name, "ENVELOPE"))
        {
          g_clear_pointer (&f->envelope, lb_imap_envelope_free);
          ok = (f->envelope = read_envelope (c)) != NULL;
          f->present |= LB_IMAP_FETCH_ENVELOPE;
        }
      else if (g_str_equal (name, "BODYSTRUCTURE") || g_str_equal (name, "BODY"))
        {
          g_clear_pointer (&f->body, lb_imap_body_free);
          ok = (f->body = read_body (c)) != NULL;
          f->present |= LB_IMAP_FETCH_BODYSTRUCTURE;
        }
      else if (g_str_equal (name, "MODSEQ"))
        {
          /* RFC 7162 §3.1.4.1: "(" mod-sequence-value ")" */
          ok = expect (c, '(') && read_number (c, &f->modseq) && expect (c, ')');
          f->present |= LB_IMAP_FETCH_MODSEQ;
        }
      else if (g_str_equal (name, "PREVIEW"))
        {
          g_clear_pointer (&f->preview, g_free);
          ok = read_nstring (c, &f->preview);
          f->present |= LB_IMAP_FETCH_PREVIEW;
        }
      else if (g_str_has_prefix (name, "BODY[") || g_str_has_prefix (name, "BINARY[") ||
               g_str_has_prefix (name, "RFC822"))
        {
          LbImapSection *section = g_new0 (LbImapSection, 1);

          if (f->sections == NULL)
            f->sections = g_ptr_array_new_with_free_func (section_free);
          g_ptr_array_add (f->sections, section);
          section->name = g_steal_pointer (&name);
          section->origin = origin;
          section->has_origin = has_origin;
          section->value = read_value (c);
          ok = section->value != NULL;
          if (ok && section->value->kind != LB_IMAP_VALUE_STRING &&
              section->value->kind != LB_IMAP_VALUE_NIL &&
              section->value->kind != LB_IMAP_VALUE_STREAMED)
            ok = syntax_error (c, "expected a string or NIL for %s", section->name);
        }
      else
        {
          LbImapValue *value = read_value (c);
          LbImapValue *key;

          ok = value != NULL;
          if (ok)
            {
              if (f->other == NULL)
                f->other = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_imap_value_free);
              key = value_new (LB_IMAP_VALUE_ATOM);
              key->str = g_steal_pointer (&name);
              key->len = strlen (key->str);
              g_ptr_array_add (f->other, key);
              g_ptr_array_add (f->other, value);
            }
        }

      if (!ok)
        return FALSE;
      if (peek (c) != ')' && !skip_sp (c))
        return FALSE;
      skip_spaces (c);
    }
  c->pos++;
  return TRUE;
}

static gboolean
read_vanished_data (Cursor         *c,
                    LbImapResponse *r)
{
  if (!skip_sp (c))
    return FALSE;
  if (peek (c) == '(')
    {
      g_autofree char *earlier = NULL;

      c->pos++;
      if ((earlier = read_atom (c, FALSE)) == NULL || !expect (c, ')') || !skip_sp (c))
        return FALSE;
      r->vanished_earlier = g_ascii_strcasecmp (earlier, "EARLIER") == 0;
    }
  return (r->vanished = read_set (c)) != NULL;
}

static gboolean
read_namespace_data (Cursor         *c,
                     LbImapResponse *r)
{
  for (guint i = 0; i < 3; i++)
    {
      if (!skip_sp (c))
        return FALSE;
      if (peek (c) != '(')
        {
          char *nil = NULL;

          if (!read_nstring (c, &nil))
            return FALSE;
          g_free (nil);
          continue;
        }
      c->pos++;
      r->namespaces[i] = g_ptr_array_new_with_free_func (namespace_entry_free);
      while (peek (c) == '(')
        {
          LbImapNamespaceEntry *entry = g_new0 (LbImapNamespaceEntry, 1);
          char *delimiter = NULL;

          g_ptr_array_add (r->namespaces[i], entry);
          c->pos++;
          if (!read_string_value (c, &entry->prefix) || !skip_sp (c) ||
              !read_nstring (c, &delimiter))
            return FALSE;
          entry->delimiter = delimiter != NULL ? delimiter[0] : '\0';
          g_free (delimiter);
          /* Namespace-Response-Extensions: skipped. */
          while (peek (c) == ' ')
            {
              c->pos++;
              if (!skip_value (c) || (peek (c) == ' ' && (c->pos++, !skip_value (c))))
                return FALSE;
            }
          if (!expect (c, ')'))
            return FALSE;
          skip_spaces (c);
        }
      if (!expect (c, ')'))
        return FALSE;
    }
  return TRUE;
}

static gboolean
read_id_data (Cursor         *c,
              LbImapResponse *r)
{
  g_autoptr(LbImapValue) params = NULL;

  if (!skip_sp (c))
    return FALSE;
  r->id = g_ptr_array_new_with_free_func (g_free);
  params = read_value (c);
  if (params == NULL)
    return FALSE;
  if (params->kind == LB_IMAP_VALUE_NIL)
    return TRUE;
  if (params->kind != LB_IMAP_VALUE_LIST || params->list->len % 2 != 0)
    return syntax_error (c, "expected ID parameters");
  for (guint i = 0; i < params->list->len; i++)
    g_ptr_array_add (r->id, g_strdup (lb_imap_value_nstring (g_ptr_array_index (params->list, i))));
  return TRUE;
}

static gboolean
read_other_data (Cursor         *c,
                 LbImapResponse *r)
{
  r->other = value_new (LB_IMAP_VALUE_LIST);
  r->other->list = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_imap_value_free);
  while (peek (c) == ' ')
    {
      LbImapValue *value;

      c->pos++;
      if (peek (c) == -1)
        break;
      if ((value = read_value (c)) == NULL)
        return FALSE;
      g_ptr_array_add (r->other->list, value);
    }
  return TRUE;
}

static gboolean
read_untagged (Cursor         *c,
               LbImapResponse *r)
{
  g_autofree char *keyword = NULL;

  if (g_ascii_isdigit (peek (c)))
    {
      guint32 n = 0;

      if (!read_number32 (c, &n) || !skip_sp (c) || (keyword = read_atom (c, FALSE)) == NULL)
        return FALSE;
      r->number = n;
      if (g_ascii_strcasecmp (keyword, "EXISTS") == 0)
        r->data = LB_IMAP_DATA_EXISTS;
      else if (g_ascii_strcasecmp (keyword, "RECENT") == 0)
        r->data = LB_IMAP_DATA_RECENT;
      else if (g_ascii_strcasecmp (keyword, "EXPUNGE") == 0)
        r->data = LB_IMAP_DATA_EXPUNGE;
      else if (g_ascii_strcasecmp (keyword, "FETCH") == 0)
        {
          r->data = LB_IMAP_DATA_FETCH;
          return read_fetch_data (c, r);
        }
      else
        {
          r->data = LB_IMAP_DATA_OTHER;
          r->keyword = g_steal_pointer (&keyword);
          return read_other_data (c, r);
        }
      return TRUE;
    }

  if ((keyword = read_atom (c, FALSE)) == NULL)
    return FALSE;

  r->status = status_from_atom (keyword);
  if (r->status != LB_IMAP_STATUS_NONE)
    {
      r->data = LB_IMAP_DATA_STATUS;
      return read_resp_text (c, r);
    }

  if (g_ascii_strcasecmp (keyword, "CAPABILITY") == 0)
    {
      r->data = LB_IMAP_DATA_CAPABILITY;
      return read_atoms_to_end (c, &r->atoms);
    }
  if (g_ascii_strcasecmp (keyword, "ENABLED") == 0)
    {
      r->data = LB_IMAP_DATA_ENABLED;
      return read_atoms_to_end (c, &r->atoms);
    }
  if (g_ascii_strcasecmp (keyword, "FLAGS") == 0)
    {
      r->data = LB_IMAP_DATA_FLAGS;
      return skip_sp (c) && (r->atoms = read_flag_list (c)) != NULL;
    }
  if (g_ascii_strcasecmp (keyword, "LIST") == 0 || g_ascii_strcasecmp (keyword, "LSUB") == 0)
    {
      r->data = g_ascii_strcasecmp (keyword, "LIST") == 0 ? LB_IMAP_DATA_LIST : LB_IMAP_DATA_LSUB;
      return read_list_data (c, r);
    }
  if (g_ascii_strcasecmp (keyword, "STATUS") == 0)
    {
      r->data = LB_IMAP_DATA_MAILBOX_STATUS;
      return read_status_data (c, r);
    }
  if (g_ascii_strcasecmp (keyword, "SEARCH") == 0)
    {
      r->data = LB_IMAP_DATA_SEARCH;
      return read_search_data (c, r);
    }
  if (g_ascii_strcasecmp (keyword, "ESEARCH") == 0)
    {
      r->data = LB_IMAP_DATA_ESEARCH;
      return read_esearch_data (c, r);
    }
  if (g_ascii_strcasecmp (keyword, "VANISHED") == 0)
    {
      r->data = LB_IMAP_DATA_VANISHED;
      return read_vanished_data (c, r);
    }
  if (g_ascii_strcasecmp (keyword, "NAMESPACE") == 0)
    {
      r->data = LB_IMAP_DATA_NAMESPACE;
      return read_namespace_data (c, r);
    }
  if (g_ascii_strcasecmp (keyword, "ID") == 0)
    {
      r->data = LB_IMAP_DATA_ID;
      return read_id_data (c, r);
    }

  r->data = LB_IMAP_DATA_OTHER;
  r->keyword = g_steal_pointer (&keyword);
  return read_other_data (c, r);
}

static LbImapResponse *
parse_segments (GPtrArray                *segs,
                const LbImapParserLimits *limits,
                GError                  **error)
{
  Cursor c = { segs, 0, 0, 0, limits, NULL };
  LbImapResponse *r = g_new0 (LbImapResponse, 1);
  gboolean ok;

  if (peek (&c) == '+')
    {
      c.pos++;
      r->kind = LB_IMAP_RESPONSE_CONTINUATION;
      if (peek (&c) == ' ')
        c.pos++;
      r->text = read_rest (&c);
      ok = TRUE;
    }
  else if (peek (&c) == '*')
    {
      c.pos++;
      r->kind = LB_IMAP_RESPONSE_UNTAGGED;
      ok = skip_sp (&c) && read_untagged (&c, r);
    }
  else
    {
      g_autofree char *status = NULL;

      r->kind = LB_IMAP_RESPONSE_TAGGED;
      r->data = LB_IMAP_DATA_STATUS;
      ok = (r->tag = read_atom (&c, FALSE)) != NULL && skip_sp (&c) &&
           (status = read_atom (&c, FALSE)) != NULL;
      if (ok)
        {
          r->status = status_from_atom (status);
          if (r->status != LB_IMAP_STATUS_OK && r->status != LB_IMAP_STATUS_NO &&
              r->status != LB_IMAP_STATUS_BAD)
            ok = syntax_error (&c, "a tagged response must be OK, NO or BAD");
          else
            ok = read_resp_text (&c, r);
        }
    }

  if (ok && !at_end (&c))
    ok = syntax_error (&c, "unexpected data at the end of the response");

  if (!ok)
    {
      if (c.error == NULL)
        syntax_error (&c, "malformed response");
      g_propagate_error (error, c.error);
      lb_imap_response_free (r);
      return NULL;
    }
  return r;
}

/**
 * lb_imap_parse_response:
 * @line: one whole response without its CRLF and without literals
 *
 * Parses a single literal-free response; for tests and for callers that have one line.
 */
LbImapResponse *
lb_imap_parse_response (const char  *line,
                        gsize        len,
                        GError     **error)
{
  g_autoptr(GPtrArray) segs = g_ptr_array_new_with_free_func (segment_free);
  Segment *text = g_new0 (Segment, 1);
  LbImapParserLimits limits;

  lb_imap_parser_default_limits (&limits);
  text->bytes = g_byte_array_new ();
  g_byte_array_append (text->bytes, (const guint8 *) line, len);
  g_ptr_array_add (segs, text);
  if (memchr (line, '\0', len) != NULL)
    {
      g_set_error (error, LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_SYNTAX,
                   _("The server sent a NUL byte outside a literal"));
      return NULL;
    }
  return parse_segments (segs, &limits, error);
}

/* ---------------------------------------------------------------------------------- */
/* Framing                                                                              */

/* Does the line end in a literal announcement, "{N}", "{N+}" or "~{N}"? */
static gboolean
literal_announcement (const GByteArray *line,
                      guint64          *size,
                      gboolean         *binary,
                      gboolean         *valid)
{
  const guint8 *d = line->data;
  gsize len = line->len;
  gsize i;
  guint64 n = 0;

  *valid = TRUE;
  if (len < 3 || d[len - 1] != '}')
    return FALSE;
  i = len - 2;
  if (d[i] == '+' || d[i] == '-')
    i--;
  if (!g_ascii_isdigit (d[i]))
    return FALSE;
  while (i > 0 && g_ascii_isdigit (d[i]))
    i--;
  if (d[i] != '{')
    return FALSE;
  for (gsize j = i + 1; j < len && g_ascii_isdigit (d[j]); j++)
    {
      guint digit = d[j] - '0';

      if (n > (G_MAXINT64 - digit) / 10)
        {
          *valid = FALSE;
          return TRUE;
        }
      n = n * 10 + digit;
    }
  *binary = i > 0 && d[i - 1] == '~';
  *size = n;
  return TRUE;
}

/* For a literal in "* N FETCH (… NAME {size}": N and NAME, so that a sink knows where the
 * literal belongs. Returns FALSE when the response is not a FETCH. */
static gboolean
fetch_literal_context (LbImapParser *parser,
                       guint32      *seq,
                       char        **item)
{
  Segment *first = parser->segments->len > 0 ? g_ptr_array_index (parser->segments, 0) : NULL;
  const GByteArray *head = first != NULL ? first->bytes : parser->line;
  const guint8 *d = parser->line->data;
  gsize end, start;
  guint64 n = 0;
  gsize i = 2;

  if (head->len < 10 || head->data[0] != '*' || head->data[1] != ' ')
    return FALSE;
  while (i < head->len && g_ascii_isdigit (head->data[i]) && n <= G_MAXUINT32)
    n = n * 10 + (head->data[i++] - '0');
  if (i == 2 || n > G_MAXUINT32 || i + 7 > head->len ||
      g_ascii_strncasecmp ((const char *) head->data + i, " FETCH ", 7) != 0)
    return FALSE;
  *seq = (guint32) n;

  /* Back from "{": skip "~", the space, then the name (with its [section] and <origin>). */
  end = parser->line->len;
  while (end > 0 && d[end - 1] != '{')
    end--;
  if (end == 0)
    return FALSE;
  end--;
  if (end > 0 && d[end - 1] == '~')
    end--;
  if (end == 0 || d[end - 1] != ' ')
    return FALSE;
  end--;
  start = end;
  if (start > 0 && d[start - 1] == '>')
    while (start > 0 && d[start - 1] != '<')
      start--;
  if (start > 0 && d[start - 1] == '<')
    start--;
  if (start > 0 && d[start - 1] == ']')
    while (start > 0 && d[start - 1] != '[')
      start--;
  while (start > 0 && d[start - 1] != ' ' && d[start - 1] != '(')
    start--;
  *item = g_ascii_strup ((const char *) d + start, end - start);
  return TRUE;
}

static gboolean
finish_text_segment (LbImapParser *parser)
{
  Segment *segment = g_new0 (Segment, 1);

  segment->bytes = parser->line;
  parser->line = g_byte_array_new ();
  g_ptr_array_add (parser->segments, segment);
  return TRUE;
}

static gboolean
complete_response (LbImapParser  *parser,
                   GError       **error)
{
  LbImapResponse *response;
  GError *local = NULL;

  finish_text_segment (parser);
  response = parse_segments (parser->segments, &parser->limits, &local);
  g_ptr_array_set_size (parser->segments, 0);
  parser->text_total = 0;
  if (response == NULL)
    return fail (parser, local, error);
  g_queue_push_tail (&parser->responses, response);
  return TRUE;
}

static gboolean
start_literal (LbImapParser  *parser,
               guint64        size,
               gboolean       binary,
               GError       **error)
{
  g_autofree char *item = NULL;
  Segment *literal = g_new0 (Segment, 1);
  guint32 seq = 0;

  literal->literal = TRUE;
  literal->size = size;
  literal->binary = binary;

  if (parser->sink != NULL && size >= parser->limits.stream_threshold &&
      fetch_literal_context (parser, &seq, &item))
    {
      LbImapLiteralInfo info = { seq, item, size, binary };
      GError *local = NULL;

      finish_text_segment (parser);
      g_ptr_array_add (parser->segments, literal);
      literal->streamed = TRUE;
      parser->sink_handle = parser->sink->begin (&info, parser->sink_data, &local);
      if (parser->sink_handle == NULL)
        {
          if (local == NULL)
            local = g_error_new (LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_SINK,
                                 _("Could not store a message of %llu bytes"),
                                 (unsigned long long) size);
          return fail (parser, local, error);
        }
    }
  else
    {
      if (size > parser->limits.max_literal)
        {
          segment_free (literal);
          return fail (parser,
                       g_error_new (LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_TOO_LONG,
                                    _("The server announced %llu bytes of data where at "
                                      "most %llu are allowed"),
                                    (unsigned long long) size,
                                    (unsigned long long) parser->limits.max_literal),
                       error);
        }
      finish_text_segment (parser);
      g_ptr_array_add (parser->segments, literal);
      /* Grown as the data arrives, never by the announced size alone. */
      literal->bytes = g_byte_array_sized_new ((guint) MIN (size, 64 * 1024));
    }

  parser->literal = literal;
  parser->literal_left = size;
  parser->state = FRAME_LITERAL;
  return TRUE;
}

static gboolean
end_literal (LbImapParser  *parser,
             GError       **error)
{
  parser->state = FRAME_TEXT;
  if (parser->literal->streamed)
    {
      GError *local = NULL;
      gpointer handle = g_steal_pointer (&parser->sink_handle);

      if (!parser->sink->end (handle, parser->sink_data, &local))
        return fail (parser, local, error);
    }
  parser->literal = NULL;
  return TRUE;
}

/* A line (text up to LF) is complete: either a literal follows, or the response ends. */
static gboolean
end_of_line (LbImapParser  *parser,
             GError       **error)
{
  guint64 size;
  gboolean binary = FALSE, valid;

  if (parser->line->len > 0 && parser->line->data[parser->line->len - 1] == '\r')
    g_byte_array_set_size (parser->line, parser->line->len - 1);

  if (literal_announcement (parser->line, &size, &binary, &valid))
    {
      if (!valid)
        return fail (parser,
                     g_error_new (LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_TOO_LONG,
                                  _("The server announced a literal too large to represent")),
                     error);
      if (!start_literal (parser, size, binary, error))
        return FALSE;
      if (size == 0)
        return end_literal (parser, error);
      return TRUE;
    }

  return complete_response (parser, error);
}

/**
 * lb_imap_parser_feed:
 * @data: the next bytes from the server, split anywhere
 *
 * Frames and parses what it can; completed responses wait in lb_imap_parser_pop(). After
 * an error the parser refuses more input: the connection must be closed.
 */
gboolean
lb_imap_parser_feed (LbImapParser  *parser,
                     const guint8  *data,
                     gsize          len,
                     GError       **error)
{
  gsize i = 0;

  if (parser->failed != NULL)
    {
      g_propagate_error (error, g_error_copy (parser->failed));
      return FALSE;
    }

  while (i < len)
    {
      if (parser->state == FRAME_LITERAL)
        {
          gsize n = (gsize) MIN ((guint64) (len - i), parser->literal_left);

          if (parser->literal->streamed)
            {
              GError *local = NULL;

              if (!parser->sink->write (parser->sink_handle, data + i, n, parser->sink_data, &local))
                return fail (parser, local, error);
            }
          else
            g_byte_array_append (parser->literal->bytes, data + i, (guint) n);
          i += n;
          parser->literal_left -= n;
          if (parser->literal_left == 0 && !end_literal (parser, error))
            return FALSE;
        }
      else
        {
          const guint8 *lf = memchr (data + i, '\n', len - i);
          gsize n = (lf != NULL ? (gsize) (lf - (data + i)) : len - i);

          if (memchr (data + i, '\0', n) != NULL)
            return fail (parser,
                         g_error_new (LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_SYNTAX,
                                      _("The server sent a NUL byte outside a literal")),
                         error);
          parser->text_total += n;
          if (parser->text_total > parser->limits.max_line)
            return fail (parser,
                         g_error_new (LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_TOO_LONG,
                                      _("The server sent a response longer than %zu bytes"),
                                      parser->limits.max_line),
                         error);
          g_byte_array_append (parser->line, data + i, (guint) n);
          i += n;
          if (lf != NULL)
            {
              i++;
              if (!end_of_line (parser, error))
                return FALSE;
            }
        }
    }
  return TRUE;
}
