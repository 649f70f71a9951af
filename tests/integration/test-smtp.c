/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <string.h>
#include <sys/resource.h>

#include "lb-connection.h"
#include "lb-imap-session.h"
#include "lb-smtp-session.h"
#include "lb-test-util.h"

/*
 * The SMTP engine against the real Postfix fixture (submission with STARTTLS, submissions
 * with implicit TLS, and a port with no TLS at all), delivering through Dovecot's LMTP:
 * every message sent is read back over IMAP and compared byte for byte. Pipelined and
 * one-at-a-time, DATA and BDAT, an 8-bit body, an internationalised address, a 20 MB
 * message in bounded memory, refused and accepted recipients together, DSN, SIZE, wrong
 * passwords and a server that offers no STARTTLS.
 */

static LbTestServers *servers;

static LbSmtpSession *
smtp_connect (const char    *host,
              guint16        port,
              LbNetSecurity  security,
              GError       **error)
{
  g_autoptr(LbConnection) conn = lb_connection_new (host, port, security);
  g_autoptr(LbSmtpSession) session = NULL;
  g_autoptr(GError) local_error = NULL;
  LbTestWait w = { 0 };
  gboolean ok;

  lb_connection_set_ca_file (conn, servers->ca_file, &local_error);
  g_assert_no_error (local_error);
  lb_connection_set_timeouts (conn, 20, 60);
  session = lb_smtp_session_new (conn);
  lb_smtp_session_connect_async (session, NULL, lb_test_wait_cb, &w);
  ok = lb_smtp_session_connect_finish (session, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok ? g_steal_pointer (&session) : NULL;
}

static gboolean
smtp_login (LbSmtpSession *session,
            const char    *user,
            const char    *password,
            GError       **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_smtp_session_login_async (session, user, password, FALSE, NULL, lb_test_wait_cb, &w);
  ok = lb_smtp_session_login_finish (session, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

/* Submission with STARTTLS, logged in as alice. */
static LbSmtpSession *
alice_session (void)
{
  g_autoptr(GError) error = NULL;
  LbSmtpSession *session = smtp_connect (servers->host, servers->submission_port,
                                         LB_NET_SECURITY_STARTTLS, &error);

  g_assert_no_error (error);
  smtp_login (session, "alice@example.test", "alice-password", &error);
  g_assert_no_error (error);
  return session;
}

static gboolean
smtp_send_stream (LbSmtpSession       *session,
                  LbSmtpEnvelope      *envelope,
                  GInputStream        *stream,
                  gint64               size,
                  LbSmtpMessageFlags   flags,
                  LbSmtpSendResult   **result,
                  GError             **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_smtp_session_send_async (session, envelope, stream, size, flags, NULL, lb_test_wait_cb, &w);
  ok = lb_smtp_session_send_finish (session, lb_test_wait_result (&w), result, error);
  g_object_unref (w.result);
  return ok;
}

static gboolean
smtp_send (LbSmtpSession       *session,
           LbSmtpEnvelope      *envelope,
           GBytes              *message,
           LbSmtpMessageFlags   flags,
           LbSmtpSendResult   **result,
           GError             **error)
{
  g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (message);

  return smtp_send_stream (session, envelope, stream, (gint64) g_bytes_get_size (message), flags,
                           result, error);
}

static void
smtp_quit (LbSmtpSession *session)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_smtp_session_quit_async (session, NULL, lb_test_wait_cb, &w);
  lb_smtp_session_quit_finish (session, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
}

static char *
new_message_id (void)
{
  static guint counter;

  return g_strdup_printf ("lb-smtp-test-%u-%u@example.test", (guint) getpid (), ++counter);
}

/* A message with CRLF line ends; @body's lines may end in LF (sent as they are, so that
 * the engine's normalisation is exercised). */
static GBytes *
make_message (const char *from,
              const char *to,
              const char *subject,
              const char *message_id,
              const char *body)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s,
                          "From: %s\r\nTo: %s\r\nSubject: %s\r\n"
                          "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s>\r\n"
                          "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: 8bit\r\n\r\n%s",
                          from, to, subject, message_id, body);
  return g_string_free_to_bytes (s);
}

/* What the message must look like after SMTP: every line end CRLF, and a final one. */
static GBytes *
canonical (GBytes *message)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  gsize len;
  const guint8 *data = g_bytes_get_data (message, &len);
  guint state = 0;

  lb_smtp_data_encode (&state, data, len, FALSE, out);
  lb_smtp_data_encode_finish (&state, FALSE, out);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

typedef struct
{
  const char *user;
  const char *message_id;
  gint64 next_check;
  char *uid;
  const char *body; /* search by body text instead of Message-ID */
} Delivery;

/* Checked every 10 ms by lb_test_wait_until; asks Dovecot at most every 100 ms. */
static gboolean
delivered (gpointer user_data)
{
  Delivery *d = user_data;
  g_autofree char *out = NULL;
  g_autofree char *query = NULL;

  if (g_get_monotonic_time () < d->next_check)
    return FALSE;
  d->next_check = g_get_monotonic_time () + 100 * 1000;
  query = g_strdup_printf ("<%s>", d->message_id);
  if (!lb_test_servers_doveadm (servers, NULL, &out, NULL, "search", "-u", d->user, "mailbox",
                                "INBOX", d->body != NULL ? "body" : "header",
                                d->body != NULL ? d->body : "Message-ID",
                                d->body != NULL ? NULL : query, NULL))
    return FALSE;
  g_strstrip (out);
  if (out[0] == '\0')
    return FALSE;
  d->uid = g_strdup (strrchr (out, ' ') != NULL ? strrchr (out, ' ') + 1 : out);
  return TRUE;
}

/* Waits until Postfix has delivered the message into @user's INBOX; returns its UID. */
static char *
wait_delivered (const char *user,
                const char *message_id)
{
  Delivery d = { user, message_id, 0, NULL, NULL };

  if (!lb_test_wait_until (delivered, &d, 60000))
    {
      g_autofree char *log = lb_test_servers_dup_log (servers, "postfix");

      g_test_message ("Postfix log:\n%s", log);
      g_error ("<%s> was not delivered to %s within 60 s", message_id, user);
    }
  return d.uid;
}

static LbImapSession *
imap_session (const char *user)
{
  g_autoptr(LbConnection) conn = lb_connection_new (servers->host, servers->imaps_port,
                                                    LB_NET_SECURITY_TLS);
  g_autofree char *password = g_strdup_printf ("%.*s-password", (int) strcspn (user, "@"), user);
  g_autoptr(GError) error = NULL;
  LbImapSession *session;
  LbTestWait w = { 0 };
  LbTestWait w2 = { 0 };

  lb_connection_set_ca_file (conn, servers->ca_file, &error);
  g_assert_no_error (error);
  session = lb_imap_session_new (conn);
  lb_imap_session_connect_async (session, NULL, lb_test_wait_cb, &w);
  lb_imap_session_connect_finish (session, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  lb_imap_session_login_async (session, user, password, FALSE, NULL, lb_test_wait_cb, &w2);
  lb_imap_session_login_finish (session, lb_test_wait_result (&w2), &error);
  g_object_unref (w2.result);
  g_assert_no_error (error);
  return session;
}

static LbImapResult *
imap_run (LbImapSession *session,
          const char    *command)
{
  g_autoptr(GError) error = NULL;
  LbImapResult *result;
  LbTestWait w = { 0 };

  lb_imap_session_command_async (session, command, NULL, NULL, lb_test_wait_cb, &w);
  result = lb_imap_session_command_finish (session, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpint (result->tagged->status, ==, LB_IMAP_STATUS_OK);
  return result;
}

/* The message as stored, read over IMAP: BODY.PEEK[@section] of @uid in INBOX. */
static GBytes *
imap_fetch (const char *user,
            const char *uid,
            const char *section)
{
  g_autoptr(LbImapSession) session = imap_session (user);
  g_autoptr(LbImapResult) selected = imap_run (session, "EXAMINE INBOX");
  g_autofree char *command = g_strdup_printf ("UID FETCH %s (BODY.PEEK[%s])", uid, section);
  g_autoptr(LbImapResult) result = imap_run (session, command);

  for (guint i = 0; i < result->untagged->len; i++)
    {
      LbImapResponse *r = g_ptr_array_index (result->untagged, i);

      if (r->data == LB_IMAP_DATA_FETCH && r->fetch->sections != NULL &&
          r->fetch->sections->len > 0)
        {
          LbImapSection *s = g_ptr_array_index (r->fetch->sections, 0);

          g_assert_cmpint (s->value->kind, ==, LB_IMAP_VALUE_STRING);
          return g_bytes_new (s->value->str, s->value->len);
        }
    }
  g_error ("UID %s of %s has no %s", uid, user, section);
  return NULL;
}

typedef struct
{
  GChecksum *sum;
  guint64 bytes;
} SumSink;

static gpointer
sum_begin (const LbImapLiteralInfo *info,
           gpointer                 user_data,
           GError                 **error)
{
  return user_data;
}

static gboolean
sum_write (gpointer      handle,
           const guint8 *data,
           gsize         len,
           gpointer      user_data,
           GError      **error)
{
  SumSink *sink = user_data;

  g_checksum_update (sink->sum, data, (gssize) len);
  sink->bytes += len;
  return TRUE;
}

static gboolean
sum_end (gpointer   handle,
         gpointer   user_data,
         GError   **error)
{
  return TRUE;
}

static void
sum_abort (gpointer handle,
           gpointer user_data)
{
}

static const LbImapLiteralSink sum_sink_funcs = { sum_begin, sum_write, sum_end, sum_abort };

/* The SHA-256 of a large section, streamed (the stored message is not held in memory). */
static char *
imap_fetch_checksum (const char *user,
                     const char *uid,
                     const char *section)
{
  g_autoptr(LbImapSession) session = imap_session (user);
  g_autoptr(LbImapResult) selected = imap_run (session, "EXAMINE INBOX");
  g_autofree char *command = g_strdup_printf ("UID FETCH %s (BODY.PEEK[%s])", uid, section);
  SumSink sink = { g_checksum_new (G_CHECKSUM_SHA256), 0 };
  g_autoptr(LbImapResult) result = NULL;
  char *hex;

  lb_imap_session_set_literal_sink (session, &sum_sink_funcs, &sink);
  result = imap_run (session, command);
  g_assert_cmpuint (sink.bytes, >, 0);
  hex = g_strdup (g_checksum_get_string (sink.sum));
  g_checksum_free (sink.sum);
  return hex;
}

/* The stored message ends with exactly what was sent (Postfix and Dovecot only put
 * their trace fields, Received, Return-Path and Delivered-To, in front). */
static void
assert_stored_as_sent (const char *user,
                       const char *message_id,
                       GBytes     *sent)
{
  g_autofree char *uid = wait_delivered (user, message_id);
  g_autoptr(GBytes) stored = imap_fetch (user, uid, "");
  g_autoptr(GBytes) expected = canonical (sent);
  gsize stored_len, expected_len;
  const guint8 *s = g_bytes_get_data (stored, &stored_len);
  const guint8 *e = g_bytes_get_data (expected, &expected_len);

  g_assert_cmpuint (stored_len, >, expected_len);
  g_assert_cmpmem (s + stored_len - expected_len, expected_len, e, expected_len);
}

static void
test_starttls_8bit (void)
{
  g_autoptr(LbSmtpSession) session = alice_session ();
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test",
                                            "8-bit body", id,
                                            "Grüße aus Köln – naïve café, 日本語.\r\n");
  g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("alice@example.test");
  g_autoptr(LbSmtpSendResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (lb_connection_is_encrypted (lb_smtp_session_get_connection (session)));
  g_assert_true (lb_smtp_session_is_authenticated (session));
  g_assert_true (lb_smtp_session_has_capability (session, LB_SMTP_CAP_8BITMIME));
  g_assert_cmpuint (lb_smtp_session_get_size_limit (session), ==, 52428800);

  lb_smtp_envelope_add_recipient (envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
  g_assert_true (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_8BIT, &result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (result->accepted, ==, 1);
  g_assert_nonnull (result->data_reply);
  g_assert_true (g_str_has_prefix (result->data_reply, "250"));
  smtp_quit (session);

  assert_stored_as_sent ("bob@example.test", id, message);
}

/* Implicit TLS (465), and an internationalised sender address with raw UTF-8 headers
 * (RFC 6531/6532), which Postfix takes because it offers SMTPUTF8. */
static void
test_implicit_tls_smtputf8 (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSmtpSession) session = smtp_connect (servers->host, servers->submissions_port,
                                                   LB_NET_SECURITY_TLS, &error);
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("Jörg <jörg@example.test>", "carol@example.test",
                                            "Überraschung", id, "Hallo!\r\n");
  g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("jörg@example.test");
  g_autoptr(LbSmtpSendResult) result = NULL;

  g_assert_no_error (error);
  g_assert_true (lb_connection_is_encrypted (lb_smtp_session_get_connection (session)));
  smtp_login (session, "alice@example.test", "alice-password", &error);
  g_assert_no_error (error);
  g_assert_true (lb_smtp_session_has_capability (session, LB_SMTP_CAP_SMTPUTF8));

  /* carol's mail is delivered by Postfix's virtual(8), which takes SMTPUTF8 mail (see the
   * fixture). */
  lb_smtp_envelope_add_recipient (envelope, "carol@example.test", LB_SMTP_NOTIFY_DEFAULT);
  g_assert_true (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_UTF8, &result, &error));
  g_assert_no_error (error);
  smtp_quit (session);

  assert_stored_as_sent ("carol@example.test", id, message);
}

/* Without SMTPUTF8 (disabled here, as a server without it) the same message is refused
 * before anything is sent, with an error that says why. */
static void
test_smtputf8_refused_without_extension (void)
{
  g_autoptr(LbSmtpSession) session = alice_session ();
  g_autoptr(GBytes) message = make_message ("jörg@example.test", "bob@example.test", "x",
                                            "unused@example.test", "x\r\n");
  g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("jörg@example.test");
  g_autoptr(LbSmtpSendResult) result = NULL;
  g_autoptr(GError) error = NULL;

  lb_smtp_session_set_disabled_capabilities (session, LB_SMTP_CAP_SMTPUTF8);
  lb_smtp_envelope_add_recipient (envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
  g_assert_false (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, &result, &error));
  g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "SMTPUTF8"));
  g_assert_null (result);
  g_clear_error (&error);

  /* The session is still good for an ASCII message. */
  {
    g_autofree char *id = new_message_id ();
    g_autoptr(GBytes) ascii = make_message ("alice@example.test", "bob@example.test", "ascii",
                                            id, "plain\r\n");
    g_autoptr(LbSmtpEnvelope) ok_envelope = lb_smtp_envelope_new ("alice@example.test");

    lb_smtp_envelope_add_recipient (ok_envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
    g_assert_true (smtp_send (session, ok_envelope, ascii, LB_SMTP_MESSAGE_7BIT, NULL, &error));
    g_assert_no_error (error);
    smtp_quit (session);
    assert_stored_as_sent ("bob@example.test", id, ascii);
  }
}

/* Lines that start with dots, a lone dot, bare LF line ends and no final line end:
 * stuffed and normalised on the way, stored exactly as CRLF text, through DATA with and
 * without pipelining and through BDAT. */
static void
test_dots_and_line_ends (void)
{
  static const struct
  {
    const char *name;
    LbSmtpCapabilities disabled;
    gboolean chunked;
  } modes[] = {
    { "bdat, pipelined", 0, TRUE },
    { "data, pipelined", LB_SMTP_CAP_CHUNKING, FALSE },
    { "data, one command at a time", LB_SMTP_CAP_CHUNKING | LB_SMTP_CAP_PIPELINING, FALSE },
    { "bdat, one command at a time", LB_SMTP_CAP_PIPELINING, TRUE },
  };
  g_autoptr(LbSmtpSession) session = alice_session ();
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  g_assert_true (lb_smtp_session_has_capability (session, LB_SMTP_CAP_CHUNKING));
  g_assert_true (lb_smtp_session_has_capability (session, LB_SMTP_CAP_PIPELINING));

  /* Several messages over one connection. */
  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_autofree char *id = new_message_id ();
      g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("alice@example.test");
      g_autoptr(LbSmtpSendResult) result = NULL;
      g_autoptr(GError) error = NULL;
      GBytes *message = make_message ("alice@example.test", "carol@example.test", modes[i].name, id,
                                      ".starts with a dot\n..two dots\r\n.\n"
                                      "a line\rwith a bare CR\n. \r\nend without newline");

      lb_smtp_session_set_disabled_capabilities (session, modes[i].disabled);
      lb_smtp_envelope_add_recipient (envelope, "carol@example.test", LB_SMTP_NOTIFY_DEFAULT);
      g_assert_true (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, &result, &error));
      g_assert_no_error (error);
      g_assert_cmpint (result->chunked, ==, modes[i].chunked);
      g_ptr_array_add (ids, g_steal_pointer (&id));
      g_ptr_array_add (messages, message);
    }
  smtp_quit (session);

  for (guint i = 0; i < ids->len; i++)
    {
      g_autofree char *uid = NULL;
      g_autoptr(GBytes) body = NULL;
      static const char expected[] = ".starts with a dot\r\n..two dots\r\n.\r\n"
                                     "a line\r\nwith a bare CR\r\n. \r\nend without newline\r\n";

      assert_stored_as_sent ("carol@example.test", g_ptr_array_index (ids, i),
                             g_ptr_array_index (messages, i));
      uid = wait_delivered ("carol@example.test", g_ptr_array_index (ids, i));
      body = imap_fetch ("carol@example.test", uid, "TEXT");
      g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body), expected,
                       sizeof expected - 1);
    }
}

