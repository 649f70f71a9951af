/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lb-smtp-data.h"
#include "lb-smtp-reply.h"

/* SMTP replies from real servers (Postfix, Dovecot submission) and RFC 5321/3463/2034
 * examples, on every split of the input, and malformed ones. */

static GPtrArray *
parse_all (const char  *input,
           gsize        len,
           gsize        cut,
           GError     **error)
{
  g_autoptr(LbSmtpReplyParser) parser = lb_smtp_reply_parser_new ();
  GPtrArray *replies = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_smtp_reply_free);
  LbSmtpReply *r;

  if (!lb_smtp_reply_parser_feed (parser, (const guint8 *) input, cut, error) ||
      !lb_smtp_reply_parser_feed (parser, (const guint8 *) input + cut, len - cut, error))
    {
      g_ptr_array_unref (replies);
      return NULL;
    }
  while ((r = lb_smtp_reply_parser_pop (parser)) != NULL)
    g_ptr_array_add (replies, r);
  return replies;
}

static const char postfix_session[] =
  "220 mx.example.test ESMTP\r\n"
  "250-mx.example.test\r\n"
  "250-PIPELINING\r\n"
  "250-SIZE 52428800\r\n"
  "250-VRFY\r\n"
  "250-ETRN\r\n"
  "250-STARTTLS\r\n"
  "250-AUTH PLAIN LOGIN scram-sha-256\r\n"
  "250-ENHANCEDSTATUSCODES\r\n"
  "250-8BITMIME\r\n"
  "250-DSN\r\n"
  "250-SMTPUTF8\r\n"
  "250 CHUNKING\r\n"
  "250 2.1.0 Ok\r\n"
  "550-5.1.1 <nobody@example.test>: Recipient address rejected:\r\n"
  "550 5.1.1 User unknown in virtual mailbox table\r\n"
  "354 End data with <CR><LF>.<CR><LF>\r\n"
  "451 4.3.0 Temporary lookup failure\r\n"
  "221 2.0.0 Bye\r\n"
  "250\r\n";

static void
test_session (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) replies = parse_all (postfix_session, sizeof postfix_session - 1, 0, &error);
  g_autoptr(LbSmtpEhlo) ehlo = NULL;
  g_autofree char *refused = NULL;
  LbSmtpReply *r;

  g_assert_no_error (error);
  g_assert_cmpuint (replies->len, ==, 8);

  ehlo = lb_smtp_ehlo_parse (g_ptr_array_index (replies, 1), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ehlo->domain, ==, "mx.example.test");
  g_assert_cmpuint (ehlo->caps, ==, LB_SMTP_CAP_PIPELINING | LB_SMTP_CAP_SIZE |
                                      LB_SMTP_CAP_STARTTLS | LB_SMTP_CAP_AUTH |
                                      LB_SMTP_CAP_ENHANCEDSTATUSCODES | LB_SMTP_CAP_8BITMIME |
                                      LB_SMTP_CAP_DSN | LB_SMTP_CAP_SMTPUTF8 |
                                      LB_SMTP_CAP_CHUNKING);
  g_assert_cmpuint (ehlo->size_limit, ==, 52428800);
  g_assert_cmpstrv (ehlo->auth_mechanisms, ((const char *[]) { "PLAIN", "LOGIN", "SCRAM-SHA-256", NULL }));

  r = g_ptr_array_index (replies, 2);
  g_assert_cmpuint (r->code, ==, 250);
  g_assert_true (r->has_enhanced);
  g_assert_cmpuint (r->enhanced[1], ==, 1);
  g_assert_cmpstr (g_ptr_array_index (r->lines, 0), ==, "Ok");

  r = g_ptr_array_index (replies, 3);
  g_assert_cmpuint (r->code, ==, 550);
  g_assert_false (lb_smtp_reply_is_positive (r));
  g_assert_false (lb_smtp_reply_is_transient (r));
  refused = lb_smtp_reply_dup_text (r);
  g_assert_cmpstr (refused, ==, "550 5.1.1 <nobody@example.test>: Recipient address rejected: "
                                "User unknown in virtual mailbox table");

  g_assert_true (lb_smtp_reply_is_positive (g_ptr_array_index (replies, 4)));
  g_assert_true (lb_smtp_reply_is_transient (g_ptr_array_index (replies, 5)));
  r = g_ptr_array_index (replies, 7);
  g_assert_cmpuint (r->code, ==, 250);
  g_assert_cmpstr (g_ptr_array_index (r->lines, 0), ==, "");
}

static void
test_any_split (void)
{
  gsize len = sizeof postfix_session - 1;

  for (gsize cut = 0; cut <= len; cut++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) replies = parse_all (postfix_session, len, cut, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (replies->len, ==, 8);
      g_assert_cmpuint (((LbSmtpReply *) g_ptr_array_index (replies, 3))->lines->len, ==, 2);
    }
}

static void
assert_fails (const char *input,
              gsize       len,
              int         code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) replies = parse_all (input, len, 0, &error);

  g_assert_null (replies);
  g_assert_error (error, LB_SMTP_PARSE_ERROR, code);
}

