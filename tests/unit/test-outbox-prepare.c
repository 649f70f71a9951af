/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lb-mime.h"
#include "lb-outbox-prepare.h"

/* The outbox's pure parts: the header fields a submission gets (and that nothing else
 * changes), what is no message, which addresses are the local user, which account sends,
 * and what SMTP must allow; the fuzz corpus replayed with the fuzzer's properties. */

static GDateTime *
fixed_now (void)
{
  return g_date_time_new_utc (2026, 5, 4, 12, 30, 0);
}

static LbOutboxPrepared *
prepare (const char  *message,
         gssize       len,
         GError     **error)
{
  g_autoptr(GDateTime) now = fixed_now ();

  return lb_outbox_prepare_message ((const guint8 *) message,
                                    len < 0 ? strlen (message) : (gsize) len, "example.test",
                                    now, error);
}

static void
test_adds_date_and_message_id (void)
{
  static const char message[] = "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
                                "Subject: Hello\r\n\r\nBody\r\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LbOutboxPrepared) p = prepare (message, -1, &error);
  g_autofree char *whole = NULL;
  g_autoptr(GMimeMessage) parsed = NULL;
  g_autofree char *expected_id = NULL;
  GDateTime *date;

  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (p->message_id, "@example.test"));
  expected_id = g_strdup_printf ("Date: Mon, 04 May 2026 12:30:00 +0000\r\nMessage-ID: <%s>\r\n",
                                 p->message_id);
  g_assert_cmpstr (p->prefix, ==, expected_id);
  g_assert_cmpstr (p->subject, ==, "Hello");
  g_assert_cmpuint (p->header_size, ==, strstr (message, "Body") - message);

  /* The prefix and the message read as one message with the added fields. */
  whole = g_strconcat (p->prefix, message, NULL);
  parsed = lb_mime_parse_bytes ((const guint8 *) whole, strlen (whole), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_mime_message_get_message_id (parsed), ==, p->message_id);
  date = g_mime_message_get_date (parsed);
  g_assert_nonnull (date);
  g_assert_cmpint (g_date_time_to_unix (date), ==, 1777897800);
}

static void
test_keeps_existing (void)
{
  static const char message[] = "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
                                "message-id:   <kept@example.org>\r\n"
                                "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nx";
  g_autoptr(GError) error = NULL;
  g_autoptr(LbOutboxPrepared) p = prepare (message, -1, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (p->prefix, ==, "");
  g_assert_cmpstr (p->message_id, ==, "kept@example.org");
  g_assert_cmpstr (p->subject, ==, "Grüße");
}

/* A program's message with LF line ends gets LF in what is added too; only the missing
 * field is added. */
static void
test_lf_and_one_missing (void)
{
  static const char message[] = "Subject: cron\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nout\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LbOutboxPrepared) p = prepare (message, -1, &error);

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (p->prefix, "Message-ID: <"));
  g_assert_true (g_str_has_suffix (p->prefix, ">\n"));
  g_assert_null (strchr (p->prefix, '\r'));
}

/* The header ends at the first empty line; what follows is not looked at (a NUL byte or
 * lines that are no header fields are the body's business). A message may be all header. */
static void
test_header_only_checked (void)
{
  static const char body_nul[] = "Subject: x\r\n\r\nno: header\r\n\0binary\r\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(LbOutboxPrepared) p = prepare (body_nul, sizeof body_nul - 1, &error);
  g_autoptr(LbOutboxPrepared) q = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (p->header_size, ==, 14);
  q = prepare ("Subject: no body, no line end", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (q->header_size, ==, strlen ("Subject: no body, no line end"));
  g_assert_cmpstr (q->subject, ==, "no body, no line end");
}

static void
test_not_a_message (void)
{
  static const struct
  {
    const char *data;
    gsize len;
    const char *says;
  } cases[] = {
    { "", 0, "empty" },
    { "\r\nSubject: x\r\n", 15, "no header" },
    { " Subject: x\r\n\r\n", 15, "continuation" },
    { "From alice@example.test Mon Jan  1 00:00:00 2024\nSubject: x\n\n", 61, "Line 1" },
    { "Subject: x\r\nthis is not a field\r\n\r\n", 35, "Line 2" },
    { "Subject: x\r\n: no name\r\n\r\n", 25, "Line 2" },
    { "Subject: a\0b\r\n\r\n", 16, "NUL" },
    { "Bad Name: x\r\n\r\n", 15, "Line 1" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LbOutboxPrepared) p = prepare (cases[i].data, (gssize) cases[i].len, &error);

      g_assert_null (p);
      g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID);
      if (strstr (error->message, cases[i].says) == NULL)
        g_error ("case %u: “%s” does not say “%s”", i, error->message, cases[i].says);
    }
}

static void
test_header_too_big (void)
{
  g_autoptr(GString) big = g_string_new ("Subject: x\r\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(LbOutboxPrepared) p = NULL;

  while (big->len <= LB_OUTBOX_MAX_HEADER)
    g_string_append (big, "X-Filler: 0123456789012345678901234567890123456789\r\n");
  g_string_append (big, "\r\nbody");
  p = prepare (big->str, (gssize) big->len, &error);
  g_assert_null (p);
  g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "1024 KiB"));
}

