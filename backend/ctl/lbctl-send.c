/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lb-mime.h"
#include "lb-mime-envelope.h"
#include "lb-outbox.h"
#include "lbctl-commands.h"
#include "lbctl-json.h"

/* letterbox-ctl send and outbox: the outbox, through the background service when it runs
 * (Submit, ListOutbox, CancelOutbox, RetryOutbox), else in-process — where a message
 * just queued is also sent before the command returns, since nobody else will. */

/* The largest message read from stdin when working in-process. */
#define MAX_MESSAGE (G_GUINT64_CONSTANT (1) << 30)

typedef struct
{
  LbStore *store;
  LbStoreWriter *writer;
  LbOutbox *outbox;
  LbctlWait wait;
  GMainLoop *loop;
  char *waiting_for;       /* a queue id whose send result ends the wait */
  gboolean sent;
  gboolean permanent;
  char *error;
} Local;

static void
local_clear (Local *l)
{
  if (l->outbox != NULL)
    lb_outbox_stop (l->outbox);
  g_clear_object (&l->outbox);
  if (l->writer != NULL)
    lb_store_writer_close (l->writer);
  g_clear_object (&l->writer);
  g_clear_object (&l->store);
  lbctl_wait_clear (&l->wait);
  g_clear_pointer (&l->loop, g_main_loop_unref);
  g_free (l->waiting_for);
  g_free (l->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Local, local_clear)

static gboolean
local_open (Local  *l,
            int    *status)
{
  g_autoptr(GError) error = NULL;

  lb_mime_init ();
  lbctl_wait_init (&l->wait);
  if ((l->store = lbctl_open_store (&error)) == NULL ||
      (l->writer = lbctl_open_writer (l->store, &error)) == NULL ||
      (l->outbox = lb_outbox_new (l->store, l->writer, &error)) == NULL)
    {
      *status = lbctl_fail (error);
      return FALSE;
    }
  return TRUE;
}

static void
local_sent_cb (LbOutbox   *outbox,
               const char *queue_id,
               Local      *l)
{
  if (g_strcmp0 (queue_id, l->waiting_for) != 0)
    return;
  l->sent = TRUE;
  g_main_loop_quit (l->loop);
}

static void
local_failed_cb (LbOutbox   *outbox,
                 const char *queue_id,
                 const char *message,
                 gboolean    permanent,
                 Local      *l)
{
  if (g_strcmp0 (queue_id, l->waiting_for) != 0)
    return;
  g_free (l->error);
  l->error = g_strdup (message);
  l->permanent = permanent;
  g_main_loop_quit (l->loop);
}

/* Sends what is due, and waits for @queue_id's first result. */
static void
local_send (Local      *l,
            const char *queue_id)
{
  l->loop = g_main_loop_new (NULL, FALSE);
  l->waiting_for = g_strdup (queue_id);
  g_signal_connect (l->outbox, "sent", G_CALLBACK (local_sent_cb), l);
  g_signal_connect (l->outbox, "failed", G_CALLBACK (local_failed_cb), l);
  lb_outbox_start (l->outbox);
  g_main_loop_run (l->loop);
}

static int
local_result (Local      *l,
              const char *queue_id)
{
  if (l->sent)
    {
      g_print (_("Sent %s.\n"), queue_id);
      return LBCTL_EXIT_OK;
    }
  if (l->permanent)
    {
      lbctl_error (_("%s was not sent: %s (a notice with the message is in Local Folders)"),
                   queue_id, l->error);
      return LBCTL_EXIT_SERVER;
    }
  /* Queued, durably: the next run (or the background service) tries again. */
  g_print (_("Queued %s; sending failed for now and will be retried: %s\n"), queue_id,
           l->error != NULL ? l->error : "");
  return LBCTL_EXIT_OK;
}

static GBytes *
read_stdin (GError **error)
{
  g_autoptr(GInputStream) in = g_unix_input_stream_new (STDIN_FILENO, FALSE);
  g_autoptr(GByteArray) data = g_byte_array_new ();

  for (;;)
    {
      g_autoptr(GBytes) chunk = g_input_stream_read_bytes (in, 256 * 1024, NULL, error);

      if (chunk == NULL)
        return NULL;
      if (g_bytes_get_size (chunk) == 0)
        break;
      if (data->len + g_bytes_get_size (chunk) > MAX_MESSAGE)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               _("The message is larger than 1 GB"));
          return NULL;
        }
      g_byte_array_append (data, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&data));
}

