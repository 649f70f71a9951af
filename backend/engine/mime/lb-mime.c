/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-mime"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-mime.h"

/*
 * GMime set up once per process, and the two ways a message comes in: bytes in memory,
 * or a stream read to its end (blocking: call it from a worker thread). Parsed messages
 * keep one copy of the bytes, which their parts point into.
 *
 * Header text that is 8-bit without a declared charset (RFC 2047 says it must not be,
 * mailers send it anyway) is read as UTF-8 when it is valid UTF-8, else as windows-1252,
 * else as ISO-8859-1, which accepts every byte: the fallbacks are independent of the
 * locale, so the same message reads the same everywhere.
 */

G_DEFINE_QUARK (lb-mime-error-quark, lb_mime_error)

#define READ_CHUNK 65536

static const char *fallback_charsets[] = { "UTF-8", "windows-1252", "iso-8859-1", NULL };

static GMimeFormatOptions *format_options;

/**
 * lb_mime_init:
 *
 * Initialises GMime once (safe to call from any thread, any number of times) and sets
 * the process-wide parser defaults: the charset fallbacks above and loose RFC 2047 and
 * parameter parsing (GMime's tolerance for encoded words inside words, unencoded spaces
 * and similar breakage).
 */
void
lb_mime_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      GMimeParserOptions *options;

      g_mime_init ();
      options = g_mime_parser_options_get_default ();
      g_mime_parser_options_set_fallback_charsets (options, fallback_charsets);
      g_mime_parser_options_set_rfc2047_compliance_mode (options, GMIME_RFC_COMPLIANCE_LOOSE);
      g_mime_parser_options_set_parameter_compliance_mode (options, GMIME_RFC_COMPLIANCE_LOOSE);
      g_mime_parser_options_set_address_compliance_mode (options, GMIME_RFC_COMPLIANCE_LOOSE);

      /* For the wire (SMTP, APPEND): CRLF line ends (RFC 5322 §2.1), RFC 2231
       * parameters. */
      format_options = g_mime_format_options_clone (g_mime_format_options_get_default ());
      g_mime_format_options_set_newline_format (format_options, GMIME_NEWLINE_FORMAT_DOS);
      g_mime_format_options_set_param_encoding_method (format_options,
                                                       GMIME_PARAM_ENCODING_METHOD_RFC2231);
      g_once_init_leave (&done, 1);
    }
}

/* The parser options every lb_mime function uses (GMime's defaults, set up by
 * lb_mime_init()). */
GMimeParserOptions *
lb_mime_parser_options (void)
{
  lb_mime_init ();
  return g_mime_parser_options_get_default ();
}

/* The format options for messages on the wire: CRLF line ends. */
GMimeFormatOptions *
lb_mime_format_options (void)
{
  lb_mime_init ();
  return format_options;
}

static GMimeMessage *
parse_mem_stream (GMimeStream *stream,
                  GError     **error)
{
  g_autoptr(GMimeParser) parser = NULL;
  GMimeMessage *message;

  parser = g_mime_parser_new_with_stream (stream);
  g_mime_parser_set_format (parser, GMIME_FORMAT_MESSAGE);
  message = g_mime_parser_construct_message (parser, lb_mime_parser_options ());
  if (message == NULL)
    g_set_error_literal (error, LB_MIME_ERROR, LB_MIME_ERROR_PARSE,
                         _("The data is not an email message"));
  return message;
}

/**
 * lb_mime_parse_bytes:
 * @data: the raw message (RFC 5322, any line ends)
 * @len: its length
 * @error: %LB_MIME_ERROR_PARSE when GMime finds no message in it
 *
 * Returns: (transfer full): the message, which keeps its own copy of @data
 */
GMimeMessage *
lb_mime_parse_bytes (const guint8 *data,
                     gsize         len,
                     GError      **error)
{
  g_autoptr(GMimeStream) stream = NULL;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  lb_mime_init ();
  stream = g_mime_stream_mem_new_with_buffer ((const char *) (data != NULL ? data : (const guint8 *) ""),
                                              len);
  return parse_mem_stream (stream, error);
}

/**
 * lb_mime_parse_stream:
 * @stream: read to its end, blocking; not closed
 * @error: %LB_MIME_ERROR_SOURCE (with the stream's own error message) when reading
 *   fails, %LB_MIME_ERROR_PARSE when the bytes are no message
 *
 * Returns: (transfer full): the message
 */
