/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-store.h"
#include "lb-test-util.h"

/* `letterbox-ctl` on the store as a script runs it: the built binary (LB_CTL_PATH) with
 * --data-dir and --config-dir in a temporary home. An mbox made here (a UTF-8 subject,
 * mboxrd "From " lines, an attachment, a reply) is imported, then listed, shown (also
 * byte for byte), searched, flagged, moved, deleted and exported; every --json output is
 * parsed by Python's json module; and the exit statuses scripts rely on are checked.
 * The tests run in order and build on each other. */

static const char *ctl_path;
static char *home;
static char *data_dir;
static char *config_dir;
static char *mbox_path;

/* The messages, as the store must keep them (and `show --raw` give them back). */
static const char *const raw_messages[] = {
  "From: Alice Example <alice@example.test>\n"
  "To: Bob <bob@example.test>\n"
  "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\n"
  "Date: Mon, 04 Mar 2024 10:00:00 +0000\n"
  "Message-ID: <m1@example.test>\n"
  "MIME-Version: 1.0\n"
  "Content-Type: text/plain; charset=UTF-8\n"
  "Content-Transfer-Encoding: 8bit\n"
  "\n"
  "Hallo Bob, viele Grüße.\n"
  "From the beginning, this line needs mboxrd escaping.\n"
  ">From here too, one level more.\n",

  "From: Bob <bob@example.test>\n"
  "To: Alice Example <alice@example.test>\n"
  "Cc: Carol <carol@example.test>\n"
  "Subject: Re: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\n"
  "Date: Tue, 05 Mar 2024 10:00:00 +0000\n"
  "Message-ID: <m2@example.test>\n"
  "In-Reply-To: <m1@example.test>\n"
  "References: <m1@example.test>\n"
  "MIME-Version: 1.0\n"
  "Content-Type: multipart/mixed; boundary=\"b1\"\n"
  "\n"
  "--b1\n"
  "Content-Type: text/plain; charset=UTF-8\n"
  "\n"
  "Thanks! The figures are attached.\n"
  "\n"
  "--b1\n"
  "Content-Type: application/octet-stream; name=\"figures.bin\"\n"
  "Content-Disposition: attachment; filename=\"figures.bin\"\n"
  "Content-Transfer-Encoding: base64\n"
  "\n"
  "AAECAwQFBgcICQoLDA0ODw==\n"
  "--b1--\n",

  "From: Carol <carol@example.test>\n"
  "To: Alice Example <alice@example.test>\n"
  "Subject: Quarterly numbers\n"
  "Date: Wed, 06 Mar 2024 10:00:00 +0000\n"
  "Message-ID: <m3@example.test>\n"
  "\n"
  "The numbers are in.\n",

  "From: Dave <dave@example.test>\n"
  "To: Alice Example <alice@example.test>\n"
  "Subject: Lunch?\n"
  "Date: Thu, 07 Mar 2024 10:00:00 +0000\n"
  "Message-ID: <m4@example.test>\n"
  "\n"
  "Noon at the usual place?\n",
};
enum
{
  ALICE,
  BOB,
  CAROL,
  DAVE,
  N_MESSAGES
};
static gint64 ids[N_MESSAGES];

typedef struct
{
  int status;
  GBytes *bytes;  /* stdout exactly */
  char *out;      /* stdout as a string */
  char *err;
} Result;

