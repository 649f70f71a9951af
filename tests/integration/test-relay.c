/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "lb-secret.h"
#include "lb-test-util.h"
#include "lbd-relay-secret.h"
#include "lbd-relay-server.h"

/*
 * The relay server (backend/daemon/relay/) in this process, in a thread of its own with
 * its own main context, on a temporary XDG_RUNTIME_DIR and XDG_CONFIG_HOME and a free
 * TCP port, handing messages to a sink that records them in memory. Real clients drive
 * it: swaks, msmtp and python's smtplib over TCP with and without AUTH;
 * letterbox-sendmail and bsd-mailx over the Unix socket; and bad clients over raw
 * sockets from this thread, each blocking call bounded by a socket timeout.
 */

typedef struct
{
  char *from;
  char **recipients;
  GBytes *message;
  gboolean authenticated_tcp;
} Submission;

static void
submission_free (Submission *s)
{
  g_free (s->from);
  g_strfreev (s->recipients);
  g_bytes_unref (s->message);
  g_free (s);
}

typedef struct
{
  guint idle_timeout;
  guint command_timeout;
  guint data_timeout;
  guint64 size_limit;
  guint max_connections;
  guint max_recipients;
} RelayConfig;

typedef struct
{
  RelayConfig config;
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  LbdRelayServer *server;
  GMutex lock;
  GCond cond;
  gboolean ready;
  GError *start_error;

  char *socket_path;
  char *secret_path;
  char *secret;
  guint16 port;

  /* The sink's record; under lock. */
  GPtrArray *submissions;
  guint calls;
  GError *fail;
  gboolean hold;
  gboolean immediate;        /* answer inside submit_async (against GIO's rule) */
  GTask *held;               /* server thread */
  char *held_id;
} Relay;

static char *home;

static void
sink_submit_async (gpointer             sink_data,
                   const char          *from,
                   const char * const  *recipients,
                   GBytes              *message,
                   gboolean             authenticated_tcp,
                   GCancellable        *cancellable,
                   GAsyncReadyCallback  callback,
                   gpointer             user_data)
{
  Relay *r = sink_data;
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  Submission *s;
  char *id;

  g_mutex_lock (&r->lock);
  r->calls++;
  if (r->fail != NULL)
    {
      g_task_return_error (task, g_error_copy (r->fail));
      g_mutex_unlock (&r->lock);
      return;
    }
  s = g_new0 (Submission, 1);
  s->from = g_strdup (from);
  s->recipients = g_strdupv ((char **) recipients);
  s->message = g_bytes_ref (message);
  s->authenticated_tcp = authenticated_tcp;
  g_ptr_array_add (r->submissions, s);
  id = g_strdup_printf ("TEST%u", r->submissions->len);
  if (r->hold)
    {
      /* Answered by relay_release(), as a queue answers after its fsync. */
      r->held = g_steal_pointer (&task);
      r->held_id = id;
    }
  g_cond_broadcast (&r->cond);
  if (r->immediate && task != NULL)
    {
      /* A careless sink: the callback runs before submit_async returns. */
      g_autoptr(GTask) now = g_task_new (NULL, cancellable, NULL, NULL);

      g_mutex_unlock (&r->lock);
      g_task_return_pointer (now, id, g_free);
      callback (NULL, G_ASYNC_RESULT (now), user_data);
      return;
    }
  g_mutex_unlock (&r->lock);
  if (task != NULL)
    g_task_return_pointer (task, id, g_free);
}

static char *
sink_submit_finish (gpointer       sink_data,
                    GAsyncResult  *result,
                    GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static const LbdRelaySink test_sink = { sink_submit_async, sink_submit_finish };

static gpointer
relay_thread (gpointer data)
{
  Relay *r = data;
  g_autoptr(GError) error = NULL;
  gboolean ok;
  gpointer weak;

  g_main_context_push_thread_default (r->context);
  r->server = lbd_relay_server_new (&test_sink, r);
  g_object_set (r->server,
                "secret-path", r->secret_path,
                "idle-timeout", r->config.idle_timeout,
                "command-timeout", r->config.command_timeout,
                "data-timeout", r->config.data_timeout,
                "size-limit", r->config.size_limit,
                "max-connections", r->config.max_connections,
                "max-recipients", r->config.max_recipients,
                "hostname", "relay.test",
                NULL);
  ok = lbd_relay_server_start (r->server, &error);

  g_mutex_lock (&r->lock);
  r->ready = TRUE;
  if (ok)
    {
      r->port = lbd_relay_server_get_tcp_port (r->server);
      r->socket_path = g_strdup (lbd_relay_server_get_socket_path (r->server));
    }
  else
    r->start_error = g_steal_pointer (&error);
  g_cond_broadcast (&r->cond);
  g_mutex_unlock (&r->lock);

  if (ok)
    g_main_loop_run (r->loop);

  /* Stop, and wait until every session and accept let go of the server. */
  lbd_relay_server_stop (r->server);
  weak = r->server;
  g_object_add_weak_pointer (G_OBJECT (r->server), &weak);
  g_clear_object (&r->server);
  {
    gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;

    while (weak != NULL)
      {
        if (g_get_monotonic_time () > deadline)
          g_error ("the relay server was not released within 15 s of stopping");
        g_main_context_iteration (r->context, FALSE);
        g_usleep (1000);
      }
  }
  g_main_context_pop_thread_default (r->context);
  return NULL;
}

static RelayConfig
relay_config_default (void)
{
  RelayConfig c = {
    .idle_timeout = 30,
    .command_timeout = 30,
    .data_timeout = 30,
    .size_limit = LBD_RELAY_DEFAULT_SIZE_LIMIT,
    .max_connections = LBD_RELAY_DEFAULT_MAX_CONNECTIONS,
    .max_recipients = LBD_RELAY_DEFAULT_MAX_RECIPIENTS,
  };

  return c;
}

static Relay *
relay_start_full (const RelayConfig *config,
                  GError           **error)
{
  Relay *r = g_new0 (Relay, 1);

  r->config = *config;
  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  r->submissions = g_ptr_array_new_with_free_func ((GDestroyNotify) submission_free);
  r->context = g_main_context_new ();
  r->loop = g_main_loop_new (r->context, FALSE);
  r->secret_path = g_build_filename (g_getenv ("XDG_CONFIG_HOME"), "letterbox", "relay-secret",
                                     NULL);
  r->thread = g_thread_new ("relay", relay_thread, r);

  g_mutex_lock (&r->lock);
  while (!r->ready)
    g_cond_wait (&r->cond, &r->lock);
  g_mutex_unlock (&r->lock);
  if (r->start_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&r->start_error));
      g_thread_join (r->thread);
      g_main_loop_unref (r->loop);
      g_main_context_unref (r->context);
      g_ptr_array_unref (r->submissions);
      g_free (r->secret_path);
      g_free (r);
      return NULL;
    }
  g_assert_true (g_file_get_contents (r->secret_path, &r->secret, NULL, NULL));
  g_strchomp (r->secret);
  return r;
}

static Relay *
relay_start (const RelayConfig *config)
{
  RelayConfig c = relay_config_default ();
  g_autoptr(GError) error = NULL;
  Relay *r = relay_start_full (config != NULL ? config : &c, &error);

  g_assert_no_error (error);
  return r;
}

static void
relay_stop (Relay *r)
{
  g_main_loop_quit (r->loop);
  g_thread_join (r->thread);
  g_assert_null (r->held);
  g_main_loop_unref (r->loop);
  g_main_context_unref (r->context);
  g_ptr_array_unref (r->submissions);
  g_clear_error (&r->fail);
  g_free (r->socket_path);
  g_free (r->secret_path);
  g_free (r->secret);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->cond);
  g_free (r);
}

static guint
relay_count (Relay *r)
{
  guint n;

  g_mutex_lock (&r->lock);
  n = r->submissions->len;
  g_mutex_unlock (&r->lock);
  return n;
}

static guint
relay_calls (Relay *r)
{
  guint n;

  g_mutex_lock (&r->lock);
  n = r->calls;
  g_mutex_unlock (&r->lock);
  return n;
}