/* One refused and one accepted recipient: the message goes to the one, the caller learns
 * exactly which was refused and why. */
static void
test_some_recipients_refused (void)
{
  g_autoptr(LbSmtpSession) session = alice_session ();
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test",
                                            "partly refused", id, "hello\r\n");
  g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("alice@example.test");
  g_autoptr(LbSmtpSendResult) result = NULL;
  g_autoptr(GError) error = NULL;
  LbSmtpRecipientResult *r0, *r1;

  lb_smtp_envelope_add_recipient (envelope, "nobody@example.test", LB_SMTP_NOTIFY_DEFAULT);
  lb_smtp_envelope_add_recipient (envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
  g_assert_true (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, &result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (result->recipients->len, ==, 2);
  g_assert_cmpuint (result->accepted, ==, 1);
  r0 = g_ptr_array_index (result->recipients, 0);
  r1 = g_ptr_array_index (result->recipients, 1);
  g_assert_cmpstr (r0->address, ==, "nobody@example.test");
  g_assert_false (r0->accepted);
  g_assert_cmpuint (r0->code, ==, 550);
  g_assert_true (g_str_has_prefix (r0->reply, "550 5.1.1"));
  g_assert_cmpstr (r1->address, ==, "bob@example.test");
  g_assert_true (r1->accepted);
  g_assert_cmpuint (r1->code, ==, 250);

  /* Nobody at all: an error, and the per-recipient result still says why. */
  {
    g_autoptr(LbSmtpEnvelope) nobody = lb_smtp_envelope_new ("alice@example.test");
    g_autoptr(LbSmtpSendResult) none = NULL;

    lb_smtp_envelope_add_recipient (nobody, "nobody@example.test", LB_SMTP_NOTIFY_DEFAULT);
    lb_smtp_envelope_add_recipient (nobody, "noone@example.test", LB_SMTP_NOTIFY_DEFAULT);
    g_assert_false (smtp_send (session, nobody, message, LB_SMTP_MESSAGE_7BIT, &none, &error));
    g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_PERMANENT);
    g_assert_nonnull (strstr (error->message, "5.1.1"));
    g_assert_nonnull (none);
    g_assert_cmpuint (none->accepted, ==, 0);
    g_assert_cmpuint (none->recipients->len, ==, 2);
    g_clear_error (&error);
  }

  /* The session goes on after the failed transaction (RSET). */
  {
    g_autofree char *id2 = new_message_id ();
    g_autoptr(GBytes) second = make_message ("alice@example.test", "bob@example.test", "after",
                                             id2, "after the refusal\r\n");
    g_autoptr(LbSmtpEnvelope) bob = lb_smtp_envelope_new ("alice@example.test");

    lb_smtp_envelope_add_recipient (bob, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
    g_assert_true (smtp_send (session, bob, second, LB_SMTP_MESSAGE_7BIT, NULL, &error));
    g_assert_no_error (error);
    smtp_quit (session);
    assert_stored_as_sent ("bob@example.test", id2, second);
  }
  assert_stored_as_sent ("bob@example.test", id, message);
}

/* DSN (RFC 3461): NOTIFY=SUCCESS makes Postfix report the delivery to the sender. */
static void
test_dsn (void)
{
  g_autoptr(LbSmtpSession) session = alice_session ();
  g_autofree char *id = new_message_id ();
  g_autofree char *envid = g_strdup_printf ("env+%s", id);
  g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test",
                                            "with a receipt", id, "hello\r\n");
  g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("alice@example.test");
  g_autoptr(LbSmtpSendResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *uid = NULL;
  g_autoptr(GBytes) report = NULL;

  lb_smtp_envelope_set_dsn (envelope, FALSE, envid);
  lb_smtp_envelope_add_recipient (envelope, "bob@example.test",
                                  LB_SMTP_NOTIFY_SUCCESS | LB_SMTP_NOTIFY_FAILURE);
  g_assert_true (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, &result, &error));
  g_assert_no_error (error);
  g_assert_true (result->dsn_used);
  smtp_quit (session);

  assert_stored_as_sent ("bob@example.test", id, message);
  /* The report (to alice, the sender) quotes our envelope id and the recipient. */
  {
    Delivery d = { "alice@example.test", NULL, 0, NULL, NULL };

    d.body = envid;
    g_assert_true (lb_test_wait_until (delivered, &d, 60000));
    uid = d.uid;
  }
  report = imap_fetch ("alice@example.test", uid, "");
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (report, NULL), (gssize) g_bytes_get_size (report),
                                  "multipart/report"));
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (report, NULL), (gssize) g_bytes_get_size (report),
                                  "rfc822;bob@example.test"));
}

