/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "lb-account.h"
#include "lb-mime.h"
#include "lb-mime-summary.h"
#include "lb-imap-sync.h"
#include "lbctl-commands.h"
#include "lbctl-json.h"

/* The store's commands: folders, list, show, search (reading, through LbStore) and flag,
 * move, delete (changing, through the writer's offline operations, which sync replays on
 * the server). All run the engine in this process. */

#define SENDER_WIDTH 24
#define PAGE 500

/* Flags in a fixed-width column, in Maildir's letters and order (D F R S T), "-" for
 * each flag not set: "-F-S-" is flagged and seen. */
static const struct
{
  LbMessageFlags flag;
  char letter;
  const char *word;
} flag_names[] = {
  { LB_MESSAGE_FLAG_DRAFT, 'D', "draft" },
  { LB_MESSAGE_FLAG_FLAGGED, 'F', "flagged" },
  { LB_MESSAGE_FLAG_ANSWERED, 'R', "answered" },
  { LB_MESSAGE_FLAG_SEEN, 'S', "seen" },
  { LB_MESSAGE_FLAG_DELETED, 'T', "deleted" },
};

static void
append_flag_letters (GString        *out,
                     LbMessageFlags  flags)
{
  for (guint i = 0; i < G_N_ELEMENTS (flag_names); i++)
    g_string_append_c (out, flags & flag_names[i].flag ? flag_names[i].letter : '-');
}

static char *
flag_words (LbMessageFlags flags)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (flag_names); i++)
    if (flags & flag_names[i].flag)
      {
        if (out->len > 0)
          g_string_append_c (out, ' ');
        g_string_append (out, flag_names[i].word);
      }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
json_flags (LbctlJson      *json,
            LbMessageFlags  flags)
{
  lbctl_json_name (json, "flags");
  lbctl_json_begin_array (json);
  for (guint i = 0; i < G_N_ELEMENTS (flag_names); i++)
    if (flags & flag_names[i].flag)
      lbctl_json_string (json, flag_names[i].word);
  lbctl_json_end_array (json);
}

/* Local time. ISO 8601 in full for JSON and show; to the minute in listings. */
static char *
format_date (gint64   date,
             gboolean full)
{
  g_autoptr(GDateTime) utc = NULL;
  g_autoptr(GDateTime) local = NULL;

  if (date == 0 || (utc = g_date_time_new_from_unix_utc (date)) == NULL)
    return NULL;
  local = g_date_time_to_local (utc);
  return g_date_time_format (local, full ? "%Y-%m-%dT%H:%M:%S%:z" : "%Y-%m-%d %H:%M");
}

/* One line of text: control characters (folded headers, tabs) become spaces. */
static char *
one_line (const char *text)
{
  char *line = g_strdup (text != NULL ? text : "");

  for (char *p = line; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      *p = ' ';
  return line;
}

/* @text cut or padded to @width characters. */
static void
append_padded (GString    *out,
               const char *text,
               guint       width)
{
  g_autofree char *line = one_line (text);
  glong length = g_utf8_strlen (line, -1);

  if (length > width)
    {
      const char *cut = g_utf8_offset_to_pointer (line, width - 1);

      g_string_append_len (out, line, cut - line);
      g_string_append (out, "…");
      return;
    }
  g_string_append (out, line);
  for (glong i = length; i < width; i++)
    g_string_append_c (out, ' ');
}

static void
print_summary_line (LbMessageSummary *m,
                    const char       *folder_path,
                    guint             indent)
{
  g_autoptr(GString) out = g_string_new (NULL);
  g_autofree char *date = format_date (lb_message_summary_get_date (m), FALSE);
  g_autofree char *subject = one_line (lb_message_summary_get_subject (m));

  g_string_append_printf (out, "%6" G_GINT64_FORMAT "  %-16s  ", lb_message_summary_get_id (m),
                          date != NULL ? date : "-");
  append_flag_letters (out, lb_message_summary_get_flags (m));
  g_string_append (out, "  ");
  if (folder_path != NULL)
    {
      append_padded (out, folder_path, 16);
      g_string_append (out, "  ");
    }
  append_padded (out, lb_message_summary_get_sender (m), SENDER_WIDTH);
  g_string_append (out, "  ");
  for (guint i = 0; i < indent; i++)
    g_string_append (out, "  ");
  g_string_append (out, subject);
  g_print ("%s\n", out->str);
}

static void
json_summary (LbctlJson        *json,
              LbMessageSummary *m,
              GPtrArray        *folders)
{
  LbFolder *folder = lbctl_folder_by_id (folders, lb_message_summary_get_folder_id (m));
  g_autofree char *path = folder != NULL ? lbctl_folder_path (folder) : NULL;
  g_autofree char *date = format_date (lb_message_summary_get_date (m), TRUE);

  lbctl_json_begin_object (json);
  lbctl_json_member_int (json, "id", lb_message_summary_get_id (m));
  lbctl_json_member_int (json, "folder_id", lb_message_summary_get_folder_id (m));
  lbctl_json_member_string (json, "folder", path);
  lbctl_json_member_string (json, "date", date);
  lbctl_json_member_int (json, "timestamp", lb_message_summary_get_date (m));
  json_flags (json, lb_message_summary_get_flags (m));
  lbctl_json_member_string (json, "sender", lb_message_summary_get_sender (m));
  lbctl_json_member_string (json, "subject", lb_message_summary_get_subject (m));
  lbctl_json_member_string (json, "preview", lb_message_summary_get_preview (m));
  lbctl_json_end_object (json);
}

static void
print_json (LbctlJson *json)
{
  g_autofree char *text = lbctl_json_free_to_string (json);

  g_print ("%s\n", text);
}

/* Opens the store and reads its folders; on failure prints the error and sets *status. */
static LbStore *
open_store_and_folders (GPtrArray **folders,
                        int        *status)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lbctl_open_store (&error);

  if (store == NULL)
    {
      *status = lbctl_fail (error);
      return NULL;
    }
  *folders = lb_store_list_folders (store, &error);
  if (*folders == NULL)
    {
      *status = lbctl_fail (error);
      return NULL;
    }
  return g_steal_pointer (&store);
}

