/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "lb-imap-session.h"
#include "lb-imap-sync.h"
#include "lb-mime.h"
#include "lb-outbox.h"
#include "lb-smtp-data.h"
#include "lb-store.h"
#include "lb-store-writer.h"
#include "lb-test-sync.h"

/*
 * The outbox against the real Postfix + Dovecot fixture. Messages submitted to alice's
 * account arrive in bob's mailbox byte for byte (behind the servers' own trace fields),
 * with one Sent copy in the store that one IMAP sync puts on the server once; mail for
 * the local user lands in Local Folders; a closed port, a 450 and a refused password are
 * retried with backoff until they pass; a 550 or giving up leaves a notice with the
 * original attached; concurrent submissions share one fsync; cancel and retry; a new
 * outbox on the same store sends what the last one left, also a message it was sending;
 * killed right after a server took a message, the next one adds the Sent copy without
 * sending it again; bad input is refused with nothing queued.
 */

static LbTestServers *servers;

typedef struct
{
  char *dir;
  char *config;
  LbStore *store;
  LbStoreWriter *writer;
  LbOutbox *outbox;
  GPtrArray *sent;   /* queue ids, from "sent" */
  GPtrArray *failed; /* "QUEUE-ID permanent|temporary: error", from "failed" */
} Fixture;

/* ---- set-up ----------------------------------------------------------------------- */

static LbAccount *
make_account (const char    *host,
              guint16        port,
              LbNetSecurity  security,
              const char    *password)
{
  LbAccount *account = lb_account_new ("work");

  account->display_name = g_strdup ("Work Mail");
  lb_account_add_identity (account, "Alice", "alice@example.test");
  account->incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP, servers->host,
                                             servers->imaps_port, LB_NET_SECURITY_TLS);
  account->incoming->user = g_strdup ("alice@example.test");
  account->outgoing = lb_account_server_new (LB_ACCOUNT_PROTOCOL_SMTP, host, port, security);
  account->outgoing->user = g_strdup ("alice@example.test");
  account->ca_file = g_strdup (servers->ca_file);
  account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  account->password_command = g_strdup_printf ("printf %%s %s", password);
  account->bodies = LB_ACCOUNT_BODIES_ALL;
  return account;
}

static void
save_account (LbAccount *account)
{
  g_autoptr(LbAccount) owned = account;
  g_autoptr(GError) error = NULL;

  lb_account_save (owned, &error);
  g_assert_no_error (error);
}

/* alice's account, sending through Postfix's submissions port (implicit TLS). */
static void
save_work_account (void)
{
  save_account (make_account (servers->host, servers->submissions_port, LB_NET_SECURITY_TLS,
                              "alice-password"));
}

static void
on_sent (LbOutbox   *outbox,
         const char *queue_id,
         Fixture    *f)
{
  g_ptr_array_add (f->sent, g_strdup (queue_id));
}

static void
on_failed (LbOutbox   *outbox,
           const char *queue_id,
           const char *error,
           gboolean    permanent,
           Fixture    *f)
{
  g_ptr_array_add (f->failed, g_strdup_printf ("%s %s: %s", queue_id,
                                               permanent ? "permanent" : "temporary", error));
}

static LbOutbox *
new_outbox (Fixture *f,
            guint    retry_base_ms)
{
  g_autoptr(GError) error = NULL;
  LbOutbox *outbox = lb_outbox_new (f->store, f->writer, &error);

  g_assert_no_error (error);
  g_object_set (outbox, "retry-base-ms", retry_base_ms, NULL);
  g_signal_connect (outbox, "sent", G_CALLBACK (on_sent), f);
  g_signal_connect (outbox, "failed", G_CALLBACK (on_failed), f);
  return outbox;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("lb-outbox-XXXXXX", &error);
  g_assert_no_error (error);
  f->config = g_build_filename (f->dir, "config", NULL);
  g_setenv ("LETTERBOX_CONFIG_DIR", f->config, TRUE);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  f->sent = g_ptr_array_new_with_free_func (g_free);
  f->failed = g_ptr_array_new_with_free_func (g_free);
  f->outbox = new_outbox (f, 100);
}

static gboolean
is_null (gpointer user_data)
{
  return *(gpointer *) user_data == NULL;
}

/* Drops an outbox and waits until it is gone (sends in flight end after the stop). */
static void
drop_outbox (LbOutbox **outbox)
{
  LbOutbox *weak = *outbox;

  lb_outbox_stop (weak);
  g_object_add_weak_pointer (G_OBJECT (weak), (gpointer *) &weak);
  g_clear_object (outbox);
  g_assert_true (lb_test_wait_until (is_null, &weak, 20000));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  if (f->outbox != NULL)
    drop_outbox (&f->outbox);
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  g_ptr_array_unref (f->sent);
  g_ptr_array_unref (f->failed);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->config);
  g_unsetenv ("LETTERBOX_CONFIG_DIR");
}

/* ---- helpers ---------------------------------------------------------------------- */

static char *
new_message_id (void)
{
  static guint counter;

  return g_strdup_printf ("lb-outbox-test-%u-%u@example.test", (guint) getpid (), ++counter);
}

/* A message without Date (the outbox adds one), with CRLF line ends. */
static GBytes *
make_message (const char *to,
              const char *subject,
              const char *message_id,
              const char *body)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "From: Alice <alice@example.test>\r\nTo: %s\r\nSubject: %s\r\n", to,
                          subject);
  if (message_id != NULL)
    g_string_append_printf (s, "Message-ID: <%s>\r\n", message_id);
  g_string_append_printf (s, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: 8bit\r\n\r\n%s", body);
  return g_string_free_to_bytes (s);
}

static char *
submit_full (Fixture            *f,
             LbOutbox           *outbox,
             const char         *from,
             const char * const *recipients,
             GBytes             *message,
             const char         *account_id,
             GError            **error)
{
  LbTestWait w = { 0 };
  char *queue_id;

  lb_outbox_submit_async (outbox, from, recipients, message, account_id, NULL, lb_test_wait_cb,
                          &w);
  queue_id = lb_outbox_submit_finish (outbox, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return queue_id;
}

static char *
submit (Fixture            *f,
        const char * const *recipients,
        GBytes             *message)
{
  g_autoptr(GError) error = NULL;
  char *queue_id = submit_full (f, f->outbox, "alice@example.test", recipients, message, NULL,
                                &error);

  g_assert_no_error (error);
  g_assert_nonnull (queue_id);
  g_assert_cmpuint (strlen (queue_id), ==, 16);
  return queue_id;
}

static LbOutboxItem *
find_item (LbOutbox   *outbox,
           const char *queue_id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) items = lb_outbox_list (outbox, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < items->len; i++)
    {
      LbOutboxItem *item = g_ptr_array_index (items, i);

      if (g_strcmp0 (item->queue_id, queue_id) == 0)
        return lb_outbox_item_copy (item);
    }
  return NULL;
}

typedef struct
{
  LbOutbox *outbox;
  const char *queue_id;
  LbOutboxState state;
  guint min_attempts;
} StateWait;

static gboolean
reached_state (gpointer user_data)
{
  StateWait *w = user_data;
  g_autoptr(LbOutboxItem) item = find_item (w->outbox, w->queue_id);

  return item != NULL && item->state == w->state && item->attempts >= w->min_attempts;
}

static LbOutboxItem *
wait_state (LbOutbox      *outbox,
            const char    *queue_id,
            LbOutboxState  state,
            guint          min_attempts,
            guint          timeout_ms)
{
  StateWait w = { outbox, queue_id, state, min_attempts };
  LbOutboxItem *item;

  if (!lb_test_wait_until (reached_state, &w, timeout_ms))
    {
      g_autoptr(LbOutboxItem) now = find_item (outbox, queue_id);
      g_autofree char *log = lb_test_servers_dup_log (servers, "postfix");

      g_test_message ("Postfix log:\n%s", log);
      g_error ("%s did not become %s with %u attempts in %u ms; it is %s after %u: %s", queue_id,
               lb_outbox_state_to_string (state), min_attempts, timeout_ms,
               now != NULL ? lb_outbox_state_to_string (now->state) : "gone",
               now != NULL ? now->attempts : 0,
               now != NULL && now->last_error != NULL ? now->last_error : "");
    }
  item = find_item (outbox, queue_id);
  g_assert_nonnull (item);
  return item;
}