/* A 20 MB attachment, read from a file and sent in bounded memory; the body that arrives
 * is the body that was sent. */
static void
test_big_attachment (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *id = new_message_id ();
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "lb-smtp-big-XXXXXX", NULL);
  g_autoptr(GChecksum) body_sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileOutputStream) out = NULL;
  g_autoptr(GFileInputStream) in = NULL;
  g_autoptr(LbSmtpSession) session = NULL;
  g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("alice@example.test");
  g_autoptr(LbSmtpSendResult) result = NULL;
  g_autofree char *stored_body = NULL;
  g_autofree char *header = NULL;
  g_autofree char *uid = NULL;
  guint8 raw[57 * 1000];
  guint64 body_bytes = 0;
  goffset size;
  glong rss_before, rss_after;
  int fd;

  fd = g_mkstemp (path);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  file = g_file_new_for_path (path);
  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);
  header = g_strdup_printf ("From: alice@example.test\r\nTo: bob@example.test\r\n"
                            "Subject: 20 MB\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n"
                            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n", id);
  g_output_stream_write_all (G_OUTPUT_STREAM (out), header, strlen (header), NULL, NULL, &error);
  g_assert_no_error (error);

  /* The body: a text part, then 20 MB of base64 in 76-character lines. */
  {
    static const char head[] = "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
                               "--b\r\nContent-Type: application/octet-stream\r\n"
                               "Content-Transfer-Encoding: base64\r\n"
                               "Content-Disposition: attachment; filename=\"big.bin\"\r\n\r\n";
    static const char tail[] = "--b--\r\n";
    guint32 seed = 42;

    g_output_stream_write_all (G_OUTPUT_STREAM (out), head, sizeof head - 1, NULL, NULL, &error);
    g_checksum_update (body_sum, (const guint8 *) head, sizeof head - 1);
    body_bytes += sizeof head - 1;
    while (body_bytes < 20 * 1000 * 1000)
      {
        GString *chunk = g_string_new (NULL);

        for (gsize i = 0; i < sizeof raw; i++)
          {
            seed = seed * 1103515245u + 12345u;
            raw[i] = (guint8) (seed >> 16);
          }
        for (gsize i = 0; i < sizeof raw; i += 57)
          {
            g_autofree char *line = g_base64_encode (raw + i, 57);

            g_string_append (chunk, line);
            g_string_append (chunk, "\r\n");
          }
        g_output_stream_write_all (G_OUTPUT_STREAM (out), chunk->str, chunk->len, NULL, NULL,
                                   &error);
        g_assert_no_error (error);
        g_checksum_update (body_sum, (const guint8 *) chunk->str, (gssize) chunk->len);
        body_bytes += chunk->len;
        g_string_free (chunk, TRUE);
      }
    g_output_stream_write_all (G_OUTPUT_STREAM (out), tail, sizeof tail - 1, NULL, NULL, &error);
    g_checksum_update (body_sum, (const guint8 *) tail, sizeof tail - 1);
    body_bytes += sizeof tail - 1;
  }
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_no_error (error);
  size = (goffset) (strlen (header) + body_bytes);

  session = alice_session ();
  in = g_file_read (file, NULL, &error);
  g_assert_no_error (error);
  lb_smtp_envelope_add_recipient (envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
  rss_before = lb_test_peak_rss_reset ();
  g_assert_true (smtp_send_stream (session, envelope, G_INPUT_STREAM (in), size,
                                   LB_SMTP_MESSAGE_7BIT, &result, &error));
  g_assert_no_error (error);
  rss_after = lb_test_peak_rss_kb ();
  g_test_message ("20 MB sent: peak RSS %ld kB before, %ld kB after", rss_before, rss_after);
#ifndef __SANITIZE_ADDRESS__
  /* Chunks of 256 KiB go out one at a time: the peak may not grow by the message. */
  g_assert_cmpint (rss_after - rss_before, <, 8 * 1024);
#else
  /* AddressSanitizer keeps freed buffers in quarantine: RSS says nothing here. */
  (void) rss_before;
  (void) rss_after;
#endif
  g_assert_cmpuint (result->bytes_sent, ==, (guint64) size);
  smtp_quit (session);
  g_file_delete (file, NULL, NULL);

  uid = wait_delivered ("bob@example.test", id);
  stored_body = imap_fetch_checksum ("bob@example.test", uid, "TEXT");
  g_assert_cmpstr (stored_body, ==, g_checksum_get_string (body_sum));
}

/* A message over the server's SIZE limit is refused before a byte of it is sent. */
static void
test_size_limit (void)
{
  g_autoptr(LbSmtpSession) session = alice_session ();
  g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test", "x",
                                            "size@example.test", "x\r\n");
  g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (message);
  g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("alice@example.test");
  g_autoptr(GError) error = NULL;

  lb_smtp_envelope_add_recipient (envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
  g_assert_false (smtp_send_stream (session, envelope, stream, 60 * 1000 * 1000,
                                    LB_SMTP_MESSAGE_7BIT, NULL, &error));
  g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_TOO_BIG);
  g_assert_nonnull (strstr (error->message, "52428800"));
  smtp_quit (session);
}