static LbFolder *
find_folder_or_fail (GPtrArray  *folders,
                     const char *spec,
                     int        *status)
{
  g_autoptr(GError) error = NULL;
  LbFolder *folder = lbctl_find_folder (folders, spec, &error);

  if (folder == NULL)
    *status = lbctl_fail (error);
  return folder;
}

static gboolean
parse_id_or_fail (const char *command,
                  const char *text,
                  gint64     *id,
                  int        *status)
{
  if (lbctl_parse_id (text, id))
    return TRUE;
  *status = lbctl_usage_error (command, _("“%s” is not a message id (a positive number)"),
                               text);
  return FALSE;
}

/* folders [ACCOUNT] */

static const LbctlCommandHelp folders_help = {
  "folders", N_("[ACCOUNT]"),
  N_("Every folder (or those of one account, by id or name): id, role, total, unread and "
     "ACCOUNT/NAME, one a line; with --json an array of objects.")
};

int
lbctl_folders (int    argc,
               char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(LbctlJson) json = NULL;
  const char *account = NULL;
  gboolean any = FALSE;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &folders_help, NULL, FALSE, &status)) == NULL)
    return status;
  if (args->len > 1)
    return lbctl_usage_error ("folders", _("folders takes at most one ACCOUNT"));
  if (args->len == 1)
    account = g_ptr_array_index (args, 0);
  if ((store = open_store_and_folders (&folders, &status)) == NULL)
    return status;

  if (lbctl_json)
    {
      json = lbctl_json_new ();
      lbctl_json_begin_array (json);
    }
  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);
      const char *role = lb_folder_role_to_string (lb_folder_get_role (folder));
      g_autofree char *path = lbctl_folder_path (folder);

      if (account != NULL && strcmp (lb_folder_get_account_id (folder), account) != 0 &&
          g_strcmp0 (lb_folder_get_account_name (folder), account) != 0)
        continue;
      any = TRUE;
      if (json != NULL)
        {
          lbctl_json_begin_object (json);
          lbctl_json_member_int (json, "id", lb_folder_get_id (folder));
          lbctl_json_member_string (json, "account", lb_folder_get_account_id (folder));
          lbctl_json_member_string (json, "account_name", lb_folder_get_account_name (folder));
          lbctl_json_member_string (json, "name", lb_folder_get_name (folder));
          lbctl_json_member_string (json, "path", path);
          lbctl_json_member_string (json, "role", role);
          lbctl_json_member_int (json, "total", lb_folder_get_total (folder));
          lbctl_json_member_int (json, "unread", lb_folder_get_unread (folder));
          lbctl_json_end_object (json);
        }
      else
        g_print ("%4" G_GINT64_FORMAT "  %-8s  %6u  %6u  %s\n", lb_folder_get_id (folder),
                 role != NULL ? role : "-", lb_folder_get_total (folder),
                 lb_folder_get_unread (folder), path);
    }

  if (account != NULL && !any)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LbAccount) configured = lb_account_load (account, &error);

      /* An account configured but not synced yet has no folders; anything else is
       * unknown. */
      if (configured == NULL)
        {
          lbctl_error (_("There is no account “%s”"), account);
          return LBCTL_EXIT_NOT_FOUND;
        }
    }
  if (json != NULL)
    {
      lbctl_json_end_array (json);
      print_json (g_steal_pointer (&json));
    }
  return LBCTL_EXIT_OK;
}

/* list FOLDER [--limit N] [--offset N] [--thread] */

