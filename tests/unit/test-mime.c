/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-mime-build.h"
#include "lb-mime-envelope.h"
#include "lb-mime-html.h"
#include "lb-mime-quote.h"
#include "lb-mime-summary.h"

/* The mime layer on real-world shapes of mail: encodings broken the ways mailers break
 * them, nested multiparts, round trips through build → write → parse → summarise, and
 * replies and forwards. */

static GMimeMessage *
parse (const char *raw)
{
  g_autoptr(GError) error = NULL;
  GMimeMessage *message = lb_mime_parse_bytes ((const guint8 *) raw, strlen (raw), &error);

  g_assert_no_error (error);
  g_assert_nonnull (message);
  return message;
}

static LbMimeSummary *
summarise (const char *raw)
{
  g_autoptr(GMimeMessage) message = parse (raw);

  return lb_mime_summarise (message, LB_MIME_SUMMARY_TEXT);
}

static const LbMimeAddress *
address_at (GPtrArray *list,
            guint      i)
{
  g_assert_cmpuint (i, <, list->len);
  return list->pdata[i];
}

static void
test_parse_not_message (void)
{
  const char *inputs[] = { "", "hello world", "hello world\n\nbody" };

  for (guint i = 0; i < G_N_ELEMENTS (inputs); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GMimeMessage) message =
        lb_mime_parse_bytes ((const guint8 *) inputs[i], strlen (inputs[i]), &error);

      g_assert_null (message);
      g_assert_error (error, LB_MIME_ERROR, LB_MIME_ERROR_PARSE);
    }
}

static void
test_parse_stream (void)
{
  const char *raw = "Subject: streamed\r\n\r\nbody\r\n";
  g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data (raw, strlen (raw), NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GMimeMessage) message = lb_mime_parse_stream (in, &error);
  g_autoptr(LbMimeSummary) summary = NULL;

  g_assert_no_error (error);
  summary = lb_mime_summarise (message, LB_MIME_SUMMARY_NONE);
  g_assert_cmpstr (summary->subject, ==, "streamed");
  g_assert_cmpstr (summary->preview, ==, "body");
  g_assert_null (summary->body_text);
}

static void
test_parse_no_headers (void)
{
  g_autoptr(LbMimeSummary) s = summarise ("\nJust a body, no headers.\n");
  g_autoptr(LbMimeSummary) empty = summarise ("\n");

  g_assert_null (s->from);
  g_assert_cmpstr (s->subject, ==, "");
  g_assert_null (s->message_id);
  g_assert_cmpint (s->date, ==, 0);
  g_assert_cmpuint (s->to->len, ==, 0);
  g_assert_cmpuint (s->references->len, ==, 0);
  g_assert_cmpstr (s->preview, ==, "Just a body, no headers.");
  g_assert_cmpstr (empty->preview, ==, "");
  g_assert_cmpstr (empty->body_text, ==, "");
  g_assert_cmpuint (empty->attachments->len, ==, 0);
  g_assert_false (empty->has_attachment);
}

static void
test_envelope (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "From: \"Doe, Jane\" <jane@example.org>, second@example.org\n"
    "To: Bob <bob@example.org>, team: a@example.org, \"C\" <c@example.org>;\n"
    "Cc: carol@example.org\n"
    "Bcc: dave@example.org\n"
    "Reply-To: list@example.org\n"
    "Subject:  Meeting \n"
    "Date: Tue, 15 Nov 1994 08:12:31 -0500\n"
    "Message-ID: <id-1@example.org>\n"
    "In-Reply-To: <parent@example.org> <other@example.org>\n"
    "References: <root@example.org>\n  <mid@example.org> <parent@example.org>\n"
    "\n"
    "Body\n");

  g_assert_cmpstr (s->from->name, ==, "Doe, Jane");
  g_assert_cmpstr (s->from->address, ==, "jane@example.org");
  g_assert_cmpuint (s->to->len, ==, 3);
  g_assert_cmpstr (address_at (s->to, 0)->name, ==, "Bob");
  g_assert_cmpstr (address_at (s->to, 1)->address, ==, "a@example.org");
  g_assert_null (address_at (s->to, 1)->name);
  g_assert_cmpstr (address_at (s->to, 2)->address, ==, "c@example.org");
  g_assert_cmpstr (address_at (s->cc, 0)->address, ==, "carol@example.org");
  g_assert_cmpstr (address_at (s->bcc, 0)->address, ==, "dave@example.org");
  g_assert_cmpstr (address_at (s->reply_to, 0)->address, ==, "list@example.org");
  g_assert_cmpstr (s->subject, ==, "Meeting");
  g_assert_cmpint (s->date, ==, 784905151);
  g_assert_cmpstr (s->message_id, ==, "id-1@example.org");
  g_assert_cmpstr (s->in_reply_to, ==, "parent@example.org");
  g_assert_cmpuint (s->references->len, ==, 3);
  g_assert_cmpstr (s->references->pdata[0], ==, "root@example.org");
  g_assert_cmpstr (s->references->pdata[1], ==, "mid@example.org");
  g_assert_cmpstr (s->references->pdata[2], ==, "parent@example.org");
}

static void
test_bad_date (void)
{
  g_autoptr(LbMimeSummary) garbage = summarise ("Date: the day after tomorrow\n\nx\n");
  g_autoptr(LbMimeSummary) missing = summarise ("Subject: x\n\nx\n");

  g_assert_cmpint (garbage->date, ==, 0);
  g_assert_cmpint (missing->date, ==, 0);
}

static void
test_rfc2047 (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <j@example.de>\n"
    "To: =?iso-8859-1?q?Fran=E7ois?= <f@example.fr>, =?utf-8?b?w4lsb2RpZQ==?=<e@x.fr>\n"
    "Cc: \"=?utf-8?q?Quoted_=C3=A9ncoded?=\" <q@example.org>\n"
    "Subject: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_au_lait?= and =?ISO-8859-15?Q?=A4uro?=\n"
    "\n"
    "x\n");
  g_autoptr(LbMimeSummary) broken = summarise (
    "Subject: =?utf-8?q?unterminated and =?bogus-charset?q?abc?= x=?utf-8?q?in?=word\n"
    "From: =?utf-8?b?!!!notbase64?= <b@example.org>\n"
    "\n"
    "x\n");
  g_autoptr(LbMimeSummary) split = summarise (
    /* One character split over two encoded words (which RFC 2047 §5 forbids). */
    "Subject: =?utf-8?b?w6k=?= =?utf-8?q?=C3?= =?utf-8?q?=A9?=\n\nx\n");

  g_assert_cmpstr (s->from->name, ==, "Jörg Müller");
  g_assert_cmpstr (address_at (s->to, 0)->name, ==, "François");
  g_assert_cmpstr (address_at (s->to, 1)->name, ==, "Élodie");
  g_assert_cmpstr (address_at (s->cc, 0)->name, ==, "Quoted éncoded");
  g_assert_cmpstr (s->subject, ==, "café au lait and €uro");

  /* Broken words stay readable and valid UTF-8; the one GMime can decode is decoded. */
  g_assert_true (g_utf8_validate (broken->subject, -1, NULL));
  g_assert_nonnull (strstr (broken->subject, "unterminated"));
  g_assert_nonnull (strstr (broken->subject, "in"));
  g_assert_true (g_utf8_validate (broken->from->name != NULL ? broken->from->name : "", -1,
                                  NULL));
  g_assert_cmpstr (broken->from->address, ==, "b@example.org");
  g_assert_true (g_utf8_validate (split->subject, -1, NULL));
  g_assert_true (g_str_has_prefix (split->subject, "é"));
}

