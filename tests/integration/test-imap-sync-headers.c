/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lb-imap-sync.h"
#include "lb-mime.h"
#include "lb-store.h"
#include "lb-store-import.h"
#include "lb-store-writer.h"
#include "lb-test-sync.h"

/* How IMAP sync gets its headers fast, against a real Dovecot: only the header fields the
 * index keeps are fetched (BODY.PEEK[HEADER.FIELDS (…)]), and every row is what the whole
 * header block gave before, for awkward messages too; headers arrive in several pipelined
 * FETCHes, each added as one writer job, and a resync finds nothing new by QRESYNC
 * without reading the folder's UIDs; a second sync on the same object reuses its logged-in
 * connection without asking for the password again; and `letterbox-ctl sync` with
 * LB_SYNC_REPEAT runs twice in one process, tracing each folder's step (LB_SYNC_TRACE). */

static LbTestServers *servers;
static const char *ctl_path;

#define USER "alice@example.test"

typedef struct
{
  char *dir;
  LbStore *store;
  LbStoreWriter *writer;
  LbAccount *account;
} Fixture;

/* Messages whose headers are awkward in one way or another. */
static const char *const awkward[] = {
  /* 8-bit Latin-1 in the header, a charset only in Content-Type */
  "From: J\xf6rg M\xfcller <joerg@example.org>\r\n"
  "To: alice@example.test\r\n"
  "Subject: Caf\xe9 au lait\r\n"
  "Date: Tue, 2 Jan 2024 09:30:00 +0100\r\n"
  "Message-ID: <latin1@example.org>\r\n"
  "MIME-Version: 1.0\r\n"
  "Content-Type: text/plain; charset=iso-8859-1\r\n"
  "Content-Transfer-Encoding: 8bit\r\n"
  "\r\n"
  "Gr\xfc\xdf" "e.\r\n",
  /* encoded words, a group, several recipients, a folded subject, other headers first */
  "Received: from mx.example.org by mail.example.test; Tue, 2 Jan 2024 09:31:00 +0100\r\n"
  "Received: from client by mx.example.org; Tue, 2 Jan 2024 09:30:59 +0100\r\n"
  "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel; h=from:to:subject;\r\n"
  " bh=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=; b=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=\r\n"
  "From: =?UTF-8?B?w4lsb2RpZSDDiWNyaXQ=?= <elodie@example.org>\r\n"
  "To: Team: a@example.org, =?UTF-8?Q?B=C3=A9a?= <bea@example.org>;,\r\n"
  "  \"Doe, John\" <john@example.org>\r\n"
  "Cc: carol@example.org, dave@example.org\r\n"
  "Subject: =?UTF-8?Q?R=C3=A9union_de_l=27=C3=A9quipe?= about the very long\r\n"
  "\tsubject that was folded\r\n"
  "Date: Wed, 3 Jan 2024 10:00:00 +0000\r\n"
  "Message-ID: <encoded@example.org>\r\n"
  "X-Mailer: Something 1.0\r\n"
  "\r\n"
  "Body.\r\n",
  /* a reply with folded References, header names in lower case */
  "from: Bob <bob@example.org>\r\n"
  "to: alice@example.test\r\n"
  "subject: Re: Caf\xc3\xa9 au lait\r\n"
  "date: Thu, 4 Jan 2024 11:00:00 -0500\r\n"
  "message-id: <reply@example.org>\r\n"
  "in-reply-to: <latin1@example.org>\r\n"
  "references: <start@example.org>\r\n"
  " <middle@example.org>\r\n"
  "\t<latin1@example.org>\r\n"
  "\r\n"
  "> Grüße.\r\n",
  /* no Date, no Message-ID */
  "From: nobody@example.org\r\n"
  "Subject: bare\r\n"
  "\r\n"
  "Nothing much.\r\n",
  /* a message that is a single attachment */
  "From: Scanner <scanner@example.org>\r\n"
  "To: alice@example.test\r\n"
  "Subject: Scan\r\n"
  "Date: Fri, 5 Jan 2024 08:00:00 +0000\r\n"
  "Message-ID: <scan@example.org>\r\n"
  "MIME-Version: 1.0\r\n"
  "Content-Type: application/pdf; name=\"scan.pdf\"\r\n"
  "Content-Disposition: attachment; filename=\"scan.pdf\"\r\n"
  "Content-Transfer-Encoding: base64\r\n"
  "\r\n"
  "JVBERi0xLjQKJcOkw7zDtsOfCg==\r\n",
  /* multipart/mixed with an attachment */
  "From: Carol <carol@example.org>\r\n"
  "To: alice@example.test\r\n"
  "Subject: Report attached\r\n"
  "Date: Sat, 6 Jan 2024 12:00:00 +0000\r\n"
  "Message-ID: <report@example.org>\r\n"
  "MIME-Version: 1.0\r\n"
  "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
  "\r\n"
  "--b1\r\n"
  "Content-Type: text/plain\r\n"
  "\r\n"
  "See attached.\r\n"
  "--b1\r\n"
  "Content-Type: text/csv; name=report.csv\r\n"
  "Content-Disposition: attachment; filename=report.csv\r\n"
  "\r\n"
  "a,b\r\n"
  "--b1--\r\n",
  /* a top-level HTML part with a Content-Location, and headers given twice */
  "From: First <first@example.org>\r\n"
  "From: Second <second@example.org>\r\n"
  "Subject: one\r\n"
  "Subject: two\r\n"
  "To: alice@example.test\r\n"
  "Date: Sun, 7 Jan 2024 13:00:00 +0000\r\n"
  "Message-ID: <twice@example.org>\r\n"
  "Content-Type: text/html; charset=utf-8\r\n"
  "Content-Location: http://example.org/page.html\r\n"
  "Content-ID: <page@example.org>\r\n"
  "\r\n"
  "<p>Hello</p>\r\n",
  /* a text file sent as an attachment, nothing else */
  "From: Dan <dan@example.org>\r\n"
  "To: alice@example.test\r\n"
  "Subject: Notes\r\n"
  "Date: Sun, 7 Jan 2024 15:00:00 +0000\r\n"
  "Message-ID: <notes@example.org>\r\n"
  "MIME-Version: 1.0\r\n"
  "Content-Type: text/plain\r\n"
  "Content-Disposition: attachment; filename=notes.txt\r\n"
  "\r\n"
  "Some notes.\r\n",
  /* a display name with spaces and tabs around a fold */
  "From: \"Long   Name\"\r\n"
  "\t <long@example.org>\r\n"
  "To: <alice@example.test>\r\n"
  "Subject:    spaced    out   \r\n"
  "Date: Mon, 8 Jan 2024 14:00:00 +0000\r\n"
  "Message-ID: <spaced@example.org>\r\n"
  "\r\n"
  "Text.\r\n",
};