static const LbctlCommandHelp list_help = {
  "list", N_("FOLDER [--limit N] [--offset N] [--thread]"),
  N_("A folder's messages, newest first: id, date, flags (D F R S T: draft, flagged, "
     "replied, seen, deleted), sender and subject, one a line.\n"
     "FOLDER is an id, ACCOUNT/NAME, or a name only one account has.\n"
     "  --limit N    at most N messages (or threads); all by default\n"
     "  --offset N   skip the first N\n"
     "  --thread     group by thread: threads ordered by their newest message, each "
     "oldest first, replies indented")
};

/* Threads of @folder, newest first by their newest message in it: each a GPtrArray of
 * its messages in the folder, oldest first. */
static GPtrArray *
collect_threads (LbStore  *store,
                 gint64    folder_id,
                 guint     offset,
                 guint     limit,
                 GError  **error)
{
  g_autoptr(GPtrArray) threads =
    g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  guint skipped = 0;

  for (guint position = 0; threads->len < limit; position += PAGE)
    {
      g_autoptr(GPtrArray) page = lb_store_list_messages (store, folder_id, position, PAGE, error);

      if (page == NULL)
        return NULL;
      for (guint i = 0; i < page->len && threads->len < limit; i++)
        {
          gint64 id = lb_message_summary_get_id (g_ptr_array_index (page, i));
          g_autoptr(GPtrArray) members = NULL;
          g_autoptr(GPtrArray) here = NULL;

          if (g_hash_table_contains (seen, &id))
            continue;
          members = lb_store_list_thread (store, id, error);
          if (members == NULL)
            return NULL;
          here = g_ptr_array_new_with_free_func (g_object_unref);
          for (guint j = 0; j < members->len; j++)
            {
              LbMessageSummary *member = g_ptr_array_index (members, j);
              gint64 member_id = lb_message_summary_get_id (member);

              if (lb_message_summary_get_folder_id (member) != folder_id)
                continue;
              g_hash_table_add (seen, g_memdup2 (&member_id, sizeof member_id));
              g_ptr_array_add (here, g_object_ref (member));
            }
          /* Always there (found in the folder a moment ago), unless moved meanwhile. */
          if (here->len == 0)
            continue;
          if (skipped < offset)
            skipped++;
          else
            g_ptr_array_add (threads, g_steal_pointer (&here));
        }
      if (page->len < PAGE)
        break;
    }
  return g_steal_pointer (&threads);
}

int
lbctl_list (int    argc,
            char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbctlJson) json = NULL;
  guint limit = G_MAXUINT;
  guint offset = 0;
  gboolean thread = FALSE;
  const LbctlOption options[] = {
    { "limit", LBCTL_OPTION_UINT, &limit },
    { "offset", LBCTL_OPTION_UINT, &offset },
    { "thread", LBCTL_OPTION_FLAG, &thread },
    { NULL }
  };
  LbFolder *folder;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &list_help, options, FALSE, &status)) == NULL)
    return status;
  if (args->len != 1)
    return lbctl_usage_error ("list", _("list takes one FOLDER"));
  if ((store = open_store_and_folders (&folders, &status)) == NULL)
    return status;
  if ((folder = find_folder_or_fail (folders, g_ptr_array_index (args, 0), &status)) == NULL)
    return status;

  if (lbctl_json)
    {
      json = lbctl_json_new ();
      lbctl_json_begin_array (json);
    }
  if (thread)
    {
      g_autoptr(GPtrArray) threads = collect_threads (store, lb_folder_get_id (folder), offset,
                                                      limit, &error);

      if (threads == NULL)
        return lbctl_fail (error);
      for (guint i = 0; i < threads->len; i++)
        {
          GPtrArray *messages = g_ptr_array_index (threads, i);

          if (json != NULL)
            {
              lbctl_json_begin_object (json);
              lbctl_json_name (json, "messages");
              lbctl_json_begin_array (json);
            }
          for (guint j = 0; j < messages->len; j++)
            if (json != NULL)
              json_summary (json, g_ptr_array_index (messages, j), folders);
            else
              print_summary_line (g_ptr_array_index (messages, j), NULL, j > 0 ? 1 : 0);
          if (json != NULL)
            {
              lbctl_json_end_array (json);
              lbctl_json_end_object (json);
            }
        }
    }
  else
    {
      g_autoptr(GPtrArray) messages = lb_store_list_messages (store, lb_folder_get_id (folder),
                                                              offset, limit, &error);

      if (messages == NULL)
        return lbctl_fail (error);
      for (guint i = 0; i < messages->len; i++)
        if (json != NULL)
          json_summary (json, g_ptr_array_index (messages, i), folders);
        else
          print_summary_line (g_ptr_array_index (messages, i), NULL, 0);
    }
  if (json != NULL)
    {
      lbctl_json_end_array (json);
      print_json (g_steal_pointer (&json));
    }
  return LBCTL_EXIT_OK;
}