/* An outbox or envelope error as an exit status: bad input is the user's (2), no
 * account that can send is "not found" (6). */
static int
send_fail (GError *error)
{
  if (g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT))
    {
      lbctl_error ("%s", error->message);
      return LBCTL_EXIT_NOT_FOUND;
    }
  if (g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID) ||
      error->domain == LB_MIME_ERROR)
    {
      lbctl_error ("%s", error->message);
      return LBCTL_EXIT_USAGE;
    }
  return lbctl_fail (error);
}

static const LbctlCommandHelp send_help = {
  "send", N_("[--account NAME] [--from ADDRESS] [RECIPIENT…] < MESSAGE"),
  N_("Puts the message read from standard input in the outbox and prints its queue id. "
     "Without recipients, those of its To, Cc and Bcc headers (Bcc removed); without "
     "--from, its From address, which also picks the account that sends it unless "
     "--account names one. The outbox keeps it safely until the server takes it: the "
     "background service sends it at once and retries temporary failures; without the "
     "service, this command sends it before it returns. Mail to this computer's user "
     "(user, user@localhost, root…) goes to Local Folders.\n"
     "  --account NAME   send through this account\n"
     "  --from ADDRESS   the envelope sender")
};

int
lbctl_send (int    argc,
            char **argv)
{
  g_autofree char *account = NULL;
  g_autofree char *from = NULL;
  const LbctlOption options[] = {
    { "account", LBCTL_OPTION_STRING, &account },
    { "from", LBCTL_OPTION_STRING, &from },
    { NULL, 0, NULL },
  };
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(LbBusBackend1) backend = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *queue_id = NULL;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &send_help, options, FALSE, &status)) == NULL)
    return status;
  if (isatty (STDIN_FILENO))
    return lbctl_usage_error ("send", _("send reads the message from standard input"));
  g_ptr_array_add (args, NULL);

  if ((backend = lbctl_backend ()) != NULL)
    {
      /* The service reads the message from our stdin itself: no copy in between. */
      g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
      GVariantDict dict;
      int index = g_unix_fd_list_append (fds, STDIN_FILENO, &error);

      if (index < 0)
        return lbctl_fail (error);
      g_variant_dict_init (&dict, NULL);
      if (account != NULL)
        g_variant_dict_insert (&dict, "account", "s", account);
      if (!lb_bus_backend1_call_submit_sync (backend, g_variant_new_handle (index),
                                             from != NULL ? from : "",
                                             (const char *const *) args->pdata,
                                             g_variant_dict_end (&dict), fds, &queue_id, NULL,
                                             NULL, &error))
        return lbctl_fail_remote (error);
      if (lbctl_json)
        g_print ("{\"queue_id\": \"%s\"}\n", queue_id);
      else
        g_print (_("Queued %s.\n"), queue_id);
      return LBCTL_EXIT_OK;
    }

  {
    g_auto(Local) l = { 0 };
    g_autoptr(GBytes) message = NULL;
    g_autoptr(LbMimeEnvelope) envelope = NULL;
    const char *const *recipients = (const char *const *) args->pdata;

    if ((message = read_stdin (&error)) == NULL)
      return lbctl_fail (error);
    if (from == NULL || recipients[0] == NULL)
      {
        if ((envelope = lb_mime_envelope_from_message (message, &error)) == NULL)
          return send_fail (error);
        if (from == NULL)
          from = g_strdup (envelope->sender != NULL ? envelope->sender : "");
        if (recipients[0] == NULL)
          {
            recipients = (const char *const *) envelope->recipients;
            g_bytes_unref (message);
            message = g_bytes_ref (envelope->message);
          }
      }
    if (!local_open (&l, &status))
      return status;
    lb_outbox_submit_async (l.outbox, from, recipients, message, account, NULL, lbctl_wait_cb,
                            &l.wait);
    if ((queue_id = lb_outbox_submit_finish (l.outbox, lbctl_wait_run (&l.wait), &error)) == NULL)
      return send_fail (error);
    if (lbctl_json)
      g_print ("{\"queue_id\": \"%s\"}\n", queue_id);
    if (lb_outbox_get_pending_count (l.outbox) == 0)
      {
        /* Only local recipients: delivered already. */
        if (!lbctl_json)
          g_print (_("Delivered %s to Local Folders.\n"), queue_id);
        return LBCTL_EXIT_OK;
      }
    local_send (&l, queue_id);
    return lbctl_json ? (l.sent || !l.permanent ? LBCTL_EXIT_OK : LBCTL_EXIT_SERVER)
                      : local_result (&l, queue_id);
  }
}