static void
result_clear (Result *r)
{
  g_clear_pointer (&r->bytes, g_bytes_unref);
  g_free (r->out);
  g_free (r->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Result, result_clear)

/* Runs letterbox-ctl with @with_dirs the --data-dir/--config-dir options first. */
static void
run_argv (Result      *r,
          gboolean     with_dirs,
          const char  *data_dir_env,
          va_list      ap)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GBytes) err = NULL;
  g_autoptr(GError) error = NULL;
  const char *arg;

  g_ptr_array_add (argv, (char *) ctl_path);
  if (with_dirs)
    {
      g_ptr_array_add (argv, (char *) "--data-dir");
      g_ptr_array_add (argv, data_dir);
      g_ptr_array_add (argv, (char *) "--config-dir");
      g_ptr_array_add (argv, config_dir);
    }
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "TZ", "UTC", TRUE);
  if (data_dir_env != NULL)
    g_subprocess_launcher_setenv (launcher, "LETTERBOX_DATA_DIR", data_dir_env, TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate (proc, NULL, NULL, &r->bytes, &err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  r->status = g_subprocess_get_exit_status (proc);
  /* (an empty GBytes has NULL data) */
  r->out = g_strndup (g_bytes_get_size (r->bytes) > 0 ? g_bytes_get_data (r->bytes, NULL) : "",
                      g_bytes_get_size (r->bytes));
  r->err = g_strndup (g_bytes_get_size (err) > 0 ? g_bytes_get_data (err, NULL) : "",
                      g_bytes_get_size (err));
  g_test_message ("letterbox-ctl … → %d\nstdout: %s\nstderr: %s", r->status, r->out, r->err);
}

static void
run_ctl (Result *r,
         ...)
{
  va_list ap;

  va_start (ap, r);
  run_argv (r, TRUE, NULL, ap);
  va_end (ap);
}

static void
run_ctl_env (Result     *r,
             const char *data_dir_env,
             ...)
{
  va_list ap;

  va_start (ap, data_dir_env);
  run_argv (r, FALSE, data_dir_env, ap);
  va_end (ap);
}

/* A failure a script can read: exactly one line, "letterbox-ctl: …". */
static void
assert_error_line (const Result *r,
                   int           status,
                   const char   *contains)
{
  const char *newline = strchr (r->err, '\n');

  g_assert_cmpint (r->status, ==, status);
  g_assert_true (g_str_has_prefix (r->err, "letterbox-ctl: "));
  g_assert_nonnull (newline);
  g_assert_cmpstr (newline + 1, ==, "");
  if (contains != NULL)
    g_assert_nonnull (strstr (r->err, contains));
}

/* Parses @json with Python's json module (strict RFC 8259) as d, and returns the JSON of
 * the Python expression @expr over it. */
static char *
json_eval (const char *json,
           const char *expr)
{
  static const char program[] =
    "import json, sys\n"
    "d = json.loads(sys.stdin.read())\n"
    "print(json.dumps(eval(sys.argv[1]), ensure_ascii=False), end='')\n";
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  char *out = NULL;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                           G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
                           "/usr/bin/python3", "-c", program, expr, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, json, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (proc))
    g_error ("Python could not evaluate %s over %s: %s", expr, json, err);
  return out;
}

static void
assert_json (const char *json,
             const char *expr,
             const char *expected)
{
  g_autofree char *value = json_eval (json, expr);

  g_assert_cmpstr (value, ==, expected);
}

static char *
id_text (int which)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT, ids[which]);
}

/* mboxrd: a "From " line before each message, ">From " lines quoted once more. */
static void
write_mbox (void)
{
  g_autoptr(GString) mbox = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < N_MESSAGES; i++)
    {
      g_auto(GStrv) lines = g_strsplit (raw_messages[i], "\n", -1);

      g_string_append_printf (mbox, "From sender%u@example.test Mon Mar  4 10:00:00 2024\n", i);
      for (guint j = 0; lines[j] != NULL && lines[j + 1] != NULL; j++)
        {
          const char *p = lines[j];

          while (*p == '>')
            p++;
          if (g_str_has_prefix (p, "From "))
            g_string_append_c (mbox, '>');
          g_string_append_printf (mbox, "%s\n", lines[j]);
        }
      g_string_append_c (mbox, '\n');
    }
  mbox_path = g_build_filename (home, "fixture.mbox", NULL);
  g_file_set_contents (mbox_path, mbox->str, (gssize) mbox->len, &error);
  g_assert_no_error (error);
}