static Submission *
relay_get (Relay *r,
           guint  i)
{
  Submission *s;

  g_mutex_lock (&r->lock);
  g_assert_cmpuint (i, <, r->submissions->len);
  s = g_ptr_array_index (r->submissions, i);
  g_mutex_unlock (&r->lock);
  return s;
}

static void
relay_set_fail (Relay  *r,
                GError *error)
{
  g_mutex_lock (&r->lock);
  g_clear_error (&r->fail);
  r->fail = error;
  g_mutex_unlock (&r->lock);
}

static gboolean
release_cb (gpointer user_data)
{
  Relay *r = user_data;
  GTask *task;
  char *id;

  g_mutex_lock (&r->lock);
  task = g_steal_pointer (&r->held);
  id = g_steal_pointer (&r->held_id);
  r->hold = FALSE;
  g_mutex_unlock (&r->lock);
  g_task_return_pointer (task, id, g_free);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

static void
relay_release (Relay *r)
{
  g_main_context_invoke (r->context, release_cb, r);
}

static gboolean
sessions_gone (gpointer user_data)
{
  return lbd_relay_server_get_n_sessions (((Relay *) user_data)->server) == 0;
}

/* Submissions must be looked at after the client saw its reply, which comes after the
 * sink returned: no waiting is needed for them. */
static void
assert_submission (Relay       *r,
                   guint        i,
                   const char  *from,
                   const char  *recipients,
                   const char  *message,
                   gboolean     authenticated_tcp)
{
  Submission *s = relay_get (r, i);
  g_autofree char *joined = g_strjoinv (",", s->recipients);

  g_assert_cmpstr (s->from, ==, from);
  g_assert_cmpstr (joined, ==, recipients);
  if (message != NULL)
    g_assert_cmpmem (g_bytes_get_data (s->message, NULL), g_bytes_get_size (s->message), message,
                     strlen (message));
  g_assert_cmpint (s->authenticated_tcp, ==, authenticated_tcp);
}

/* Raw clients: blocking sockets with a timeout, from the test's thread. */

typedef struct
{
  GSocket *socket;
  GByteArray *buf;
} Raw;

static Raw *
raw_connect_address (GSocketAddress *address,
                     GError        **error)
{
  Raw *c = g_new0 (Raw, 1);

  c->socket = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_DEFAULT, error);
  if (c->socket == NULL || !g_socket_connect (c->socket, address, NULL, error))
    {
      g_clear_object (&c->socket);
      g_free (c);
      return NULL;
    }
  g_socket_set_timeout (c->socket, 15);
  c->buf = g_byte_array_new ();
  return c;
}

static Raw *
raw_tcp (Relay *r)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (lo, r->port);
  g_autoptr(GError) error = NULL;
  Raw *c = raw_connect_address (address, &error);

  g_assert_no_error (error);
  return c;
}

static Raw *
raw_unix (Relay *r)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (r->socket_path);
  g_autoptr(GError) error = NULL;
  Raw *c = raw_connect_address (address, &error);

  g_assert_no_error (error);
  return c;
}

static void
raw_free (Raw *c)
{
  g_socket_close (c->socket, NULL);
  g_object_unref (c->socket);
  g_byte_array_unref (c->buf);
  g_free (c);
}

static gboolean
raw_send_len (Raw        *c,
              const void *data,
              gsize       len)
{
  gsize done = 0;

  while (done < len)
    {
      gssize n = g_socket_send (c->socket, (const char *) data + done, len - done, NULL, NULL);

      if (n <= 0)
        return FALSE;
      done += (gsize) n;
    }
  return TRUE;
}

static void
raw_send (Raw        *c,
          const char *text)
{
  g_assert_true (raw_send_len (c, text, strlen (text)));
}

/* A string literal that holds NUL bytes. */
#define raw_send_literal(c, literal) \
  g_assert_true (raw_send_len ((c), (literal), sizeof (literal) - 1))

/* One line without its CRLF, or NULL when the server closed (or reset) the connection. */
static char *
raw_line (Raw *c)
{
  while (TRUE)
    {
      guint8 tmp[4096];
      gssize n;

      for (guint i = 0; i + 1 < c->buf->len; i++)
        if (c->buf->data[i] == '\r' && c->buf->data[i + 1] == '\n')
          {
            char *line = g_strndup ((const char *) c->buf->data, i);

            g_byte_array_remove_range (c->buf, 0, i + 2);
            return line;
          }
      n = g_socket_receive (c->socket, (char *) tmp, sizeof tmp, NULL, NULL);
      if (n <= 0)
        return NULL;
      g_byte_array_append (c->buf, tmp, (guint) n);
    }
}

/* The last line of the next reply (NULL if closed); the whole of it in *all. */
static char *
raw_reply (Raw   *c,
           char **all)
{
  GString *text = g_string_new (NULL);
  char *line;

  while ((line = raw_line (c)) != NULL)
    {
      g_string_append_printf (text, "%s\n", line);
      if (strlen (line) < 4 || line[3] != '-')
        break;
      g_free (line);
    }
  if (all != NULL)
    *all = g_string_free (text, FALSE);
  else
    g_string_free (text, TRUE);
  return line;
}

static void
raw_expect (Raw        *c,
            const char *prefix)
{
  g_autofree char *line = raw_reply (c, NULL);

  if (line == NULL || !g_str_has_prefix (line, prefix))
    g_error ("expected a reply starting with \"%s\", got \"%s\"", prefix,
             line != NULL ? line : "(connection closed)");
}

/* The server closed (or reset) the connection: nothing more to read. */
static void
raw_expect_closed (Raw *c)
{
  g_autofree char *line = raw_line (c);

  if (line != NULL)
    g_error ("expected the connection closed, got \"%s\"", line);
}

static void
raw_greet (Raw        *c,
           const char *ehlo)
{
  raw_expect (c, "220 relay.test ESMTP");
  raw_send (c, ehlo);
  raw_expect (c, "250 ");
}

static void
raw_login (Relay *r,
           Raw   *c)
{
  g_autofree char *plain = g_strdup_printf ("%c%s%c%s", 0, g_get_user_name (), 0, r->secret);
  g_autofree char *b64 = g_base64_encode ((const guint8 *) plain,
                                          2 + strlen (g_get_user_name ()) + strlen (r->secret));
  g_autofree char *line = g_strdup_printf ("AUTH PLAIN %s\r\n", b64);

  raw_greet (c, "EHLO client.test\r\n");
  raw_send (c, line);
  raw_expect (c, "235 2.7.0 ");
}

/* Running clients */

static char *
write_temp (const char *name,
            const char *contents,
            gssize      len)
{
  char *path = g_build_filename (home, name, NULL);

  g_assert_true (g_file_set_contents (path, contents, len, NULL));
  return path;
}

/* Runs a client with @input as its standard input: a file, not a pipe, since a client
 * that refuses its arguments exits without reading it, and writing into a pipe whose
 * reader has gone fails (EPIPE) when the client was quicker than the write. */
static int
run (const char * const  *argv,
     const char          *input,
     char               **out,
     char               **err)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *stdout_text = NULL;
  g_autofree char *stderr_text = NULL;
  g_autofree char *stdin_path = write_temp ("client-stdin", input != NULL ? input : "", -1);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_set_stdin_file_path (launcher, stdin_path);
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &stdout_text, &stderr_text, &error);
  g_assert_no_error (error);
  g_assert_no_errno (g_unlink (stdin_path));
  if (g_test_verbose ())
    g_printerr ("%s: exit %d\nstdout: %s\nstderr: %s\n", argv[0],
                g_subprocess_get_if_exited (process) ? g_subprocess_get_exit_status (process) : -1,
                stdout_text, stderr_text);
  if (out != NULL)
    *out = g_steal_pointer (&stdout_text);
  if (err != NULL)
    *err = g_steal_pointer (&stderr_text);
  g_assert_true (g_subprocess_get_if_exited (process));
  return g_subprocess_get_exit_status (process);
}

static const char *
sendmail_path (void)
{
  const char *path = g_getenv ("LB_SENDMAIL_PATH");

  g_assert_nonnull (path);
  return path;
}

/* A message with lines that need stuffing, a lone dot, and 8-bit text; LF line ends, as
 * a script writes it. */
