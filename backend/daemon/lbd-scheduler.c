/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd-scheduler"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "lb-account.h"
#include "lb-connection.h"
#include "lb-imap-session.h"
#include "lb-pop3-session.h"
#include "lb-pop3-sync.h"
#include "lb-sasl.h"
#include "lb-secret.h"
#include "lbd-scheduler.h"

/*
 * The sync scheduler of letterbox-backend: every account is synced at start, then kept
 * up to date — IMAP Inboxes by IDLE, every account by polling — with failures retried
 * after an exponential backoff with jitter, and each account's state (online, syncing,
 * offline, error with a reason) kept for the bus. One sync object per account lives as
 * long as the account does, so its connections (and their login) are reused between runs.
 *
 * Requests while a run is in progress wait for the run after it: a caller of Sync sees
 * every change made before its call.
 */

#define DEFAULT_POLL_SECONDS 300
#define DEFAULT_RETRY_BASE_MS (30 * 1000)
#define MAX_RETRY_MS (30 * 60 * 1000)
#define PENDING_RETRY_MS 200
#define RELOAD_DELAY_MS 200
#define MAX_NEW_MAIL 20

G_DEFINE_QUARK (lbd-scheduler-error-quark, lbd_scheduler_error)

enum
{
  SIGNAL_ACCOUNT_CHANGED,
  SIGNAL_PROGRESS,
  SIGNAL_STORE_CHANGED,
  SIGNAL_NEW_MAIL,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

typedef struct _Account Account;

struct _LbdScheduler
{
  GObject parent_instance;

  LbStore *store;
  LbStoreWriter *writer;
  GHashTable *accounts;          /* id → Account */
  GNetworkMonitor *monitor;
  GFileMonitor *config_monitor;
  guint reload_id;
  guint poll_seconds;
  guint retry_base_ms;
  gboolean started;
  gboolean stopped;
  gboolean network_available;
};

G_DEFINE_FINAL_TYPE (LbdScheduler, lbd_scheduler, G_TYPE_OBJECT)

/* One caller of lbd_scheduler_sync_async(): done when every account it named is. */
typedef struct
{
  GTask *task;
  GPtrArray *ids;
  GVariant **results;            /* per id, once that account's run is done */
  guint pending;
} Request;

/* A Request waiting on one account's run. */
typedef struct
{
  Request *request;
  guint index;
} Waiter;

struct _Account
{
  gatomicrefcount ref;           /* the table's, and one per run in flight */
  gboolean removed;
  LbdScheduler *scheduler;       /* unowned; NULL once removed */
  LbAccount *account;
  char *config;                  /* the account's file as last loaded, to spot edits */
  GObject *sync;                 /* LbImapSync, LbPop3Sync, or NULL (send-only) */
  GCancellable *cancellable;
  gboolean running;
  gboolean again;                /* another run is wanted after this one */
  LbImapSyncFlags run_flags;
  LbImapSyncFlags again_flags;
  GPtrArray *waiters;            /* Waiter *, for the run in progress */
  GPtrArray *next_waiters;       /* Waiter *, for the run after it */
  gboolean watching;
  guint timer_id;
  guint failures;
  gint64 started;                /* monotonic µs */
  /* Shown on the bus. */
  const char *state;             /* "online", "syncing", "offline", "error" */
  char *error;
  const char *error_kind;
  gboolean needs_user_action;
  gint64 last_sync;              /* wall clock, s */
  gint64 next_sync;              /* wall clock, s */
  gint64 inbox_watermark;        /* the highest Inbox message id seen, for NewMail */
  gboolean watermark_set;        /* FALSE until the Inbox was read once: a first sync's
                                  * whole download is not "new mail" */
  gint64 inbox_id;
};

static void account_run (Account *a);
static void account_schedule (Account *a, guint delay_ms);

static void
request_unref_result (Request *request)
{
  for (guint i = 0; i < request->ids->len; i++)
    g_clear_pointer (&request->results[i], g_variant_unref);
  g_free (request->results);
  g_ptr_array_unref (request->ids);
  g_clear_object (&request->task);
  g_free (request);
}

static void
request_complete_one (Request  *request,
                      guint     index,
                      GVariant *result)
{
  g_assert (request->results[index] == NULL);
  request->results[index] = g_variant_ref_sink (result);
  if (--request->pending > 0)
    return;

  {
    GVariantBuilder builder;

    g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sa{sv})"));
    for (guint i = 0; i < request->ids->len; i++)
      g_variant_builder_add (&builder, "(s@a{sv})", (const char *) g_ptr_array_index (request->ids, i),
                             request->results[i]);
    g_task_return_pointer (request->task, g_variant_ref_sink (g_variant_builder_end (&builder)),
                           (GDestroyNotify) g_variant_unref);
  }
  request_unref_result (request);
}