static void
test_8bit_headers (void)
{
  g_autoptr(LbMimeSummary) latin1 = summarise ("Subject: Caf\xe9 cr\xe8me \x80 5\n"
                                               "From: J\xf6rg <j@example.de>\n"
                                               "Content-Type: text/plain\n"
                                               "\n"
                                               "Das ist gr\xfcn.\n");
  g_autoptr(LbMimeSummary) utf8 = summarise ("Subject: Caf\xc3\xa9 \xe2\x82\xac\n"
                                             "From: \xc3\x89lodie <e@example.fr>\n"
                                             "\n"
                                             "Gr\xc3\xbc\xc3\x9f" "e\n");

  /* Not UTF-8, so windows-1252: 0x80 is the euro sign, not a C1 control. */
  g_assert_cmpstr (latin1->subject, ==, "Café crème € 5");
  g_assert_cmpstr (latin1->from->name, ==, "Jörg");
  g_assert_cmpstr (latin1->preview, ==, "Das ist grün.");
  g_assert_cmpstr (utf8->subject, ==, "Café €");
  g_assert_cmpstr (utf8->from->name, ==, "Élodie");
  g_assert_cmpstr (utf8->preview, ==, "Grüße");
}

static void
test_body_charsets (void)
{
  g_autoptr(LbMimeSummary) qp = summarise ("Content-Type: text/plain; charset=iso-8859-1\n"
                                           "Content-Transfer-Encoding: quoted-printable\n"
                                           "\n"
                                           "Gr=FC=DFe, soft=\n"
                                           " break\n");
  g_autoptr(LbMimeSummary) koi8 = summarise ("Content-Type: text/plain; charset=koi8-r\n"
                                             "\n"
                                             "\xf0\xd2\xc9\xd7\xc5\xd4\n");
  g_autoptr(LbMimeSummary) ascii_lie = summarise ("Content-Type: text/plain; charset=us-ascii\n"
                                                  "\n"
                                                  "na\xefve\n");
  g_autoptr(LbMimeSummary) bad_utf8 = summarise ("Content-Type: text/plain; charset=utf-8\n"
                                                 "\n"
                                                 "ok \xc3\xa9 bad \xff\xfe end\n");
  g_autoptr(LbMimeSummary) unknown = summarise ("Content-Type: text/plain; charset=x-made-up\n"
                                                "\n"
                                                "caf\xe9\n");

  g_assert_cmpstr (qp->preview, ==, "Grüße, soft break");
  g_assert_cmpstr (koi8->preview, ==, "Привет");
  g_assert_cmpstr (ascii_lie->preview, ==, "naïve");
  g_assert_true (g_utf8_validate (bad_utf8->preview, -1, NULL));
  g_assert_true (g_str_has_prefix (bad_utf8->preview, "ok é bad "));
  g_assert_true (g_str_has_suffix (bad_utf8->preview, " end"));
  g_assert_cmpstr (unknown->preview, ==, "café");
  {
    /* iconv reads F6 BC 90 99 as UTF-8 (a code point beyond U+10FFFF); GLib does not.
     * Found by the fuzzer. */
    g_autoptr(LbMimeSummary) beyond = summarise ("Content-Type: text/plain\n\nb\xf6\xbc\x90\x99x\n");

    g_assert_true (g_utf8_validate (beyond->preview, -1, NULL));
    g_assert_true (g_utf8_validate (beyond->body_text, -1, NULL));
  }
}

static void
test_long_header (void)
{
  g_autoptr(GString) raw = g_string_new ("From: a@example.org\nSubject: ");
  g_autoptr(LbMimeSummary) s = NULL;

  for (guint i = 0; i < 100000 / 10; i++)
    g_string_append (raw, "abcdefghi ");
  g_string_append (raw, "\nTo: b@example.org\n\nbody\n");
  s = summarise (raw->str);
  g_assert_cmpuint (strlen (s->subject), ==, 100000 - 1);
  g_assert_cmpstr (address_at (s->to, 0)->address, ==, "b@example.org");
  g_assert_cmpstr (s->preview, ==, "body");
}

static const char nested[] =
  "From: a@example.org\n"
  "MIME-Version: 1.0\n"
  "Content-Type: multipart/mixed; boundary=\"outer\"\n"
  "\n"
  "--outer\n"
  "Content-Type: multipart/alternative; boundary=\"alt\"\n"
  "\n"
  "--alt\n"
  "Content-Type: text/plain; charset=us-ascii\n"
  "\n"
  "Plain text version\n"
  "--alt\n"
  "Content-Type: multipart/related; boundary=\"rel\"\n"
  "\n"
  "--rel\n"
  "Content-Type: text/html; charset=utf-8\n"
  "\n"
  "<html><body><p>HTML version <img src=\"cid:img1@x\"></p></body></html>\n"
  "--rel\n"
  "Content-Type: image/png\n"
  "Content-ID: <img1@x>\n"
  "Content-Transfer-Encoding: base64\n"
  "\n"
  "iVBORw0KGgo=\n"
  "--rel--\n"
  "--alt--\n"
  "--outer\n"
  "Content-Type: application/pdf; name=\"report.pdf\"\n"
  "Content-Disposition: attachment; filename=\"report.pdf\"\n"
  "Content-Transfer-Encoding: base64\n"
  "\n"
  "JVBERi0xLjQKJcfs\n"
  "j6IK\n"
  "--outer--\n";

static void
test_nested (void)
{
  g_autoptr(LbMimeSummary) s = summarise (nested);
  LbMimeAttachment *img;
  LbMimeAttachment *pdf;

  g_assert_cmpstr (s->preview, ==, "Plain text version");
  /* Only one branch of the alternative is indexed. */
  g_assert_cmpstr (s->body_text, ==, "Plain text version");
  g_assert_cmpuint (s->attachments->len, ==, 2);
  img = s->attachments->pdata[0];
  pdf = s->attachments->pdata[1];
  g_assert_cmpstr (img->content_type, ==, "image/png");
  g_assert_cmpstr (img->part_id, ==, "1.2.2");
  g_assert_cmpstr (img->content_id, ==, "img1@x");
  g_assert_cmpint (img->disposition, ==, LB_MIME_DISPOSITION_INLINE);
  g_assert_null (img->filename);
  g_assert_cmpuint (img->size, ==, 8);
  g_assert_cmpstr (pdf->filename, ==, "report.pdf");
  g_assert_cmpstr (pdf->content_type, ==, "application/pdf");
  g_assert_cmpstr (pdf->part_id, ==, "2");
  g_assert_cmpint (pdf->disposition, ==, LB_MIME_DISPOSITION_ATTACHMENT);
  g_assert_cmpuint (pdf->size, ==, 15);
  g_assert_true (s->has_attachment);
}

