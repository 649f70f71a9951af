/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-mime-display.h"

/* What the reading pane gets from a message: the richest body, its cid: images decoded,
 * the attachments a person sees, parts found by section number and written decoded, and
 * plain text cut into quoted and unquoted runs. */

static GMimeMessage *
parse (const char *raw)
{
  g_autoptr(GError) error = NULL;
  GMimeMessage *message = lb_mime_parse_bytes ((const guint8 *) raw, strlen (raw), &error);

  g_assert_no_error (error);
  g_assert_nonnull (message);
  return message;
}

#define HEAD "From: A <a@example.org>\r\nTo: b@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n"

/* A red 1×1 GIF. */
#define GIF_B64 "R0lGODlhAQABAIAAAP8AAAAAACH5BAAAAAAALAAAAAABAAEAAAICRAEAOw=="

static const char alternative_related[] =
  HEAD
  "Content-Type: multipart/mixed; boundary=m\r\n"
  "\r\n"
  "--m\r\n"
  "Content-Type: multipart/alternative; boundary=a\r\n"
  "\r\n"
  "--a\r\n"
  "Content-Type: text/plain; charset=utf-8\r\n"
  "\r\n"
  "Plain version\r\n"
  "--a\r\n"
  "Content-Type: multipart/related; boundary=r\r\n"
  "\r\n"
  "--r\r\n"
  "Content-Type: text/html; charset=iso-8859-1\r\n"
  "Content-Transfer-Encoding: quoted-printable\r\n"
  "\r\n"
  "<p>Gr=FC=DFe <img src=3D\"cid:logo@x\"></p>\r\n"
  "--r\r\n"
  "Content-Type: image/gif\r\n"
  "Content-ID: <logo@x>\r\n"
  "Content-Transfer-Encoding: base64\r\n"
  "\r\n"
  GIF_B64 "\r\n"
  "--r--\r\n"
  "--a--\r\n"
  "--m\r\n"
  "Content-Type: application/pdf; name=report.pdf\r\n"
  "Content-Disposition: attachment; filename=report.pdf\r\n"
  "Content-Transfer-Encoding: base64\r\n"
  "\r\n"
  "JVBERi0xLjQK\r\n"
  "--m--\r\n";

static void
test_html_with_resources (void)
{
  g_autoptr(GMimeMessage) message = parse (alternative_related);
  g_autoptr(LbMimeDisplay) display = lb_mime_display_new (message);
  LbMimeResource *logo;
  LbMimeAttachment *pdf;
  g_autoptr(GBytes) gif = NULL;
  gsize len;
  g_autofree guchar *expected = g_base64_decode (GIF_B64, &len);

  g_assert_nonnull (display->html);
  g_assert_null (display->text);
  g_assert_nonnull (strstr (display->html, "Grüße"));
  g_assert_null (strstr (display->html, "Plain version"));

  logo = g_hash_table_lookup (display->resources, "logo@x");
  g_assert_nonnull (logo);
  g_assert_cmpstr (logo->content_type, ==, "image/gif");
  g_assert_cmpmem (g_bytes_get_data (logo->data, NULL), g_bytes_get_size (logo->data), expected,
                   len);

  /* The logo belongs to the body; the PDF is the one attachment. */
  g_assert_cmpuint (display->attachments->len, ==, 1);
  pdf = display->attachments->pdata[0];
  g_assert_cmpstr (pdf->filename, ==, "report.pdf");
  g_assert_cmpstr (pdf->content_type, ==, "application/pdf");
  g_assert_cmpuint (pdf->size, ==, 9);
  g_assert_cmpstr (pdf->part_id, ==, "2");

  /* Found by its section and written as the sender attached it. */
  {
    GMimeObject *part = lb_mime_message_find_part (message, pdf->part_id);
    g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
    g_autoptr(GError) error = NULL;

    g_assert_nonnull (part);
    g_assert_true (lb_mime_object_write_decoded (part, out, NULL, &error));
    g_assert_no_error (error);
    g_assert_true (g_output_stream_close (out, NULL, NULL));
    g_assert_cmpmem (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (out)),
                     g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (out)),
                     "%PDF-1.4\n", 9);
  }
  g_assert_nonnull (lb_mime_message_find_part (message, "1.2.2"));
  g_assert_null (lb_mime_message_find_part (message, "3"));
  g_assert_null (lb_mime_message_find_part (message, "0"));
  g_assert_null (lb_mime_message_find_part (message, "1.9"));
  g_assert_null (lb_mime_message_find_part (message, "x"));
  g_assert_null (lb_mime_message_find_part (message, "2.1"));
  g_assert_null (lb_mime_message_find_part (message, ""));
}

