/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>

#include "lb-bus-backend1.h"
#include "lb-store.h"
#include "lb-test-backend.h"
#include "lb-test-sync.h"

/*
 * FetchBody, as the reading pane calls it: letterbox-backend on a private bus syncs an
 * IMAP account whose bodies come on demand (headers only), then one body is fetched
 * through the bus and is in the store when the call returns, exactly RFC822.SIZE bytes,
 * without the message being marked read; a body already there answers at once; an
 * unknown message, the wrong account, a Local Folders message without a body and a
 * message the server no longer has are
 * org.letterbox.Backend1.Error.NotFound; a server that went away is Failed, and the
 * same call works again once it is back (the Retry of the reading pane).
 */

static LbTestServers *servers;
static LbTestBus *bus;
static const char *backend_path;

#define USER "alice@example.test"

typedef struct
{
  char *config_dir;
  char *data_dir;
  char *runtime_dir;
  GSubprocess *backend;
  LbBusBackend1 *proxy;
  guint store_changed;
} Fixture;

static void
write_account (Fixture *f,
               guint16  port)
{
  const LbTestAccount account = { .id = "work", .display_name = "Work", .user = USER,
                                  .port = port, .password = "alice-password",
                                  .bodies = "on-demand" };

  lb_test_write_account (servers, f->config_dir, &account);
}

static void
store_changed_cb (LbBusBackend1 *proxy,
                  const char    *account,
                  gint64         folder,
                  guint64        generation,
                  Fixture       *f)
{
  f->store_changed++;
}

static void
start_backend (Fixture *f)
{
  f->backend = lb_test_spawn_backend_live (f->config_dir, f->data_dir, f->runtime_dir);

  f->proxy = lb_test_backend_proxy_new ();
  g_signal_connect (f->proxy, "store-changed", G_CALLBACK (store_changed_cb), f);
  g_assert_true (lb_test_backend_proxy_wait_owner (f->proxy, 10000));
}

static void
seed (guint n)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *message = g_strdup_printf ("From: Sender <s%u@example.org>\r\n"
                                              "To: " USER "\r\n"
                                              "Subject: On demand %u\r\n"
                                              "Message-ID: <fetch-%u@example.org>\r\n"
                                              "Date: Tue, 2 Jan 2024 09:%02u:00 +0000\r\n"
                                              "\r\n"
                                              "Body of message %u.\r\n",
                                              n, n, n, n % 60, n);

  lb_test_servers_doveadm (servers, message, NULL, &error, "save", "-u", USER, "-m", "INBOX",
                           NULL);
  g_assert_no_error (error);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->config_dir = g_dir_make_tmp ("lb-fetch-config-XXXXXX", &error);
  g_assert_no_error (error);
  f->data_dir = g_dir_make_tmp ("lb-fetch-data-XXXXXX", &error);
  g_assert_no_error (error);
  f->runtime_dir = g_dir_make_tmp ("lb-fetch-run-XXXXXX", &error);
  g_assert_no_error (error);
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "expunge", "-u", USER, "mailbox", "*",
                           "all", NULL);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  if (f->backend != NULL)
    {
      g_assert_cmpint (lb_test_stop_backend (f->backend, 30000), ==, 0);
      g_clear_object (&f->backend);
    }
  g_clear_object (&f->proxy);
  lb_test_remove_tree (f->config_dir);
  lb_test_remove_tree (f->data_dir);
  lb_test_remove_tree (f->runtime_dir);
  g_free (f->config_dir);
  g_free (f->data_dir);
  g_free (f->runtime_dir);
}

typedef struct
{
  Fixture *f;
  gint64 count;
} CountWait;

static gboolean
headers_synced (gpointer user_data)
{
  CountWait *w = user_data;
  gint64 n = 0;

  return lb_test_store_try_query_int (w->f->data_dir,
                                      "SELECT count(*) FROM messages m JOIN folders f ON "
                                      "f.id = m.folder_id WHERE f.account_id = 'work'", &n) &&
         n == w->count;
}