static void
test_wrong_password (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSmtpSession) session = smtp_connect (servers->host, servers->submission_port,
                                                   LB_NET_SECURITY_STARTTLS, &error);

  g_assert_no_error (error);
  g_assert_false (smtp_login (session, "alice@example.test", "wrong", &error));
  g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_AUTH);
  g_assert_nonnull (strstr (error->message, "535"));
  g_assert_false (lb_smtp_session_is_authenticated (session));
  g_clear_error (&error);

  /* Sending without having logged in is refused by the server (permanent). */
  {
    g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test", "x",
                                              "nologin@example.test", "x\r\n");
    g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("alice@example.test");

    lb_smtp_envelope_add_recipient (envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
    g_assert_false (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, NULL, &error));
    g_assert_true (error->domain == LB_SMTP_ERROR);
    g_clear_error (&error);
  }

  /* The right password still works on the same connection. */
  smtp_login (session, "alice@example.test", "alice-password", &error);
  g_assert_no_error (error);
  smtp_quit (session);
}

/* Postfix's summary of one client connection to the port without TLS: "disconnect from
 * … ehlo=1 quit=1 commands=2". The fixture's own port probe (commands=0/0) is not one. */
static gboolean
is_notls_client_summary (const char *line)
{
  return strstr (line, "postfix/notls/smtpd") != NULL && strstr (line, "disconnect from") != NULL &&
         strstr (line, "commands=0/0") == NULL;
}