typedef struct
{
  GPtrArray *signals;
  guint n;
} SignalWait;

static gboolean
signalled (gpointer user_data)
{
  SignalWait *w = user_data;

  return w->signals->len >= w->n;
}

/* The signals come after the state is on disk (and can be read): wait for them too. */
static void
wait_signals (GPtrArray *signals,
              guint      n)
{
  SignalWait w = { signals, n };

  g_assert_true (lb_test_wait_until (signalled, &w, 20000));
}

/* UIDs of @user's messages in @mailbox with this Message-ID, as doveadm finds them. */
static guint
server_count (const char *user,
              const char *mailbox,
              const char *message_id,
              char      **uid)
{
  g_autofree char *out = NULL;
  g_autofree char *query = g_strdup_printf ("<%s>", message_id);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  guint n = 0;

  lb_test_servers_doveadm (servers, NULL, &out, &error, "search", "-u", user, "mailbox", mailbox,
                           "header", "Message-ID", query, NULL);
  g_assert_no_error (error);
  lines = g_strsplit (g_strstrip (out), "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      {
        n++;
        if (uid != NULL)
          {
            g_free (*uid);
            *uid = g_strdup (strrchr (lines[i], ' ') != NULL ? strrchr (lines[i], ' ') + 1
                                                             : lines[i]);
          }
      }
  return n;
}

typedef struct
{
  const char *user;
  const char *message_id;
  gint64 next_check;
} Delivery;

static gboolean
delivered (gpointer user_data)
{
  Delivery *d = user_data;

  if (g_get_monotonic_time () < d->next_check)
    return FALSE;
  d->next_check = g_get_monotonic_time () + 100 * 1000;
  return server_count (d->user, "INBOX", d->message_id, NULL) > 0;
}

/* Waits until Postfix has delivered the message into @user's INBOX; its UID. */
static char *
wait_delivered (const char *user,
                const char *message_id)
{
  Delivery d = { user, message_id, 0 };
  char *uid = NULL;

  if (!lb_test_wait_until (delivered, &d, 60000))
    {
      g_autofree char *log = lb_test_servers_dup_log (servers, "postfix");

      g_test_message ("Postfix log:\n%s", log);
      g_error ("<%s> was not delivered to %s within 60 s", message_id, user);
    }
  g_assert_cmpuint (server_count (user, "INBOX", message_id, &uid), ==, 1);
  return uid;
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

/* The message as Dovecot stores it, read over IMAP. */
static GBytes *
imap_fetch (const char *user,
            const char *uid)
{
  g_autoptr(LbConnection) conn = lb_connection_new (servers->host, servers->imaps_port,
                                                    LB_NET_SECURITY_TLS);
  g_autofree char *password = g_strdup_printf ("%.*s-password", (int) strcspn (user, "@"), user);
  g_autoptr(LbImapSession) session = NULL;
  g_autoptr(LbImapResult) selected = NULL;
  g_autoptr(LbImapResult) result = NULL;
  g_autofree char *command = g_strdup_printf ("UID FETCH %s (BODY.PEEK[])", uid);
  g_autoptr(GError) error = NULL;
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
  selected = imap_run (session, "EXAMINE INBOX");
  result = imap_run (session, command);
  for (guint i = 0; i < result->untagged->len; i++)
    {
      LbImapResponse *r = g_ptr_array_index (result->untagged, i);

      if (r->data == LB_IMAP_DATA_FETCH && r->fetch->sections != NULL &&
          r->fetch->sections->len > 0)
        {
          LbImapSection *s = g_ptr_array_index (r->fetch->sections, 0);

          return g_bytes_new (s->value->str, s->value->len);
        }
    }
  g_error ("UID %s of %s has no body", uid, user);
  return NULL;
}

/* What SMTP makes of a message: CRLF line ends, a final one. */
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

static void
assert_ends_with (GBytes *whole,
                  GBytes *tail)
{
  gsize whole_len, tail_len;
  const guint8 *w = g_bytes_get_data (whole, &whole_len);
  const guint8 *t = g_bytes_get_data (tail, &tail_len);

  g_assert_cmpuint (whole_len, >=, tail_len);
  g_assert_cmpmem (w + whole_len - tail_len, tail_len, t, tail_len);
}

static GBytes *
stored_body (Fixture *f,
             gint64   id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) in = lb_store_open_body (f->store, id, &error);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  g_assert_no_error (error);
  g_assert_cmpint (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL,
                                           &error), >, 0);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* Rows of @account's folder with @role holding @message_id. */
static gint64
store_count (Fixture    *f,
             const char *account,
             const char *role,
             const char *message_id)
{
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM messages m JOIN folders f ON "
                                          "f.id = m.folder_id WHERE f.account_id = '%s' AND "
                                          "f.role = '%s' AND m.message_id = '%s'", account, role,
                                          message_id);

  return lb_test_store_query_int (f->dir, sql);
}

static gint64
store_id (Fixture    *f,
          const char *account,
          const char *role,
          const char *message_id)
{
  g_autofree char *sql = g_strdup_printf ("SELECT m.id FROM messages m JOIN folders f ON "
                                          "f.id = m.folder_id WHERE f.account_id = '%s' AND "
                                          "f.role = '%s' AND m.message_id = '%s'", account, role,
                                          message_id);

  return lb_test_store_query_int (f->dir, sql);
}

/* Local Folders' Inbox rows whose subject contains @text. */
static gint64
notice_id (Fixture    *f,
           const char *text,
           guint      *count)
{
  g_autofree char *sql = g_strdup_printf ("SELECT count(*), max(m.id) FROM messages m JOIN "
                                          "folders f ON f.id = m.folder_id WHERE "
                                          "f.account_id = 'local' AND f.role = 'inbox' AND "
                                          "m.subject LIKE '%%%s%%'", text);
  g_autofree char *row = lb_test_store_query (f->dir, sql);
  g_auto(GStrv) cols = g_strsplit (row, "|", 2);

  *count = (guint) g_ascii_strtoull (cols[0], NULL, 10);
  return g_ascii_strtoll (cols[1], NULL, 10);
}

static gboolean
sync_account (LbStoreWriter *writer)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAccount) account = lb_account_load ("work", &error);
  g_autoptr(LbImapSync) sync = NULL;
  LbImapSyncStats stats = { 0 };
  LbTestWait w = { 0 };
  gboolean ok;

  g_assert_no_error (error);
  sync = lb_imap_sync_new (account, writer);
  lb_imap_sync_run_async (sync, LB_IMAP_SYNC_NONE, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_sync_run_finish (sync, lb_test_wait_result (&w), &stats, &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  return ok;
}

/* A notice as Local Folders keep it: a multipart/report whose parts say @says, with the
 * original (Message-ID @original) attached. */
static void
assert_notice (Fixture    *f,
               gint64      id,
               const char *original,
               const char *const *says)
{
  g_autoptr(GBytes) raw = stored_body (f, id);
  g_autoptr(GError) error = NULL;
  g_autoptr(GMimeMessage) notice = lb_mime_parse_bytes (g_bytes_get_data (raw, NULL),
                                                        g_bytes_get_size (raw), &error);
  GMimeObject *body;
  GMimeMultipart *report;
  GMimeObject *attached;
  GMimeMessage *inner;
  g_autofree char *text = NULL;
  g_autofree char *status = NULL;
  g_autofree char *type = NULL;

  g_assert_no_error (error);
  body = g_mime_message_get_mime_part (notice);
  g_assert_true (GMIME_IS_MULTIPART (body));
  g_assert_cmpstr (type = g_mime_content_type_get_mime_type (g_mime_object_get_content_type (body)),
                   ==, "multipart/report");
  report = GMIME_MULTIPART (body);
  g_assert_cmpint (g_mime_multipart_get_count (report), ==, 3);
  text = g_mime_text_part_get_text (GMIME_TEXT_PART (g_mime_multipart_get_part (report, 0)));
  {
    GMimePart *part = GMIME_PART (g_mime_multipart_get_part (report, 1));
    g_autoptr(GMimeStream) mem = g_mime_stream_mem_new ();
    g_autofree char *part_type = g_mime_content_type_get_mime_type (
      g_mime_object_get_content_type (GMIME_OBJECT (part)));
    GByteArray *bytes;

    g_assert_cmpstr (part_type, ==, "message/delivery-status");
    g_mime_data_wrapper_write_to_stream (g_mime_part_get_content (part), mem);
    bytes = g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (mem));
    status = g_strndup ((const char *) bytes->data, bytes->len);
  }
  for (guint i = 0; says != NULL && says[i] != NULL; i++)
    if (strstr (text, says[i]) == NULL && strstr (status, says[i]) == NULL)
      g_error ("The notice does not say “%s”:\n%s\n%s", says[i], text, status);
  attached = g_mime_multipart_get_part (report, 2);
  g_assert_true (GMIME_IS_MESSAGE_PART (attached));
  inner = g_mime_message_part_get_message (GMIME_MESSAGE_PART (attached));
  g_assert_cmpstr (g_mime_message_get_message_id (inner), ==, original);
  g_assert_cmpstr (g_mime_object_get_header (GMIME_OBJECT (notice), "Auto-Submitted"), ==,
                   "auto-replied");
}