static const char message_lf[] =
  "From: Alice <alice@example.test>\n"
  "To: Bob <bob@example.test>\n"
  "Subject: relay test\n"
  "Date: Mon, 03 Jun 2024 10:00:00 +0200\n"
  "Message-ID: <relay-test@example.test>\n"
  "\n"
  "Hello Bob,\n"
  ".leading dot\n"
  "..two dots\n"
  "a line\n"
  "\n"
  "-- \n"
  "Alice\n";

static char *
crlf (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  return g_strjoinv ("\r\n", lines);
}

/* Real clients over TCP */

static void
test_swaks (void)
{
  Relay *r = relay_start (NULL);
  g_autofree char *port = g_strdup_printf ("%u", r->port);
  /* swaks ends the data with CRLF "." CRLF itself: its file has no final line end. */
  g_autofree char *data = write_temp ("swaks.eml", message_lf, strlen (message_lf) - 1);
  g_autofree char *data_arg = g_strconcat ("@", data, NULL);
  g_autofree char *expected = crlf (message_lf);
  g_autofree char *out = NULL;
  const char *mechs[] = { "PLAIN", "LOGIN" };

  for (guint i = 0; i < G_N_ELEMENTS (mechs); i++)
    {
      const char *argv[] = { "swaks", "--server", "127.0.0.1", "--port", port,
                             "--from", "alice@example.test", "--to", "bob@example.test",
                             "--auth", mechs[i], "--auth-user", g_get_user_name (),
                             "--auth-password", r->secret, "--data", data_arg, NULL };

      g_clear_pointer (&out, g_free);
      g_assert_cmpint (run (argv, NULL, &out, NULL), ==, 0);
      g_assert_nonnull (strstr (out, "235 2.7.0 Authentication successful"));
      g_assert_nonnull (strstr (out, "250 2.0.0 Ok: queued as TEST"));
      assert_submission (r, i, "alice@example.test", "bob@example.test", expected, TRUE);
    }

  /* Without AUTH: refused at MAIL; with a wrong password: refused at AUTH. */
  {
    const char *argv[] = { "swaks", "--server", "127.0.0.1", "--port", port,
                           "--from", "alice@example.test", "--to", "bob@example.test",
                           "--data", data_arg, NULL };

    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run (argv, NULL, &out, NULL), !=, 0);
    g_assert_nonnull (strstr (out, "530 5.7.0 Authentication required"));
  }
  {
    const char *argv[] = { "swaks", "--server", "127.0.0.1", "--port", port,
                           "--from", "alice@example.test", "--to", "bob@example.test",
                           "--auth", "PLAIN", "--auth-user", g_get_user_name (),
                           "--auth-password", "wrong-password", "--data", data_arg, NULL };

    g_clear_pointer (&out, g_free);
    g_assert_cmpint (run (argv, NULL, &out, NULL), !=, 0);
    g_assert_nonnull (strstr (out, "535 5.7.8"));
  }
  g_assert_cmpuint (relay_count (r), ==, 2);
  relay_stop (r);
}

static void
test_msmtp (void)
{
  Relay *r = relay_start (NULL);
  g_autofree char *port = g_strdup_printf ("--port=%u", r->port);
  g_autofree char *user = g_strdup_printf ("--user=%s", g_get_user_name ());
  g_autofree char *passwordeval = g_strdup_printf ("--passwordeval=cat %s", r->secret_path);
  g_autofree char *expected = crlf (message_lf);
  g_autofree char *err = NULL;
  /* With TLS off msmtp's --auth=on refuses PLAIN and LOGIN; naming the method is what a
   * loopback setup does (the man page says so). */
  const char *argv[] = { "msmtp", "--host=127.0.0.1", port, "--auth=plain", user, passwordeval,
                         "--tls=off", "--from=alice@example.test", "--",
                         "bob@example.test", "carol@example.test", NULL };
  const char *argv_noauth[] = { "msmtp", "--host=127.0.0.1", port, "--auth=off", "--tls=off",
                                "--from=alice@example.test", "--", "bob@example.test", NULL };

  /* The password from the secret file, as the man page tells scripts to do. */
  g_assert_cmpint (run (argv, message_lf, NULL, &err), ==, 0);
  assert_submission (r, 0, "alice@example.test", "bob@example.test,carol@example.test", expected,
                     TRUE);

  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run (argv_noauth, message_lf, NULL, &err), !=, 0);
  g_assert_nonnull (strstr (err, "530 5.7.0"));
  g_assert_cmpuint (relay_count (r), ==, 1);
  relay_stop (r);
}

static const char python_client[] =
  "import smtplib, sys\n"
  "port, user, password, mode = sys.argv[1:5]\n"
  "msg = sys.stdin.buffer.read()\n"
  "s = smtplib.SMTP('127.0.0.1', int(port), timeout=20)\n"
  "s.ehlo('python.test')\n"
  "if mode == 'auth':\n"
  "    s.login(user, password)\n"
  "try:\n"
  "    s.sendmail('alice@example.test', ['bob@example.test'], msg)\n"
  "    print('sent')\n"
  "except smtplib.SMTPSenderRefused as e:\n"
  "    print('refused', e.smtp_code, e.smtp_error.decode())\n"
  "s.quit()\n";

static void
test_python (void)
{
  Relay *r = relay_start (NULL);
  g_autofree char *port = g_strdup_printf ("%u", r->port);
  g_autofree char *expected = crlf (message_lf);
  g_autofree char *out = NULL;
  const char *argv[] = { "/usr/bin/python3", "-c", python_client, port, g_get_user_name (),
                         r->secret, "auth", NULL };
  const char *argv_noauth[] = { "/usr/bin/python3", "-c", python_client, port,
                                g_get_user_name (), r->secret, "none", NULL };

  g_assert_cmpint (run (argv, expected, &out, NULL), ==, 0);
  g_assert_cmpstr (out, ==, "sent\n");
  assert_submission (r, 0, "alice@example.test", "bob@example.test", expected, TRUE);

  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run (argv_noauth, expected, &out, NULL), ==, 0);
  g_assert_cmpstr (out, ==, "refused 530 5.7.0 Authentication required\n");
  g_assert_cmpuint (relay_count (r), ==, 1);
  relay_stop (r);
}

/* letterbox-sendmail and mailx over the Unix socket */

static const char *
header_value (const char *message,
              const char *name)
{
  g_autofree char *needle = g_strdup_printf ("\r\n%s: ", name);
  const char *p = strstr (message, needle);

  if (p == NULL && g_str_has_prefix (message, needle + 2))
    return message + strlen (needle) - 2;
  return p != NULL ? p + strlen (needle) : NULL;
}

static char *
submission_text (Relay *r,
                 guint  i)
{
  Submission *s = relay_get (r, i);

  return g_strndup (g_bytes_get_data (s->message, NULL), g_bytes_get_size (s->message));
}