static void
test_inline_images_only (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "Content-Type: multipart/related; boundary=r\n"
    "\n"
    "--r\n"
    "Content-Type: text/html\n"
    "\n"
    "<p>Logo: <img src=\"cid:logo\"></p>\n"
    "--r\n"
    "Content-Type: image/gif; name=logo.gif\n"
    "Content-ID: <logo>\n"
    "Content-Disposition: inline; filename=logo.gif\n"
    "\n"
    "GIF89a\n"
    "--r--\n");

  g_assert_cmpstr (s->preview, ==, "Logo:");
  g_assert_cmpuint (s->attachments->len, ==, 1);
  g_assert_cmpstr (((LbMimeAttachment *) s->attachments->pdata[0])->part_id, ==, "2");
  g_assert_false (s->has_attachment);
}

static void
test_rfc2231 (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "Content-Type: text/plain\n"
    "\n"
    "body\n"
    "--b\n"
    "Content-Type: application/vnd.ms-excel\n"
    "Content-Disposition: attachment;\n"
    " filename*0*=utf-8''%E2%82%AC%20rate;\n"
    " filename*1=\" table\";\n"
    " filename*2*=%2Exls\n"
    "\n"
    "x\n"
    "--b\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Disposition: attachment; filename*=iso-8859-1'de'R%E9sum%E9.txt\n"
    "\n"
    "x\n"
    "--b\n"
    "Content-Type: image/jpeg; name=\"=?utf-8?q?F=C3=B6to.jpg?=\"\n"
    "\n"
    "x\n"
    "--b\n"
    "Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=\"C:\\\\Users\\\\x\\\\..\\\\evil.exe\"\n"
    "\n"
    "x\n"
    "--b--\n");

  g_assert_cmpuint (s->attachments->len, ==, 4);
  g_assert_cmpstr (((LbMimeAttachment *) s->attachments->pdata[0])->filename, ==,
                   "€ rate table.xls");
  g_assert_cmpstr (((LbMimeAttachment *) s->attachments->pdata[1])->filename, ==,
                   "Résumé.txt");
  g_assert_cmpstr (((LbMimeAttachment *) s->attachments->pdata[2])->filename, ==, "Föto.jpg");
  /* A non-text part with a filename is an attachment even without a disposition. */
  g_assert_cmpint (((LbMimeAttachment *) s->attachments->pdata[2])->disposition, ==,
                   LB_MIME_DISPOSITION_ATTACHMENT);
  g_assert_cmpstr (((LbMimeAttachment *) s->attachments->pdata[3])->filename, ==, "evil.exe");
  g_assert_cmpstr (s->body_text, ==, "body");
}

static void
test_broken_base64 (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "SGVs bG8g!!\n"
    "d29y#bGQ\n"
    "--b\n"
    "Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=data.bin\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "AAECAwQF\n"
    "BgcI=garbage after padding\n"
    "--b--\n");
  LbMimeAttachment *a;

  g_assert_true (g_str_has_prefix (s->preview, "Hello wor"));
  g_assert_cmpuint (s->attachments->len, ==, 1);
  a = s->attachments->pdata[0];
  g_assert_cmpstr (a->filename, ==, "data.bin");
  g_assert_cmpuint (a->size, >=, 9);
}

static void
test_rfc822_attachment (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "From: a@example.org\n"
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "Content-Type: text/plain\n"
    "\n"
    "See attached.\n"
    "--b\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: inner@example.org\n"
    "Subject: Inner\n"
    "\n"
    "Inner body\n"
    "--b--\n");
  LbMimeAttachment *a;

  g_assert_cmpstr (s->preview, ==, "See attached.");
  g_assert_null (strstr (s->body_text, "Inner body"));
  g_assert_cmpuint (s->attachments->len, ==, 1);
  a = s->attachments->pdata[0];
  g_assert_cmpstr (a->content_type, ==, "message/rfc822");
  g_assert_cmpstr (a->part_id, ==, "2");
  g_assert_cmpuint (a->size, >, 20);
  g_assert_true (s->has_attachment);
}

static void
test_signed_encrypted (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\n"
    "\n"
    "--s\n"
    "Content-Type: text/plain\n"
    "\n"
    "Signed text\n"
    "--s\n"
    "Content-Type: application/pgp-signature; name=signature.asc\n"
    "\n"
    "-----BEGIN PGP SIGNATURE-----\n"
    "--s--\n");
  g_autoptr(LbMimeSummary) e = summarise (
    "Content-Type: multipart/encrypted; boundary=e; protocol=\"application/pgp-encrypted\"\n"
    "\n"
    "--e\n"
    "Content-Type: application/pgp-encrypted\n"
    "\n"
    "Version: 1\n"
    "--e\n"
    "Content-Type: application/octet-stream; name=encrypted.asc\n"
    "\n"
    "-----BEGIN PGP MESSAGE-----\n"
    "--e--\n");

  g_assert_cmpstr (s->preview, ==, "Signed text");
  g_assert_cmpuint (s->attachments->len, ==, 0);
  g_assert_false (s->has_attachment);
  g_assert_cmpuint (e->attachments->len, ==, 0);
  g_assert_cmpstr (e->preview, ==, "");
}

static void
test_html_only_preview (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<html><head><title>Title</title><style>p { color: red }</style></head>\n"
    "<body><!-- hidden --><script>alert('x')</script>\n"
    "<p>Hello &amp; welcome&nbsp;to   the <b>new</b> site &#x263A;&#8364;</p>\n"
    "<div>Second</div></body></html>\n");

  g_assert_cmpstr (s->preview, ==, "Hello & welcome to the new site ☺€ Second");
  g_assert_cmpstr (s->body_text, ==, "Hello & welcome to the new site ☺€\n\nSecond");
}

static void
test_preview_quotes_signature (void)
{
  g_autoptr(LbMimeSummary) s = summarise (
    "Content-Type: text/plain\n"
    "\n"
    "Thanks,   sounds\tgood.\n"
    "\n"
    "On Mon, 2 Jan 2023, Bob wrote:\n"
    "> the old text\n"
    ">> older\n"
    "  > indented quote\n"
    "\n"
    "See you.\n"
    "-- \n"
    "Alice, signature\n");
  g_autoptr(LbMimeSummary) outlook = summarise (
    "Content-Type: text/plain\n"
    "\n"
    "Top posted answer\n"
    "________________________________\n"
    "From: Bob\n"
    "Sent: Monday\n");

  g_assert_cmpstr (s->preview, ==, "Thanks, sounds good. See you.");
  g_assert_cmpstr (outlook->preview, ==, "Top posted answer");
}

static void
test_preview_length (void)
{
  g_autoptr(GString) raw = g_string_new ("Content-Type: text/plain; charset=utf-8\n\n");
  g_autoptr(LbMimeSummary) s = NULL;

  for (guint i = 0; i < 500; i++)
    g_string_append (raw, "é€ ");
  s = summarise (raw->str);
  g_assert_true (g_utf8_validate (s->preview, -1, NULL));
  g_assert_cmpuint (g_utf8_strlen (s->preview, -1), <=, LB_MIME_PREVIEW_CHARS);
  g_assert_cmpuint (g_utf8_strlen (s->preview, -1), >=, LB_MIME_PREVIEW_CHARS - 1);
  g_assert_true (g_str_has_prefix (s->preview, "é€ é€ "));
}

