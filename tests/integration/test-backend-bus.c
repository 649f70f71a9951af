/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <signal.h>
#include <string.h>

#include "lb-bus-backend1.h"
#include "lb-store.h"
#include "lb-test-util.h"

/*
 * letterbox-backend and letterbox-ctl over a private session bus (a real dbus-daemon):
 * the backend owns its name and answers Status, a second copy leaves politely, SIGTERM
 * ends it cleanly, the bus can start it on demand from its service file, and the CLI
 * tells the user plainly when no backend runs or no bus exists.
 */

static const char *backend_path;
static const char *ctl_path;

typedef struct
{
  LbTestBus *bus;
  char *data_dir;
  char *config_dir;
  char *runtime_dir;
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->data_dir = g_dir_make_tmp ("lb-backend-store-XXXXXX", &error);
  g_assert_no_error (error);
  /* Activated services inherit the bus's environment, taken from ours at start: the
   * store, the config (the relay's password) and the relay's socket all in the test's
   * directory, never the user's. */
  g_setenv ("LETTERBOX_DATA_DIR", f->data_dir, TRUE);
  f->config_dir = g_build_filename (f->data_dir, "config", NULL);
  f->runtime_dir = g_build_filename (f->data_dir, "run", NULL);
  g_mkdir_with_parents (f->runtime_dir, 0700);
  g_setenv ("LETTERBOX_CONFIG_DIR", f->config_dir, TRUE);
  g_setenv ("XDG_RUNTIME_DIR", f->runtime_dir, TRUE);
  f->bus = lb_test_bus_start (g_getenv ("LB_TEST_SERVICES_DIR"));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  lb_test_bus_stop (f->bus);
  lb_test_remove_tree (f->data_dir);
  g_free (f->data_dir);
  g_free (f->config_dir);
  g_free (f->runtime_dir);
  g_unsetenv ("LETTERBOX_DATA_DIR");
  g_unsetenv ("LETTERBOX_CONFIG_DIR");
  g_unsetenv ("XDG_RUNTIME_DIR");
}

typedef struct
{
  int status;
  char *out;
  char *err;
} Result;

static void
result_clear (Result *r)
{
  g_free (r->out);
  g_free (r->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Result, result_clear)

static void
run_ctl (Result     *r,
         const char *bus_address,
         ...)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *arg;
  va_list ap;

  g_ptr_array_add (argv, (char *) ctl_path);
  va_start (ap, bus_address);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  if (bus_address != NULL)
    g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", bus_address, TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &r->out, &r->err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  r->status = g_subprocess_get_exit_status (proc);
}

static GSubprocess *
spawn_backend (const char *data_dir,
               GError    **error)
{
  return g_subprocess_new (G_SUBPROCESS_FLAGS_STDERR_PIPE, error,
                           backend_path, "--data-dir", data_dir, NULL);
}

static gboolean
backend_owns_name (gpointer user_data)
{
  g_autoptr(GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr(GVariant) reply = NULL;
  gboolean owned = FALSE;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", LB_BACKEND_BUS_NAME),
                                       G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, 1000,
                                       NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return owned == GPOINTER_TO_INT (user_data);
}

static gboolean
subprocess_exited (gpointer user_data)
{
  return g_subprocess_get_identifier (G_SUBPROCESS (user_data)) == NULL;
}

static char *
read_stderr (GSubprocess *proc)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GOutputStream) sink = g_memory_output_stream_new_resizable ();

  g_output_stream_splice (sink, g_subprocess_get_stderr_pipe (proc),
                          G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
  g_assert_no_error (error);
  bytes = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (sink));
  return g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

static void
stop_backend (GSubprocess *backend)
{
  g_subprocess_send_signal (backend, SIGTERM);
  g_assert_true (lb_test_wait_until (subprocess_exited, backend, 20000));
  g_assert_true (g_subprocess_get_if_exited (backend));
  g_assert_cmpint (g_subprocess_get_exit_status (backend), ==, 0);
}

static void
test_status_without_backend (Fixture       *f,
                             gconstpointer  data)
{
  g_auto(Result) r = { 0 };

  g_autofree char *expected = g_strdup_printf ("Store:    %s (no mail store yet)\n", f->data_dir);
  g_autofree char *index = g_build_filename (f->data_dir, "index.db", NULL);

  run_ctl (&r, NULL, "status", NULL);
  g_assert_cmpint (r.status, ==, 3);
  /* One line that says what is wrong; on stdout what the (missing) store holds. */
  g_assert_true (g_str_has_prefix (r.err, "letterbox-ctl: "));
  g_assert_nonnull (strstr (r.err, "not running"));
  g_assert_cmpint (strchr (r.err, '\n') - r.err, ==, strlen (r.err) - 1);
  g_assert_cmpstr (r.out, ==, expected);
  /* Asking must not start the service, nor create a store. */
  g_assert_true (backend_owns_name (GINT_TO_POINTER (FALSE)));
  g_assert_false (g_file_test (index, G_FILE_TEST_EXISTS));
}

