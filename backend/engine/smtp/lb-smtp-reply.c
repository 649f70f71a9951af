/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-smtp"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-smtp-reply.h"

/*
 * SMTP replies, parsed purely and incrementally (any split of the input gives the same
 * replies). A reply is lines "NNN-text" ended by "NNN text" or "NNN" (RFC 5321 §4.2.1);
 * every line must carry the same code. Lines longer than 4096 bytes (the RFC says 512;
 * servers exceed it) and replies of more than 1000 lines are errors, never unbounded
 * allocations.
 */

#define MAX_LINE 4096
#define MAX_LINES 1000

G_DEFINE_QUARK (lb-smtp-parse-error-quark, lb_smtp_parse_error)

struct _LbSmtpReplyParser
{
  GByteArray *line;
  LbSmtpReply *current;
  GQueue replies;
  GError *failed;
};

void
lb_smtp_reply_free (LbSmtpReply *reply)
{
  if (reply == NULL)
    return;
  g_ptr_array_unref (reply->lines);
  g_free (reply);
}

/**
 * lb_smtp_reply_dup_text:
 *
 * Returns: (transfer full): the reply as a person reads it: "550 5.1.1 text", lines
 *   joined by spaces
 */
char *
lb_smtp_reply_dup_text (const LbSmtpReply *reply)
{
  GString *out = g_string_new (NULL);

  g_string_append_printf (out, "%u", reply->code);
  if (reply->has_enhanced)
    g_string_append_printf (out, " %u.%u.%u", reply->enhanced[0], reply->enhanced[1],
                            reply->enhanced[2]);
  for (guint i = 0; i < reply->lines->len; i++)
    {
      const char *line = g_ptr_array_index (reply->lines, i);

      if (line[0] != '\0')
        g_string_append_printf (out, " %s", line);
    }
  return g_string_free (out, FALSE);
}

gboolean
lb_smtp_reply_is_positive (const LbSmtpReply *reply)
{
  return reply->code >= 200 && reply->code < 400;
}

/* 4yz: try again later (RFC 5321 §4.2.1). */
gboolean
lb_smtp_reply_is_transient (const LbSmtpReply *reply)
{
  return reply->code >= 400 && reply->code < 500;
}

LbSmtpReplyParser *
lb_smtp_reply_parser_new (void)
{
  LbSmtpReplyParser *parser = g_new0 (LbSmtpReplyParser, 1);

  parser->line = g_byte_array_new ();
  g_queue_init (&parser->replies);
  return parser;
}

void
lb_smtp_reply_parser_free (LbSmtpReplyParser *parser)
{
  if (parser == NULL)
    return;
  g_byte_array_unref (parser->line);
  lb_smtp_reply_free (parser->current);
  g_queue_clear_full (&parser->replies, (GDestroyNotify) lb_smtp_reply_free);
  g_clear_error (&parser->failed);
  g_free (parser);
}

LbSmtpReply *
lb_smtp_reply_parser_pop (LbSmtpReplyParser *parser)
{
  return g_queue_pop_head (&parser->replies);
}

/**
 * lb_smtp_reply_parser_is_empty:
 *
 * Returns: whether the parser holds nothing: no reply waiting, no partial line. After
 *   the reply to STARTTLS anything else is an injection attempt (RFC 3207 §6).
 */
gboolean
lb_smtp_reply_parser_is_empty (LbSmtpReplyParser *parser)
{
  return parser->line->len == 0 && parser->current == NULL &&
         g_queue_is_empty (&parser->replies);
}

G_GNUC_PRINTF (3, 4)
static gboolean
fail (LbSmtpReplyParser  *parser,
      GError            **error,
      const char         *format,
      ...)
{
  g_autofree char *what = NULL;
  va_list ap;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  parser->failed = g_error_new (LB_SMTP_PARSE_ERROR, LB_SMTP_PARSE_ERROR_SYNTAX,
                                _("The server sent a malformed SMTP reply (%s)"), what);
  g_propagate_error (error, g_error_copy (parser->failed));
  return FALSE;
}

/* "X.Y.Z " at the start of the text (RFC 3463 §2): class 2, 4 or 5, then 1-3 and 1-3
 * digits. Returns how many bytes it took, 0 when there is none. */