/* show ID [--raw] */

static const LbctlCommandHelp show_help = {
  "show", N_("ID [--raw]"),
  N_("One message: From, To, Cc, Date, Subject, Message-ID, its folder, flags and "
     "attachments, then its text.\n"
     "  --raw   the message exactly as stored, byte for byte")
};

/* A body not downloaded yet (the "on demand" policy, or a sync still on its way) is
 * fetched from the IMAP server now; POP3 and local messages always have theirs. */
static gboolean
fetch_missing_body (LbStore   *store,
                    LbFolder  *folder,
                    gint64     id,
                    GError   **error)
{
  g_autoptr(GInputStream) present = NULL;
  g_autoptr(LbAccount) account = NULL;
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(LbImapSync) sync = NULL;
  LbctlWait wait;
  gboolean ok;

  present = lb_store_open_body (store, id, NULL);
  if (present != NULL || folder == NULL ||
      g_strcmp0 (lb_folder_get_account_id (folder), LB_STORE_LOCAL_ACCOUNT_ID) == 0)
    return TRUE;
  account = lb_account_load (lb_folder_get_account_id (folder), NULL);
  if (account == NULL || account->incoming == NULL ||
      account->incoming->protocol != LB_ACCOUNT_PROTOCOL_IMAP)
    return TRUE;
  if ((writer = lbctl_open_writer (store, error)) == NULL)
    return FALSE;
  lb_mime_init ();
  sync = lb_imap_sync_new (account, writer);
  lbctl_wait_init (&wait);
  lb_imap_sync_fetch_body_async (sync, id, NULL, lbctl_wait_cb, &wait);
  ok = lb_imap_sync_fetch_body_finish (sync, lbctl_wait_run (&wait), error);
  lbctl_wait_clear (&wait);
  lb_store_writer_close (writer);
  return ok;
}

static int
show_raw (LbStore *store,
          gint64   id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) body = lb_store_open_body (store, id, &error);
  char buffer[65536];
  gssize n;

  if (body == NULL)
    /* The message exists (checked before): its body is not here yet. */
    return lbctl_fail (error) == LBCTL_EXIT_NOT_FOUND ? LBCTL_EXIT_FAILURE
                                                      : lbctl_exit_status (error);
  while ((n = g_input_stream_read (body, buffer, sizeof buffer, NULL, &error)) > 0)
    if (fwrite (buffer, 1, (size_t) n, stdout) != (size_t) n)
      break;
  if (n < 0)
    return lbctl_fail (error);
  if (fflush (stdout) != 0 || ferror (stdout))
    {
      lbctl_error (_("Could not write the message to the standard output"));
      return LBCTL_EXIT_IO;
    }
  return LBCTL_EXIT_OK;
}

static char *
format_address (const LbMimeAddress *address)
{
  if (address->name != NULL && address->name[0] != '\0')
    return g_strdup_printf ("%s <%s>", address->name, address->address);
  return g_strdup (address->address);
}