static gboolean
notls_disconnected (gpointer user_data)
{
  g_autofree char *log = lb_test_servers_dup_log (servers, "postfix");
  g_auto(GStrv) lines = g_strsplit (log, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (is_notls_client_summary (lines[i]))
      return TRUE;
  return FALSE;
}

/* A server that offers no STARTTLS when the account requires it: a clear error, and the
 * server's own log shows that nothing but EHLO and QUIT was said in clear. */
static void
test_no_starttls_refused (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbSmtpSession) session = NULL;
  g_autofree char *log = NULL;
  g_auto(GStrv) lines = NULL;
  guint disconnects = 0;

  g_assert_cmpuint (servers->smtp_notls_port, !=, 0);
  session = smtp_connect (servers->smtp_notls_host, servers->smtp_notls_port,
                          LB_NET_SECURITY_STARTTLS, &error);
  g_assert_null (session);
  g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_INSECURE);
  g_assert_nonnull (strstr (error->message, "STARTTLS"));

  /* Postfix logs the commands a client used when it disconnects. */
  g_assert_true (lb_test_wait_until (notls_disconnected, NULL, 20000));
  log = lb_test_servers_dup_log (servers, "postfix");
  lines = g_strsplit (log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (is_notls_client_summary (lines[i]))
      {
        disconnects++;
        g_test_message ("%s", lines[i]);
        g_assert_nonnull (strstr (lines[i], "ehlo=1"));
        g_assert_null (strstr (lines[i], "auth"));
        g_assert_null (strstr (lines[i], "mail"));
        g_assert_null (strstr (lines[i], "data"));
        g_assert_null (strstr (lines[i], "bdat"));
      }
  g_assert_cmpuint (disconnects, ==, 1);
}