static void
test_plain_and_mixed (void)
{
  g_autoptr(GMimeMessage) plain = parse (HEAD "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                                              "Hello <b>\r\n");
  g_autoptr(LbMimeDisplay) d1 = lb_mime_display_new (plain);
  g_autoptr(GMimeMessage) mixed = parse (HEAD "Content-Type: multipart/mixed; boundary=m\r\n\r\n"
                                              "--m\r\nContent-Type: text/plain\r\n\r\nfirst <&>\r\n"
                                              "--m\r\nContent-Type: text/html\r\n\r\n<i>second</i>\r\n"
                                              "--m--\r\n");
  g_autoptr(LbMimeDisplay) d2 = lb_mime_display_new (mixed);
  g_autoptr(GMimeMessage) empty = parse (HEAD "Content-Type: image/png\r\n\r\n");
  g_autoptr(LbMimeDisplay) d3 = lb_mime_display_new (empty);

  g_assert_null (d1->html);
  g_assert_cmpstr (d1->text, ==, "Hello <b>\r\n");
  g_assert_cmpuint (d1->attachments->len, ==, 0);
  g_assert_nonnull (lb_mime_message_find_part (plain, "1"));
  g_assert_null (lb_mime_message_find_part (plain, "1.1"));
  g_assert_null (lb_mime_message_find_part (plain, "2"));

  /* Text next to HTML is escaped into it, never interpreted. */
  g_assert_nonnull (d2->html);
  g_assert_nonnull (strstr (d2->html, "first &lt;&amp;&gt;"));
  g_assert_nonnull (strstr (d2->html, "<i>second</i>"));

  /* Nothing to read: empty text, the part listed. */
  g_assert_cmpstr (d3->text, ==, "");
  g_assert_cmpuint (d3->attachments->len, ==, 1);
}

static void
test_split_quotes (void)
{
  const char *text = "Hi,\n\nOn Monday Bob wrote:\n> one\n>two\n  > three\n\nReply\n>last";
  g_autoptr(GArray) blocks = lb_mime_text_split_quotes (text);
  g_autoptr(GArray) none = lb_mime_text_split_quotes ("");
  g_autoptr(GArray) crlf = lb_mime_text_split_quotes ("> a\r\n> b\r\nc\r\n");
  static const struct
  {
    gboolean quoted;
    guint lines;
    const char *text;
  } expected[] = {
    { FALSE, 3, "Hi,\n\nOn Monday Bob wrote:\n" },
    { TRUE, 3, "> one\n>two\n  > three\n" },
    { FALSE, 2, "\nReply\n" },
    { TRUE, 1, ">last" },
  };

  g_assert_cmpuint (blocks->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < blocks->len; i++)
    {
      LbMimeTextBlock *b = &g_array_index (blocks, LbMimeTextBlock, i);

      g_assert_cmpint (b->quoted, ==, expected[i].quoted);
      g_assert_cmpuint (b->lines, ==, expected[i].lines);
      g_assert_cmpuint (b->end - b->start, ==, strlen (expected[i].text));
      g_assert_cmpint (strncmp (text + b->start, expected[i].text, b->end - b->start), ==, 0);
    }
  g_assert_cmpuint (none->len, ==, 0);
  g_assert_cmpuint (crlf->len, ==, 2);
  g_assert_cmpuint (g_array_index (crlf, LbMimeTextBlock, 0).lines, ==, 2);
  g_assert_cmpuint (g_array_index (crlf, LbMimeTextBlock, 1).end, ==, 13);
}

/* Every corpus message of the summary's fuzzer goes through the display without harm. */
static void
test_corpus (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "mime-summary",
                                                NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *data = NULL;
      gsize len;
      g_autoptr(GMimeMessage) message = NULL;

      if (!g_file_get_contents (path, &data, &len, NULL))
        continue;
      message = lb_mime_parse_bytes ((const guint8 *) data, len, NULL);
      if (message != NULL)
        {
          g_autoptr(LbMimeDisplay) display = lb_mime_display_new (message);
          g_autoptr(GArray) blocks = lb_mime_text_split_quotes (display->text != NULL
                                                                  ? display->text
                                                                  : display->html);

          g_assert_true ((display->html == NULL) != (display->text == NULL));
          g_assert_true (g_utf8_validate (display->text != NULL ? display->text : display->html,
                                          -1, NULL));
          n++;
        }
    }
  g_assert_cmpuint (n, >, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();

  g_test_add_func ("/mime/display/html-with-resources", test_html_with_resources);
  g_test_add_func ("/mime/display/plain-and-mixed", test_plain_and_mixed);
  g_test_add_func ("/mime/display/split-quotes", test_split_quotes);
  g_test_add_func ("/mime/display/corpus", test_corpus);
  return g_test_run ();
}