static char *
format_addresses (GPtrArray *list)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < list->len; i++)
    {
      g_autofree char *one = format_address (g_ptr_array_index (list, i));

      if (i > 0)
        g_string_append (out, ", ");
      g_string_append (out, one);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
json_address (LbctlJson           *json,
              const LbMimeAddress *address)
{
  lbctl_json_begin_object (json);
  lbctl_json_member_string (json, "name", address->name);
  lbctl_json_member_string (json, "address", address->address);
  lbctl_json_end_object (json);
}

static void
json_addresses (LbctlJson  *json,
                const char *name,
                GPtrArray  *list)
{
  lbctl_json_name (json, name);
  lbctl_json_begin_array (json);
  for (guint i = 0; list != NULL && i < list->len; i++)
    json_address (json, g_ptr_array_index (list, i));
  lbctl_json_end_array (json);
}

static void
print_header (const char *name,
              const char *value)
{
  g_autofree char *line = NULL;

  if (value == NULL || value[0] == '\0')
    return;
  line = one_line (value);
  g_print ("%s %s\n", name, line);
}

int
lbctl_show (int    argc,
            char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStoreMessage) m = NULL;
  g_autoptr(GInputStream) body = NULL;
  g_autoptr(GMimeMessage) parsed = NULL;
  g_autoptr(LbMimeSummary) summary = NULL;
  g_autofree char *text = NULL;
  g_autofree char *date = NULL;
  g_autofree char *path = NULL;
  g_autofree char *words = NULL;
  g_autofree char *message_id = NULL;
  gboolean raw = FALSE;
  const LbctlOption options[] = {
    { "raw", LBCTL_OPTION_FLAG, &raw },
    { NULL }
  };
  LbFolder *folder;
  gint64 id;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &show_help, options, FALSE, &status)) == NULL)
    return status;
  if (args->len != 1)
    return lbctl_usage_error ("show", _("show takes one message ID"));
  if (!parse_id_or_fail ("show", g_ptr_array_index (args, 0), &id, &status))
    return status;
  if ((store = open_store_and_folders (&folders, &status)) == NULL)
    return status;
  if ((m = lb_store_get_message (store, id, &error)) == NULL)
    return lbctl_fail (error);
  if (!fetch_missing_body (store, lbctl_folder_by_id (folders, m->folder_id), id, &error))
    return lbctl_fail (error);
  if (raw)
    return show_raw (store, id);

  body = lb_store_open_body (store, id, &error);
  if (body == NULL && !g_error_matches (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND))
    return lbctl_fail (error);
  g_clear_error (&error);
  if (body != NULL)
    {
      lb_mime_init ();
      if ((parsed = lb_mime_parse_stream (body, &error)) == NULL)
        return lbctl_fail (error);
      summary = lb_mime_summarise (parsed, LB_MIME_SUMMARY_NONE);
      text = lb_mime_message_get_text (parsed, G_MAXSSIZE, NULL);
    }

  folder = lbctl_folder_by_id (folders, m->folder_id);
  path = folder != NULL ? lbctl_folder_path (folder) : NULL;
  date = format_date (m->date, TRUE);
  words = flag_words (m->flags);

  if (lbctl_json)
    {
      g_autoptr(LbctlJson) json = lbctl_json_new ();

      lbctl_json_begin_object (json);
      lbctl_json_member_int (json, "id", id);
      lbctl_json_member_int (json, "folder_id", m->folder_id);
      lbctl_json_member_string (json, "folder", path);
      lbctl_json_member_string (json, "date", date);
      lbctl_json_member_int (json, "timestamp", m->date);
      json_flags (json, m->flags);
      lbctl_json_name (json, "from");
      if (summary != NULL && summary->from != NULL)
        json_address (json, summary->from);
      else if (summary == NULL && (m->sender != NULL || m->sender_address != NULL))
        {
          LbMimeAddress from = { m->sender,
                                 m->sender_address != NULL ? m->sender_address : (char *) "" };

          json_address (json, &from);
        }
      else
        lbctl_json_null (json);
      json_addresses (json, "to", summary != NULL ? summary->to : NULL);
      json_addresses (json, "cc", summary != NULL ? summary->cc : NULL);
      lbctl_json_member_string (json, "recipients", m->recipients);
      lbctl_json_member_string (json, "subject", summary != NULL ? summary->subject : m->subject);
      lbctl_json_member_string (json, "message_id", m->message_id);
      lbctl_json_member_string (json, "in_reply_to", m->in_reply_to);
      lbctl_json_name (json, "attachments");
      lbctl_json_begin_array (json);
      for (guint i = 0; summary != NULL && i < summary->attachments->len; i++)
        {
          LbMimeAttachment *a = g_ptr_array_index (summary->attachments, i);

          lbctl_json_begin_object (json);
          lbctl_json_member_string (json, "filename", a->filename);
          lbctl_json_member_string (json, "content_type", a->content_type);
          lbctl_json_member_int (json, "size", (gint64) a->size);
          lbctl_json_end_object (json);
        }
      lbctl_json_end_array (json);
      lbctl_json_member_boolean (json, "downloaded", body != NULL);
      lbctl_json_member_string (json, "body", text);
      lbctl_json_end_object (json);
      print_json (g_steal_pointer (&json));
      return LBCTL_EXIT_OK;
    }

  if (summary != NULL)
    {
      g_autofree char *from = summary->from != NULL ? format_address (summary->from) : NULL;
      g_autofree char *to = format_addresses (summary->to);
      g_autofree char *cc = format_addresses (summary->cc);

      print_header (_("From:"), from);
      print_header (_("To:"), to);
      print_header (_("Cc:"), cc);
    }
  else
    {
      g_autofree char *from = NULL;

      if (m->sender != NULL && m->sender_address != NULL &&
          strcmp (m->sender, m->sender_address) != 0)
        from = g_strdup_printf ("%s <%s>", m->sender, m->sender_address);
      else
        from = g_strdup (m->sender != NULL ? m->sender : m->sender_address);
      print_header (_("From:"), from);
      print_header (_("To:"), m->recipients);
    }
  print_header (_("Date:"), date);
  print_header (_("Subject:"), summary != NULL ? summary->subject : m->subject);
  if (m->message_id != NULL)
    message_id = g_strdup_printf ("<%s>", m->message_id);
  print_header (_("Message-ID:"), message_id);
  print_header (_("Folder:"), path);
  print_header (_("Flags:"), words);
  for (guint i = 0; summary != NULL && i < summary->attachments->len; i++)
    {
      LbMimeAttachment *a = g_ptr_array_index (summary->attachments, i);
      g_autofree char *size = g_format_size (a->size);
      /* Translators: an attachment: its file name, type and size. */
      g_autofree char *line = g_strdup_printf (_("%s (%s, %s)"),
                                               a->filename != NULL ? a->filename : _("unnamed"),
                                               a->content_type, size);

      print_header (_("Attachment:"), line);
    }
  g_print ("\n");
  if (text != NULL)
    g_print ("%s%s", text, text[0] != '\0' && !g_str_has_suffix (text, "\n") ? "\n" : "");
  else
    g_print ("%s\n", _("(The body of this message is not in the store, only its preview:)"));
  if (text == NULL && m->preview != NULL)
    g_print ("%s\n", m->preview);
  return LBCTL_EXIT_OK;
}