/* Bad input from the caller is refused before anything is sent. */
static void
test_bad_addresses (void)
{
  g_autoptr(LbSmtpSession) session = alice_session ();
  g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test", "x",
                                            "bad@example.test", "x\r\n");
  const char *bad[] = { "bob@example.test>\r\nRCPT TO:<carol@example.test", "a\nb@example.test",
                        "", "<bob@example.test>" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(LbSmtpEnvelope) envelope = lb_smtp_envelope_new ("alice@example.test");
      g_autoptr(GError) error = NULL;

      lb_smtp_envelope_add_recipient (envelope, bad[i], LB_SMTP_NOTIFY_DEFAULT);
      g_assert_false (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, NULL, &error));
      g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_INVALID);
    }
  smtp_quit (session);
}

/* Postfix's smtp-sink, a real SMTP server made to misbehave on request (its options are
 * the misbehaviour), on a free loopback port. */
typedef struct
{
  GSubprocess *process;
  guint16 port;
} Sink;

static gboolean
port_open (gpointer user_data)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;

  conn = g_socket_client_connect_to_host (client, "127.0.0.1", *(guint16 *) user_data, NULL, NULL);
  return conn != NULL;
}

static Sink *
sink_start (const char *option,
            const char *value)
{
  g_autoptr(GSocket) probe = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  Sink *sink = g_new0 (Sink, 1);

  /* A port the kernel says is free; smtp-sink binds it a moment later. */
  g_assert_true (g_socket_bind (probe, any, FALSE, &error));
  bound = g_socket_get_local_address (probe, &error);
  sink->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (probe, NULL);

  g_ptr_array_add (argv, g_strdup ("smtp-sink"));
  if (getuid () == 0)
    {
      g_ptr_array_add (argv, g_strdup ("-u"));
      g_ptr_array_add (argv, g_strdup ("nobody"));
    }
  g_ptr_array_add (argv, g_strdup (option));
  if (value != NULL)
    g_ptr_array_add (argv, g_strdup (value));
  g_ptr_array_add (argv, g_strdup_printf ("127.0.0.1:%u", sink->port));
  g_ptr_array_add (argv, g_strdup ("16"));
  g_ptr_array_add (argv, NULL);
  sink->process = g_subprocess_newv ((const char *const *) argv->pdata,
                                     G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error);
  g_assert_no_error (error);
  g_assert_true (lb_test_wait_until (port_open, &sink->port, 20000));
  return sink;
}