/* ---- tests ------------------------------------------------------------------------ */

/* The whole way: queued, sent through Postfix to bob (byte for byte after the trace
 * fields the servers put in front), a Sent copy in the store exactly once, on the server
 * exactly once after a sync, and still once after a second sync. */
static void
test_send (Fixture       *f,
           gconstpointer  data)
{
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test", "Outbox 8-bit", id,
                                            "Grüße aus Köln.\r\n.\r\n..dots\r\nlast line");
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autofree char *uid = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  g_autoptr(GBytes) stored = NULL;
  g_autoptr(GBytes) copy = NULL;
  gint64 copy_id;

  save_work_account ();
  queue_id = submit (f, to, message);
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 1);
  item = find_item (f->outbox, queue_id);
  g_assert_cmpint (item->state, ==, LB_OUTBOX_STATE_QUEUED);
  g_assert_cmpstr (item->account_id, ==, "work");
  g_assert_cmpstr (item->subject, ==, "Outbox 8-bit");
  g_clear_pointer (&item, lb_outbox_item_free);

  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_SENT, 1, 30000);
  g_assert_cmpuint (item->attempts, ==, 1);
  g_assert_null (item->last_error);
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 0);
  wait_signals (f->sent, 1);
  g_assert_cmpuint (f->sent->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (f->sent, 0), ==, queue_id);
  g_assert_cmpuint (f->failed->len, ==, 0);

  /* The Sent copy: once, with the bytes sent (the message as given, a Date in front),
   * and an upload waiting in the journal. */
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 1);
  copy_id = store_id (f, "work", "sent", id);
  copy = stored_body (f, copy_id);
  g_assert_true (g_str_has_prefix (g_bytes_get_data (copy, NULL), "Date: "));
  assert_ends_with (copy, message);
  g_assert_cmpuint (g_bytes_get_size (copy), ==, item->size);
  {
    g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM journal WHERE kind = 'append' "
                                            "AND message_id = %" G_GINT64_FORMAT, copy_id);

    g_assert_cmpint (lb_test_store_query_int (f->dir, sql), ==, 1);
  }

  /* bob's copy: what was queued, after Received/Return-Path/Delivered-To. */
  uid = wait_delivered ("bob@example.test", id);
  {
    g_autoptr(GBytes) expected = canonical (copy);

    stored = imap_fetch ("bob@example.test", uid);
    assert_ends_with (stored, expected);
  }

  /* Sync uploads the copy into alice's Sent, once. */
  g_assert_cmpuint (server_count ("alice@example.test", "Sent", id, NULL), ==, 0);
  sync_account (f->writer);
  g_assert_cmpuint (server_count ("alice@example.test", "Sent", id, NULL), ==, 1);
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 1);
  g_assert_cmpint (lb_test_store_query_int (f->dir, "SELECT count(*) FROM journal"), ==, 0);
  sync_account (f->writer);
  g_assert_cmpuint (server_count ("alice@example.test", "Sent", id, NULL), ==, 1);
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 1);
}

static guint
count_lines (const char *text,
             const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (text, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

typedef struct
{
  const char *needle;
  guint at_least;
} LogWait;

static gboolean
postfix_logged (gpointer user_data)
{
  LogWait *w = user_data;
  g_autofree char *log = lb_test_servers_dup_log (servers, "postfix");

  return count_lines (log, w->needle) >= w->at_least;
}

/* Five messages due together go over one connection, one after the other. */
static void
test_one_connection (Fixture       *f,
                     gconstpointer  data)
{
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *before = lb_test_servers_dup_log (servers, "postfix");
  guint connects = count_lines (before, "]: connect from");
  guint disconnects = count_lines (before, "]: disconnect from");
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) queue_ids = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *after = NULL;
  LogWait w;

  save_work_account ();
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *subject = g_strdup_printf ("Batch %u", i);
      g_autoptr(GBytes) message = NULL;

      g_ptr_array_add (ids, new_message_id ());
      message = make_message ("bob@example.test", subject, g_ptr_array_index (ids, i), "x\r\n");
      g_ptr_array_add (queue_ids, submit (f, to, message));
    }
  lb_outbox_start (f->outbox);
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(LbOutboxItem) item = wait_state (f->outbox, g_ptr_array_index (queue_ids, i),
                                                 LB_OUTBOX_STATE_SENT, 1, 30000);
    }
  w.needle = "]: disconnect from";
  w.at_least = disconnects + 1;
  g_assert_true (lb_test_wait_until (postfix_logged, &w, 20000));
  after = lb_test_servers_dup_log (servers, "postfix");
  g_assert_cmpuint (count_lines (after, "]: connect from"), ==, connects + 1);
  for (guint i = 0; i < 5; i++)
    g_free (wait_delivered ("bob@example.test", g_ptr_array_index (ids, i)));
}

/* Mail for the local user goes into Local Folders' Inbox at once, byte for byte after
 * the fields added (LF line ends kept); mixed with a remote recipient, the rest is
 * queued for the account. */