static void
test_sendmail (void)
{
  Relay *r = relay_start (NULL);
  g_autofree char *login = g_strdup_printf ("%s@", g_get_user_name ());
  g_autofree char *expected = crlf (message_lf);
  g_autofree char *err = NULL;
  g_autofree char *text = NULL;
  Submission *s;

  /* Recipients as arguments; the message as written (LF → CRLF), dots intact. */
  {
    const char *argv[] = { sendmail_path (), "-i", "-f", "alice@example.test", "--",
                           "bob@example.test", "carol@example.test", NULL };

    g_assert_cmpint (run (argv, message_lf, NULL, &err), ==, EX_OK);
    g_assert_cmpstr (err, ==, "");
    assert_submission (r, 0, "alice@example.test", "bob@example.test,carol@example.test", expected,
                       FALSE);
  }

  /* -t: recipients from To/Cc/Bcc plus the arguments, Bcc removed; From, Date and
   * Message-ID added; the default sender is LOGIN@HOST; a lone dot ends the input. */
  {
    const char input[] =
      "To: Bob <bob@example.test>, \"Group\": dave@example.test, erin@example.test;\n"
      "Cc: carol@example.test\n"
      "Bcc: secret@example.test,\n"
      "  hidden@example.test\n"
      "Subject: cron output\n"
      "\n"
      "line one\n"
      "..\n"
      ".\n"
      "after the dot\n";
    const char *argv[] = { sendmail_path (), "-t", "-F", "Cron Daemon", "extra@example.test",
                           "bob@example.test", NULL };

    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (argv, input, NULL, &err), ==, EX_OK);
    s = relay_get (r, 1);
    g_assert_true (g_str_has_prefix (s->from, login));
    {
      g_autofree char *joined = g_strjoinv (",", s->recipients);

      /* Bob, in To: and an argument, once. */
      g_assert_cmpstr (joined, ==, "extra@example.test,bob@example.test,dave@example.test,"
                                   "erin@example.test,carol@example.test,secret@example.test,"
                                   "hidden@example.test");
    }
    text = submission_text (r, 1);
    g_assert_null (strstr (text, "Bcc"));
    g_assert_null (strstr (text, "hidden"));
    g_assert_null (strstr (text, "after the dot"));
    g_assert_true (g_str_has_prefix (text, "From: Cron Daemon <"));
    g_assert_nonnull (header_value (text, "Date"));
    g_assert_nonnull (header_value (text, "Message-ID"));
    g_assert_true (g_str_has_suffix (text, "\r\nSubject: cron output\r\n\r\nline one\r\n..\r\n"));
  }

  /* Unqualified recipients get the host's name; a message without headers gets them. */
  {
    const char *argv[] = { sendmail_path (), "root", NULL };

    g_clear_pointer (&err, g_free);
    g_clear_pointer (&text, g_free);
    g_assert_cmpint (run (argv, "just a body\n", NULL, &err), ==, EX_OK);
    s = relay_get (r, 2);
    g_assert_true (g_str_has_prefix (s->recipients[0], "root@"));
    text = submission_text (r, 2);
    g_assert_true (g_str_has_suffix (text, "\r\n\r\njust a body\r\n"));
    g_assert_nonnull (header_value (text, "From"));
  }

  /* As Debian's cron calls it, with 8-bit text. */
  {
    const char *argv[] = { sendmail_path (), "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-bm",
                           "root", NULL };
    const char input[] = "Subject: Cron <root@host> df\nContent-Type: text/plain; charset=UTF-8\n"
                         "\nGr\xc3\xbc\xc3\x9f" "e\n";

    g_clear_pointer (&err, g_free);
    g_clear_pointer (&text, g_free);
    g_assert_cmpint (run (argv, input, NULL, &err), ==, EX_OK);
    text = submission_text (r, 3);
    g_assert_true (g_str_has_prefix (text, "From: CronDaemon <"));
    g_assert_true (g_str_has_suffix (text, "\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n"));
  }

  /* Usage errors, refusals and the relay's answers as sysexits. */
  {
    const char *no_rcpt[] = { sendmail_path (), NULL };
    const char *bad_opt[] = { sendmail_path (), "-Q", "bob@example.test", NULL };
    const char *bad_mode[] = { sendmail_path (), "-bp", NULL };
    const char *bad_rcpt[] = { sendmail_path (), "bob@example.test", "bad address@example.test",
                               NULL };
    const char *bad_sender[] = { sendmail_path (), "-f", "al ice@example.test", "bob@example.test",
                                 NULL };
    guint before = relay_calls (r);

    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (no_rcpt, "x\n", NULL, &err), ==, EX_USAGE);
    g_assert_true (g_str_has_prefix (err, "letterbox-sendmail: "));
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (bad_opt, "x\n", NULL, &err), ==, EX_USAGE);
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (bad_mode, "", NULL, &err), ==, EX_USAGE);
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (bad_rcpt, "x\n", NULL, &err), ==, EX_NOUSER);
    g_assert_nonnull (strstr (err, "501 5.1.3"));
    g_assert_nonnull (strstr (err, "nothing was sent"));
    /* One line. */
    g_assert_cmpint (strchr (err, '\n') - err, ==, strlen (err) - 1);
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (bad_sender, "x\n", NULL, &err), ==, EX_DATAERR);
    g_assert_nonnull (strstr (err, "501 5.1.7"));
    g_assert_cmpuint (relay_calls (r), ==, before);

    /* A refused recipient is found before the sink is asked. */
    relay_set_fail (r, g_error_new (LBD_RELAY_SINK_ERROR, LBD_RELAY_SINK_ERROR_TEMPORARY,
                                    "the queue is busy"));
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (bad_rcpt, "x\n", NULL, &err), ==, EX_NOUSER);
    {
      const char *argv[] = { sendmail_path (), "bob@example.test", NULL };

      g_clear_pointer (&err, g_free);
      g_assert_cmpint (run (argv, "x\n", NULL, &err), ==, EX_TEMPFAIL);
      g_assert_nonnull (strstr (err, "451 4.3.0 the queue is busy"));
      relay_set_fail (r, g_error_new (LBD_RELAY_SINK_ERROR, LBD_RELAY_SINK_ERROR_SENDER,
                                      "no account sends as that address"));
      g_clear_pointer (&err, g_free);
      g_assert_cmpint (run (argv, "x\n", NULL, &err), ==, EX_NOPERM);
      g_assert_nonnull (strstr (err, "554 5.7.1"));
      relay_set_fail (r, g_error_new (LBD_RELAY_SINK_ERROR, LBD_RELAY_SINK_ERROR_MESSAGE,
                                      "no"));
      g_clear_pointer (&err, g_free);
      g_assert_cmpint (run (argv, "x\n", NULL, &err), ==, EX_DATAERR);
      relay_set_fail (r, NULL);
    }
  }
  g_assert_cmpuint (relay_count (r), ==, 4);
  relay_stop (r);

  /* No relay and no bus to start one: a temporary failure, said in one line. */
  {
    const char *argv[] = { sendmail_path (), "bob@example.test", NULL };
    g_autofree char *saved = g_strdup (g_getenv ("DBUS_SESSION_BUS_ADDRESS"));

    g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
    g_clear_pointer (&err, g_free);
    g_assert_cmpint (run (argv, "x\n", NULL, &err), ==, EX_TEMPFAIL);
    g_assert_nonnull (strstr (err, "cannot start the backend"));
    if (saved != NULL)
      g_setenv ("DBUS_SESSION_BUS_ADDRESS", saved, TRUE);
  }
}

static void
test_mailx (void)
{
  Relay *r = relay_start (NULL);
  g_autofree char *rc_text = g_strdup_printf ("set sendmail=%s\n", sendmail_path ());
  g_autofree char *rc = write_temp ("mailrc", rc_text, -1);
  g_autofree char *text = NULL;
  const char *argv[] = { "env", NULL, "mail", "-s", "Greetings from mailx",
                         "-c", "carol@example.test", "bob@example.test", NULL };
  g_autofree char *mailrc = g_strdup_printf ("MAILRC=%s", rc);
  Submission *s;

  /* bsd-mailx runs the program in its "sendmail" variable with -i -t. */
  argv[1] = mailrc;
  g_assert_cmpint (run (argv, "Hello from mailx.\n.not the end\n", NULL, NULL), ==, 0);
  g_assert_cmpuint (relay_count (r), ==, 1);
  s = relay_get (r, 0);
  {
    g_autofree char *joined = g_strjoinv (",", s->recipients);

    g_assert_cmpstr (joined, ==, "bob@example.test,carol@example.test");
  }
  text = submission_text (r, 0);
  g_assert_nonnull (strstr (text, "\r\nSubject: Greetings from mailx\r\n"));
  g_assert_true (g_str_has_suffix (text, "\r\n\r\nHello from mailx.\r\n.not the end\r\n"));
  g_assert_false (s->authenticated_tcp);
  relay_stop (r);
}

/* GTestDBus unsets XDG_RUNTIME_DIR, which the relay and letterbox-sendmail need. */
static LbTestBus *
bus_start (const char *service_dir)
{
  g_autofree char *runtime = g_strdup (g_getenv ("XDG_RUNTIME_DIR"));
  LbTestBus *bus = lb_test_bus_start (service_dir);

  g_setenv ("XDG_RUNTIME_DIR", runtime, TRUE);
  return bus;
}