/* search QUERY… */

static const LbctlCommandHelp search_help = {
  "search", N_("QUERY… [--limit N] [--offset N]"),
  N_("Messages that match, newest first, in every folder: id, date, flags, folder, sender "
     "and subject. The words of QUERY are joined with spaces: words (prefixes), \"phrases\", "
     "from: to: cc: subject: body:, -word or NOT word, OR, ( ), is:unread|read|flagged|"
     "unflagged, has:attachment, in:FOLDER, before: after: date: (YYYY[-MM[-DD]], today, "
     "yesterday, 7d, 2w, 3m, 1y).\n"
     "  --limit N    at most N messages; all by default\n"
     "  --offset N   skip the first N")
};

int
lbctl_search (int    argc,
              char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(GPtrArray) messages = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) query = g_string_new (NULL);
  guint limit = G_MAXUINT;
  guint offset = 0;
  const LbctlOption options[] = {
    { "limit", LBCTL_OPTION_UINT, &limit },
    { "offset", LBCTL_OPTION_UINT, &offset },
    { NULL }
  };
  int status;

  /* "-word" leaves a word out: an argument, not an option. */
  if ((args = lbctl_parse_args (argc, argv, &search_help, options, TRUE, &status)) == NULL)
    return status;
  for (guint i = 0; i < args->len; i++)
    {
      if (i > 0)
        g_string_append_c (query, ' ');
      g_string_append (query, g_ptr_array_index (args, i));
    }
  if (g_strstrip (query->str)[0] == '\0')
    return lbctl_usage_error ("search", _("search needs a QUERY"));
  if ((store = open_store_and_folders (&folders, &status)) == NULL)
    return status;
  messages = lb_store_search (store, query->str, offset, limit, &error);
  if (messages == NULL)
    return lbctl_fail (error);

  if (lbctl_json)
    {
      g_autoptr(LbctlJson) json = lbctl_json_new ();

      lbctl_json_begin_array (json);
      for (guint i = 0; i < messages->len; i++)
        json_summary (json, g_ptr_array_index (messages, i), folders);
      lbctl_json_end_array (json);
      print_json (g_steal_pointer (&json));
      return LBCTL_EXIT_OK;
    }
  for (guint i = 0; i < messages->len; i++)
    {
      LbMessageSummary *m = g_ptr_array_index (messages, i);
      LbFolder *folder = lbctl_folder_by_id (folders, lb_message_summary_get_folder_id (m));
      g_autofree char *path = folder != NULL ? lbctl_folder_path (folder) : g_strdup ("?");

      print_summary_line (m, path, 0);
    }
  return LBCTL_EXIT_OK;
}

/* flag, move, delete: through the writer */

typedef struct
{
  LbStore *store;
  GPtrArray *folders;
  LbStoreWriter *writer;        /* NULL when the background service writes */
  LbBusBackend1 *backend;
  LbStoreMessage *message;
  LbctlWait wait;
} Change;

static void
change_clear (Change *c)
{
  if (c->writer != NULL)
    lb_store_writer_close (c->writer);
  g_clear_object (&c->writer);
  g_clear_object (&c->backend);
  g_clear_pointer (&c->message, lb_store_message_free);
  g_clear_pointer (&c->folders, g_ptr_array_unref);
  g_clear_object (&c->store);
  lbctl_wait_clear (&c->wait);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Change, change_clear)

/* Opens the store, reads message @id and starts the writer — unless the background
 * service runs: then it is the one writer, and changes go to it over D-Bus. */
static gboolean
change_begin (Change *c,
              gint64  id,
              int    *status)
{
  g_autoptr(GError) error = NULL;

  lbctl_wait_init (&c->wait);
  if ((c->store = open_store_and_folders (&c->folders, status)) == NULL)
    return FALSE;
  if ((c->message = lb_store_get_message (c->store, id, &error)) == NULL)
    {
      *status = lbctl_fail (error);
      return FALSE;
    }
  if ((c->backend = lbctl_backend ()) != NULL)
    return TRUE;
  if ((c->writer = lbctl_open_writer (c->store, &error)) == NULL)
    {
      *status = lbctl_fail (error);
      return FALSE;
    }
  return TRUE;
}