/* With a store but no service: its summary, and still status 3. */
static void
test_status_local_summary (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (f->data_dir, &error);
  g_autofree char *json_tail = NULL;
  g_auto(Result) r = { 0 };
  g_auto(Result) json = { 0 };

  g_assert_no_error (error);
  run_ctl (&r, NULL, "status", NULL);
  g_assert_cmpint (r.status, ==, 3);
  g_assert_nonnull (strstr (r.err, "not running"));
  /* Local Folders: four folders and the unread welcome message */
  g_assert_nonnull (strstr (r.out, "Accounts: 1\n"));
  g_assert_nonnull (strstr (r.out, "Folders:  4\n"));
  g_assert_nonnull (strstr (r.out, "Messages: 1 (1 unread)\n"));
  g_assert_nonnull (strstr (r.out, "Pending:  0 offline operations waiting for sync\n"));

  run_ctl (&json, NULL, "--json", "status", NULL);
  g_assert_cmpint (json.status, ==, 3);
  g_assert_true (g_str_has_prefix (json.out, "{\"running\": false, \"data_dir\": \""));
  json_tail = g_strdup_printf ("\"store\": {\"accounts\": 1, \"folders\": 4, \"messages\": 1, "
                               "\"unread\": 1, \"pending\": 0}}\n");
  g_assert_true (g_str_has_suffix (json.out, json_tail));
}

static void
test_status_without_bus (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *address = g_strdup_printf ("unix:path=%s/no-such-bus", f->data_dir);
  g_auto(Result) r = { 0 };

  run_ctl (&r, address, "status", NULL);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.out, ==, "");
  g_assert_true (g_str_has_prefix (r.err, "letterbox-ctl: cannot reach the session bus"));
  g_assert_cmpint (strchr (r.err, '\n') - r.err, ==, strlen (r.err) - 1);
}

static void
test_ctl_usage (Fixture       *f,
                gconstpointer  data)
{
  g_auto(Result) none = { 0 };
  g_auto(Result) unknown = { 0 };
  g_auto(Result) help = { 0 };

  run_ctl (&none, NULL, NULL);
  g_assert_cmpint (none.status, ==, 2);
  g_assert_nonnull (strstr (none.err, "Usage:"));

  run_ctl (&unknown, NULL, "frobnicate", NULL);
  g_assert_cmpint (unknown.status, ==, 2);
  g_assert_nonnull (strstr (unknown.err, "unknown command"));

  run_ctl (&help, NULL, "--help", NULL);
  g_assert_cmpint (help.status, ==, 0);
  g_assert_nonnull (strstr (help.out, "status"));
}

static void
test_status_and_sigterm (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) backend = spawn_backend (f->data_dir, &error);
  g_autoptr(LbBusBackend1) proxy = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariantDict) dict = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autofree char *expected_pid = NULL;
  g_autofree char *expected_store = NULL;
  g_autofree char *log = NULL;
  g_auto(Result) r = { 0 };
  g_auto(Result) after = { 0 };
  const char *data_dir = NULL;
  guint32 pid = 0;
  guint32 accounts = 0;

  g_assert_no_error (error);
  g_assert_true (lb_test_wait_until (backend_owns_name, GINT_TO_POINTER (TRUE), 20000));

  proxy = lb_bus_backend1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION,
                                                  G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                                  LB_BACKEND_BUS_NAME, LB_BACKEND_OBJECT_PATH,
                                                  NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lb_bus_backend1_get_version (proxy), ==, PACKAGE_VERSION);

  lb_bus_backend1_call_status_sync (proxy, &status, NULL, &error);
  g_assert_no_error (error);
  dict = g_variant_dict_new (status);
  g_assert_true (g_variant_dict_lookup (dict, "pid", "u", &pid));
  g_assert_cmpstr (g_subprocess_get_identifier (backend), ==,
                   (expected_pid = g_strdup_printf ("%u", pid)));
  g_assert_true (g_variant_dict_lookup (dict, "data-dir", "&s", &data_dir));
  g_assert_cmpstr (data_dir, ==, f->data_dir);
  g_assert_true (g_variant_dict_lookup (dict, "accounts", "u", &accounts));
  g_assert_cmpuint (accounts, ==, 1);

  run_ctl (&r, NULL, "status", NULL);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_true (g_str_has_prefix (r.out, "letterbox-backend " PACKAGE_VERSION " is running (pid "));
  g_assert_nonnull (strstr (r.out, expected_pid));
  expected_store = g_strdup_printf ("Store:    %s\n", f->data_dir);
  g_assert_nonnull (strstr (r.out, expected_store));
  g_assert_nonnull (strstr (r.out, "Accounts: 1\n"));

  g_clear_object (&proxy);
  stop_backend (backend);
  log = read_stderr (backend);
  g_assert_nonnull (strstr (log, "Shutting down"));
  g_assert_true (lb_test_wait_until (backend_owns_name, GINT_TO_POINTER (FALSE), 20000));

  run_ctl (&after, NULL, "status", NULL);
  g_assert_cmpint (after.status, ==, 3);

  /* The store it wrote opens cleanly afterwards. */
  store = lb_store_open (f->data_dir, &error);
  g_assert_no_error (error);
}

