/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-test-network.h"
#include "lb-test-util.h"
#include "lbd-scheduler.h"

/*
 * The scheduler follows the network: with a GNetworkMonitor the test switches, an account
 * on a remote host waits ("offline", no attempt) while there is no network and is tried
 * at once when it comes back, while an account on this machine (the Dovecot fixture on
 * loopback) keeps syncing throughout.
 */

/* ---- The test ---- */

static LbTestServers *servers;

static void
write_account (const char *dir,
               const char *id,
               const char *host,
               guint16     port)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *accounts = g_build_filename (dir, "accounts", NULL);
  g_autofree char *path = g_strdup_printf ("%s/%s.ini", accounts, id);
  g_autofree char *text = g_strdup_printf ("[account]\n"
                                           "ca-file=%s\n"
                                           "password-command=printf %%s alice-password\n"
                                           "\n"
                                           "[identity]\n"
                                           "address=alice@example.test\n"
                                           "\n"
                                           "[incoming]\n"
                                           "protocol=imap\n"
                                           "security=tls\n"
                                           "host=%s\n"
                                           "port=%u\n"
                                           "user=alice@example.test\n",
                                           servers->ca_file, host, (guint) port);

  g_mkdir_with_parents (accounts, 0700);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

typedef struct
{
  LbdScheduler *scheduler;
  const char *id;
  const char *state;
  guint failures;
} StateWait;

static gboolean
state_is (gpointer user_data)
{
  StateWait *w = user_data;
  g_autoptr(GVariant) state = lbd_scheduler_dup_account_state (w->scheduler, w->id);
  const char *value = "";
  guint failures = 0;

  if (state == NULL)
    return FALSE;
  g_variant_lookup (state, "state", "&s", &value);
  g_variant_lookup (state, "failures", "u", &failures);
  return strcmp (value, w->state) == 0 && failures >= w->failures;
}

static guint
failures_of (LbdScheduler *scheduler,
             const char   *id)
{
  g_autoptr(GVariant) state = lbd_scheduler_dup_account_state (scheduler, id);
  guint failures = 0;

  g_variant_lookup (state, "failures", "u", &failures);
  return failures;
}

static void
sync_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GVariant **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = lbd_scheduler_sync_finish (LBD_SCHEDULER (source), result, &error);
  g_assert_no_error (error);
}

static gboolean
variant_set (gpointer user_data)
{
  return *(GVariant **) user_data != NULL;
}

static void
test_offline_online (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *home = lb_test_make_home ();
  g_autofree char *config = g_build_filename (home, "config", NULL);
  g_autofree char *data = g_build_filename (home, "data", NULL);
  g_autoptr(LbStore) store = NULL;
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(LbdScheduler) scheduler = NULL;
  g_autoptr(LbTestNetworkMonitor) monitor = lb_test_network_monitor_new ();
  g_autoptr(GVariant) results = NULL;
  StateWait remote_offline = { NULL, "remote", "offline", 0 };
  StateWait remote_error = { NULL, "remote", "error", 1 };
  StateWait local_online = { NULL, "local-imap", "online", 0 };

  g_setenv ("LETTERBOX_CONFIG_DIR", config, TRUE);
  /* An address that never resolves (RFC 2606): trying it is a quick network error. */
  write_account (config, "remote", "mail.example.invalid", 993);
  write_account (config, "local-imap", servers->host, servers->imaps_port);

  store = lb_store_open (data, &error);
  g_assert_no_error (error);
  writer = lb_store_writer_new (data, &error);
  g_assert_no_error (error);
  scheduler = lbd_scheduler_new (store, writer);
  lbd_scheduler_set_retry_base (scheduler, 3600 * 1000);   /* no retry on its own here */
  remote_offline.scheduler = remote_error.scheduler = local_online.scheduler = scheduler;

  /* Started offline: the remote account waits without a try; the loopback one syncs. */
  lb_test_network_monitor_set_available (monitor, FALSE);
  lbd_scheduler_set_network_monitor (scheduler, G_NETWORK_MONITOR (monitor));
  lbd_scheduler_start (scheduler);
  g_assert_true (lb_test_wait_until (state_is, &local_online, 20000));
  g_assert_true (state_is (&remote_offline));
  g_assert_cmpuint (failures_of (scheduler, "remote"), ==, 0);

  /* The network comes back: the remote account is tried at once (and fails, as it must
   * for a host that does not exist). */
  lb_test_network_monitor_set_available (monitor, TRUE);
  g_assert_true (lb_test_wait_until (state_is, &remote_error, 20000));

  /* Gone again: the account is offline, and stays without attempts. */
  lb_test_network_monitor_set_available (monitor, FALSE);
  g_assert_true (state_is (&remote_offline));
  {
    guint before = failures_of (scheduler, "remote");

    /* The loopback account still syncs when asked, and the remote one does not run. */
    lbd_scheduler_sync_async (scheduler, (const char *const[]) { "local-imap", NULL },
                              LB_IMAP_SYNC_NONE, NULL, sync_done_cb, &results);
    g_assert_true (lb_test_wait_until (variant_set, &results, 20000));
    g_assert_true (state_is (&local_online));
    g_assert_true (state_is (&remote_offline));
    g_assert_cmpuint (failures_of (scheduler, "remote"), ==, before);
  }

  lbd_scheduler_stop (scheduler);
  lb_store_writer_close (writer);
  g_unsetenv ("LETTERBOX_CONFIG_DIR");
  lb_test_remove_tree (home);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();
  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);

  g_test_add_func ("/scheduler/network/offline-online", test_offline_online);
  status = g_test_run ();

  lb_test_servers_stop (servers);
  return status;
}