static void
test_text_limit (void)
{
  g_autoptr(GString) raw = g_string_new ("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                                         "Content-Type: text/plain; charset=utf-8\n\n");
  g_autoptr(GMimeMessage) message = NULL;
  g_autoptr(LbMimeSummary) s = NULL;

  for (guint i = 0; i < 3000; i++)
    g_string_append (raw, "ü€");
  g_string_append (raw, "\n--b\nContent-Type: text/html\n\n<p>second part</p>\n--b--\n");
  message = parse (raw->str);
  for (gsize limit = 1000; limit < 1010; limit++)
    {
      g_autoptr(LbMimeSummary) cut = lb_mime_summarise_full (message, LB_MIME_SUMMARY_TEXT,
                                                             limit);

      g_assert_true (g_utf8_validate (cut->body_text, -1, NULL));
      g_assert_cmpuint (strlen (cut->body_text), <=, limit);
      g_assert_cmpuint (strlen (cut->body_text), >=, limit - 4);
    }
  s = lb_mime_summarise_full (message, LB_MIME_SUMMARY_TEXT, 1024 * 1024);
  g_assert_true (g_str_has_suffix (s->body_text, "ü€\n\nsecond part"));
}

static void
check_html (const char *html,
            const char *expected)
{
  g_autofree char *text = lb_mime_html_to_text (html, -1);

  g_assert_cmpstr (text, ==, expected);
}

static void
test_html_to_text (void)
{
  check_html ("", "");
  check_html ("plain", "plain");
  check_html ("  a \n\t b  ", "a b");
  check_html ("a<br>b<br/><br />c", "a\nb\n\nc");
  check_html ("<p>one</p><p>two</p>", "one\n\ntwo");
  check_html ("<div>a</div><div>b</div>", "a\nb");
  check_html ("<ul><li>x</li><li>y</li></ul>", "x\ny");
  check_html ("<h1>Title</h1>text", "Title\n\ntext");
  check_html ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc");
  check_html ("<HEAD><TITLE>t</TITLE></HEAD><BODY>Body</BODY>", "Body");
  check_html ("<head><meta charset=utf-8>no closing head, <b>still</b> shown",
              "no closing head, still shown");
  check_html ("a<script type=\"x\">if (a < b) { x = '</scr' + 'ipt>'; }</script>b", "ab");
  check_html ("a<script>x = '</script>'; y</script>b", "a'; yb");
  check_html ("a<style>p{}</style>b<SCRIPT>x</Script>c", "abc");
  check_html ("a<!-- <p>hidden</p> -->b<!---->c", "abc");
  check_html ("a<!DOCTYPE html>b<?xml version=1?>c<![CDATA[x]]>d", "abcd");
  check_html ("&lt;tag&gt; &amp;amp; &quot;q&quot; &apos;a&apos;", "<tag> &amp; \"q\" 'a'");
  check_html ("&#65;&#x42;&#X43;&#169;&copy;&euro;&hellip;&mdash;", "ABC©©€…—");
  check_html ("&auml;&Ouml;&szlig;&eacute;", "äÖßé");
  check_html ("AT&T &unknown; & &#; &#x; &", "AT&T &unknown; & &#; &#x; &");
  check_html ("&#0;&#xD800;&#x110000;&#99999999999;", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                                                       "\xEF\xBF\xBD");
  check_html ("&#150;&#128;", "–€");
  check_html ("a&nbsp;&nbsp;b&shy;c", "a bc");
  check_html ("<a href=\"x>y\" title='a>b'>link</a>", "link");
  check_html ("a < b and c > d", "a < b and c > d");
  check_html ("<pre>  keep\n  lines</pre>after", "  keep\n  lines\n\nafter");
  check_html ("x <unclosed", "x");
  check_html ("x <a href=\"unclosed>y", "x y");
  check_html ("<script>never closed", "");
  check_html ("<!-- never closed", "");
  check_html ("bad \xff\xfe utf8", "bad \xEF\xBF\xBD\xEF\xBF\xBD utf8");
  {
    g_autofree char *text = lb_mime_html_to_text ("a\0b<p>c", 7);
    g_assert_cmpstr (text, ==, "a b\n\nc");
  }
}

/* Inputs built to make a naive reducer quadratic; each is a megabyte or more. */
static void
test_html_linear (void)
{
  const char *units[] = { "<a x='", "<a x=\"", "<script>", "<head>", "<!--", "<", "&#x",
                          "&amp", "<p", "<a href=\"x\" ", "</", "<title>a</titl", "<style" };

  for (guint u = 0; u < G_N_ELEMENTS (units); u++)
    {
      g_autoptr(GString) html = g_string_new (NULL);
      g_autofree char *text = NULL;

      while (html->len < 1024 * 1024)
        g_string_append (html, units[u]);
      text = lb_mime_html_to_text (html->str, html->len);
      g_assert_true (g_utf8_validate (text, -1, NULL));
    }
}

/* A temporary file with @data in it, removed by the caller. */
static GFile *
temp_file (const char   *name,
           const guint8 *data,
           gsize         len)
{
  g_autofree char *dir = g_dir_make_tmp ("lb-test-mime-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_nonnull (dir);
  g_assert_true (g_file_set_contents (path, (const char *) data, len, NULL));
  return g_file_new_for_path (path);
}

static void
remove_temp_file (GFile *file)
{
  g_autoptr(GFile) parent = g_file_get_parent (file);

  g_assert_true (g_file_delete (file, NULL, NULL));
  g_assert_true (g_file_delete (parent, NULL, NULL));
}

static GBytes *
write_message (GMimeMessage *message)
{
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;

  g_assert_true (lb_mime_write_to_stream (message, out, &error));
  g_assert_no_error (error);
  g_assert_true (g_output_stream_close (out, NULL, NULL));
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static void
assert_wire_format (GBytes  *bytes,
                    gboolean ascii)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gsize line = 0;

  g_assert_cmpuint (len, >, 2);
  for (gsize i = 0; i < len; i++)
    {
      if (data[i] == '\n')
        {
          g_assert_true (i > 0 && data[i - 1] == '\r');
          line = 0;
          continue;
        }
      if (data[i] == '\r')
        g_assert_true (i + 1 < len && data[i + 1] == '\n');
      if (ascii)
        g_assert_cmpuint (data[i], <, 0x80);
      /* RFC 5322 §2.1.1: at most 998 characters before the CRLF. */
      g_assert_cmpuint (++line, <=, 998);
    }
}

static GBytes *
decoded_content (GMimeObject *object)
{
  g_autoptr(GMimeStream) mem = g_mime_stream_mem_new ();
  GByteArray *array;

  g_assert_true (GMIME_IS_PART (object));
  g_assert_cmpint (g_mime_data_wrapper_write_to_stream (g_mime_part_get_content (GMIME_PART (object)),
                                                        mem), >=, 0);
  array = g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (mem));
  return g_bytes_new (array->data, array->len);
}

static void
test_build_round_trip (void)
{
  guint8 binary[3000];
  g_autoptr(GFile) file = NULL;
  g_autoptr(LbMimeDraft) draft = lb_mime_draft_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GMimeMessage) built = NULL;
  g_autoptr(GMimeMessage) parsed = NULL;
  g_autoptr(LbMimeSummary) s = NULL;
  g_autoptr(GBytes) wire = NULL;
  g_autoptr(GPtrArray) parts = NULL;
  g_autoptr(GString) long_line = g_string_new (NULL);
  g_autofree char *body = NULL;
  g_autofree char *text = NULL;
  const char *csv = "name;city\nJörg;Köln\n";
  LbMimeAttachment *a;

  for (guint i = 0; i < sizeof binary; i++)
    binary[i] = (i * 7 + i / 256) & 0xff;
  file = temp_file ("Übersicht 2024.csv", (const guint8 *) csv, strlen (csv));
  for (guint i = 0; i < 300; i++)
    g_string_append (long_line, "wörd ");

  draft->from = lb_mime_address_new ("Jörg Müller", "joerg@example.de");
  g_ptr_array_add (draft->to, lb_mime_address_new ("Élodie, Dupont", "elodie@example.fr"));
  g_ptr_array_add (draft->to, lb_mime_address_new (NULL, "plain@example.org"));
  g_ptr_array_add (draft->cc, lb_mime_address_new ("日本 太郎", "taro@example.jp"));
  g_ptr_array_add (draft->reply_to, lb_mime_address_new (NULL, "list@example.org"));
  draft->subject = g_strdup ("Grüße — a very long subject line that has to be folded because "
                             "it goes on and on, with ünïcödé all over the place ✓");
  draft->in_reply_to = g_strdup ("parent@example.org");
  g_ptr_array_add (draft->references, g_strdup ("root@example.org"));
  g_ptr_array_add (draft->references, g_strdup ("parent@example.org"));
  body = g_strdup_printf ("Hallo Élodie,\n\n%s\n\n.\nFrom the start of a line\n-- \nJörg\n",
                          long_line->str);
  draft->body_text = g_strdup (body);
  draft->body_html = g_strdup ("<p>Hallo <b>Élodie</b></p>");
  g_ptr_array_add (draft->attachments,
                   lb_mime_draft_attachment_new_for_file (file, NULL, NULL));
  {
    g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data (binary, sizeof binary, NULL);
    g_ptr_array_add (draft->attachments,
                     lb_mime_draft_attachment_new_for_stream (in, "données brutes.bin",
                                                              "application/octet-stream"));
  }

  built = lb_mime_build (draft, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lb_mime_message_get_transport (built), ==, LB_MIME_TRANSPORT_7BIT);
  wire = write_message (built);
  assert_wire_format (wire, TRUE);
  {
    gsize len;
    const char *data = g_bytes_get_data (wire, &len);
    g_autofree char *copy = g_strndup (data, len);

    g_assert_nonnull (strstr (copy, "\r\nMIME-Version: 1.0\r\n"));
    g_assert_nonnull (strstr (copy, "\r\nMessage-Id: <"));
    g_assert_nonnull (strstr (copy, "@example.de>\r\n"));
    g_assert_nonnull (strstr (copy, "filename*="));
  }

  parsed = lb_mime_parse_bytes (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire), &error);
  g_assert_no_error (error);
  s = lb_mime_summarise (parsed, LB_MIME_SUMMARY_TEXT);
  g_assert_cmpstr (s->from->name, ==, "Jörg Müller");
  g_assert_cmpstr (s->from->address, ==, "joerg@example.de");
  g_assert_cmpuint (s->to->len, ==, 2);
  g_assert_cmpstr (address_at (s->to, 0)->name, ==, "Élodie, Dupont");
  g_assert_cmpstr (address_at (s->to, 0)->address, ==, "elodie@example.fr");
  g_assert_null (address_at (s->to, 1)->name);
  g_assert_cmpstr (address_at (s->cc, 0)->name, ==, "日本 太郎");
  g_assert_cmpstr (address_at (s->reply_to, 0)->address, ==, "list@example.org");
  g_assert_cmpstr (s->subject, ==, draft->subject);
  g_assert_nonnull (s->message_id);
  g_assert_true (g_str_has_suffix (s->message_id, "@example.de"));
  g_assert_cmpstr (s->in_reply_to, ==, "parent@example.org");
  g_assert_cmpuint (s->references->len, ==, 2);
  g_assert_cmpstr (s->references->pdata[1], ==, "parent@example.org");
  g_assert_cmpint (ABS (s->date - g_get_real_time () / G_USEC_PER_SEC), <, 120);

  text = lb_mime_message_get_text (parsed, 1024 * 1024, NULL);
  g_assert_cmpstr (text, ==, body);
  g_assert_cmpstr (s->body_text, ==, body);
  g_assert_true (s->has_attachment);
  g_assert_cmpuint (s->attachments->len, ==, 2);
  a = s->attachments->pdata[0];
  g_assert_cmpstr (a->filename, ==, "Übersicht 2024.csv");
  g_assert_cmpstr (a->content_type, ==, "text/csv");
  g_assert_cmpuint (a->size, ==, strlen (csv));
  g_assert_cmpstr (a->part_id, ==, "2");
  a = s->attachments->pdata[1];
  g_assert_cmpstr (a->filename, ==, "données brutes.bin");
  g_assert_cmpstr (a->content_type, ==, "application/octet-stream");
  g_assert_cmpuint (a->size, ==, sizeof binary);
  g_assert_cmpstr (a->part_id, ==, "3");

  parts = lb_mime_message_get_attachment_parts (parsed);
  g_assert_cmpuint (parts->len, ==, 2);
  {
    g_autoptr(GBytes) got_csv = decoded_content (parts->pdata[0]);
    g_autoptr(GBytes) got_bin = decoded_content (parts->pdata[1]);
    g_autoptr(GBytes) want_bin = g_bytes_new_static (binary, sizeof binary);
    /* An 8-bit text attachment goes as base64, so its bytes come back exactly. */
    g_assert_cmpmem (g_bytes_get_data (got_csv, NULL), g_bytes_get_size (got_csv), csv,
                     strlen (csv));
    g_assert_true (g_bytes_equal (got_bin, want_bin));
  }

  /* The HTML alternative is there too. */
  {
    GMimeObject *top = g_mime_message_get_mime_part (parsed);
    GMimeObject *alt = g_mime_multipart_get_part (GMIME_MULTIPART (top), 0);
    GMimeObject *html = g_mime_multipart_get_part (GMIME_MULTIPART (alt), 1);
    g_autofree char *html_text = lb_mime_part_read_text (GMIME_PART (html), 4096, NULL);

    g_assert_true (g_mime_content_type_is_type (g_mime_object_get_content_type (alt),
                                                "multipart", "alternative"));
    g_assert_cmpstr (html_text, ==, "<p>Hallo <b>Élodie</b></p>");
  }
  remove_temp_file (file);
}