static void
test_local_delivery (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *host_user = g_strdup_printf ("%s@%s", g_get_user_name (), g_get_host_name ());
  const char *const local_only[] = { g_get_user_name (), "root@localhost", NULL };
  const char *const mixed[] = { "postmaster", "bob@example.test", NULL };
  static const char cron[] = "From: Cron Daemon <root@localhost>\nSubject: Cron <root> backup\n"
                             "\nbackup done\n";
  g_autoptr(GBytes) cron_message = g_bytes_new_static (cron, sizeof cron - 1);
  g_autofree char *mixed_id = new_message_id ();
  g_autoptr(GBytes) mixed_message = make_message ("postmaster, bob@example.test", "Mixed",
                                                  mixed_id, "to both\r\n");
  g_autoptr(GError) error = NULL;
  g_autofree char *queue_id = NULL;
  g_autofree char *mixed_queue_id = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  g_autoptr(GBytes) body = NULL;
  gint64 local_id;
  g_autofree char *message_id = NULL;

  /* No account at all is needed for the local user. */
  queue_id = submit_full (f, f->outbox, host_user, local_only, cron_message, NULL, &error);
  g_assert_no_error (error);
  item = find_item (f->outbox, queue_id);
  g_assert_cmpint (item->state, ==, LB_OUTBOX_STATE_SENT);
  g_assert_null (item->account_id);
  g_assert_cmpuint (g_strv_length (item->recipients), ==, 2);
  g_assert_cmpuint (f->sent->len, ==, 1);
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 0);

  message_id = lb_test_store_query (f->dir, "SELECT m.message_id FROM messages m JOIN folders f "
                                            "ON f.id = m.folder_id WHERE f.account_id = 'local' "
                                            "AND m.subject = 'Cron <root> backup'");
  g_assert_cmpstr (message_id, !=, "");
  g_assert_null (strchr (message_id, '\n'));
  g_assert_cmpint (store_count (f, "local", "inbox", message_id), ==, 1);
  local_id = store_id (f, "local", "inbox", message_id);
  body = stored_body (f, local_id);
  assert_ends_with (body, cron_message);
  {
    g_autofree char *expected = g_strdup_printf ("Message-ID: <%s>\n", message_id);
    const char *text = g_bytes_get_data (body, NULL);

    g_assert_true (g_str_has_prefix (text, "Date: "));
    g_assert_nonnull (g_strstr_len (text, (gssize) g_bytes_get_size (body), expected));
  }

  /* Mixed: postmaster here, bob through the account. */
  save_work_account ();
  mixed_queue_id = submit_full (f, f->outbox, "alice@example.test", mixed, mixed_message, NULL,
                                &error);
  g_assert_no_error (error);
  g_assert_cmpint (store_count (f, "local", "inbox", mixed_id), ==, 1);
  g_clear_pointer (&item, lb_outbox_item_free);
  item = find_item (f->outbox, mixed_queue_id);
  g_assert_cmpint (item->state, ==, LB_OUTBOX_STATE_QUEUED);
  g_assert_cmpstr (item->recipients[0], ==, "bob@example.test");
  g_assert_null (item->recipients[1]);
  lb_outbox_start (f->outbox);
  g_clear_pointer (&item, lb_outbox_item_free);
  item = wait_state (f->outbox, mixed_queue_id, LB_OUTBOX_STATE_SENT, 1, 30000);
  g_free (wait_delivered ("bob@example.test", mixed_id));
  g_assert_cmpint (store_count (f, "local", "inbox", mixed_id), ==, 1);
}

/* A TCP proxy that appears later on a port that was closed: a server coming back. */
typedef struct
{
  GSocketService *service;
  guint16 port;
  guint connections;
} Proxy;

static gboolean
proxy_incoming (GSocketService    *service,
                GSocketConnection *connection,
                GObject           *source,
                gpointer           user_data)
{
  Proxy *proxy = user_data;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) upstream = NULL;

  upstream = g_socket_client_connect_to_host (client, servers->host, servers->submissions_port,
                                              NULL, NULL);
  if (upstream == NULL)
    return FALSE;
  proxy->connections++;
  g_io_stream_splice_async (G_IO_STREAM (connection), G_IO_STREAM (upstream),
                            G_IO_STREAM_SPLICE_CLOSE_STREAM1 | G_IO_STREAM_SPLICE_CLOSE_STREAM2,
                            G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  return TRUE;
}

static void
proxy_start (Proxy *proxy)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (lo, proxy->port);
  g_autoptr(GError) error = NULL;

  proxy->service = g_socket_service_new ();
  g_socket_listener_add_address (G_SOCKET_LISTENER (proxy->service), address,
                                 G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (proxy->service, "incoming", G_CALLBACK (proxy_incoming), proxy);
  g_socket_service_start (proxy->service);
}

static void
proxy_stop (Proxy *proxy)
{
  g_socket_service_stop (proxy->service);
  g_socket_listener_close (G_SOCKET_LISTENER (proxy->service));
  g_clear_object (&proxy->service);
}

/* The server's port is closed: the message waits with growing pauses (temporary
 * failures, the `failed` signal says so), and goes once the server is back — once. */
static void
test_port_closed_then_open (Fixture       *f,
                            gconstpointer  data)
{
  Proxy proxy = { NULL, lb_test_free_port (), 0 };
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test", "Comes back", id, "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  gint64 first_wait;

  save_account (make_account ("127.0.0.1", proxy.port, LB_NET_SECURITY_TLS, "alice-password"));
  queue_id = submit (f, to, message);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_QUEUED, 2, 20000);
  g_assert_nonnull (item->last_error);
  g_assert_nonnull (strstr (item->last_error, "Work Mail"));
  wait_signals (f->failed, 2);
  g_assert_nonnull (strstr (g_ptr_array_index (f->failed, 0), "temporary"));
  g_assert_cmpuint (f->sent->len, ==, 0);
  /* The second wait is longer than the first (100 ms doubled, ±20 %). */
  first_wait = item->next_attempt - g_get_real_time ();
  g_assert_cmpint (first_wait, <=, 1000 * 1000);
  g_clear_pointer (&item, lb_outbox_item_free);

  proxy_start (&proxy);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_SENT, 3, 30000);
  g_assert_cmpuint (proxy.connections, ==, 1);
  g_free (wait_delivered ("bob@example.test", id));
  wait_signals (f->sent, 1);
  g_assert_cmpuint (f->sent->len, ==, 1);
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 1);
  proxy_stop (&proxy);
}

/* A server that hangs up on every connection, counting them. */
static gboolean
dead_incoming (GSocketService    *service,
               GSocketConnection *connection,
               GObject           *source,
               gpointer           user_data)
{
  ((Proxy *) user_data)->connections++;
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  return TRUE;
}

/* An account whose server cannot be reached is not tried again for each new message
 * (as an MTA keeps a dead destination): a message submitted meanwhile waits for the
 * account's retry time, then both go in one connection. The user's retry tries at once. */
static void
test_unreachable_account (Fixture       *f,
                          gconstpointer  data)
{
  Proxy dead = { NULL, lb_test_free_port (), 0 };
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (lo, dead.port);
  g_autofree char *id1 = new_message_id ();
  g_autofree char *id2 = new_message_id ();
  g_autoptr(GBytes) message1 = make_message ("bob@example.test", "First", id1, "x\r\n");
  g_autoptr(GBytes) message2 = make_message ("bob@example.test", "Second", id2, "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *queue_id1 = NULL;
  g_autofree char *queue_id2 = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  g_autoptr(LbOutboxItem) first = NULL;
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  dead.service = g_socket_service_new ();
  g_socket_listener_add_address (G_SOCKET_LISTENER (dead.service), address, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (dead.service, "incoming", G_CALLBACK (dead_incoming), &dead);
  g_socket_service_start (dead.service);

  g_object_set (f->outbox, "retry-base-ms", 1500, NULL);
  save_account (make_account ("127.0.0.1", dead.port, LB_NET_SECURITY_TLS, "alice-password"));
  queue_id1 = submit (f, to, message1);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id1, LB_OUTBOX_STATE_QUEUED, 1, 20000);
  g_assert_cmpuint (dead.connections, ==, 1);
  /* From the second failure on, the account waits an hour. */
  g_object_set (f->outbox, "retry-base-ms", 3600 * 1000, NULL);

  queue_id2 = submit (f, to, message2);
  g_clear_pointer (&item, lb_outbox_item_free);
  first = wait_state (f->outbox, queue_id1, LB_OUTBOX_STATE_QUEUED, 2, 20000);
  item = wait_state (f->outbox, queue_id2, LB_OUTBOX_STATE_QUEUED, 1, 20000);
  g_assert_cmpuint (item->attempts, ==, 1);
  g_assert_cmpuint (dead.connections, ==, 2);
  g_assert_cmpint (item->next_attempt, ==, first->next_attempt);
  g_assert_cmpint (item->next_attempt, >, g_get_real_time () + 1000 * G_USEC_PER_SEC);

  lb_outbox_retry_async (f->outbox, NULL, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_outbox_retry_finish (f->outbox, lb_test_wait_result (&w), &error));
  g_assert_no_error (error);
  g_object_unref (w.result);
  g_clear_pointer (&item, lb_outbox_item_free);
  item = wait_state (f->outbox, queue_id2, LB_OUTBOX_STATE_QUEUED, 2, 20000);
  g_assert_cmpuint (dead.connections, ==, 3);
  g_assert_cmpuint (f->sent->len, ==, 0);
  proxy_stop (&dead);
}

/* Postfix's smtp-sink, answering every RCPT with 450 (and offering no AUTH). */
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
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  Sink *sink = g_new0 (Sink, 1);

  sink->port = lb_test_free_port ();
  g_ptr_array_add (argv, g_strdup ("smtp-sink"));
  if (getuid () == 0)
    {
      g_ptr_array_add (argv, g_strdup ("-u"));
      g_ptr_array_add (argv, g_strdup ("nobody"));
    }
  /* No AUTH offered: the outbox then sends without logging in. */
  g_ptr_array_add (argv, g_strdup ("-a"));
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

/* A server that says 450 to the recipient: temporary, the reply in the error. Then the
 * account is pointed at Postfix (the file is read again for every run) and a retry makes
 * the message due at once: delivered once. */
static void
test_4xx_then_fixed (Fixture       *f,
                     gconstpointer  data)
{
  Sink *sink = sink_start ("-r", "RCPT");
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test", "Soft", id, "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  g_object_set (f->outbox, "retry-base-ms", 3600 * 1000, NULL);
  save_account (make_account ("127.0.0.1", sink->port, LB_NET_SECURITY_NONE, "any"));
  queue_id = submit (f, to, message);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_QUEUED, 1, 20000);
  g_assert_nonnull (strstr (item->last_error, "450"));
  g_assert_cmpint (item->next_attempt, >, g_get_real_time () + 1000 * G_USEC_PER_SEC);
  wait_signals (f->failed, 1);
  g_assert_cmpuint (f->failed->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (f->failed, 0), "temporary"));
  sink_stop (sink);

  save_work_account ();
  lb_outbox_retry_async (f->outbox, queue_id, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_outbox_retry_finish (f->outbox, lb_test_wait_result (&w), &error));
  g_assert_no_error (error);
  g_object_unref (w.result);
  g_clear_pointer (&item, lb_outbox_item_free);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_SENT, 2, 30000);
  g_free (wait_delivered ("bob@example.test", id));
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 1);
}