static const char *classify_error (const GError *error,
                                   gboolean     *needs_user_action);

static GVariant *
error_result (const GError *error)
{
  GVariantDict dict;
  gboolean needs_user_action;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "ok", "b", FALSE);
  g_variant_dict_insert (&dict, "error", "s", error->message);
  g_variant_dict_insert (&dict, "error-kind", "s", classify_error (error, &needs_user_action));
  g_variant_dict_insert (&dict, "milliseconds", "u", 0);
  return g_variant_dict_end (&dict);
}

static void
complete_waiters (GPtrArray *waiters,
                  GVariant  *result)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (result);

  for (guint i = 0; i < waiters->len; i++)
    {
      Waiter *waiter = g_ptr_array_index (waiters, i);

      request_complete_one (waiter->request, waiter->index, owned);
    }
  g_ptr_array_set_size (waiters, 0);
}

static Account *
account_ref (Account *a)
{
  g_atomic_ref_count_inc (&a->ref);
  return a;
}

static void
account_unref (Account *a)
{
  if (!g_atomic_ref_count_dec (&a->ref))
    return;
  g_ptr_array_unref (a->waiters);
  g_ptr_array_unref (a->next_waiters);
  g_clear_object (&a->sync);
  g_clear_object (&a->cancellable);
  g_free (a->error);
  g_free (a->config);
  lb_account_free (a->account);
  g_free (a);
}

/* Out of the table: stops everything; a run in flight finds it removed and drops it. */
static void
account_remove (Account *a)
{
  g_autoptr(GError) error = NULL;

  a->removed = TRUE;
  g_clear_handle_id (&a->timer_id, g_source_remove);
  g_cancellable_cancel (a->cancellable);
  if (a->watching)
    lb_imap_sync_unwatch (LB_IMAP_SYNC (a->sync));
  a->watching = FALSE;
  if (a->sync != NULL)
    g_signal_handlers_disconnect_by_data (a->sync, a);

  g_set_error (&error, LBD_SCHEDULER_ERROR, LBD_SCHEDULER_ERROR_STOPPED,
               _("The account “%s” was removed or the service stopped"), a->account->id);
  complete_waiters (a->waiters, error_result (error));
  complete_waiters (a->next_waiters, error_result (error));
  a->scheduler = NULL;
  account_unref (a);
}

static GVariant *
account_state (Account *a)
{
  GVariantDict dict;
  const LbAccount *account = a->account;
  const char *address = lb_account_get_address (account);

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "display-name", "s",
                         account->display_name != NULL ? account->display_name : "");
  g_variant_dict_insert (&dict, "address", "s", address != NULL ? address : "");
  g_variant_dict_insert (&dict, "protocol", "s",
                         account->incoming != NULL
                           ? lb_account_protocol_to_string (account->incoming->protocol)
                           : "none");
  g_variant_dict_insert (&dict, "state", "s", a->state);
  g_variant_dict_insert (&dict, "error", "s", a->error != NULL ? a->error : "");
  g_variant_dict_insert (&dict, "error-kind", "s", a->error_kind != NULL ? a->error_kind : "");
  g_variant_dict_insert (&dict, "needs-user-action", "b", a->needs_user_action);
  g_variant_dict_insert (&dict, "last-sync", "x", a->last_sync);
  g_variant_dict_insert (&dict, "next-sync", "x", a->next_sync);
  g_variant_dict_insert (&dict, "failures", "u", a->failures);
  return g_variant_dict_end (&dict);
}

static void
account_changed (Account *a)
{
  g_signal_emit (a->scheduler, signals[SIGNAL_ACCOUNT_CHANGED], 0, a->account->id);
}

/* What the user can do about an error: wait (a network or server hiccup), or act. */
static const char *
classify_error (const GError *error,
                gboolean     *needs_user_action)
{
  *needs_user_action = FALSE;
  if (g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_AUTH) ||
      g_error_matches (error, LB_POP3_ERROR, LB_POP3_ERROR_AUTH) ||
      g_error_matches (error, LB_SASL_ERROR, LB_SASL_ERROR_FAILED) ||
      g_error_matches (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD) ||
      error->domain == LB_SECRET_ERROR)
    {
      *needs_user_action = TRUE;
      return "auth";
    }
  if (g_error_matches (error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE))
    {
      *needs_user_action = TRUE;
      return "certificate";
    }
  if (error->domain == LB_ACCOUNT_ERROR ||
      g_error_matches (error, LB_SASL_ERROR, LB_SASL_ERROR_NO_MECHANISM) ||
      g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_INSECURE) ||
      g_error_matches (error, LB_POP3_ERROR, LB_POP3_ERROR_INSECURE))
    {
      *needs_user_action = TRUE;
      return "config";
    }
  if (error->domain == LB_NET_ERROR || error->domain == G_IO_ERROR ||
      error->domain == G_RESOLVER_ERROR || error->domain == G_TLS_ERROR)
    return "network";
  return "server";
}

