/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-pop3-parser.h"

/* POP3 responses from a Dovecot session, on every split of the input: status lines with
 * RFC 2449 codes, CAPA/LIST/UIDL data, RETR streamed with dot-stuffing undone; and
 * malformed input. */

static const LbPop3Expect session_expect[] = {
  LB_POP3_EXPECT_LINE,      /* greeting */
  LB_POP3_EXPECT_MULTILINE, /* CAPA */
  LB_POP3_EXPECT_LINE,      /* USER */
  LB_POP3_EXPECT_LINE,      /* PASS (refused) */
  LB_POP3_EXPECT_LINE,      /* PASS */
  LB_POP3_EXPECT_MULTILINE, /* LIST */
  LB_POP3_EXPECT_MULTILINE, /* UIDL */
  LB_POP3_EXPECT_STREAMED,  /* RETR 1 */
  LB_POP3_EXPECT_MULTILINE, /* TOP 2 0 */
  LB_POP3_EXPECT_STREAMED,  /* RETR 9: -ERR */
  LB_POP3_EXPECT_LINE,      /* QUIT */
};

static const char session[] =
  "+OK Dovecot (Debian) ready.\r\n"
  "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\n"
  "USER\r\nSASL PLAIN LOGIN\r\n.\r\n"
  "+OK\r\n"
  "-ERR [AUTH] Authentication failed.\r\n"
  "+OK Logged in.\r\n"
  "+OK 2 messages:\r\n1 120\r\n2 60\r\n.\r\n"
  "+OK\r\n1 000000017a1b2c3d\r\n2 000000027a1b2c3d\r\n.\r\n"
  "+OK 120 octets\r\nSubject: dots\r\n\r\n..leading dot\r\n...two\r\n.\r\n"
  "+OK\r\nSubject: second\r\n\r\n.\r\n"
  "-ERR [SYS/PERM] There's no message 9.\r\n"
  "+OK Logging out.\r\n";

static const char retr_body[] = "Subject: dots\r\n\r\n.leading dot\r\n..two\r\n";

static gboolean
collect (const guint8 *data,
         gsize         len,
         gpointer      user_data,
         GError      **error)
{
  g_byte_array_append (user_data, data, (guint) len);
  return TRUE;
}

static GPtrArray *
parse_session (gsize        cut,
               GByteArray  *streamed,
               GError     **error)
{
  g_autoptr(LbPop3Parser) parser = lb_pop3_parser_new ();
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_pop3_response_free);
  LbPop3Response *r;
  gsize len = sizeof session - 1;

  for (guint i = 0; i < G_N_ELEMENTS (session_expect); i++)
    lb_pop3_parser_expect (parser, session_expect[i]);
  lb_pop3_parser_set_sink (parser, collect, streamed);
  if (!lb_pop3_parser_feed (parser, (const guint8 *) session, cut, error) ||
      !lb_pop3_parser_feed (parser, (const guint8 *) session + cut, len - cut, error))
    {
      g_ptr_array_unref (out);
      return NULL;
    }
  while ((r = lb_pop3_parser_pop (parser)) != NULL)
    g_ptr_array_add (out, r);
  return out;
}

static void
test_session (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GByteArray) streamed = g_byte_array_new ();
  g_autoptr(GPtrArray) r = parse_session (sizeof session - 1, streamed, &error);
  LbPop3Response *x;
  guint32 n = 0;
  guint64 size = 0;
  g_autofree char *uid = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (r->len, ==, G_N_ELEMENTS (session_expect));

  x = g_ptr_array_index (r, 0);
  g_assert_true (x->ok);
  g_assert_cmpstr (x->text, ==, "Dovecot (Debian) ready.");
  x = g_ptr_array_index (r, 1);
  g_assert_nonnull (g_strstr_len ((const char *) x->data->data, x->data->len, "PIPELINING\r\n"));
  x = g_ptr_array_index (r, 3);
  g_assert_false (x->ok);
  g_assert_cmpstr (x->code, ==, "AUTH");
  g_assert_cmpstr (x->text, ==, "Authentication failed.");
  x = g_ptr_array_index (r, 5);
  g_assert_cmpmem (x->data->data, x->data->len, "1 120\r\n2 60\r\n", 13);
  g_assert_true (lb_pop3_parse_scan_line ("2 60", &n, &size));
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpuint (size, ==, 60);
  g_assert_true (lb_pop3_parse_uidl_line ("1 000000017a1b2c3d", &n, &uid));
  g_assert_cmpstr (uid, ==, "000000017a1b2c3d");

  /* RETR: streamed, the stuffed dots removed, the terminator not part of it. */
  x = g_ptr_array_index (r, 7);
  g_assert_null (x->data);
  g_assert_cmpuint (x->data_size, ==, strlen (retr_body));
  g_assert_cmpmem (streamed->data, streamed->len, retr_body, strlen (retr_body));
  x = g_ptr_array_index (r, 8);
  g_assert_cmpmem (x->data->data, x->data->len, "Subject: second\r\n\r\n", 19);
  x = g_ptr_array_index (r, 9);
  g_assert_false (x->ok);
  g_assert_cmpstr (x->code, ==, "SYS/PERM");
}