/* A recipient Postfix refuses (550 5.1.1): failed for good, and a notice in Local
 * Folders with the server's reply and the original attached; no Sent copy. */
static void
test_refused (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("nobody@example.test", "Refused one", id, "x\r\n");
  const char *const to[] = { "nobody@example.test", NULL };
  const char *const says[] = { "nobody@example.test", "550", "5.1.1", "Refused one",
                               "Diagnostic-Code: smtp; 550", NULL };
  g_autofree char *queue_id = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  guint notices;
  gint64 notice;

  save_work_account ();
  queue_id = submit (f, to, message);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_FAILED, 1, 30000);
  g_assert_nonnull (strstr (item->last_error, "550"));
  wait_signals (f->failed, 1);
  g_assert_cmpuint (f->failed->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (f->failed, 0), "permanent"));
  g_assert_cmpuint (f->sent->len, ==, 0);
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 0);
  notice = notice_id (f, "Refused one", &notices);
  g_assert_cmpuint (notices, ==, 1);
  assert_notice (f, notice, id, says);
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 0);
}

/* bob takes it, nobody is refused: sent (with its Sent copy), and a notice naming nobody
 * and saying it reached bob. */
static void
test_partly_refused (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test, nobody@example.test", "Half", id,
                                            "x\r\n");
  const char *const to[] = { "bob@example.test", "nobody@example.test", NULL };
  const char *const says[] = { "nobody@example.test", "550", "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  guint notices;
  gint64 notice;

  save_work_account ();
  queue_id = submit (f, to, message);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_SENT, 1, 30000);
  g_free (wait_delivered ("bob@example.test", id));
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 1);
  wait_signals (f->sent, 1);
  wait_signals (f->failed, 1);
  g_assert_cmpuint (f->sent->len, ==, 1);
  g_assert_cmpuint (f->failed->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (f->failed, 0), "nobody@example.test"));
  notice = notice_id (f, "Half", &notices);
  g_assert_cmpuint (notices, ==, 1);
  assert_notice (f, notice, id, says);
  g_assert_cmpint (lb_test_store_query_int (f->dir, "SELECT count(*) FROM outbox WHERE "
                                                    "notice IS NOT NULL"), ==, 0);
}

/* A wrong password: temporary, the error says the password was refused, and the
 * attempts are spaced out, the pause doubling each time (not a tight loop). */
static void
test_wrong_password (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test", "Wrong password", id, "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autoptr(LbOutboxItem) first = NULL;
  g_autoptr(LbOutboxItem) third = NULL;
  gint64 first_seen, third_seen;

  g_object_set (f->outbox, "retry-base-ms", 200, NULL);
  save_account (make_account (servers->host, servers->submissions_port, LB_NET_SECURITY_TLS,
                              "not-the-password"));
  queue_id = submit (f, to, message);
  lb_outbox_start (f->outbox);
  first = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_QUEUED, 1, 20000);
  first_seen = g_get_real_time ();
  g_assert_nonnull (strstr (first->last_error, "password"));
  wait_signals (f->failed, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (f->failed, 0), "temporary"));
  /* 200 ms (±20 %) after the first failure, 400 after the second, 800 after the third. */
  third = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_QUEUED, 3, 20000);
  third_seen = g_get_real_time ();
  g_assert_cmpint (third_seen - first_seen, >=, (200 + 400) * 800 - 50 * 1000);
  g_assert_cmpint (third->next_attempt - third_seen, >=, 800 * 800 - 100 * 1000);
  g_assert_cmpuint (f->sent->len, ==, 0);
}

/* A message that keeps failing past its give-up time fails for good, with a notice
 * (status 4.4.7, delivery time expired). */
static void
test_give_up (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test", "Never arrives", id, "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  const char *const says[] = { "Given up after", "4.4.7", "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  guint notices;
  gint64 notice;

  g_object_set (f->outbox, "retry-base-ms", 30, "give-up-ms", (guint64) 400, NULL);
  save_account (make_account ("127.0.0.1", lb_test_free_port (), LB_NET_SECURITY_TLS, "x"));
  queue_id = submit (f, to, message);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_FAILED, 2, 20000);
  notice = notice_id (f, "Never arrives", &notices);
  g_assert_cmpuint (notices, ==, 1);
  assert_notice (f, notice, id, says);
  wait_signals (f->failed, item->attempts);
  g_assert_nonnull (strstr (g_ptr_array_index (f->failed, f->failed->len - 1), "permanent"));
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 0);
}

static gboolean
change (LbOutbox    *outbox,
        const char  *queue_id,
        gboolean     retry,
        GError     **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  if (retry)
    {
      lb_outbox_retry_async (outbox, queue_id, NULL, lb_test_wait_cb, &w);
      ok = lb_outbox_retry_finish (outbox, lb_test_wait_result (&w), error);
    }
  else
    {
      lb_outbox_cancel_async (outbox, queue_id, NULL, lb_test_wait_cb, &w);
      ok = lb_outbox_cancel_finish (outbox, lb_test_wait_result (&w), error);
    }
  g_object_unref (w.result);
  return ok;
}

static gboolean
set_sending (sqlite3  *db,
             gpointer  data,
             GError  **error)
{
  char *sql = sqlite3_mprintf ("UPDATE outbox SET state = 'sending' WHERE queue_id = %Q",
                               (const char *) data);
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  sqlite3_free (sql);
  g_assert_cmpint (rc, ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_changes (db), ==, 1);
  return TRUE;
}

/* Marks a row as a crashed outbox would leave it: DATA had begun. */
static void
mark_sending (Fixture    *f,
              const char *queue_id)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_store_writer_exec_async (f->writer, set_sending, g_strdup (queue_id), g_free, NULL,
                              lb_test_wait_cb, &w);
  lb_store_writer_exec_finish (f->writer, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
}

/* A POP3 account keeps no folders on the server: its Sent copy goes into Local Folders'
 * Sent, with nothing for sync to upload. */
