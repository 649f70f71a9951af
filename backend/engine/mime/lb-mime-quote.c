/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-mime"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-mime-quote.h"
#include "lb-mime-summary.h"

/*
 * Replies and forwards as drafts for the composer. Subjects get one "Re: " or "Fwd: ",
 * whatever prefixes mailers in other languages put there before; the thread headers
 * chain as RFC 5322 §3.6.4 describes; the original's main text (HTML reduced to text
 * when it has nothing else) is quoted with "> ", its signature left out.
 */

#define QUOTE_SOURCE_BYTES (1024 * 1024)

/* Reply prefixes: English, German (AW), Scandinavian (SV, VS), Dutch (Antw), Polish
 * (Odp), Italian (Rif), Spanish/Portuguese (Res). */
static const char *const reply_prefixes[] = { "re", "aw", "sv", "vs", "antw", "odp", "rif",
                                              "res", NULL };
/* Forward prefixes: English, German (WG), French (TR), Spanish (RV), Portuguese (Enc),
 * Dutch (Doorst). */
static const char *const forward_prefixes[] = { "fwd", "fw", "wg", "tr", "rv", "enc",
                                                "doorst", NULL };

/* Past one prefix ("Re:", "RE :", "Re[2]:", "Re(3):", "Re：") and the spaces after it,
 * or NULL when @s does not start with one. */
static const char *
skip_prefix (const char        *s,
             const char *const *prefixes)
{
  const char *p = s;
  char word[8];
  gsize n = 0;

  while (g_ascii_isalpha (*p) && n < sizeof word - 1)
    word[n++] = g_ascii_tolower (*p++);
  word[n] = '\0';
  if (n == 0 || g_ascii_isalpha (*p) || !g_strv_contains (prefixes, word))
    return NULL;
  if (*p == '[' || *p == '(')
    {
      char close = *p == '[' ? ']' : ')';

      p++;
      while (g_ascii_isdigit (*p))
        p++;
      if (*p != close)
        return NULL;
      p++;
    }
  while (*p == ' ')
    p++;
  if (*p == ':')
    p++;
  else if (g_str_has_prefix (p, "\xEF\xBC\x9A")) /* U+FF1A FULLWIDTH COLON */
    p += 3;
  else
    return NULL;
  while (g_ascii_isspace (*p))
    p++;
  return p;
}

static const char *
strip_prefixes (const char        *subject,
                const char *const *prefixes)
{
  const char *p = subject;
  const char *next;

  while (g_ascii_isspace (*p))
    p++;
  while ((next = skip_prefix (p, prefixes)) != NULL)
    p = next;
  return p;
}

/**
 * lb_mime_reply_subject:
 * @subject: (nullable): the original subject
 *
 * Returns: (transfer full): "Re: " and the subject without the reply prefixes it had
 */
char *
lb_mime_reply_subject (const char *subject)
{
  return g_strconcat ("Re: ", strip_prefixes (subject != NULL ? subject : "", reply_prefixes),
                      NULL);
}

/**
 * lb_mime_forward_subject:
 * @subject: (nullable): the original subject
 *
 * Returns: (transfer full): "Fwd: " and the subject without the forward prefixes it had
 */
char *
lb_mime_forward_subject (const char *subject)
{
  return g_strconcat ("Fwd: ",
                      strip_prefixes (subject != NULL ? subject : "", forward_prefixes), NULL);
}

static gboolean
blank (const char *line)
{
  for (; *line != '\0'; line++)
    if (!g_ascii_isspace (*line))
      return FALSE;
  return TRUE;
}

/**
 * lb_mime_quote_text:
 * @text: plain text, lines ended by "\n" (or "\r\n")
 *
 * Every line quoted: "> " before text, ">" before an already quoted line (so "> a"
 * becomes ">> a") or an empty one. The signature (from a "-- " line on, RFC 3676 §4.3)
 * and trailing empty lines are left out.
 *
 * Returns: (transfer full): the quoted text, each line ended by "\n"
 */
