/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-mime"

#include "config.h"

#include <string.h>

#include "lb-mime.h"
#include "lb-mime-html.h"
#include "lb-mime-summary.h"

/*
 * What the store keeps of a message: envelope, thread headers, a preview, the list of
 * attachments and, for the search index, its text.
 *
 * Which parts are text and which are attachments:
 *
 *  - A text/plain or text/html leaf without a filename and not disposition
 *    "attachment" is body text. Of a multipart/alternative only one branch is read: the
 *    first text/plain child, else the last child (RFC 2046 §5.1.4: the richest) that
 *    holds text; the other branches' text parts are neither text nor attachments.
 *  - Every other leaf, and every message/rfc822 part (not descended into: its text is
 *    another message's), is listed in attachments.
 *  - has_attachment is set by any listed part except the resources of a
 *    multipart/related (its parts after the root that carry a Content-ID or
 *    Content-Location and are not disposition "attachment": the inline images an HTML
 *    body refers to by cid:).
 *  - The signature of a multipart/signed and the contents of a multipart/encrypted are
 *    structure, not attachments, and are left out.
 */

#define PREVIEW_SOURCE_BYTES (64 * 1024)
#define HTML_SOURCE_FACTOR 4

typedef struct
{
  GMimePart *part; /* borrowed from the message */
  gboolean html;
} TextRef;

typedef struct
{
  gboolean want_attachments;
  GPtrArray *texts;       /* TextRef* */
  GPtrArray *attachments; /* LbMimeAttachment* */
  GPtrArray *objects;     /* GMimeObject*, the parts that count as attachments, or NULL */
  gboolean has_attachment;
} Walk;

LbMimeAddress *
lb_mime_address_new (const char *name,
                     const char *address)
{
  LbMimeAddress *self = g_new0 (LbMimeAddress, 1);

  self->name = name != NULL && *name != '\0' ? g_strdup (name) : NULL;
  self->address = g_strdup (address != NULL ? address : "");
  return self;
}

LbMimeAddress *
lb_mime_address_copy (const LbMimeAddress *address)
{
  g_return_val_if_fail (address != NULL, NULL);
  return lb_mime_address_new (address->name, address->address);
}

void
lb_mime_address_free (LbMimeAddress *address)
{
  if (address == NULL)
    return;
  g_free (address->name);
  g_free (address->address);
  g_free (address);
}

void
lb_mime_attachment_free (LbMimeAttachment *attachment)
{
  if (attachment == NULL)
    return;
  g_free (attachment->filename);
  g_free (attachment->content_type);
  g_free (attachment->part_id);
  g_free (attachment->content_id);
  g_free (attachment);
}

void
lb_mime_summary_free (LbMimeSummary *summary)
{
  if (summary == NULL)
    return;
  lb_mime_address_free (summary->from);
  g_ptr_array_unref (summary->to);
  g_ptr_array_unref (summary->cc);
  g_ptr_array_unref (summary->bcc);
  g_ptr_array_unref (summary->reply_to);
  g_free (summary->subject);
  g_free (summary->message_id);
  g_free (summary->in_reply_to);
  g_ptr_array_unref (summary->references);
  g_free (summary->preview);
  g_ptr_array_unref (summary->attachments);
  g_free (summary->body_text);
  g_free (summary);
}

static void
add_addresses (GPtrArray           *out,
               InternetAddressList *list,
               guint                depth)
{
  int n = list != NULL ? internet_address_list_length (list) : 0;

  for (int i = 0; i < n; i++)
    {
      InternetAddress *ia = internet_address_list_get_address (list, i);

      if (INTERNET_ADDRESS_IS_MAILBOX (ia))
        {
          const char *name = internet_address_get_name (ia);
          const char *addr = internet_address_mailbox_get_addr (INTERNET_ADDRESS_MAILBOX (ia));
          g_autofree char *valid_name = name != NULL ? g_utf8_make_valid (name, -1) : NULL;
          g_autofree char *valid_addr = addr != NULL ? g_utf8_make_valid (addr, -1) : NULL;

          g_ptr_array_add (out, lb_mime_address_new (valid_name, valid_addr));
        }
      else if (INTERNET_ADDRESS_IS_GROUP (ia) && depth < 8)
        add_addresses (out, internet_address_group_get_members (INTERNET_ADDRESS_GROUP (ia)),
                       depth + 1);
    }
}