static void
test_pop3_sent_copy (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test", "From a POP3 account", id,
                                            "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  LbAccount *account = make_account (servers->host, servers->submissions_port,
                                     LB_NET_SECURITY_TLS, "alice-password");
  g_autofree char *queue_id = NULL;
  g_autoptr(LbOutboxItem) item = NULL;

  lb_account_server_free (account->incoming);
  account->incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_POP3, servers->host,
                                             servers->pop3s_port, LB_NET_SECURITY_TLS);
  save_account (account);
  queue_id = submit (f, to, message);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_SENT, 1, 30000);
  g_free (wait_delivered ("bob@example.test", id));
  g_assert_cmpint (store_count (f, "local", "sent", id), ==, 1);
  g_assert_cmpint (lb_test_store_query_int (f->dir, "SELECT count(*) FROM folders WHERE "
                                                    "account_id = 'work'"), ==, 0);
  g_assert_cmpint (lb_test_store_query_int (f->dir, "SELECT count(*) FROM journal"), ==, 0);
}

/* Stopping while a message is in DATA (the server takes its time to answer) ends at
 * once; the message stays `sending`, and the next outbox sends it, saying it may be a
 * duplicate. */
static void
test_stop_while_sending (Fixture       *f,
                         gconstpointer  data)
{
  Sink *sink = sink_start ("-w", "30");
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test", "Interrupted", id, "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autofree char *sql = NULL;
  g_autofree char *state = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  gint64 stopping;

  save_account (make_account ("127.0.0.1", sink->port, LB_NET_SECURITY_NONE, "any"));
  queue_id = submit (f, to, message);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_SENDING, 1, 20000);
  g_assert_true (lb_outbox_is_sending (f->outbox));
  stopping = g_get_monotonic_time ();
  drop_outbox (&f->outbox);
  g_assert_cmpint (g_get_monotonic_time () - stopping, <, 5 * G_USEC_PER_SEC);
  sql = g_strdup_printf ("SELECT state FROM outbox WHERE queue_id = '%s'", queue_id);
  state = lb_test_store_query (f->dir, sql);
  g_assert_cmpstr (state, ==, "sending");
  sink_stop (sink);

  save_work_account ();
  f->outbox = new_outbox (f, 100);
  g_test_expect_message ("lb-outbox", G_LOG_LEVEL_WARNING, "*was being sent*may arrive twice*");
  lb_outbox_start (f->outbox);
  g_test_assert_expected_messages ();
  g_clear_pointer (&item, lb_outbox_item_free);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_SENT, 2, 30000);
  g_free (wait_delivered ("bob@example.test", id));
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 1);
}

/* Retry makes a waiting message due now; cancel takes it out (its bytes gone); the
 * errors for what cannot be cancelled or retried. */
static void
test_cancel_retry (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GBytes) message = make_message ("bob@example.test", "Cancel me", NULL, "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  const char *const me[] = { "root", NULL };
  g_autofree char *queue_id = NULL;
  g_autofree char *other = NULL;
  g_autofree char *local = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  g_autoptr(GError) error = NULL;

  g_object_set (f->outbox, "retry-base-ms", 3600 * 1000, NULL);
  save_account (make_account ("127.0.0.1", lb_test_free_port (), LB_NET_SECURITY_TLS, "x"));
  queue_id = submit (f, to, message);
  other = submit (f, to, message);
  local = submit (f, me, message);
  lb_outbox_start (f->outbox);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_QUEUED, 1, 20000);
  g_assert_cmpint (item->next_attempt, >, g_get_real_time () + 600 * G_USEC_PER_SEC);
  g_clear_pointer (&item, lb_outbox_item_free);

  g_assert_true (change (f->outbox, queue_id, TRUE, &error));
  g_assert_no_error (error);
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_QUEUED, 2, 20000);
  g_clear_pointer (&item, lb_outbox_item_free);

  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 2);
  g_assert_true (change (f->outbox, queue_id, FALSE, &error));
  g_assert_no_error (error);
  item = find_item (f->outbox, queue_id);
  g_assert_cmpint (item->state, ==, LB_OUTBOX_STATE_CANCELLED);
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 1);
  {
    g_autofree char *sql = g_strdup_printf ("SELECT message IS NULL FROM outbox WHERE "
                                            "queue_id = '%s'", queue_id);

    g_assert_cmpint (lb_test_store_query_int (f->dir, sql), ==, 1);
  }
  /* Twice is fine; a retry of a cancelled message is not. */
  g_assert_true (change (f->outbox, queue_id, FALSE, &error));
  g_assert_no_error (error);
  g_assert_false (change (f->outbox, queue_id, TRUE, &error));
  g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_false (change (f->outbox, "0123456789ABCDEF", FALSE, &error));
  g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (change (f->outbox, local, FALSE, &error));
  g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_ALREADY_SENT);
  g_clear_error (&error);
  g_assert_false (change (f->outbox, local, TRUE, &error));
  g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_ALREADY_SENT);
  g_clear_error (&error);

  /* Being sent right now. */
  lb_outbox_stop (f->outbox);
  mark_sending (f, other);
  g_assert_false (change (f->outbox, other, FALSE, &error));
  g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_BUSY);
  g_clear_error (&error);
  g_assert_false (change (f->outbox, other, TRUE, &error));
  g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_BUSY);
}

/* An outbox that stops (or crashes) leaves its queue in the store: a new one on the same
 * store sends it — also a message it had begun to send, which it logs as a possible
 * duplicate — and the Sent copy still exists once. */
