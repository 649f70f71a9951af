/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-imap-parser.h"

/*
 * libFuzzer target for the IMAP response parser. The input is fed twice: whole, and cut
 * where its first byte says, with small limits and a literal sink, so that framing,
 * streaming and every limit are exercised. Whatever parses is printed, which walks every
 * field of every structure.
 */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static gpointer
sink_begin (const LbImapLiteralInfo *info, gpointer user_data, GError **error)
{
  return GUINT_TO_POINTER (1);
}

static gboolean
sink_write (gpointer handle, const guint8 *data, gsize len, gpointer user_data, GError **error)
{
  return TRUE;
}

static gboolean
sink_end (gpointer handle, gpointer user_data, GError **error)
{
  return TRUE;
}

static void
sink_abort (gpointer handle, gpointer user_data)
{
}

static const LbImapLiteralSink sink = { sink_begin, sink_write, sink_end, sink_abort };

static void
drain (LbImapParser *parser)
{
  LbImapResponse *r;

  while ((r = lb_imap_parser_pop (parser)) != NULL)
    {
      g_free (lb_imap_response_to_string (r));
      if (r->kind == LB_IMAP_RESPONSE_UNTAGGED && r->data == LB_IMAP_DATA_LIST)
        {
          char *name = lb_imap_utf7_decode (r->list->mailbox, r->list->mailbox_len, NULL);

          if (name != NULL)
            g_free (lb_imap_utf7_encode (name));
          g_free (name);
        }
      lb_imap_response_free (r);
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  LbImapParserLimits limits;
  LbImapParser *parser;
  gsize cut;

  parser = lb_imap_parser_new (NULL);
  lb_imap_parser_feed (parser, data, size, NULL);
  drain (parser);
  lb_imap_parser_free (parser);

  lb_imap_parser_default_limits (&limits);
  limits.max_line = 4096;
  limits.max_literal = 1024;
  limits.stream_threshold = 16;
  limits.max_depth = 8;
  parser = lb_imap_parser_new (&limits);
  lb_imap_parser_set_sink (parser, &sink, NULL);
  cut = size > 0 ? data[0] % (size + 1) : 0;
  if (lb_imap_parser_feed (parser, data, cut, NULL))
    {
      drain (parser);
      lb_imap_parser_feed (parser, data + cut, size - cut, NULL);
    }
  drain (parser);
  lb_imap_parser_free (parser);

  {
    char *name = lb_imap_utf7_decode ((const char *) data, size, NULL);

    g_free (name);
  }
  return 0;
}
