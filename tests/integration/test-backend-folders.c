/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-bus-backend1.h"
#include "lb-test-backend.h"
#include "lb-test-sync.h"

/*
 * letterbox-backend on a private bus against Dovecot (issue 8): a sync whose only news is
 * a folder created, renamed or deleted on the server announces it with StoreChanged for
 * folder 0 ("folders themselves changed", org.letterbox.Backend1.xml), so that the app's
 * sidebar shows it; a sync that changes nothing announces nothing.
 */

static LbTestServers *servers;
static LbTestBus *bus;

typedef struct
{
  char *config_dir;
  char *data_dir;
  char *runtime_dir;
  GSubprocess *backend;
  LbBusBackend1 *proxy;
  guint folders_changed;   /* StoreChanged for folder 0 of the account */
  guint any_changed;
} Fixture;

static void
store_changed_cb (LbBusBackend1 *proxy,
                  const char    *account,
                  gint64         folder,
                  guint64        generation,
                  Fixture       *f)
{
  f->any_changed++;
  if (strcmp (account, "work") == 0 && folder == 0)
    f->folders_changed++;
}

static void
doveadm (const char *first,
         ...)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autofree char *script = g_build_filename (g_getenv ("LB_FIXTURES_DIR"), "mailservers.sh",
                                             NULL);
  g_autoptr(GSubprocess) process = NULL;
  va_list ap;

  g_ptr_array_add (args, (gpointer) "bash");
  g_ptr_array_add (args, script);
  g_ptr_array_add (args, (gpointer) "doveadm");
  g_ptr_array_add (args, servers->dir);
  va_start (ap, first);
  for (const char *arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  process = g_subprocess_newv ((const char *const *) args->pdata, G_SUBPROCESS_FLAGS_NONE, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait_check (process, NULL, &error));
  g_assert_no_error (error);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->config_dir = g_dir_make_tmp ("lb-folders-config-XXXXXX", &error);
  g_assert_no_error (error);
  f->data_dir = g_dir_make_tmp ("lb-folders-data-XXXXXX", &error);
  g_assert_no_error (error);
  f->runtime_dir = g_dir_make_tmp ("lb-folders-run-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  if (f->backend != NULL)
    lb_test_stop_backend (f->backend, 30000);
  g_clear_object (&f->backend);
  g_clear_object (&f->proxy);
  lb_test_remove_tree (f->config_dir);
  lb_test_remove_tree (f->data_dir);
  lb_test_remove_tree (f->runtime_dir);
  g_free (f->config_dir);
  g_free (f->data_dir);
  g_free (f->runtime_dir);
}

/* Sync over the bus; returns once the run is over (its StoreChanged, if any, was emitted
 * before the reply, and signals and the reply arrive in order on one connection). */
static void
sync_account (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  const char *accounts[] = { "work", NULL };
  gboolean ok = FALSE;
  g_autoptr(GVariant) state = NULL;

  g_assert_true (lb_bus_backend1_call_sync_sync (f->proxy, accounts,
                                                 g_variant_new ("a{sv}", NULL), &results, NULL,
                                                 &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (results), ==, 1);
  g_variant_get_child (results, 0, "(&s@a{sv})", NULL, &state);
  g_assert_true (g_variant_lookup (state, "ok", "b", &ok));
  g_assert_true (ok);
  /* Let the signals that came before the reply be dispatched. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static gboolean
in_store (Fixture    *f,
          const char *name)
{
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM folders WHERE account_id = "
                                          "'work' AND name = '%s'", name);

  return lb_test_store_query_int (f->data_dir, sql) == 1;
}

static gboolean
online (gpointer data)
{
  Fixture *f = data;
  g_autoptr(GVariant) accounts = NULL;

  if (!lb_bus_backend1_call_list_accounts_sync (f->proxy, &accounts, NULL, NULL))
    return FALSE;
  for (gsize i = 0; i < g_variant_n_children (accounts); i++)
    {
      g_autoptr(GVariant) state = NULL;
      const char *name, *value = NULL;

      g_variant_get_child (accounts, i, "(&s@a{sv})", &name, &state);
      g_variant_lookup (state, "state", "&s", &value);
      if (strcmp (name, "work") == 0 && g_strcmp0 (value, "online") == 0)
        return TRUE;
    }
  return FALSE;
}

static void
test_folder_changes (Fixture       *f,
                     gconstpointer  data)
{
  LbTestAccount account = { .id = "work", .protocol = "imap", .user = "carol@example.test",
                            .port = servers->imaps_port, .password = "carol-password" };
  guint before;

  lb_test_write_account (servers, f->config_dir, &account);
  f->backend = lb_test_spawn_backend_live (f->config_dir, f->data_dir, f->runtime_dir);
  f->proxy = lb_test_backend_proxy_new ();
  g_signal_connect (f->proxy, "store-changed", G_CALLBACK (store_changed_cb), f);
  g_assert_true (lb_test_backend_proxy_wait_owner (f->proxy, 10000));
  g_assert_true (lb_test_wait_until (online, f, 20000));

  /* Nothing new: nothing announced. */
  sync_account (f);
  before = f->any_changed;
  sync_account (f);
  g_assert_cmpuint (f->any_changed, ==, before);

  /* Only a folder created on the server. */
  before = f->folders_changed;
  doveadm ("mailbox", "create", "-u", "carol@example.test", "Receipts", NULL);
  sync_account (f);
  g_assert_true (in_store (f, "Receipts"));
  g_assert_cmpuint (f->folders_changed, >, before);

  /* Renamed there. */
  before = f->folders_changed;
  doveadm ("mailbox", "rename", "-u", "carol@example.test", "Receipts", "Invoices", NULL);
  sync_account (f);
  g_assert_true (in_store (f, "Invoices"));
  g_assert_false (in_store (f, "Receipts"));
  g_assert_cmpuint (f->folders_changed, >, before);

  /* Deleted there. */
  before = f->folders_changed;
  doveadm ("mailbox", "delete", "-u", "carol@example.test", "Invoices", NULL);
  sync_account (f);
  g_assert_false (in_store (f, "Invoices"));
  g_assert_cmpuint (f->folders_changed, >, before);

  g_assert_cmpint (lb_test_stop_backend (f->backend, 30000), ==, 0);
  g_clear_object (&f->backend);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  bus = lb_test_bus_start (NULL);

  g_test_add ("/backend-folders/store-changed", Fixture, NULL, fixture_set_up,
              test_folder_changes, fixture_tear_down);
  status = g_test_run ();

  lb_test_bus_stop (bus);
  lb_test_servers_stop (servers);
  return status;
}