static gint64
message_row (Fixture *f,
             guint    n)
{
  g_autofree char *sql = g_strdup_printf ("SELECT id FROM messages WHERE message_id = "
                                          "'fetch-%u@example.org'", n);

  return lb_test_store_query_int (f->data_dir, sql);
}

/* The stored body through the store's own read path, as the reading pane reads it. */
static GBytes *
stored_body (Fixture *f,
             gint64   id,
             GError **error)
{
  g_autoptr(LbStore) store = lb_store_open (f->data_dir, error);
  g_autoptr(GInputStream) body = NULL;
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  if (store == NULL || (body = lb_store_open_body (store, id, error)) == NULL)
    return NULL;
  if (g_output_stream_splice (out, body, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, error) < 0)
    return NULL;
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

typedef struct
{
  Fixture *f;
  guint before;
} Changed;

static gboolean
store_changed_since (gpointer user_data)
{
  Changed *c = user_data;

  return c->f->store_changed > c->before;
}

static gboolean
fetch_body (Fixture     *f,
            const char  *account,
            gint64       id,
            GError     **error)
{
  return lb_bus_backend1_call_fetch_body_sync (f->proxy, account, id, NULL, error);
}

static void
assert_dbus_error (GError     *error,
                   const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, name) != 0)
    g_error ("expected %s, got %s: %s", name, remote, error->message);
}

static void
test_fetch_body (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  CountWait w = { f, 3 };
  gint64 id2, id3;
  guint changed;

  for (guint n = 1; n <= 3; n++)
    seed (n);
  write_account (f, servers->imaps_port);
  start_backend (f);
  g_assert_true (lb_test_wait_until (headers_synced, &w, 20000));

  /* Headers only: the reading pane would find no body. */
  id2 = message_row (f, 2);
  g_assert_null (stored_body (f, id2, &error));
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* Fetched on demand: in the store when the call returns, byte for byte. */
  changed = f->store_changed;
  g_assert_true (fetch_body (f, "", id2, &error));
  g_assert_no_error (error);
  {
    g_autoptr(GBytes) body = stored_body (f, id2, &error);
    g_autofree char *sql = g_strdup_printf ("SELECT size FROM messages WHERE id = %" G_GINT64_FORMAT,
                                            id2);
    g_autofree char *text = NULL;

    g_assert_no_error (error);
    g_assert_nonnull (body);
    text = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
    g_assert_true (g_str_has_prefix (text, "From: Sender <s2@example.org>\r\n"));
    g_assert_true (g_str_has_suffix (text, "\r\n\r\nBody of message 2.\r\n"));
    /* Exactly the RFC822.SIZE the server announced with the headers. */
    g_assert_cmpint (g_bytes_get_size (body), ==, lb_test_store_query_int (f->data_dir, sql));
  }
  g_assert_cmpint (lb_test_store_query_int (f->data_dir, "SELECT count(*) FROM messages WHERE "
                                                         "body_state = 2 AND message_id LIKE "
                                                         "'fetch-%'"), ==, 1);
  /* Not marked read, here or there. */
  g_assert_cmpint (lb_test_store_query_int (f->data_dir, "SELECT count(*) FROM messages WHERE "
                                                         "flags & 1"), ==, 0);
  {
    g_autofree char *state = lb_test_server_state (servers, USER);

    g_assert_null (strstr (state, "\\Seen"));
  }
  /* Readers hear of it. */
  {
    Changed c = { f, changed };

    g_assert_true (lb_test_wait_until (store_changed_since, &c, 10000));
  }

  /* Again, and with the right account named: at once, nothing changes. */
  g_assert_true (fetch_body (f, "work", id2, &error));
  g_assert_no_error (error);

  /* The Local Folders welcome message has no body anywhere (only its text in the
   * index): there is no server to ask. */
  {
    gint64 local = lb_test_store_query_int (f->data_dir,
                                            "SELECT m.id FROM messages m JOIN folders f ON "
                                            "f.id = m.folder_id WHERE f.account_id = 'local' "
                                            "LIMIT 1");

    g_assert_false (fetch_body (f, "", local, &error));
    assert_dbus_error (error, "org.letterbox.Backend1.Error.NotFound");
    g_clear_error (&error);
  }

  /* Errors a client can tell apart. */
  g_assert_false (fetch_body (f, "", 987654321, &error));
  assert_dbus_error (error, "org.letterbox.Backend1.Error.NotFound");
  g_assert_nonnull (strstr (error->message, "987654321"));
  g_clear_error (&error);

  g_assert_false (fetch_body (f, "home", message_row (f, 1), &error));
  assert_dbus_error (error, "org.letterbox.Backend1.Error.NotFound");
  g_clear_error (&error);

  /* Gone from the server since the headers came. */
  id3 = message_row (f, 3);
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "expunge", "-u", USER, "mailbox", "INBOX",
                           "header", "Message-ID", "fetch-3@example.org", NULL);
  g_assert_no_error (error);
  g_assert_false (fetch_body (f, "", id3, &error));
  assert_dbus_error (error, "org.letterbox.Backend1.Error.NotFound");
  g_clear_error (&error);
  g_assert_null (stored_body (f, id3, &error));
  g_clear_error (&error);

  /* The first message is still fetchable: the failure left the account usable. */
  g_assert_true (fetch_body (f, "", message_row (f, 1), &error));
  g_assert_no_error (error);
}