/* One change through the service's ApplyChanges: @op with @args (floating). */
static gboolean
change_remote (Change    *c,
               const char *op,
               GVariant   *args,
               int        *status)
{
  g_autoptr(GError) error = NULL;
  GVariantBuilder changes;

  g_variant_builder_init (&changes, G_VARIANT_TYPE ("a(sa{sv})"));
  g_variant_builder_add (&changes, "(s@a{sv})", op, args);
  if (!lb_bus_backend1_call_apply_changes_sync (c->backend, g_variant_builder_end (&changes),
                                                NULL, &error))
    {
      *status = lbctl_fail_remote (error);
      return FALSE;
    }
  return TRUE;
}

static GVariant *
imap_flag_names (LbMessageFlags flags)
{
  GVariantBuilder names;

  g_variant_builder_init (&names, G_VARIANT_TYPE_STRING_ARRAY);
  if (flags & LB_MESSAGE_FLAG_SEEN)
    g_variant_builder_add (&names, "s", "\\Seen");
  if (flags & LB_MESSAGE_FLAG_ANSWERED)
    g_variant_builder_add (&names, "s", "\\Answered");
  if (flags & LB_MESSAGE_FLAG_FLAGGED)
    g_variant_builder_add (&names, "s", "\\Flagged");
  if (flags & LB_MESSAGE_FLAG_DRAFT)
    g_variant_builder_add (&names, "s", "\\Draft");
  return g_variant_builder_end (&names);
}

static const LbctlCommandHelp flag_help = {
  "flag", N_("ID +FLAG|-FLAG…"),
  N_("Sets (+) or clears (-) flags of a message: seen, flagged, answered, draft; several "
     "at once, e.g. flag 42 +seen -flagged. Prints the flags the message has then.")
};

int
lbctl_flag (int    argc,
            char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStoreMessage) after = NULL;
  g_auto(Change) c = { 0 };
  g_autofree char *words = NULL;
  LbMessageFlags set = 0;
  LbMessageFlags clear = 0;
  gint64 id;
  int status;

  /* "-seen" clears a flag: an argument, not an option. */
  if ((args = lbctl_parse_args (argc, argv, &flag_help, NULL, TRUE, &status)) == NULL)
    return status;
  if (args->len < 2)
    return lbctl_usage_error ("flag", _("flag takes a message ID and one or more +FLAG or "
                                        "-FLAG"));
  if (!parse_id_or_fail ("flag", g_ptr_array_index (args, 0), &id, &status))
    return status;
  for (guint i = 1; i < args->len; i++)
    {
      const char *arg = g_ptr_array_index (args, i);
      LbMessageFlags flag = 0;
      static const struct
      {
        const char *name;
        LbMessageFlags flag;
      } settable[] = {
        { "seen", LB_MESSAGE_FLAG_SEEN },
        { "flagged", LB_MESSAGE_FLAG_FLAGGED },
        { "answered", LB_MESSAGE_FLAG_ANSWERED },
        { "draft", LB_MESSAGE_FLAG_DRAFT },
      };

      for (guint j = 0; j < G_N_ELEMENTS (settable); j++)
        if ((arg[0] == '+' || arg[0] == '-') && strcmp (arg + 1, settable[j].name) == 0)
          flag = settable[j].flag;
      if (flag == 0)
        return lbctl_usage_error ("flag", _("“%s” is not +FLAG or -FLAG with a FLAG of seen, "
                                            "flagged, answered or draft"), arg);
      if (arg[0] == '+')
        set |= flag;
      else
        clear |= flag;
    }
  if ((set & clear) != 0)
    return lbctl_usage_error ("flag", _("a flag cannot be both set and cleared"));

  if (!change_begin (&c, id, &status))
    return status;
  if (c.backend != NULL)
    {
      GVariantDict dict;

      g_variant_dict_init (&dict, NULL);
      g_variant_dict_insert (&dict, "message", "x", id);
      g_variant_dict_insert_value (&dict, "add", imap_flag_names (set));
      g_variant_dict_insert_value (&dict, "remove", imap_flag_names (clear));
      if (!change_remote (&c, "flags", g_variant_dict_end (&dict), &status))
        return status;
    }
  else
    {
      lb_store_writer_change_flags_async (c.writer, id, set, clear, NULL, lbctl_wait_cb,
                                          &c.wait);
      if (!lb_store_writer_change_flags_finish (c.writer, lbctl_wait_run (&c.wait), &error))
        return lbctl_fail (error);
    }

  if ((after = lb_store_get_message (c.store, id, &error)) == NULL)
    return lbctl_fail (error);
  words = flag_words (after->flags);
  /* Translators: %s is a message id, then the flags it has, e.g. "seen flagged". */
  g_print (_("Message %s: %s\n"), (const char *) g_ptr_array_index (args, 0),
           words[0] != '\0' ? words : _("no flags"));
  return LBCTL_EXIT_OK;
}