static void
test_check_address (void)
{
  static const char *const good[] = {
    "alice@example.test", "user", "root", "a.b+tag@sub.example.test", "jérôme@exemple.fr",
    "\"quoted\"@example.test",
  };
  static const char *const bad[] = {
    "", "a b@example.test", "alice@example.test\r\nRCPT TO:<x@y>", "a\n@b", "<alice@example.test>",
    "alice@", "@example.test", "a@b@c", "tab\t@example.test", "\x7f@example.test",
    "caf\xe9@example.test",
  };
  g_autofree char *long_address = g_strnfill (250, 'a');
  g_autofree char *too_long = g_strconcat (long_address, "@example.test", NULL);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      lb_outbox_check_address (good[i], &error);
      g_assert_no_error (error);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      if (lb_outbox_check_address (bad[i], &error))
        g_error ("“%s” was taken", bad[i]);
      g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID);
      /* The message never carries the raw control characters on. */
      g_assert_null (strchr (error->message, '\r'));
      g_assert_null (strchr (error->message, '\n'));
      g_clear_error (&error);
    }
  g_assert_false (lb_outbox_check_address (too_long, &error));
  g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID);
}

static void
test_local_addresses (void)
{
  static const char *const local[] = {
    "jdoe", "jdoe@localhost", "JDoe@LocalHost", "jdoe@localhost.localdomain", "jdoe@desk.example",
    "root", "root@localhost", "postmaster", "Postmaster@localhost", "root@DESK.example",
  };
  static const char *const remote[] = {
    "jdoe@example.test", "bob", "bob@localhost", "root@example.test", "jdoe@desk",
    "jdoe@localhost.example", "jdoe2", "",
  };

  for (guint i = 0; i < G_N_ELEMENTS (local); i++)
    if (!lb_outbox_address_is_local (local[i], "jdoe", "desk.example"))
      g_error ("%s is the local user", local[i]);
  for (guint i = 0; i < G_N_ELEMENTS (remote); i++)
    if (lb_outbox_address_is_local (remote[i], "jdoe", "desk.example"))
      g_error ("%s is not the local user", remote[i]);
}

static LbAccount *
account (const char *id,
         const char *address,
         gboolean    smtp)
{
  LbAccount *a = lb_account_new (id);

  lb_account_add_identity (a, "Name", address);
  a->incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP, "imap.example.test", 993,
                                       LB_NET_SECURITY_TLS);
  if (smtp)
    a->outgoing = lb_account_server_new (LB_ACCOUNT_PROTOCOL_SMTP, "smtp.example.test", 465,
                                         LB_NET_SECURITY_TLS);
  return a;
}

static void
test_route (void)
{
  g_autoptr(GPtrArray) accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_account_free);
  g_autoptr(GPtrArray) none = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  LbAccount *nosmtp = account ("a-nosmtp", "carol@nosmtp.test", FALSE);
  LbAccount *home = account ("b-home", "alice@home.test", TRUE);
  LbAccount *work = account ("c-work", "bob@work.test", TRUE);
  static const struct
  {
    const char *sender;
    const char *account_id;
    const char *routed;
    const char *address;
    gboolean matched;
  } cases[] = {
    /* by address, any identity, any case */
    { "alice@home.test", NULL, "b-home", "alice@home.test", TRUE },
    { "BOB@Work.Test", NULL, "c-work", "BOB@Work.Test", TRUE },
    { "alias@home.test", NULL, "b-home", "alias@home.test", TRUE },
    { "login@work.test", NULL, "c-work", "login@work.test", TRUE },
    /* an account without SMTP is still the sender's (the caller says it cannot send) */
    { "carol@nosmtp.test", NULL, "a-nosmtp", "carol@nosmtp.test", TRUE },
    /* nobody's: the first account that can send, as itself */
    { "jdoe@desk.example", NULL, "b-home", "alice@home.test", FALSE },
    { "root", NULL, "b-home", "alice@home.test", FALSE },
    /* named: a full address stays, a bare name becomes the account's */
    { "jdoe@desk.example", "c-work", "c-work", "jdoe@desk.example", TRUE },
    { "root", "c-work", "c-work", "bob@work.test", TRUE },
  };

  lb_account_add_identity (home, "Alias", "alias@home.test");
  work->outgoing->user = g_strdup ("login@work.test");
  g_ptr_array_add (accounts, nosmtp);
  g_ptr_array_add (accounts, home);
  g_ptr_array_add (accounts, work);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(LbOutboxRoute) route = { 0 };

      g_assert_true (lb_outbox_route (accounts, cases[i].sender, cases[i].account_id, &route,
                                      &error));
      g_assert_no_error (error);
      g_assert_nonnull (route.account);
      g_assert_cmpstr (route.account->id, ==, cases[i].routed);
      g_assert_cmpstr (route.address, ==, cases[i].address);
      g_assert_cmpint (route.matched, ==, cases[i].matched);
    }

  {
    g_auto(LbOutboxRoute) route = { 0 };

    g_assert_false (lb_outbox_route (accounts, "alice@home.test", "nope", &route, &error));
    g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT);
    g_assert_nonnull (strstr (error->message, "nope"));
    g_clear_error (&error);
  }
  {
    g_auto(LbOutboxRoute) route = { 0 };

    g_assert_true (lb_outbox_route (none, "jdoe@desk.example", NULL, &route, &error));
    g_assert_null (route.account);
    g_assert_cmpstr (route.address, ==, "jdoe@desk.example");
  }
  {
    /* Only an account without SMTP: no default to fall back on. */
    g_autoptr(GPtrArray) only = g_ptr_array_new ();
    g_auto(LbOutboxRoute) route = { 0 };

    g_ptr_array_add (only, nosmtp);
    g_assert_true (lb_outbox_route (only, "jdoe@desk.example", NULL, &route, &error));
    g_assert_null (route.account);
  }
}