static void
test_restart (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *id1 = new_message_id ();
  g_autofree char *id2 = new_message_id ();
  g_autoptr(GBytes) m1 = make_message ("bob@example.test", "Restart 1", id1, "x\r\n");
  g_autoptr(GBytes) m2 = make_message ("bob@example.test", "Restart 2", id2, "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *q1 = NULL;
  g_autofree char *q2 = NULL;
  g_autoptr(LbOutboxItem) i1 = NULL;
  g_autoptr(LbOutboxItem) i2 = NULL;
  LbOutbox *second;

  save_work_account ();
  q1 = submit (f, to, m1);
  q2 = submit (f, to, m2);
  drop_outbox (&f->outbox);
  /* As after a crash while sending q2. */
  mark_sending (f, q2);

  second = new_outbox (f, 100);
  f->outbox = second;
  g_test_expect_message ("lb-outbox", G_LOG_LEVEL_WARNING, "*was being sent*may arrive twice*");
  lb_outbox_start (second);
  g_test_assert_expected_messages ();
  i1 = wait_state (second, q1, LB_OUTBOX_STATE_SENT, 1, 30000);
  i2 = wait_state (second, q2, LB_OUTBOX_STATE_SENT, 1, 30000);
  g_free (wait_delivered ("bob@example.test", id1));
  g_free (wait_delivered ("bob@example.test", id2));
  g_assert_cmpint (store_count (f, "work", "sent", id1), ==, 1);
  g_assert_cmpint (store_count (f, "work", "sent", id2), ==, 1);
}

static gboolean
flag_set (gpointer user_data)
{
  return *(gboolean *) user_data;
}

static void
child_waited_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

/* Sends the queue in a child process (outbox-crash-child) that kills itself with SIGKILL
 * at @crash_at (LB_OUTBOX_CRASH_AT, lb-outbox.c). The store has one writer at a time: the
 * fixture's outbox, writer and store are closed meanwhile, and opened again after. */
static void
send_in_child_killed_at (Fixture    *f,
                         const char *crash_at)
{
  g_autofree char *exe = g_test_build_filename (G_TEST_BUILT, "outbox-crash-child", NULL);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autoptr(GSubprocess) child = NULL;
  g_autoptr(GError) error = NULL;
  gboolean exited = FALSE;

  drop_outbox (&f->outbox);
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  g_clear_object (&f->store);

  g_subprocess_launcher_setenv (launcher, "LB_OUTBOX_CRASH_AT", crash_at, TRUE);
  child = g_subprocess_launcher_spawn (launcher, &error, exe, f->dir, NULL);
  g_assert_no_error (error);
  g_subprocess_wait_async (child, NULL, child_waited_cb, &exited);
  g_assert_true (lb_test_wait_until (flag_set, &exited, 60000));
  if (!g_subprocess_get_if_signaled (child))
    g_error ("outbox-crash-child was to be killed at “%s”, but it exited with status %d",
             crash_at, g_subprocess_get_exit_status (child));
  g_assert_cmpint (g_subprocess_get_term_sig (child), ==, SIGKILL);

  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  f->outbox = new_outbox (f, 100);
}

static char *
outbox_row (Fixture    *f,
            const char *columns,
            const char *queue_id)
{
  g_autofree char *sql = g_strdup_printf ("SELECT %s FROM outbox WHERE queue_id = '%s'", columns,
                                          queue_id);

  return lb_test_store_query (f->dir, sql);
}

typedef struct
{
  Fixture *f;
  const char *queue_id;
  const char *message_id;
  const char *notice_subject; /* NULL: no notice expected */
} LeftOver;

/* The Sent copy (and notice) are in, and the row has no mark left. */
static gboolean
left_over_added (gpointer user_data)
{
  LeftOver *w = user_data;
  g_autofree char *marks = outbox_row (w->f, "sent_copy_folder IS NULL AND notice IS NULL",
                                       w->queue_id);
  guint notices = 0;

  if (w->notice_subject != NULL)
    notice_id (w->f, w->notice_subject, &notices);
  return g_strcmp0 (marks, "1") == 0 && store_count (w->f, "work", "sent", w->message_id) == 1 &&
         (w->notice_subject == NULL || notices == 1);
}

/* kill -9 right after the outcome of the server's 250 is committed, before the Sent copy
 * (and, with a recipient refused, the notice) is added: the row is `sent` with both still
 * marked. A new outbox on the store adds them — one Sent copy, one notice — and does not
 * send the message again (no warning, no connection to Postfix, which received it once;
 * bob has it once). With data, bob and a recipient Postfix refuses. */
static void
test_crash_accepted (Fixture       *f,
                     gconstpointer  data)
{
  gboolean partly = data != NULL;
  g_autofree char *id = new_message_id ();
  const char *subject = partly ? "Killed after 250, half" : "Killed after 250";
  g_autoptr(GBytes) message = make_message ("bob@example.test", subject, id, "x\r\n");
  const char *const to_bob[] = { "bob@example.test", NULL };
  const char *const to_both[] = { "bob@example.test", "nobody@example.test", NULL };
  const char *const says[] = { "nobody@example.test", "550", "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autofree char *row = NULL;
  g_autofree char *log = NULL;
  g_autofree char *received = g_strdup_printf ("message-id=<%s>", id);
  g_autoptr(GBytes) copy = NULL;
  LeftOver w = { f, NULL, id, partly ? subject : NULL };
  guint connects;

  save_work_account ();
  queue_id = submit (f, partly ? to_both : to_bob, message);
  w.queue_id = queue_id;
  send_in_child_killed_at (f, "accepted");

  row = outbox_row (f, "state, sent_copy_folder IS NOT NULL, notice IS NOT NULL, "
                       "message IS NOT NULL, attempts", queue_id);
  g_assert_cmpstr (row, ==, partly ? "sent|1|1|1|1" : "sent|1|0|1|1");
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 0);
  g_free (wait_delivered ("bob@example.test", id));
  log = lb_test_servers_dup_log (servers, "postfix");
  connects = count_lines (log, "]: connect from");
  g_assert_cmpuint (count_lines (log, received), ==, 1);
  g_clear_pointer (&log, g_free);

  /* A warning (such as "may arrive twice") would end the test. */
  lb_outbox_start (f->outbox);
  g_assert_true (lb_test_wait_until (left_over_added, &w, 20000));
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 0);
  g_assert_false (lb_outbox_is_sending (f->outbox));
  g_clear_pointer (&row, g_free);
  row = outbox_row (f, "state, message IS NULL, sent_message_id > 0", queue_id);
  g_assert_cmpstr (row, ==, "sent|1|1");
  copy = stored_body (f, store_id (f, "work", "sent", id));
  assert_ends_with (copy, message);
  if (partly)
    {
      guint notices;
      gint64 notice = notice_id (f, subject, &notices);

      g_assert_cmpuint (notices, ==, 1);
      assert_notice (f, notice, id, says);
    }

  /* Sync puts the copy on the server; Postfix never heard of the message again. */
  sync_account (f->writer);
  g_assert_cmpuint (server_count ("alice@example.test", "Sent", id, NULL), ==, 1);
  log = lb_test_servers_dup_log (servers, "postfix");
  g_assert_cmpuint (count_lines (log, "]: connect from"), ==, connects);
  g_assert_cmpuint (count_lines (log, received), ==, 1);
  g_assert_cmpuint (server_count ("bob@example.test", "INBOX", id, NULL), ==, 1);
}

static gboolean
delivered_twice (gpointer user_data)
{
  Delivery *d = user_data;

  if (g_get_monotonic_time () < d->next_check)
    return FALSE;
  d->next_check = g_get_monotonic_time () + 100 * 1000;
  return server_count (d->user, "INBOX", d->message_id, NULL) == 2;
}

/* The window left: kill -9 after the server's 250 but before its outcome is committed.
 * The row is still `sending`, so the next outbox sends it again with the warning, and bob
 * gets it twice (RFC 1047) — what the record in test_crash_accepted() prevents — with
 * still one Sent copy. */
static void
test_crash_replied (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *id = new_message_id ();
  g_autoptr(GBytes) message = make_message ("bob@example.test", "Killed before the record", id,
                                            "x\r\n");
  const char *const to[] = { "bob@example.test", NULL };
  g_autofree char *queue_id = NULL;
  g_autofree char *row = NULL;
  g_autoptr(LbOutboxItem) item = NULL;
  Delivery d = { "bob@example.test", id, 0 };

  save_work_account ();
  queue_id = submit (f, to, message);
  send_in_child_killed_at (f, "replied");
  row = outbox_row (f, "state, sent_copy_folder IS NULL", queue_id);
  g_assert_cmpstr (row, ==, "sending|1");
  g_free (wait_delivered ("bob@example.test", id));

  g_test_expect_message ("lb-outbox", G_LOG_LEVEL_WARNING, "*was being sent*may arrive twice*");
  lb_outbox_start (f->outbox);
  g_test_assert_expected_messages ();
  item = wait_state (f->outbox, queue_id, LB_OUTBOX_STATE_SENT, 2, 30000);
  g_assert_true (lb_test_wait_until (delivered_twice, &d, 60000));
  g_assert_cmpint (store_count (f, "work", "sent", id), ==, 1);
}

/* A gate the writer thread waits at, so that the test decides what queues behind it. */
typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean entered;
  gboolean open;
} Gate;

static gboolean
gate_func (sqlite3  *db,
           gpointer  data,
           GError  **error)
{
  Gate *gate = data;

  g_mutex_lock (&gate->lock);
  gate->entered = TRUE;
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
  return TRUE;
}

static gboolean
gate_entered (gpointer data)
{
  Gate *gate = data;
  gboolean entered;

  g_mutex_lock (&gate->lock);
  entered = gate->entered;
  g_mutex_unlock (&gate->lock);
  return entered;
}

typedef struct
{
  LbStoreWriter *writer;
  guint jobs;
} QueueWait;

static gboolean
queued (gpointer data)
{
  QueueWait *w = data;

  return lb_store_writer_get_queued (w->writer) >= w->jobs;
}

typedef struct
{
  LbOutbox *outbox;
  guint done;
  guint expected;
  GPtrArray *queue_ids;
} Many;

static void
many_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Many *many = user_data;
  g_autoptr(GError) error = NULL;
  char *queue_id = lb_outbox_submit_finish (many->outbox, result, &error);

  g_assert_no_error (error);
  g_ptr_array_add (many->queue_ids, queue_id);
  many->done++;
}

static gboolean
many_done (gpointer data)
{
  Many *many = data;

  return many->done == many->expected;
}