GMimeMessage *
lb_mime_parse_stream (GInputStream *stream,
                      GError      **error)
{
  g_autoptr(GMimeStream) mem = NULL;
  GByteArray *bytes;
  GError *local_error = NULL;

  g_return_val_if_fail (G_IS_INPUT_STREAM (stream), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  lb_mime_init ();
  bytes = g_byte_array_new ();
  for (;;)
    {
      gsize old = bytes->len;
      gssize n;

      g_byte_array_set_size (bytes, old + READ_CHUNK);
      n = g_input_stream_read (stream, bytes->data + old, READ_CHUNK, NULL, &local_error);
      g_byte_array_set_size (bytes, old + MAX (n, 0));
      if (n < 0)
        {
          g_set_error (error, LB_MIME_ERROR, LB_MIME_ERROR_SOURCE,
                       _("Could not read the message: %s"), local_error->message);
          g_error_free (local_error);
          g_byte_array_unref (bytes);
          return NULL;
        }
      if (n == 0)
        break;
    }
  /* The memory stream takes the array; the message's parts point into it. */
  mem = g_mime_stream_mem_new_with_byte_array (bytes);
  return parse_mem_stream (mem, error);
}

/**
 * lb_mime_utf8_truncate:
 * @text: valid UTF-8
 * @max_bytes: the longest result, in bytes
 *
 * Returns: (transfer full): a copy of @text cut to at most @max_bytes on a character
 *   boundary
 */
char *
lb_mime_utf8_truncate (const char *text,
                       gsize       max_bytes)
{
  gsize len = strlen (text);
  const char *end;

  if (len <= max_bytes)
    return g_strdup (text);
  end = text + max_bytes;
  /* Back off over continuation bytes to the start of the character cut in two. */
  while (end > text && ((guchar) *end & 0xC0) == 0x80)
    end--;
  return g_strndup (text, end - text);
}

static gboolean
charset_is_utf8_or_ascii (const char *canon)
{
  return canon == NULL || g_ascii_strcasecmp (canon, "utf-8") == 0 ||
         g_ascii_strcasecmp (canon, "us-ascii") == 0;
}

/* Valid UTF-8 from whatever the part held: as declared, else (no charset, a wrong
 * "us-ascii", a charset iconv does not know) GMime's fallbacks; a part that claims UTF-8
 * keeps its valid stretches. An incomplete character at a cut end is dropped. */
static char *
to_utf8 (GString    *raw,
         gboolean    cut,
         gboolean    declared_utf8,
         gboolean    converted)
{
  const char *end = NULL;

  for (gsize i = 0; i < raw->len; i++)
    if (raw->str[i] == '\0')
      raw->str[i] = ' ';
  if (!g_utf8_validate (raw->str, raw->len, &end) && cut &&
      raw->str + raw->len - end < 4 && g_utf8_get_char_validated (end, raw->str + raw->len - end) == (gunichar) -2)
    g_string_truncate (raw, end - raw->str);
  if (g_utf8_validate (raw->str, raw->len, NULL))
    return g_strndup (raw->str, raw->len);
  if (declared_utf8 || converted)
    return g_utf8_make_valid (raw->str, raw->len);
  else
    {
      /* iconv's UTF-8 takes sequences GLib does not (beyond U+10FFFF), so the result
       * is checked too. */
      g_autofree char *decoded = g_mime_utils_decode_8bit (lb_mime_parser_options (), raw->str,
                                                           raw->len);

      return g_utf8_make_valid (decoded, -1);
    }
}

/**
 * lb_mime_part_read_text:
 * @part: a leaf part, normally text/\*
 * @max_bytes: read no more than about this much (the result is cut to it)
 * @truncated: (out) (optional): set when the part held more
 *
 * The content without its transfer encoding, converted to UTF-8 from the declared
 * charset (see to_utf8() for the undeclared), never more than @max_bytes.
 *
 * Returns: (transfer full): valid UTF-8, "" for a part without content
 */
char *
lb_mime_part_read_text (GMimePart *part,
                        gsize      max_bytes,
                        gboolean  *truncated)
{
  GMimeDataWrapper *content;
  GMimeStream *source;
  g_autoptr(GMimeStream) filtered = NULL;
  g_autoptr(GString) raw = NULL;
  GMimeContentEncoding encoding;
  const char *charset;
  const char *canon = NULL;
  gboolean converted = FALSE;
  gboolean cut = FALSE;
  g_autofree char *text = NULL;
  char buf[4096];

  g_return_val_if_fail (GMIME_IS_PART (part), NULL);

  if (truncated != NULL)
    *truncated = FALSE;
  content = g_mime_part_get_content (part);
  source = content != NULL ? g_mime_data_wrapper_get_stream (content) : NULL;
  if (source == NULL)
    return g_strdup ("");

  charset = g_mime_object_get_content_type_parameter (GMIME_OBJECT (part), "charset");
  if (charset != NULL)
    canon = g_mime_charset_canon_name (charset);

  filtered = g_mime_stream_filter_new (source);
  encoding = g_mime_data_wrapper_get_encoding (content);
  switch (encoding)
    {
    case GMIME_CONTENT_ENCODING_BASE64:
    case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
    case GMIME_CONTENT_ENCODING_UUENCODE:
      {
        g_autoptr(GMimeFilter) decoder = g_mime_filter_basic_new (encoding, FALSE);
        g_mime_stream_filter_add (GMIME_STREAM_FILTER (filtered), decoder);
      }
      break;
    case GMIME_CONTENT_ENCODING_DEFAULT:
    case GMIME_CONTENT_ENCODING_7BIT:
    case GMIME_CONTENT_ENCODING_8BIT:
    case GMIME_CONTENT_ENCODING_BINARY:
    default:
      break;
    }
  if (!charset_is_utf8_or_ascii (canon))
    {
      g_autoptr(GMimeFilter) converter = g_mime_filter_charset_new (canon, "UTF-8");

      if (converter != NULL)
        {
          g_mime_stream_filter_add (GMIME_STREAM_FILTER (filtered), converter);
          converted = TRUE;
        }
    }

  raw = g_string_new (NULL);
  g_mime_stream_reset (filtered);
  while (raw->len <= max_bytes)
    {
      ssize_t n = g_mime_stream_read (filtered, buf, MIN (sizeof buf, max_bytes + 1 - raw->len));

      if (n <= 0)
        break;
      g_string_append_len (raw, buf, n);
    }
  if (raw->len > max_bytes)
    {
      cut = TRUE;
      g_string_truncate (raw, max_bytes);
    }
  text = to_utf8 (raw, cut, canon != NULL && g_ascii_strcasecmp (canon, "utf-8") == 0, converted);
  if (truncated != NULL)
    *truncated = cut;
  /* The fallback charsets turn one byte into up to three. */
  return lb_mime_utf8_truncate (text, max_bytes);
}
