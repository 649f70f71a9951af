/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-store"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "lb-mime.h"
#include "lb-mime-summary.h"
#include "lb-store-import.h"

/*
 * Mail in and out of the store in the formats other programs use (issue #5): mbox
 * (mboxrd), Maildir and .eml files. An import reads in a worker thread and hands each
 * message to the writer with an import key (the SHA-1 of its bytes), 64 at a time, so a
 * second run of the same import adds only what the first did not. An export writes
 * through temporary files renamed into place (Maildir's own rule), so a reader never
 * sees half a message.
 */

#define WINDOW 64

/* ---- one message ------------------------------------------------------------------ */

static char *
join_addresses (GPtrArray *list,
                GString   *out)
{
  for (guint i = 0; i < list->len; i++)
    {
      LbMimeAddress *a = g_ptr_array_index (list, i);

      if (out->len > 0)
        g_string_append (out, ", ");
      if (a->name != NULL && a->name[0] != '\0')
        g_string_append_printf (out, "%s <%s>", a->name, a->address);
      else
        g_string_append (out, a->address);
    }
  return out->str;
}

/**
 * lb_store_message_from_bytes:
 *
 * Summarises a raw message for the index (GMime: decoded envelope, preview, attachments,
 * thread headers, indexable text) and keys it by its content.
 *
 * Returns: (transfer full): the row, or %NULL with @error set when it is not a message
 */
LbStoreMessage *
lb_store_message_from_bytes (GBytes  *raw,
                             gint64   folder_id,
                             GError **error)
{
  return lb_store_message_from_bytes_full (raw, folder_id,
                                           LB_STORE_MESSAGE_BODY_TEXT |
                                             LB_STORE_MESSAGE_IMPORT_KEY,
                                           error);
}

/**
 * lb_store_message_from_bytes_full:
 * @parts: what to compute beyond the envelope and preview: IMAP sync, which keys rows by
 *   UID, needs no content key, and a header block has no text to index
 *
 * lb_store_message_from_bytes() with only the @parts asked for (body_text and import_key
 * stay %NULL otherwise).
 *
 * Returns: (transfer full): the row, or %NULL with @error set when it is not a message
 */
LbStoreMessage *
lb_store_message_from_bytes_full (GBytes               *raw,
                                  gint64                folder_id,
                                  LbStoreMessageParts   parts,
                                  GError              **error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (raw, &len);
  g_autoptr(GMimeMessage) parsed = lb_mime_parse_bytes (data, len, error);
  g_autoptr(LbMimeSummary) summary = NULL;
  g_autoptr(GString) recipients = g_string_new (NULL);
  LbStoreMessage *m;

  if (parsed == NULL)
    return NULL;
  summary = lb_mime_summarise (parsed, (parts & LB_STORE_MESSAGE_BODY_TEXT) ? LB_MIME_SUMMARY_TEXT
                                                                          : LB_MIME_SUMMARY_NONE);
  m = lb_store_message_new ();
  m->folder_id = folder_id;
  if (summary->from != NULL)
    {
      m->sender = g_strdup (summary->from->name != NULL && summary->from->name[0] != '\0'
                              ? summary->from->name : summary->from->address);
      m->sender_address = g_strdup (summary->from->address);
    }
  join_addresses (summary->to, recipients);
  join_addresses (summary->cc, recipients);
  m->recipients = g_strdup (recipients->str);
  m->subject = g_strdup (summary->subject);
  m->preview = g_strdup (summary->preview);
  m->message_id = g_strdup (summary->message_id);
  m->in_reply_to = g_strdup (summary->in_reply_to);
  if (summary->references->len > 0)
    {
      m->references = g_new0 (char *, summary->references->len + 1);
      for (guint i = 0; i < summary->references->len; i++)
        m->references[i] = g_strdup (g_ptr_array_index (summary->references, i));
    }
  m->date = summary->date;
  m->has_attachment = summary->has_attachment;
  m->size = len;
  m->body_text = g_steal_pointer (&summary->body_text);
  if (parts & LB_STORE_MESSAGE_IMPORT_KEY)
    m->import_key = g_compute_checksum_for_bytes (G_CHECKSUM_SHA1, raw);
  return m;
}

