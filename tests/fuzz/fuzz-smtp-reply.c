/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-smtp-data.h"
#include "lb-smtp-reply.h"

/* libFuzzer target for the SMTP reply parser and EHLO reading: the input is fed whole
 * and cut where its first byte says; every reply is printed and read as an EHLO. The same
 * bytes, as a message to send, go through the DATA/BDAT encoder, whose output must be
 * CRLF-only, the same for any cut, and give back the BDAT form once dot-stuffing is
 * undone. */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
drain (LbSmtpReplyParser *parser)
{
  LbSmtpReply *r;

  while ((r = lb_smtp_reply_parser_pop (parser)) != NULL)
    {
      LbSmtpEhlo *ehlo = lb_smtp_ehlo_parse (r, NULL);

      g_free (lb_smtp_reply_dup_text (r));
      lb_smtp_ehlo_free (ehlo);
      lb_smtp_reply_free (r);
    }
}

static GByteArray *
encode (const guint8 *data,
        gsize         size,
        gsize         cut,
        gboolean      dot_stuff)
{
  GByteArray *out = g_byte_array_new ();
  guint state = 0;

  lb_smtp_data_encode (&state, data, cut, dot_stuff, out);
  lb_smtp_data_encode (&state, data + cut, size - cut, dot_stuff, out);
  lb_smtp_data_encode_finish (&state, dot_stuff, out);
  return out;
}

static void
check_encoder (const guint8 *data,
               gsize         size,
               gsize         cut)
{
  GByteArray *stuffed = encode (data, size, cut, TRUE);
  GByteArray *whole = encode (data, size, 0, TRUE);
  GByteArray *bdat = encode (data, size, cut, FALSE);
  GByteArray *unstuffed = g_byte_array_new ();
  gboolean line_start = TRUE;

  if (stuffed->len != whole->len || memcmp (stuffed->data, whole->data, whole->len) != 0)
    __builtin_trap ();
  for (guint i = 0; i < bdat->len; i++)
    if ((bdat->data[i] == '\r') != (i + 1 < bdat->len && bdat->data[i + 1] == '\n') ||
        (bdat->data[i] == '\n') != (i > 0 && bdat->data[i - 1] == '\r'))
      __builtin_trap ();
  if (bdat->len > 0 && (bdat->len < 2 || bdat->data[bdat->len - 1] != '\n'))
    __builtin_trap ();
  /* DATA = BDAT form with dots doubled at line starts, then ".\r\n"; no line of the
   * body may be a lone dot. */
  if (stuffed->len < 3 || memcmp (stuffed->data + stuffed->len - 3, ".\r\n", 3) != 0)
    __builtin_trap ();
  for (guint i = 0; i < stuffed->len - 3; i++)
    {
      if (line_start && stuffed->data[i] == '.')
        {
          if (stuffed->data[i + 1] != '.')
            __builtin_trap ();
          i++;
        }
      g_byte_array_append (unstuffed, stuffed->data + i, 1);
      line_start = stuffed->data[i] == '\n';
    }
  if (unstuffed->len != bdat->len ||
      (bdat->len > 0 && memcmp (unstuffed->data, bdat->data, bdat->len) != 0))
    __builtin_trap ();
  g_byte_array_unref (stuffed);
  g_byte_array_unref (whole);
  g_byte_array_unref (bdat);
  g_byte_array_unref (unstuffed);
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  LbSmtpReplyParser *parser = lb_smtp_reply_parser_new ();
  gsize cut = size > 0 ? data[0] % (size + 1) : 0;

  if (lb_smtp_reply_parser_feed (parser, data, cut, NULL))
    {
      drain (parser);
      lb_smtp_reply_parser_feed (parser, data + cut, size - cut, NULL);
    }
  drain (parser);
  lb_smtp_reply_parser_free (parser);
  check_encoder (data, size, cut);
  return 0;
}
