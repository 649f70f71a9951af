/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lb-account.h"
#include "lb-connection.h"
#include "lb-imap-sync.h"
#include "lb-mime.h"
#include "lb-pop3-sync.h"
#include "lbctl-commands.h"
#include "lbctl-json.h"

/* letterbox-ctl sync [NAME…] [--headers-only] [--watch]: every named account (or all)
 * synced at once, in-process, one line (or one JSON object) per account. */

typedef struct
{
  LbAccount *account;
  GObject *sync;          /* LbImapSync or LbPop3Sync */
  gint64 started;
  gint64 finished;
  gboolean done;
  GError *error;
  LbImapSyncStats imap;
  LbPop3SyncStats pop3;
  gboolean remote;        /* synced by the background service: sync is NULL */
  char *method;           /* imap.method, owned, when remote */
} Job;

typedef struct
{
  GMainLoop *loop;
  guint running;
  gboolean watch;
  gboolean progress;     /* stderr is a terminal: one updating line per step */
  guint poll_seconds;
  LbImapSyncFlags flags;
} Sync;

static Sync state;

/* LB_SYNC_TRACE: when the command's own steps end, on stderr (see lb-imap-sync.c). */
static void
trace (const char *what)
{
  static gint64 origin;

  if (g_getenv ("LB_SYNC_TRACE") == NULL)
    return;
  if (origin == 0)
    origin = g_get_monotonic_time ();
  g_printerr ("lbctl sync %9.3f ms %s\n", (g_get_monotonic_time () - origin) / 1000.0, what);
}

static void
job_free (Job *job)
{
  lb_account_free (job->account);
  g_free (job->method);
  g_clear_object (&job->sync);
  g_clear_error (&job->error);
  g_free (job);
}

static void
job_done (Job *job)
{
  job->finished = g_get_monotonic_time ();
  job->done = TRUE;
  if (--state.running == 0 && !state.watch)
    g_main_loop_quit (state.loop);
}

static void
imap_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Job *job = user_data;

  lb_imap_sync_run_finish (LB_IMAP_SYNC (source), result, &job->imap, &job->error);
  job_done (job);
}

static void
pop3_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Job *job = user_data;

  lb_pop3_sync_run_finish (LB_POP3_SYNC (source), result, &job->pop3, &job->error);
  job_done (job);
}

static void
print_job (Job *job)
{
  double seconds = (job->finished - job->started) / (double) G_USEC_PER_SEC;

  if (lbctl_json || (job->sync == NULL && !job->remote))
    return;
  if (job->error != NULL)
    {
      lbctl_error ("%s", job->error->message);
      return;
    }
  if (job->account->incoming->protocol == LB_ACCOUNT_PROTOCOL_IMAP)
    /* TRANSLATORS: a summary of one account's sync; the last word says how changes were
     * found (qresync, condstore, uid-diff or none). */
    g_print (_("%s: %u folders, %u new, %u bodies, %u flag changes, %u removed, %u replayed, "
               "%u dropped (%s) in %.3f s\n"),
             job->account->id, job->imap.folders, job->imap.new_messages, job->imap.bodies,
             job->imap.flag_updates, job->imap.expunged, job->imap.replayed, job->imap.dropped,
             job->imap.method, seconds);
  else
    g_print (_("%s: %u downloaded, %u already here, %u deleted on the server in %.3f s\n"),
             job->account->id, job->pop3.downloaded, job->pop3.skipped_known,
             job->pop3.deleted_on_server, seconds);
}