static void
test_second_instance (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) first = spawn_backend (f->data_dir, &error);
  g_autoptr(GSubprocess) second = NULL;
  g_autofree char *second_log = NULL;
  g_autofree char *first_pid_text = NULL;

  g_assert_no_error (error);
  g_assert_true (lb_test_wait_until (backend_owns_name, GINT_TO_POINTER (TRUE), 20000));

  second = spawn_backend (f->data_dir, &error);
  g_assert_no_error (error);
  second_log = read_stderr (second);
  g_subprocess_wait (second, NULL, &error);
  g_assert_no_error (error);

  /* Politely: success, a plain sentence naming the one that runs, and the first keeps
   * the name. */
  g_assert_true (g_subprocess_get_if_exited (second));
  g_assert_cmpint (g_subprocess_get_exit_status (second), ==, 0);
  first_pid_text = g_strdup_printf ("already running (pid %s)",
                                    g_subprocess_get_identifier (first));
  g_assert_nonnull (strstr (second_log, first_pid_text));
  g_assert_nonnull (g_subprocess_get_identifier (first));
  g_assert_true (backend_owns_name (GINT_TO_POINTER (TRUE)));

  stop_backend (first);
}

static void
test_activation (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbBusBackend1) proxy = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariantDict) dict = NULL;
  const char *data_dir = NULL;
  guint32 pid = 0;

  g_assert_true (backend_owns_name (GINT_TO_POINTER (FALSE)));

  /* Calling the method starts the service through data/dbus' service file. */
  proxy = lb_bus_backend1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION,
                                                  G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                                  LB_BACKEND_BUS_NAME, LB_BACKEND_OBJECT_PATH,
                                                  NULL, &error);
  g_assert_no_error (error);
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (proxy), 20000);
  lb_bus_backend1_call_status_sync (proxy, &status, NULL, &error);
  g_assert_no_error (error);

  dict = g_variant_dict_new (status);
  g_assert_true (g_variant_dict_lookup (dict, "pid", "u", &pid));
  g_assert_cmpuint (pid, >, 0);
  g_assert_true (g_variant_dict_lookup (dict, "data-dir", "&s", &data_dir));
  g_assert_cmpstr (data_dir, ==, f->data_dir);

  /* Stop what the bus started, by the PID it reported. */
  g_assert_cmpint (kill ((pid_t) pid, SIGTERM), ==, 0);
  g_assert_true (lb_test_wait_until (backend_owns_name, GINT_TO_POINTER (FALSE), 20000));
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  home = lb_test_make_home ();

  backend_path = g_getenv ("LB_BACKEND_PATH");
  ctl_path = g_getenv ("LB_CTL_PATH");
  g_assert_nonnull (backend_path);
  g_assert_nonnull (ctl_path);

  ADD ("/backend/ctl/usage", test_ctl_usage);
  ADD ("/backend/ctl/status-without-backend", test_status_without_backend);
  ADD ("/backend/ctl/status-local-summary", test_status_local_summary);
  ADD ("/backend/ctl/status-without-bus", test_status_without_bus);
  ADD ("/backend/status-and-sigterm", test_status_and_sigterm);
  ADD ("/backend/second-instance", test_second_instance);
  ADD ("/backend/activation", test_activation);

  status = g_test_run ();
  lb_test_remove_tree (home);
  return status;
}