/* Backoff after the @failures-th failure in a row: base × 2^(n-1), capped, ±25 %. */
static guint
retry_delay_ms (LbdScheduler *self,
                guint         failures)
{
  guint64 delay = self->retry_base_ms;

  for (guint i = 1; i < failures && delay < MAX_RETRY_MS; i++)
    delay *= 2;
  delay = MIN (delay, MAX_RETRY_MS);
  delay = delay * (guint64) g_random_int_range (75, 126) / 100;
  return (guint) MAX (delay, 1);
}

/* An account whose servers are all on this machine does not wait for the network. */
static gboolean
account_is_local (Account *a)
{
  const char *host = a->account->incoming != NULL ? a->account->incoming->host : NULL;

  return host != NULL && (strcmp (host, "localhost") == 0 || g_str_has_prefix (host, "127.") ||
                          strcmp (host, "::1") == 0);
}

static gboolean
account_can_run (Account *a)
{
  return a->scheduler->network_available || account_is_local (a);
}

static gint64
find_inbox (Account *a,
            GError **error)
{
  g_autoptr(GPtrArray) folders = lb_store_list_folders (a->scheduler->store, error);

  if (folders == NULL)
    return -1;
  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);

      if (strcmp (lb_folder_get_account_id (folder), a->account->id) == 0 &&
          lb_folder_get_role (folder) == LB_FOLDER_ROLE_INBOX)
        return lb_folder_get_id (folder);
    }
  return 0;
}

/* Reads the newest Inbox messages: with @emit, signals the unread ones above the
 * watermark as NewMail; in any case, raises the watermark. */
static void
check_new_mail (Account *a,
                gboolean emit)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) messages = NULL;
  GVariantBuilder builder;
  gint64 watermark = a->inbox_watermark;
  guint found = 0;

  if (a->inbox_id <= 0 && (a->inbox_id = find_inbox (a, &error)) <= 0)
    return;
  if (!a->watermark_set)
    emit = FALSE;
  messages = lb_store_list_messages (a->scheduler->store, a->inbox_id, 0, 50, &error);
  if (messages == NULL)
    {
      g_warning ("Cannot read the Inbox of %s: %s", a->account->id, error->message);
      return;
    }

  a->watermark_set = TRUE;
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < messages->len; i++)
    {
      LbMessageSummary *m = g_ptr_array_index (messages, i);
      gint64 id = lb_message_summary_get_id (m);

      a->inbox_watermark = MAX (a->inbox_watermark, id);
      if (!emit || id <= watermark || (lb_message_summary_get_flags (m) & LB_MESSAGE_FLAG_SEEN) ||
          found >= MAX_NEW_MAIL)
        continue;
      {
        GVariantDict dict;
        const char *sender = lb_message_summary_get_sender (m);
        const char *subject = lb_message_summary_get_subject (m);

        g_variant_dict_init (&dict, NULL);
        g_variant_dict_insert (&dict, "id", "x", id);
        g_variant_dict_insert (&dict, "from", "s", sender != NULL ? sender : "");
        g_variant_dict_insert (&dict, "subject", "s", subject != NULL ? subject : "");
        g_variant_dict_insert (&dict, "date", "x", lb_message_summary_get_date (m));
        g_variant_builder_add_value (&builder, g_variant_dict_end (&dict));
        found++;
      }
    }
  if (found > 0)
    g_signal_emit (a->scheduler, signals[SIGNAL_NEW_MAIL], 0, a->account->id, a->inbox_id,
                   g_variant_builder_end (&builder));
  else
    g_variant_builder_clear (&builder);
}

static GVariant *
imap_result (const LbImapSyncStats *stats,
             guint                  milliseconds)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "ok", "b", TRUE);
  g_variant_dict_insert (&dict, "error", "s", "");
  g_variant_dict_insert (&dict, "milliseconds", "u", milliseconds);
  g_variant_dict_insert (&dict, "folders", "u", stats->folders);
  g_variant_dict_insert (&dict, "new", "u", stats->new_messages);
  g_variant_dict_insert (&dict, "bodies", "u", stats->bodies);
  g_variant_dict_insert (&dict, "flag-changes", "u", stats->flag_updates);
  g_variant_dict_insert (&dict, "removed", "u", stats->expunged);
  g_variant_dict_insert (&dict, "replayed", "u", stats->replayed);
  g_variant_dict_insert (&dict, "dropped", "u", stats->dropped);
  g_variant_dict_insert (&dict, "uidvalidity-resets", "u", stats->uidvalidity_resets);
  g_variant_dict_insert (&dict, "method", "s", stats->method != NULL ? stats->method : "none");
  return g_variant_dict_end (&dict);
}