char *
lb_mime_quote_text (const char *text)
{
  g_auto(GStrv) lines = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  guint n;

  g_return_val_if_fail (text != NULL, NULL);

  lines = g_strsplit (text, "\n", -1);
  n = g_strv_length (lines);
  for (guint i = 0; i < n; i++)
    {
      gsize len = strlen (lines[i]);

      if (len > 0 && lines[i][len - 1] == '\r')
        lines[i][--len] = '\0';
      if (strcmp (lines[i], "-- ") == 0)
        {
          n = i;
          break;
        }
    }
  while (n > 0 && blank (lines[n - 1]))
    n--;
  for (guint i = 0; i < n; i++)
    {
      if (lines[i][0] == '>')
        g_string_append_printf (out, ">%s\n", lines[i]);
      else if (lines[i][0] == '\0')
        g_string_append (out, ">\n");
      else
        g_string_append_printf (out, "> %s\n", lines[i]);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static gboolean
same_address (const char *a,
              const char *b)
{
  return a != NULL && b != NULL && g_ascii_strcasecmp (a, b) == 0;
}

static gboolean
list_has (GPtrArray  *list,
          const char *address)
{
  for (guint i = 0; i < list->len; i++)
    if (same_address (((LbMimeAddress *) list->pdata[i])->address, address))
      return TRUE;
  return FALSE;
}

/* Appends those of @from that are not @me, not in @except and not already there. */
static void
add_recipients (GPtrArray  *to,
                GPtrArray  *from,
                const char *me,
                GPtrArray  *except)
{
  for (guint i = 0; i < from->len; i++)
    {
      const LbMimeAddress *a = from->pdata[i];

      if (*a->address == '\0' || same_address (a->address, me) || list_has (to, a->address) ||
          (except != NULL && list_has (except, a->address)))
        continue;
      g_ptr_array_add (to, lb_mime_address_copy (a));
    }
}

static gboolean
all_are (GPtrArray  *list,
         const char *me)
{
  for (guint i = 0; i < list->len; i++)
    if (!same_address (((LbMimeAddress *) list->pdata[i])->address, me))
      return FALSE;
  return list->len > 0;
}

static char *
format_date (gint64 unix_time)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (unix_time);
  g_autoptr(GDateTime) local = utc != NULL ? g_date_time_to_local (utc) : NULL;

  if (local == NULL)
    return NULL;
  /* xgettext:no-c-format */
  /* Translators: the date in a reply's attribution line and a forwarded message's
   * header, a g_date_time_format() format. */
  return g_date_time_format (local, _("%a, %d %b %Y %H:%M"));
}

static char *
format_address (const LbMimeAddress *a)
{
  if (a->name != NULL && *a->address != '\0')
    return g_strdup_printf ("%s <%s>", a->name, a->address);
  return g_strdup (a->name != NULL ? a->name : a->address);
}

static char *
format_list (GPtrArray *list)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < list->len; i++)
    {
      g_autofree char *one = format_address (list->pdata[i]);

      g_string_append_printf (out, "%s%s", i > 0 ? ", " : "", one);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
chain_references (LbMimeDraft         *draft,
                  const LbMimeSummary *original)
{
  g_autoptr(GPtrArray) chain = g_ptr_array_new ();

  for (guint i = 0; i < original->references->len; i++)
    g_ptr_array_add (chain, original->references->pdata[i]);
  /* RFC 5322 §3.6.4: without References, the parent's In-Reply-To (one id) stands in. */
  if (chain->len == 0 && original->in_reply_to != NULL)
    g_ptr_array_add (chain, original->in_reply_to);
  if (original->message_id != NULL)
    g_ptr_array_add (chain, original->message_id);

  /* Very long chains: the first (the thread's root) and the latest ids. */
  for (guint i = 0; i < chain->len; i++)
    if (chain->len <= LB_MIME_REFERENCES_MAX || i == 0 ||
        i >= chain->len - (LB_MIME_REFERENCES_MAX - 1))
      g_ptr_array_add (draft->references, g_strdup (chain->pdata[i]));

  if (original->message_id != NULL)
    draft->in_reply_to = g_strdup (original->message_id);
}

/**
 * lb_mime_reply_draft:
 * @original: the message replied to
 * @my_address: (nullable): the replying account's address: the draft's From, and left
 *   out of the recipients
 * @reply_all: also the original's other recipients, as Cc
 *
 * To is the original's Reply-To, else its From (or, replying to one's own message, its
 * To). With @reply_all, Cc is the original From (when Reply-To replaced it), To and Cc,
 * without @my_address and without anyone twice.
 *
 * Returns: (transfer full): the draft
 */
LbMimeDraft *
lb_mime_reply_draft (GMimeMessage *original,
                     const char   *my_address,
                     gboolean      reply_all)
{
  g_autoptr(LbMimeSummary) summary = NULL;
  g_autoptr(GPtrArray) from = NULL;
  g_autoptr(GString) body = g_string_new (NULL);
  g_autofree char *text = NULL;
  g_autofree char *quoted = NULL;
  g_autofree char *date = NULL;
  LbMimeDraft *draft;
  GPtrArray *to_source;
  const char *who;

  g_return_val_if_fail (GMIME_IS_MESSAGE (original), NULL);

  summary = lb_mime_summarise (original, LB_MIME_SUMMARY_NONE);
  from = lb_mime_address_list_from_gmime (g_mime_message_get_from (original));
  draft = lb_mime_draft_new ();
  if (my_address != NULL)
    draft->from = lb_mime_address_new (NULL, my_address);
  draft->subject = lb_mime_reply_subject (summary->subject);

  to_source = summary->reply_to->len > 0 ? summary->reply_to : from;
  if (all_are (to_source, my_address))
    to_source = summary->to;
  add_recipients (draft->to, to_source, my_address, NULL);
  if (draft->to->len == 0 && all_are (to_source, my_address))
    add_recipients (draft->to, to_source, NULL, NULL);
  if (reply_all)
    {
      add_recipients (draft->cc, from, my_address, draft->to);
      add_recipients (draft->cc, summary->to, my_address, draft->to);
      add_recipients (draft->cc, summary->cc, my_address, draft->to);
    }
  chain_references (draft, summary);

  who = summary->from == NULL ? NULL
        : summary->from->name != NULL ? summary->from->name
        : *summary->from->address != '\0' ? summary->from->address
        : NULL;
  if (who == NULL)
    who = _("an unknown sender");
  date = summary->date != 0 ? format_date (summary->date) : NULL;
  g_string_append (body, "\n\n");
  if (date != NULL)
    /* Translators: the line before the quoted text of a reply: "On <date>, <sender>
     * wrote:". */
    g_string_append_printf (body, _("On %s, %s wrote:"), date, who);
  else
    /* Translators: the line before the quoted text of a reply, without a date. */
    g_string_append_printf (body, _("%s wrote:"), who);
  g_string_append_c (body, '\n');
  text = lb_mime_message_get_text (original, QUOTE_SOURCE_BYTES, NULL);
  quoted = lb_mime_quote_text (text);
  g_string_append (body, quoted);
  draft->body_text = g_string_free (g_steal_pointer (&body), FALSE);
  return draft;
}

static void
append_field (GString    *body,
              const char *label,
              const char *value)
{
  if (value == NULL || *value == '\0')
    return;
  g_string_append_printf (body, "%s %s\n", label, value);
}

/**
 * lb_mime_forward_draft:
 * @original: the message forwarded
 * @inline_forward: %TRUE for its text in the body after a "Forwarded Message" header
 *   block, its attachments attached again; %FALSE for the whole original attached as
 *   message/rfc822
 *
 * Returns: (transfer full): the draft, without recipients or sender
 */
LbMimeDraft *
lb_mime_forward_draft (GMimeMessage *original,
                       gboolean      inline_forward)
{
  g_autoptr(LbMimeSummary) summary = NULL;
  LbMimeDraft *draft;

  g_return_val_if_fail (GMIME_IS_MESSAGE (original), NULL);

  summary = lb_mime_summarise (original, LB_MIME_SUMMARY_NONE);
  draft = lb_mime_draft_new ();
  draft->subject = lb_mime_forward_subject (summary->subject);

  if (inline_forward)
    {
      g_autoptr(GString) body = g_string_new ("\n\n");
      g_autofree char *date = summary->date != 0 ? format_date (summary->date) : NULL;
      g_autofree char *from = summary->from != NULL ? format_address (summary->from) : NULL;
      g_autofree char *to = format_list (summary->to);
      g_autofree char *cc = format_list (summary->cc);
      g_autofree char *text = lb_mime_message_get_text (original, QUOTE_SOURCE_BYTES, NULL);
      g_autoptr(GPtrArray) parts = lb_mime_message_get_attachment_parts (original);

      g_string_append (body, _("-------- Forwarded Message --------"));
      g_string_append_c (body, '\n');
      /* Translators: the fields of a forwarded message's header block; each is followed
       * by a space and the value. */
      append_field (body, _("Subject:"), summary->subject);
      append_field (body, _("Date:"), date);
      append_field (body, _("From:"), from);
      append_field (body, _("To:"), to);
      append_field (body, _("Cc:"), cc);
      g_string_append_c (body, '\n');
      g_string_append (body, text);
      if (body->len > 0 && body->str[body->len - 1] != '\n')
        g_string_append_c (body, '\n');
      draft->body_text = g_string_free (g_steal_pointer (&body), FALSE);
      for (guint i = 0; i < parts->len; i++)
        g_ptr_array_add (draft->attachments,
                         lb_mime_draft_attachment_new_for_part (parts->pdata[i]));
    }
  else
    {
      g_autoptr(GMimeMessagePart) part = g_mime_message_part_new_with_message ("rfc822",
                                                                               original);
      g_autofree char *filename = NULL;
      g_autofree char *base = g_strdup (*summary->subject != '\0' ? summary->subject
                                                                  : "message");

      g_strdelimit (base, "/\\", '_');
      filename = g_strconcat (base, ".eml", NULL);
      g_mime_object_set_disposition (GMIME_OBJECT (part), GMIME_DISPOSITION_ATTACHMENT);
      g_mime_object_set_content_disposition_parameter (GMIME_OBJECT (part), "filename",
                                                       filename);
      draft->body_text = g_strdup ("");
      g_ptr_array_add (draft->attachments,
                       lb_mime_draft_attachment_new_for_part (GMIME_OBJECT (part)));
    }
  return draft;
}