static int
move_message (Change   *c,
              gint64    id,
              LbFolder *to)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = lbctl_folder_path (to);

  if (c->backend != NULL)
    {
      GVariantDict dict;
      int status;

      g_variant_dict_init (&dict, NULL);
      g_variant_dict_insert (&dict, "message", "x", id);
      g_variant_dict_insert (&dict, "folder", "x", lb_folder_get_id (to));
      if (!change_remote (c, "move", g_variant_dict_end (&dict), &status))
        return status;
      g_print (_("Moved message %lld to %s.\n"), (long long) id, path);
      return LBCTL_EXIT_OK;
    }
  lb_store_writer_move_async (c->writer, id, lb_folder_get_id (to), NULL, lbctl_wait_cb,
                              &c->wait);
  if (!lb_store_writer_move_finish (c->writer, lbctl_wait_run (&c->wait), &error))
    return lbctl_fail (error);
  g_print (_("Moved message %lld to %s.\n"), (long long) id, path);
  return LBCTL_EXIT_OK;
}

static const LbctlCommandHelp move_help = {
  "move", N_("ID FOLDER"),
  N_("Moves a message to another folder of its account. FOLDER is an id, ACCOUNT/NAME, or "
     "a name only one account has.")
};

int
lbctl_move (int    argc,
            char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_auto(Change) c = { 0 };
  LbFolder *from;
  LbFolder *to;
  gint64 id;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &move_help, NULL, FALSE, &status)) == NULL)
    return status;
  if (args->len != 2)
    return lbctl_usage_error ("move", _("move takes a message ID and a FOLDER"));
  if (!parse_id_or_fail ("move", g_ptr_array_index (args, 0), &id, &status))
    return status;
  if (!change_begin (&c, id, &status))
    return status;
  if ((to = find_folder_or_fail (c.folders, g_ptr_array_index (args, 1), &status)) == NULL)
    return status;
  from = lbctl_folder_by_id (c.folders, c.message->folder_id);
  if (from != NULL && lb_folder_get_id (from) == lb_folder_get_id (to))
    {
      g_autofree char *path = lbctl_folder_path (to);

      g_print (_("Message %lld is already in %s.\n"), (long long) id, path);
      return LBCTL_EXIT_OK;
    }
  if (from == NULL ||
      strcmp (lb_folder_get_account_id (from), lb_folder_get_account_id (to)) != 0)
    {
      g_autofree char *path = lbctl_folder_path (to);

      lbctl_error (_("Message %lld cannot move to %s: a message moves only "
                     "between folders of its own account (“%s”)"),
                   (long long) id, path, from != NULL ? lb_folder_get_account_id (from) : "?");
      return LBCTL_EXIT_USAGE;
    }
  return move_message (&c, id, to);
}

static const LbctlCommandHelp delete_help = {
  "delete", N_("ID"),
  N_("Moves a message to its account's Trash; a message already in the Trash, or of an "
     "account without one, is deleted for good.")
};

int
lbctl_delete (int    argc,
              char **argv)
{
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(Change) c = { 0 };
  LbFolder *from;
  LbFolder *trash = NULL;
  gint64 id;
  int status;

  if ((args = lbctl_parse_args (argc, argv, &delete_help, NULL, FALSE, &status)) == NULL)
    return status;
  if (args->len != 1)
    return lbctl_usage_error ("delete", _("delete takes one message ID"));
  if (!parse_id_or_fail ("delete", g_ptr_array_index (args, 0), &id, &status))
    return status;
  if (!change_begin (&c, id, &status))
    return status;

  from = lbctl_folder_by_id (c.folders, c.message->folder_id);
  for (guint i = 0; from != NULL && i < c.folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (c.folders, i);

      if (lb_folder_get_role (folder) == LB_FOLDER_ROLE_TRASH &&
          strcmp (lb_folder_get_account_id (folder), lb_folder_get_account_id (from)) == 0)
        {
          trash = folder;
          break;
        }
    }
  if (trash != NULL && trash != from)
    return move_message (&c, id, trash);

  if (c.backend != NULL)
    {
      GVariantDict dict;

      /* In the Trash already, or no Trash: the service expunges it too. */
      g_variant_dict_init (&dict, NULL);
      g_variant_dict_insert (&dict, "message", "x", id);
      if (!change_remote (&c, "delete", g_variant_dict_end (&dict), &status))
        return status;
      g_print (_("Deleted message %lld.\n"), (long long) id);
      return LBCTL_EXIT_OK;
    }
  lb_store_writer_expunge_async (c.writer, id, NULL, lbctl_wait_cb, &c.wait);
  if (!lb_store_writer_expunge_finish (c.writer, lbctl_wait_run (&c.wait), &error))
    return lbctl_fail (error);
  g_print (_("Deleted message %lld.\n"), (long long) id);
  return LBCTL_EXIT_OK;
}