/* ---- outbox [list] | retry [ID] | cancel ID ---- */

static void
print_items (GVariant *items)
{
  if (lbctl_json)
    {
      g_autoptr(LbctlJson) json = lbctl_json_new ();
      g_autofree char *text = NULL;

      lbctl_json_begin_array (json);
      for (gsize i = 0; i < g_variant_n_children (items); i++)
        {
          g_autoptr(GVariant) d = NULL;
          g_autofree const char **recipients = NULL;
          const char *id, *account = "", *sender = "", *subject = "", *state = "", *error = "";
          guint64 size = 0;
          guint32 attempts = 0;
          gint64 next = 0, created = 0;

          g_variant_get_child (items, i, "(&s@a{sv})", &id, &d);
          g_variant_lookup (d, "account", "&s", &account);
          g_variant_lookup (d, "from", "&s", &sender);
          g_variant_lookup (d, "recipients", "^a&s", &recipients);
          g_variant_lookup (d, "subject", "&s", &subject);
          g_variant_lookup (d, "size", "t", &size);
          g_variant_lookup (d, "state", "&s", &state);
          g_variant_lookup (d, "attempts", "u", &attempts);
          g_variant_lookup (d, "next-attempt", "x", &next);
          g_variant_lookup (d, "error", "&s", &error);
          g_variant_lookup (d, "created", "x", &created);
          lbctl_json_begin_object (json);
          lbctl_json_member_string (json, "queue_id", id);
          lbctl_json_member_string (json, "account", account[0] != '\0' ? account : NULL);
          lbctl_json_member_string (json, "from", sender);
          lbctl_json_name (json, "recipients");
          lbctl_json_begin_array (json);
          for (guint j = 0; recipients != NULL && recipients[j] != NULL; j++)
            lbctl_json_string (json, recipients[j]);
          lbctl_json_end_array (json);
          lbctl_json_member_string (json, "subject", subject);
          lbctl_json_member_int (json, "size", (gint64) size);
          lbctl_json_member_string (json, "state", state);
          lbctl_json_member_int (json, "attempts", attempts);
          lbctl_json_member_int (json, "next_attempt", next);
          lbctl_json_member_string (json, "error", error[0] != '\0' ? error : NULL);
          lbctl_json_member_int (json, "created", created);
          lbctl_json_end_object (json);
        }
      lbctl_json_end_array (json);
      text = lbctl_json_free_to_string (g_steal_pointer (&json));
      g_print ("%s\n", text);
      return;
    }

  if (g_variant_n_children (items) == 0)
    {
      g_print (_("The outbox is empty.\n"));
      return;
    }
  for (gsize i = 0; i < g_variant_n_children (items); i++)
    {
      g_autoptr(GVariant) d = NULL;
      g_autofree const char **recipients = NULL;
      g_autofree char *to = NULL;
      const char *id, *subject = "", *state = "", *error = "";
      guint32 attempts = 0;

      g_variant_get_child (items, i, "(&s@a{sv})", &id, &d);
      g_variant_lookup (d, "recipients", "^a&s", &recipients);
      g_variant_lookup (d, "subject", "&s", &subject);
      g_variant_lookup (d, "state", "&s", &state);
      g_variant_lookup (d, "attempts", "u", &attempts);
      g_variant_lookup (d, "error", "&s", &error);
      to = recipients != NULL ? g_strjoinv (", ", (char **) recipients) : g_strdup ("");
      /* Translators: queue id, state, attempts, recipients, subject. */
      g_print (_("%s  %-9s %u tries  to %s  “%s”\n"), id, state, attempts, to, subject);
      if (error[0] != '\0')
        g_print ("    %s\n", error);
    }
}

/* The local outbox's items in the shape ListOutbox gives them. */
static int
outbox_fail (GError *error)
{
  if (g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND))
    {
      lbctl_error ("%s", error->message);
      return LBCTL_EXIT_NOT_FOUND;
    }
  return lbctl_fail (error);
}