typedef struct
{
  Fixture *f;
  gint64 id;
  GError *error;
} Retry;

static gboolean
fetch_works (gpointer user_data)
{
  Retry *r = user_data;

  g_clear_error (&r->error);
  return fetch_body (r->f, "", r->id, &r->error);
}

/* A server that does not answer: Failed with a reason, and the same call (the reading
 * pane's Retry) works once the account reaches its server again. */
static void
test_fetch_body_offline (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  CountWait w = { f, 1 };
  Retry r = { f, 0, NULL };

  seed (7);
  write_account (f, servers->imaps_port);
  start_backend (f);
  g_assert_true (lb_test_wait_until (headers_synced, &w, 20000));
  r.id = message_row (f, 7);

  /* Restarted with the account pointing at a port where nothing listens. */
  g_assert_cmpint (lb_test_stop_backend (f->backend, 30000), ==, 0);
  g_clear_object (&f->backend);
  g_clear_object (&f->proxy);
  write_account (f, lb_test_free_port ());
  start_backend (f);

  g_assert_false (fetch_body (f, "", r.id, &error));
  assert_dbus_error (error, "org.letterbox.Backend1.Error.Failed");
  g_assert_cmpstr (error->message, !=, "");
  g_test_message ("offline: %s", error->message);
  g_clear_error (&error);

  /* The account file fixed: the backend picks it up, and FetchBody works again. */
  write_account (f, servers->imaps_port);
  g_assert_true (lb_test_wait_until (fetch_works, &r, 20000));
  g_assert_no_error (r.error);
  {
    g_autoptr(GBytes) body = stored_body (f, r.id, &error);

    g_assert_no_error (error);
    g_assert_nonnull (body);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  backend_path = g_getenv ("LB_BACKEND_PATH");
  g_assert_nonnull (backend_path);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  bus = lb_test_bus_start (NULL);

  g_test_add ("/backend-fetch-body/on-demand", Fixture, NULL, fixture_set_up, test_fetch_body,
              fixture_tear_down);
  g_test_add ("/backend-fetch-body/offline", Fixture, NULL, fixture_set_up,
              test_fetch_body_offline, fixture_tear_down);
  status = g_test_run ();

  lb_test_bus_stop (bus);
  lb_test_servers_stop (servers);
  return status;
}
