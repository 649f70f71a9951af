/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-mime"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-mime-display.h"

/*
 * The message as the reading pane shows it. Unlike the summary (which indexes the
 * plain text of a multipart/alternative), the display takes the richest branch a
 * reader can show (RFC 2046 §5.1.4: the last one it understands), so HTML when there
 * is HTML. The parts of a multipart/related after its root (RFC 2387) are resources the
 * HTML refers to by cid: (RFC 2392), decoded here so that the view can answer for them
 * without going back to the parser; the other leaves are attachments.
 */

#define MAX_DEPTH 64

typedef struct
{
  GPtrArray *bodies;       /* GMimePart* (borrowed), in order */
  GHashTable *resources;   /* content id → LbMimeResource* */
  gsize resource_bytes;
} Walk;

void
lb_mime_resource_free (LbMimeResource *resource)
{
  if (resource == NULL)
    return;
  g_free (resource->content_type);
  g_clear_pointer (&resource->data, g_bytes_unref);
  g_free (resource);
}

void
lb_mime_display_free (LbMimeDisplay *display)
{
  if (display == NULL)
    return;
  g_free (display->html);
  g_free (display->text);
  g_clear_pointer (&display->attachments, g_ptr_array_unref);
  g_clear_pointer (&display->resources, g_hash_table_unref);
  g_free (display);
}

static gboolean
is_type (GMimeObject *object,
         const char  *type,
         const char  *subtype)
{
  GMimeContentType *ct = g_mime_object_get_content_type (object);

  return ct != NULL && g_mime_content_type_is_type (ct, type, subtype);
}

static gboolean
is_body (GMimeObject *object)
{
  const char *disposition;

  if (!GMIME_IS_PART (object))
    return FALSE;
  disposition = g_mime_object_get_disposition (object);
  if (disposition != NULL && g_ascii_strcasecmp (disposition, "inline") != 0)
    return FALSE;
  if (!is_type (object, "text", "plain") && !is_type (object, "text", "html"))
    return FALSE;
  return g_mime_part_get_filename (GMIME_PART (object)) == NULL;
}

static gboolean
shows_text (GMimeObject *object,
            guint        depth)
{
  if (is_body (object))
    return TRUE;
  if (GMIME_IS_MULTIPART (object) && depth < MAX_DEPTH &&
      !is_type (object, "multipart", "encrypted"))
    {
      int n = g_mime_multipart_get_count (GMIME_MULTIPART (object));

      for (int i = 0; i < n; i++)
        if (shows_text (g_mime_multipart_get_part (GMIME_MULTIPART (object), i), depth + 1))
          return TRUE;
    }
  return FALSE;
}

static char *
content_type_of (GMimeObject *object)
{
  GMimeContentType *ct = g_mime_object_get_content_type (object);
  g_autofree char *mime = ct != NULL ? g_mime_content_type_get_mime_type (ct) : NULL;
  g_autofree char *lower = g_ascii_strdown (mime != NULL ? mime : "application/octet-stream", -1);

  return g_utf8_make_valid (lower, -1);
}

static void
add_resource (Walk        *walk,
              GMimeObject *object)
{
  const char *content_id = g_mime_object_get_content_id (object);
  g_autoptr(GOutputStream) out = NULL;
  LbMimeResource *resource;

  if (content_id == NULL || !GMIME_IS_PART (object) ||
      g_hash_table_contains (walk->resources, content_id) ||
      walk->resource_bytes >= LB_MIME_DISPLAY_RESOURCE_LIMIT)
    return;
  out = g_memory_output_stream_new_resizable ();
  if (!lb_mime_object_write_decoded (object, out, NULL, NULL) ||
      !g_output_stream_close (out, NULL, NULL))
    return;
  resource = g_new0 (LbMimeResource, 1);
  resource->content_type = content_type_of (object);
  resource->data = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
  walk->resource_bytes += g_bytes_get_size (resource->data);
  g_hash_table_insert (walk->resources, g_utf8_make_valid (content_id, -1), resource);
}

static void
walk_object (Walk        *walk,
             GMimeObject *object,
             guint        depth)
{
  GMimeMultipart *multipart;
  int n;

  if (object == NULL || depth > MAX_DEPTH)
    return;
  if (!GMIME_IS_MULTIPART (object))
    {
      if (is_body (object))
        g_ptr_array_add (walk->bodies, object);
      else if (g_mime_object_get_content_id (object) != NULL)
        /* Any part with a Content-ID can be referred to (RFC 2392), not only those of
         * a multipart/related. */
        add_resource (walk, object);
      return;
    }

  multipart = GMIME_MULTIPART (object);
  n = g_mime_multipart_get_count (multipart);
  if (is_type (object, "multipart", "encrypted"))
    return;
  if (is_type (object, "multipart", "signed"))
    {
      walk_object (walk, n > 0 ? g_mime_multipart_get_part (multipart, 0) : NULL, depth + 1);
      return;
    }
  if (is_type (object, "multipart", "alternative"))
    {
      int chosen = -1;

      for (int i = n - 1; i >= 0 && chosen < 0; i--)
        if (shows_text (g_mime_multipart_get_part (multipart, i), 0))
          chosen = i;
      if (chosen >= 0)
        walk_object (walk, g_mime_multipart_get_part (multipart, chosen), depth + 1);
      return;
    }
  for (int i = 0; i < n; i++)
    {
      GMimeObject *child = g_mime_multipart_get_part (multipart, i);

      if (is_type (object, "multipart", "related") && i > 0 && !GMIME_IS_MULTIPART (child))
        add_resource (walk, child);
      else
        walk_object (walk, child, depth + 1);
    }
}