static void
print_json (GPtrArray *jobs)
{
  g_autoptr(LbctlJson) json = lbctl_json_new ();
  char *text;

  lbctl_json_begin_array (json);
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job->sync == NULL && !job->remote)
        continue;
      lbctl_json_begin_object (json);
      lbctl_json_member_string (json, "account", job->account->id);
      lbctl_json_member_string (json, "protocol",
                                lb_account_protocol_to_string (job->account->incoming->protocol));
      lbctl_json_member_boolean (json, "ok", job->error == NULL);
      lbctl_json_member_string (json, "error", job->error != NULL ? job->error->message : NULL);
      lbctl_json_member_int (json, "milliseconds", (job->finished - job->started) / 1000);
      if (job->account->incoming->protocol == LB_ACCOUNT_PROTOCOL_IMAP)
        {
          lbctl_json_member_int (json, "folders", job->imap.folders);
          lbctl_json_member_int (json, "new", job->imap.new_messages);
          lbctl_json_member_int (json, "bodies", job->imap.bodies);
          lbctl_json_member_int (json, "flag_changes", job->imap.flag_updates);
          lbctl_json_member_int (json, "removed", job->imap.expunged);
          lbctl_json_member_int (json, "replayed", job->imap.replayed);
          lbctl_json_member_int (json, "dropped", job->imap.dropped);
          lbctl_json_member_int (json, "uidvalidity_resets", job->imap.uidvalidity_resets);
          lbctl_json_member_string (json, "method", job->imap.method);
        }
      else
        {
          lbctl_json_member_int (json, "downloaded", job->pop3.downloaded);
          lbctl_json_member_int (json, "already_here", job->pop3.skipped_known);
          lbctl_json_member_int (json, "deleted_on_server", job->pop3.deleted_on_server);
        }
      lbctl_json_end_object (json);
    }
  lbctl_json_end_array (json);
  text = lbctl_json_free_to_string (g_steal_pointer (&json));
  g_print ("%s\n", text);
  g_free (text);
}

static void
inbox_synced_cb (LbImapSync   *sync,
                 const GError *error,
                 gpointer      user_data)
{
  Job *job = user_data;

  if (error != NULL)
    lbctl_error ("%s", error->message);
  else if (!lbctl_json)
    g_print (_("%s: Inbox synced after a change on the server\n"), job->account->id);
  fflush (stdout);
}

static void
imap_progress_cb (LbImapSync *sync,
                  const char *folder,
                  guint       done,
                  guint       total,
                  gpointer    user_data)
{
  Job *job = user_data;

  if (total > 0)
    g_printerr ("\r\033[K%s: %s %u/%u", job->account->id, folder, done, total);
  else
    g_printerr ("\r\033[K%s: %s", job->account->id, folder);
}

static void
pop3_progress_cb (LbPop3Sync *sync,
                  guint       done,
                  guint       total,
                  gpointer    user_data)
{
  Job *job = user_data;

  g_printerr ("\r\033[K%s: %u/%u", job->account->id, done, total);
}

static void
poll_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Job *job = user_data;
  g_autoptr(GError) error = NULL;

  if (!lb_imap_sync_run_finish (LB_IMAP_SYNC (source), result, &job->imap, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    lbctl_error ("%s", error->message);
}

/* --watch: the Inbox is pushed by IDLE; every other folder is polled. */
static gboolean
poll_cb (gpointer user_data)
{
  GPtrArray *jobs = user_data;

  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job->sync != NULL && LB_IS_IMAP_SYNC (job->sync))
        lb_imap_sync_run_async (LB_IMAP_SYNC (job->sync), state.flags, NULL, poll_done_cb, job);
      else if (job->sync != NULL)
        lb_pop3_sync_run_async (LB_POP3_SYNC (job->sync), NULL, pop3_done_cb, job);
    }
  return G_SOURCE_CONTINUE;
}

/* Starts the job's sync (again: its connections stay logged in between runs). */
static void
start_job (Job *job)
{
  job->started = g_get_monotonic_time ();
  job->done = FALSE;
  state.running++;
  if (LB_IS_IMAP_SYNC (job->sync))
    lb_imap_sync_run_async (LB_IMAP_SYNC (job->sync), state.flags, NULL, imap_done_cb, job);
  else
    lb_pop3_sync_run_async (LB_POP3_SYNC (job->sync), NULL, pop3_done_cb, job);
}

/* LB_SYNC_REPEAT=N (for bench/imap-sync.sh): the syncs run N times in this process, one
 * line per account each time; the runs after the first show what a sync costs on
 * connections that are already open and logged in, as in the background service. */
static guint
repeat_count (void)
{
  const char *env = g_getenv ("LB_SYNC_REPEAT");
  guint64 n = env != NULL ? g_ascii_strtoull (env, NULL, 10) : 1;

  return (guint) CLAMP (n, 1, 100);
}

