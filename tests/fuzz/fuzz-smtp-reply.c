/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include "lb-smtp-reply.h"

/* libFuzzer target for the SMTP reply parser and EHLO reading: the input is fed whole
 * and cut where its first byte says; every reply is printed and read as an EHLO. */

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
  return 0;
}