static void
bus_stop (LbTestBus *bus)
{
  g_autofree char *runtime = g_strdup (g_getenv ("XDG_RUNTIME_DIR"));

  lb_test_bus_stop (bus);
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_setenv ("XDG_RUNTIME_DIR", runtime, TRUE);
}

static gboolean
file_gone (gpointer user_data)
{
  return !g_file_test (user_data, G_FILE_TEST_EXISTS);
}

/* D-Bus activation: the socket is missing, letterbox-sendmail asks the bus to start the
 * backend (here a stand-in that runs the relay) and waits for the socket. */
static void
test_sendmail_activation (void)
{
  g_autofree char *services = g_build_filename (home, "services", NULL);
  g_autofree char *outdir = g_build_filename (home, "activated", NULL);
  g_autofree char *service_file = g_build_filename (services, "org.letterbox.Backend.service",
                                                    NULL);
  g_autofree char *child = g_test_build_filename (G_TEST_BUILT, "relay-test-child", NULL);
  g_autofree char *service = g_strdup_printf ("[D-BUS Service]\nName=%s\nExec=%s %s\n",
                                              LB_BACKEND_BUS_NAME, child, outdir);
  g_autofree char *socket_path = lbd_relay_default_socket_path ();
  g_autofree char *envelope = NULL;
  g_autofree char *eml = NULL;
  g_autofree char *env_path = g_build_filename (outdir, "1.env", NULL);
  g_autofree char *eml_path = g_build_filename (outdir, "1.eml", NULL);
  g_autofree char *err = NULL;
  const char *argv[] = { sendmail_path (), "-oi", "-f", "cron@example.test", "bob@example.test",
                         NULL };
  LbTestBus *bus;

  g_assert_true (g_file_test (child, G_FILE_TEST_IS_EXECUTABLE));
  g_assert_cmpint (g_mkdir_with_parents (services, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (outdir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (service_file, service, -1, NULL));
  g_assert_false (g_file_test (socket_path, G_FILE_TEST_EXISTS));

  bus = bus_start (services);
  g_assert_cmpint (run (argv, message_lf, NULL, &err), ==, EX_OK);
  g_assert_cmpstr (err, ==, "");
  g_assert_true (g_file_get_contents (env_path, &envelope, NULL, NULL));
  g_assert_cmpstr (envelope, ==, "cron@example.test\nbob@example.test\n");
  g_assert_true (g_file_get_contents (eml_path, &eml, NULL, NULL));
  {
    g_autofree char *expected = crlf (message_lf);

    g_assert_cmpstr (eml, ==, expected);
  }
  /* The stand-in exits with the bus and removes its socket. */
  bus_stop (bus);
  g_assert_true (lb_test_wait_until (file_gone, socket_path, 10000));
}

/* Bad clients */

static void
test_order_and_unknown (void)
{
  Relay *r = relay_start (NULL);
  Raw *c = raw_unix (r);
  g_autofree char *ehlo = NULL;
  g_autofree char *last = NULL;

  raw_expect (c, "220 relay.test ESMTP Letterbox");
  raw_send (c, "MAIL FROM:<a@example.test>\r\n");
  raw_expect (c, "503 5.5.1 ");
  raw_send (c, "NOOP\r\nVRFY bob\r\nHELP\r\nHELO client.test\r\n");
  raw_expect (c, "250 2.0.0 ");
  raw_expect (c, "252 2.5.0 ");
  raw_expect (c, "214 2.0.0 ");
  raw_expect (c, "250 relay.test");
  raw_send (c, "EHLO client.test\r\n");
  last = raw_reply (c, &ehlo);
  g_assert_cmpstr (last, ==, "250 HELP");
  /* Over the socket: no AUTH offered, and none needed. */
  g_assert_cmpstr (ehlo, ==, "250-relay.test\n250-PIPELINING\n250-SIZE 52428800\n250-8BITMIME\n"
                             "250-SMTPUTF8\n250-ENHANCEDSTATUSCODES\n250 HELP\n");
  raw_send (c, "RCPT TO:<b@example.test>\r\n");
  raw_expect (c, "503 5.5.1 ");
  raw_send (c, "DATA\r\n");
  raw_expect (c, "503 5.5.1 ");
  raw_send (c, "MAIL FROM:<a@example.test>\r\n");
  raw_expect (c, "250 2.1.0 ");
  raw_send (c, "MAIL FROM:<a@example.test>\r\n");
  raw_expect (c, "503 5.5.1 ");
  raw_send (c, "DATA\r\n");
  raw_expect (c, "503 5.5.1 ");
  raw_send (c, "AUTH PLAIN AGEAYg==\r\n");
  raw_expect (c, "503 5.5.1 ");
  raw_send (c, "STARTTLS\r\n");
  raw_expect (c, "502 5.5.1 ");
  raw_send (c, "BDAT 3 LAST\r\n");
  raw_expect (c, "502 5.5.1 ");
  raw_send (c, "RSET\r\n");
  raw_expect (c, "250 2.0.0 ");
  raw_send (c, "QUIT\r\n");
  raw_expect (c, "221 2.0.0 ");
  raw_expect_closed (c);
  raw_free (c);

  /* Ten errors in a row end the session: 421 4.7.0 and close. */
  c = raw_unix (r);
  raw_expect (c, "220 ");
  for (guint i = 0; i < 9; i++)
    {
      raw_send (c, "XYZZY\r\n");
      raw_expect (c, "500 5.5.1 ");
    }
  raw_send (c, "NOOP\r\n");
  raw_expect (c, "250 ");
  for (guint i = 0; i < 9; i++)
    {
      raw_send (c, "FOO bar\r\n");
      raw_expect (c, "500 5.5.1 ");
    }
  raw_send (c, "XYZZY\r\nNOOP\r\n");
  raw_expect (c, "500 5.5.1 ");
  raw_expect (c, "421 4.7.0 ");
  raw_expect_closed (c);
  raw_free (c);
  g_assert_cmpuint (relay_calls (r), ==, 0);
  relay_stop (r);
}

static void
test_pipelining (void)
{
  Relay *r = relay_start (NULL);
  Raw *c = raw_tcp (r);
  g_autofree char *ehlo = NULL;
  g_autofree char *last = NULL;

  /* EHLO over TCP offers AUTH; everything else in one write. */
  raw_expect (c, "220 relay.test ESMTP Letterbox");
  raw_send (c, "EHLO client.test\r\n");
  last = raw_reply (c, &ehlo);
  g_assert_nonnull (strstr (ehlo, "250-AUTH PLAIN LOGIN\n"));
  raw_send (c, "MAIL FROM:<a@example.test>\r\n");
  raw_expect (c, "530 5.7.0 Authentication required");
  {
    g_autofree char *user = g_base64_encode ((const guint8 *) g_get_user_name (),
                                             strlen (g_get_user_name ()));
    g_autofree char *bad = g_base64_encode ((const guint8 *) "nope", 4);
    g_autofree char *good = g_base64_encode ((const guint8 *) r->secret, strlen (r->secret));
    g_autofree char *wrong = g_strdup_printf ("AUTH LOGIN\r\n%s\r\n%s\r\n", user, bad);
    g_autofree char *right = g_strdup_printf ("AUTH LOGIN %s\r\n%s\r\n", user, good);

    raw_send (c, wrong);
    raw_expect (c, "334 VXNlcm5hbWU6");
    raw_expect (c, "334 UGFzc3dvcmQ6");
    raw_expect (c, "535 5.7.8 ");
    raw_send (c, "AUTH PLAIN\r\n*\r\n");
    raw_expect (c, "334 ");
    raw_expect (c, "501 5.0.0 ");
    raw_send (c, "AUTH PLAIN\r\nnot base64!\r\n");
    raw_expect (c, "334 ");
    raw_expect (c, "501 5.5.2 ");
    raw_send (c, "AUTH CRAM-MD5\r\n");
    raw_expect (c, "504 5.5.4 ");
    raw_send (c, right);
    raw_expect (c, "334 UGFzc3dvcmQ6");
    raw_expect (c, "235 2.7.0 ");
    raw_send (c, "AUTH PLAIN =\r\n");
    raw_expect (c, "503 5.5.1 ");
  }

  raw_send (c, "MAIL FROM:<a@example.test> BODY=8BITMIME SIZE=100\r\n"
               "RCPT TO:<b@example.test>\r\n"
               "RCPT TO:<c@example.test> NOTIFY=NEVER\r\n"
               "DATA\r\n"
               "Subject: pipelined\r\n\r\n\xc3\xa9t\xc3\xa9\r\n.\r\n"
               "MAIL FROM:<> SMTPUTF8\r\n"
               "RCPT TO:<j\xc3\xb6rg@example.test>\r\n"
               "DATA\r\n"
               "x\r\n.\r\n"
               "QUIT\r\n");
  raw_expect (c, "250 2.1.0 ");
  raw_expect (c, "250 2.1.5 ");
  raw_expect (c, "250 2.1.5 ");
  raw_expect (c, "354 ");
  raw_expect (c, "250 2.0.0 Ok: queued as TEST1");
  raw_expect (c, "250 2.1.0 ");
  raw_expect (c, "250 2.1.5 ");
  raw_expect (c, "354 ");
  raw_expect (c, "250 2.0.0 Ok: queued as TEST2");
  raw_expect (c, "221 2.0.0 ");
  raw_expect_closed (c);
  raw_free (c);
  assert_submission (r, 0, "a@example.test", "b@example.test,c@example.test",
                     "Subject: pipelined\r\n\r\n\xc3\xa9t\xc3\xa9\r\n", TRUE);
  assert_submission (r, 1, "", "j\xc3\xb6rg@example.test", "x\r\n", TRUE);

  /* A UTF-8 address without SMTPUTF8. */
  c = raw_tcp (r);
  raw_login (r, c);
  raw_send (c, "MAIL FROM:<j\xc3\xb6rg@example.test>\r\n");
  raw_expect (c, "553 5.6.7 ");
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<j\xc3\xb6rg@example.test>\r\n");
  raw_expect (c, "250 2.1.0 ");
  raw_expect (c, "553 5.6.7 ");
  raw_free (c);
  relay_stop (r);
}

/* The 250 comes only once the sink answered; and its errors become 451/452/554. */
static void
test_sink_answers (void)
{
  Relay *r = relay_start (NULL);
  Raw *c = raw_unix (r);

  g_mutex_lock (&r->lock);
  r->hold = TRUE;
  g_mutex_unlock (&r->lock);
  raw_greet (c, "EHLO client.test\r\n");
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  raw_send (c, "held\r\n.\r\nNOOP\r\n");
  g_mutex_lock (&r->lock);
  while (r->held == NULL)
    g_cond_wait (&r->cond, &r->lock);
  g_mutex_unlock (&r->lock);
  /* Nothing may come while the message is with the sink — not even NOOP's reply. */
  g_assert_false (g_socket_condition_timed_wait (c->socket, G_IO_IN, 300 * 1000, NULL, NULL));
  relay_release (r);
  raw_expect (c, "250 2.0.0 Ok: queued as TEST1");
  raw_expect (c, "250 2.0.0 Ok");

  {
    static const struct
    {
      GQuark domain;
      int code;
      const char *reply;
    } cases[] = {
      { 0, LBD_RELAY_SINK_ERROR_TEMPORARY, "451 4.3.0 sink says no" },
      { 0, LBD_RELAY_SINK_ERROR_NO_SPACE, "452 4.3.1 sink says no" },
      { 0, LBD_RELAY_SINK_ERROR_SENDER, "554 5.7.1 sink says no" },
      { 0, LBD_RELAY_SINK_ERROR_MESSAGE, "554 5.6.0 sink says no" },
      { 0, LBD_RELAY_SINK_ERROR_PERMANENT, "554 5.0.0 sink says no" },
      { 1, G_IO_ERROR_FAILED, "451 4.3.0 sink says no" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        relay_set_fail (r, g_error_new_literal (cases[i].domain == 0 ? LBD_RELAY_SINK_ERROR
                                                                     : G_IO_ERROR,
                                                cases[i].code, "sink says\r\nno"));
        raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
                     "x\r\n.\r\n");
        raw_expect (c, "250 ");
        raw_expect (c, "250 ");
        raw_expect (c, "354 ");
        raw_expect (c, cases[i].reply);
      }
    relay_set_fail (r, NULL);
  }
  /* The session goes on after a refused message. */
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nok\r\n.\r\n");
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  raw_expect (c, "250 2.0.0 Ok: queued as TEST2");

  /* A sink that answers before submit_async returns, with more commands pipelined
   * behind the message: each is answered once, in order. */
  g_mutex_lock (&r->lock);
  r->immediate = TRUE;
  g_mutex_unlock (&r->lock);
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n1\r\n.\r\n"
               "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n2\r\n.\r\n"
               "NOOP\r\n");
  for (guint i = 3; i <= 4; i++)
    {
      g_autofree char *queued = g_strdup_printf ("250 2.0.0 Ok: queued as TEST%u", i);

      raw_expect (c, "250 2.1.0 ");
      raw_expect (c, "250 2.1.5 ");
      raw_expect (c, "354 ");
      raw_expect (c, queued);
    }
  raw_expect (c, "250 2.0.0 Ok");
  assert_submission (r, 3, "a@example.test", "b@example.test", "2\r\n", FALSE);
  raw_free (c);
  relay_stop (r);
}

static void
test_recipient_limit (void)
{
  Relay *r = relay_start (NULL);
  Raw *c = raw_unix (r);
  g_autoptr(GString) batch = g_string_new ("MAIL FROM:<a@example.test>\r\n");

  raw_greet (c, "EHLO client.test\r\n");
  for (guint i = 0; i < LBD_RELAY_DEFAULT_MAX_RECIPIENTS + 2; i++)
    g_string_append_printf (batch, "RCPT TO:<r%u@example.test>\r\n", i);
  g_string_append (batch, "DATA\r\nx\r\n.\r\n");
  raw_send (c, batch->str);
  raw_expect (c, "250 2.1.0 ");
  for (guint i = 0; i < LBD_RELAY_DEFAULT_MAX_RECIPIENTS; i++)
    raw_expect (c, "250 2.1.5 ");
  /* Not counted as errors: a client may send the rest later. */
  raw_expect (c, "452 4.5.3 ");
  raw_expect (c, "452 4.5.3 ");
  raw_expect (c, "354 ");
  raw_expect (c, "250 2.0.0 ");
  g_assert_cmpuint (g_strv_length (relay_get (r, 0)->recipients), ==,
                    LBD_RELAY_DEFAULT_MAX_RECIPIENTS);
  raw_free (c);
  relay_stop (r);
}

static void
test_size (void)
{
  RelayConfig config = relay_config_default ();
  Relay *r;
  Raw *c;
  g_autofree char *chunk = g_strnfill (65536 - 2, 'x');
  g_autofree char *line = NULL;
  gsize sent = 0;
  const gsize total = 64 * 1024 * 1024;

  config.size_limit = 1024 * 1024;
  r = relay_start (&config);

  /* Announced: refused at MAIL, the session goes on. */
  c = raw_unix (r);
  raw_greet (c, "EHLO client.test\r\n");
  raw_send (c, "MAIL FROM:<a@example.test> SIZE=1048577\r\n");
  raw_expect (c, "552 5.3.4 ");
  raw_send (c, "MAIL FROM:<a@example.test> SIZE=1048576\r\nRCPT TO:<b@example.test>\r\n");
  raw_expect (c, "250 2.1.0 ");
  raw_expect (c, "250 2.1.5 ");
  raw_free (c);

  /* Not announced: 552 as soon as the message passes the limit, then the connection
   * closes while the client is still writing — the rest is never read. */
  c = raw_unix (r);
  raw_greet (c, "EHLO client.test\r\n");
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  g_socket_set_timeout (c->socket, 5);
  while (sent < total)
    {
      if (!raw_send_len (c, chunk, 65536 - 2) || !raw_send_len (c, "\r\n", 2))
        break;
      sent += 65536;
    }
  g_test_message ("the server stopped the client after %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
                  " bytes", sent, total);
  g_assert_cmpuint (sent, <, total / 4);
  line = raw_line (c);
  /* The reply may be lost to the reset if the kernel drops unread input; when it
   * arrives it must be the 552. */
  g_test_message ("the client read: %s", line != NULL ? line : "(nothing: reset)");
  if (line != NULL)
    g_assert_true (g_str_has_prefix (line, "552 5.3.4 "));
  raw_free (c);
  g_assert_true (lb_test_wait_until (sessions_gone, r, 10000));
  g_assert_cmpuint (relay_calls (r), ==, 0);
  relay_stop (r);
}

static void
test_bare_line_ends (void)
{
  Relay *r = relay_start (NULL);
  Raw *c = raw_unix (r);

  raw_expect (c, "220 ");
  raw_send (c, "EHLO client.test\n");
  raw_expect (c, "500 5.5.2 ");
  raw_send (c, "EHLO cli\rent.test\r\n");
  raw_expect (c, "500 5.5.2 ");
  raw_send (c, "EHLO client.test\r\n");
  raw_expect (c, "250 ");
  /* CR, LF, NUL smuggled into envelope addresses. */
  raw_send (c, "MAIL FROM:<a\r@example.test>\r\n");
  raw_expect (c, "500 5.5.2 ");
  raw_send_literal (c, "MAIL FROM:<a\0@example.test>\r\n");
  raw_expect (c, "500 5.5.2 ");
  raw_send (c, "MAIL FROM:<a\x01@example.test>\r\n");
  raw_expect (c, "501 5.1.7 ");
  raw_send (c, "MAIL FROM:<a@example.test>\r\n");
  raw_expect (c, "250 ");
  /* "RCPT TO:<x" ends at the bare LF (refused); "@example.test>" is then a command. */
  raw_send (c, "RCPT TO:<x\n@example.test>\r\n");
  raw_expect (c, "500 5.5.2 ");
  raw_expect (c, "500 5.5.1 ");
  raw_send (c, "RCPT TO:<b@example.test>\r\nDATA\r\n");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  /* SMTP smuggling: "\n.\r\n" does not end the data, so the second transaction is part
   * of one refused message, and nothing reaches the sink. */
  raw_send (c, "Subject: a\r\n\r\nfirst\n.\r\nMAIL FROM:<evil@example.test>\r\n"
               "RCPT TO:<victim@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n");
  raw_expect (c, "550 5.6.0 ");
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
               "bare\rCR\r\n.\r\n");
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  raw_expect (c, "550 5.6.0 ");
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  raw_send_literal (c, "nul\0byte\r\n.\r\n");
  raw_expect (c, "550 5.6.0 Message refused: it contains a NUL byte");
  raw_send (c, "NOOP\r\n");
  raw_expect (c, "250 ");
  g_assert_cmpuint (relay_calls (r), ==, 0);
  raw_free (c);
  relay_stop (r);
}

