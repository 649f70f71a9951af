/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-pop3"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-pop3-parser.h"

/*
 * POP3 responses (RFC 1939, RFC 2449), parsed purely and incrementally: a status line,
 * then for multi-line responses data up to a line holding only ".", with the
 * byte-stuffing of lines that begin with "." undone (RFC 1939 §3). The data is read byte
 * by byte through a small state machine, so any split of the input gives the same
 * result and no data line has a length limit; streamed data (RETR) goes to the sink as
 * it comes. The client says what each response will be, in order, which also lets
 * commands be pipelined (RFC 2449 §6.6).
 */

#define MAX_STATUS_LINE 4096
#define MAX_IN_MEMORY (64 * 1024 * 1024)

G_DEFINE_QUARK (lb-pop3-parse-error-quark, lb_pop3_parse_error)

typedef enum
{
  DATA_LINE_START,
  DATA_MID,
  DATA_DOT,
  DATA_DOT_CR,
} DataState;

struct _LbPop3Parser
{
  GQueue expected;          /* LbPop3Expect, as pointers */
  GByteArray *line;
  LbPop3Response *current;  /* in its data phase */
  LbPop3Expect current_expect;
  DataState data_state;
  LbPop3SinkFunc sink;
  gpointer sink_data;
  GQueue responses;
  GError *failed;
};

void
lb_pop3_response_free (LbPop3Response *response)
{
  if (response == NULL)
    return;
  g_free (response->code);
  g_free (response->text);
  if (response->data != NULL)
    g_byte_array_unref (response->data);
  g_free (response);
}

LbPop3Parser *
lb_pop3_parser_new (void)
{
  LbPop3Parser *parser = g_new0 (LbPop3Parser, 1);

  parser->line = g_byte_array_new ();
  g_queue_init (&parser->expected);
  g_queue_init (&parser->responses);
  return parser;
}

void
lb_pop3_parser_free (LbPop3Parser *parser)
{
  if (parser == NULL)
    return;
  g_queue_clear (&parser->expected);
  g_byte_array_unref (parser->line);
  lb_pop3_response_free (parser->current);
  g_queue_clear_full (&parser->responses, (GDestroyNotify) lb_pop3_response_free);
  g_clear_error (&parser->failed);
  g_free (parser);
}

/**
 * lb_pop3_parser_expect:
 *
 * Announces the next response, in the order the commands were sent; the greeting is a
 * %LB_POP3_EXPECT_LINE.
 */
void
lb_pop3_parser_expect (LbPop3Parser *parser,
                       LbPop3Expect  expect)
{
  g_queue_push_tail (&parser->expected, GINT_TO_POINTER (expect));
}

void
lb_pop3_parser_set_sink (LbPop3Parser   *parser,
                         LbPop3SinkFunc  sink,
                         gpointer        user_data)
{
  parser->sink = sink;
  parser->sink_data = user_data;
}

LbPop3Response *
lb_pop3_parser_pop (LbPop3Parser *parser)
{
  return g_queue_pop_head (&parser->responses);
}

/**
 * lb_pop3_parser_count_ready:
 *
 * Returns: how many complete responses wait in lb_pop3_parser_pop(). Called from a sink,
 *   it tells whose data is streaming: the response after those (a pipelining client
 *   needs it to route RETR data to the right command).
 */
guint
lb_pop3_parser_count_ready (LbPop3Parser *parser)
{
  return g_queue_get_length (&parser->responses);
}

/**
 * lb_pop3_parser_is_idle:
 *
 * Returns: whether every byte fed so far belongs to a response already popped: no partial
 *   line, no data in progress, nothing waiting. After STLS's +OK, anything else is data
 *   injected before the TLS handshake (RFC 2595 §4) and must be refused.
 */
gboolean
lb_pop3_parser_is_idle (LbPop3Parser *parser)
{
  return parser->line->len == 0 && parser->current == NULL &&
         g_queue_is_empty (&parser->responses);
}

static gboolean
fail (LbPop3Parser  *parser,
      GError       **error,
      GError        *reason)
{
  parser->failed = reason;
  g_propagate_error (error, g_error_copy (reason));
  return FALSE;
}

