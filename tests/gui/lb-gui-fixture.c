/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#include "lb-test-util.h"

/*
 * The real mail servers for a GUI test written in python: starts Dovecot and Postfix
 * (tests/fixtures/mailservers.sh through lb_test_servers_start()), empties the users'
 * mailboxes, unless --no-seed is given creates alice's folders Projects and Projects/Letterbox
 * and saves a few known messages for her (see seeds[] below), and prints
 * one line of JSON on stdout. With --archive-all-mail the servers have no \Archive
 * mailbox: the seeded Archive becomes "Old Archive" (a plain folder), and a mailbox
 * "All Mail" is \All when created (it is not, until a test does), as on Gmail-like servers:
 *
 *   {"dir": …, "ca_file": …, "host": …, "imap_port": …, "imaps_port": …,
 *    "pop3_port": …, "pop3s_port": …, "smtp_port": …, "submission_port": …,
 *    "submissions_port": …,
 *    "users": [{"address": "alice@example.test", "password": "alice-password"}, …],
 *    "doveadm": ["bash", ".../mailservers.sh", "doveadm", DIR],
 *    "seeded": [{"user": …, "mailbox": …, "subject": …, "message_id": …, "body": …}, …]}
 *
 * "doveadm" is the command line to prepend to doveadm's arguments to look at or change
 * the servers' mailboxes. The servers stop when stdin reaches end of file (the test
 * closes it, or dies), and also if this process is killed (the fixture script watches it).
 */

typedef struct
{
  const char *user;
  const char *mailbox;
  const char *from;
  const char *subject;
  const char *message_id;
  const char *date;
  const char *body;
} Seed;

/* Distinct words in each, so that a search finds exactly one. */
static const Seed seeds[] = {
  { "alice@example.test", "INBOX", "Bob Builder <bob@example.test>", "Quarterly budget review",
    "<gui-1@example.test>", "Mon, 1 Jan 2024 09:00:00 +0000",
    "Hello Alice,\r\n\r\nThe quarterly budget spreadsheet is attached in spirit. "
    "Please look at the marmalade line before Friday.\r\n\r\nBob\r\n" },
  { "alice@example.test", "INBOX", "Carol Singer <carol@example.test>", "Lunch on Thursday",
    "<gui-2@example.test>", "Tue, 2 Jan 2024 10:30:00 +0000",
    "Hi,\r\n\r\nShall we try the new noodle place on Thursday? It opens at noon.\r\n\r\n"
    "Carol\r\n" },
  { "alice@example.test", "INBOX", "Dave Diver <dave@example.org>", "Photos from the trip",
    "<gui-3@example.org>", "Wed, 3 Jan 2024 18:15:00 +0000",
    "The photos of the lighthouse came out well. I will put them on the share.\r\n" },
  { "alice@example.test", "Projects/Letterbox", "Carol Singer <carol@example.test>",
    "Sidebar design notes", "<gui-5@example.test>", "Thu, 4 Jan 2024 11:00:00 +0000",
    "Nested folders should be indented under their parent.\r\n" },
  { "alice@example.test", "Archive", "Bob Builder <bob@example.test>", "Old minutes",
    "<gui-4@example.test>", "Fri, 1 Dec 2023 08:00:00 +0000",
    "Minutes of the meeting about the zeppelin hangar.\r\n" },
};

static const char *extra_folders[] = { "Projects", "Projects/Letterbox" };

static void
json_string (GString    *out,
             const char *value)
{
  g_string_append_c (out, '"');
  for (const char *p = value; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        default:
          if ((guchar) *p < 0x20)
            g_string_append_printf (out, "\\u%04x", (guint) (guchar) *p);
          else
            g_string_append_c (out, *p);
        }
    }
  g_string_append_c (out, '"');
}

static gboolean
seed_messages (LbTestServers  *servers,
               GString        *json,
               GError        **error)
{
  const char *users[] = { "alice@example.test", "bob@example.test", "carol@example.test" };

  for (guint i = 0; i < G_N_ELEMENTS (users); i++)
    if (!lb_test_servers_doveadm (servers, NULL, NULL, error, "expunge", "-u", users[i],
                                  "mailbox", "*", "all", NULL))
      return FALSE;

  /* A folder inside another, for the sidebar's hierarchy (the separator is "/"). */
  for (guint i = 0; i < G_N_ELEMENTS (extra_folders); i++)
    if (!lb_test_servers_doveadm (servers, NULL, NULL, error, "mailbox", "create", "-s", "-u",
                                  "alice@example.test", extra_folders[i], NULL))
      return FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (seeds); i++)
    {
      const Seed *s = &seeds[i];
      g_autofree char *message = g_strdup_printf ("From: %s\r\n"
                                                  "To: Alice <%s>\r\n"
                                                  "Subject: %s\r\n"
                                                  "Message-ID: %s\r\n"
                                                  "Date: %s\r\n"
                                                  "MIME-Version: 1.0\r\n"
                                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                                  "\r\n"
                                                  "%s",
                                                  s->from, s->user, s->subject, s->message_id,
                                                  s->date, s->body);

      if (!lb_test_servers_doveadm (servers, message, NULL, error, "save", "-u", s->user,
                                    "-m", s->mailbox, NULL))
        return FALSE;

      g_string_append (json, i == 0 ? "" : ", ");
      g_string_append (json, "{\"user\": ");
      json_string (json, s->user);
      g_string_append (json, ", \"mailbox\": ");
      json_string (json, s->mailbox);
      g_string_append (json, ", \"from\": ");
      json_string (json, s->from);
      g_string_append (json, ", \"subject\": ");
      json_string (json, s->subject);
      g_string_append (json, ", \"message_id\": ");
      json_string (json, s->message_id);
      g_string_append (json, ", \"body\": ");
      json_string (json, s->body);
      g_string_append (json, "}");
    }
  return TRUE;
}

