/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-mime.h"
#include "lb-mime-build.h"
#include "lb-mime-envelope.h"
#include "lb-mime-html.h"
#include "lb-mime-quote.h"
#include "lb-mime-summary.h"

/* libFuzzer target for the mime layer: the input is parsed as a message and summarised
 * (and its envelope read as `sendmail -t` would)
 * with text extraction (every string must be valid UTF-8, the preview and the text
 * within their limits), replied to and forwarded, the reply built and written; the
 * input is also reduced as HTML. */

#define TEXT_LIMIT 4096

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
check_utf8 (const char *s)
{
  if (s != NULL && !g_utf8_validate (s, -1, NULL))
    __builtin_trap ();
}

static void
check_addresses (GPtrArray *list)
{
  for (guint i = 0; i < list->len; i++)
    {
      LbMimeAddress *a = list->pdata[i];

      check_utf8 (a->name);
      check_utf8 (a->address);
    }
}

static void
check_summary (const LbMimeSummary *s)
{
  if (s->from != NULL)
    {
      check_utf8 (s->from->name);
      check_utf8 (s->from->address);
    }
  check_addresses (s->to);
  check_addresses (s->cc);
  check_addresses (s->bcc);
  check_addresses (s->reply_to);
  check_utf8 (s->subject);
  check_utf8 (s->message_id);
  check_utf8 (s->in_reply_to);
  for (guint i = 0; i < s->references->len; i++)
    check_utf8 (s->references->pdata[i]);
  check_utf8 (s->preview);
  if (g_utf8_strlen (s->preview, -1) > LB_MIME_PREVIEW_CHARS)
    __builtin_trap ();
  check_utf8 (s->body_text);
  if (s->body_text == NULL || strlen (s->body_text) > TEXT_LIMIT)
    __builtin_trap ();
  for (guint i = 0; i < s->attachments->len; i++)
    {
      LbMimeAttachment *a = s->attachments->pdata[i];

      check_utf8 (a->filename);
      check_utf8 (a->content_type);
      check_utf8 (a->content_id);
      if (a->part_id == NULL)
        __builtin_trap ();
    }
}

static void
reply_and_write (GMimeMessage *message)
{
  g_autoptr(LbMimeDraft) reply = lb_mime_reply_draft (message, "me@example.org", TRUE);
  g_autoptr(LbMimeDraft) forward = lb_mime_forward_draft (message, TRUE);
  g_autoptr(GMimeMessage) built = lb_mime_build (reply, NULL);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  check_utf8 (reply->subject);
  check_utf8 (reply->body_text);
  check_utf8 (forward->body_text);
  if (built == NULL || !lb_mime_write_to_stream (built, out, NULL))
    __builtin_trap ();
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(GMimeMessage) message = lb_mime_parse_bytes (data, size, NULL);
  g_autofree char *text = lb_mime_html_to_text ((const char *) data, size);
  g_autoptr(GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr(LbMimeEnvelope) envelope = lb_mime_envelope_from_message (bytes, NULL);

  /* The envelope: valid addresses, and only bytes removed (never added). */
  if (envelope != NULL)
    {
      if (g_bytes_get_size (envelope->message) > size || envelope->recipients[0] == NULL)
        __builtin_trap ();
      check_utf8 (envelope->sender);
      for (guint i = 0; envelope->recipients[i] != NULL; i++)
        check_utf8 (envelope->recipients[i]);
    }

  check_utf8 (text);
  if (message != NULL)
    {
      g_autoptr(LbMimeSummary) summary = lb_mime_summarise_full (message, LB_MIME_SUMMARY_TEXT,
                                                                 TEXT_LIMIT);

      check_summary (summary);
      reply_and_write (message);
    }
  return 0;
}