static gboolean
stop_cb (gpointer user_data)
{
  g_main_loop_quit (state.loop);
  return G_SOURCE_REMOVE;
}

/* ---- The same, done by the running background service ---- */

static void
remote_progress_cb (LbBusBackend1 *backend,
                    const char    *account,
                    const char    *folder,
                    guint          done,
                    guint          total,
                    gpointer       user_data)
{
  if (total > 0)
    g_printerr ("\r\033[K%s: %s %u/%u", account, folder, done, total);
  else
    g_printerr ("\r\033[K%s: %s", account, folder);
}

static void
remote_new_mail_cb (LbBusBackend1 *backend,
                    const char    *account,
                    gint64         folder,
                    GVariant      *summaries,
                    gpointer       user_data)
{
  guint n = g_variant_n_children (summaries);

  if (lbctl_json)
    return;
  g_print (g_dngettext (GETTEXT_PACKAGE, "%s: %u new message\n", "%s: %u new messages\n", n),
           account, n);
  fflush (stdout);
}

static void
remote_result (Job      *job,
               GVariant *result)
{
  g_autoptr(GVariantDict) dict = g_variant_dict_new (result);
  const char *message = "";
  const char *kind = "";
  gboolean ok = FALSE;
  guint ms = 0;

  job->remote = TRUE;
  g_variant_dict_lookup (dict, "ok", "b", &ok);
  g_variant_dict_lookup (dict, "milliseconds", "u", &ms);
  job->finished = job->started + (gint64) ms * 1000;
  if (!ok)
    {
      gboolean config;

      g_variant_dict_lookup (dict, "error", "&s", &message);
      g_variant_dict_lookup (dict, "error-kind", "&s", &kind);
      /* The exit status a local sync would give: the account's fault, or a server's. */
      config = strcmp (kind, "config") == 0;
      job->error = g_error_new_literal (config ? LB_ACCOUNT_ERROR : LB_NET_ERROR,
                                        config ? LB_ACCOUNT_ERROR_INVALID
                                               : LB_NET_ERROR_UNREACHABLE,
                                        message);
      return;
    }
  g_variant_dict_lookup (dict, "folders", "u", &job->imap.folders);
  g_variant_dict_lookup (dict, "new", "u", &job->imap.new_messages);
  g_variant_dict_lookup (dict, "bodies", "u", &job->imap.bodies);
  g_variant_dict_lookup (dict, "flag-changes", "u", &job->imap.flag_updates);
  g_variant_dict_lookup (dict, "removed", "u", &job->imap.expunged);
  g_variant_dict_lookup (dict, "replayed", "u", &job->imap.replayed);
  g_variant_dict_lookup (dict, "dropped", "u", &job->imap.dropped);
  g_variant_dict_lookup (dict, "uidvalidity-resets", "u", &job->imap.uidvalidity_resets);
  if (g_variant_dict_lookup (dict, "method", "s", &job->method))
    job->imap.method = job->method;
  else
    job->imap.method = "none";
  g_variant_dict_lookup (dict, "downloaded", "u", &job->pop3.downloaded);
  g_variant_dict_lookup (dict, "already-here", "u", &job->pop3.skipped_known);
  g_variant_dict_lookup (dict, "deleted-on-server", "u", &job->pop3.deleted_on_server);
}

/* Asks the service to sync, and prints what it did as a local sync would. With --watch,
 * then follows the new mail it finds until interrupted. */