static void
test_malformed (void)
{
  g_autoptr(GString) long_line = g_string_new ("250 ");
  g_autoptr(GString) many = g_string_new (NULL);

  assert_fails ("hello\r\n", 7, LB_SMTP_PARSE_ERROR_SYNTAX);
  assert_fails ("25\r\n", 4, LB_SMTP_PARSE_ERROR_SYNTAX);
  assert_fails ("2500 x\r\n", 8, LB_SMTP_PARSE_ERROR_SYNTAX);
  assert_fails ("650 x\r\n", 7, LB_SMTP_PARSE_ERROR_SYNTAX);
  assert_fails ("250-a\r\n251 b\r\n", 14, LB_SMTP_PARSE_ERROR_SYNTAX);
  assert_fails ("250 a\0b\r\n", 9, LB_SMTP_PARSE_ERROR_SYNTAX);
  for (guint i = 0; i < 5000; i++)
    g_string_append_c (long_line, 'x');
  assert_fails (long_line->str, long_line->len, LB_SMTP_PARSE_ERROR_TOO_LONG);
  for (guint i = 0; i < 1001; i++)
    g_string_append (many, "250-x\r\n");
  assert_fails (many->str, many->len, LB_SMTP_PARSE_ERROR_TOO_LONG);

  /* Not an enhanced code: kept as text. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) replies = parse_all ("250 2.1 almost\r\n", 16, 0, &error);
    LbSmtpReply *r = g_ptr_array_index (replies, 0);

    g_assert_false (r->has_enhanced);
    g_assert_cmpstr (g_ptr_array_index (r->lines, 0), ==, "2.1 almost");
  }
}

/* The fuzzer's seeds, replayed in every build: each parses or fails cleanly. */
static void
test_corpus (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "smtp-reply", NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *data = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) replies = NULL;
      gsize len;

      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      replies = parse_all (data, len, len / 2, &error);
      g_assert_true ((replies != NULL) != (error != NULL));
      n++;
    }
  g_assert_cmpuint (n, >=, 10);
}

static GByteArray *
encode (const char *input,
        gsize       len,
        gsize       cut1,
        gsize       cut2,
        gboolean    dot_stuff)
{
  GByteArray *out = g_byte_array_new ();
  guint state = 0;

  lb_smtp_data_encode (&state, (const guint8 *) input, cut1, dot_stuff, out);
  lb_smtp_data_encode (&state, (const guint8 *) input + cut1, cut2 - cut1, dot_stuff, out);
  lb_smtp_data_encode (&state, (const guint8 *) input + cut2, len - cut2, dot_stuff, out);
  lb_smtp_data_encode_finish (&state, dot_stuff, out);
  return out;
}

/* What goes after DATA and BDAT: CRLF everywhere, dots doubled at line starts for DATA,
 * the same whichever way the message is cut into reads. */
static void
test_data_encode (void)
{
  static const struct
  {
    const char *input;
    const char *data;
    const char *bdat;
  } cases[] = {
    { "", ".\r\n", "" },
    { "a", "a\r\n.\r\n", "a\r\n" },
    { "a\r\nb\r\n", "a\r\nb\r\n.\r\n", "a\r\nb\r\n" },
    { "a\nb\n", "a\r\nb\r\n.\r\n", "a\r\nb\r\n" },
    { "a\rb", "a\r\nb\r\n.\r\n", "a\r\nb\r\n" },
    { "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n" },
    { ".\r\n", "..\r\n.\r\n", ".\r\n" },
    { ".a\n..b\nc.d\n.", "..a\r\n...b\r\nc.d\r\n..\r\n.\r\n", ".a\r\n..b\r\nc.d\r\n.\r\n" },
    { "x\r\n.\r\n\r\n.", "x\r\n..\r\n\r\n..\r\n.\r\n", "x\r\n.\r\n\r\n.\r\n" },
    { "\n\n", "\r\n\r\n.\r\n", "\r\n\r\n" },
    { "caf\xc3\xa9\x00z\n", "caf\xc3\xa9\x00z\r\n.\r\n", "caf\xc3\xa9\x00z\r\n" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      /* The inputs hold no NUL but the one that the last case needs counted. */
      gsize len = i == G_N_ELEMENTS (cases) - 1 ? 8 : strlen (cases[i].input);
      gsize data_len = i == G_N_ELEMENTS (cases) - 1 ? 12 : strlen (cases[i].data);
      gsize bdat_len = i == G_N_ELEMENTS (cases) - 1 ? 9 : strlen (cases[i].bdat);

      for (gsize cut1 = 0; cut1 <= len; cut1++)
        for (gsize cut2 = cut1; cut2 <= len; cut2++)
          {
            g_autoptr(GByteArray) data = encode (cases[i].input, len, cut1, cut2, TRUE);
            g_autoptr(GByteArray) bdat = encode (cases[i].input, len, cut1, cut2, FALSE);

            g_assert_cmpmem (data->data, data->len, cases[i].data, data_len);
            g_assert_cmpmem (bdat->data, bdat->len, cases[i].bdat, bdat_len);
          }
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/smtp/reply/session", test_session);
  g_test_add_func ("/smtp/reply/any-split", test_any_split);
  g_test_add_func ("/smtp/reply/malformed", test_malformed);
  g_test_add_func ("/smtp/reply/corpus", test_corpus);
  g_test_add_func ("/smtp/data/encode", test_data_encode);

  return g_test_run ();
}