/* "+OK [CODE] text" or "-ERR [CODE] text" (RFC 2449 §8). */
static gboolean
status_line (LbPop3Parser  *parser,
             GError       **error)
{
  g_autoptr(LbPop3Response) r = g_new0 (LbPop3Response, 1);
  const char *line, *rest;
  LbPop3Expect expect;

  if (parser->line->len > 0 && parser->line->data[parser->line->len - 1] == '\r')
    g_byte_array_set_size (parser->line, parser->line->len - 1);
  g_byte_array_append (parser->line, (const guint8 *) "", 1);
  line = (const char *) parser->line->data;

  if (g_queue_is_empty (&parser->expected))
    return fail (parser, error,
                 g_error_new (LB_POP3_PARSE_ERROR, LB_POP3_PARSE_ERROR_UNEXPECTED,
                              _("The POP3 server sent a response nobody asked for")));
  expect = GPOINTER_TO_INT (g_queue_pop_head (&parser->expected));

  /* An AUTH challenge: "+" SP base64 (RFC 5034 §4); "+" alone is read as an empty one.
   * The exchange goes on, so the expectation stays. */
  if (expect == LB_POP3_EXPECT_AUTH && line[0] == '+' &&
      (line[1] == '\0' || line[1] == ' '))
    {
      r->ok = TRUE;
      r->continuation = TRUE;
      r->text = g_strdup (line[1] == ' ' ? line + 2 : "");
      g_byte_array_set_size (parser->line, 0);
      g_queue_push_head (&parser->expected, GINT_TO_POINTER (expect));
      g_queue_push_tail (&parser->responses, g_steal_pointer (&r));
      return TRUE;
    }

  if (g_str_has_prefix (line, "+OK"))
    {
      r->ok = TRUE;
      rest = line + 3;
    }
  else if (g_str_has_prefix (line, "-ERR"))
    rest = line + 4;
  else
    {
      g_autofree char *shown = g_strndup (line, 80);

      return fail (parser, error,
                   g_error_new (LB_POP3_PARSE_ERROR, LB_POP3_PARSE_ERROR_SYNTAX,
                                _("The POP3 server sent “%s” where +OK or -ERR belongs"),
                                g_strcanon (shown, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?-+_[]()/@<>", '?')));
    }
  if (*rest != '\0' && *rest != ' ')
    return fail (parser, error,
                 g_error_new (LB_POP3_PARSE_ERROR, LB_POP3_PARSE_ERROR_SYNTAX,
                              _("The POP3 server sent a malformed status line")));
  while (*rest == ' ')
    rest++;
  if (*rest == '[')
    {
      const char *close = strchr (rest, ']');

      if (close != NULL)
        {
          r->code = g_strndup (rest + 1, close - rest - 1);
          rest = close + 1;
          while (*rest == ' ')
            rest++;
        }
    }
  r->text = g_strdup (rest);
  g_byte_array_set_size (parser->line, 0);

  /* -ERR is always a single line (RFC 1939 §3). */
  if (!r->ok || expect == LB_POP3_EXPECT_LINE || expect == LB_POP3_EXPECT_AUTH)
    {
      g_queue_push_tail (&parser->responses, g_steal_pointer (&r));
      return TRUE;
    }
  if (expect == LB_POP3_EXPECT_MULTILINE)
    r->data = g_byte_array_new ();
  parser->current = g_steal_pointer (&r);
  parser->current_expect = expect;
  parser->data_state = DATA_LINE_START;
  return TRUE;
}

static gboolean
emit (LbPop3Parser  *parser,
      const guint8  *data,
      gsize          len,
      GError       **error)
{
  if (len == 0)
    return TRUE;
  parser->current->data_size += len;
  if (parser->current_expect == LB_POP3_EXPECT_STREAMED)
    {
      GError *local = NULL;

      if (parser->sink != NULL && !parser->sink (data, len, parser->sink_data, &local))
        {
          if (local == NULL)
            local = g_error_new (LB_POP3_PARSE_ERROR, LB_POP3_PARSE_ERROR_SINK,
                                 _("The message could not be stored"));
          return fail (parser, error, local);
        }
      return TRUE;
    }
  if (parser->current->data->len + len > MAX_IN_MEMORY)
    return fail (parser, error,
                 g_error_new (LB_POP3_PARSE_ERROR, LB_POP3_PARSE_ERROR_TOO_LONG,
                              _("The POP3 server sent more data than expected")));
  g_byte_array_append (parser->current->data, data, (guint) len);
  return TRUE;
}

/* Consumes data bytes until the terminating "." line; returns how many it took, or
 * G_MAXSIZE on error. */
static gsize
data_bytes (LbPop3Parser  *parser,
            const guint8  *data,
            gsize          len,
            GError       **error)
{
  gsize i = 0, run = 0;

  while (i < len)
    {
      guint8 ch = data[i];

      switch (parser->data_state)
        {
        case DATA_LINE_START:
          if (ch == '.')
            {
              if (!emit (parser, data + run, i - run, error))
                return G_MAXSIZE;
              parser->data_state = DATA_DOT;
              run = i + 1;
            }
          else
            parser->data_state = ch == '\n' ? DATA_LINE_START : DATA_MID;
          break;

        case DATA_MID:
          {
            /* The middle of a line: nothing to undo until its end. */
            const guint8 *lf = memchr (data + i, '\n', len - i);

            if (lf == NULL)
              {
                i = len;
                continue;
              }
            i = (gsize) (lf - data);
            parser->data_state = DATA_LINE_START;
            break;
          }

        case DATA_DOT:
          if (ch == '\r')
            {
              parser->data_state = DATA_DOT_CR;
              run = i + 1;
            }
          else if (ch == '\n')
            goto done; /* a bare LF after the dot: tolerated */
          else
            {
              /* A stuffed line: the dot is gone, the rest is data. */
              run = i;
              parser->data_state = DATA_MID;
            }
          break;

        case DATA_DOT_CR:
          if (ch == '\n')
            goto done;
          /* ".\r" and more: keep the CR as data. */
          if (!emit (parser, (const guint8 *) "\r", 1, error))
            return G_MAXSIZE;
          run = i;
          parser->data_state = ch == '\n' ? DATA_LINE_START : DATA_MID;
          break;

        default:
          g_assert_not_reached ();
        }
      i++;
    }
  if (parser->data_state != DATA_DOT && parser->data_state != DATA_DOT_CR &&
      !emit (parser, data + run, i - run, error))
    return G_MAXSIZE;
  return i;

done:
  g_queue_push_tail (&parser->responses, g_steal_pointer (&parser->current));
  return i + 1;
}

/**
 * lb_pop3_parser_feed:
 *
 * Parses what it can; complete responses wait in lb_pop3_parser_pop(). After an error
 * the parser refuses more input: the connection must be closed.
 */
gboolean
lb_pop3_parser_feed (LbPop3Parser  *parser,
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
      if (parser->current != NULL)
        {
          gsize n = data_bytes (parser, data + i, len - i, error);

          if (n == G_MAXSIZE)
            return FALSE;
          i += n;
          continue;
        }
      else
        {
          const guint8 *lf = memchr (data + i, '\n', len - i);
          gsize n = lf != NULL ? (gsize) (lf - (data + i)) : len - i;

          if (memchr (data + i, '\0', n) != NULL)
            return fail (parser, error,
                         g_error_new (LB_POP3_PARSE_ERROR, LB_POP3_PARSE_ERROR_SYNTAX,
                                      _("The POP3 server sent a NUL byte in a status line")));
          if (parser->line->len + n > MAX_STATUS_LINE)
            return fail (parser, error,
                         g_error_new (LB_POP3_PARSE_ERROR, LB_POP3_PARSE_ERROR_TOO_LONG,
                                      _("The POP3 server sent a status line longer than %u "
                                        "bytes"),
                                      MAX_STATUS_LINE));
          g_byte_array_append (parser->line, data + i, (guint) n);
          i += n;
          if (lf != NULL)
            {
              i++;
              if (!status_line (parser, error))
                return FALSE;
            }
        }
    }
  return TRUE;
}

/* "msg size" of LIST and STAT (RFC 1939 §5). */
gboolean
lb_pop3_parse_scan_line (const char *line,
                         guint32    *number,
                         guint64    *size)
{
  g_auto(GStrv) words = g_strsplit (line, " ", 3);
  guint64 n, s;

  if (words[0] == NULL || words[1] == NULL ||
      !g_ascii_string_to_unsigned (words[0], 10, 0, G_MAXUINT32, &n, NULL) ||
      !g_ascii_string_to_unsigned (words[1], 10, 0, G_MAXINT64, &s, NULL))
    return FALSE;
  *number = (guint32) n;
  *size = s;
  return TRUE;
}

/* "msg unique-id" of UIDL: 1 to 70 characters from 0x21 to 0x7E (RFC 1939 §7). */
gboolean
lb_pop3_parse_uidl_line (const char  *line,
                         guint32     *number,
                         char       **uid)
{
  g_auto(GStrv) words = g_strsplit (line, " ", 3);
  guint64 n;
  gsize len;

  if (words[0] == NULL || words[1] == NULL ||
      !g_ascii_string_to_unsigned (words[0], 10, 0, G_MAXUINT32, &n, NULL))
    return FALSE;
  len = strlen (words[1]);
  if (len == 0 || len > 70)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if ((guchar) words[1][i] < 0x21 || (guchar) words[1][i] > 0x7e)
      return FALSE;
  *number = (guint32) n;
  *uid = g_strdup (words[1]);
  return TRUE;
}