static void
test_import (void)
{
  g_auto(Result) first = { 0 };
  g_auto(Result) again = { 0 };
  g_auto(Result) listed = { 0 };
  const char *subjects[N_MESSAGES] = { "Grüße aus Köln", "Re: Grüße aus Köln",
                                       "Quarterly numbers", "Lunch?" };

  write_mbox ();
  run_ctl (&first, "import", mbox_path, NULL);
  g_assert_cmpstr (first.err, ==, "");
  g_assert_cmpint (first.status, ==, 0);
  g_assert_cmpstr (first.out, ==,
                   "Imported 4 messages into local/Inbox (0 already there, 0 unreadable).\n");

  /* The same mail again adds nothing; --json after the command works too. */
  run_ctl (&again, "import", mbox_path, "--into", "local/Inbox", "--json", NULL);
  g_assert_cmpint (again.status, ==, 0);
  assert_json (again.out, "[d['folder'], d['imported'], d['skipped'], d['failed']]",
               "[\"local/Inbox\", 0, 4, 0]");

  run_ctl (&listed, "--json", "list", "local/Inbox", NULL);
  g_assert_cmpint (listed.status, ==, 0);
  for (guint i = 0; i < N_MESSAGES; i++)
    {
      g_autofree char *expr = g_strdup_printf ("[m['id'] for m in d if m['subject'] == '%s']",
                                               subjects[i]);
      g_autofree char *found = json_eval (listed.out, expr);

      g_assert_true (g_str_has_prefix (found, "[") && strchr (found, ',') == NULL);
      ids[i] = g_ascii_strtoll (found + 1, NULL, 10);
      g_assert_cmpint (ids[i], >, 0);
    }
}

static void
test_folders (void)
{
  g_auto(Result) text = { 0 };
  g_auto(Result) json = { 0 };
  g_auto(Result) one = { 0 };
  g_auto(Result) missing = { 0 };
  g_auto(Result) local = { 0 };

  run_ctl (&text, "folders", NULL);
  g_assert_cmpint (text.status, ==, 0);
  /* the welcome message and the four imported ones, all unread */
  g_assert_nonnull (strstr (text.out, "  inbox          5       5  local/Inbox\n"));
  g_assert_nonnull (strstr (text.out, "  trash          0       0  local/Trash\n"));

  run_ctl (&json, "--json", "folders", NULL);
  g_assert_cmpint (json.status, ==, 0);
  assert_json (json.out, "[f['path'] for f in d]",
               "[\"local/Inbox\", \"local/Drafts\", \"local/Sent\", \"local/Trash\"]");
  assert_json (json.out, "[[f['role'], f['total'], f['unread'], f['account']] for f in d][0]",
               "[\"inbox\", 5, 5, \"local\"]");

  run_ctl (&one, "--json", "folders", "local", NULL);
  g_assert_cmpint (one.status, ==, 0);
  assert_json (one.out, "len(d)", "4");

  run_ctl (&missing, "folders", "nosuch", NULL);
  assert_error_line (&missing, 6, "nosuch");

  /* --local (the only mode for now) is accepted, and LETTERBOX_DATA_DIR does what
   * --data-dir does */
  run_ctl_env (&local, data_dir, "--local", "--json", "folders", NULL);
  g_assert_cmpint (local.status, ==, 0);
  g_assert_cmpstr (local.out, ==, json.out);
}

static void
test_list (void)
{
  g_autofree char *expected = NULL;

  {
    g_auto(Result) r = { 0 };

    /* newest first: the welcome message (dated now), Dave, Carol, Bob, Alice */
    run_ctl (&r, "--json", "list", "local/Inbox", "--limit", "2", "--offset", "1", NULL);
    g_assert_cmpint (r.status, ==, 0);
    expected = g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                                ids[DAVE], ids[CAROL]);
    assert_json (r.out, "[m['id'] for m in d]", expected);
    assert_json (r.out, "[d[0]['date'], d[0]['timestamp'], d[0]['sender'], d[0]['flags']]",
                 "[\"2024-03-07T10:00:00+00:00\", 1709805600, \"Dave\", []]");
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *line = g_strdup_printf ("%6" G_GINT64_FORMAT "  2024-03-04 10:00  -----  "
                                             "Alice Example             Grüße aus Köln\n",
                                             ids[ALICE]);

    run_ctl (&r, "list", "1", "--offset=4", "--limit=10", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, line);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "list", "inbox", "--limit", "0", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, "");
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *thread = g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                                               ids[ALICE], ids[BOB]);

    /* Bob's reply joins Alice's thread: one thread, oldest first */
    run_ctl (&r, "--json", "list", "local/Inbox", "--thread", NULL);
    g_assert_cmpint (r.status, ==, 0);
    assert_json (r.out, "len(d)", "4");
    assert_json (r.out,
                 "[[m['id'] for m in t['messages']] for t in d if len(t['messages']) > 1][0]",
                 thread);
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *ids_expected = g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                                     "]", ids[ALICE], ids[BOB]);

    /* paging counts threads: the fourth is Alice's and Bob's */
    run_ctl (&r, "--json", "list", "local/Inbox", "--thread", "--offset", "3", "--limit", "5",
             NULL);
    g_assert_cmpint (r.status, ==, 0);
    assert_json (r.out, "[m['id'] for m in d[0]['messages']]", ids_expected);
  }
}