/* The greeting of the servers' IMAP port, for telling when a reload has taken effect. */
typedef struct
{
  LbTestServers *servers;
  const char *expected;
} Greeting;

static gboolean
greeting_is (gpointer user_data)
{
  Greeting *g = user_data;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GDataInputStream) input = NULL;
  g_autofree char *line = NULL;

  connection = g_socket_client_connect_to_host (client, g->servers->host, g->servers->imap_port,
                                                NULL, NULL);
  if (connection == NULL)
    return FALSE;
  input = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  line = g_data_input_stream_read_line (input, NULL, NULL, NULL);
  return line != NULL && strstr (line, g->expected) != NULL;
}

/* No \Archive: the Archive mailbox's special use goes, "All Mail" is \All (not created),
 * the seeded Archive is renamed so that no client guesses its role from its name. Dovecot
 * reloads its configuration; the new greeting says when it serves with it. */
static gboolean
use_all_mail (LbTestServers  *servers,
              GError        **error)
{
  static const char archive[] = "  mailbox Archive {\n"
                                "    special_use = \\Archive\n"
                                "    auto = subscribe\n"
                                "  }\n";
  static const char all_mail[] = "  mailbox \"All Mail\" {\n"
                                 "    special_use = \\All\n"
                                 "    auto = no\n"
                                 "  }\n";
  g_autofree char *path = g_build_filename (servers->dir, "dovecot", "dovecot.conf", NULL);
  g_autofree char *conf = NULL;
  g_autoptr(GString) edited = NULL;
  Greeting greeting = { servers, "Letterbox fixture without Archive" };

  if (!g_file_get_contents (path, &conf, NULL, error))
    return FALSE;
  if (strstr (conf, archive) == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "no Archive mailbox in %s", path);
      return FALSE;
    }
  edited = g_string_new (conf);
  g_string_replace (edited, archive, all_mail, 1);
  g_string_append_printf (edited, "login_greeting = %s\n", greeting.expected);
  if (!g_file_set_contents (path, edited->str, edited->len, error) ||
      !lb_test_servers_doveadm (servers, NULL, NULL, error, "reload", NULL))
    return FALSE;
  if (!lb_test_wait_until (greeting_is, &greeting, 20000))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "Dovecot did not reload %s", path);
      return FALSE;
    }
  return lb_test_servers_doveadm (servers, NULL, NULL, error, "mailbox", "rename", "-u",
                                  "alice@example.test", "Archive", "Old Archive", NULL);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) json = g_string_new ("{");
  g_autoptr(GString) seeded = g_string_new ("");
  g_autofree char *script = NULL;
  const char *fixtures_dir = g_getenv ("LB_FIXTURES_DIR");
  const char *names[] = { "alice", "bob", "carol" };
  gboolean seed = TRUE;
  gboolean all_mail = FALSE;
  LbTestServers *servers;
  char buffer[256];

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--no-seed") == 0)
        seed = FALSE;
      else if (strcmp (argv[i], "--archive-all-mail") == 0)
        all_mail = TRUE;
      else
        {
          g_printerr ("usage: %s [--no-seed] [--archive-all-mail]\n", argv[0]);
          return 2;
        }
    }

  servers = lb_test_servers_start (&error);
  if (servers == NULL)
    {
      g_printerr ("lb-gui-fixture: %s\n", error->message);
      return 1;
    }

  if (seed && !seed_messages (servers, seeded, &error))
    {
      g_printerr ("lb-gui-fixture: %s\n", error->message);
      lb_test_servers_stop (servers);
      return 1;
    }

  if (all_mail && !use_all_mail (servers, &error))
    {
      g_printerr ("lb-gui-fixture: %s\n", error->message);
      lb_test_servers_stop (servers);
      return 1;
    }

  script = g_build_filename (fixtures_dir != NULL ? fixtures_dir : LB_FIXTURES_DIR,
                             "mailservers.sh", NULL);

  g_string_append (json, "\"dir\": ");
  json_string (json, servers->dir);
  g_string_append (json, ", \"ca_file\": ");
  json_string (json, servers->ca_file);
  g_string_append (json, ", \"host\": ");
  json_string (json, servers->host);
  g_string_append_printf (json, ", \"imap_port\": %u, \"imaps_port\": %u, \"pop3_port\": %u, "
                          "\"pop3s_port\": %u, \"smtp_port\": %u, \"submission_port\": %u, "
                          "\"submissions_port\": %u",
                          servers->imap_port, servers->imaps_port, servers->pop3_port,
                          servers->pop3s_port, servers->smtp_port, servers->submission_port,
                          servers->submissions_port);
  g_string_append (json, ", \"users\": [");
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *address = g_strdup_printf ("%s@example.test", names[i]);
      g_autofree char *password = g_strdup_printf ("%s-password", names[i]);

      g_string_append (json, i == 0 ? "{\"address\": " : ", {\"address\": ");
      json_string (json, address);
      g_string_append (json, ", \"password\": ");
      json_string (json, password);
      g_string_append (json, "}");
    }
  g_string_append (json, "], \"doveadm\": [\"bash\", ");
  json_string (json, script);
  g_string_append (json, ", \"doveadm\", ");
  json_string (json, servers->dir);
  g_string_append_printf (json, "], \"seeded\": [%s]}\n", seeded->str);

  fputs (json->str, stdout);
  fflush (stdout);

  /* Until the test is done with the servers. */
  while (fgets (buffer, sizeof buffer, stdin) != NULL)
    ;

  lb_test_servers_stop (servers);
  return 0;
}