static void
sink_stop (Sink *sink)
{
  g_subprocess_force_exit (sink->process);
  g_subprocess_wait (sink->process, NULL, NULL);
  g_object_unref (sink->process);
  g_free (sink);
}

static LbSmtpSession *
sink_session (Sink *sink)
{
  g_autoptr(GError) error = NULL;
  LbSmtpSession *session = smtp_connect ("127.0.0.1", sink->port, LB_NET_SECURITY_NONE, &error);

  g_assert_no_error (error);
  return session;
}

static LbSmtpEnvelope *
bob_envelope (void)
{
  LbSmtpEnvelope *envelope = lb_smtp_envelope_new ("alice@example.test");

  lb_smtp_envelope_add_recipient (envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
  return envelope;
}

/* A server that answers RCPT with 421 and hangs up: the error is its 421, temporary, and
 * the session is over. */
static void
test_sink_421 (void)
{
  Sink *sink = sink_start ("-Q", "RCPT");
  g_autoptr(LbSmtpSession) session = sink_session (sink);
  g_autoptr(LbSmtpEnvelope) envelope = bob_envelope ();
  g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test", "x",
                                            "sink@example.test", "x\r\n");
  g_autoptr(GError) error = NULL;

  g_assert_false (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, NULL, &error));
  g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_TEMPORARY);
  g_assert_nonnull (strstr (error->message, "421"));
  g_clear_error (&error);
  g_assert_false (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, NULL, &error));
  g_assert_error (error, LB_NET_ERROR, LB_NET_ERROR_CLOSED);
  sink_stop (sink);
}