static GVariant *
pop3_result (const LbPop3SyncStats *stats,
             guint                  milliseconds)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "ok", "b", TRUE);
  g_variant_dict_insert (&dict, "error", "s", "");
  g_variant_dict_insert (&dict, "milliseconds", "u", milliseconds);
  g_variant_dict_insert (&dict, "downloaded", "u", stats->downloaded);
  g_variant_dict_insert (&dict, "already-here", "u", stats->skipped_known);
  g_variant_dict_insert (&dict, "deleted-on-server", "u", stats->deleted_on_server);
  return g_variant_dict_end (&dict);
}

static void
store_changed (Account *a,
               gint64   folder_id)
{
  g_signal_emit (a->scheduler, signals[SIGNAL_STORE_CHANGED], 0, a->account->id, folder_id);
}

static void account_renew_imap_sync (Account *a);

/* The end of one run, good or bad. */
static void
account_run_done (Account  *a,
                  gboolean  changed,
                  GVariant *result,
                  GError   *error)
{
  LbdScheduler *self = a->scheduler;
  g_autoptr(GVariant) owned = g_variant_ref_sink (result);

  a->running = FALSE;
  g_free (a->error);
  a->error = NULL;
  a->error_kind = NULL;
  a->needs_user_action = FALSE;
  if (error == NULL)
    {
      a->failures = 0;
      a->state = "online";
      a->last_sync = g_get_real_time () / G_USEC_PER_SEC;
      if (changed)
        {
          store_changed (a, 0);
          check_new_mail (a, TRUE);
        }
      /* IDLE on the Inbox between polls, once a first run has logged in. */
      if (!a->watching && LB_IS_IMAP_SYNC (a->sync) && !self->stopped)
        {
          lb_imap_sync_watch (LB_IMAP_SYNC (a->sync));
          a->watching = TRUE;
        }
    }
  else
    {
      a->failures++;
      a->state = "error";
      a->error = g_strdup (error->message);
      a->error_kind = classify_error (error, &a->needs_user_action);
      g_message ("Sync of %s failed (%s, attempt %u): %s", a->account->id, a->error_kind,
                 a->failures, error->message);
      /* An IMAP sync's connection pool keeps the password it first logged in with: after a
       * refusal a new one asks again, so a password the user corrected (the app's
       * "Enter Password") is what the next run uses. */
      if (g_strcmp0 (a->error_kind, "auth") == 0 && LB_IS_IMAP_SYNC (a->sync))
        account_renew_imap_sync (a);
    }

  complete_waiters (a->waiters, g_steal_pointer (&owned));

  if (self->stopped)
    return;
  if (a->sync == NULL && !a->again)
    {
      account_changed (a);
      return;
    }
  if (a->again)
    {
      GPtrArray *tmp = a->waiters;

      a->again = FALSE;
      a->waiters = a->next_waiters;
      a->next_waiters = tmp;
      a->run_flags = a->again_flags;
      account_run (a);
      return;
    }
  if (error == NULL)
    account_schedule (a, self->poll_seconds * 1000);
  else if (a->needs_user_action)
    /* A refused password is not retried in a tight loop (servers lock accounts out). */
    account_schedule (a, MAX (retry_delay_ms (self, a->failures), self->poll_seconds * 1000));
  else
    account_schedule (a, retry_delay_ms (self, a->failures));
  account_changed (a);
}

static guint
elapsed_ms (Account *a)
{
  return (guint) ((g_get_monotonic_time () - a->started) / 1000);
}

static gboolean
pending_retry_cb (gpointer user_data)
{
  Account *a = user_data;

  a->timer_id = 0;
  account_run (a);
  return G_SOURCE_REMOVE;
}

/* The IDLE watcher is running an Inbox sync on the same object: this run goes right
 * after it, with the same waiters. */
static void
pending_retry (Account *a)
{
  g_clear_handle_id (&a->timer_id, g_source_remove);
  a->timer_id = g_timeout_add (PENDING_RETRY_MS, pending_retry_cb, a);
}