static void
test_show (void)
{
  {
    g_auto(Result) r = { 0 };
    g_autofree char *id = id_text (ALICE);

    run_ctl (&r, "show", id, NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (g_str_has_prefix (r.out, "From: Alice Example <alice@example.test>\n"
                                            "To: Bob <bob@example.test>\n"
                                            "Date: 2024-03-04T10:00:00+00:00\n"
                                            "Subject: Grüße aus Köln\n"
                                            "Message-ID: <m1@example.test>\n"
                                            "Folder: local/Inbox\n"));
    g_assert_true (g_str_has_suffix (r.out, "\n\nHallo Bob, viele Grüße.\n"
                                            "From the beginning, this line needs mboxrd "
                                            "escaping.\n"
                                            ">From here too, one level more.\n"));
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *id = id_text (BOB);

    run_ctl (&r, "show", id, NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "\nCc: Carol <carol@example.test>\n"));
    g_assert_nonnull (strstr (r.out, "\nAttachment: figures.bin (application/octet-stream, "));
    g_assert_true (g_str_has_suffix (r.out, "\n\nThanks! The figures are attached.\n"));
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *id = id_text (BOB);

    run_ctl (&r, "show", "--json", id, NULL);
    g_assert_cmpint (r.status, ==, 0);
    assert_json (r.out, "[d['from'], [a['address'] for a in d['to'] + d['cc']], d['subject']]",
                 "[{\"name\": \"Bob\", \"address\": \"bob@example.test\"}, "
                 "[\"alice@example.test\", \"carol@example.test\"], \"Re: Grüße aus Köln\"]");
    assert_json (r.out, "[d['message_id'], d['in_reply_to'], d['downloaded'], d['attachments']]",
                 "[\"m2@example.test\", \"m1@example.test\", true, [{\"filename\": "
                 "\"figures.bin\", \"content_type\": \"application/octet-stream\", "
                 "\"size\": 16}]]");
  }
  /* --raw: the bytes as imported, for each message */
  for (guint i = 0; i < N_MESSAGES; i++)
    {
      g_auto(Result) r = { 0 };
      g_autofree char *id = id_text (i);
      g_autoptr(GBytes) expected = g_bytes_new_static (raw_messages[i], strlen (raw_messages[i]));

      run_ctl (&r, "show", id, "--raw", NULL);
      g_assert_cmpint (r.status, ==, 0);
      g_assert_cmpstr (r.err, ==, "");
      g_assert_true (g_bytes_equal (r.bytes, expected));
    }
  {
    g_auto(Result) r = { 0 };
    g_auto(Result) listed = { 0 };
    g_autofree char *welcome = NULL;

    /* The welcome message has only a preview: show says so, --raw fails (1). */
    run_ctl (&listed, "--json", "list", "local/Inbox", "--limit", "1", NULL);
    welcome = json_eval (listed.out, "d[0]['id']");
    run_ctl (&r, "show", welcome, NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "Subject: Welcome to Letterbox\n"));
    g_assert_nonnull (strstr (r.out, "Local Folders keep mail"));
    {
      g_auto(Result) raw = { 0 };

      run_ctl (&raw, "show", "--raw", welcome, NULL);
      assert_error_line (&raw, 1, NULL);
      g_assert_cmpstr (raw.out, ==, "");
    }
  }
}