static gboolean
contains_cid (const char *html,
              const char *content_id)
{
  g_autofree char *needle = NULL;
  g_autofree char *lower_html = NULL;

  if (html == NULL || content_id == NULL)
    return FALSE;
  needle = g_ascii_strdown (content_id, -1);
  lower_html = g_ascii_strdown (html, -1);
  for (const char *p = strstr (lower_html, "cid:"); p != NULL; p = strstr (p + 4, "cid:"))
    if (strncmp (p + 4, needle, strlen (needle)) == 0)
      return TRUE;
  return FALSE;
}

/**
 * lb_mime_display_new:
 * @message: a parsed message
 *
 * The body to show and the attachments to list. Several body parts (a
 * multipart/mixed with text between attachments) are shown one after the other; when
 * any of them is HTML, the plain ones are escaped into it.
 *
 * Returns: (transfer full): the display, never %NULL (a message without any text has
 *   an empty text body)
 */
LbMimeDisplay *
lb_mime_display_new (GMimeMessage *message)
{
  LbMimeDisplay *display = g_new0 (LbMimeDisplay, 1);
  g_autoptr(LbMimeSummary) summary = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  Walk walk = { 0 };
  gboolean any_html = FALSE;
  gsize budget = LB_MIME_DISPLAY_TEXT_LIMIT;

  g_return_val_if_fail (GMIME_IS_MESSAGE (message), NULL);

  walk.bodies = g_ptr_array_new ();
  walk.resources = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) lb_mime_resource_free);
  walk_object (&walk, g_mime_message_get_mime_part (message), 0);

  for (guint i = 0; i < walk.bodies->len; i++)
    any_html |= is_type (walk.bodies->pdata[i], "text", "html");

  for (guint i = 0; i < walk.bodies->len && budget > 0; i++)
    {
      GMimePart *part = walk.bodies->pdata[i];
      gboolean cut = FALSE;
      g_autofree char *text = lb_mime_part_read_text (part, budget, &cut);

      display->truncated |= cut;
      budget -= MIN (budget, strlen (text));
      if (!any_html)
        {
          if (out->len > 0 && text[0] != '\0')
            g_string_append (out, "\n\n");
          g_string_append (out, text);
        }
      else if (is_type (GMIME_OBJECT (part), "text", "html"))
        g_string_append (out, text);
      else
        {
          g_autofree char *escaped = g_markup_escape_text (text, -1);

          g_string_append_printf (out, "<pre style=\"white-space: pre-wrap\">%s</pre>", escaped);
        }
    }
  if (any_html)
    display->html = g_string_free (g_steal_pointer (&out), FALSE);
  else
    display->text = g_string_free (g_steal_pointer (&out), FALSE);

  summary = lb_mime_summarise (message, LB_MIME_SUMMARY_NONE);
  display->attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_mime_attachment_free);
  for (guint i = 0; i < summary->attachments->len; i++)
    {
      LbMimeAttachment *attachment = summary->attachments->pdata[i];

      /* The HTML body's own images are part of the body, not attachments. */
      if (attachment->disposition == LB_MIME_DISPOSITION_INLINE &&
          contains_cid (display->html, attachment->content_id))
        continue;
      /* The text bodies the summary left out of an alternative are shown or replaced. */
      if ((strcmp (attachment->content_type, "text/plain") == 0 ||
           strcmp (attachment->content_type, "text/html") == 0) &&
          attachment->filename == NULL &&
          attachment->disposition == LB_MIME_DISPOSITION_INLINE)
        continue;
      g_ptr_array_add (display->attachments, g_steal_pointer (&summary->attachments->pdata[i]));
    }

  display->resources = g_steal_pointer (&walk.resources);
  g_ptr_array_unref (walk.bodies);
  return display;
}

/**
 * lb_mime_message_find_part:
 * @part_id: an IMAP section number (RFC 3501 §6.4.5) as #LbMimeAttachment has it
 *
 * Returns: (transfer none) (nullable): the part, or %NULL when there is none
 */