static void
test_long_lines (void)
{
  Relay *r = relay_start (NULL);
  Raw *c = raw_unix (r);
  g_autofree char *x998 = g_strnfill (998, 'x');
  g_autofree char *long_command = g_strdup_printf ("NOOP %s\r\n", x998);
  g_autofree char *huge = g_strnfill (200000, 'y');
  g_autofree char *long_data = g_strdup_printf ("MAIL FROM:<a@example.test>\r\n"
                                                "RCPT TO:<b@example.test>\r\nDATA\r\n"
                                                "%sx\r\n.\r\n", x998);
  g_autofree char *ok_data = g_strdup_printf ("MAIL FROM:<a@example.test>\r\n"
                                              "RCPT TO:<b@example.test>\r\nDATA\r\n"
                                              "%s\r\n.\r\n", x998);

  raw_greet (c, "EHLO client.test\r\n");
  raw_send (c, long_command);
  raw_expect (c, "500 5.5.2 ");
  /* 200 000 octets without a line end: skipped, not kept, then one error. */
  raw_send (c, huge);
  raw_send (c, "\r\nNOOP\r\n");
  raw_expect (c, "500 5.5.2 ");
  raw_expect (c, "250 ");
  raw_send (c, long_data);
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  raw_expect (c, "550 5.6.0 Message refused: a line is longer than 1000 octets");
  raw_send (c, ok_data);
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  raw_expect (c, "250 2.0.0 Ok: queued as TEST1");
  raw_free (c);
  g_assert_cmpuint (relay_calls (r), ==, 1);
  relay_stop (r);
}