static void
test_message_id_domain (void)
{
  g_autofree char *a = lb_outbox_message_id_domain ("alice@Home.Test", "desk");
  g_autofree char *b = lb_outbox_message_id_domain ("root", "desk.example");
  g_autofree char *c = lb_outbox_message_id_domain ("x@[127.0.0.1]", "bad host");
  g_autofree char *d = lb_outbox_message_id_domain ("x@exa mple", "");

  g_assert_cmpstr (a, ==, "home.test");
  g_assert_cmpstr (b, ==, "desk.example");
  g_assert_cmpstr (c, ==, "localhost");
  g_assert_cmpstr (d, ==, "localhost");
}

static void
test_transport (void)
{
  static const char ascii[] = "Subject: x\r\n\r\nplain\r\n";
  static const char body8[] = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n";
  static const char utf8[] = "Subject: caf\xc3\xa9\r\n\r\nplain\r\n";
  static const char latin1[] = "Subject: caf\xe9\r\n\r\nplain\r\n";

  g_assert_cmpint (lb_outbox_message_transport ((const guint8 *) ascii, strlen (ascii), 14), ==,
                   LB_SMTP_MESSAGE_7BIT);
  g_assert_cmpint (lb_outbox_message_transport ((const guint8 *) body8, strlen (body8), 14), ==,
                   LB_SMTP_MESSAGE_8BIT);
  g_assert_cmpint (lb_outbox_message_transport ((const guint8 *) utf8, strlen (utf8), 17), ==,
                   LB_SMTP_MESSAGE_8BIT | LB_SMTP_MESSAGE_UTF8);
  g_assert_cmpint (lb_outbox_message_transport ((const guint8 *) latin1, strlen (latin1), 16), ==,
                   LB_SMTP_MESSAGE_8BIT);
}

/* The fuzzer's seeds and findings, with its properties: accepted → the added fields make
 * a message that needs nothing more. */
static void
test_corpus (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "outbox-prepare",
                                                NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr(GDateTime) now = fixed_now ();
  const char *name;
  guint accepted = 0, refused = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *data = NULL;
      gsize len;
      g_autoptr(LbOutboxPrepared) first = NULL;
      g_autoptr(LbOutboxPrepared) second = NULL;
      g_autoptr(GByteArray) whole = g_byte_array_new ();
      g_autoptr(GError) error = NULL;

      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      first = lb_outbox_prepare_message ((const guint8 *) data, len, "example.test", now, &error);
      if (first == NULL)
        {
          g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID);
          refused++;
          continue;
        }
      accepted++;
      g_byte_array_append (whole, (const guint8 *) first->prefix, strlen (first->prefix));
      g_byte_array_append (whole, (const guint8 *) data, len);
      second = lb_outbox_prepare_message (whole->data, whole->len, "example.test", now, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (second->prefix, ==, "");
      g_assert_cmpstr (second->message_id, ==, first->message_id);
      g_assert_cmpuint (second->header_size, ==, first->header_size + strlen (first->prefix));
    }
  g_assert_cmpuint (accepted, >, 0);
  g_assert_cmpuint (refused, >, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();

  g_test_add_func ("/outbox/prepare/adds-date-and-message-id", test_adds_date_and_message_id);
  g_test_add_func ("/outbox/prepare/keeps-existing", test_keeps_existing);
  g_test_add_func ("/outbox/prepare/lf-and-one-missing", test_lf_and_one_missing);
  g_test_add_func ("/outbox/prepare/header-only-checked", test_header_only_checked);
  g_test_add_func ("/outbox/prepare/not-a-message", test_not_a_message);
  g_test_add_func ("/outbox/prepare/header-too-big", test_header_too_big);
  g_test_add_func ("/outbox/prepare/corpus", test_corpus);
  g_test_add_func ("/outbox/address/check", test_check_address);
  g_test_add_func ("/outbox/address/local", test_local_addresses);
  g_test_add_func ("/outbox/address/message-id-domain", test_message_id_domain);
  g_test_add_func ("/outbox/route", test_route);
  g_test_add_func ("/outbox/transport", test_transport);

  return g_test_run ();
}