GMimeObject *
lb_mime_message_find_part (GMimeMessage *message,
                           const char   *part_id)
{
  g_auto(GStrv) numbers = NULL;
  GMimeObject *object;

  g_return_val_if_fail (GMIME_IS_MESSAGE (message), NULL);
  g_return_val_if_fail (part_id != NULL, NULL);

  if (part_id[0] == '\0')
    return NULL;
  object = g_mime_message_get_mime_part (message);
  numbers = g_strsplit (part_id, ".", 0);
  for (guint i = 0; object != NULL && numbers[i] != NULL; i++)
    {
      guint64 n = 0;

      if (!g_ascii_string_to_unsigned (numbers[i], 10, 1, G_MAXINT, &n, NULL))
        return NULL;
      if (GMIME_IS_MULTIPART (object))
        object = (int) n <= g_mime_multipart_get_count (GMIME_MULTIPART (object))
                   ? g_mime_multipart_get_part (GMIME_MULTIPART (object), (int) n - 1)
                   : NULL;
      else if (n != 1 || i > 0 || numbers[i + 1] != NULL)
        /* A single-part message has only part 1 (and nothing below a leaf here). */
        return NULL;
    }
  return object;
}

/**
 * lb_mime_object_write_decoded:
 *
 * Writes a part's content without its transfer encoding (an attachment as the sender
 * attached it); a message/rfc822 part as the message it holds. Blocks: call it in a
 * worker thread.
 */
gboolean
lb_mime_object_write_decoded (GMimeObject    *object,
                              GOutputStream  *output,
                              GCancellable   *cancellable,
                              GError        **error)
{
  g_autoptr(GMimeStream) source = NULL;
  char buf[16384];

  g_return_val_if_fail (GMIME_IS_OBJECT (object), FALSE);
  g_return_val_if_fail (G_IS_OUTPUT_STREAM (output), FALSE);

  if (GMIME_IS_PART (object))
    {
      GMimeDataWrapper *content = g_mime_part_get_content (GMIME_PART (object));
      GMimeStream *raw = content != NULL ? g_mime_data_wrapper_get_stream (content) : NULL;
      GMimeContentEncoding encoding;

      if (raw == NULL)
        return TRUE;
      g_mime_stream_reset (raw);
      source = g_mime_stream_filter_new (raw);
      encoding = g_mime_data_wrapper_get_encoding (content);
      if (encoding == GMIME_CONTENT_ENCODING_BASE64 ||
          encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
          encoding == GMIME_CONTENT_ENCODING_UUENCODE)
        {
          g_autoptr(GMimeFilter) decoder = g_mime_filter_basic_new (encoding, FALSE);

          g_mime_stream_filter_add (GMIME_STREAM_FILTER (source), decoder);
        }
    }
  else
    {
      source = g_mime_stream_mem_new ();
      if (g_mime_object_write_content_to_stream (object, lb_mime_format_options (), source) < 0)
        {
          g_set_error (error, LB_MIME_ERROR, LB_MIME_ERROR_SOURCE,
                       _("The attachment cannot be read from the message"));
          return FALSE;
        }
      g_mime_stream_reset (source);
    }

  for (;;)
    {
      gssize n = g_mime_stream_read (source, buf, sizeof buf);

      if (n < 0)
        {
          g_set_error (error, LB_MIME_ERROR, LB_MIME_ERROR_SOURCE,
                       _("The attachment cannot be read from the message"));
          return FALSE;
        }
      if (n == 0)
        break;
      if (!g_output_stream_write_all (output, buf, n, NULL, cancellable, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
line_is_quoted (const char *line,
                gsize       len)
{
  gsize i = 0;

  /* RFC 3676 §4.5 puts ">" first; mail clients indent it now and then. */
  while (i < len && i < 4 && line[i] == ' ')
    i++;
  return i < len && line[i] == '>';
}

/**
 * lb_mime_text_split_quotes:
 * @text: plain text, UTF-8
 *
 * Cuts @text into alternating runs of quoted and unquoted lines. Pure; linear in the
 * length of @text.
 *
 * Returns: (transfer full) (element-type LbMimeTextBlock): the blocks, covering all
 *   of @text in order; empty for ""
 */
GArray *
lb_mime_text_split_quotes (const char *text)
{
  GArray *blocks = g_array_new (FALSE, TRUE, sizeof (LbMimeTextBlock));
  const char *p = text;

  g_return_val_if_fail (text != NULL, blocks);

  while (*p != '\0')
    {
      const char *nl = strchr (p, '\n');
      gsize line_len = nl != NULL ? (gsize) (nl - p) : strlen (p);
      gsize next = line_len + (nl != NULL ? 1 : 0);
      gboolean quoted = line_is_quoted (p, line_len);
      LbMimeTextBlock *last = blocks->len > 0
                                ? &g_array_index (blocks, LbMimeTextBlock, blocks->len - 1)
                                : NULL;

      if (last == NULL || last->quoted != quoted)
        {
          LbMimeTextBlock block = { (gsize) (p - text), (gsize) (p - text), 0, quoted };

          g_array_append_val (blocks, block);
          last = &g_array_index (blocks, LbMimeTextBlock, blocks->len - 1);
        }
      last->end += next;
      last->lines++;
      p += next;
    }
  return blocks;
}