/* ---- import ----------------------------------------------------------------------- */

typedef struct
{
  LbStoreWriter *writer;
  gint64 folder_id;
  GFile *source;
  LbStoreFormat format;
  GMainContext *context;
  guint pending;
  LbStoreTransferResult counts;
  GError *error; /* the writer's, which ends the import */
} Import;

static void
import_free (Import *import)
{
  g_clear_object (&import->writer);
  g_clear_object (&import->source);
  g_clear_error (&import->error);
  g_free (import);
}

static void
added_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Import *import = user_data;
  GError *error = NULL;
  gboolean existed = FALSE;

  if (lb_store_writer_add_finish_full (LB_STORE_WRITER (object), result, &existed, &error) != 0)
    {
      if (existed)
        {
          import->counts.skipped++;
          import->counts.messages--;
        }
    }
  else
    {
      if (import->error == NULL)
        import->error = error;
      else
        g_error_free (error);
    }
  import->pending--;
}

static gboolean
drain (Import   *import,
       guint     at_most)
{
  while (import->pending > at_most)
    g_main_context_iteration (import->context, TRUE);
  return import->error == NULL;
}

/* Hands one raw message to the writer (in the import thread). */
static gboolean
import_one (Import          *import,
            GBytes          *raw,
            LbMessageFlags   flags,
            GCancellable    *cancellable,
            GError         **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GInputStream) stream = NULL;
  LbStoreMessage *m;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  m = lb_store_message_from_bytes (raw, import->folder_id, &local_error);
  if (m == NULL)
    {
      g_debug ("Import: skipping an unreadable message: %s", local_error->message);
      import->counts.failed++;
      return TRUE;
    }
  m->flags = flags;
  stream = g_memory_input_stream_new_from_bytes (raw);
  import->pending++;
  import->counts.messages++;
  lb_store_writer_add_async (import->writer, m, stream, (goffset) g_bytes_get_size (raw),
                             cancellable, added_cb, import);
  if (!drain (import, WINDOW))
    {
      g_propagate_error (error, g_steal_pointer (&import->error));
      return FALSE;
    }
  return TRUE;
}

static gboolean
is_from_line (const char *line,
              gsize       len)
{
  return len >= 5 && memcmp (line, "From ", 5) == 0;
}

/* mboxrd: "From " after a blank line (or at the start) begins a message; in its body
 * ">From ", ">>From "… lose one ">". */
static gboolean
import_mbox (Import        *import,
             GCancellable  *cancellable,
             GError       **error)
{
  g_autoptr(GFileInputStream) file = g_file_read (import->source, cancellable, error);
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GByteArray) message = g_byte_array_new ();
  gboolean in_message = FALSE;
  gboolean blank_before = TRUE;

  if (file == NULL)
    return FALSE;
  in = g_data_input_stream_new (G_INPUT_STREAM (file));
  g_data_input_stream_set_newline_type (in, G_DATA_STREAM_NEWLINE_TYPE_LF);
  for (;;)
    {
      GError *read_error = NULL;
      gsize len = 0;
      g_autofree char *line = g_data_input_stream_read_line (in, &len, cancellable, &read_error);
      gboolean eof = line == NULL;
      const char *text = line;

      if (read_error != NULL)
        {
          g_propagate_error (error, read_error);
          return FALSE;
        }
      if (!eof && len > 0 && line[len - 1] == '\r')
        len--;
      if (eof || (blank_before && is_from_line (line, len)))
        {
          if (in_message)
            {
              g_autoptr(GBytes) raw = NULL;

              /* The blank line before a separator (and usually at the end of the file)
               * belongs to the mbox, not the message. */
              if (message->len >= 2 && message->data[message->len - 1] == '\n' &&
                  message->data[message->len - 2] == '\n')
                g_byte_array_set_size (message, message->len - 1);
              raw = g_byte_array_free_to_bytes (g_steal_pointer (&message));
              message = g_byte_array_new ();
              if (!import_one (import, raw, 0, cancellable, error))
                return FALSE;
            }
          if (eof)
            break;
          in_message = TRUE;
          blank_before = FALSE;
          continue;
        }
      if (!in_message)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("“%s” is not an mbox file: it does not start with “From ”"),
                       g_file_peek_path (import->source));
          return FALSE;
        }
      if (text[0] == '>')
        {
          const char *p = text;

          while (*p == '>')
            p++;
          if (strncmp (p, "From ", 5) == 0)
            {
              text++;
              len--;
            }
        }
      g_byte_array_append (message, (const guint8 *) text, (guint) len);
      g_byte_array_append (message, (const guint8 *) "\n", 1);
      blank_before = len == 0;
    }
  return TRUE;
}

