/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd-service"

#include "config.h"

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <glib/gi18n.h>
#include <string.h>
#include <unistd.h>

#include "lb-bus-backend1.h"
#include "lb-imap-session.h"
#include "lb-mime.h"
#include "lb-mime-envelope.h"
#include "lb-pop3-sync.h"
#include "lbd-service.h"

/* The org.letterbox.Backend1 object: answers for the engine on the session bus. Every
 * method is a thin translation to the scheduler, the store writer or the outbox. */
struct _LbdService
{
  GObject parent_instance;

  LbStore *store;
  LbStoreWriter *writer;
  LbdScheduler *scheduler;
  LbOutbox *outbox;              /* NULL until set */
  LbBusBackend1 *skeleton;
  gint64 started_at;
  char *relay_socket;
  guint16 relay_port;
};

G_DEFINE_FINAL_TYPE (LbdService, lbd_service, G_TYPE_OBJECT)

#define ERROR_NOT_FOUND "org.letterbox.Backend1.Error.NotFound"
#define ERROR_BUSY "org.letterbox.Backend1.Error.Busy"
#define ERROR_FAILED "org.letterbox.Backend1.Error.Failed"

/* Our GErrors as D-Bus errors a client can tell apart (and that carry the message). */
static void
return_error (GDBusMethodInvocation *invocation,
              const GError          *error)
{
  const char *name = ERROR_FAILED;

  if (g_error_matches (error, LBD_SCHEDULER_ERROR, LBD_SCHEDULER_ERROR_NOT_FOUND) ||
      g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND) ||
      g_error_matches (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND) ||
      g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_NONEXISTENT) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    name = ERROR_NOT_FOUND;
  else if (g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_BUSY) ||
           g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_ALREADY_SENT) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BUSY) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    name = ERROR_BUSY;
  else if (g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID) ||
           g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA))
    name = "org.freedesktop.DBus.Error.InvalidArgs";
  g_dbus_method_invocation_return_dbus_error (invocation, name, error->message);
}