static void
test_disconnect_mid_data (void)
{
  Relay *r = relay_start (NULL);
  Raw *c = raw_unix (r);

  raw_greet (c, "EHLO client.test\r\n");
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  raw_send (c, "Subject: cut\r\n\r\nhalf a message\r\n.");
  raw_free (c);
  g_assert_true (lb_test_wait_until (sessions_gone, r, 10000));
  g_assert_cmpuint (relay_calls (r), ==, 0);

  /* Also over TCP, after logging in. */
  c = raw_tcp (r);
  raw_login (r, c);
  raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nx\r\n");
  raw_expect (c, "250 ");
  raw_expect (c, "250 ");
  raw_expect (c, "354 ");
  raw_free (c);
  g_assert_true (lb_test_wait_until (sessions_gone, r, 10000));
  g_assert_cmpuint (relay_calls (r), ==, 0);
  relay_stop (r);
}

/* One byte a second: each read is quick, but the command (or the message) never
 * completes; the deadline cuts it off. */
static void
slow_client (Relay      *r,
             const char *prefix,
             const char *trickle,
             guint       max_seconds)
{
  Raw *c = raw_unix (r);
  gint64 start;
  guint sent = 0;
  g_autofree char *line = NULL;

  raw_greet (c, "EHLO client.test\r\n");
  if (prefix != NULL)
    {
      raw_send (c, prefix);
      raw_expect (c, "250 ");
      raw_expect (c, "250 ");
      raw_expect (c, "354 ");
    }
  start = g_get_monotonic_time ();
  while (TRUE)
    {
      /* Wait a second for the server; send the next byte if it stays silent. */
      if (g_socket_condition_timed_wait (c->socket, G_IO_IN, G_USEC_PER_SEC, NULL, NULL))
        break;
      g_assert_true (raw_send_len (c, trickle + sent % strlen (trickle), 1));
      sent++;
      g_assert_cmpint (g_get_monotonic_time () - start, <, max_seconds * G_USEC_PER_SEC);
    }
  line = raw_line (c);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "421 4.4.2 "));
  raw_expect_closed (c);
  g_test_message ("cut off after %u bytes, %.1f s", sent,
                  (g_get_monotonic_time () - start) / 1e6);
  g_assert_cmpuint (sent, >=, 1);
  raw_free (c);
}

static void
test_slow_client (void)
{
  RelayConfig config = relay_config_default ();
  Relay *r;

  /* The idle timeout alone would never fire: a byte comes every second. */
  config.idle_timeout = 5;
  config.command_timeout = 2;
  config.data_timeout = 3;
  r = relay_start (&config);
  slow_client (r, NULL, "NOOP\r\n", 6);
  slow_client (r, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n",
               "Subject: slow\r\n", 7);

  /* Silence: the idle timeout. */
  {
    Raw *c = raw_unix (r);
    gint64 start = g_get_monotonic_time ();

    raw_expect (c, "220 ");
    raw_expect (c, "421 4.4.2 ");
    raw_expect_closed (c);
    g_assert_cmpint (g_get_monotonic_time () - start, <, 8 * G_USEC_PER_SEC);
    raw_free (c);
  }
  g_assert_cmpuint (relay_calls (r), ==, 0);
  relay_stop (r);
}

static guint
count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