static int
sync_remote (LbBusBackend1 *backend,
             GPtrArray     *jobs,
             gboolean       headers_only,
             gboolean       watch)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) ids = NULL;
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;
  GVariantDict options;
  int status = LBCTL_EXIT_OK;
  gboolean progress = !lbctl_json && isatty (STDERR_FILENO);
  gint64 started = g_get_monotonic_time ();

  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      job->started = started;
      if (job->account->incoming != NULL)
        g_strv_builder_add (builder, job->account->id);
    }
  ids = g_strv_builder_end (builder);
  if (ids[0] == NULL)
    return LBCTL_EXIT_OK;
  g_variant_dict_init (&options, NULL);
  g_variant_dict_insert (&options, "headers-only", "b", headers_only);
  if (progress)
    g_signal_connect (backend, "sync-progress", G_CALLBACK (remote_progress_cb), NULL);
  if (!lb_bus_backend1_call_sync_sync (backend, (const char * const *) ids,
                                       g_variant_dict_end (&options), &results, NULL, &error))
    return lbctl_fail_remote (error);
  if (progress)
    {
      g_signal_handlers_disconnect_by_func (backend, remote_progress_cb, NULL);
      g_printerr ("\r\033[K");
    }

  for (gsize i = 0; i < g_variant_n_children (results); i++)
    {
      g_autoptr(GVariant) result = NULL;
      const char *id;

      g_variant_get_child (results, i, "(&s@a{sv})", &id, &result);
      for (guint j = 0; j < jobs->len; j++)
        {
          Job *job = g_ptr_array_index (jobs, j);

          if (strcmp (job->account->id, id) == 0 && !job->remote)
            remote_result (job, result);
        }
    }
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      print_job (job);
      if (job->error != NULL && status == LBCTL_EXIT_OK)
        status = lbctl_exit_status (job->error);
    }
  if (lbctl_json)
    print_json (jobs);
  fflush (stdout);

  if (watch)
    {
      /* The service keeps the accounts up to date: follow what it finds. */
      state.loop = g_main_loop_new (NULL, FALSE);
      g_signal_connect (backend, "new-mail", G_CALLBACK (remote_new_mail_cb), NULL);
      g_unix_signal_add (SIGINT, stop_cb, NULL);
      g_unix_signal_add (SIGTERM, stop_cb, NULL);
      g_main_loop_run (state.loop);
      g_clear_pointer (&state.loop, g_main_loop_unref);
    }
  return status;
}