/**
 * lb_mime_address_list_from_gmime:
 * @list: (nullable): as GMime parsed it, names already RFC 2047 decoded
 *
 * Returns: (transfer container): LbMimeAddress*, the members of groups in their place
 */
GPtrArray *
lb_mime_address_list_from_gmime (InternetAddressList *list)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_mime_address_free);

  add_addresses (out, list, 0);
  return out;
}

static char *
content_type_string (GMimeObject *object)
{
  GMimeContentType *ct = g_mime_object_get_content_type (object);
  const char *type = ct != NULL ? g_mime_content_type_get_media_type (ct) : NULL;
  const char *subtype = ct != NULL ? g_mime_content_type_get_media_subtype (ct) : NULL;
  g_autofree char *joined = g_strdup_printf ("%s/%s", type != NULL ? type : "application",
                                             subtype != NULL ? subtype : "octet-stream");
  g_autofree char *lower = g_ascii_strdown (joined, -1);

  return g_utf8_make_valid (lower, -1);
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
disposition_is_attachment (GMimeObject *object)
{
  const char *disposition = g_mime_object_get_disposition (object);

  /* RFC 2183 §2.8: an unknown disposition is treated as "attachment". */
  return disposition != NULL && g_ascii_strcasecmp (disposition, "inline") != 0;
}

/* Without directories (RFC 2183 §2.3 asks receivers to drop them), valid UTF-8. */
static char *
clean_filename (const char *filename)
{
  const char *base;

  if (filename == NULL)
    return NULL;
  base = filename;
  for (const char *p = filename; *p != '\0'; p++)
    if (*p == '/' || *p == '\\')
      base = p + 1;
  if (*base == '\0')
    return NULL;
  return g_utf8_make_valid (base, -1);
}

static char *
object_filename (GMimeObject *object)
{
  const char *name;

  if (GMIME_IS_PART (object))
    name = g_mime_part_get_filename (GMIME_PART (object));
  else
    {
      name = g_mime_object_get_content_disposition_parameter (object, "filename");
      if (name == NULL)
        name = g_mime_object_get_content_type_parameter (object, "name");
    }
  return clean_filename (name);
}

static gboolean
is_body_text (GMimeObject *object)
{
  g_autofree char *filename = NULL;

  if (!GMIME_IS_PART (object) || disposition_is_attachment (object))
    return FALSE;
  if (!is_type (object, "text", "plain") && !is_type (object, "text", "html"))
    return FALSE;
  filename = object_filename (object);
  return filename == NULL;
}

/* Whether a subtree holds text that a multipart/alternative could show. */
static gboolean
holds_text (GMimeObject *object,
            guint        depth)
{
  if (is_body_text (object))
    return TRUE;
  if (GMIME_IS_MULTIPART (object) && depth < 16)
    {
      int n = g_mime_multipart_get_count (GMIME_MULTIPART (object));

      for (int i = 0; i < n; i++)
        if (holds_text (g_mime_multipart_get_part (GMIME_MULTIPART (object), i), depth + 1))
          return TRUE;
    }
  return FALSE;
}

static guint64
decoded_size (GMimeObject *object)
{
  g_autoptr(GMimeStream) null = g_mime_stream_null_new ();

  if (GMIME_IS_PART (object))
    {
      GMimeDataWrapper *content = g_mime_part_get_content (GMIME_PART (object));

      if (content == NULL || g_mime_data_wrapper_write_to_stream (content, null) < 0)
        return 0;
    }
  else if (g_mime_object_write_content_to_stream (object, NULL, null) < 0)
    return 0;
  return GMIME_STREAM_NULL (null)->written;
}

static void
add_attachment (Walk        *walk,
                GMimeObject *object,
                const char  *part_id,
                gboolean     related_resource)
{
  LbMimeAttachment *attachment;
  const char *disposition = g_mime_object_get_disposition (object);
  const char *content_id = g_mime_object_get_content_id (object);
  gboolean referable = content_id != NULL ||
                       g_mime_object_get_header (object, "Content-Location") != NULL;

  if (!walk->want_attachments)
    return;
  attachment = g_new0 (LbMimeAttachment, 1);
  attachment->filename = object_filename (object);
  attachment->content_type = content_type_string (object);
  if (disposition != NULL)
    attachment->disposition = disposition_is_attachment (object) ? LB_MIME_DISPOSITION_ATTACHMENT
                                                                 : LB_MIME_DISPOSITION_INLINE;
  else
    attachment->disposition = related_resource ? LB_MIME_DISPOSITION_INLINE
                                               : LB_MIME_DISPOSITION_ATTACHMENT;
  attachment->size = walk->objects == NULL ? decoded_size (object) : 0;
  attachment->part_id = g_strdup (part_id);
  attachment->content_id = content_id != NULL ? g_utf8_make_valid (content_id, -1) : NULL;
  g_ptr_array_add (walk->attachments, attachment);

  if (!(related_resource && referable &&
        attachment->disposition == LB_MIME_DISPOSITION_INLINE))
    {
      walk->has_attachment = TRUE;
      if (walk->objects != NULL)
        g_ptr_array_add (walk->objects, g_object_ref (object));
    }
}

static void walk_object (Walk        *walk,
                         GMimeObject *object,
                         const char  *part_id,
                         gboolean     text_wanted,
                         gboolean     related_resource,
                         guint        depth);

static char *
child_id (const char *parent,
          int         index)
{
  return parent != NULL ? g_strdup_printf ("%s.%d", parent, index + 1)
                        : g_strdup_printf ("%d", index + 1);
}

static int
alternative_choice (GMimeMultipart *multipart)
{
  int n = g_mime_multipart_get_count (multipart);
  int chosen = -1;

  for (int i = 0; i < n; i++)
    {
      GMimeObject *child = g_mime_multipart_get_part (multipart, i);

      if (is_body_text (child) && is_type (child, "text", "plain"))
        return i;
    }
  for (int i = n - 1; i >= 0 && chosen < 0; i--)
    if (holds_text (g_mime_multipart_get_part (multipart, i), 0))
      chosen = i;
  return chosen;
}

static int
related_root (GMimeMultipart *multipart)
{
  const char *start = g_mime_object_get_content_type_parameter (GMIME_OBJECT (multipart),
                                                                "start");
  int n = g_mime_multipart_get_count (multipart);

  /* RFC 2387 §3.2: "start" names the root by Content-ID; else the first part. */
  if (start != NULL)
    {
      g_autofree char *id = g_mime_utils_decode_message_id (start);

      for (int i = 0; id != NULL && i < n; i++)
        {
          const char *cid = g_mime_object_get_content_id (g_mime_multipart_get_part (multipart, i));

          if (cid != NULL && strcmp (cid, id) == 0)
            return i;
        }
    }
  return 0;
}

static void
walk_multipart (Walk           *walk,
                GMimeMultipart *multipart,
                const char     *part_id,
                gboolean        text_wanted,
                guint           depth)
{
  GMimeObject *object = GMIME_OBJECT (multipart);
  int n = g_mime_multipart_get_count (multipart);
  int chosen = -1;
  int root = -1;

  if (is_type (object, "multipart", "encrypted"))
    return;
  if (is_type (object, "multipart", "alternative"))
    chosen = alternative_choice (multipart);
  else if (is_type (object, "multipart", "related"))
    root = related_root (multipart);

  for (int i = 0; i < n; i++)
    {
      GMimeObject *child = g_mime_multipart_get_part (multipart, i);
      g_autofree char *id = child_id (part_id, i);
      gboolean child_text = text_wanted;
      gboolean resource = FALSE;

      if (is_type (object, "multipart", "signed") && i > 0)
        break;
      if (chosen >= 0 || is_type (object, "multipart", "alternative"))
        child_text = text_wanted && i == chosen;
      if (root >= 0 && i != root)
        {
          child_text = FALSE;
          resource = TRUE;
        }
      walk_object (walk, child, id, child_text, resource, depth + 1);
    }
}

static void
walk_object (Walk        *walk,
             GMimeObject *object,
             const char  *part_id,
             gboolean     text_wanted,
             gboolean     related_resource,
             guint        depth)
{
  /* GMime's parser nests no deeper than its own limit; this bounds the recursion for
   * messages built in memory too. */
  if (object == NULL || depth > 64)
    return;

  if (GMIME_IS_MULTIPART (object))
    {
      walk_multipart (walk, GMIME_MULTIPART (object), part_id, text_wanted, depth);
      return;
    }
  if (part_id == NULL)
    part_id = "1";
  if (is_body_text (object) && !related_resource)
    {
      if (text_wanted)
        {
          TextRef *ref = g_new0 (TextRef, 1);

          ref->part = GMIME_PART (object);
          ref->html = is_type (object, "text", "html");
          g_ptr_array_add (walk->texts, ref);
        }
      return;
    }
  add_attachment (walk, object, part_id, related_resource);
}

static void
walk_message (Walk         *walk,
              GMimeMessage *message,
              gboolean      want_attachments)
{
  walk->want_attachments = want_attachments;
  walk->texts = g_ptr_array_new_with_free_func (g_free);
  walk->attachments = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_mime_attachment_free);
  walk_object (walk, g_mime_message_get_mime_part (message), NULL, TRUE, FALSE, 0);
}