static void
imap_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Account *a = user_data;
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };
  gboolean changed;

  lb_imap_sync_run_finish (LB_IMAP_SYNC (source), result, &stats, &error);
  if (a->removed)
    ;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING) && !a->scheduler->stopped)
    pending_retry (a);
  else if (error != NULL)
    account_run_done (a, FALSE, error_result (error), error);
  else
    {
      changed = stats.new_messages + stats.bodies + stats.flag_updates + stats.expunged +
                stats.replayed + stats.dropped + stats.uidvalidity_resets +
                stats.folders_changed > 0 ||
                a->last_sync == 0;
      account_run_done (a, changed, imap_result (&stats, elapsed_ms (a)), NULL);
    }
  account_unref (a);
}

static void
pop3_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Account *a = user_data;
  g_autoptr(GError) error = NULL;
  LbPop3SyncStats stats = { 0 };

  lb_pop3_sync_run_finish (LB_POP3_SYNC (source), result, &stats, &error);
  if (a->removed)
    ;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING) && !a->scheduler->stopped)
    pending_retry (a);
  else if (error != NULL)
    account_run_done (a, FALSE, error_result (error), error);
  else
    account_run_done (a, stats.downloaded > 0 || a->last_sync == 0,
                      pop3_result (&stats, elapsed_ms (a)), NULL);
  account_unref (a);
}

static void
account_run (Account *a)
{
  g_clear_handle_id (&a->timer_id, g_source_remove);
  a->running = TRUE;
  a->started = g_get_monotonic_time ();
  a->next_sync = 0;
  if (!a->watermark_set)
    check_new_mail (a, FALSE);

  if (a->sync == NULL)
    {
      LbImapSyncStats none = { 0 };

      a->state = "online";
      account_run_done (a, FALSE, imap_result (&none, 0), NULL);
      return;
    }

  a->state = "syncing";
  account_changed (a);
  if (LB_IS_IMAP_SYNC (a->sync))
    lb_imap_sync_run_async (LB_IMAP_SYNC (a->sync), a->run_flags, a->cancellable, imap_done_cb,
                            account_ref (a));
  else
    lb_pop3_sync_run_async (LB_POP3_SYNC (a->sync), a->cancellable, pop3_done_cb,
                            account_ref (a));
}

static gboolean
timer_cb (gpointer user_data)
{
  Account *a = user_data;

  a->timer_id = 0;
  if (!account_can_run (a))
    {
      a->running = FALSE;
      a->state = "offline";
      a->next_sync = 0;
      account_changed (a);
      return G_SOURCE_REMOVE;
    }
  if (!a->running)
    a->run_flags = LB_IMAP_SYNC_NONE;
  account_run (a);
  return G_SOURCE_REMOVE;
}

static void
account_schedule (Account *a,
                  guint    delay_ms)
{
  g_clear_handle_id (&a->timer_id, g_source_remove);
  a->next_sync = g_get_real_time () / G_USEC_PER_SEC + delay_ms / 1000;
  a->timer_id = g_timeout_add (delay_ms, timer_cb, a);
}

/* A run for @waiter (or nobody): now, or after the one in progress. */
static void
account_request (Account         *a,
                 LbImapSyncFlags  flags,
                 Waiter          *waiter)
{
  if (a->running)
    {
      /* Headers-only only when every waiter asked for it. */
      a->again_flags = a->again ? (a->again_flags & flags) : flags;
      a->again = TRUE;
      if (waiter != NULL)
        g_ptr_array_add (a->next_waiters, waiter);
      return;
    }
  if (waiter != NULL)
    g_ptr_array_add (a->waiters, waiter);
  a->run_flags = flags;
  account_run (a);
}

static void
progress_cb (LbImapSync *sync,
             const char *folder,
             guint       done,
             guint       total,
             gpointer    user_data)
{
  Account *a = user_data;

  g_signal_emit (a->scheduler, signals[SIGNAL_PROGRESS], 0, a->account->id, folder, done, total);
}

static void
pop3_progress_cb (LbPop3Sync *sync,
                  guint       done,
                  guint       total,
                  gpointer    user_data)
{
  Account *a = user_data;

  g_signal_emit (a->scheduler, signals[SIGNAL_PROGRESS], 0, a->account->id, "INBOX", done, total);
}

static void
inbox_synced_cb (LbImapSync   *sync,
                 const GError *error,
                 gpointer      user_data)
{
  Account *a = user_data;

  if (error != NULL)
    {
      g_message ("IDLE sync of %s failed: %s", a->account->id, error->message);
      return;
    }
  store_changed (a, a->inbox_id > 0 ? a->inbox_id : 0);
  check_new_mail (a, TRUE);
}