static void
test_search (void)
{
  struct
  {
    const char *query[3];
    int expected[N_MESSAGES + 1];
  } cases[] = {
    { { "from:carol" }, { CAROL, -1 } },
    { { "has:attachment" }, { BOB, -1 } },
    { { "köln", "-re" }, { ALICE, -1 } },
    { { "köln" }, { BOB, ALICE, -1 } },
    { { "subject:lunch", "OR", "subject:quarterly" }, { DAVE, CAROL, -1 } },
    { { "to:alice", "before:2024-03-07" }, { CAROL, BOB, -1 } },
    { { "nothing-matches-this" }, { -1 } },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(Result) r = { 0 };
      g_autoptr(GString) expected = g_string_new ("[");

      run_ctl (&r, "--json", "search", cases[i].query[0], cases[i].query[1], cases[i].query[2],
               NULL);
      g_assert_cmpint (r.status, ==, 0);
      for (guint j = 0; cases[i].expected[j] >= 0; j++)
        g_string_append_printf (expected, "%s%" G_GINT64_FORMAT, j > 0 ? ", " : "",
                                ids[cases[i].expected[j]]);
      g_string_append_c (expected, ']');
      assert_json (r.out, "[m['id'] for m in d]", expected->str);
    }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *line = g_strdup_printf ("%6" G_GINT64_FORMAT "  2024-03-06 10:00  -----  "
                                             "local/Inbox       Carol                     "
                                             "Quarterly numbers\n", ids[CAROL]);

    run_ctl (&r, "search", "from:carol", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, line);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "--json", "search", "is:unread", "--limit", "2", "--offset", "1", NULL);
    g_assert_cmpint (r.status, ==, 0);
    assert_json (r.out, "len(d)", "2");
  }
  {
    g_auto(Result) r = { 0 };

    /* a query to correct is a usage error, with the parser's sentence */
    run_ctl (&r, "search", "(unclosed", NULL);
    assert_error_line (&r, 2, "(");
  }
}

static void
test_flag (void)
{
  g_autofree char *alice = id_text (ALICE);
  g_autofree char *expr = g_strdup_printf ("[m['flags'] for m in d if m['id'] == %s][0]", alice);

  {
    g_auto(Result) r = { 0 };
    g_auto(Result) listed = { 0 };
    g_autofree char *expected = g_strdup_printf ("Message %s: flagged seen\n", alice);

    run_ctl (&r, "flag", alice, "+seen", "+flagged", NULL);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, expected);
    run_ctl (&listed, "list", "local/Inbox", "--json", NULL);
    assert_json (listed.out, expr, "[\"flagged\", \"seen\"]");
  }
  {
    g_auto(Result) r = { 0 };
    g_auto(Result) listed = { 0 };
    g_auto(Result) text = { 0 };
    g_auto(Result) folders = { 0 };

    run_ctl (&r, "flag", alice, "-flagged", "+answered", NULL);
    g_assert_cmpint (r.status, ==, 0);
    run_ctl (&listed, "--json", "list", "local/Inbox", NULL);
    assert_json (listed.out, expr, "[\"answered\", \"seen\"]");
    run_ctl (&text, "list", "local/Inbox", "--offset", "4", NULL);
    g_assert_nonnull (strstr (text.out, "  --RS-  Alice Example"));
    run_ctl (&folders, "--json", "folders", NULL);
    assert_json (folders.out, "d[0]['unread']", "4");
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "flag", alice, "+important", NULL);
    assert_error_line (&r, 2, "+important");
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "flag", alice, "+seen", "-seen", NULL);
    assert_error_line (&r, 2, NULL);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "flag", alice, NULL);
    assert_error_line (&r, 2, NULL);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "flag", "987654", "+seen", NULL);
    assert_error_line (&r, 6, "987654");
  }
}

/* Two accounts with an Archive each, made the way sync would. */
static void
add_archive_folders (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStoreWriter) writer = lb_store_writer_new (data_dir, &error);
  const char *accounts[][3] = {
    { "local", "local", "Local Folders" },
    { "work", "imap", "Work Mail" },
  };

  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (accounts); i++)
    {
      LbTestWait w = { 0 };

      lb_store_writer_ensure_folder_async (writer, accounts[i][0], accounts[i][1],
                                           accounts[i][2], "Archive", LB_FOLDER_ROLE_ARCHIVE,
                                           NULL, lb_test_wait_cb, &w);
      g_assert_cmpint (lb_store_writer_ensure_folder_finish (writer, lb_test_wait_result (&w),
                                                             &error), >, 0);
      g_object_unref (w.result);
      g_assert_no_error (error);
    }
  lb_store_writer_close (writer);
}