static void
walk_clear (Walk *walk)
{
  g_clear_pointer (&walk->texts, g_ptr_array_unref);
  g_clear_pointer (&walk->attachments, g_ptr_array_unref);
  g_clear_pointer (&walk->objects, g_ptr_array_unref);
}

/**
 * lb_mime_message_get_attachment_parts:
 * @message: a message
 *
 * The parts that make has_attachment true (see the top of this file), for forwarding.
 *
 * Returns: (transfer container) (element-type GMimeObject): the parts, reffed
 */
GPtrArray *
lb_mime_message_get_attachment_parts (GMimeMessage *message)
{
  Walk walk = { 0 };
  GPtrArray *objects;

  g_return_val_if_fail (GMIME_IS_MESSAGE (message), NULL);

  walk.objects = g_ptr_array_new_with_free_func (g_object_unref);
  walk_message (&walk, message, TRUE);
  objects = g_steal_pointer (&walk.objects);
  walk_clear (&walk);
  return objects;
}

/* The text of one body part, at most @max_bytes, HTML reduced. */
static char *
text_of (const TextRef *ref,
         gsize          max_bytes)
{
  g_autofree char *raw = NULL;
  g_autofree char *reduced = NULL;

  if (!ref->html)
    return lb_mime_part_read_text (ref->part, max_bytes, NULL);
  raw = lb_mime_part_read_text (ref->part,
                                max_bytes > G_MAXSIZE / HTML_SOURCE_FACTOR
                                  ? G_MAXSIZE
                                  : max_bytes * HTML_SOURCE_FACTOR,
                                NULL);
  reduced = lb_mime_html_to_text (raw, -1);
  return lb_mime_utf8_truncate (reduced, max_bytes);
}