static gboolean
handle_status (LbBusBackend1         *skeleton,
               GDBusMethodInvocation *invocation,
               gpointer               user_data)
{
  LbdService *self = user_data;
  g_autoptr(GError) error = NULL;
  GVariantDict dict;
  guint n_accounts = 0;
  const char *state = "idle";

  if (!lb_store_count_accounts (self->store, &n_accounts, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  g_variant_dict_init (&dict, NULL);
  if (self->outbox != NULL && lb_outbox_is_sending (self->outbox))
    state = "sending";
  if (lbd_scheduler_is_busy (self->scheduler))
    state = "syncing";
  g_variant_dict_insert (&dict, "version", "s", PACKAGE_VERSION);
  g_variant_dict_insert (&dict, "pid", "u", (guint32) getpid ());
  g_variant_dict_insert (&dict, "uptime", "t",
                         (guint64) ((g_get_monotonic_time () - self->started_at) / G_USEC_PER_SEC));
  g_variant_dict_insert (&dict, "data-dir", "s", lb_store_get_data_dir (self->store));
  g_variant_dict_insert (&dict, "accounts", "u", n_accounts);
  g_variant_dict_insert (&dict, "state", "s", state);
  g_variant_dict_insert (&dict, "outbox", "u",
                         self->outbox != NULL ? lb_outbox_get_pending_count (self->outbox) : 0);
  g_variant_dict_insert (&dict, "relay-socket", "s",
                         self->relay_socket != NULL ? self->relay_socket : "");
  g_variant_dict_insert (&dict, "relay-port", "q", self->relay_port);

  lb_bus_backend1_complete_status (skeleton, invocation, g_variant_dict_end (&dict));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_accounts (LbBusBackend1         *skeleton,
                      GDBusMethodInvocation *invocation,
                      gpointer               user_data)
{
  LbdService *self = user_data;
  g_auto(GStrv) ids = lbd_scheduler_dup_account_ids (self->scheduler);
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sa{sv})"));
  for (guint i = 0; ids[i] != NULL; i++)
    {
      g_autoptr(GVariant) state = lbd_scheduler_dup_account_state (self->scheduler, ids[i]);

      if (state != NULL)
        g_variant_builder_add (&builder, "(s@a{sv})", ids[i], state);
    }
  lb_bus_backend1_complete_list_accounts (skeleton, invocation, g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
sync_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;

  results = lbd_scheduler_sync_finish (LBD_SCHEDULER (source), result, &error);
  if (results == NULL)
    return_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, g_variant_new ("(@a(sa{sv}))", results));
}

static gboolean
handle_sync (LbBusBackend1         *skeleton,
             GDBusMethodInvocation *invocation,
             const char * const    *accounts,
             GVariant              *options,
             gpointer               user_data)
{
  LbdService *self = user_data;
  gboolean headers_only = FALSE;

  g_variant_lookup (options, "headers-only", "b", &headers_only);
  lbd_scheduler_sync_async (self->scheduler, accounts,
                            headers_only ? LB_IMAP_SYNC_HEADERS_ONLY : LB_IMAP_SYNC_NONE, NULL,
                            sync_done_cb, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
sync_all_done_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = lbd_scheduler_sync_finish (LBD_SCHEDULER (source), result, &error);

  if (results == NULL)
    g_message ("SyncAll: %s", error->message);
}

static gboolean
handle_sync_all (LbBusBackend1         *skeleton,
                 GDBusMethodInvocation *invocation,
                 gpointer               user_data)
{
  LbdService *self = user_data;

  lbd_scheduler_sync_async (self->scheduler, NULL, LB_IMAP_SYNC_NONE, NULL, sync_all_done_cb,
                            NULL);
  lb_bus_backend1_complete_sync_all (skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- FetchBody: one body on demand, through the account's own sync object ---------- */

typedef struct
{
  LbdService *self;
  GDBusMethodInvocation *invocation;
  char *wanted_account;          /* as asked, maybe "" */
  gint64 message_id;
  /* Found by the store read. */
  char *account_id;
  gint64 folder_id;
  gboolean downloaded;
} Fetch;

static void
fetch_free (Fetch *fetch)
{
  g_object_unref (fetch->self);
  g_object_unref (fetch->invocation);
  g_free (fetch->wanted_account);
  g_free (fetch->account_id);
  g_free (fetch);
}

/* In a worker thread: where the message is, and whether its body is there already. */
static void
fetch_locate_thread (GTask        *task,
                     gpointer      source,
                     gpointer      task_data,
                     GCancellable *cancellable)
{
  Fetch *fetch = task_data;
  LbStore *store = fetch->self->store;
  g_autoptr(LbStoreMessage) message = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(GInputStream) body = NULL;
  g_autoptr(GError) body_error = NULL;
  GError *error = NULL;

  if ((message = lb_store_get_message (store, fetch->message_id, &error)) == NULL ||
      (folders = lb_store_list_folders (store, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);

      if (lb_folder_get_id (folder) == message->folder_id)
        {
          fetch->account_id = g_strdup (lb_folder_get_account_id (folder));
          fetch->folder_id = message->folder_id;
        }
    }
  if (fetch->account_id == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               _("Message %lld is in no known folder"),
                               (long long) fetch->message_id);
      return;
    }
  body = lb_store_open_body (store, fetch->message_id, &body_error);
  fetch->downloaded = body != NULL;
  if (body == NULL && !g_error_matches (body_error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND))
    {
      g_task_return_error (task, g_steal_pointer (&body_error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
fetch_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Fetch *fetch = user_data;
  g_autoptr(GError) error = NULL;

  if (!lb_imap_sync_fetch_body_finish (LB_IMAP_SYNC (source), result, &error))
    {
      return_error (fetch->invocation, error);
      fetch_free (fetch);
      return;
    }
  lb_bus_backend1_emit_store_changed (fetch->self->skeleton, fetch->account_id, fetch->folder_id,
                                      lb_store_writer_get_commits (fetch->self->writer));
  lb_bus_backend1_complete_fetch_body (fetch->self->skeleton, fetch->invocation);
  fetch_free (fetch);
}

static void
fetch_located_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Fetch *fetch = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) sync = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      return_error (fetch->invocation, error);
      fetch_free (fetch);
      return;
    }
  if (fetch->wanted_account[0] != '\0' && strcmp (fetch->wanted_account, fetch->account_id) != 0)
    {
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("Message %lld is not a message of the account “%s”"),
                   (long long) fetch->message_id, fetch->wanted_account);
      return_error (fetch->invocation, error);
      fetch_free (fetch);
      return;
    }
  if (fetch->downloaded)
    {
      lb_bus_backend1_complete_fetch_body (fetch->self->skeleton, fetch->invocation);
      fetch_free (fetch);
      return;
    }

  if (strcmp (fetch->account_id, LB_STORE_LOCAL_ACCOUNT_ID) == 0)
    {
      /* Local Folders has no server: what it holds is all there is. */
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("Message %lld has no body on any server"), (long long) fetch->message_id);
      return_error (fetch->invocation, error);
      fetch_free (fetch);
      return;
    }
  sync = lbd_scheduler_dup_account_sync (fetch->self->scheduler, fetch->account_id);
  if (sync != NULL && LB_IS_IMAP_SYNC (sync))
    {
      lb_imap_sync_fetch_body_async (LB_IMAP_SYNC (sync), fetch->message_id, NULL,
                                     fetch_done_cb, fetch);
      return;
    }
  if (sync != NULL)
    /* POP3 downloads whole messages or nothing: a row without its body cannot be
     * completed from the server (RFC 1939 has no stable way back to one message but
     * UIDL, and the next sync does that). */
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED,
                 _("The body of message %lld arrives with the next download of account “%s”"),
                 (long long) fetch->message_id, fetch->account_id);
  else
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 _("No account “%s” is synced by this service"), fetch->account_id);
  return_error (fetch->invocation, error);
  fetch_free (fetch);
}

static gboolean
handle_fetch_body (LbBusBackend1         *skeleton,
                   GDBusMethodInvocation *invocation,
                   const char            *account,
                   gint64                 message,
                   gpointer               user_data)
{
  LbdService *self = user_data;
  g_autoptr(GTask) task = NULL;
  Fetch *fetch = g_new0 (Fetch, 1);

  fetch->self = g_object_ref (self);
  fetch->invocation = g_object_ref (invocation);
  fetch->wanted_account = g_strdup (account);
  fetch->message_id = message;
  task = g_task_new (NULL, NULL, fetch_located_cb, fetch);
  g_task_set_source_tag (task, handle_fetch_body);
  /* The Fetch outlives the task: the callback frees it. */
  g_task_set_task_data (task, fetch, NULL);
  g_task_run_in_thread (task, fetch_locate_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- ApplyChanges: one change after another, each through the writer's journal ---- */

typedef struct
{
  LbdService *self;
  GDBusMethodInvocation *invocation;
  GVariant *changes;
  gsize next;
  GPtrArray *folders;            /* LbFolder *, read once */
  GHashTable *touched;           /* account id → TRUE, synced when all is applied */
  char *account_id;              /* of the change in progress */
  gint64 folder_id;              /* the folder it changed */
  gint64 dest_folder_id;         /* a move's destination */
  char op;                       /* of the change in progress: 'f', 'm' or 'x' (expunge) */
} Apply;

static void
apply_free (Apply *apply)
{
  g_object_unref (apply->self);
  g_object_unref (apply->invocation);
  g_variant_unref (apply->changes);
  g_clear_pointer (&apply->folders, g_ptr_array_unref);
  g_hash_table_unref (apply->touched);
  g_free (apply->account_id);
  g_free (apply);
}

static void apply_next (Apply *apply);

static LbFolder *
apply_folder (Apply  *apply,
              gint64  folder_id)
{
  for (guint i = 0; i < apply->folders->len; i++)
    if (lb_folder_get_id (g_ptr_array_index (apply->folders, i)) == folder_id)
      return g_ptr_array_index (apply->folders, i);
  return NULL;
}

static void
apply_fail (Apply        *apply,
            const GError *error)
{
  return_error (apply->invocation, error);
  apply_free (apply);
}

static void
apply_step_done_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Apply *apply = user_data;
  LbStoreWriter *writer = LB_STORE_WRITER (source);
  g_autoptr(GError) error = NULL;
  guint64 generation;
  gboolean ok;

  if (apply->op == 'f')
    ok = lb_store_writer_change_flags_finish (writer, result, &error);
  else if (apply->op == 'm')
    ok = lb_store_writer_move_finish (writer, result, &error);
  else
    ok = lb_store_writer_expunge_finish (writer, result, &error);
  if (!ok)
    {
      apply_fail (apply, error);
      return;
    }
  generation = lb_store_writer_get_commits (apply->self->writer);
  lb_bus_backend1_emit_store_changed (apply->self->skeleton, apply->account_id, apply->folder_id,
                                      generation);
  if (apply->dest_folder_id > 0)
    lb_bus_backend1_emit_store_changed (apply->self->skeleton, apply->account_id,
                                        apply->dest_folder_id, generation);
  g_hash_table_add (apply->touched, g_strdup (apply->account_id));
  apply_next (apply);
}

static gboolean
parse_flags (GVariant        *names,
             LbMessageFlags  *flags,
             GError         **error)
{
  static const struct
  {
    const char *name;
    LbMessageFlags flag;
  } known[] = {
    { "\\Seen", LB_MESSAGE_FLAG_SEEN },
    { "\\Answered", LB_MESSAGE_FLAG_ANSWERED },
    { "\\Flagged", LB_MESSAGE_FLAG_FLAGGED },
    { "\\Draft", LB_MESSAGE_FLAG_DRAFT },
  };
  GVariantIter iter;
  const char *name;

  *flags = 0;
  if (names == NULL)
    return TRUE;
  g_variant_iter_init (&iter, names);
  while (g_variant_iter_next (&iter, "&s", &name))
    {
      guint i;

      for (i = 0; i < G_N_ELEMENTS (known); i++)
        if (g_ascii_strcasecmp (name, known[i].name) == 0)
          break;
      if (i == G_N_ELEMENTS (known))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       _("“%s” is not a flag that can be changed (\\Seen, \\Answered, \\Flagged "
                         "or \\Draft)"), name);
          return FALSE;
        }
      *flags |= known[i].flag;
    }
  return TRUE;
}