static void
test_folder_names (void)
{
  add_archive_folders ();
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "list", "Archive", NULL);
    assert_error_line (&r, 2, "local/Archive, work/Archive");
  }
  {
    g_auto(Result) r = { 0 };
    g_auto(Result) by_name = { 0 };
    g_auto(Result) nocase = { 0 };

    run_ctl (&r, "--json", "folders", "work", NULL);
    g_assert_cmpint (r.status, ==, 0);
    assert_json (r.out, "[[f['path'], f['account_name'], f['role']] for f in d]",
                 "[[\"work/Archive\", \"Work Mail\", \"archive\"]]");
    /* the account by its display name, the folder ignoring case */
    run_ctl (&by_name, "list", "Work Mail/Archive", NULL);
    g_assert_cmpint (by_name.status, ==, 0);
    run_ctl (&nocase, "list", "work/archive", NULL);
    g_assert_cmpint (nocase.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "list", "work/Nope", NULL);
    assert_error_line (&r, 6, "Nope");
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "list", "424242", NULL);
    assert_error_line (&r, 6, "424242");
  }
}

static void
test_move (void)
{
  g_autofree char *carol = id_text (CAROL);
  g_autofree char *dave = id_text (DAVE);
  g_autofree char *in_drafts = g_strdup_printf ("[%s]", carol);

  {
    g_auto(Result) r = { 0 };
    g_autofree char *expected = g_strdup_printf ("Moved message %s to local/Drafts.\n", carol);

    run_ctl (&r, "move", carol, "local/Drafts", NULL);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, expected);
  }
  {
    g_auto(Result) drafts = { 0 };
    g_auto(Result) inbox = { 0 };
    g_autofree char *expr = g_strdup_printf ("%s in [m['id'] for m in d]", carol);

    run_ctl (&drafts, "--json", "list", "local/Drafts", NULL);
    assert_json (drafts.out, "[m['id'] for m in d]", in_drafts);
    assert_json (drafts.out, "d[0]['folder']", "\"local/Drafts\"");
    run_ctl (&inbox, "--json", "list", "local/Inbox", NULL);
    assert_json (inbox.out, expr, "false");
  }
  {
    g_auto(Result) r = { 0 };

    /* another account's folder: refused, nothing moved */
    run_ctl (&r, "move", dave, "work/Archive", NULL);
    assert_error_line (&r, 2, "work/Archive");
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "move", "987654", "local/Drafts", NULL);
    assert_error_line (&r, 6, NULL);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "move", dave, "local/Nope", NULL);
    assert_error_line (&r, 6, "Nope");
  }
}

static void
test_delete (void)
{
  g_autofree char *dave = id_text (DAVE);
  g_autofree char *in_trash = g_strdup_printf ("[%s]", dave);

  {
    g_auto(Result) r = { 0 };
    g_auto(Result) trash = { 0 };
    g_autofree char *expected = g_strdup_printf ("Moved message %s to local/Trash.\n", dave);

    run_ctl (&r, "delete", dave, NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, expected);
    run_ctl (&trash, "--json", "list", "local/Trash", NULL);
    assert_json (trash.out, "[m['id'] for m in d]", in_trash);
  }
  {
    g_auto(Result) r = { 0 };
    g_auto(Result) trash = { 0 };
    g_auto(Result) shown = { 0 };
    g_autofree char *expected = g_strdup_printf ("Deleted message %s.\n", dave);

    /* in the Trash already: gone for good */
    run_ctl (&r, "delete", dave, NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, expected);
    run_ctl (&trash, "--json", "list", "local/Trash", NULL);
    g_assert_cmpstr (trash.out, ==, "[]\n");
    run_ctl (&shown, "show", dave, NULL);
    assert_error_line (&shown, 6, dave);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "delete", dave, NULL);
    assert_error_line (&r, 6, dave);
  }
}

