/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-mime"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-mime-build.h"
#include "lb-mime-output-stream.h"

/*
 * Outgoing messages. The structure is the usual one: text/plain, or
 * multipart/alternative (plain, html) when there is HTML (RFC 2046 §5.1.4: the plainest
 * first), inside multipart/mixed when there are attachments. Text is UTF-8 (us-ascii
 * when it is ASCII), quoted-printable when it is not 7-bit clean or has lines over 998
 * octets (RFC 5322 §2.1.1), or 8bit when the draft allows it (GMime picks between
 * quoted-printable and base64 by size); attachments are base64 unless they are 7-bit
 * text. Header text goes out as RFC 2047 encoded words and
 * filenames as RFC 2231 parameters, both done by GMime when the message is written.
 */

#define STREAM_CHUNK 65536

LbMimeDraftAttachment *
lb_mime_draft_attachment_new_for_file (GFile      *file,
                                       const char *filename,
                                       const char *content_type)
{
  LbMimeDraftAttachment *self;

  g_return_val_if_fail (G_IS_FILE (file), NULL);

  self = g_new0 (LbMimeDraftAttachment, 1);
  self->file = g_object_ref (file);
  self->filename = g_strdup (filename);
  self->content_type = g_strdup (content_type);
  return self;
}

LbMimeDraftAttachment *
lb_mime_draft_attachment_new_for_stream (GInputStream *stream,
                                         const char   *filename,
                                         const char   *content_type)
{
  LbMimeDraftAttachment *self;

  g_return_val_if_fail (G_IS_INPUT_STREAM (stream), NULL);

  self = g_new0 (LbMimeDraftAttachment, 1);
  self->stream = g_object_ref (stream);
  self->filename = g_strdup (filename);
  self->content_type = g_strdup (content_type);
  return self;
}

LbMimeDraftAttachment *
lb_mime_draft_attachment_new_for_part (GMimeObject *part)
{
  LbMimeDraftAttachment *self;

  g_return_val_if_fail (GMIME_IS_OBJECT (part), NULL);

  self = g_new0 (LbMimeDraftAttachment, 1);
  self->part = g_object_ref (part);
  return self;
}

void
lb_mime_draft_attachment_free (LbMimeDraftAttachment *attachment)
{
  if (attachment == NULL)
    return;
  g_clear_object (&attachment->file);
  g_clear_object (&attachment->stream);
  g_clear_object (&attachment->part);
  g_free (attachment->filename);
  g_free (attachment->content_type);
  g_free (attachment);
}

LbMimeDraft *
lb_mime_draft_new (void)
{
  LbMimeDraft *self = g_new0 (LbMimeDraft, 1);

  self->to = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_mime_address_free);
  self->cc = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_mime_address_free);
  self->bcc = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_mime_address_free);
  self->reply_to = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_mime_address_free);
  self->references = g_ptr_array_new_with_free_func (g_free);
  self->attachments =
    g_ptr_array_new_with_free_func ((GDestroyNotify) lb_mime_draft_attachment_free);
  return self;
}

void
lb_mime_draft_free (LbMimeDraft *draft)
{
  if (draft == NULL)
    return;
  lb_mime_address_free (draft->from);
  g_ptr_array_unref (draft->to);
  g_ptr_array_unref (draft->cc);
  g_ptr_array_unref (draft->bcc);
  g_ptr_array_unref (draft->reply_to);
  g_free (draft->subject);
  g_free (draft->in_reply_to);
  g_ptr_array_unref (draft->references);
  g_free (draft->body_text);
  g_free (draft->body_html);
  g_ptr_array_unref (draft->attachments);
  g_free (draft);
}

static void
add_mailboxes (GMimeMessage    *message,
               GMimeAddressType type,
               GPtrArray       *list)
{
  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      const LbMimeAddress *a = list->pdata[i];

      if (a->address != NULL && *a->address != '\0')
        g_mime_message_add_mailbox (message, type, a->name, a->address);
    }
}