/* A new LbImapSync for the account, in place of the one it has (not running). */
static void
account_renew_imap_sync (Account *a)
{
  if (a->watching)
    lb_imap_sync_unwatch (LB_IMAP_SYNC (a->sync));
  a->watching = FALSE;
  g_signal_handlers_disconnect_by_data (a->sync, a);
  g_object_unref (a->sync);
  a->sync = G_OBJECT (lb_imap_sync_new (a->account, a->scheduler->writer));
  g_signal_connect (a->sync, "progress", G_CALLBACK (progress_cb), a);
  g_signal_connect (a->sync, "inbox-synced", G_CALLBACK (inbox_synced_cb), a);
}

static Account *
account_new (LbdScheduler *self,
             LbAccount    *account,
             char         *config)
{
  Account *a = g_new0 (Account, 1);

  g_atomic_ref_count_init (&a->ref);
  a->scheduler = self;
  a->account = account;
  a->config = config;
  a->cancellable = g_cancellable_new ();
  a->waiters = g_ptr_array_new_with_free_func (g_free);
  a->next_waiters = g_ptr_array_new_with_free_func (g_free);
  a->state = "offline";
  if (account->incoming != NULL && account->incoming->protocol == LB_ACCOUNT_PROTOCOL_IMAP)
    {
      a->sync = G_OBJECT (lb_imap_sync_new (account, self->writer));
      g_signal_connect (a->sync, "progress", G_CALLBACK (progress_cb), a);
      g_signal_connect (a->sync, "inbox-synced", G_CALLBACK (inbox_synced_cb), a);
    }
  else if (account->incoming != NULL)
    {
      a->sync = G_OBJECT (lb_pop3_sync_new (account, self->writer));
      g_signal_connect (a->sync, "progress", G_CALLBACK (pop3_progress_cb), a);
    }
  return a;
}

/* Reads the account files again: new accounts are synced, removed ones stopped, edited
 * ones restarted with their new settings. */
static void
reload_accounts (LbdScheduler *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) all = lb_account_load_all (&error);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer key, value;

  if (all == NULL)
    {
      g_warning ("Cannot read the accounts: %s", error->message);
      return;
    }
  for (guint i = 0; i < all->len; i++)
    {
      LbAccount *account = g_ptr_array_index (all, i);
      g_autofree char *config = lb_account_to_data (account, NULL);
      Account *a = g_hash_table_lookup (self->accounts, account->id);

      g_hash_table_add (seen, account->id);
      if (a != NULL && g_strcmp0 (a->config, config) == 0)
        continue;
      if (a != NULL)
        g_message ("Account %s changed; restarting its sync", account->id);
      else
        g_message ("Account %s added", account->id);
      a = account_new (self, lb_account_copy (account), g_steal_pointer (&config));
      g_hash_table_replace (self->accounts, a->account->id, a);
      if (self->started && !self->stopped)
        {
          if (account_can_run (a))
            account_request (a, LB_IMAP_SYNC_NONE, NULL);
          account_changed (a);
        }
    }

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!g_hash_table_contains (seen, key))
      {
        g_message ("Account %s removed", (const char *) key);
        g_hash_table_iter_remove (&iter);
      }
}

static gboolean
reload_cb (gpointer user_data)
{
  LbdScheduler *self = user_data;

  self->reload_id = 0;
  reload_accounts (self);
  return G_SOURCE_REMOVE;
}

static void
config_changed_cb (GFileMonitor      *monitor,
                   GFile             *file,
                   GFile             *other,
                   GFileMonitorEvent  event,
                   gpointer           user_data)
{
  LbdScheduler *self = user_data;

  /* Editors write in several steps: read once they are done. */
  g_clear_handle_id (&self->reload_id, g_source_remove);
  self->reload_id = g_timeout_add (RELOAD_DELAY_MS, reload_cb, self);
}

static void
network_changed_cb (GNetworkMonitor *monitor,
                    gboolean         available,
                    gpointer         user_data)
{
  LbdScheduler *self = user_data;
  GHashTableIter iter;
  gpointer value;

  if (available == self->network_available)
    return;
  self->network_available = available;
  g_message ("The network is %s", available ? "back" : "gone");

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Account *a = value;

      if (account_is_local (a))
        continue;
      if (available && !a->running)
        {
          /* Back online: sync now rather than at the next poll or retry. */
          a->failures = 0;
          account_request (a, LB_IMAP_SYNC_NONE, NULL);
        }
      else if (!available && !a->running)
        {
          g_clear_handle_id (&a->timer_id, g_source_remove);
          a->state = "offline";
          a->next_sync = 0;
          account_changed (a);
        }
    }
}

