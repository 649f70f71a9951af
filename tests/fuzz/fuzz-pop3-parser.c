/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include "lb-pop3-parser.h"

/* libFuzzer target for the POP3 response parser: the first byte chooses what each
 * response is expected to be, the rest is fed whole and cut in two. */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static gboolean
sink (const guint8 *data, gsize len, gpointer user_data, GError **error)
{
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  LbPop3Parser *parser = lb_pop3_parser_new ();
  LbPop3Response *r;
  guint8 pattern = size > 0 ? data[0] : 0;
  gsize cut = size > 1 ? data[1] % size : 0;

  for (guint i = 0; i < 24; i++)
    lb_pop3_parser_expect (parser, (LbPop3Expect) (i % 7 == 6 ? LB_POP3_EXPECT_AUTH
                                                   : ((pattern >> (i % 8)) & 1) + (i % 5 == 4)));
  lb_pop3_parser_set_sink (parser, sink, NULL);
  if (lb_pop3_parser_feed (parser, data, cut, NULL))
    lb_pop3_parser_feed (parser, data + cut, size - cut, NULL);
  (void) lb_pop3_parser_is_idle (parser);
  (void) lb_pop3_parser_count_ready (parser);
  while ((r = lb_pop3_parser_pop (parser)) != NULL)
    {
      guint32 n;
      guint64 s;
      char *uid = NULL;

      if (r->text != NULL)
        {
          lb_pop3_parse_scan_line (r->text, &n, &s);
          if (lb_pop3_parse_uidl_line (r->text, &n, &uid))
            g_free (uid);
        }
      lb_pop3_response_free (r);
    }
  lb_pop3_parser_free (parser);
  return 0;
}