static void
test_any_split (void)
{
  for (gsize cut = 0; cut < sizeof session; cut++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GByteArray) streamed = g_byte_array_new ();
      g_autoptr(GPtrArray) r = parse_session (cut, streamed, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (r->len, ==, G_N_ELEMENTS (session_expect));
      g_assert_cmpmem (streamed->data, streamed->len, retr_body, strlen (retr_body));
    }
}

static void
assert_fails (LbPop3Expect  expect,
              const char   *input,
              gsize         len,
              int           code)
{
  g_autoptr(LbPop3Parser) parser = lb_pop3_parser_new ();
  g_autoptr(GError) error = NULL;

  lb_pop3_parser_expect (parser, expect);
  g_assert_false (lb_pop3_parser_feed (parser, (const guint8 *) input, len, &error));
  g_assert_error (error, LB_POP3_PARSE_ERROR, code);
}

static gboolean
refuse (const guint8 *data,
        gsize         len,
        gpointer      user_data,
        GError      **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "disk full");
  return FALSE;
}

static void
test_malformed (void)
{
  g_autoptr(GString) long_line = g_string_new ("+OK ");

  assert_fails (LB_POP3_EXPECT_LINE, "* OK imap?\r\n", 12, LB_POP3_PARSE_ERROR_SYNTAX);
  assert_fails (LB_POP3_EXPECT_LINE, "+OKAY\r\n", 7, LB_POP3_PARSE_ERROR_SYNTAX);
  assert_fails (LB_POP3_EXPECT_LINE, "+OK a\0b\r\n", 9, LB_POP3_PARSE_ERROR_SYNTAX);
  /* Two responses where one was asked for. */
  assert_fails (LB_POP3_EXPECT_LINE, "+OK\r\n+OK\r\n", 10, LB_POP3_PARSE_ERROR_UNEXPECTED);
  for (guint i = 0; i < 5000; i++)
    g_string_append_c (long_line, 'x');
  assert_fails (LB_POP3_EXPECT_LINE, long_line->str, long_line->len, LB_POP3_PARSE_ERROR_TOO_LONG);

  /* A sink that cannot store ends the parse with its reason. */
  {
    g_autoptr(LbPop3Parser) parser = lb_pop3_parser_new ();
    g_autoptr(GError) error = NULL;

    lb_pop3_parser_expect (parser, LB_POP3_EXPECT_STREAMED);
    lb_pop3_parser_set_sink (parser, refuse, NULL);
    g_assert_false (lb_pop3_parser_feed (parser, (const guint8 *) "+OK\r\nabc\r\n.\r\n", 13, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  }

  /* Truncated data is pending, not an error. */
  {
    g_autoptr(LbPop3Parser) parser = lb_pop3_parser_new ();
    g_autoptr(GError) error = NULL;

    lb_pop3_parser_expect (parser, LB_POP3_EXPECT_MULTILINE);
    g_assert_true (lb_pop3_parser_feed (parser, (const guint8 *) "+OK\r\n1 2\r\n", 10, &error));
    g_assert_null (lb_pop3_parser_pop (parser));
  }

  {
    guint32 n;
    guint64 size;
    char *uid = NULL;

    g_assert_false (lb_pop3_parse_scan_line ("x 12", &n, &size));
    g_assert_false (lb_pop3_parse_scan_line ("1", &n, &size));
    g_assert_false (lb_pop3_parse_uidl_line ("1 has\x01control", &n, &uid));
    g_assert_false (lb_pop3_parse_uidl_line ("1 0123456789012345678901234567890123456789012345678901234567890123456789x", &n, &uid));
    g_assert_null (uid);
  }
}

/* AUTH (RFC 5034 §4): challenges are responses of their own until the status line. */
static void
test_auth_continuations (void)
{
  static const char input[] = "+ cj1hYmM=\r\n+\r\n-ERR [AUTH] Authentication failed.\r\n";
  g_autoptr(LbPop3Parser) parser = lb_pop3_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(LbPop3Response) first = NULL;
  g_autoptr(LbPop3Response) second = NULL;
  g_autoptr(LbPop3Response) last = NULL;

  lb_pop3_parser_expect (parser, LB_POP3_EXPECT_AUTH);
  g_assert_true (lb_pop3_parser_feed (parser, (const guint8 *) input, strlen (input), &error));
  g_assert_no_error (error);
  g_assert_cmpuint (lb_pop3_parser_count_ready (parser), ==, 3);
  first = lb_pop3_parser_pop (parser);
  second = lb_pop3_parser_pop (parser);
  last = lb_pop3_parser_pop (parser);
  g_assert_true (first->continuation);
  g_assert_cmpstr (first->text, ==, "cj1hYmM=");
  g_assert_true (second->continuation);
  g_assert_cmpstr (second->text, ==, "");
  g_assert_false (last->continuation);
  g_assert_false (last->ok);
  g_assert_cmpstr (last->code, ==, "AUTH");
  g_assert_true (lb_pop3_parser_is_idle (parser));

  /* Outside AUTH, "+ " is not a status line. */
  assert_fails (LB_POP3_EXPECT_LINE, "+ abc\r\n", 7, LB_POP3_PARSE_ERROR_SYNTAX);
}

static guint routed_to[8];

/* Records which response each chunk of streamed data belongs to, as a pipelining client
 * must: the one after those already complete. */
static gboolean
route (const guint8 *data,
       gsize         len,
       gpointer      user_data,
       GError      **error)
{
  LbPop3Parser *parser = user_data;

  routed_to[lb_pop3_parser_count_ready (parser)] += (guint) len;
  return TRUE;
}

static void
test_count_ready (void)
{
  static const char input[] = "+OK\r\n+OK 3 octets\r\nabc\r\n.\r\n+OK\r\n"
                              "+OK 5 octets\r\nhello\r\n.\r\n+OK\r\npartial";
  g_autoptr(LbPop3Parser) parser = lb_pop3_parser_new ();
  g_autoptr(GError) error = NULL;

  memset (routed_to, 0, sizeof routed_to);
  lb_pop3_parser_set_sink (parser, route, parser);
  lb_pop3_parser_expect (parser, LB_POP3_EXPECT_LINE);     /* DELE */
  lb_pop3_parser_expect (parser, LB_POP3_EXPECT_STREAMED); /* RETR */
  lb_pop3_parser_expect (parser, LB_POP3_EXPECT_LINE);     /* DELE */
  lb_pop3_parser_expect (parser, LB_POP3_EXPECT_STREAMED); /* RETR */
  lb_pop3_parser_expect (parser, LB_POP3_EXPECT_LINE);     /* NOOP */
  lb_pop3_parser_expect (parser, LB_POP3_EXPECT_LINE);     /* not complete yet */
  g_assert_true (lb_pop3_parser_feed (parser, (const guint8 *) input, strlen (input), &error));
  g_assert_no_error (error);
  g_assert_cmpuint (routed_to[0], ==, 0);
  g_assert_cmpuint (routed_to[1], ==, 5);
  g_assert_cmpuint (routed_to[2], ==, 0);
  g_assert_cmpuint (routed_to[3], ==, 7);
  g_assert_cmpuint (lb_pop3_parser_count_ready (parser), ==, 5);
  g_assert_false (lb_pop3_parser_is_idle (parser));
  for (guint i = 0; i < 5; i++)
    lb_pop3_response_free (lb_pop3_parser_pop (parser));
  /* "partial" is half a line: not idle (after STLS this would be an injection). */
  g_assert_false (lb_pop3_parser_is_idle (parser));
}

static void
test_corpus (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "pop3", NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *data = NULL;
      g_autoptr(LbPop3Parser) parser = lb_pop3_parser_new ();
      g_autoptr(GError) error = NULL;
      gsize len;

      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      for (guint i = 0; i < 16; i++)
        lb_pop3_parser_expect (parser, (LbPop3Expect) (i % 3));
      if (lb_pop3_parser_feed (parser, (const guint8 *) data, len, &error))
        g_assert_no_error (error);
      else
        g_assert_nonnull (error);
      n++;
    }
  g_assert_cmpuint (n, >=, 5);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/pop3/parser/session", test_session);
  g_test_add_func ("/pop3/parser/any-split", test_any_split);
  g_test_add_func ("/pop3/parser/malformed", test_malformed);
  g_test_add_func ("/pop3/parser/corpus", test_corpus);
  g_test_add_func ("/pop3/parser/auth-continuations", test_auth_continuations);
  g_test_add_func ("/pop3/parser/count-ready", test_count_ready);

  return g_test_run ();
}