static GMimeObject *
text_part (const char *subtype,
           const char *text,
           gboolean    allow_8bit)
{
  g_autofree char *valid = g_utf8_make_valid (text != NULL ? text : "", -1);
  gsize len = strlen (valid);
  GMimeTextPart *part = g_mime_text_part_new_with_subtype (subtype);
  g_autoptr(GMimeStream) stream = g_mime_stream_mem_new_with_buffer (valid, len);
  g_autoptr(GMimeDataWrapper) content =
    g_mime_data_wrapper_new_with_stream (stream, GMIME_CONTENT_ENCODING_DEFAULT);

  g_mime_text_part_set_charset (part, g_mime_utils_text_is_8bit ((const guchar *) valid, len)
                                        ? "utf-8"
                                        : "us-ascii");
  g_mime_part_set_content (GMIME_PART (part), content);
  g_mime_part_set_content_encoding (
    GMIME_PART (part),
    g_mime_part_get_best_content_encoding (GMIME_PART (part),
                                           allow_8bit ? GMIME_ENCODING_CONSTRAINT_8BIT
                                                      : GMIME_ENCODING_CONSTRAINT_7BIT));
  return GMIME_OBJECT (part);
}

static gboolean
read_all (GInputStream *stream,
          GByteArray   *out,
          GError      **error)
{
  for (;;)
    {
      gsize old = out->len;
      gssize n;

      g_byte_array_set_size (out, old + STREAM_CHUNK);
      n = g_input_stream_read (stream, out->data + old, STREAM_CHUNK, NULL, error);
      g_byte_array_set_size (out, old + MAX (n, 0));
      if (n < 0)
        return FALSE;
      if (n == 0)
        return TRUE;
    }
}

static char *
guess_type (const char   *filename,
            const guint8 *data,
            gsize         len)
{
  g_autofree char *guessed = g_content_type_guess (filename, data, len, NULL);
  char *mime = guessed != NULL ? g_content_type_get_mime_type (guessed) : NULL;

  return mime != NULL ? mime : g_strdup ("application/octet-stream");
}

static GMimeObject *
attachment_part (const LbMimeDraftAttachment *attachment,
                 GError                     **error)
{
  g_autofree char *filename = g_strdup (attachment->filename);
  g_autofree char *type = g_strdup (attachment->content_type);
  g_autoptr(GMimeStream) stream = NULL;
  g_autoptr(GMimeDataWrapper) content = NULL;
  g_autoptr(GMimeContentType) content_type = NULL;
  GMimePart *part;
  GError *local_error = NULL;

  if (attachment->part != NULL)
    return g_object_ref (attachment->part);

  if (attachment->file != NULL)
    {
      g_autoptr(GFileInfo) info = g_file_query_info (attachment->file,
                                                     G_FILE_ATTRIBUTE_STANDARD_CONTENT_TYPE ","
                                                     G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                                     G_FILE_QUERY_INFO_NONE, NULL, &local_error);
      g_autofree char *path = g_file_get_parse_name (attachment->file);

      if (info == NULL || g_file_info_get_file_type (info) != G_FILE_TYPE_REGULAR)
        {
          g_set_error (error, LB_MIME_ERROR, LB_MIME_ERROR_SOURCE,
                       _("Could not attach “%s”: %s"), path,
                       local_error != NULL ? local_error->message : _("Not a regular file"));
          g_clear_error (&local_error);
          return NULL;
        }
      if (filename == NULL)
        filename = g_file_get_basename (attachment->file);
      if (type == NULL && g_file_info_get_content_type (info) != NULL)
        type = g_content_type_get_mime_type (g_file_info_get_content_type (info));
      /* The stream takes the reference it is given (it unrefs the file when it is
       * finalized, as its owner) but does not take one itself. */
      stream = g_mime_stream_gio_new (g_object_ref (attachment->file));
    }
  else
    {
      GByteArray *bytes = g_byte_array_new ();

      if (!read_all (attachment->stream, bytes, &local_error))
        {
          g_set_error (error, LB_MIME_ERROR, LB_MIME_ERROR_SOURCE,
                       _("Could not attach “%s”: %s"),
                       filename != NULL ? filename : "", local_error->message);
          g_error_free (local_error);
          g_byte_array_unref (bytes);
          return NULL;
        }
      if (type == NULL)
        type = guess_type (filename, bytes->data, bytes->len);
      stream = g_mime_stream_mem_new_with_byte_array (bytes);
    }
  if (type == NULL)
    type = guess_type (filename, NULL, 0);

  content_type = g_mime_content_type_parse (lb_mime_parser_options (), type);
  part = g_mime_part_new_with_type (g_mime_content_type_get_media_type (content_type),
                                    g_mime_content_type_get_media_subtype (content_type));
  g_mime_object_set_disposition (GMIME_OBJECT (part), GMIME_DISPOSITION_ATTACHMENT);
  if (filename != NULL && *filename != '\0')
    g_mime_part_set_filename (part, filename);
  content = g_mime_data_wrapper_new_with_stream (stream, GMIME_CONTENT_ENCODING_DEFAULT);
  g_mime_part_set_content (part, content);
  /* 7-bit text stays readable (and gets CRLF line ends, its canonical form, RFC 2046
   * §4.1.1); everything else is base64, so its bytes come back exactly. */
  if (g_mime_content_type_is_type (content_type, "text", "*") &&
      g_mime_part_get_best_content_encoding (part, GMIME_ENCODING_CONSTRAINT_7BIT) ==
        GMIME_CONTENT_ENCODING_7BIT)
    g_mime_part_set_content_encoding (part, GMIME_CONTENT_ENCODING_7BIT);
  else
    g_mime_part_set_content_encoding (part, GMIME_CONTENT_ENCODING_BASE64);
  return GMIME_OBJECT (part);
}