static void
apply_next (Apply *apply)
{
  LbdService *self = apply->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) args = NULL;
  g_autoptr(LbStoreMessage) message = NULL;
  const char *op;
  gint64 message_id = 0;
  LbFolder *folder;

  if (apply->next == g_variant_n_children (apply->changes))
    {
      GHashTableIter iter;
      gpointer key;

      /* Replay at once: the server sees the change as soon as it can. */
      g_hash_table_iter_init (&iter, apply->touched);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        lbd_scheduler_kick (self->scheduler, key);
      lb_bus_backend1_complete_apply_changes (self->skeleton, apply->invocation);
      apply_free (apply);
      return;
    }

  g_variant_get_child (apply->changes, apply->next++, "(&s@a{sv})", &op, &args);
  if (!g_variant_lookup (args, "message", "x", &message_id))
    {
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Change %zu (%s) names no message"), apply->next, op);
      apply_fail (apply, error);
      return;
    }
  if ((message = lb_store_get_message (self->store, message_id, &error)) == NULL)
    {
      apply_fail (apply, error);
      return;
    }
  if ((folder = apply_folder (apply, message->folder_id)) == NULL)
    {
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("Message %lld is in no known folder"), (long long) message_id);
      apply_fail (apply, error);
      return;
    }
  g_free (apply->account_id);
  apply->account_id = g_strdup (lb_folder_get_account_id (folder));
  apply->folder_id = lb_folder_get_id (folder);
  apply->dest_folder_id = 0;

  if (strcmp (op, "flags") == 0)
    {
      g_autoptr(GVariant) add = g_variant_lookup_value (args, "add", G_VARIANT_TYPE_STRING_ARRAY);
      g_autoptr(GVariant) remove = g_variant_lookup_value (args, "remove",
                                                           G_VARIANT_TYPE_STRING_ARRAY);
      LbMessageFlags set, clear;

      if (!parse_flags (add, &set, &error) || !parse_flags (remove, &clear, &error))
        {
          apply_fail (apply, error);
          return;
        }
      apply->op = 'f';
      lb_store_writer_change_flags_async (self->writer, message_id, set, clear, NULL,
                                          apply_step_done_cb, apply);
    }
  else if (strcmp (op, "move") == 0 || strcmp (op, "delete") == 0)
    {
      LbFolder *to = NULL;
      gint64 to_id = 0;

      if (op[0] == 'm')
        {
          if (!g_variant_lookup (args, "folder", "x", &to_id) ||
              (to = apply_folder (apply, to_id)) == NULL)
            {
              g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           _("There is no folder %lld"), (long long) to_id);
              apply_fail (apply, error);
              return;
            }
          if (strcmp (lb_folder_get_account_id (to), apply->account_id) != 0)
            {
              g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           _("Message %lld cannot move to another account’s folder"),
                           (long long) message_id);
              apply_fail (apply, error);
              return;
            }
        }
      else
        for (guint i = 0; i < apply->folders->len; i++)
          {
            LbFolder *f = g_ptr_array_index (apply->folders, i);

            if (lb_folder_get_role (f) == LB_FOLDER_ROLE_TRASH &&
                strcmp (lb_folder_get_account_id (f), apply->account_id) == 0)
              to = f;
          }

      if (to != NULL && lb_folder_get_id (to) == apply->folder_id && op[0] == 'm')
        apply_next (apply);   /* already there */
      else if (to != NULL && lb_folder_get_id (to) != apply->folder_id)
        {
          apply->dest_folder_id = lb_folder_get_id (to);
          apply->op = 'm';
          lb_store_writer_move_async (self->writer, message_id, lb_folder_get_id (to), NULL,
                                      apply_step_done_cb, apply);
        }
      else
        {
          apply->op = 'x';
          lb_store_writer_expunge_async (self->writer, message_id, NULL, apply_step_done_cb,
                                         apply);
        }
    }
  else
    {
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not a change (flags, move or delete)"), op);
      apply_fail (apply, error);
    }
}