static const LbctlCommandHelp outbox_help = {
  "outbox", N_("[list] | retry [ID] | cancel ID"),
  N_("What waits in the outbox (and what failed for good), one message a line: queue id, "
     "state, attempts, recipients, subject, and the last error. `retry` sends a queued "
     "message (or all) now instead of at its next attempt; `cancel` takes one out unsent.")
};

int
lbctl_outbox (int    argc,
              char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(LbBusBackend1) backend = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) items = NULL;
  const char *verb;
  const char *id = NULL;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &outbox_help, NULL, FALSE, &status)) == NULL)
    return status;
  verb = args->len > 0 ? g_ptr_array_index (args, 0) : "list";
  if (args->len > 1)
    id = g_ptr_array_index (args, 1);
  if ((strcmp (verb, "list") == 0 && args->len > 1) ||
      (strcmp (verb, "retry") == 0 && args->len > 2) ||
      (strcmp (verb, "cancel") == 0 && args->len != 2))
    return lbctl_usage_error ("outbox", _("usage: outbox [list] | retry [ID] | cancel ID"));
  if (strcmp (verb, "list") != 0 && strcmp (verb, "retry") != 0 && strcmp (verb, "cancel") != 0)
    return lbctl_usage_error ("outbox", _("“%s” is not list, retry or cancel"), verb);

  if ((backend = lbctl_backend ()) != NULL)
    {
      gboolean ok;

      if (verb[0] == 'l')
        {
          if (!lb_bus_backend1_call_list_outbox_sync (backend, &items, NULL, &error))
            return lbctl_fail_remote (error);
          print_items (items);
          return LBCTL_EXIT_OK;
        }
      ok = verb[0] == 'r'
             ? lb_bus_backend1_call_retry_outbox_sync (backend, id != NULL ? id : "", NULL, &error)
             : lb_bus_backend1_call_cancel_outbox_sync (backend, id, NULL, &error);
      if (!ok)
        return lbctl_fail_remote (error);
      if (verb[0] == 'c')
        g_print (_("Cancelled %s.\n"), id);
      else
        g_print (_("Sending now.\n"));
      return LBCTL_EXIT_OK;
    }

  {
    g_auto(Local) l = { 0 };

    if (!local_open (&l, &status))
      return status;
    if (verb[0] == 'l')
      {
        if ((items = lb_outbox_list_variant (l.outbox, &error)) == NULL)
          return lbctl_fail (error);
        print_items (items);
        return LBCTL_EXIT_OK;
      }
    if (verb[0] == 'c')
      {
        lb_outbox_cancel_async (l.outbox, id, NULL, lbctl_wait_cb, &l.wait);
        if (!lb_outbox_cancel_finish (l.outbox, lbctl_wait_run (&l.wait), &error))
          return outbox_fail (error);
        g_print (_("Cancelled %s.\n"), id);
        return LBCTL_EXIT_OK;
      }
    lb_outbox_retry_async (l.outbox, id, NULL, lbctl_wait_cb, &l.wait);
    if (!lb_outbox_retry_finish (l.outbox, lbctl_wait_run (&l.wait), &error))
      return outbox_fail (error);
    if (lb_outbox_get_pending_count (l.outbox) == 0)
      {
        g_print (_("Nothing to send.\n"));
        return LBCTL_EXIT_OK;
      }
    if (id != NULL)
      {
        local_send (&l, id);
        return local_result (&l, id);
      }
    {
      /* All of them: send until each has had its try. */
      g_autoptr(GPtrArray) queued = lb_outbox_list (l.outbox, &error);
      int result = LBCTL_EXIT_OK;

      if (queued == NULL)
        return lbctl_fail (error);
      for (guint i = 0; i < queued->len; i++)
        {
          LbOutboxItem *item = g_ptr_array_index (queued, i);

          if (item->state != LB_OUTBOX_STATE_QUEUED)
            continue;
          l.sent = l.permanent = FALSE;
          g_clear_pointer (&l.error, g_free);
          g_clear_pointer (&l.loop, g_main_loop_unref);
          g_clear_pointer (&l.waiting_for, g_free);
          g_signal_handlers_disconnect_by_data (l.outbox, &l);
          local_send (&l, item->queue_id);
          if (local_result (&l, item->queue_id) != LBCTL_EXIT_OK)
            result = LBCTL_EXIT_SERVER;
        }
      return result;
    }
  }
}