static void
test_build_transport (void)
{
  g_autoptr(LbMimeDraft) ascii = lb_mime_draft_new ();
  g_autoptr(LbMimeDraft) eight = lb_mime_draft_new ();
  g_autoptr(LbMimeDraft) intl = lb_mime_draft_new ();
  g_autoptr(GMimeMessage) m1 = NULL;
  g_autoptr(GMimeMessage) m2 = NULL;
  g_autoptr(GMimeMessage) m3 = NULL;
  g_autoptr(GBytes) wire = NULL;
  g_autoptr(GMimeMessage) back = NULL;
  g_autoptr(LbMimeSummary) s = NULL;

  ascii->from = lb_mime_address_new (NULL, "a@example.org");
  ascii->body_text = g_strdup ("hello\n");
  m1 = lb_mime_build (ascii, NULL);
  g_assert_cmpint (lb_mime_message_get_transport (m1), ==, LB_MIME_TRANSPORT_7BIT);

  eight->from = lb_mime_address_new ("Zoë", "a@example.org");
  eight->subject = g_strdup ("Zoë");
  eight->body_text = g_strdup ("Grüße\n");
  eight->allow_8bit = TRUE;
  m2 = lb_mime_build (eight, NULL);
  g_assert_cmpint (lb_mime_message_get_transport (m2), ==, LB_MIME_TRANSPORT_8BIT);
  wire = write_message (m2);
  assert_wire_format (wire, FALSE);
  back = lb_mime_parse_bytes (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire), NULL);
  s = lb_mime_summarise (back, LB_MIME_SUMMARY_NONE);
  g_assert_cmpstr (s->preview, ==, "Grüße");
  g_assert_cmpstr (s->from->name, ==, "Zoë");

  intl->from = lb_mime_address_new (NULL, "a@example.org");
  g_ptr_array_add (intl->to, lb_mime_address_new (NULL, "jörg@bücher.example"));
  intl->body_text = g_strdup ("hello\n");
  m3 = lb_mime_build (intl, NULL);
  g_assert_cmpint (lb_mime_message_get_transport (m3) & LB_MIME_TRANSPORT_UTF8, !=, 0);
}