static char *
angle_id (const char *id)
{
  return g_strdup_printf ("<%s>", id);
}

/**
 * lb_mime_build:
 * @draft: the message to be; needs a From address
 * @error: %LB_MIME_ERROR_INVALID for a draft without sender,
 *   %LB_MIME_ERROR_SOURCE when an attachment cannot be read
 *
 * Builds the message with Date (now), a new Message-ID in the sender's domain and
 * MIME-Version. Attachments from files are read when the message is written (the file
 * is checked now); those from streams are read now, whole.
 *
 * Returns: (transfer full): the message
 */
GMimeMessage *
lb_mime_build (const LbMimeDraft *draft,
               GError           **error)
{
  g_autoptr(GMimeMessage) message = NULL;
  g_autoptr(GMimeObject) body = NULL;
  g_autoptr(GDateTime) now = NULL;
  g_autofree char *message_id = NULL;
  const char *at;

  g_return_val_if_fail (draft != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  lb_mime_init ();
  if (draft->from == NULL || draft->from->address == NULL || *draft->from->address == '\0')
    {
      g_set_error_literal (error, LB_MIME_ERROR, LB_MIME_ERROR_INVALID,
                           _("The message has no sender address"));
      return NULL;
    }

  message = g_mime_message_new (TRUE);
  g_mime_message_add_mailbox (message, GMIME_ADDRESS_TYPE_FROM, draft->from->name,
                              draft->from->address);
  add_mailboxes (message, GMIME_ADDRESS_TYPE_REPLY_TO, draft->reply_to);
  add_mailboxes (message, GMIME_ADDRESS_TYPE_TO, draft->to);
  add_mailboxes (message, GMIME_ADDRESS_TYPE_CC, draft->cc);
  add_mailboxes (message, GMIME_ADDRESS_TYPE_BCC, draft->bcc);
  g_mime_message_set_subject (message, draft->subject != NULL ? draft->subject : "", "utf-8");

  now = g_date_time_new_now_local ();
  g_mime_message_set_date (message, now);
  at = strrchr (draft->from->address, '@');
  message_id = g_mime_utils_generate_message_id (at != NULL && at[1] != '\0'
                                                   ? at + 1
                                                   : "localhost.localdomain");
  g_mime_message_set_message_id (message, message_id);

  if (draft->in_reply_to != NULL && *draft->in_reply_to != '\0')
    {
      g_autofree char *value = angle_id (draft->in_reply_to);

      g_mime_object_set_header (GMIME_OBJECT (message), "In-Reply-To", value, NULL);
    }
  if (draft->references != NULL && draft->references->len > 0)
    {
      g_autoptr(GString) value = g_string_new (NULL);

      for (guint i = 0; i < draft->references->len; i++)
        g_string_append_printf (value, "%s<%s>", i > 0 ? " " : "",
                                (const char *) draft->references->pdata[i]);
      g_mime_object_set_header (GMIME_OBJECT (message), "References", value->str, NULL);
    }
  g_mime_object_set_header (GMIME_OBJECT (message), "MIME-Version", "1.0", NULL);

  body = text_part ("plain", draft->body_text, draft->allow_8bit);
  if (draft->body_html != NULL)
    {
      GMimeMultipart *alternative = g_mime_multipart_new_with_subtype ("alternative");
      g_autoptr(GMimeObject) html = text_part ("html", draft->body_html, draft->allow_8bit);

      g_mime_multipart_add (alternative, body);
      g_mime_multipart_add (alternative, html);
      g_object_unref (body);
      body = GMIME_OBJECT (alternative);
    }
  if (draft->attachments != NULL && draft->attachments->len > 0)
    {
      g_autoptr(GMimeMultipart) mixed = g_mime_multipart_new_with_subtype ("mixed");

      g_mime_multipart_add (mixed, body);
      for (guint i = 0; i < draft->attachments->len; i++)
        {
          g_autoptr(GMimeObject) part = attachment_part (draft->attachments->pdata[i], error);

          if (part == NULL)
            return NULL;
          g_mime_multipart_add (mixed, part);
        }
      g_object_unref (body);
      body = GMIME_OBJECT (g_steal_pointer (&mixed));
    }
  g_mime_message_set_mime_part (message, body);
  return g_steal_pointer (&message);
}

/**
 * lb_mime_write_to_stream:
 * @message: the message
 * @stream: written to with blocking writes (call from a worker thread); not closed
 * @error: %LB_MIME_ERROR_WRITE with the stream's error, %LB_MIME_ERROR_SOURCE when an
 *   attachment file could not be read
 *
 * Writes the message as it goes on the wire: every line ended by CRLF. Attachments are
 * streamed, never whole in memory.
 *
 * Returns: whether all of it was written
 */
gboolean
lb_mime_write_to_stream (GMimeMessage  *message,
                         GOutputStream *stream,
                         GError       **error)
{
  g_autoptr(GMimeStream) out = NULL;
  g_autoptr(GMimeStream) buffered = NULL;
  const GError *write_error;
  gboolean ok;

  g_return_val_if_fail (GMIME_IS_MESSAGE (message), FALSE);
  g_return_val_if_fail (G_IS_OUTPUT_STREAM (stream), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  lb_mime_init ();
  out = lb_mime_output_stream_new (stream, NULL);
  buffered = g_mime_stream_buffer_new (out, GMIME_STREAM_BUFFER_BLOCK_WRITE);
  ok = g_mime_object_write_to_stream (GMIME_OBJECT (message), lb_mime_format_options (),
                                      buffered) >= 0;
  ok = g_mime_stream_flush (buffered) == 0 && ok;
  if (ok)
    return TRUE;

  write_error = lb_mime_output_stream_get_error (LB_MIME_OUTPUT_STREAM (out));
  if (write_error != NULL)
    g_set_error (error, LB_MIME_ERROR, LB_MIME_ERROR_WRITE,
                 _("Could not write the message: %s"), write_error->message);
  else
    g_set_error_literal (error, LB_MIME_ERROR, LB_MIME_ERROR_SOURCE,
                         _("Could not read an attachment of the message"));
  return FALSE;
}

static gsize
count_8bit (const char *text,
            gsize       len)
{
  gsize n = 0;

  for (gsize i = 0; i < len; i++)
    if ((guchar) text[i] >= 0x80)
      n++;
  return n;
}

/**
 * lb_mime_message_get_transport:
 * @message: a message, built or parsed
 *
 * What sending @message needs of the server, found by writing it once through GMime's
 * encoding filter into nothing (attachment files are read).
 *
 * Returns: the flags (see LbMimeTransport)
 */
LbMimeTransport
lb_mime_message_get_transport (GMimeMessage *message)
{
  LbMimeTransport transport = LB_MIME_TRANSPORT_7BIT;
  g_autofree char *headers = NULL;
  g_autoptr(GMimeStream) null = NULL;
  g_autoptr(GMimeStream) filtered = NULL;
  g_autoptr(GMimeFilter) best = NULL;
  gsize header_8bit;

  g_return_val_if_fail (GMIME_IS_MESSAGE (message), LB_MIME_TRANSPORT_7BIT);

  lb_mime_init ();
  headers = g_mime_object_get_headers (GMIME_OBJECT (message), lb_mime_format_options ());
  header_8bit = headers != NULL ? count_8bit (headers, strlen (headers)) : 0;
  if (header_8bit > 0)
    transport |= LB_MIME_TRANSPORT_UTF8;

  null = g_mime_stream_null_new ();
  filtered = g_mime_stream_filter_new (null);
  best = g_mime_filter_best_new (GMIME_FILTER_BEST_ENCODING);
  g_mime_stream_filter_add (GMIME_STREAM_FILTER (filtered), best);
  g_mime_object_write_to_stream (GMIME_OBJECT (message), lb_mime_format_options (), filtered);
  g_mime_stream_flush (filtered);
  if (GMIME_FILTER_BEST (best)->count8 > header_8bit || GMIME_FILTER_BEST (best)->count0 > 0)
    transport |= LB_MIME_TRANSPORT_8BIT;
  return transport;
}