static const TextRef *
main_text (GPtrArray *texts)
{
  for (guint i = 0; i < texts->len; i++)
    if (!((TextRef *) texts->pdata[i])->html)
      return texts->pdata[i];
  return texts->len > 0 ? texts->pdata[0] : NULL;
}

/**
 * lb_mime_message_get_text:
 * @message: a message
 * @max_bytes: the longest result
 * @from_html: (out) (optional): whether it was reduced from HTML
 *
 * The message's main text: its first text/plain body part, else its first HTML body
 * part reduced to text (see lb_mime_html_to_text()).
 *
 * Returns: (transfer full): valid UTF-8, "" for a message without text
 */
char *
lb_mime_message_get_text (GMimeMessage *message,
                          gsize         max_bytes,
                          gboolean     *from_html)
{
  Walk walk = { 0 };
  const TextRef *ref;
  char *text;

  g_return_val_if_fail (GMIME_IS_MESSAGE (message), NULL);

  walk_message (&walk, message, FALSE);
  ref = main_text (walk.texts);
  if (from_html != NULL)
    *from_html = ref != NULL && ref->html;
  text = ref != NULL ? text_of (ref, max_bytes) : g_strdup ("");
  walk_clear (&walk);
  return text;
}

static gboolean
starts_quote (const char *line,
              const char *end)
{
  while (line < end && (*line == ' ' || *line == '\t'))
    line++;
  return line < end && *line == '>';
}