static void
test_build_errors (void)
{
  g_autoptr(LbMimeDraft) draft = lb_mime_draft_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GMimeMessage) message = NULL;
  g_autoptr(GFile) missing = g_file_new_for_path ("/nonexistent/letterbox/file.txt");
  g_autoptr(GOutputStream) closed = g_memory_output_stream_new_resizable ();

  message = lb_mime_build (draft, &error);
  g_assert_null (message);
  g_assert_error (error, LB_MIME_ERROR, LB_MIME_ERROR_INVALID);
  g_clear_error (&error);

  draft->from = lb_mime_address_new (NULL, "a@example.org");
  g_ptr_array_add (draft->attachments,
                   lb_mime_draft_attachment_new_for_file (missing, NULL, NULL));
  message = lb_mime_build (draft, &error);
  g_assert_null (message);
  g_assert_error (error, LB_MIME_ERROR, LB_MIME_ERROR_SOURCE);
  g_clear_error (&error);

  g_ptr_array_set_size (draft->attachments, 0);
  message = lb_mime_build (draft, &error);
  g_assert_no_error (error);
  g_assert_true (g_output_stream_close (closed, NULL, NULL));
  g_assert_false (lb_mime_write_to_stream (message, closed, &error));
  g_assert_error (error, LB_MIME_ERROR, LB_MIME_ERROR_WRITE);
}

static void
test_subjects (void)
{
  const struct
  {
    const char *in;
    const char *reply;
    const char *forward;
  } cases[] = {
    { "Hello", "Re: Hello", "Fwd: Hello" },
    { "Re: Hello", "Re: Hello", "Fwd: Re: Hello" },
    { "RE: re: Re:Hello", "Re: Hello", "Fwd: RE: re: Re:Hello" },
    { "AW: Sv: VS: Antw: Hello", "Re: Hello", "Fwd: AW: Sv: VS: Antw: Hello" },
    { "Re[2]: Re(3): Hello", "Re: Hello", "Fwd: Re[2]: Re(3): Hello" },
    { "Re : Bonjour", "Re: Bonjour", "Fwd: Re : Bonjour" },
    { "Fwd: Hello", "Re: Fwd: Hello", "Fwd: Hello" },
    { "FW: WG: Hello", "Re: FW: WG: Hello", "Fwd: Hello" },
    { "Regarding: x", "Re: Regarding: x", "Fwd: Regarding: x" },
    { "Revue", "Re: Revue", "Fwd: Revue" },
    { "", "Re: ", "Fwd: " },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *reply = lb_mime_reply_subject (cases[i].in);
      g_autofree char *forward = lb_mime_forward_subject (cases[i].in);

      g_assert_cmpstr (reply, ==, cases[i].reply);
      g_assert_cmpstr (forward, ==, cases[i].forward);
    }
}

static void
test_quote_text (void)
{
  g_autofree char *q = lb_mime_quote_text ("Hi,\r\n\r\n> earlier\n>> older\ntext\n\n\n-- \nsig\n");

  g_assert_cmpstr (q, ==, "> Hi,\n>\n>> earlier\n>>> older\n> text\n");
}

static const char original[] =
  "From: Bob Example <bob@example.org>\n"
  "To: me@example.org, carol@example.org\n"
  "Cc: Dave <dave@example.org>, ME@example.org, carol@example.org\n"
  "Subject: RE: Plans\n"
  "Date: Mon, 2 Jan 2023 10:00:00 +0000\n"
  "Message-ID: <orig@example.org>\n"
  "References: <root@example.org> <mid@example.org>\n"
  "Content-Type: text/plain; charset=utf-8\n"
  "\n"
  "Let's meet.\n"
  "> you asked\n"
  "-- \n"
  "Bob\n";

static void
test_reply (void)
{
  g_autoptr(GMimeMessage) message = parse (original);
  g_autoptr(LbMimeDraft) reply = lb_mime_reply_draft (message, "me@example.org", FALSE);
  g_autoptr(LbMimeDraft) all = lb_mime_reply_draft (message, "me@example.org", TRUE);
  g_autoptr(GMimeMessage) built = NULL;
  g_autoptr(LbMimeSummary) s = NULL;

  g_assert_cmpstr (reply->subject, ==, "Re: Plans");
  g_assert_cmpstr (reply->from->address, ==, "me@example.org");
  g_assert_cmpuint (reply->to->len, ==, 1);
  g_assert_cmpstr (address_at (reply->to, 0)->name, ==, "Bob Example");
  g_assert_cmpstr (address_at (reply->to, 0)->address, ==, "bob@example.org");
  g_assert_cmpuint (reply->cc->len, ==, 0);
  g_assert_cmpstr (reply->in_reply_to, ==, "orig@example.org");
  g_assert_cmpuint (reply->references->len, ==, 3);
  g_assert_cmpstr (reply->references->pdata[0], ==, "root@example.org");
  g_assert_cmpstr (reply->references->pdata[2], ==, "orig@example.org");
  g_assert_nonnull (strstr (reply->body_text, "Bob Example wrote:\n> Let's meet.\n>> you asked\n"));
  g_assert_null (strstr (reply->body_text, "> Bob"));
  g_assert_nonnull (strstr (reply->body_text, "2023"));

  /* Reply all: the others as Cc, without me (in any case) and without repeats. */
  g_assert_cmpuint (all->to->len, ==, 1);
  g_assert_cmpuint (all->cc->len, ==, 2);
  g_assert_cmpstr (address_at (all->cc, 0)->address, ==, "carol@example.org");
  g_assert_cmpstr (address_at (all->cc, 1)->address, ==, "dave@example.org");

  /* The draft builds into a message that threads under the original. */
  built = lb_mime_build (all, NULL);
  s = lb_mime_summarise (built, LB_MIME_SUMMARY_NONE);
  g_assert_cmpstr (s->in_reply_to, ==, "orig@example.org");
  g_assert_cmpuint (s->references->len, ==, 3);
}