static void
lbd_scheduler_dispose (GObject *object)
{
  LbdScheduler *self = LBD_SCHEDULER (object);

  lbd_scheduler_stop (self);
  g_clear_pointer (&self->accounts, g_hash_table_unref);
  g_clear_object (&self->writer);
  g_clear_object (&self->store);

  G_OBJECT_CLASS (lbd_scheduler_parent_class)->dispose (object);
}

static void
lbd_scheduler_class_init (LbdSchedulerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = lbd_scheduler_dispose;

  /* @account_id: its state changed (lbd_scheduler_dup_account_state()) */
  signals[SIGNAL_ACCOUNT_CHANGED] =
    g_signal_new ("account-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /* @account_id, @folder, @done, @total */
  signals[SIGNAL_PROGRESS] =
    g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 4, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_UINT, G_TYPE_UINT);
  /* @account_id, @folder_id (0: several) */
  signals[SIGNAL_STORE_CHANGED] =
    g_signal_new ("store-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT64);
  /* @account_id, @folder_id, @summaries (aa{sv}) */
  signals[SIGNAL_NEW_MAIL] =
    g_signal_new ("new-mail", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_INT64, G_TYPE_VARIANT);
}

static void
lbd_scheduler_init (LbdScheduler *self)
{
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) account_remove);
  self->poll_seconds = DEFAULT_POLL_SECONDS;
  self->retry_base_ms = DEFAULT_RETRY_BASE_MS;
  self->network_available = TRUE;
}

LbdScheduler *
lbd_scheduler_new (LbStore       *store,
                   LbStoreWriter *writer)
{
  LbdScheduler *self;

  g_return_val_if_fail (LB_IS_STORE (store), NULL);
  g_return_val_if_fail (LB_IS_STORE_WRITER (writer), NULL);

  self = g_object_new (LBD_TYPE_SCHEDULER, NULL);
  self->store = g_object_ref (store);
  self->writer = g_object_ref (writer);
  return self;
}

void
lbd_scheduler_set_poll_interval (LbdScheduler *self,
                                 guint         seconds)
{
  g_return_if_fail (LBD_IS_SCHEDULER (self));
  self->poll_seconds = MAX (seconds, 1);
}

void
lbd_scheduler_set_retry_base (LbdScheduler *self,
                              guint         milliseconds)
{
  g_return_if_fail (LBD_IS_SCHEDULER (self));
  self->retry_base_ms = MAX (milliseconds, 1);
}

/* The network monitor to follow instead of GIO's default (for tests); before start. */
void
lbd_scheduler_set_network_monitor (LbdScheduler    *self,
                                   GNetworkMonitor *monitor)
{
  g_return_if_fail (LBD_IS_SCHEDULER (self));
  g_return_if_fail (G_IS_NETWORK_MONITOR (monitor));
  g_return_if_fail (!self->started);

  g_set_object (&self->monitor, monitor);
}

void
lbd_scheduler_start (LbdScheduler *self)
{
  g_autofree char *dir = NULL;
  g_autoptr(GFile) file = NULL;
  g_autoptr(GError) error = NULL;
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (LBD_IS_SCHEDULER (self));
  g_return_if_fail (!self->started);

  self->started = TRUE;
  if (self->monitor == NULL)
    self->monitor = g_object_ref (g_network_monitor_get_default ());
  self->network_available = g_network_monitor_get_network_available (self->monitor);
  g_signal_connect (self->monitor, "network-changed", G_CALLBACK (network_changed_cb), self);

  dir = lb_account_dir ();
  if (g_mkdir_with_parents (dir, 0700) != 0)
    g_warning ("Cannot create %s: %s", dir, g_strerror (errno));
  file = g_file_new_for_path (dir);
  self->config_monitor = g_file_monitor_directory (file, G_FILE_MONITOR_NONE, NULL, &error);
  if (self->config_monitor == NULL)
    g_warning ("Cannot watch %s for account changes: %s", dir, error->message);
  else
    g_signal_connect (self->config_monitor, "changed", G_CALLBACK (config_changed_cb), self);

  reload_accounts (self);
  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Account *a = value;

      if (account_can_run (a))
        account_request (a, LB_IMAP_SYNC_NONE, NULL);
      else
        account_changed (a);
    }
}

void
lbd_scheduler_stop (LbdScheduler *self)
{
  g_return_if_fail (LBD_IS_SCHEDULER (self));

  if (self->stopped)
    return;
  self->stopped = TRUE;
  g_clear_handle_id (&self->reload_id, g_source_remove);
  if (self->monitor != NULL)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_clear_object (&self->monitor);
  if (self->config_monitor != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->config_monitor, self);
      g_file_monitor_cancel (self->config_monitor);
    }
  g_clear_object (&self->config_monitor);
  if (self->accounts != NULL)
    g_hash_table_remove_all (self->accounts);
}