static LbMessageFlags
maildir_flags (const char *name,
               gboolean    in_new)
{
  const char *info = strstr (name, ":2,");
  LbMessageFlags flags = 0;

  /* new/ holds mail no program has looked at: unread, whatever its name says. */
  if (info == NULL || in_new)
    return 0;
  for (const char *p = info + 3; *p != '\0'; p++)
    switch (*p)
      {
      case 'S':
        flags |= LB_MESSAGE_FLAG_SEEN;
        break;
      case 'R':
        flags |= LB_MESSAGE_FLAG_ANSWERED;
        break;
      case 'F':
        flags |= LB_MESSAGE_FLAG_FLAGGED;
        break;
      case 'T':
        flags |= LB_MESSAGE_FLAG_DELETED;
        break;
      case 'D':
        flags |= LB_MESSAGE_FLAG_DRAFT;
        break;
      default:
        break;
      }
  return flags;
}

static gint
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Every regular file of @dir (sorted, so that runs are repeatable), with @flags_of. */
static gboolean
import_files (Import        *import,
              GFile         *dir,
              gboolean       maildir_new,
              gboolean       maildir,
              GCancellable  *cancellable,
              GError       **error)
{
  g_autoptr(GFileEnumerator) e = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GFileInfo *info;

  e = g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME ","
                                 G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                 G_FILE_QUERY_INFO_NONE, cancellable, error);
  if (e == NULL)
    return FALSE;
  while ((info = g_file_enumerator_next_file (e, cancellable, error)) != NULL)
    {
      if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR &&
          g_file_info_get_name (info)[0] != '.')
        g_ptr_array_add (names, g_strdup (g_file_info_get_name (info)));
      g_object_unref (info);
    }
  if (error != NULL && *error != NULL)
    return FALSE;
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      g_autoptr(GFile) file = g_file_get_child (dir, name);
      g_autoptr(GBytes) raw = g_file_load_bytes (file, cancellable, NULL, error);

      if (raw == NULL)
        return FALSE;
      if (!import_one (import, raw, maildir ? maildir_flags (name, maildir_new) : 0, cancellable,
                       error))
        return FALSE;
    }
  return TRUE;
}

static LbStoreFormat
detect_format (GFile        *source,
               GCancellable *cancellable)
{
  g_autoptr(GFile) cur = g_file_get_child (source, "cur");
  g_autoptr(GFile) new = g_file_get_child (source, "new");
  g_autoptr(GFileInputStream) in = NULL;
  char head[5] = { 0 };
  gsize n = 0;

  if (g_file_query_file_type (source, G_FILE_QUERY_INFO_NONE, cancellable) == G_FILE_TYPE_DIRECTORY)
    {
      if (g_file_query_exists (cur, cancellable) || g_file_query_exists (new, cancellable))
        return LB_STORE_FORMAT_MAILDIR;
      return LB_STORE_FORMAT_EML;
    }
  in = g_file_read (source, cancellable, NULL);
  if (in != NULL)
    g_input_stream_read_all (G_INPUT_STREAM (in), head, sizeof head, &n, cancellable, NULL);
  if (n == 5 && memcmp (head, "From ", 5) == 0)
    return LB_STORE_FORMAT_MBOX;
  return LB_STORE_FORMAT_EML;
}