static void
test_reply_to_and_own (void)
{
  g_autoptr(GMimeMessage) list = parse ("From: Bob <bob@example.org>\n"
                                        "Reply-To: List <list@example.org>\n"
                                        "To: list@example.org\n"
                                        "Subject: Topic\n"
                                        "In-Reply-To: <parent@example.org>\n"
                                        "\n"
                                        "x\n");
  g_autoptr(GMimeMessage) own = parse ("From: Me <me@example.org>\n"
                                       "To: Bob <bob@example.org>\n"
                                       "Subject: Mine\n"
                                       "\n"
                                       "x\n");
  g_autoptr(LbMimeDraft) r1 = lb_mime_reply_draft (list, "me@example.org", TRUE);
  g_autoptr(LbMimeDraft) r2 = lb_mime_reply_draft (own, "me@example.org", FALSE);

  g_assert_cmpuint (r1->to->len, ==, 1);
  g_assert_cmpstr (address_at (r1->to, 0)->address, ==, "list@example.org");
  g_assert_cmpuint (r1->cc->len, ==, 1);
  g_assert_cmpstr (address_at (r1->cc, 0)->address, ==, "bob@example.org");
  /* No References and no Message-ID: the parent's In-Reply-To carries the thread. */
  g_assert_cmpuint (r1->references->len, ==, 1);
  g_assert_cmpstr (r1->references->pdata[0], ==, "parent@example.org");
  g_assert_null (r1->in_reply_to);
  g_assert_nonnull (strstr (r1->body_text, "Bob wrote:\n> x\n"));

  g_assert_cmpuint (r2->to->len, ==, 1);
  g_assert_cmpstr (address_at (r2->to, 0)->address, ==, "bob@example.org");
}

static void
test_reply_html_only (void)
{
  g_autoptr(GMimeMessage) message = parse ("From: a@example.org\n"
                                           "Content-Type: text/html\n"
                                           "\n"
                                           "<p>First</p><p>Second<br>line</p>\n");
  g_autoptr(LbMimeDraft) reply = lb_mime_reply_draft (message, NULL, FALSE);

  g_assert_null (reply->from);
  g_assert_nonnull (strstr (reply->body_text, "a@example.org wrote:\n"
                                              "> First\n>\n> Second\n> line\n"));
}

static void
test_references_trimmed (void)
{
  g_autoptr(GString) raw = g_string_new ("From: a@example.org\nMessage-ID: <last@x>\nReferences:");
  g_autoptr(GMimeMessage) message = NULL;
  g_autoptr(LbMimeDraft) reply = NULL;

  for (guint i = 0; i < 40; i++)
    g_string_append_printf (raw, " <r%u@x>", i);
  g_string_append (raw, "\n\nx\n");
  message = parse (raw->str);
  reply = lb_mime_reply_draft (message, NULL, FALSE);
  g_assert_cmpuint (reply->references->len, ==, LB_MIME_REFERENCES_MAX);
  g_assert_cmpstr (reply->references->pdata[0], ==, "r0@x");
  g_assert_cmpstr (reply->references->pdata[1], ==, "r22@x");
  g_assert_cmpstr (reply->references->pdata[LB_MIME_REFERENCES_MAX - 1], ==, "last@x");
}

static void
test_forward_inline (void)
{
  g_autoptr(GMimeMessage) message = parse (nested);
  g_autoptr(LbMimeDraft) fwd = lb_mime_forward_draft (message, TRUE);
  g_autoptr(GMimeMessage) built = NULL;
  g_autoptr(GBytes) wire = NULL;
  g_autoptr(GMimeMessage) back = NULL;
  g_autoptr(LbMimeSummary) s = NULL;

  g_assert_cmpstr (fwd->subject, ==, "Fwd: ");
  g_assert_nonnull (strstr (fwd->body_text, "-------- Forwarded Message --------\n"));
  g_assert_nonnull (strstr (fwd->body_text, "From: a@example.org\n"));
  g_assert_nonnull (strstr (fwd->body_text, "\nPlain text version\n"));
  /* The PDF goes along; the inline image belonged to the HTML, which does not. */
  g_assert_cmpuint (fwd->attachments->len, ==, 1);

  fwd->from = lb_mime_address_new (NULL, "me@example.org");
  built = lb_mime_build (fwd, NULL);
  wire = write_message (built);
  back = lb_mime_parse_bytes (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire), NULL);
  s = lb_mime_summarise (back, LB_MIME_SUMMARY_NONE);
  g_assert_cmpuint (s->attachments->len, ==, 1);
  g_assert_cmpstr (((LbMimeAttachment *) s->attachments->pdata[0])->filename, ==, "report.pdf");
  g_assert_cmpuint (((LbMimeAttachment *) s->attachments->pdata[0])->size, ==, 15);
}

static void
test_forward_attached (void)
{
  g_autoptr(GMimeMessage) message = parse (original);
  g_autoptr(LbMimeDraft) fwd = lb_mime_forward_draft (message, FALSE);
  g_autoptr(GMimeMessage) built = NULL;
  g_autoptr(GBytes) wire = NULL;
  g_autoptr(GMimeMessage) back = NULL;
  g_autoptr(LbMimeSummary) s = NULL;
  LbMimeAttachment *a;

  g_assert_cmpstr (fwd->subject, ==, "Fwd: RE: Plans");
  fwd->from = lb_mime_address_new (NULL, "me@example.org");
  g_ptr_array_add (fwd->to, lb_mime_address_new (NULL, "eve@example.org"));
  built = lb_mime_build (fwd, NULL);
  wire = write_message (built);
  assert_wire_format (wire, TRUE);
  back = lb_mime_parse_bytes (g_bytes_get_data (wire, NULL), g_bytes_get_size (wire), NULL);
  s = lb_mime_summarise (back, LB_MIME_SUMMARY_NONE);
  g_assert_true (s->has_attachment);
  g_assert_cmpuint (s->attachments->len, ==, 1);
  a = s->attachments->pdata[0];
  g_assert_cmpstr (a->content_type, ==, "message/rfc822");
  g_assert_cmpstr (a->filename, ==, "RE: Plans.eml");
  {
    GMimeObject *top = g_mime_message_get_mime_part (back);
    GMimeObject *part = g_mime_multipart_get_part (GMIME_MULTIPART (top), 1);
    GMimeMessage *inner = g_mime_message_part_get_message (GMIME_MESSAGE_PART (part));
    g_autoptr(LbMimeSummary) inner_summary = lb_mime_summarise (inner, LB_MIME_SUMMARY_NONE);

    g_assert_cmpstr (inner_summary->message_id, ==, "orig@example.org");
    g_assert_cmpstr (inner_summary->preview, ==, "Let's meet.");
  }
}