static gboolean
handle_apply_changes (LbBusBackend1         *skeleton,
                      GDBusMethodInvocation *invocation,
                      GVariant              *changes,
                      gpointer               user_data)
{
  LbdService *self = user_data;
  g_autoptr(GError) error = NULL;
  Apply *apply = g_new0 (Apply, 1);

  apply->self = g_object_ref (self);
  apply->invocation = g_object_ref (invocation);
  apply->changes = g_variant_ref (changes);
  apply->touched = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if ((apply->folders = lb_store_list_folders (self->store, &error)) == NULL)
    {
      apply_fail (apply, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  apply_next (apply);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- The outbox: Submit, ListOutbox, CancelOutbox, RetryOutbox, SendResult ---- */

/* The largest message Submit reads from its file descriptor. */
#define SUBMIT_MAX_SIZE (G_GUINT64_CONSTANT (1) << 30)

typedef struct
{
  LbdService *self;
  GDBusMethodInvocation *invocation;
  GInputStream *input;
  GByteArray *data;
  char *envelope_from;
  GStrv recipients;
  char *account_id;
} Submit;

static void
submit_free (Submit *submit)
{
  g_object_unref (submit->self);
  g_object_unref (submit->invocation);
  g_clear_object (&submit->input);
  g_clear_pointer (&submit->data, g_byte_array_unref);
  g_free (submit->envelope_from);
  g_strfreev (submit->recipients);
  g_free (submit->account_id);
  g_free (submit);
}

static void
submit_fail (Submit       *submit,
             const GError *error)
{
  return_error (submit->invocation, error);
  submit_free (submit);
}

static void
submitted_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Submit *submit = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *queue_id = lb_outbox_submit_finish (LB_OUTBOX (source), result, &error);

  if (queue_id == NULL)
    {
      submit_fail (submit, error);
      return;
    }
  lb_bus_backend1_complete_submit (submit->self->skeleton, submit->invocation, NULL, queue_id);
  submit_free (submit);
}

static void
submit_read_all (Submit *submit)
{
  LbdService *self = submit->self;
  g_autoptr(GBytes) message = g_byte_array_free_to_bytes (g_steal_pointer (&submit->data));
  g_autoptr(LbMimeEnvelope) envelope = NULL;
  g_autoptr(GError) error = NULL;
  const char *from = submit->envelope_from;
  const char *const *recipients = (const char *const *) submit->recipients;

  /* What the call left out, the message's header gives (and Bcc goes). */
  if (from[0] == '\0' || recipients == NULL || recipients[0] == NULL)
    {
      if ((envelope = lb_mime_envelope_from_message (message, &error)) == NULL)
        {
          g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s",
                       (error->domain == LB_MIME_ERROR) ? error->message : _("Unreadable message"));
          submit_fail (submit, error);
          return;
        }
      if (from[0] == '\0')
        from = envelope->sender != NULL ? envelope->sender : "";
      if (recipients == NULL || recipients[0] == NULL)
        {
          recipients = (const char *const *) envelope->recipients;
          g_bytes_unref (message);
          message = g_bytes_ref (envelope->message);
        }
    }
  lb_outbox_submit_async (self->outbox, from, recipients, message, submit->account_id, NULL,
                          submitted_cb, submit);
}

static void
submit_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Submit *submit = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result,
                                                              &error);

  if (chunk == NULL)
    {
      g_prefix_error (&error, _("Cannot read the message: "));
      submit_fail (submit, error);
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      submit_read_all (submit);
      return;
    }
  if (submit->data->len + g_bytes_get_size (chunk) > SUBMIT_MAX_SIZE)
    {
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("The message is larger than %s"), "1 GB");
      submit_fail (submit, error);
      return;
    }
  g_byte_array_append (submit->data, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
  g_input_stream_read_bytes_async (submit->input, 256 * 1024, G_PRIORITY_DEFAULT, NULL,
                                   submit_read_cb, submit);
}