static void
test_idle_flood (void)
{
  RelayConfig config = relay_config_default ();
  Relay *r;
  GPtrArray *flood = g_ptr_array_new ();
  guint greeted = 0, refused = 0, before;
  gint64 start;

  /* Long enough for all 500 to connect before the first ones time out (loopback TCP in
   * some sandboxes stalls a connect for a second now and then). */
  config.idle_timeout = 8;
  config.command_timeout = 8;
  r = relay_start (&config);
  before = count_fds ();

  start = g_get_monotonic_time ();
  for (guint i = 0; i < 500; i++)
    g_ptr_array_add (flood, raw_tcp (r));
  g_test_message ("500 connections made in %.2f s", (g_get_monotonic_time () - start) / 1e6);
  for (guint i = 0; i < flood->len; i++)
    {
      Raw *c = g_ptr_array_index (flood, i);
      g_autofree char *line = raw_line (c);

      g_assert_nonnull (line);
      if (g_str_has_prefix (line, "220 "))
        greeted++;
      else if (g_str_has_prefix (line, "421 4.3.2 Too many connections"))
        {
          refused++;
          raw_expect_closed (c);
        }
      else
        g_error ("unexpected: %s", line);
    }
  g_test_message ("500 idle connections: %u served, %u turned away, in %.2f s", greeted, refused,
                  (g_get_monotonic_time () - start) / 1e6);
  g_assert_cmpuint (greeted, ==, LBD_RELAY_DEFAULT_MAX_CONNECTIONS);
  g_assert_cmpuint (refused, ==, 500 - LBD_RELAY_DEFAULT_MAX_CONNECTIONS);

  /* Meanwhile the Unix socket, a listener of its own, serves a good client. */
  {
    Raw *c = raw_unix (r);

    raw_greet (c, "EHLO client.test\r\n");
    raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nx\r\n.\r\n");
    raw_expect (c, "250 ");
    raw_expect (c, "250 ");
    raw_expect (c, "354 ");
    raw_expect (c, "250 2.0.0 Ok: queued as TEST1");
    raw_free (c);
  }

  /* The idle ones are cut off by the timeout, then TCP serves again. */
  for (guint i = 0; i < flood->len; i++)
    {
      Raw *c = g_ptr_array_index (flood, i);
      g_autofree char *line = raw_line (c);

      if (line != NULL)
        g_assert_true (g_str_has_prefix (line, "421 4.4.2 "));
      raw_free (c);
    }
  g_ptr_array_unref (flood);
  g_assert_true (lb_test_wait_until (sessions_gone, r, 10000));
  {
    Raw *c = raw_tcp (r);

    raw_login (r, c);
    raw_send (c, "MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nx\r\n.\r\n");
    raw_expect (c, "250 ");
    raw_expect (c, "250 ");
    raw_expect (c, "354 ");
    raw_expect (c, "250 2.0.0 Ok: queued as TEST2");
    raw_free (c);
  }
  g_assert_true (lb_test_wait_until (sessions_gone, r, 10000));
  /* No descriptor left behind by the server. */
  g_assert_cmpuint (count_fds (), <=, before);
  relay_stop (r);
}

/* The socket: a private directory, a stale socket replaced, a live one left alone,
 * removed at stop; and a client of another uid refused (as root, with setpriv). */
static void
test_socket (void)
{
  RelayConfig config = relay_config_default ();
  g_autofree char *path = lbd_relay_default_socket_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr(GError) error = NULL;
  struct stat st;
  Relay *r, *second;

  /* A stale socket (nobody listens) from a relay that died. */
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_cmpint (chmod (dir, 0755), ==, 0);
  {
    g_autoptr(GSocket) stale = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_DEFAULT, NULL);
    g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);

    g_assert_true (g_socket_bind (stale, address, FALSE, NULL));
    g_socket_close (stale, NULL);
  }
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  r = relay_start (&config);
  g_assert_cmpstr (r->socket_path, ==, path);
  g_assert_cmpint (stat (dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0700);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);

  /* A second relay does not take the socket of a live one. */
  second = relay_start_full (&config, &error);
  g_assert_null (second);
  g_assert_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_IN_USE);
  g_clear_error (&error);
  {
    Raw *c = raw_unix (r);

    raw_expect (c, "220 ");
    raw_free (c);
  }

  /* Another user is refused by its credentials, even with the file modes opened. */
  if (getuid () == 0 && g_file_test ("/usr/bin/setpriv", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_autofree char *runtime = g_path_get_dirname (dir);
      g_autofree char *out = NULL;
      const char *script = "import socket, sys\n"
                           "s = socket.socket(socket.AF_UNIX)\n"
                           "s.settimeout(10)\n"
                           "s.connect(sys.argv[1])\n"
                           "print(s.recv(200).decode().strip())\n";
      const char *argv[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "/usr/bin/python3", "-c", script, path, NULL };

      g_assert_cmpint (chmod (home, 0711), ==, 0);
      g_assert_cmpint (chmod (runtime, 0711), ==, 0);
      g_assert_cmpint (chmod (dir, 0711), ==, 0);
      g_assert_cmpint (chmod (path, 0666), ==, 0);
      g_assert_cmpint (run (argv, NULL, &out, NULL), ==, 0);
      g_assert_cmpstr (out, ==, "421 4.7.0 This relay serves only its owner\n");
      g_assert_cmpint (chmod (path, 0600), ==, 0);
      g_assert_cmpint (chmod (dir, 0700), ==, 0);
      g_assert_cmpint (chmod (runtime, 0700), ==, 0);
      g_assert_cmpint (chmod (home, 0700), ==, 0);
    }
  else
    g_test_message ("not root: the uid check is covered by test-relay-parser only");

  relay_stop (r);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  /* A path that is not a socket is never removed. */
  g_assert_true (g_file_set_contents (path, "not a socket", -1, NULL));
  g_assert_null (relay_start_full (&config, &error));
  g_assert_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_IN_USE);
  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
  g_assert_cmpint (g_unlink (path), ==, 0);
}

/* The secret also goes into the keyring, where a script or the user can find it. */
static void
test_secret_keyring (void)
{
  LbTestBus *bus = bus_start (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (home, "keyring-secret", NULL);
  g_autofree char *secret = NULL;
  g_autofree char *found = NULL;
  LbTestWait wait = { 0 };

  if (!lb_test_bus_start_keyring (bus, &error))
    {
      bus_stop (bus);
      g_test_skip (error->message);
      return;
    }
  secret = lbd_relay_secret_load_or_create (path, NULL, &error);
  g_assert_no_error (error);
  lbd_relay_secret_publish_async (secret, NULL, lb_test_wait_cb, &wait);
  g_assert_true (lbd_relay_secret_publish_finish (lb_test_wait_result (&wait), &error));
  g_assert_no_error (error);
  g_clear_object (&wait.result);
  lb_secret_lookup_async (g_get_user_name (), LBD_RELAY_SECRET_PROTOCOL, NULL, lb_test_wait_cb,
                          &wait);
  found = lb_secret_lookup_finish (lb_test_wait_result (&wait), &error);
  g_assert_no_error (error);
  g_clear_object (&wait.result);
  g_assert_cmpstr (found, ==, secret);
  bus_stop (bus);
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);
  home = lb_test_make_home ();
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");

  g_test_add_func ("/relay/tcp/swaks", test_swaks);
  g_test_add_func ("/relay/tcp/msmtp", test_msmtp);
  g_test_add_func ("/relay/tcp/python", test_python);
  g_test_add_func ("/relay/unix/sendmail", test_sendmail);
  g_test_add_func ("/relay/unix/mailx", test_mailx);
  g_test_add_func ("/relay/unix/sendmail-activation", test_sendmail_activation);
  g_test_add_func ("/relay/order-and-unknown", test_order_and_unknown);
  g_test_add_func ("/relay/pipelining-and-auth", test_pipelining);
  g_test_add_func ("/relay/sink-answers", test_sink_answers);
  g_test_add_func ("/relay/recipient-limit", test_recipient_limit);
  g_test_add_func ("/relay/bad/size", test_size);
  g_test_add_func ("/relay/bad/bare-line-ends", test_bare_line_ends);
  g_test_add_func ("/relay/bad/long-lines", test_long_lines);
  g_test_add_func ("/relay/bad/disconnect-mid-data", test_disconnect_mid_data);
  g_test_add_func ("/relay/bad/slow-client", test_slow_client);
  g_test_add_func ("/relay/bad/idle-flood", test_idle_flood);
  g_test_add_func ("/relay/socket", test_socket);
  /* Last: libsecret keeps its bus connection for the rest of the process. */
  g_test_add_func ("/relay/keyring/secret", test_secret_keyring);

  status = g_test_run ();
  lb_test_remove_tree (home);
  return status;
}