static void
import_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  Import *import = task_data;
  GError *error = NULL;
  LbStoreFormat format = import->format;
  gboolean ok = FALSE;

  import->context = g_main_context_new ();
  g_main_context_push_thread_default (import->context);
  if (format == LB_STORE_FORMAT_AUTO)
    format = detect_format (import->source, cancellable);
  switch (format)
    {
    case LB_STORE_FORMAT_MBOX:
      ok = import_mbox (import, cancellable, &error);
      break;
    case LB_STORE_FORMAT_MAILDIR:
      {
        g_autoptr(GFile) cur = g_file_get_child (import->source, "cur");
        g_autoptr(GFile) new = g_file_get_child (import->source, "new");

        ok = (!g_file_query_exists (cur, cancellable) ||
              import_files (import, cur, FALSE, TRUE, cancellable, &error)) &&
             (!g_file_query_exists (new, cancellable) ||
              import_files (import, new, TRUE, TRUE, cancellable, &error));
      }
      break;
    case LB_STORE_FORMAT_EML:
      if (g_file_query_file_type (import->source, G_FILE_QUERY_INFO_NONE, cancellable) ==
          G_FILE_TYPE_DIRECTORY)
        ok = import_files (import, import->source, FALSE, FALSE, cancellable, &error);
      else
        {
          g_autoptr(GBytes) raw = g_file_load_bytes (import->source, cancellable, NULL, &error);

          ok = raw != NULL && import_one (import, raw, 0, cancellable, &error);
        }
      break;
    case LB_STORE_FORMAT_AUTO:
    default:
      g_assert_not_reached ();
    }
  /* Whatever was handed over is committed (or failed) before the result. */
  drain (import, 0);
  if (ok && import->error != NULL)
    {
      ok = FALSE;
      error = g_steal_pointer (&import->error);
    }
  g_main_context_pop_thread_default (import->context);
  g_main_context_unref (import->context);
  import->context = NULL;
  if (ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * lb_store_import_async:
 * @source: an mbox file, a Maildir, a directory of .eml files or one .eml file
 *
 * Imports every message into the folder, with its body. Messages already imported
 * there (the same bytes) are not added again; unreadable ones are counted and skipped.
 */
void
lb_store_import_async (LbStoreWriter       *writer,
                       gint64               folder_id,
                       GFile               *source,
                       LbStoreFormat        format,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (writer, cancellable, callback, user_data);
  Import *import = g_new0 (Import, 1);

  lb_mime_init ();
  import->writer = g_object_ref (writer);
  import->folder_id = folder_id;
  import->source = g_object_ref (source);
  import->format = format;
  g_task_set_source_tag (task, lb_store_import_async);
  g_task_set_task_data (task, import, (GDestroyNotify) import_free);
  g_task_run_in_thread (task, import_thread);
}

gboolean
lb_store_import_finish (LbStoreWriter          *writer,
                        GAsyncResult           *result,
                        LbStoreTransferResult  *counts,
                        GError                **error)
{
  Import *import;

  g_return_val_if_fail (g_task_is_valid (result, writer), FALSE);

  import = g_task_get_task_data (G_TASK (result));
  if (counts != NULL)
    *counts = import->counts;
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- export ----------------------------------------------------------------------- */

typedef struct
{
  LbStore *store;
  gint64 folder_id;
  GFile *destination;
  LbStoreFormat format;
  LbStoreTransferResult counts;
} Export;

static void
export_free (Export *export)
{
  g_clear_object (&export->store);
  g_clear_object (&export->destination);
  g_free (export);
}

/* The message with LF line ends (as mbox and Maildir files have them), and for mbox
 * ">From " escaping (mboxrd). */
static GBytes *
to_unix_text (GBytes   *raw,
              gboolean  escape_from)
{
  gsize len;
  const char *p = g_bytes_get_data (raw, &len);
  const char *end = p + len;
  GString *out = g_string_sized_new (len + 16);

  while (p < end)
    {
      const char *nl = memchr (p, '\n', (gsize) (end - p));
      const char *line_end = nl != NULL ? nl : end;
      gsize n = (gsize) (line_end - p);
      const char *q = p;

      if (n > 0 && p[n - 1] == '\r')
        n--;
      if (escape_from)
        {
          while (q < p + n && *q == '>')
            q++;
          if ((gsize) (p + n - q) >= 5 && memcmp (q, "From ", 5) == 0)
            g_string_append_c (out, '>');
        }
      g_string_append_len (out, p, (gssize) n);
      g_string_append_c (out, '\n');
      p = nl != NULL ? nl + 1 : end;
    }
  return g_string_free_to_bytes (out);
}

static GBytes *
read_all (GInputStream  *in,
          GCancellable  *cancellable,
          GError       **error)
{
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET |
                              G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, cancellable, error) < 0)
    return NULL;
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static gboolean
write_file_atomically (GFile         *dir_tmp,
                       GFile         *target,
                       const char    *name,
                       GBytes        *data,
                       GCancellable  *cancellable,
                       GError       **error)
{
  g_autoptr(GFile) tmp = g_file_get_child (dir_tmp, name);

  if (!g_file_replace_contents (tmp, g_bytes_get_data (data, NULL), g_bytes_get_size (data), NULL,
                                FALSE, G_FILE_CREATE_PRIVATE, NULL, cancellable, error))
    return FALSE;
  return g_file_move (tmp, target, G_FILE_COPY_NONE, cancellable, NULL, NULL, error);
}

static void
export_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  Export *export = task_data;
  g_autofree char *index_path = g_build_filename (lb_store_get_data_dir (export->store),
                                                  "index.db", NULL);
  g_autoptr(GOutputStream) mbox = NULL;
  g_autoptr(GFile) tmp_dir = NULL;
  g_autoptr(GFile) cur_dir = NULL;
  GError *error = NULL;
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  gboolean mbox_format = export->format != LB_STORE_FORMAT_MAILDIR;
  int rc;

  if (export->format == LB_STORE_FORMAT_EML)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               _("A folder is exported as an mbox file or a Maildir"));
      return;
    }
  if (mbox_format)
    {
      mbox = G_OUTPUT_STREAM (g_file_replace (export->destination, NULL, FALSE,
                                              G_FILE_CREATE_PRIVATE, cancellable, &error));
      if (mbox == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
    }
  else
    {
      static const char *const subdirs[] = { "tmp", "new", "cur" };

      for (guint i = 0; i < G_N_ELEMENTS (subdirs); i++)
        {
          g_autoptr(GFile) sub = g_file_get_child (export->destination, subdirs[i]);

          if (!g_file_make_directory_with_parents (sub, cancellable, &error) &&
              !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
            {
              g_task_return_error (task, error);
              return;
            }
          g_clear_error (&error);
        }
      tmp_dir = g_file_get_child (export->destination, "tmp");
      cur_dir = g_file_get_child (export->destination, "cur");
    }

  rc = sqlite3_open_v2 (index_path, &db, SQLITE_OPEN_READONLY, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_busy_timeout (db, 10000);
      rc = sqlite3_prepare_v2 (db, "SELECT id, flags, date, sender_address, body_state FROM "
                                   "messages WHERE folder_id = ?1 ORDER BY date, id",
                               -1, &s, NULL);
    }
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64 (s, 1, export->folder_id);
  while (rc == SQLITE_OK && sqlite3_step (s) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (s, 0);
      LbMessageFlags flags = (LbMessageFlags) sqlite3_column_int (s, 1);
      gint64 date = sqlite3_column_int64 (s, 2);
      const char *sender = (const char *) sqlite3_column_text (s, 3);
      g_autoptr(GInputStream) body = NULL;
      g_autoptr(GBytes) raw = NULL;
      g_autoptr(GBytes) text = NULL;

      if (sqlite3_column_int (s, 4) != 2)
        {
          export->counts.skipped++;
          continue;
        }
      body = lb_store_open_body (export->store, id, &error);
      if (body == NULL || (raw = read_all (body, cancellable, &error)) == NULL)
        break;
      text = to_unix_text (raw, mbox_format);
      if (mbox_format)
        {
          g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc (date);
          g_autofree char *stamp = g_date_time_format (when, "%a %b %e %H:%M:%S %Y");
          g_autofree char *separator = g_strdup_printf ("From %s %s\n",
                                                        sender != NULL && sender[0] != '\0' &&
                                                          strchr (sender, ' ') == NULL
                                                          ? sender : "MAILER-DAEMON",
                                                        stamp);

          if (!g_output_stream_write_all (mbox, separator, strlen (separator), NULL, cancellable,
                                          &error) ||
              !g_output_stream_write_all (mbox, g_bytes_get_data (text, NULL),
                                          g_bytes_get_size (text), NULL, cancellable, &error) ||
              !g_output_stream_write_all (mbox, "\n", 1, NULL, cancellable, &error))
            break;
        }
      else
        {
          /* Maildir names: unique (time, our id, host-free), flags in the ":2," info. */
          g_autofree char *name = g_strdup_printf ("%" G_GINT64_FORMAT ".M%" G_GINT64_FORMAT
                                                   "P%d.letterbox:2,%s%s%s%s%s",
                                                   date, id, (int) getpid (),
                                                   flags & LB_MESSAGE_FLAG_DRAFT ? "D" : "",
                                                   flags & LB_MESSAGE_FLAG_FLAGGED ? "F" : "",
                                                   flags & LB_MESSAGE_FLAG_ANSWERED ? "R" : "",
                                                   flags & LB_MESSAGE_FLAG_SEEN ? "S" : "",
                                                   flags & LB_MESSAGE_FLAG_DELETED ? "T" : "");
          g_autoptr(GFile) target = g_file_get_child (cur_dir, name);

          if (!write_file_atomically (tmp_dir, target, name, text, cancellable, &error))
            break;
        }
      export->counts.messages++;
    }
  sqlite3_finalize (s);
  if (error == NULL && rc != SQLITE_OK)
    g_set_error (&error, LB_STORE_ERROR, LB_STORE_ERROR_IO, _("Could not read the mail store: %s"),
                 sqlite3_errmsg (db));
  sqlite3_close (db);
  if (mbox != NULL && error == NULL)
    g_output_stream_close (mbox, cancellable, &error);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * lb_store_export_async:
 * @format: %LB_STORE_FORMAT_MBOX (or AUTO) writes an mboxrd file, %LB_STORE_FORMAT_MAILDIR
 *   a Maildir (created if needed) that mutt and notmuch read
 *
 * Writes every downloaded message of the folder, oldest first, with LF line ends.
 */
void
lb_store_export_async (LbStore             *store,
                       gint64               folder_id,
                       GFile               *destination,
                       LbStoreFormat        format,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (store, cancellable, callback, user_data);
  Export *export = g_new0 (Export, 1);

  export->store = g_object_ref (store);
  export->folder_id = folder_id;
  export->destination = g_object_ref (destination);
  export->format = format;
  g_task_set_source_tag (task, lb_store_export_async);
  g_task_set_task_data (task, export, (GDestroyNotify) export_free);
  g_task_run_in_thread (task, export_thread);
}

gboolean
lb_store_export_finish (LbStore                *store,
                        GAsyncResult           *result,
                        LbStoreTransferResult  *counts,
                        GError                **error)
{
  Export *export;

  g_return_val_if_fail (g_task_is_valid (result, store), FALSE);

  export = g_task_get_task_data (G_TASK (result));
  if (counts != NULL)
    *counts = export->counts;
  return g_task_propagate_boolean (G_TASK (result), error);
}