static void
test_export (void)
{
  g_autofree char *mbox = g_build_filename (home, "export.mbox", NULL);
  g_autofree char *maildir = g_build_filename (home, "export-maildir", NULL);
  g_autofree char *maildir_arg = g_strconcat (maildir, "/", NULL);
  g_autofree char *cur = g_build_filename (maildir, "cur", NULL);

  {
    g_auto(Result) r = { 0 };
    g_autofree char *contents = NULL;
    g_autoptr(GError) error = NULL;

    /* Inbox: Alice and Bob with bodies, the welcome message without */
    run_ctl (&r, "--json", "export", "local/Inbox", mbox, NULL);
    g_assert_cmpint (r.status, ==, 0);
    assert_json (r.out, "[d['format'], d['exported'], d['skipped']]", "[\"mbox\", 2, 1]");
    g_file_get_contents (mbox, &contents, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_str_has_prefix (contents, "From "));
    g_assert_nonnull (strstr (contents, "\n>From the beginning, this line"));
    g_assert_nonnull (strstr (contents, "\n>>From here too"));
  }
  {
    g_auto(Result) r = { 0 };
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GError) error = NULL;
    guint files = 0;

    run_ctl (&r, "export", "local/Inbox", maildir_arg, NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "Maildir"));
    dir = g_dir_open (cur, 0, &error);
    g_assert_no_error (error);
    while (g_dir_read_name (dir) != NULL)
      files++;
    g_assert_cmpuint (files, ==, 2);
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *into = g_build_filename (home, "no-such-dir", "x.mbox", NULL);

    run_ctl (&r, "export", "local/Inbox", into, NULL);
    assert_error_line (&r, 5, NULL);
  }
}

static void
test_exit_statuses (void)
{
  g_autofree char *through_file = g_build_filename (mbox_path, "x", NULL);
  g_autofree char *missing = g_build_filename (home, "no-such.mbox", NULL);

  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "show", "987654", NULL);
    assert_error_line (&r, 6, "987654");
  }
  {
    const char *usage[][5] = {
      { "list", NULL },
      { "show", NULL },
      { "show", "x", NULL },
      { "list", "local/Inbox", "--limit", "x", NULL },
      { "list", "local/Inbox", "--bogus", NULL },
      { "list", "local/Inbox", "--limit", NULL },
      { "import", NULL },
      { "move", "1", NULL },
      { "search", NULL },
      { "folders", "a", "b", NULL },
      { "frobnicate", NULL },
    };

    for (guint i = 0; i < G_N_ELEMENTS (usage); i++)
      {
        g_auto(Result) r = { 0 };

        run_ctl (&r, usage[i][0], usage[i][1], usage[i][2], usage[i][3], usage[i][4], NULL);
        assert_error_line (&r, 2, NULL);
        g_assert_cmpstr (r.out, ==, "");
      }
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "import", missing, NULL);
    assert_error_line (&r, 5, "no-such.mbox");
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "import", through_file, NULL);
    assert_error_line (&r, 5, NULL);
  }
  {
    g_auto(Result) r = { 0 };

    /* a store that cannot be opened: its directory is a file */
    run_ctl_env (&r, mbox_path, "folders", NULL);
    assert_error_line (&r, 5, NULL);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "list", "--help", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "--thread"));
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "--help", NULL);
    g_assert_cmpint (r.status, ==, 0);
    for (guint status = 0; status <= 6; status++)
      {
        g_autofree char *line = g_strdup_printf ("\n  %u  ", status);

        g_assert_nonnull (strstr (r.out, line));
      }
  }
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);
  home = lb_test_make_home ();
  ctl_path = g_getenv ("LB_CTL_PATH");
  g_assert_nonnull (ctl_path);
  data_dir = g_build_filename (home, "store", NULL);
  config_dir = g_build_filename (home, "ctl-config", NULL);

  g_test_add_func ("/ctl/store/import", test_import);
  g_test_add_func ("/ctl/store/folders", test_folders);
  g_test_add_func ("/ctl/store/list", test_list);
  g_test_add_func ("/ctl/store/show", test_show);
  g_test_add_func ("/ctl/store/search", test_search);
  g_test_add_func ("/ctl/store/flag", test_flag);
  g_test_add_func ("/ctl/store/folder-names", test_folder_names);
  g_test_add_func ("/ctl/store/move", test_move);
  g_test_add_func ("/ctl/store/delete", test_delete);
  g_test_add_func ("/ctl/store/export", test_export);
  g_test_add_func ("/ctl/store/exit-statuses", test_exit_statuses);

  status = g_test_run ();

  lb_test_remove_tree (home);
  g_free (data_dir);
  g_free (config_dir);
  g_free (mbox_path);
  return status;
}