/* The fuzzer's seed corpus, replayed here under gcc (and the sanitizers). */
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
      g_autofree char *text = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GMimeMessage) message = NULL;
      gsize len;

      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      text = lb_mime_html_to_text (data, len);
      g_assert_true (g_utf8_validate (text, -1, NULL));
      message = lb_mime_parse_bytes ((const guint8 *) data, len, &error);
      g_assert_true ((message != NULL) != (error != NULL));
      if (message != NULL)
        {
          g_autoptr(LbMimeSummary) s = lb_mime_summarise (message, LB_MIME_SUMMARY_TEXT);
          g_autoptr(LbMimeDraft) reply = lb_mime_reply_draft (message, "me@example.org", TRUE);
          g_autoptr(LbMimeDraft) fwd = lb_mime_forward_draft (message, TRUE);
          g_autoptr(GMimeMessage) built = lb_mime_build (reply, NULL);
          g_autoptr(GBytes) wire = write_message (built);

          g_assert_true (g_utf8_validate (s->subject, -1, NULL));
          g_assert_true (g_utf8_validate (s->preview, -1, NULL));
          g_assert_true (g_utf8_validate (s->body_text, -1, NULL));
          g_assert_true (g_utf8_validate (fwd->body_text, -1, NULL));
          assert_wire_format (wire, TRUE);
        }
      n++;
    }
  g_assert_cmpuint (n, >=, 12);
}

/* sendmail -t: To, Cc and Bcc (groups opened, each address once), the From mailbox, and
 * the message without Bcc — folded continuation lines included, every other byte kept. */
static void
test_sendmail_envelope (void)
{
  static const char input[] =
    "From: \"Ann Example\" <ann@example.org>, other@example.org\r\n"
    "Sender: sec@example.org\r\n"
    "To: Bob <bob@example.net>, team: carol@example.net, dan@example.net;\r\n"
    "Cc: BOB@example.net,\r\n"
    " eve@example.com\r\n"
    "bcc: hidden@example.com,\r\n"
    "\tsecret@example.com\r\n"
    "Subject: Bcc: not a field here\r\n"
    "\r\n"
    "Bcc: in the body stays\r\n";
  static const char expected[] =
    "From: \"Ann Example\" <ann@example.org>, other@example.org\r\n"
    "Sender: sec@example.org\r\n"
    "To: Bob <bob@example.net>, team: carol@example.net, dan@example.net;\r\n"
    "Cc: BOB@example.net,\r\n"
    " eve@example.com\r\n"
    "Subject: Bcc: not a field here\r\n"
    "\r\n"
    "Bcc: in the body stays\r\n";
  const char *const want[] = { "bob@example.net", "carol@example.net", "dan@example.net",
                               "eve@example.com", "hidden@example.com", "secret@example.com",
                               NULL };
  g_autoptr(GBytes) bytes = g_bytes_new_static (input, strlen (input));
  g_autoptr(GError) error = NULL;
  g_autoptr(LbMimeEnvelope) envelope = lb_mime_envelope_from_message (bytes, &error);
  gsize len;
  const char *out;

  g_assert_no_error (error);
  g_assert_cmpstr (envelope->sender, ==, "ann@example.org");
  g_assert_cmpstrv (envelope->recipients, want);
  out = g_bytes_get_data (envelope->message, &len);
  g_assert_cmpmem (out, len, expected, strlen (expected));

  /* LF line ends, no body, no From: Sender is the sender. */
  {
    static const char lf[] = "Sender: s@example.org\nTo: a@example.org\nBcc: b@example.org";
    g_autoptr(GBytes) in = g_bytes_new_static (lf, strlen (lf));
    g_autoptr(LbMimeEnvelope) e = lb_mime_envelope_from_message (in, &error);
    const char *const two[] = { "a@example.org", "b@example.org", NULL };

    g_assert_no_error (error);
    g_assert_cmpstr (e->sender, ==, "s@example.org");
    g_assert_cmpstrv (e->recipients, two);
    out = g_bytes_get_data (e->message, &len);
    g_assert_cmpmem (out, len, "Sender: s@example.org\nTo: a@example.org\n", 40);
  }
}

static void
test_sendmail_envelope_errors (void)
{
  static const char *const inputs[] = {
    "",
    "Subject: nobody\r\n\r\nTo: in-the-body@example.org\r\n",
    "To: undisclosed-recipients:;\r\n\r\nx\r\n",
    "To: \r\nCc:\r\n\r\n",
  };

  for (guint i = 0; i < G_N_ELEMENTS (inputs); i++)
    {
      g_autoptr(GBytes) in = g_bytes_new_static (inputs[i], strlen (inputs[i]));
      g_autoptr(GError) error = NULL;
      g_autoptr(LbMimeEnvelope) e = lb_mime_envelope_from_message (in, &error);

      g_assert_null (e);
      g_assert_true (error->domain == LB_MIME_ERROR);
      g_assert_nonnull (error->message);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();

  g_test_add_func ("/mime/parse/not-a-message", test_parse_not_message);
  g_test_add_func ("/mime/parse/stream", test_parse_stream);
  g_test_add_func ("/mime/parse/no-headers", test_parse_no_headers);
  g_test_add_func ("/mime/summary/envelope", test_envelope);
  g_test_add_func ("/mime/summary/bad-date", test_bad_date);
  g_test_add_func ("/mime/summary/rfc2047", test_rfc2047);
  g_test_add_func ("/mime/summary/8bit-headers", test_8bit_headers);
  g_test_add_func ("/mime/summary/body-charsets", test_body_charsets);
  g_test_add_func ("/mime/summary/long-header", test_long_header);
  g_test_add_func ("/mime/summary/nested", test_nested);
  g_test_add_func ("/mime/summary/inline-images-only", test_inline_images_only);
  g_test_add_func ("/mime/summary/rfc2231", test_rfc2231);
  g_test_add_func ("/mime/summary/broken-base64", test_broken_base64);
  g_test_add_func ("/mime/summary/rfc822-attachment", test_rfc822_attachment);
  g_test_add_func ("/mime/summary/signed-encrypted", test_signed_encrypted);
  g_test_add_func ("/mime/summary/html-only", test_html_only_preview);
  g_test_add_func ("/mime/summary/preview-quotes-signature", test_preview_quotes_signature);
  g_test_add_func ("/mime/summary/preview-length", test_preview_length);
  g_test_add_func ("/mime/summary/text-limit", test_text_limit);
  g_test_add_func ("/mime/html/to-text", test_html_to_text);
  g_test_add_func ("/mime/html/linear", test_html_linear);
  g_test_add_func ("/mime/build/round-trip", test_build_round_trip);
  g_test_add_func ("/mime/build/transport", test_build_transport);
  g_test_add_func ("/mime/build/errors", test_build_errors);
  g_test_add_func ("/mime/quote/subjects", test_subjects);
  g_test_add_func ("/mime/quote/quote-text", test_quote_text);
  g_test_add_func ("/mime/quote/reply", test_reply);
  g_test_add_func ("/mime/quote/reply-to-and-own", test_reply_to_and_own);
  g_test_add_func ("/mime/quote/reply-html-only", test_reply_html_only);
  g_test_add_func ("/mime/quote/references-trimmed", test_references_trimmed);
  g_test_add_func ("/mime/quote/forward-inline", test_forward_inline);
  g_test_add_func ("/mime/quote/forward-attached", test_forward_attached);
  g_test_add_func ("/mime/corpus", test_corpus);
  g_test_add_func ("/mime/envelope/from-header", test_sendmail_envelope);
  g_test_add_func ("/mime/envelope/errors", test_sendmail_envelope_errors);

  return g_test_run ();
}