int
lbctl_sync (int    argc,
            char **argv)
{
  static const LbctlCommandHelp help = {
    "sync",
    N_("[NAME…] [--headers-only] [--watch [--poll SECONDS]]"),
    N_("Downloads new mail and changes for the named accounts (all when none is named), all "
       "at once, and replays changes made here while offline.\n"
       "  --headers-only  only the messages' headers, no bodies this time\n"
       "  --watch         then stay, keeping IMAP Inboxes up to date with IDLE and "
       "polling every account, until interrupted\n"
       "  --poll SECONDS  with --watch: how often to poll (default 300)"),
  };
  gboolean headers_only = FALSE;
  gboolean watch = FALSE;
  guint poll_seconds = 300;
  const LbctlOption options[] = {
    { "headers-only", LBCTL_OPTION_FLAG, &headers_only },
    { "watch", LBCTL_OPTION_FLAG, &watch },
    { "poll", LBCTL_OPTION_UINT, &poll_seconds },
    { NULL, 0, NULL },
  };
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func ((GDestroyNotify) job_free);
  g_autoptr(LbStore) store = NULL;
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(GError) error = NULL;
  int status = LBCTL_EXIT_OK;

  trace ("start");
  args = lbctl_parse_args (argc, argv, &help, options, FALSE, &status);
  if (args == NULL)
    return status;

  lb_mime_init ();
  if (args->len == 0)
    {
      g_autoptr(GPtrArray) all = lb_account_load_all (&error);

      if (all == NULL)
        return lbctl_fail (error);
      for (guint i = 0; i < all->len; i++)
        {
          Job *job = g_new0 (Job, 1);

          job->account = lb_account_copy (g_ptr_array_index (all, i));
          g_ptr_array_add (jobs, job);
        }
      if (jobs->len == 0)
        {
          lbctl_error (_("There are no accounts to sync (letterbox-ctl account add …)"));
          return LBCTL_EXIT_NOT_FOUND;
        }
    }
  for (guint i = 0; i < args->len; i++)
    {
      Job *job = g_new0 (Job, 1);

      job->account = lb_account_load (g_ptr_array_index (args, i), &error);
      if (job->account == NULL)
        {
          g_free (job);
          return lbctl_fail (error);
        }
      g_ptr_array_add (jobs, job);
    }

  trace ("accounts loaded");
  if (poll_seconds == 0)
    return lbctl_usage_error ("sync", _("--poll needs a number of seconds above 0"));
  {
    g_autoptr(LbBusBackend1) backend = lbctl_backend ();

    if (backend != NULL)
      return sync_remote (backend, jobs, headers_only, watch);
  }

  store = lbctl_open_store (&error);
  if (store == NULL)
    return lbctl_fail (error);
  trace ("store opened");
  writer = lbctl_open_writer (store, &error);
  if (writer == NULL)
    return lbctl_fail (error);
  trace ("writer opened");

  if (poll_seconds == 0)
    return lbctl_usage_error ("sync", _("--poll needs a number of seconds above 0"));
  state.loop = g_main_loop_new (NULL, FALSE);
  state.watch = watch;
  state.poll_seconds = poll_seconds;
  state.progress = !lbctl_json && isatty (STDERR_FILENO);
  state.flags = headers_only ? LB_IMAP_SYNC_HEADERS_ONLY : LB_IMAP_SYNC_NONE;
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job->account->incoming == NULL)
        continue;
      if (job->account->incoming->protocol == LB_ACCOUNT_PROTOCOL_IMAP)
        {
          job->sync = G_OBJECT (lb_imap_sync_new (job->account, writer));
          if (state.progress)
            g_signal_connect (job->sync, "progress", G_CALLBACK (imap_progress_cb), job);
        }
      else
        {
          job->sync = G_OBJECT (lb_pop3_sync_new (job->account, writer));
          if (state.progress)
            g_signal_connect (job->sync, "progress", G_CALLBACK (pop3_progress_cb), job);
        }
      start_job (job);
    }
  if (state.running > 0 && watch)
    {
      /* The first syncs, then push until SIGINT or SIGTERM. */
      g_unix_signal_add (SIGINT, stop_cb, NULL);
      g_unix_signal_add (SIGTERM, stop_cb, NULL);
      while (state.running > 0)
        g_main_context_iteration (NULL, TRUE);
      if (state.progress)
        g_printerr ("\r\033[K");
      for (guint i = 0; i < jobs->len; i++)
        {
          Job *job = g_ptr_array_index (jobs, i);

          print_job (job);
          if (job->error == NULL && LB_IS_IMAP_SYNC (job->sync))
            {
              g_signal_connect (job->sync, "inbox-synced", G_CALLBACK (inbox_synced_cb), job);
              lb_imap_sync_watch (LB_IMAP_SYNC (job->sync));
            }
        }
      fflush (stdout);
      guint poll = g_timeout_add_seconds (poll_seconds, poll_cb, jobs);

      g_main_loop_run (state.loop);
      g_source_remove (poll);
      for (guint i = 0; i < jobs->len; i++)
        {
          Job *job = g_ptr_array_index (jobs, i);

          if (job->sync != NULL && LB_IS_IMAP_SYNC (job->sync))
            lb_imap_sync_unwatch (LB_IMAP_SYNC (job->sync));
        }
    }
  else if (state.running > 0)
    {
      guint repeat = repeat_count ();

      for (guint run = 0; run < repeat; run++)
        {
          g_autoptr(GPtrArray) ran = g_ptr_array_new ();

          for (guint i = 0; i < jobs->len; i++)
            {
              Job *job = g_ptr_array_index (jobs, i);

              if (run == 0)
                g_ptr_array_add (ran, job);
              else if (job->sync != NULL && job->error == NULL)
                {
                  start_job (job);
                  g_ptr_array_add (ran, job);
                }
            }
          if (state.running == 0)
            break;
          g_main_loop_run (state.loop);
          if (state.progress)
            g_printerr ("\r\033[K");
          for (guint i = 0; i < ran->len; i++)
            print_job (g_ptr_array_index (ran, i));
        }
    }
  if (lbctl_json)
    print_json (jobs);

  /* The first failure decides the exit status; the other accounts were synced anyway. */
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job->error != NULL && status == LBCTL_EXIT_OK)
        status = lbctl_exit_status (job->error);
    }
  trace ("syncs done");
  g_ptr_array_set_size (jobs, 0);
  lb_store_writer_close (writer);
  trace ("writer closed");
  g_clear_pointer (&state.loop, g_main_loop_unref);
  return status;
}