static void
doveadm (const char *stdin_data,
         ...)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autofree char *script = g_build_filename (g_getenv ("LB_FIXTURES_DIR"), "mailservers.sh",
                                             NULL);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  const char *arg;
  va_list ap;

  g_ptr_array_add (args, (gpointer) "bash");
  g_ptr_array_add (args, script);
  g_ptr_array_add (args, (gpointer) "doveadm");
  g_ptr_array_add (args, servers->dir);
  va_start (ap, stdin_data);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  launcher = g_subprocess_launcher_new (stdin_data != NULL ? G_SUBPROCESS_FLAGS_STDIN_PIPE
                                                           : G_SUBPROCESS_FLAGS_NONE);
  process = g_subprocess_launcher_spawnv (launcher, (const char *const *) args->pdata, &error);
  g_assert_no_error (error);
  if (stdin_data != NULL)
    {
      g_autoptr(GBytes) input = g_bytes_new (stdin_data, strlen (stdin_data));

      g_assert_true (g_subprocess_communicate (process, input, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  g_assert_true (g_subprocess_wait_check (process, NULL, &error));
  g_assert_no_error (error);
}

static void
seed (const char *message)
{
  doveadm (message, "save", "-u", USER, "-m", "INBOX", NULL);
}

static LbAccount *
make_account (const char *password_command)
{
  LbAccount *account = lb_account_new ("work");

  account->display_name = g_strdup ("Work Mail");
  lb_account_add_identity (account, "Tester", USER);
  account->incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP, servers->host,
                                             servers->imaps_port, LB_NET_SECURITY_TLS);
  account->incoming->user = g_strdup (USER);
  account->ca_file = g_strdup (servers->ca_file);
  account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  account->password_command = g_strdup (password_command != NULL ? password_command
                                                                  : "printf %s alice-password");
  account->bodies = LB_ACCOUNT_BODIES_ALL;
  return account;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  static guint counter;
  g_autofree char *validity = g_strdup_printf ("%u", 2000 + ++counter);

  f->dir = g_dir_make_tmp ("lb-sync-headers-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  doveadm (NULL, "expunge", "-u", USER, "mailbox", "*", "all", NULL);
  /* A different UIDVALIDITY each time, so that the tests do not depend on each other. */
  doveadm (NULL, "mailbox", "update", "-u", USER, "--uid-validity", validity, "INBOX", NULL);
  f->account = make_account (NULL);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  lb_account_free (f->account);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
}

static gboolean
sync_run (LbImapSync       *sync,
          LbImapSyncFlags   flags,
          LbImapSyncStats  *stats,
          GError          **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_imap_sync_run_async (sync, flags, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_sync_run_finish (sync, lb_test_wait_result (&w), stats, error);
  g_object_unref (w.result);
  return ok;
}

/* The UID of the @n-th message (from 1) the store holds in INBOX: UIDs go on from test to
 * test, as the fixture empties the mailbox without renumbering it. */
static guint32
nth_uid (Fixture *f,
         guint    n)
{
  g_autofree char *sql = g_strdup_printf ("SELECT m.uid FROM messages m JOIN folders f ON "
                                          "f.id = m.folder_id WHERE f.account_id = 'work' AND "
                                          "f.name = 'INBOX' ORDER BY m.uid LIMIT 1 OFFSET %u",
                                          n - 1);
  gint64 uid = lb_test_store_query_int (f->dir, sql);

  g_assert_cmpint (uid, >, 0);
  return (guint32) uid;
}

/* Columns of the @n-th message in INBOX. */
static char *
row (Fixture    *f,
     guint       n,
     const char *columns)
{
  g_autofree char *sql = g_strdup_printf ("SELECT %s FROM messages m JOIN folders f ON "
                                          "f.id = m.folder_id WHERE f.account_id = 'work' AND "
                                          "f.name = 'INBOX' AND m.uid = %u", columns,
                                          nth_uid (f, n));

  return lb_test_store_query (f->dir, sql);
}

/* Each row the header fields give is the row the whole header block gave: what the store
 * keeps of a header-only message, for messages built to trip a parser up. */
static void
test_fields_match_header (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(LbImapSync) sync = lb_imap_sync_new (f->account, f->writer);
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };

  for (guint i = 0; i < G_N_ELEMENTS (awkward); i++)
    seed (awkward[i]);
  g_assert_true (sync_run (sync, LB_IMAP_SYNC_HEADERS_ONLY, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.new_messages, ==, G_N_ELEMENTS (awkward));

  for (guint i = 0; i < G_N_ELEMENTS (awkward); i++)
    {
      const char *end = strstr (awkward[i], "\r\n\r\n");
      g_autoptr(GBytes) header = g_bytes_new (awkward[i], (gsize) (end + 4 - awkward[i]));
      g_autoptr(LbStoreMessage) expected = NULL;
      g_autofree char *want = NULL;
      g_autofree char *got = NULL;
      g_autofree char *thread = NULL;
      g_autofree char *date = NULL;

      expected = lb_store_message_from_bytes_full (header, 0, LB_STORE_MESSAGE_SUMMARY, &error);
      g_assert_no_error (error);
      /* NULL and "" are one to the store; the message's own date or, lacking one, its
       * arrival time. */
      want = g_strdup_printf ("%s|%s|%s|%s|%s|%s|%s|%d",
                              expected->sender != NULL ? expected->sender : "",
                              expected->sender_address != NULL ? expected->sender_address : "",
                              expected->recipients != NULL ? expected->recipients : "",
                              expected->subject != NULL ? expected->subject : "",
                              expected->preview != NULL ? expected->preview : "",
                              expected->message_id != NULL ? expected->message_id : "",
                              expected->in_reply_to != NULL ? expected->in_reply_to : "",
                              expected->has_attachment ? 1 : 0);
      got = row (f, i + 1, "sender, sender_address, recipients, subject, preview, "
                           "coalesce (message_id, ''), coalesce (in_reply_to, ''), "
                           "has_attachment");
      g_test_message ("message %u: %s", i + 1, got);
      g_assert_cmpstr (got, ==, want);
      date = row (f, i + 1, "date = internal_date, date");
      if (expected->date != 0)
        {
          g_autofree char *text = g_strdup_printf ("%d|%" G_GINT64_FORMAT,
                                                   expected->date == 0, expected->date);

          g_assert_cmpstr (date, ==, text);
        }
      else
        g_assert_true (g_str_has_prefix (date, "1|"));
      /* Every Message-ID it names leads to its thread. */
      thread = row (f, i + 1, "thread_id");
      for (guint j = 0; expected->references != NULL && expected->references[j] != NULL; j++)
        {
          g_autofree char *sql = g_strdup_printf ("SELECT thread_id FROM thread_ids WHERE "
                                                  "account_id = 'work' AND message_id = '%s'",
                                                  expected->references[j]);
          g_autofree char *linked = lb_test_store_query (f->dir, sql);

          g_assert_cmpstr (linked, ==, thread);
        }
    }
  /* The reply joined the thread of the message it answers. */
  {
    g_autofree char *a = row (f, 1, "thread_id");
    g_autofree char *b = row (f, 3, "thread_id");

    g_assert_cmpstr (a, ==, b);
  }
  /* Searchable by the decoded subject and sender before any body is here. */
  g_assert_cmpint (lb_test_store_query_int (f->dir, "SELECT count(*) FROM messages_fts WHERE "
                                                    "messages_fts MATCH 'equipe AND elodie'"),
                   ==, 1);
}

/* Headers in many FETCHes of a few (three pipelined at a time), each added as one job:
 * every message listed once; a resync finds nothing by QRESYNC; another client's changes
 * are found by QRESYNC without the folder's UIDs being read. */
static void
test_chunks_and_resync (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(LbImapSync) sync = lb_imap_sync_new (f->account, f->writer);
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };
  g_autofree char *server = NULL;
  g_autofree char *store = NULL;

  for (guint n = 1; n <= 40; n++)
    {
      g_autofree char *message = g_strdup_printf ("From: s%u@example.org\r\nSubject: chunk %u\r\n"
                                                  "Message-ID: <chunk-%u@example.org>\r\n\r\n"
                                                  "Text %u.\r\n", n, n, n, n);

      seed (message);
    }
  g_setenv ("LB_SYNC_HEADER_CHUNK", "7", TRUE);
  g_assert_true (sync_run (sync, LB_IMAP_SYNC_HEADERS_ONLY, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.new_messages, ==, 40);
  g_assert_cmpint (lb_test_store_query_int (f->dir, "SELECT count(DISTINCT uid) FROM messages m "
                                                    "JOIN folders f ON f.id = m.folder_id WHERE "
                                                    "f.account_id = 'work'"), ==, 40);
  server = lb_test_server_state (servers, USER);
  store = lb_test_store_state (f->dir, "work");
  g_assert_cmpstr (store, ==, server);

  g_assert_true (sync_run (sync, LB_IMAP_SYNC_HEADERS_ONLY, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.new_messages + stats.flag_updates + stats.expunged, ==, 0);
  g_assert_cmpstr (stats.method, ==, "qresync");

  {
    g_autofree char *third = g_strdup_printf ("%u", nth_uid (f, 3));
    g_autofree char *fifth = g_strdup_printf ("%u", nth_uid (f, 5));

    doveadm (NULL, "flags", "add", "-u", USER, "\\Seen", "mailbox", "INBOX", "uid", third, NULL);
    doveadm (NULL, "expunge", "-u", USER, "mailbox", "INBOX", "uid", fifth, NULL);
  }
  seed ("From: late@example.org\r\nSubject: late\r\nMessage-ID: <late@example.org>\r\n\r\nx\r\n");
  g_assert_true (sync_run (sync, LB_IMAP_SYNC_HEADERS_ONLY, &stats, &error));
  g_assert_no_error (error);
  g_unsetenv ("LB_SYNC_HEADER_CHUNK");
  g_assert_cmpstr (stats.method, ==, "qresync");
  g_assert_cmpuint (stats.new_messages, ==, 1);
  g_assert_cmpuint (stats.flag_updates, ==, 1);
  g_assert_cmpuint (stats.expunged, ==, 1);
  g_clear_pointer (&server, g_free);
  g_clear_pointer (&store, g_free);
  server = lb_test_server_state (servers, USER);
  store = lb_test_store_state (f->dir, "work");
  g_assert_cmpstr (store, ==, server);
}

/* The password is asked for once per sync object: a second run uses the pool's logged-in
 * connection (a password command is a process each time); a new object asks again. */
static void
test_password_once (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *counter = g_build_filename (f->dir, "asked", NULL);
  g_autofree char *command = g_strdup_printf ("echo asked >> '%s'; printf %%s alice-password",
                                              counter);
  g_autoptr(LbAccount) account = make_account (command);
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };
  g_autofree char *asked = NULL;

  seed ("From: a@example.org\r\nSubject: once\r\nMessage-ID: <once@example.org>\r\n\r\nx\r\n");
  {
    g_autoptr(LbImapSync) sync = lb_imap_sync_new (account, f->writer);

    g_assert_true (sync_run (sync, LB_IMAP_SYNC_HEADERS_ONLY, &stats, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (stats.new_messages, ==, 1);
    g_assert_true (sync_run (sync, LB_IMAP_SYNC_NONE, &stats, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (stats.bodies, ==, 1);
    g_assert_true (g_file_get_contents (counter, &asked, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (asked, ==, "asked\n");
  }
  {
    g_autoptr(LbImapSync) sync = lb_imap_sync_new (account, f->writer);

    g_assert_true (sync_run (sync, LB_IMAP_SYNC_NONE, &stats, &error));
    g_assert_no_error (error);
    g_clear_pointer (&asked, g_free);
    g_assert_true (g_file_get_contents (counter, &asked, NULL, &error));
    g_assert_cmpstr (asked, ==, "asked\nasked\n");
  }
}

static char *
run_ctl (const char  *config,
         const char  *data,
         char       **err,
         ...)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  char *out = NULL;
  const char *arg;
  va_list ap;

  g_ptr_array_add (argv, (char *) ctl_path);
  g_ptr_array_add (argv, (char *) "--config-dir");
  g_ptr_array_add (argv, (char *) config);
  g_ptr_array_add (argv, (char *) "--data-dir");
  g_ptr_array_add (argv, (char *) data);
  va_start (ap, err);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "LB_SYNC_REPEAT", "2", TRUE);
  g_subprocess_launcher_setenv (launcher, "LB_SYNC_TRACE", "1", TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);
  return out;
}

/* letterbox-ctl sync with LB_SYNC_REPEAT=2: two runs in one process, one line each (the
 * second finds nothing new); LB_SYNC_TRACE times every folder's step on stderr. */
static void
test_ctl_repeat (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *config = g_build_filename (f->dir, "config", NULL);
  g_autofree char *data_dir = g_build_filename (f->dir, "ctl-data", NULL);
  g_autofree char *user = g_uri_escape_string (USER, NULL, FALSE);
  g_autofree char *url = g_strdup_printf ("imaps://%s@%s:%u", user, servers->host,
                                          (guint) servers->imaps_port);
  g_autofree char *added = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_auto(GStrv) lines = NULL;

  for (guint n = 1; n <= 3; n++)
    {
      g_autofree char *message = g_strdup_printf ("From: r%u@example.org\r\nSubject: repeat %u\r\n"
                                                  "Message-ID: <repeat-%u@example.org>\r\n\r\n"
                                                  "x\r\n", n, n, n);

      seed (message);
    }
  added = run_ctl (config, data_dir, NULL, "account", "add", "work", "--email", USER, "--imap",
                   url, "--ca-file", servers->ca_file, "--password-command",
                   "printf %s alice-password", NULL);
  out = run_ctl (config, data_dir, &err, "sync", "work", "--headers-only", NULL);
  lines = g_strsplit (out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  g_assert_true (g_str_has_prefix (lines[0], "work: "));
  g_assert_nonnull (strstr (lines[0], " 3 new,"));
  g_assert_true (g_str_has_prefix (lines[1], "work: "));
  g_assert_nonnull (strstr (lines[1], " 0 new,"));
  g_assert_nonnull (strstr (lines[1], "(qresync)"));
  g_assert_cmpstr (lines[2], ==, "");
  g_assert_nonnull (strstr (err, "“INBOX”: folder started\n"));
  g_assert_nonnull (strstr (err, "“INBOX”: folder done\n"));
  g_assert_nonnull (strstr (err, "lbctl sync "));
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();
  ctl_path = g_getenv ("LB_CTL_PATH");
  g_assert_nonnull (ctl_path);
  g_test_add ("/imap-sync-headers/fields-match-header", Fixture, NULL, fixture_set_up,
              test_fields_match_header, fixture_tear_down);
  g_test_add ("/imap-sync-headers/chunks-and-resync", Fixture, NULL, fixture_set_up,
              test_chunks_and_resync, fixture_tear_down);
  g_test_add ("/imap-sync-headers/password-once", Fixture, NULL, fixture_set_up,
              test_password_once, fixture_tear_down);
  g_test_add ("/imap-sync-headers/ctl-repeat", Fixture, NULL, fixture_set_up, test_ctl_repeat,
              fixture_tear_down);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  status = g_test_run ();
  lb_test_servers_stop (servers);
  return status;
}