static gboolean
is_blank (const char *line,
          const char *end)
{
  for (; line < end; line++)
    if (!g_ascii_isspace (*line))
      return FALSE;
  return TRUE;
}

/* Where the new text of a message ends: "-- " (RFC 3676 §4.3, and the bare "--" that
 * trailing-space stripping leaves), a line of underscores or Outlook's "-----Original
 * Message-----" before the quoted original. */
static gboolean
is_separator (const char *line,
              const char *end)
{
  gsize len;

  while (end > line && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  len = end - line;
  if (len == 2 && memcmp (line, "--", 2) == 0)
    return TRUE;
  if (len >= 10 && strspn (line, "_") >= len)
    return TRUE;
  return len >= 20 && g_str_has_prefix (line, "-----Original Message-----");
}

static gboolean
ends_with_wrote (const char *line,
                 const char *end)
{
  while (end > line && g_ascii_isspace (end[-1]))
    end--;
  return end - line >= 6 && memcmp (end - 6, "wrote:", 6) == 0;
}

/**
 * lb_mime_make_preview:
 * @text: valid UTF-8, lines separated by "\n" (a "\r" before it is fine)
 * @max_chars: the most characters
 *
 * A message list's preview line: quoted lines (">") and an attribution line before them
 * left out, nothing from the signature or a quoted original on, whitespace collapsed.
 *
 * Returns: (transfer full): valid UTF-8 of at most @max_chars characters
 */
char *
lb_mime_make_preview (const char *text,
                      guint       max_chars)
{
  g_autoptr(GString) out = g_string_new (NULL);
  const char *line = text;
  const char *text_end = text + strlen (text);
  guint chars = 0;
  gboolean space = FALSE;

  while (line < text_end && chars < max_chars)
    {
      const char *eol = memchr (line, '\n', text_end - line);
      const char *next;

      if (eol == NULL)
        eol = text_end;
      next = eol < text_end ? eol + 1 : text_end;

      if (is_separator (line, eol))
        break;
      if (ends_with_wrote (line, eol))
        {
          const char *look = next;

          while (look < text_end)
            {
              const char *look_eol = memchr (look, '\n', text_end - look);

              if (look_eol == NULL)
                look_eol = text_end;
              if (!is_blank (look, look_eol))
                break;
              look = look_eol < text_end ? look_eol + 1 : text_end;
            }
          if (look < text_end && starts_quote (look, text_end))
            {
              line = next;
              continue;
            }
        }
      if (starts_quote (line, eol))
        {
          line = next;
          continue;
        }

      for (const char *p = line; p < eol && chars < max_chars; p = g_utf8_next_char (p))
        {
          gunichar c = g_utf8_get_char (p);

          if (g_unichar_isspace (c) || c == 0xA0)
            {
              space = out->len > 0;
              continue;
            }
          if (space && chars + 1 < max_chars)
            {
              g_string_append_c (out, ' ');
              chars++;
            }
          space = FALSE;
          g_string_append_unichar (out, c);
          chars++;
        }
      space = out->len > 0;
      line = next;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static char *
decoded_message_id (const char *value)
{
  g_autofree char *id = value != NULL ? g_mime_utils_decode_message_id (value) : NULL;

  if (id == NULL || *id == '\0')
    return NULL;
  return g_utf8_make_valid (id, -1);
}

static char *
body_text (GPtrArray *texts,
           gsize      limit)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < texts->len && out->len < limit; i++)
    {
      gsize room = limit - out->len;
      g_autofree char *text = NULL;

      if (out->len > 0)
        {
          if (room <= 2)
            break;
          g_string_append (out, "\n\n");
          room -= 2;
        }
      text = text_of (texts->pdata[i], room);
      g_string_append (out, text);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/**
 * lb_mime_summarise_full:
 * @message: a parsed message
 * @flags: %LB_MIME_SUMMARY_TEXT for body_text too
 * @text_limit: the most bytes of body_text
 *
 * Everything is decoded to valid UTF-8; missing headers give empty values, never an
 * error (see LbMimeSummary). Attachment sizes are exact: each attachment is decoded once
 * into a null stream.
 *
 * Returns: (transfer full): the summary
 */
LbMimeSummary *
lb_mime_summarise_full (GMimeMessage      *message,
                        LbMimeSummaryFlags flags,
                        gsize              text_limit)
{
  LbMimeSummary *summary;
  Walk walk = { 0 };
  GDateTime *date;
  const char *subject;
  const char *refs_header;
  g_autoptr(GPtrArray) from = NULL;
  const TextRef *main;

  g_return_val_if_fail (GMIME_IS_MESSAGE (message), NULL);

  lb_mime_init ();
  summary = g_new0 (LbMimeSummary, 1);

  from = lb_mime_address_list_from_gmime (g_mime_message_get_from (message));
  if (from->len > 0)
    summary->from = lb_mime_address_copy (from->pdata[0]);
  summary->to = lb_mime_address_list_from_gmime (g_mime_message_get_to (message));
  summary->cc = lb_mime_address_list_from_gmime (g_mime_message_get_cc (message));
  summary->bcc = lb_mime_address_list_from_gmime (g_mime_message_get_bcc (message));
  summary->reply_to = lb_mime_address_list_from_gmime (g_mime_message_get_reply_to (message));

  subject = g_mime_message_get_subject (message);
  summary->subject = g_utf8_make_valid (subject != NULL ? subject : "", -1);
  g_strstrip (summary->subject);

  summary->message_id = decoded_message_id (g_mime_message_get_message_id (message));
  summary->in_reply_to = decoded_message_id (g_mime_object_get_header (GMIME_OBJECT (message),
                                                                       "In-Reply-To"));
  summary->references = g_ptr_array_new_with_free_func (g_free);
  refs_header = g_mime_object_get_header (GMIME_OBJECT (message), "References");
  if (refs_header != NULL)
    {
      g_autoptr(GMimeReferences) refs = g_mime_references_parse (lb_mime_parser_options (),
                                                                 refs_header);
      int n = refs != NULL ? g_mime_references_length (refs) : 0;

      for (int i = 0; i < n; i++)
        {
          const char *id = g_mime_references_get_message_id (refs, i);

          if (id != NULL && *id != '\0')
            g_ptr_array_add (summary->references, g_utf8_make_valid (id, -1));
        }
    }

  date = g_mime_message_get_date (message);
  summary->date = date != NULL ? g_date_time_to_unix (date) : 0;

  walk_message (&walk, message, TRUE);
  main = main_text (walk.texts);
  if (main != NULL)
    {
      g_autofree char *text = text_of (main, PREVIEW_SOURCE_BYTES);

      summary->preview = lb_mime_make_preview (text, LB_MIME_PREVIEW_CHARS);
    }
  else
    summary->preview = g_strdup ("");
  summary->attachments = g_steal_pointer (&walk.attachments);
  summary->has_attachment = walk.has_attachment;
  if (flags & LB_MIME_SUMMARY_TEXT)
    summary->body_text = body_text (walk.texts, text_limit);
  walk_clear (&walk);
  return summary;
}

/**
 * lb_mime_summarise:
 *
 * lb_mime_summarise_full() with body_text up to %LB_MIME_TEXT_LIMIT_DEFAULT bytes.
 */
LbMimeSummary *
lb_mime_summarise (GMimeMessage      *message,
                   LbMimeSummaryFlags flags)
{
  return lb_mime_summarise_full (message, flags, LB_MIME_TEXT_LIMIT_DEFAULT);
}
