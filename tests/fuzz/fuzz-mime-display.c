/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-mime.h"
#include "lb-mime-display.h"

/* libFuzzer target for what the reading pane gets from a message: the display (body
 * valid UTF-8 and within its limit, exactly one of HTML and text), every listed
 * attachment found by its section and written decoded, every cid: resource; and the
 * quote splitter on the input itself and on the body: blocks that cover the text in
 * order, quoted and unquoted in turn, each with its lines. */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
check_blocks (const char *text)
{
  g_autoptr(GArray) blocks = lb_mime_text_split_quotes (text);
  gsize at = 0;

  for (guint i = 0; i < blocks->len; i++)
    {
      LbMimeTextBlock *b = &g_array_index (blocks, LbMimeTextBlock, i);

      if (b->start != at || b->end <= b->start || b->lines == 0)
        __builtin_trap ();
      if (i > 0 && g_array_index (blocks, LbMimeTextBlock, i - 1).quoted == b->quoted)
        __builtin_trap ();
      at = b->end;
    }
  if (at != strlen (text))
    __builtin_trap ();
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr(GMimeMessage) message = NULL;

  lb_mime_init ();
  check_blocks (text);
  message = lb_mime_parse_bytes (data, size, NULL);
  if (message != NULL)
    {
      g_autoptr(LbMimeDisplay) display = lb_mime_display_new (message);
      const char *body = display->html != NULL ? display->html : display->text;
      GHashTableIter iter;
      gpointer key, value;

      if ((display->html == NULL) == (display->text == NULL) ||
          !g_utf8_validate (body, -1, NULL) || strlen (body) > 2 * LB_MIME_DISPLAY_TEXT_LIMIT)
        __builtin_trap ();
      check_blocks (body);
      for (guint i = 0; i < display->attachments->len; i++)
        {
          LbMimeAttachment *attachment = display->attachments->pdata[i];
          GMimeObject *part = lb_mime_message_find_part (message, attachment->part_id);
          g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

          if (part == NULL)
            __builtin_trap ();
          lb_mime_object_write_decoded (part, out, NULL, NULL);
        }
      g_hash_table_iter_init (&iter, display->resources);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (!g_utf8_validate (key, -1, NULL) || ((LbMimeResource *) value)->data == NULL)
          __builtin_trap ();
    }
  return 0;
}