static void
submit_many (Fixture *f,
             Many    *many,
             guint    n)
{
  const char *const to[] = { "bob@example.test", NULL };

  many->expected += n;
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *subject = g_strdup_printf ("Group %u", i);
      g_autoptr(GBytes) message = make_message ("bob@example.test", subject, NULL, "x\r\n");

      lb_outbox_submit_async (f->outbox, "alice@example.test", to, message, NULL, NULL, many_cb,
                              many);
    }
}

/* Submissions waiting together are written in one transaction and made durable by one
 * fsync: 20 of them behind a held writer cost exactly one sync (and one commit), where
 * one each would cost 20. Then 50 at once without holding anything, measured. */
static void
test_group_commit (Fixture       *f,
                   gconstpointer  data)
{
  Gate gate = { 0 };
  QueueWait qw = { f->writer, 40 };
  Many many = { f->outbox, 0, 0, g_ptr_array_new_with_free_func (g_free) };
  g_autoptr(GHashTable) distinct = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  guint64 syncs, commits;
  gint64 start;

  save_work_account ();
  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);
  lb_store_writer_exec_async (f->writer, gate_func, &gate, NULL, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_test_wait_until (gate_entered, &gate, 10000));

  submit_many (f, &many, 20);
  /* Each submission is a row and a flush: 40 jobs wait behind the gate. */
  g_assert_true (lb_test_wait_until (queued, &qw, 20000));
  syncs = lb_store_writer_get_syncs (f->writer);
  commits = lb_store_writer_get_commits (f->writer);
  g_assert_cmpuint (many.done, ==, 0);
  g_mutex_lock (&gate.lock);
  gate.open = TRUE;
  g_cond_broadcast (&gate.cond);
  g_mutex_unlock (&gate.lock);
  lb_store_writer_exec_finish (f->writer, lb_test_wait_result (&w), &error);
  g_assert_no_error (error);
  g_object_unref (w.result);
  g_assert_true (lb_test_wait_until (many_done, &many, 30000));
  g_assert_cmpuint (lb_store_writer_get_syncs (f->writer) - syncs, ==, 1);
  /* The gate's own batch, then all 20 submissions in one. */
  g_assert_cmpuint (lb_store_writer_get_commits (f->writer) - commits, ==, 2);
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 20);
  for (guint i = 0; i < many.queue_ids->len; i++)
    g_hash_table_add (distinct, g_ptr_array_index (many.queue_ids, i));
  g_assert_cmpuint (g_hash_table_size (distinct), ==, 20);

  /* Unheld: as many as arrive while the last fsync runs share the next one. */
  syncs = lb_store_writer_get_syncs (f->writer);
  start = g_get_monotonic_time ();
  submit_many (f, &many, 50);
  g_assert_true (lb_test_wait_until (many_done, &many, 30000));
  g_test_message ("50 concurrent submissions: %" G_GUINT64_FORMAT " fsyncs, %.1f ms in all",
                  lb_store_writer_get_syncs (f->writer) - syncs,
                  (double) (g_get_monotonic_time () - start) / 1000);
  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 70);
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
  g_ptr_array_unref (many.queue_ids);
}

/* Bad input is a clear LB_OUTBOX_ERROR and nothing is queued. */
static void
test_invalid_input (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GBytes) good = make_message ("bob@example.test", "x", NULL, "x\r\n");
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  g_autoptr(GBytes) garbage = g_bytes_new_static ("this is no header\r\n\r\nbody", 27);
  const char *const none[] = { NULL };
  const char *const space[] = { "bob @example.test", NULL };
  const char *const crlf[] = { "bob@example.test\r\nRCPT TO:<eve@example.test>", NULL };
  const char *const angle[] = { "<bob@example.test>", NULL };
  const char *const bare[] = { "bob", NULL };
  const char *const bob[] = { "bob@example.test", NULL };
  const struct
  {
    const char *from;
    const char *const *to;
    GBytes *message;
    const char *account;
    int code;
    const char *says;
  } cases[] = {
    { "alice@example.test", none, good, NULL, LB_OUTBOX_ERROR_INVALID, "no recipient" },
    { "alice@example.test", NULL, good, NULL, LB_OUTBOX_ERROR_INVALID, "no recipient" },
    { "alice@example.test", space, good, NULL, LB_OUTBOX_ERROR_INVALID, "space" },
    { "alice@example.test", crlf, good, NULL, LB_OUTBOX_ERROR_INVALID, "control" },
    { "alice@example.test", angle, good, NULL, LB_OUTBOX_ERROR_INVALID, "angle" },
    { "alice@example.test", bare, good, NULL, LB_OUTBOX_ERROR_INVALID, "bob" },
    { "alice@example.test\n", bob, good, NULL, LB_OUTBOX_ERROR_INVALID, "Sender" },
    { "", bob, good, NULL, LB_OUTBOX_ERROR_INVALID, "empty" },
    { "alice@example.test", bob, empty, NULL, LB_OUTBOX_ERROR_INVALID, "empty" },
    { "alice@example.test", bob, garbage, NULL, LB_OUTBOX_ERROR_INVALID, "header" },
    { "alice@example.test", bob, good, "nope", LB_OUTBOX_ERROR_NO_ACCOUNT, "nope" },
  };

  save_work_account ();
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *queue_id = submit_full (f, f->outbox, cases[i].from, cases[i].to,
                                               cases[i].message, cases[i].account, &error);

      g_assert_null (queue_id);
      g_assert_error (error, LB_OUTBOX_ERROR, cases[i].code);
      if (strstr (error->message, cases[i].says) == NULL)
        g_error ("case %u: “%s” does not say “%s”", i, error->message, cases[i].says);
    }

  /* No account that can send: none at all, or one without SMTP. */
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *queue_id = NULL;
    g_autoptr(LbAccount) account = lb_account_load ("work", &error);

    g_assert_no_error (error);
    lb_account_remove ("work", &error);
    g_assert_no_error (error);
    queue_id = submit_full (f, f->outbox, "alice@example.test", bob, good, NULL, &error);
    g_assert_null (queue_id);
    g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT);
    g_clear_error (&error);
    g_clear_pointer (&account->outgoing, lb_account_server_free);
    save_account (g_steal_pointer (&account));
    queue_id = submit_full (f, f->outbox, "alice@example.test", bob, good, NULL, &error);
    g_assert_null (queue_id);
    g_assert_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT);
    g_assert_nonnull (strstr (error->message, "SMTP"));
  }

  g_assert_cmpuint (lb_outbox_get_pending_count (f->outbox), ==, 0);
  g_assert_cmpint (lb_test_store_query_int (f->dir, "SELECT count(*) FROM outbox"), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = lb_test_make_home ();
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  if (servers->submissions_port == 0)
    {
      g_test_skip ("Postfix needs root to run; the outbox tests need Postfix");
      lb_test_servers_stop (servers);
      return g_test_run ();
    }

#define ADD(path, func) \
  g_test_add ("/outbox/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("send", test_send);
  ADD ("one-connection", test_one_connection);
  ADD ("local-delivery", test_local_delivery);
  ADD ("pop3-sent-copy", test_pop3_sent_copy);
  ADD ("stop-while-sending", test_stop_while_sending);
  ADD ("temporary/port-closed-then-open", test_port_closed_then_open);
  ADD ("temporary/4xx-then-fixed", test_4xx_then_fixed);
  ADD ("temporary/wrong-password", test_wrong_password);
  ADD ("temporary/unreachable-account", test_unreachable_account);
  ADD ("permanent/refused", test_refused);
  ADD ("permanent/partly-refused", test_partly_refused);
  ADD ("permanent/give-up", test_give_up);
  ADD ("cancel-retry", test_cancel_retry);
  ADD ("restart", test_restart);
  ADD ("crash/accepted", test_crash_accepted);
  g_test_add ("/outbox/crash/accepted-partly-refused", Fixture, "partly", fixture_set_up,
              test_crash_accepted, fixture_tear_down);
  ADD ("crash/replied", test_crash_replied);
  ADD ("group-commit", test_group_commit);
  ADD ("invalid-input", test_invalid_input);
#undef ADD

  status = g_test_run ();
  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  return status;
}