static gboolean
handle_submit (LbBusBackend1         *skeleton,
               GDBusMethodInvocation *invocation,
               GUnixFDList           *fd_list,
               GVariant              *message,
               const char            *envelope_from,
               const char * const    *recipients,
               GVariant              *options,
               gpointer               user_data)
{
  LbdService *self = user_data;
  g_autoptr(GError) error = NULL;
  Submit *submit;
  int fd;

  if (self->outbox == NULL)
    {
      g_dbus_method_invocation_return_dbus_error (invocation, ERROR_FAILED,
                                                  _("The outbox is not available"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (fd_list == NULL ||
      (fd = g_unix_fd_list_get (fd_list, g_variant_get_handle (message), &error)) < 0)
    {
      g_dbus_method_invocation_return_dbus_error (invocation,
                                                  "org.freedesktop.DBus.Error.InvalidArgs",
                                                  _("Submit needs the message as a file "
                                                    "descriptor"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  submit = g_new0 (Submit, 1);
  submit->self = g_object_ref (self);
  submit->invocation = g_object_ref (invocation);
  submit->input = g_unix_input_stream_new (fd, TRUE);
  submit->data = g_byte_array_new ();
  submit->envelope_from = g_strdup (envelope_from);
  submit->recipients = g_strdupv ((char **) recipients);
  g_variant_lookup (options, "account", "s", &submit->account_id);
  g_input_stream_read_bytes_async (submit->input, 256 * 1024, G_PRIORITY_DEFAULT, NULL,
                                   submit_read_cb, submit);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_outbox (LbBusBackend1         *skeleton,
                    GDBusMethodInvocation *invocation,
                    gpointer               user_data)
{
  LbdService *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) items = NULL;

  if (self->outbox == NULL)
    items = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(sa{sv})"), NULL, 0));
  else if ((items = lb_outbox_list_variant (self->outbox, &error)) == NULL)
    {
      return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  lb_bus_backend1_complete_list_outbox (skeleton, invocation, items);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
cancel_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;

  if (!lb_outbox_cancel_finish (LB_OUTBOX (source), result, &error))
    return_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
handle_cancel_outbox (LbBusBackend1         *skeleton,
                      GDBusMethodInvocation *invocation,
                      const char            *queue_id,
                      gpointer               user_data)
{
  LbdService *self = user_data;

  if (self->outbox == NULL)
    {
      g_dbus_method_invocation_return_dbus_error (invocation, ERROR_NOT_FOUND,
                                                  _("The outbox is not available"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  lb_outbox_cancel_async (self->outbox, queue_id, NULL, cancel_done_cb,
                          g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
retry_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;

  if (!lb_outbox_retry_finish (LB_OUTBOX (source), result, &error))
    return_error (invocation, error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
handle_retry_outbox (LbBusBackend1         *skeleton,
                     GDBusMethodInvocation *invocation,
                     const char            *queue_id,
                     gpointer               user_data)
{
  LbdService *self = user_data;

  if (self->outbox == NULL)
    {
      g_dbus_method_invocation_return_dbus_error (invocation, ERROR_NOT_FOUND,
                                                  _("The outbox is not available"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  lb_outbox_retry_async (self->outbox, queue_id[0] != '\0' ? queue_id : NULL, NULL,
                         retry_done_cb, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
outbox_sent_cb (LbOutbox   *outbox,
                const char *queue_id,
                gpointer    user_data)
{
  LbdService *self = user_data;

  lb_bus_backend1_emit_send_result (self->skeleton, queue_id, TRUE, "", FALSE);
}

static void
outbox_failed_cb (LbOutbox   *outbox,
                  const char *queue_id,
                  const char *message,
                  gboolean    permanent,
                  gpointer    user_data)
{
  LbdService *self = user_data;

  lb_bus_backend1_emit_send_result (self->skeleton, queue_id, FALSE,
                                    message != NULL ? message : "", permanent);
}

void
lbd_service_set_outbox (LbdService *self,
                        LbOutbox   *outbox)
{
  g_return_if_fail (LBD_IS_SERVICE (self));
  g_return_if_fail (LB_IS_OUTBOX (outbox));

  g_set_object (&self->outbox, outbox);
  g_signal_connect_object (outbox, "sent", G_CALLBACK (outbox_sent_cb), self, 0);
  g_signal_connect_object (outbox, "failed", G_CALLBACK (outbox_failed_cb), self, 0);
}

/* ---- The scheduler's signals, on the bus ---- */

static void
account_changed_cb (LbdScheduler *scheduler,
                    const char   *account_id,
                    gpointer      user_data)
{
  LbdService *self = user_data;
  g_autoptr(GVariant) state = lbd_scheduler_dup_account_state (scheduler, account_id);

  if (state != NULL)
    lb_bus_backend1_emit_account_changed (self->skeleton, account_id, state);
}

static void
progress_cb (LbdScheduler *scheduler,
             const char   *account_id,
             const char   *folder,
             guint         done,
             guint         total,
             gpointer      user_data)
{
  LbdService *self = user_data;

  lb_bus_backend1_emit_sync_progress (self->skeleton, account_id, folder != NULL ? folder : "",
                                      done, total);
}

static void
store_changed_cb (LbdScheduler *scheduler,
                  const char   *account_id,
                  gint64        folder_id,
                  gpointer      user_data)
{
  LbdService *self = user_data;

  lb_bus_backend1_emit_store_changed (self->skeleton, account_id, folder_id,
                                      lb_store_writer_get_commits (self->writer));
}

static void
new_mail_cb (LbdScheduler *scheduler,
             const char   *account_id,
             gint64        folder_id,
             GVariant     *summaries,
             gpointer      user_data)
{
  LbdService *self = user_data;

  lb_bus_backend1_emit_new_mail (self->skeleton, account_id, folder_id, summaries);
}

static void
lbd_service_dispose (GObject *object)
{
  LbdService *self = LBD_SERVICE (object);

  lbd_service_unexport (self);
  if (self->scheduler != NULL)
    g_signal_handlers_disconnect_by_data (self->scheduler, self);
  g_clear_object (&self->skeleton);
  g_clear_object (&self->scheduler);
  g_clear_object (&self->outbox);
  g_clear_object (&self->writer);
  g_clear_object (&self->store);
  g_clear_pointer (&self->relay_socket, g_free);

  G_OBJECT_CLASS (lbd_service_parent_class)->dispose (object);
}

static void
lbd_service_class_init (LbdServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = lbd_service_dispose;
}

static void
lbd_service_init (LbdService *self)
{
  self->started_at = g_get_monotonic_time ();
  self->skeleton = lb_bus_backend1_skeleton_new ();
  lb_bus_backend1_set_version (self->skeleton, PACKAGE_VERSION);
  g_signal_connect (self->skeleton, "handle-status", G_CALLBACK (handle_status), self);
  g_signal_connect (self->skeleton, "handle-list-accounts", G_CALLBACK (handle_list_accounts),
                    self);
  g_signal_connect (self->skeleton, "handle-sync", G_CALLBACK (handle_sync), self);
  g_signal_connect (self->skeleton, "handle-sync-all", G_CALLBACK (handle_sync_all), self);
  g_signal_connect (self->skeleton, "handle-apply-changes", G_CALLBACK (handle_apply_changes),
                    self);
  g_signal_connect (self->skeleton, "handle-submit", G_CALLBACK (handle_submit), self);
  g_signal_connect (self->skeleton, "handle-list-outbox", G_CALLBACK (handle_list_outbox), self);
  g_signal_connect (self->skeleton, "handle-cancel-outbox", G_CALLBACK (handle_cancel_outbox),
                    self);
  g_signal_connect (self->skeleton, "handle-retry-outbox", G_CALLBACK (handle_retry_outbox),
                    self);
  g_signal_connect (self->skeleton, "handle-fetch-body", G_CALLBACK (handle_fetch_body), self);
}

LbdService *
lbd_service_new (LbStore       *store,
                 LbStoreWriter *writer,
                 LbdScheduler  *scheduler)
{
  LbdService *self;

  g_return_val_if_fail (LB_IS_STORE (store), NULL);
  g_return_val_if_fail (LB_IS_STORE_WRITER (writer), NULL);
  g_return_val_if_fail (LBD_IS_SCHEDULER (scheduler), NULL);

  self = g_object_new (LBD_TYPE_SERVICE, NULL);
  self->store = g_object_ref (store);
  self->writer = g_object_ref (writer);
  self->scheduler = g_object_ref (scheduler);
  g_signal_connect (scheduler, "account-changed", G_CALLBACK (account_changed_cb), self);
  g_signal_connect (scheduler, "progress", G_CALLBACK (progress_cb), self);
  g_signal_connect (scheduler, "store-changed", G_CALLBACK (store_changed_cb), self);
  g_signal_connect (scheduler, "new-mail", G_CALLBACK (new_mail_cb), self);
  return self;
}

LbBusBackend1 *
lbd_service_get_skeleton (LbdService *self)
{
  g_return_val_if_fail (LBD_IS_SERVICE (self), NULL);
  return self->skeleton;
}

void
lbd_service_set_relay (LbdService *self,
                       const char *socket_path,
                       guint16     port)
{
  g_return_if_fail (LBD_IS_SERVICE (self));
  g_free (self->relay_socket);
  self->relay_socket = g_strdup (socket_path);
  self->relay_port = port;
}

gboolean
lbd_service_export (LbdService       *self,
                    GDBusConnection  *connection,
                    GError          **error)
{
  g_return_val_if_fail (LBD_IS_SERVICE (self), FALSE);

  return g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton),
                                           connection, LB_BACKEND_OBJECT_PATH, error);
}

void
lbd_service_unexport (LbdService *self)
{
  g_return_if_fail (LBD_IS_SERVICE (self));

  if (self->skeleton != NULL &&
      g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (self->skeleton)))
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
}