static gsize
enhanced_code (const char *text,
               guint       out[3])
{
  const char *p = text;

  if (*p != '2' && *p != '4' && *p != '5')
    return 0;
  for (guint part = 0; part < 3; part++)
    {
      guint n = 0, digits = 0;

      while (g_ascii_isdigit (*p) && digits < 3)
        {
          n = n * 10 + (guint) (*p++ - '0');
          digits++;
        }
      if (digits == 0 || (part < 2 && *p++ != '.'))
        return 0;
      out[part] = n;
    }
  if (*p != ' ' && *p != '\0')
    return 0;
  return (gsize) (p - text) + (*p == ' ' ? 1 : 0);
}

static gboolean
end_of_line (LbSmtpReplyParser  *parser,
             GError            **error)
{
  const char *line;
  gsize len;
  guint code;
  gboolean last;
  const char *text;

  if (parser->line->len > 0 && parser->line->data[parser->line->len - 1] == '\r')
    g_byte_array_set_size (parser->line, parser->line->len - 1);
  g_byte_array_append (parser->line, (const guint8 *) "", 1);
  line = (const char *) parser->line->data;
  len = parser->line->len - 1;

  if (len < 3 || !g_ascii_isdigit (line[0]) || !g_ascii_isdigit (line[1]) ||
      !g_ascii_isdigit (line[2]) || line[0] < '2' || line[0] > '5' ||
      (len > 3 && line[3] != ' ' && line[3] != '-'))
    return fail (parser, error, "“%.*s” does not start with a reply code", (int) MIN (len, 80),
                 line);

  code = (guint) ((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
  last = len == 3 || line[3] == ' ';
  text = len > 3 ? line + 4 : "";

  if (parser->current == NULL)
    {
      parser->current = g_new0 (LbSmtpReply, 1);
      parser->current->code = code;
      parser->current->lines = g_ptr_array_new_with_free_func (g_free);
      if (enhanced_code (text, parser->current->enhanced) > 0)
        parser->current->has_enhanced = TRUE;
    }
  else if (parser->current->code != code)
    return fail (parser, error, "a reply changes its code from %u to %u",
                 parser->current->code, code);

  if (parser->current->lines->len >= MAX_LINES)
    {
      parser->failed = g_error_new (LB_SMTP_PARSE_ERROR, LB_SMTP_PARSE_ERROR_TOO_LONG,
                                    _("The server sent an SMTP reply of more than %u lines"),
                                    MAX_LINES);
      g_propagate_error (error, g_error_copy (parser->failed));
      return FALSE;
    }

  /* The enhanced code repeats on every line; keep only the text. */
  {
    guint ignored[3];
    gsize skip = parser->current->has_enhanced ? enhanced_code (text, ignored) : 0;

    g_ptr_array_add (parser->current->lines, g_strdup (text + skip));
  }
  g_byte_array_set_size (parser->line, 0);

  if (last)
    g_queue_push_tail (&parser->replies, g_steal_pointer (&parser->current));
  return TRUE;
}

/**
 * lb_smtp_reply_parser_feed:
 *
 * Parses what it can of @data; complete replies wait in lb_smtp_reply_parser_pop().
 * After an error the parser refuses more input.
 */
gboolean
lb_smtp_reply_parser_feed (LbSmtpReplyParser  *parser,
                           const guint8       *data,
                           gsize               len,
                           GError            **error)
{
  gsize i = 0;

  if (parser->failed != NULL)
    {
      g_propagate_error (error, g_error_copy (parser->failed));
      return FALSE;
    }

  while (i < len)
    {
      const guint8 *lf = memchr (data + i, '\n', len - i);
      gsize n = lf != NULL ? (gsize) (lf - (data + i)) : len - i;

      if (memchr (data + i, '\0', n) != NULL)
        return fail (parser, error, "a NUL byte");
      if (parser->line->len + n > MAX_LINE)
        {
          parser->failed = g_error_new (LB_SMTP_PARSE_ERROR, LB_SMTP_PARSE_ERROR_TOO_LONG,
                                        _("The server sent an SMTP reply line longer than %u "
                                          "bytes"),
                                        MAX_LINE);
          g_propagate_error (error, g_error_copy (parser->failed));
          return FALSE;
        }
      g_byte_array_append (parser->line, data + i, (guint) n);
      i += n;
      if (lf != NULL)
        {
          i++;
          if (!end_of_line (parser, error))
            return FALSE;
        }
    }
  return TRUE;
}

void
lb_smtp_ehlo_free (LbSmtpEhlo *ehlo)
{
  if (ehlo == NULL)
    return;
  g_free (ehlo->domain);
  g_strfreev (ehlo->auth_mechanisms);
  g_free (ehlo);
}

/**
 * lb_smtp_ehlo_parse:
 *
 * Reads the server's extensions from a positive EHLO reply; unknown keywords are
 * ignored (RFC 5321 §4.1.1.1).
 */
LbSmtpEhlo *
lb_smtp_ehlo_parse (const LbSmtpReply  *reply,
                    GError            **error)
{
  g_autoptr(LbSmtpEhlo) ehlo = g_new0 (LbSmtpEhlo, 1);
  g_autoptr(GStrvBuilder) mechs = g_strv_builder_new ();

  if (reply->code != 250 || reply->lines->len == 0)
    {
      g_set_error (error, LB_SMTP_PARSE_ERROR, LB_SMTP_PARSE_ERROR_SYNTAX,
                   _("The server did not accept EHLO (%u)"), reply->code);
      return NULL;
    }

  {
    const char *first = g_ptr_array_index (reply->lines, 0);
    const char *space = strchr (first, ' ');

    ehlo->domain = space != NULL ? g_strndup (first, space - first) : g_strdup (first);
  }

  for (guint i = 1; i < reply->lines->len; i++)
    {
      g_auto(GStrv) words = g_strsplit (g_ptr_array_index (reply->lines, i), " ", -1);
      g_autofree char *keyword = words[0] != NULL ? g_ascii_strup (words[0], -1) : NULL;

      if (keyword == NULL)
        continue;
      if (g_str_equal (keyword, "PIPELINING"))
        ehlo->caps |= LB_SMTP_CAP_PIPELINING;
      else if (g_str_equal (keyword, "8BITMIME"))
        ehlo->caps |= LB_SMTP_CAP_8BITMIME;
      else if (g_str_equal (keyword, "SMTPUTF8"))
        ehlo->caps |= LB_SMTP_CAP_SMTPUTF8;
      else if (g_str_equal (keyword, "CHUNKING"))
        ehlo->caps |= LB_SMTP_CAP_CHUNKING;
      else if (g_str_equal (keyword, "BINARYMIME"))
        ehlo->caps |= LB_SMTP_CAP_BINARYMIME;
      else if (g_str_equal (keyword, "DSN"))
        ehlo->caps |= LB_SMTP_CAP_DSN;
      else if (g_str_equal (keyword, "ENHANCEDSTATUSCODES"))
        ehlo->caps |= LB_SMTP_CAP_ENHANCEDSTATUSCODES;
      else if (g_str_equal (keyword, "STARTTLS"))
        ehlo->caps |= LB_SMTP_CAP_STARTTLS;
      else if (g_str_equal (keyword, "REQUIRETLS"))
        ehlo->caps |= LB_SMTP_CAP_REQUIRETLS;
      else if (g_str_equal (keyword, "SIZE"))
        {
          ehlo->caps |= LB_SMTP_CAP_SIZE;
          if (words[1] != NULL)
            g_ascii_string_to_unsigned (words[1], 10, 0, G_MAXUINT64, &ehlo->size_limit, NULL);
        }
      else if (g_str_equal (keyword, "AUTH"))
        {
          ehlo->caps |= LB_SMTP_CAP_AUTH;
          for (guint j = 1; words[j] != NULL; j++)
            if (words[j][0] != '\0')
              {
                g_autofree char *mech = g_ascii_strup (words[j], -1);

                g_strv_builder_add (mechs, mech);
              }
        }
    }
  ehlo->auth_mechanisms = g_strv_builder_end (mechs);
  return g_steal_pointer (&ehlo);
}