/* A server without PIPELINING that refuses every recipient for now (450): commands one
 * at a time, the refusal temporary, and each recipient's reply kept. */
static void
test_sink_soft_reject (void)
{
  Sink *sink = sink_start ("-r", "RCPT");
  g_autoptr(LbSmtpSession) session = sink_session (sink);
  g_autoptr(LbSmtpEnvelope) envelope = bob_envelope ();
  g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test", "x",
                                            "sink@example.test", "x\r\n");
  g_autoptr(LbSmtpSendResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false (lb_smtp_session_has_capability (session, LB_SMTP_CAP_PIPELINING));
  lb_smtp_envelope_add_recipient (envelope, "carol@example.test", LB_SMTP_NOTIFY_DEFAULT);
  g_assert_false (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, &result, &error));
  g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_TEMPORARY);
  g_assert_nonnull (result);
  g_assert_cmpuint (result->recipients->len, ==, 2);
  g_assert_cmpuint (((LbSmtpRecipientResult *) g_ptr_array_index (result->recipients, 1))->code, ==,
                    450);
  smtp_quit (session);
  sink_stop (sink);
}

/* An RFC 821 server (no EHLO): HELO, no extensions, so an 8-bit message is refused before
 * sending and a 7-bit one goes through. */
static void
test_sink_helo_only (void)
{
  Sink *sink = sink_start ("-e", NULL);
  g_autoptr(LbSmtpSession) session = sink_session (sink);
  g_autoptr(LbSmtpEnvelope) envelope = bob_envelope ();
  g_autoptr(GBytes) message = make_message ("alice@example.test", "bob@example.test", "x",
                                            "sink@example.test", ".dot\r\nx\r\n");
  g_autoptr(LbSmtpSendResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false (lb_smtp_session_has_capability (session, LB_SMTP_CAP_8BITMIME));
  g_assert_false (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_8BIT, NULL, &error));
  g_assert_error (error, LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_true (smtp_send (session, envelope, message, LB_SMTP_MESSAGE_7BIT, &result, &error));
  g_assert_no_error (error);
  g_assert_false (result->chunked);
  g_assert_cmpuint (result->accepted, ==, 1);
  smtp_quit (session);
  sink_stop (sink);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = lb_test_make_home ();
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  if (servers->submission_port == 0)
    {
      g_test_skip ("Postfix needs root to run; the SMTP tests need Postfix");
      lb_test_servers_stop (servers);
      return g_test_run ();
    }

  g_test_add_func ("/smtp/starttls-8bit", test_starttls_8bit);
  g_test_add_func ("/smtp/implicit-tls-smtputf8", test_implicit_tls_smtputf8);
  g_test_add_func ("/smtp/smtputf8-refused-without-extension",
                   test_smtputf8_refused_without_extension);
  g_test_add_func ("/smtp/dots-and-line-ends", test_dots_and_line_ends);
  g_test_add_func ("/smtp/some-recipients-refused", test_some_recipients_refused);
  g_test_add_func ("/smtp/dsn", test_dsn);
  g_test_add_func ("/smtp/big-attachment", test_big_attachment);
  g_test_add_func ("/smtp/size-limit", test_size_limit);
  g_test_add_func ("/smtp/wrong-password", test_wrong_password);
  g_test_add_func ("/smtp/no-starttls-refused", test_no_starttls_refused);
  g_test_add_func ("/smtp/bad-addresses", test_bad_addresses);
  g_test_add_func ("/smtp/sink/421", test_sink_421);
  g_test_add_func ("/smtp/sink/soft-reject", test_sink_soft_reject);
  g_test_add_func ("/smtp/sink/helo-only", test_sink_helo_only);

  status = g_test_run ();
  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  return status;
}