gboolean
lbd_scheduler_is_busy (LbdScheduler *self)
{
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (LBD_IS_SCHEDULER (self), FALSE);

  g_hash_table_iter_init (&iter, self->accounts);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Account *) value)->running)
      return TRUE;
  return FALSE;
}

static int
compare_strings (const void *a,
                 const void *b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

GStrv
lbd_scheduler_dup_account_ids (LbdScheduler *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autofree const char **keys = NULL;
  guint n = 0;

  g_return_val_if_fail (LBD_IS_SCHEDULER (self), NULL);

  keys = (const char **) g_hash_table_get_keys_as_array (self->accounts, &n);
  qsort (keys, n, sizeof (char *), compare_strings);
  for (guint i = 0; i < n; i++)
    g_strv_builder_add (builder, keys[i]);
  return g_strv_builder_end (builder);
}

GVariant *
lbd_scheduler_dup_account_state (LbdScheduler *self,
                                 const char   *account_id)
{
  Account *a;

  g_return_val_if_fail (LBD_IS_SCHEDULER (self), NULL);

  a = g_hash_table_lookup (self->accounts, account_id);
  return a != NULL ? g_variant_ref_sink (account_state (a)) : NULL;
}

void
lbd_scheduler_sync_async (LbdScheduler        *self,
                          const char * const  *account_ids,
                          LbImapSyncFlags      flags,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_auto(GStrv) all = NULL;
  Request *request;

  g_return_if_fail (LBD_IS_SCHEDULER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lbd_scheduler_sync_async);

  if (self->stopped)
    {
      g_task_return_new_error (task, LBD_SCHEDULER_ERROR, LBD_SCHEDULER_ERROR_STOPPED,
                               _("The service is shutting down"));
      return;
    }
  if (account_ids == NULL || account_ids[0] == NULL)
    account_ids = (const char * const *) (all = lbd_scheduler_dup_account_ids (self));
  for (guint i = 0; account_ids[i] != NULL; i++)
    if (!g_hash_table_contains (self->accounts, account_ids[i]))
      {
        g_task_return_new_error (task, LBD_SCHEDULER_ERROR, LBD_SCHEDULER_ERROR_NOT_FOUND,
                                 _("There is no account “%s”"), account_ids[i]);
        return;
      }

  request = g_new0 (Request, 1);
  request->task = g_steal_pointer (&task);
  request->ids = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; account_ids[i] != NULL; i++)
    g_ptr_array_add (request->ids, g_strdup (account_ids[i]));
  request->results = g_new0 (GVariant *, request->ids->len + 1);
  request->pending = request->ids->len;
  if (request->pending == 0)
    {
      g_task_return_pointer (request->task,
                             g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(sa{sv})"),
                                                                      NULL, 0)),
                             (GDestroyNotify) g_variant_unref);
      request_unref_result (request);
      return;
    }

  for (guint i = 0; i < request->ids->len; i++)
    {
      Account *a = g_hash_table_lookup (self->accounts, g_ptr_array_index (request->ids, i));
      Waiter *waiter = g_new0 (Waiter, 1);

      waiter->request = request;
      waiter->index = i;
      /* Asked for explicitly: run even without a network, and say why it fails. */
      a->failures = 0;
      account_request (a, flags, waiter);
    }
}

GVariant *
lbd_scheduler_sync_finish (LbdScheduler  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
lbd_scheduler_kick (LbdScheduler *self,
                    const char   *account_id)
{
  Account *a;

  g_return_if_fail (LBD_IS_SCHEDULER (self));

  a = g_hash_table_lookup (self->accounts, account_id);
  if (a == NULL || self->stopped || !account_can_run (a))
    return;
  account_request (a, LB_IMAP_SYNC_NONE, NULL);
}

/**
 * lbd_scheduler_dup_account_sync:
 *
 * The sync object that serves @account_id for as long as the account lives, so that a
 * body fetched on demand reuses its pooled, logged-in connections.
 *
 * Returns: (transfer full) (nullable): an LbImapSync or LbPop3Sync, or %NULL for an
 *   unknown or send-only account, or once the scheduler stopped
 */
GObject *
lbd_scheduler_dup_account_sync (LbdScheduler *self,
                                const char   *account_id)
{
  Account *a;

  g_return_val_if_fail (LBD_IS_SCHEDULER (self), NULL);

  a = g_hash_table_lookup (self->accounts, account_id);
  if (a == NULL || self->stopped || a->sync == NULL)
    return NULL;
  return g_object_ref (a->sync);
}
