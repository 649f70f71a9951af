/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-sync"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "lb-imap-parser.h"
#include "lb-imap-service.h"
#include "lb-imap-session.h"
#include "lb-imap-sync.h"
#include "lb-store.h"
#include "lb-store-import.h"

/*
 * One account's IMAP sync (issue #6), as a chain of async steps on one pooled session:
 *
 *   1. log in (the account's password, CA file or pinned certificate);
 *   2. LIST with special-use roles (guessed from names when the server has none), and
 *      the store's folders made to match;
 *   3. replay the journal of offline operations, oldest first: an operation whose
 *      message is gone on the server is dropped, one the server refuses for another
 *      reason stays for the next sync;
 *   4. each folder, Inbox first: SELECT (with QRESYNC when the store knows the folder),
 *      UIDVALIDITY checked (a change keeps the rows without UIDs, so that the server's
 *      copies take them back by Message-ID and local-only changes survive), flag
 *      changes and expunges (QRESYNC, else CONDSTORE CHANGEDSINCE, else a UID/flags
 *      diff), then the headers of new messages newest first, then the folder's state;
 *   5. bodies by the account's policy, newest first, after every folder's headers.
 *
 * Every store write goes through the writer in order, and a folder's state (UIDVALIDITY,
 * HIGHESTMODSEQ, highest UID) is written after its messages, so a sync killed at any
 * point redoes only what it had not committed; rows are keyed by (folder, UID) and the
 * writer's adds are idempotent. Reads of the store's state run as writer jobs too, so
 * they see every write queued before them.
 */

#define HEADER_CHUNK 500
#define HEADER_FETCHES 3
#define BODY_CHUNK 100
#define BODY_FETCHES 2
#define FLAGS_CHUNK 5000
/* The header fields the index keeps (lb_store_message_from_bytes(): sender, recipients,
 * subject, date, thread links) and those that decide has_attachment for a message that is
 * a single attachment; the rest of the header comes with the body. Asking for these
 * rather than BODY[HEADER] lets the server answer from its cache instead of opening
 * every message (measured on Dovecot: 20 000 messages in 0.35 s instead of 1.1 s). */
#define HEADER_FIELDS \
  "FROM TO CC SUBJECT DATE MESSAGE-ID IN-REPLY-TO REFERENCES MIME-VERSION CONTENT-TYPE " \
  "CONTENT-TRANSFER-ENCODING CONTENT-DISPOSITION CONTENT-ID CONTENT-LOCATION"
#define HEADER_ITEMS \
  "UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (" HEADER_FIELDS ")]"

struct _LbImapSync
{
  GObject parent_instance;

  LbAccount *account;
  LbStoreWriter *writer;
  LbImapService *service;
  gboolean running;
  gboolean watching;
  gboolean dirty;          /* the Inbox changed while a run was going */
  gulong changed_handler;
  GCancellable *watch_cancel;
  char **disabled_capabilities;
};

G_DEFINE_FINAL_TYPE (LbImapSync, lb_imap_sync, G_TYPE_OBJECT)

enum
{
  SIGNAL_PROGRESS,
  SIGNAL_INBOX_SYNCED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

typedef struct
{
  char *name;              /* UTF-8 */
  char delimiter;
  char *attributes;        /* as LISTed, space separated */
  LbFolderRole role;
  gboolean selectable;
  gint64 id;
  guint32 fetch_uid;   /* lb_imap_sync_fetch_body_async (): the message's UID */
} Folder;

typedef struct
{
  gint64 id;
  char *kind;
  gint64 folder_id;
  char *payload;
  gint64 message_id;
  /* Resolved by a store read: the message's folder, UID, flags and size now. */
  gint64 row_folder;
  guint32 row_uid;
  guint32 row_flags;
  guint64 row_size;
  gboolean upload_checked;  /* append: looked for an earlier upload of it */
  /* From the payload: move (source UID, destination, Message-ID), expunge (UID,
   * Message-ID), flags (set, clear). */
  guint32 src_uid;
  gint64 dest_folder;
  char *mid;
  guint32 set;
  guint32 clear;
} Entry;

typedef struct
{
  LbImapSync *self;
  LbImapSyncFlags flags;
  LbImapSession *session;
  GPtrArray *folders;      /* Folder*, Inbox first */
  GHashTable *by_id;       /* folder id → Folder* (borrowed) */
  guint index;
  char *selected;          /* the selected mailbox's name */
  LbImapSyncStats stats;
  gboolean qresync;
  gboolean condstore;
  gboolean folder_ops;     /* the journal pass before LIST: folder operations only */
  gint64 fetch_message;    /* lb_imap_sync_fetch_body_async (): the message, else 0 */
  LbStore *store;          /* for reading bodies to upload */

  /* The folder being synced */
  guint32 local_validity;
  guint64 local_modseq;
  guint32 local_max_uid;
  GArray *local_uids;      /* guint32, sorted; for the UID diff (empty with QRESYNC) */
  guint local_count;       /* messages with a UID in the store, once local_counted */
  gboolean local_counted;  /* FALSE when QRESYNC was hoped for: the UIDs were not read */
  guint32 known_max_uid;   /* the highest UID the store holds (or the saved state) */
  LbImapMailboxInfo *info;
  GArray *changes;         /* Change: flag updates from the server */
  GArray *server_uids;     /* guint32: UIDs the server listed in a diff */
  GArray *wanted;          /* guint32: UIDs to fetch, newest first */
  guint wanted_pos;
  GPtrArray *parsed;       /* LbStoreMessage*: headers of the FETCH arriving, not yet queued */
  gboolean reset;          /* UIDVALIDITY changed */
  gboolean failed_fetch;

  /* Writer jobs in flight */
  guint pending;
  guint fetches;           /* body FETCHes in flight */
  gboolean finished;       /* the task has returned; late writer callbacks only count */
  GError *writer_error;
  GSourceFunc after_pending;

  /* Journal replay */
  GPtrArray *journal;      /* Entry* */
  guint journal_pos;
  GArray *batch;           /* guint: the journal positions replayed together */
  GArray *batch_uids;      /* guint32: their UIDs */
  GHashTable *batch_new;   /* move: source UID → destination UID (COPYUID) */
  guint batch_end;         /* the journal position after the batch */
  char **chunks;           /* the UID set, in lines of at most BATCH_LINE bytes */
  guint chunk;
  guint batch_step;
  gboolean batch_refused;  /* the server said NO to a command of the batch */
  GArray *batch_valid;     /* gboolean: moves still as read, marked as sent */
  gboolean waited;         /* an entry waits for a later pass */
  gboolean second_pass;    /* the message pass runs again for those */

  /* Bodies: literals the parser streamed, by sequence number */
  GHashTable *streamed;    /* GUINT_TO_POINTER (seq) → GByteArray* */

  /* LB_SYNC_TRACE: each step's time on stderr, for profiling */
  gboolean trace;
  gint64 started;          /* monotonic µs */
} Run;

typedef struct
{
  guint32 uid;
  LbMessageFlags flags;
  char *keywords;
  guint64 modseq;
} Change;

static void step_folders (GTask *task);
static void step_journal (GTask *task);
static void step_folder (GTask *task);
static void step_bodies (GTask *task);
static void step_done (GTask *task);

/* ---- small pure helpers ----------------------------------------------------------- */

static void
folder_free (Folder *f)
{
  g_free (f->name);
  g_free (f->attributes);
  g_free (f);
}

static void
entry_free (Entry *e)
{
  g_free (e->kind);
  g_free (e->payload);
  g_free (e->mid);
  g_free (e);
}

static void
change_clear (Change *c)
{
  g_free (c->keywords);
}

/**
 * lb_imap_sync_guess_role:
 * @attributes: (nullable): the LIST attributes, such as "\\Sent" (RFC 6154)
 *
 * A folder's role from its special-use attribute, else from its name in the usual
 * languages of servers and clients.
 */
LbFolderRole
lb_imap_sync_guess_role (const char        *name,
                         const char *const *attributes)
{
  static const struct
  {
    const char *attribute;
    LbFolderRole role;
  } uses[] = {
    { "\\Sent", LB_FOLDER_ROLE_SENT },       { "\\Drafts", LB_FOLDER_ROLE_DRAFTS },
    { "\\Trash", LB_FOLDER_ROLE_TRASH },     { "\\Junk", LB_FOLDER_ROLE_JUNK },
    { "\\Archive", LB_FOLDER_ROLE_ARCHIVE },
  };
  static const struct
  {
    const char *name;
    LbFolderRole role;
  } names[] = {
    { "sent", LB_FOLDER_ROLE_SENT },          { "sent items", LB_FOLDER_ROLE_SENT },
    { "sent messages", LB_FOLDER_ROLE_SENT }, { "sent mail", LB_FOLDER_ROLE_SENT },
    { "gesendet", LB_FOLDER_ROLE_SENT },      { "envoyés", LB_FOLDER_ROLE_SENT },
    { "drafts", LB_FOLDER_ROLE_DRAFTS },      { "draft", LB_FOLDER_ROLE_DRAFTS },
    { "entwürfe", LB_FOLDER_ROLE_DRAFTS },    { "brouillons", LB_FOLDER_ROLE_DRAFTS },
    { "trash", LB_FOLDER_ROLE_TRASH },        { "deleted items", LB_FOLDER_ROLE_TRASH },
    { "deleted messages", LB_FOLDER_ROLE_TRASH }, { "bin", LB_FOLDER_ROLE_TRASH },
    { "papierkorb", LB_FOLDER_ROLE_TRASH },   { "corbeille", LB_FOLDER_ROLE_TRASH },
    { "junk", LB_FOLDER_ROLE_JUNK },          { "spam", LB_FOLDER_ROLE_JUNK },
    { "junk e-mail", LB_FOLDER_ROLE_JUNK },   { "bulk mail", LB_FOLDER_ROLE_JUNK },
    { "archive", LB_FOLDER_ROLE_ARCHIVE },    { "archives", LB_FOLDER_ROLE_ARCHIVE },
    { "archiv", LB_FOLDER_ROLE_ARCHIVE },
  };
  g_autofree char *folded = NULL;
  const char *leaf;

  if (g_ascii_strcasecmp (name, "INBOX") == 0)
    return LB_FOLDER_ROLE_INBOX;
  for (guint i = 0; attributes != NULL && attributes[i] != NULL; i++)
    for (guint j = 0; j < G_N_ELEMENTS (uses); j++)
      if (g_ascii_strcasecmp (attributes[i], uses[j].attribute) == 0)
        return uses[j].role;

  /* By name: the last level only, and only directly under the Inbox or the top. */
  leaf = strrchr (name, '/');
  if (leaf == NULL)
    leaf = strrchr (name, '.');
  if (leaf != NULL)
    {
      g_autofree char *parent = g_strndup (name, (gsize) (leaf - name));

      if (strpbrk (parent, "/.") != NULL || g_ascii_strcasecmp (parent, "INBOX") != 0)
        return LB_FOLDER_ROLE_NONE;
      leaf++;
    }
  else
    leaf = name;
  folded = g_utf8_casefold (leaf, -1);
  for (guint j = 0; j < G_N_ELEMENTS (names); j++)
    if (strcmp (folded, names[j].name) == 0)
      return names[j].role;
  return LB_FOLDER_ROLE_NONE;
}

/**
 * lb_imap_parse_internal_date:
 * @text: an IMAP date-time, "17-Jul-1996 02:44:25 -0700" (RFC 9051 §9)
 *
 * Returns: unix seconds, or 0 when @text is not one
 */
gint64
lb_imap_parse_internal_date (const char *text)
{
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  char month[4] = { 0 };
  int day, year, hour, minute, second, zone;
  char sign;
  const char *found;
  g_autoptr(GTimeZone) tz = NULL;
  g_autoptr(GDateTime) dt = NULL;
  char zone_text[8];

  if (text == NULL)
    return 0;
  while (*text == ' ')
    text++;
  if (sscanf (text, "%2d-%3c-%4d %2d:%2d:%2d %c%4d", &day, month, &year, &hour, &minute,
              &second, &sign, &zone) != 8 ||
      (sign != '+' && sign != '-'))
    return 0;
  found = strstr (months, month);
  if (found == NULL || (found - months) % 3 != 0)
    return 0;
  g_snprintf (zone_text, sizeof zone_text, "%c%02d:%02d", sign, zone / 100, zone % 100);
  tz = g_time_zone_new_identifier (zone_text);
  if (tz == NULL)
    return 0;
  dt = g_date_time_new (tz, year, (int) ((found - months) / 3) + 1, day, hour, minute, second);
  return dt != NULL ? g_date_time_to_unix (dt) : 0;
}

static LbMessageFlags
parse_flags (GPtrArray  *flags,
             char      **keywords)
{
  static const struct
  {
    const char *name;
    LbMessageFlags flag;
  } system[] = {
    { "\\Seen", LB_MESSAGE_FLAG_SEEN },       { "\\Answered", LB_MESSAGE_FLAG_ANSWERED },
    { "\\Flagged", LB_MESSAGE_FLAG_FLAGGED }, { "\\Deleted", LB_MESSAGE_FLAG_DELETED },
    { "\\Draft", LB_MESSAGE_FLAG_DRAFT },
  };
  g_autoptr(GString) words = g_string_new (NULL);
  LbMessageFlags result = 0;

  for (guint i = 0; flags != NULL && i < flags->len; i++)
    {
      const char *flag = g_ptr_array_index (flags, i);
      gboolean known = FALSE;

      for (guint j = 0; j < G_N_ELEMENTS (system); j++)
        if (g_ascii_strcasecmp (flag, system[j].name) == 0)
          {
            result |= system[j].flag;
            known = TRUE;
          }
      if (!known && flag[0] != '\\')
        {
          if (words->len > 0)
            g_string_append_c (words, ' ');
          g_string_append (words, flag);
        }
    }
  *keywords = g_string_free (g_steal_pointer (&words), FALSE);
  return result;
}

static const char *const *
flag_names (LbMessageFlags flags)
{
  static const char *names[6];
  guint n = 0;

  if (flags & LB_MESSAGE_FLAG_SEEN)
    names[n++] = "\\Seen";
  if (flags & LB_MESSAGE_FLAG_ANSWERED)
    names[n++] = "\\Answered";
  if (flags & LB_MESSAGE_FLAG_FLAGGED)
    names[n++] = "\\Flagged";
  if (flags & LB_MESSAGE_FLAG_DELETED)
    names[n++] = "\\Deleted";
  if (flags & LB_MESSAGE_FLAG_DRAFT)
    names[n++] = "\\Draft";
  names[n] = NULL;
  return names;
}

static gint
compare_uid (gconstpointer a,
             gconstpointer b)
{
  guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;

  return x < y ? -1 : x > y;
}

/* "a:b,c" from a sorted array slice, newest first or not. */
static char *
uid_set_string (const guint32 *uids,
                guint          n)
{
  g_autoptr(GArray) sorted = g_array_sized_new (FALSE, FALSE, sizeof (guint32), n);
  GString *out = g_string_new (NULL);

  g_array_append_vals (sorted, uids, n);
  g_array_sort (sorted, compare_uid);
  for (guint i = 0; i < n;)
    {
      guint32 first = g_array_index (sorted, guint32, i);
      guint32 last = first;

      while (i + 1 < n && g_array_index (sorted, guint32, i + 1) == last + 1)
        last = g_array_index (sorted, guint32, ++i);
      i++;
      if (out->len > 0)
        g_string_append_c (out, ',');
      if (first == last)
        g_string_append_printf (out, "%u", first);
      else
        g_string_append_printf (out, "%u:%u", first, last);
    }
  return g_string_free (out, FALSE);
}

/* ---- the run ---------------------------------------------------------------------- */

/* Headers per FETCH; LB_SYNC_HEADER_CHUNK makes it smaller, so that the crash tests see a
 * folder's headers arrive in several chunks without thousands of messages. */
static guint
header_chunk (void)
{
  const char *env = g_getenv ("LB_SYNC_HEADER_CHUNK");
  guint64 n = env != NULL ? g_ascii_strtoull (env, NULL, 10) : 0;

  return n > 0 && n <= HEADER_CHUNK ? (guint) n : HEADER_CHUNK;
}

/* A test hook for crash safety the isync way (tests/integration/test-ctl-sync.c): with
 * LB_SYNC_CRASH_AT set to a step's name, the process kills itself with SIGKILL right
 * after that step's first occurrence, before later writes are committed. */
static void
crash_point (const char *step)
{
  const char *want = g_getenv ("LB_SYNC_CRASH_AT");

  if (want != NULL && strcmp (want, step) == 0)
    raise (SIGKILL);
}

static gboolean rerun_inbox (gpointer data);

/* With LB_SYNC_TRACE set, one line per step on stderr: the milliseconds since the run
 * started and the writer's commits so far (bench/README.md uses it to profile a sync). */
G_GNUC_PRINTF (2, 3)
static void
trace (Run        *run,
       const char *format,
       ...)
{
  g_autofree char *text = NULL;
  va_list args;

  if (!run->trace)
    return;
  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("lb-sync %s %9.3f ms [%" G_GUINT64_FORMAT " commits] %s\n", run->self->account->id,
              (g_get_monotonic_time () - run->started) / 1000.0,
              lb_store_writer_get_commits (run->self->writer), text);
}

static void
run_free (Run *run)
{
  if (run->session != NULL)
    lb_imap_service_release (run->self->service, g_steal_pointer (&run->session));
  if (run->fetch_message == 0)
    run->self->running = FALSE;
  if (run->self->watching && run->self->dirty)
    g_idle_add_full (G_PRIORITY_DEFAULT, rerun_inbox, g_object_ref (run->self), g_object_unref);
  g_object_unref (run->self);
  g_clear_pointer (&run->folders, g_ptr_array_unref);
  g_clear_pointer (&run->by_id, g_hash_table_unref);
  g_free (run->selected);
  g_clear_pointer (&run->local_uids, g_array_unref);
  g_clear_pointer (&run->info, lb_imap_mailbox_info_free);
  g_clear_pointer (&run->changes, g_array_unref);
  g_clear_pointer (&run->server_uids, g_array_unref);
  g_clear_pointer (&run->wanted, g_array_unref);
  g_clear_pointer (&run->parsed, g_ptr_array_unref);
  g_clear_error (&run->writer_error);
  g_clear_pointer (&run->journal, g_ptr_array_unref);
  g_clear_pointer (&run->batch, g_array_unref);
  g_clear_pointer (&run->batch_uids, g_array_unref);
  g_clear_pointer (&run->batch_new, g_hash_table_unref);
  g_clear_pointer (&run->chunks, g_strfreev);
  g_clear_pointer (&run->batch_valid, g_array_unref);
  g_clear_pointer (&run->streamed, g_hash_table_unref);
  g_clear_object (&run->store);
  g_free (run);
}

/* What the user calls the account: its display name, else its id. */
static const char *
account_name (LbImapSync *self)
{
  return self->account->display_name != NULL && self->account->display_name[0] != '\0'
           ? self->account->display_name : self->account->id;
}

static void
fail (GTask  *task,
      GError *error)
{
  Run *run = g_task_get_task_data (task);

  run->finished = TRUE;
  run->after_pending = NULL;
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_prefix_error (&error, _("Account “%s”: "), account_name (run->self));
  g_task_return_error (task, error);
  g_object_unref (task);
}

static Folder *
current (Run *run)
{
  return g_ptr_array_index (run->folders, run->index);
}

static void
progress (Run        *run,
          const char *folder,
          guint       done,
          guint       total)
{
  g_signal_emit (run->self, signals[SIGNAL_PROGRESS], 0, folder, done, total);
}

/* Writer jobs in flight: the step after them runs when the last completes. */
static void
pending_done (GTask  *task,
              GError *error)
{
  Run *run = g_task_get_task_data (task);

  if (error != NULL && run->writer_error == NULL)
    run->writer_error = error;
  else if (error != NULL)
    g_error_free (error);
  g_assert (run->pending > 0);
  if (--run->pending == 0 && run->after_pending != NULL && !run->finished)
    {
      GSourceFunc next = g_steal_pointer (&run->after_pending);

      next (task);
    }
  /* Each writer job in flight holds the task. */
  g_object_unref (task);
}

/* Runs @next once every writer job so far completed, or fails the task. */
static void
when_written (GTask       *task,
              GSourceFunc  next)
{
  Run *run = g_task_get_task_data (task);

  if (run->pending > 0)
    {
      run->after_pending = next;
      return;
    }
  if (run->writer_error != NULL)
    {
      fail (task, g_steal_pointer (&run->writer_error));
      return;
    }
  next (task);
}

static gboolean
check_written (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  if (run->writer_error != NULL)
    {
      fail (task, g_steal_pointer (&run->writer_error));
      return FALSE;
    }
  return TRUE;
}

static void
exec_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  GError *error = NULL;

  lb_store_writer_exec_finish (LB_STORE_WRITER (source), result, &error);
  pending_done (user_data, error);
}

static void
exec (GTask             *task,
      LbStoreWriterFunc  func,
      gpointer           data,
      GDestroyNotify     destroy)
{
  Run *run = g_task_get_task_data (task);

  run->pending++;
  lb_store_writer_exec_async (run->self->writer, func, data, destroy,
                              g_task_get_cancellable (task), exec_cb, g_object_ref (task));
}

static gboolean
sql_ok (sqlite3  *db,
        int       rc,
        GError  **error)
{
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
    return TRUE;
  g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO, _("The mail store failed: %s"),
               sqlite3_errmsg (db));
  return FALSE;
}

/* Writer thread: the UIDs a query on one folder (?1, and ?2 when it has one) returns. */
static gboolean
collect_uids (sqlite3     *db,
              const char  *sql,
              gint64       folder_id,
              gint64       second,
              GArray      *uids,
              GError     **error)
{
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2 (db, sql, -1, &s, NULL);

  if (rc == SQLITE_OK)
    {
      sqlite3_bind_int64 (s, 1, folder_id);
      if (sqlite3_bind_parameter_count (s) > 1)
        sqlite3_bind_int64 (s, 2, second);
    }
  while (rc == SQLITE_OK && (rc = sqlite3_step (s)) == SQLITE_ROW)
    {
      guint32 uid = (guint32) sqlite3_column_int64 (s, 0);

      g_array_append_val (uids, uid);
      rc = SQLITE_OK;
    }
  sqlite3_finalize (s);
  return sql_ok (db, rc, error);
}

/* ---- 1. log in -------------------------------------------------------------------- */

static gboolean fatal (const GError *error);

static void
start_replay (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  /* Folder operations first, so that the listing shows their result. */
  run->folder_ops = TRUE;
  step_journal (task);
}

static void
enabled_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapResult) done = NULL;
  GError *error = NULL;

  done = lb_imap_session_command_finish (LB_IMAP_SESSION (source), result, &error);
  if (done == NULL && fatal (error))
    {
      fail (task, error);
      return;
    }
  g_clear_error (&error);
  run->qresync = lb_imap_session_is_enabled (run->session, "QRESYNC");
  trace (run, "QRESYNC enabled");
  start_replay (task);
}

static void body_fetch_start (GTask *task);

static void
acquired_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  run->session = lb_imap_service_acquire_finish (LB_IMAP_SERVICE (source), result, &error);
  if (run->session == NULL)
    {
      fail (task, error);
      return;
    }
  if (run->fetch_message != 0)
    {
      body_fetch_start (task);
      return;
    }
  trace (run, "session acquired (connect, TLS, login when new)");
  run->qresync = lb_imap_session_has_capability (run->session, "QRESYNC");
  run->condstore = run->qresync || lb_imap_session_has_capability (run->session, "CONDSTORE");
  /* QRESYNC must be enabled before any mailbox is selected (RFC 5161 §3.1), and the
   * journal's replay may select one before the folders are synced. A pooled session may
   * have it on already, or be past the point where it can be asked for. */
  if (run->qresync && !lb_imap_session_is_enabled (run->session, "QRESYNC"))
    {
      if (lb_imap_session_get_state (run->session) != LB_IMAP_STATE_AUTHENTICATED)
        run->qresync = FALSE;
      else
        {
          lb_imap_session_command_async (run->session, "ENABLE QRESYNC", NULL,
                                         g_task_get_cancellable (task), enabled_cb, task);
          return;
        }
    }
  start_replay (task);
}

static void
password_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  LbImapSync *self = run->self;
  const LbAccountServer *server = self->account->incoming;
  g_autofree char *password = NULL;
  LbImapServiceConfig config = { 0 };
  GError *error = NULL;

  password = lb_account_get_password_finish (result, &error);
  if (password == NULL)
    {
      fail (task, error);
      return;
    }
  trace (run, "password");
  if (self->service == NULL)
    {
      config.host = server->host;
      config.port = (guint16) server->port;
      config.security = server->security;
      config.user = server->user != NULL ? server->user
                                         : (char *) lb_account_get_address (self->account);
      config.secret = password;
      config.ca_file = self->account->ca_file;
      config.trusted_fingerprint = self->account->fingerprint;
      lb_imap_quirks_init_defaults (&config.quirks);
      config.quirks.disabled_capabilities = self->disabled_capabilities;
      self->service = lb_imap_service_new (&config);
    }
  lb_imap_service_acquire_async (self->service, g_task_get_cancellable (task), acquired_cb, task);
}

/* A run begins with a session from the account's pool; the first also needs the password
 * to make the pool (which keeps it for reconnecting: a later password would not be used,
 * so it is not asked for again — a password command costs a process each time). */
static void
start_run (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  LbImapSync *self = run->self;

  if (self->service != NULL)
    lb_imap_service_acquire_async (self->service, g_task_get_cancellable (task), acquired_cb,
                                   task);
  else
    lb_account_get_password_async (self->account, LB_ACCOUNT_PROTOCOL_IMAP,
                                   g_task_get_cancellable (task), password_cb, task);
}

/* ---- 2. folders ------------------------------------------------------------------- */

typedef struct
{
  char *account_id;
  char *account_name;
  GPtrArray *folders; /* Folder*, borrowed from the run */
  guint *changed;     /* out: folders added or removed (the run's stats) */
} FoldersJob;

static void
folders_job_free (FoldersJob *job)
{
  g_free (job->account_id);
  g_free (job->account_name);
  g_ptr_array_unref (job->folders);
  g_free (job);
}

/* Writer thread: the account and its folders as the server lists them; folders the
 * server no longer has go, with their messages (their bodies are collected when the
 * writer next starts). */
static gboolean
store_folders (sqlite3  *db,
               gpointer  data,
               GError  **error)
{
  FoldersJob *job = data;
  sqlite3_stmt *s = NULL;
  g_autoptr(GString) keep = g_string_new (NULL);
  gint64 newest = 0;
  char *sql;
  int rc;

  sql = sqlite3_mprintf ("INSERT OR IGNORE INTO accounts (id, kind, display_name) "
                         "VALUES (%Q, 'imap', %Q)", job->account_id, job->account_name);
  rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
  sqlite3_free (sql);
  if (!sql_ok (db, rc, error))
    return FALSE;

  /* Folders are numbered upwards: one above this is new. */
  rc = sqlite3_prepare_v2 (db, "SELECT coalesce(max(id), 0) FROM folders", -1, &s, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step (s)) == SQLITE_ROW)
    {
      newest = sqlite3_column_int64 (s, 0);
      rc = SQLITE_OK;
    }
  sqlite3_finalize (s);
  s = NULL;
  if (!sql_ok (db, rc, error))
    return FALSE;

  rc = sqlite3_prepare_v2 (db, "INSERT INTO folders (account_id, name, role, delimiter, "
                               "attributes) VALUES (?1, ?2, ?3, ?4, ?5) "
                               "ON CONFLICT (account_id, name) DO UPDATE SET role = excluded.role, "
                               "delimiter = excluded.delimiter, attributes = excluded.attributes "
                               "RETURNING id", -1, &s, NULL);
  for (guint i = 0; rc == SQLITE_OK && i < job->folders->len; i++)
    {
      Folder *f = g_ptr_array_index (job->folders, i);
      char delimiter[2] = { f->delimiter, 0 };

      sqlite3_reset (s);
      sqlite3_bind_text (s, 1, job->account_id, -1, SQLITE_STATIC);
      sqlite3_bind_text (s, 2, f->name, -1, SQLITE_STATIC);
      if (f->role == LB_FOLDER_ROLE_NONE)
        sqlite3_bind_null (s, 3);
      else
        sqlite3_bind_text (s, 3, lb_folder_role_to_string (f->role), -1, SQLITE_STATIC);
      if (f->delimiter != 0)
        sqlite3_bind_text (s, 4, delimiter, -1, SQLITE_TRANSIENT);
      else
        sqlite3_bind_null (s, 4);
      sqlite3_bind_text (s, 5, f->attributes, -1, SQLITE_STATIC);
      rc = sqlite3_step (s);
      if (rc == SQLITE_ROW)
        {
          f->id = sqlite3_column_int64 (s, 0);
          if (f->id > newest)
            (*job->changed)++;
          rc = sqlite3_step (s);
        }
      if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
      sql = sqlite3_mprintf ("%s%lld", keep->len > 0 ? "," : "", (long long) f->id);
      g_string_append (keep, sql);
      sqlite3_free (sql);
    }
  sqlite3_finalize (s);
  if (!sql_ok (db, rc, error))
    return FALSE;

  /* A folder that holds mail the server has not got yet (moved or saved there here) stays,
   * so that nothing is lost when an operation could not be replayed. */
  sql = sqlite3_mprintf ("CREATE TEMP TABLE IF NOT EXISTS gone_folders (id INTEGER PRIMARY KEY);"
                         "DELETE FROM gone_folders;"
                         "INSERT INTO gone_folders SELECT id FROM folders f WHERE account_id = %Q "
                         "AND id NOT IN (%s) AND NOT EXISTS (SELECT 1 FROM messages m WHERE "
                         "m.folder_id = f.id AND m.uid IS NULL);"
                         "DELETE FROM messages_fts WHERE rowid IN (SELECT m.id FROM messages m "
                         "WHERE m.folder_id IN gone_folders);"
                         "DELETE FROM journal WHERE message_id IN (SELECT m.id FROM messages m "
                         "WHERE m.folder_id IN gone_folders);"
                         "DELETE FROM folders WHERE id IN gone_folders",
                         job->account_id, keep->len > 0 ? keep->str : "0");
  rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
  sqlite3_free (sql);
  /* The last statement's changes: the folders that went. */
  if (rc == SQLITE_OK)
    *job->changed += (guint) sqlite3_changes (db);
  return sql_ok (db, rc, error);
}

static void
folders_stored (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  crash_point ("folders");
  trace (run, "%u folders stored", run->folders->len);
  for (guint i = 0; i < run->folders->len; i++)
    {
      Folder *f = g_ptr_array_index (run->folders, i);

      g_hash_table_insert (run->by_id, &f->id, f);
    }
  step_journal (task);
}

static gint
inbox_first (gconstpointer a,
             gconstpointer b)
{
  const Folder *fa = *(Folder **) a;
  const Folder *fb = *(Folder **) b;

  if ((fa->role == LB_FOLDER_ROLE_INBOX) != (fb->role == LB_FOLDER_ROLE_INBOX))
    return fa->role == LB_FOLDER_ROLE_INBOX ? -1 : 1;
  return g_utf8_collate (fa->name, fb->name);
}

static void
list_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapResult) listed = NULL;
  FoldersJob *job;
  GError *error = NULL;

  listed = lb_imap_session_command_finish (LB_IMAP_SESSION (source), result, &error);
  if (listed == NULL)
    {
      fail (task, error);
      return;
    }
  trace (run, "LIST done");
  for (guint i = 0; i < listed->untagged->len; i++)
    {
      LbImapResponse *r = g_ptr_array_index (listed->untagged, i);
      g_autoptr(GPtrArray) attributes = g_ptr_array_new ();
      g_autoptr(GString) text = g_string_new (NULL);
      Folder *f;
      char *name;

      if (r->data != LB_IMAP_DATA_LIST || r->list == NULL)
        continue;
      if (lb_imap_session_is_enabled (run->session, "UTF8=ACCEPT"))
        name = g_strndup (r->list->mailbox, r->list->mailbox_len);
      else
        name = lb_imap_utf7_decode (r->list->mailbox, r->list->mailbox_len, NULL);
      if (name == NULL)
        continue; /* not a name we can show or select again */
      f = g_new0 (Folder, 1);
      f->name = g_ascii_strcasecmp (name, "INBOX") == 0 ? g_strdup ("INBOX") : g_strdup (name);
      g_free (name);
      f->delimiter = r->list->delimiter;
      f->selectable = TRUE;
      for (guint j = 0; r->list->flags != NULL && j < r->list->flags->len; j++)
        {
          const char *flag = g_ptr_array_index (r->list->flags, j);

          if (g_ascii_strcasecmp (flag, "\\Noselect") == 0 ||
              g_ascii_strcasecmp (flag, "\\NonExistent") == 0)
            f->selectable = FALSE;
          g_ptr_array_add (attributes, (gpointer) flag);
          if (text->len > 0)
            g_string_append_c (text, ' ');
          g_string_append (text, flag);
        }
      g_ptr_array_add (attributes, NULL);
      f->attributes = g_strdup (text->str);
      f->role = lb_imap_sync_guess_role (f->name, (const char *const *) attributes->pdata);
      g_ptr_array_add (run->folders, f);
    }
  /* One folder per role: the server's special-use wins over a guess by name. */
  for (guint i = 0; i < run->folders->len; i++)
    for (guint j = 0; j < run->folders->len; j++)
      {
        Folder *a = g_ptr_array_index (run->folders, i);
        Folder *b = g_ptr_array_index (run->folders, j);

        if (i != j && a->role != LB_FOLDER_ROLE_NONE && a->role == b->role &&
            strstr (a->attributes, "\\") != NULL && b->attributes[0] == '\0')
          b->role = LB_FOLDER_ROLE_NONE;
      }
  g_ptr_array_sort (run->folders, inbox_first);

  job = g_new0 (FoldersJob, 1);
  job->account_id = g_strdup (run->self->account->id);
  job->account_name = g_strdup (account_name (run->self));
  job->folders = g_ptr_array_ref (run->folders);
  job->changed = &run->stats.folders_changed;
  exec (task, store_folders, job, (GDestroyNotify) folders_job_free);
  when_written (task, (GSourceFunc) folders_stored);
}

static void
step_folders (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  const char *command = lb_imap_session_has_capability (run->session, "SPECIAL-USE")
                          ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
                          : "LIST \"\" \"*\"";

  lb_imap_session_command_async (run->session, command, NULL, g_task_get_cancellable (task),
                                 list_cb, task);
}

/* ---- 3. the journal --------------------------------------------------------------- */

typedef struct
{
  char *account_id;
  GPtrArray *entries;
} JournalRead;

static void
journal_read_free (JournalRead *job)
{
  g_free (job->account_id);
  g_ptr_array_unref (job->entries);
  g_free (job);
}

static void
entry_parse (Entry *e)
{
  g_autoptr(GVariant) v = NULL;

  /* A move marked as sent by a run that ended before its result was recorded: replayed
   * again (UID MOVE of a UID no longer there does nothing). */
  if (strcmp (e->kind, "move-sent") == 0)
    {
      g_free (e->kind);
      e->kind = g_strdup ("move");
    }
  if (strcmp (e->kind, "move") == 0 &&
      (v = g_variant_parse (G_VARIANT_TYPE ("(xuxs)"), e->payload, NULL, NULL, NULL)) != NULL)
    {
      gint64 src_folder;

      g_variant_get (v, "(xuxs)", &src_folder, &e->src_uid, &e->dest_folder, &e->mid);
    }
  else if (strcmp (e->kind, "expunge") == 0 &&
           (v = g_variant_parse (G_VARIANT_TYPE ("(us)"), e->payload, NULL, NULL, NULL)) != NULL)
    g_variant_get (v, "(us)", &e->src_uid, &e->mid);
  else if (strcmp (e->kind, "flags") == 0 &&
           (v = g_variant_parse (G_VARIANT_TYPE ("(uu)"), e->payload, NULL, NULL, NULL)) != NULL)
    g_variant_get (v, "(uu)", &e->set, &e->clear);
}

static gboolean
read_journal (sqlite3  *db,
              gpointer  data,
              GError  **error)
{
  JournalRead *job = data;
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2 (db, "SELECT j.id, j.kind, j.folder_id, j.payload, j.message_id, "
                                   "m.folder_id, m.uid, m.flags, m.size FROM journal j LEFT JOIN "
                                   "messages m ON m.id = j.message_id WHERE j.account_id = ?1 "
                                   "ORDER BY j.id", -1, &s, NULL);

  if (rc == SQLITE_OK)
    sqlite3_bind_text (s, 1, job->account_id, -1, SQLITE_STATIC);
  while (rc == SQLITE_OK && (rc = sqlite3_step (s)) == SQLITE_ROW)
    {
      Entry *e = g_new0 (Entry, 1);

      e->id = sqlite3_column_int64 (s, 0);
      e->kind = g_strdup ((const char *) sqlite3_column_text (s, 1));
      e->folder_id = sqlite3_column_int64 (s, 2);
      e->payload = g_strdup ((const char *) sqlite3_column_text (s, 3));
      e->message_id = sqlite3_column_int64 (s, 4);
      e->row_folder = sqlite3_column_int64 (s, 5);
      e->row_uid = (guint32) sqlite3_column_int64 (s, 6);
      e->row_flags = (guint32) sqlite3_column_int64 (s, 7);
      e->row_size = (guint64) sqlite3_column_int64 (s, 8);
      entry_parse (e);
      g_ptr_array_add (job->entries, e);
      rc = SQLITE_OK;
    }
  sqlite3_finalize (s);
  return sql_ok (db, rc, error);
}

typedef struct
{
  gint64 entry;
  gint64 message_id;   /* set uid of this message … */
  gint64 folder_id;    /* … if it is (still) in this folder */
  guint32 uid;
} EntryDone;

/* Writer thread: a replayed entry goes; a moved message gets its new UID. */
static gboolean
finish_entry (sqlite3  *db,
              gpointer  data,
              GError  **error)
{
  EntryDone *done = data;
  char *sql;
  int rc;

  if (done->uid != 0)
    sql = sqlite3_mprintf ("DELETE FROM journal WHERE id = %lld; UPDATE OR IGNORE messages SET "
                           "uid = %u WHERE id = %lld AND folder_id = %lld AND uid IS NULL",
                           (long long) done->entry, done->uid, (long long) done->message_id,
                           (long long) done->folder_id);
  else
    sql = sqlite3_mprintf ("DELETE FROM journal WHERE id = %lld", (long long) done->entry);
  rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
  sqlite3_free (sql);
  return sql_ok (db, rc, error);
}

static void replay_next (GTask *task);

static void
entry_done (GTask   *task,
            Entry   *e,
            gboolean dropped,
            gint64   folder_id,
            guint32  uid)
{
  Run *run = g_task_get_task_data (task);
  EntryDone *done = g_new0 (EntryDone, 1);

  done->entry = e->id;
  done->message_id = e->message_id;
  done->folder_id = folder_id;
  done->uid = uid;
  if (dropped)
    run->stats.dropped++;
  else
    run->stats.replayed++;
  exec (task, finish_entry, done, g_free);
  crash_point ("replay");
  run->journal_pos++;
  replay_next (task);
}

/* Whether an error ends the replay (the connection is gone, or cancelled) or only
 * this entry (the server refused it). */
static gboolean
fatal (const GError *error)
{
  return !(error->domain == LB_IMAP_ERROR &&
           (error->code == LB_IMAP_ERROR_NO || error->code == LB_IMAP_ERROR_BAD ||
            error->code == LB_IMAP_ERROR_NONEXISTENT));
}

static void batch_done (GTask *task, gboolean dropped);

/* The entry (or batch) at journal_pos cannot be done: it goes. */
static void
replay_drop (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  if (run->batch != NULL)
    batch_done (task, TRUE);
  else
    entry_done (task, g_ptr_array_index (run->journal, run->journal_pos), TRUE, 0, 0);
}

typedef void (*SelectedFunc) (GTask *task);

typedef struct
{
  GTask *task;
  SelectedFunc then;
  char *name;
} SelectWait;

static void
replay_selected_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  SelectWait *wait = user_data;
  GTask *task = wait->task;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapMailboxInfo) info = NULL;
  GError *error = NULL;

  info = lb_imap_session_select_finish (LB_IMAP_SESSION (source), result, &error);
  if (info == NULL)
    {
      g_free (wait->name);
      g_free (wait);
      if (fatal (error))
        {
          fail (task, error);
          return;
        }
      /* The folder is gone on the server: what was to be done in it is moot. */
      g_debug ("Dropping journal entry: %s", error->message);
      g_error_free (error);
      replay_drop (task);
      return;
    }
  g_free (run->selected);
  run->selected = g_steal_pointer (&wait->name);
  wait->then (task);
  g_free (wait);
}

static void
replay_select (GTask        *task,
               gint64        folder_id,
               SelectedFunc  then)
{
  Run *run = g_task_get_task_data (task);
  Folder *f = g_hash_table_lookup (run->by_id, &folder_id);
  SelectWait *wait;

  if (f == NULL)
    {
      /* The folder is gone on the server. */
      replay_drop (task);
      return;
    }
  if (g_strcmp0 (run->selected, f->name) == 0)
    {
      then (task);
      return;
    }
  wait = g_new0 (SelectWait, 1);
  wait->task = task;
  wait->then = then;
  wait->name = g_strdup (f->name);
  lb_imap_session_select_async (run->session, f->name, FALSE, NULL, NULL, NULL,
                                g_task_get_cancellable (task), replay_selected_cb, wait);
}

static Entry *
entry (Run *run)
{
  return g_ptr_array_index (run->journal, run->journal_pos);
}

/* ---- message operations in batches ---- */

/* Consecutive entries of one kind on one folder (the same flags, the same destination)
 * become one command over a UID set. Lines stay under BATCH_LINE bytes (RFC 9051 §4
 * leaves the limit to servers; 8 KB is what they accept), more chunks otherwise. */
#define BATCH_MAX 5000
#define BATCH_LINE 7900

/* The UIDs as RFC 9051 sequence-sets ("1:5,9"), sorted and in ranges, each at most
 * @max bytes long. */
static char **
uid_set_chunks (GArray *uids,
                gsize   max)
{
  g_autoptr(GArray) sorted = g_array_sized_new (FALSE, FALSE, sizeof (guint32), uids->len);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GString) chunk = g_string_new (NULL);

  g_array_append_vals (sorted, uids->data, uids->len);
  g_array_sort (sorted, compare_uid);
  for (guint i = 0; i < sorted->len;)
    {
      guint32 first = g_array_index (sorted, guint32, i), last = first;
      char part[24];

      while (++i < sorted->len && g_array_index (sorted, guint32, i) <= last + 1)
        last = g_array_index (sorted, guint32, i);
      if (first == last)
        g_snprintf (part, sizeof part, "%u", first);
      else
        g_snprintf (part, sizeof part, "%u:%u", first, last);
      if (chunk->len > 0 && chunk->len + 1 + strlen (part) > max)
        {
          g_strv_builder_add (builder, chunk->str);
          g_string_truncate (chunk, 0);
        }
      if (chunk->len > 0)
        g_string_append_c (chunk, ',');
      g_string_append (chunk, part);
    }
  if (chunk->len > 0)
    g_strv_builder_add (builder, chunk->str);
  return g_strv_builder_end (builder);
}

typedef struct
{
  gint64 entry;
  gint64 message_id;
  char *payload;         /* as replayed: a later change rewrites it */
  gint64 src_folder;
  guint32 src_uid;
  gint64 dest_folder;
  guint32 new_uid;       /* move: the destination's UID (COPYUID), 0 if unknown */
  char *mid;
} BatchItem;

typedef struct
{
  char *account_id;
  char *kind;
  GArray *items;         /* BatchItem */
} BatchDone;

static void
batch_item_clear (BatchItem *item)
{
  g_free (item->payload);
  g_free (item->mid);
}

static void
batch_done_free (BatchDone *done)
{
  g_free (done->account_id);
  g_free (done->kind);
  g_array_unref (done->items);
  g_free (done);
}

static char *
move_payload (gint64      src_folder,
              guint32     src_uid,
              gint64      dest_folder,
              const char *mid)
{
  g_autoptr(GVariant) v = g_variant_ref_sink (g_variant_new ("(xuxs)", src_folder, src_uid,
                                                             dest_folder, mid));

  return g_variant_print (v, TRUE);
}

static int
exec_bound (sqlite3    *db,
            const char *sql,
            const char *format,
            ...)
{
  sqlite3_stmt *s = NULL;
  va_list ap;
  int rc = sqlite3_prepare_v2 (db, sql, -1, &s, NULL);

  va_start (ap, format);
  for (int i = 1; rc == SQLITE_OK && format[i - 1] != '\0'; i++)
    {
      if (format[i - 1] == 'x')
        sqlite3_bind_int64 (s, i, va_arg (ap, gint64));
      else if (format[i - 1] == 'u')
        {
          guint32 u = va_arg (ap, guint32);

          if (u != 0)
            sqlite3_bind_int64 (s, i, u);
        }
      else
        sqlite3_bind_text (s, i, va_arg (ap, const char *), -1, SQLITE_TRANSIENT);
    }
  va_end (ap);
  if (rc == SQLITE_OK)
    rc = sqlite3_step (s);
  sqlite3_finalize (s);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Writer thread: the (id, payload) rows of a journal query (@s as prepared with @rc),
 * then finalizes it. Returns SQLITE_OK when every row was read. */
static int
read_id_payloads (sqlite3_stmt *s,
                  int           rc,
                  GArray       *ids,
                  GPtrArray    *payloads)
{
  while (rc == SQLITE_OK && (rc = sqlite3_step (s)) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (s, 0);

      g_array_append_val (ids, id);
      g_ptr_array_add (payloads, g_strdup ((const char *) sqlite3_column_text (s, 1)));
      rc = SQLITE_OK;
    }
  sqlite3_finalize (s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writer thread: moves recorded while this one was on its way start where it put the
 * message; they were recorded with source UID 0 (the writer does not fold a move into one
 * marked as sent), and now learn it. */
static int
resolve_chained (sqlite3   *db,
                 BatchItem *item)
{
  sqlite3_stmt *s = NULL;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GPtrArray) payloads = g_ptr_array_new_with_free_func (g_free);
  int rc = sqlite3_prepare_v2 (db, "SELECT id, payload FROM journal WHERE message_id = ?1 AND "
                                   "kind = 'move'", -1, &s, NULL);

  if (rc == SQLITE_OK)
    sqlite3_bind_int64 (s, 1, item->message_id);
  rc = read_id_payloads (s, rc, ids, payloads);
  if (rc != SQLITE_OK)
    return rc;
  for (guint i = 0; rc == SQLITE_OK && i < ids->len; i++)
    {
      g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(xuxs)"),
                                               g_ptr_array_index (payloads, i), NULL, NULL, NULL);
      g_autofree char *rewritten = NULL;
      gint64 p_src, p_dest;
      guint32 p_uid;
      const char *p_mid;

      if (v == NULL)
        continue;
      g_variant_get (v, "(xux&s)", &p_src, &p_uid, &p_dest, &p_mid);
      if (p_src != item->dest_folder || p_uid != 0)
        continue;
      rewritten = move_payload (p_src, item->new_uid, p_dest, p_mid);
      rc = exec_bound (db, "UPDATE journal SET payload = ?1 WHERE id = ?2", "sx", rewritten,
                       g_array_index (ids, gint64, i));
    }
  return rc;
}

/* Writer thread: the server moved a message from (src_folder, src_uid) to (dest_folder,
 * new_uid). Whatever the store recorded meanwhile (this runs after every change queued
 * while the MOVE was on the wire) is made to start from there, so that no change is lost:
 *   - the entry as replayed: done, the row takes the new UID;
 *   - the entry rewritten to go on to another folder: now a move from the destination;
 *   - the entry gone because the message was moved back (its old UID restored): the row
 *     loses that UID, and a move back from the destination is recorded;
 *   - a later move or an expunge of the message from its old place: from the new one. */
static int
finish_move (sqlite3     *db,
             const char  *account_id,
             BatchItem   *item)
{
  sqlite3_stmt *s = NULL;
  g_autofree char *payload = NULL;
  gint64 row_folder = 0;
  guint32 row_uid = 0;
  gboolean have_row = FALSE;
  int rc;

  rc = sqlite3_prepare_v2 (db, "SELECT payload FROM journal WHERE id = ?1", -1, &s, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_bind_int64 (s, 1, item->entry);
      if ((rc = sqlite3_step (s)) == SQLITE_ROW)
        payload = g_strdup ((const char *) sqlite3_column_text (s, 0));
      rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
  sqlite3_finalize (s);
  if (rc != SQLITE_OK)
    return rc;

  if (payload != NULL)
    {
      g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(xuxs)"), payload, NULL, NULL,
                                               NULL);
      gint64 p_src = 0, p_dest = 0;
      guint32 p_uid = 0;
      const char *p_mid = item->mid;
      g_autofree char *rewritten = NULL;

      if (v != NULL)
        g_variant_get (v, "(xux&s)", &p_src, &p_uid, &p_dest, &p_mid);
      if (v == NULL || p_dest == item->dest_folder)
        {
          rc = exec_bound (db, "DELETE FROM journal WHERE id = ?1", "x", item->entry);
          if (rc == SQLITE_OK && item->new_uid != 0)
            rc = exec_bound (db, "UPDATE OR IGNORE messages SET uid = ?1 WHERE id = ?2 AND "
                                 "folder_id = ?3 AND uid IS NULL", "uxx", item->new_uid,
                             item->message_id, item->dest_folder);
          if (rc == SQLITE_OK && item->new_uid != 0)
            rc = resolve_chained (db, item);
          return rc;
        }
      rewritten = move_payload (item->dest_folder, item->new_uid, p_dest, p_mid);
      return exec_bound (db, "UPDATE journal SET folder_id = ?1, payload = ?2 WHERE id = ?3",
                         "xsx", item->dest_folder, rewritten, item->entry);
    }

  if (item->message_id != 0)
    {
      rc = sqlite3_prepare_v2 (db, "SELECT folder_id, uid FROM messages WHERE id = ?1", -1, &s,
                               NULL);
      if (rc == SQLITE_OK)
        {
          sqlite3_bind_int64 (s, 1, item->message_id);
          if ((rc = sqlite3_step (s)) == SQLITE_ROW)
            {
              have_row = TRUE;
              row_folder = sqlite3_column_int64 (s, 0);
              row_uid = (guint32) sqlite3_column_int64 (s, 1);
            }
          rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
      sqlite3_finalize (s);
      if (rc != SQLITE_OK)
        return rc;
    }
  if (have_row && row_folder == item->src_folder && row_uid == item->src_uid)
    {
      /* Moved back here while the move was on its way: the server has it in the
       * destination. */
      g_autofree char *back = move_payload (item->dest_folder, item->new_uid, item->src_folder,
                                            item->mid);

      g_debug ("Message %" G_GINT64_FORMAT " moved back during its move: moved again",
               item->message_id);
      rc = exec_bound (db, "UPDATE messages SET uid = NULL WHERE id = ?1", "x", item->message_id);
      if (rc == SQLITE_OK)
        rc = exec_bound (db, "INSERT INTO journal (account_id, kind, folder_id, payload, created, "
                             "message_id) VALUES (?1, 'move', ?2, ?3, ?4, ?5)", "sxsxx",
                         account_id, item->dest_folder, back,
                         (gint64) (g_get_real_time () / G_USEC_PER_SEC), item->message_id);
      return rc;
    }

  /* Entries naming the old place: a later move of the message, or its expunge. */
  {
    g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
    g_autoptr(GPtrArray) payloads = g_ptr_array_new_with_free_func (g_free);

    if (have_row)
      rc = sqlite3_prepare_v2 (db, "SELECT id, payload FROM journal WHERE message_id = ?1 AND "
                                   "kind = 'move'", -1, &s, NULL);
    else
      rc = sqlite3_prepare_v2 (db, "SELECT id, payload FROM journal WHERE account_id = ?2 AND "
                                   "kind = 'expunge' AND folder_id = ?3", -1, &s, NULL);
    if (rc == SQLITE_OK)
      {
        sqlite3_bind_int64 (s, 1, item->message_id);
        sqlite3_bind_text (s, 2, account_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (s, 3, item->src_folder);
      }
    rc = read_id_payloads (s, rc, ids, payloads);
    if (rc != SQLITE_OK)
      return rc;
    for (guint i = 0; rc == SQLITE_OK && i < ids->len; i++)
      {
        gint64 id = g_array_index (ids, gint64, i);
        const char *text = g_ptr_array_index (payloads, i);
        g_autofree char *rewritten = NULL;

        if (have_row)
          {
            g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(xuxs)"), text, NULL, NULL,
                                                     NULL);
            gint64 p_src, p_dest;
            guint32 p_uid;
            const char *p_mid;

            if (v == NULL)
              continue;
            g_variant_get (v, "(xux&s)", &p_src, &p_uid, &p_dest, &p_mid);
            if (p_src != item->src_folder || p_uid != item->src_uid)
              continue;
            if (p_dest == item->dest_folder)
              {
                /* Moved back and then to where the server put it: nothing left to do. */
                rc = exec_bound (db, "DELETE FROM journal WHERE id = ?1", "x", id);
                if (rc == SQLITE_OK && item->new_uid != 0)
                  rc = exec_bound (db, "UPDATE OR IGNORE messages SET uid = ?1 WHERE id = ?2 "
                                       "AND folder_id = ?3 AND uid IS NULL", "uxx",
                                   item->new_uid, item->message_id, item->dest_folder);
                continue;
              }
            rewritten = move_payload (item->dest_folder, item->new_uid, p_dest, p_mid);
          }
        else
          {
            g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(us)"), text, NULL, NULL,
                                                     NULL);
            guint32 p_uid;
            const char *p_mid;
            g_autoptr(GVariant) nv = NULL;

            if (v == NULL)
              continue;
            g_variant_get (v, "(u&s)", &p_uid, &p_mid);
            if (p_uid != item->src_uid || g_strcmp0 (p_mid, item->mid) != 0)
              continue;
            nv = g_variant_ref_sink (g_variant_new ("(us)", item->new_uid, p_mid));
            rewritten = g_variant_print (nv, TRUE);
          }
        rc = exec_bound (db, "UPDATE journal SET folder_id = ?1, payload = ?2 WHERE id = ?3",
                         "xsx", item->dest_folder, rewritten, id);
      }
  }
  return rc;
}

/* Writer thread: a batch replayed (or dropped). A flag entry goes only if it is still as
 * replayed: a change folded into it meanwhile waits for the next run. */
static gboolean
finish_batch (sqlite3  *db,
              gpointer  data,
              GError  **error)
{
  BatchDone *done = data;
  int rc = SQLITE_OK;

  for (guint i = 0; rc == SQLITE_OK && i < done->items->len; i++)
    {
      BatchItem *item = &g_array_index (done->items, BatchItem, i);

      if (strcmp (done->kind, "move") == 0)
        rc = finish_move (db, done->account_id, item);
      else
        rc = exec_bound (db, "DELETE FROM journal WHERE id = ?1 AND payload = ?2", "xs",
                         item->entry, item->payload);
    }
  return sql_ok (db, rc, error);
}

static void
batch_clear (Run *run)
{
  g_clear_pointer (&run->batch, g_array_unref);
  g_clear_pointer (&run->batch_uids, g_array_unref);
  g_clear_pointer (&run->batch_new, g_hash_table_unref);
  g_clear_pointer (&run->chunks, g_strfreev);
  g_clear_pointer (&run->batch_valid, g_array_unref);
  run->chunk = 0;
  run->batch_step = 0;
  run->batch_refused = FALSE;
}

/* The batch is done (or refused, or its folder gone: @dropped): its entries leave the
 * journal in one writer job, moved messages take their new UIDs. */
static void
batch_done (GTask    *task,
            gboolean  dropped)
{
  Run *run = g_task_get_task_data (task);
  BatchDone *done = g_new0 (BatchDone, 1);
  Entry *first = g_ptr_array_index (run->journal, g_array_index (run->batch, guint, 0));

  done->account_id = g_strdup (run->self->account->id);
  done->kind = g_strdup (first->kind);
  done->items = g_array_sized_new (FALSE, TRUE, sizeof (BatchItem), run->batch->len);
  g_array_set_clear_func (done->items, (GDestroyNotify) batch_item_clear);
  for (guint i = 0; i < run->batch->len; i++)
    {
      Entry *e = g_ptr_array_index (run->journal, g_array_index (run->batch, guint, i));
      BatchItem item = { 0 };

      item.entry = e->id;
      item.message_id = e->message_id;
      item.payload = g_strdup (e->payload);
      item.src_folder = e->folder_id;
      item.src_uid = e->src_uid;
      item.dest_folder = e->dest_folder;
      item.mid = g_strdup (e->mid != NULL ? e->mid : "");
      if (run->batch_new != NULL)
        item.new_uid = GPOINTER_TO_UINT (g_hash_table_lookup (run->batch_new,
                                                              GUINT_TO_POINTER (e->src_uid)));
      g_array_append_val (done->items, item);
    }
  if (dropped || run->batch_refused)
    run->stats.dropped += run->batch->len;
  else
    run->stats.replayed += run->batch->len;
  trace (run, "replayed %u %s entries", run->batch->len, first->kind);
  exec (task, finish_batch, done, (GDestroyNotify) batch_done_free);
  crash_point ("replay");
  run->journal_pos = run->batch_end;
  batch_clear (run);
  replay_next (task);
}

static void batch_step (GTask *task);

/* A command of the batch answered: a NO ends only this batch (its entries go, as for a
 * single entry the server refuses), a broken connection the run. */
static gboolean
batch_command_ok (GTask  *task,
                  GError *error)
{
  Run *run = g_task_get_task_data (task);

  if (error == NULL)
    return TRUE;
  if (fatal (error))
    {
      fail (task, error);
      return FALSE;
    }
  g_debug ("Journal batch refused: %s", error->message);
  g_error_free (error);
  run->batch_refused = TRUE;
  return TRUE;
}

static void
batch_store_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  lb_imap_session_uid_store_finish (LB_IMAP_SESSION (source), result, NULL, &error);
  if (!batch_command_ok (task, error))
    return;
  run->chunk++;
  batch_step (task);
}

static void
batch_command_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapResult) done = NULL;
  GError *error = NULL;

  done = lb_imap_session_command_finish (LB_IMAP_SESSION (source), result, &error);
  if (!batch_command_ok (task, error))
    return;
  /* UID MOVE: COPYUID (RFC 4315 §3, RFC 6851 §4.3) in an untagged OK or the tagged one,
   * source and destination UIDs in the same order. */
  for (guint i = 0; done != NULL && i <= done->untagged->len; i++)
    {
      LbImapResponse *r = i < done->untagged->len ? g_ptr_array_index (done->untagged, i)
                                                  : done->tagged;
      g_autoptr(GArray) from = NULL;
      g_autoptr(GArray) to = NULL;

      if (r == NULL || r->code.kind != LB_IMAP_CODE_COPYUID || r->code.set == NULL ||
          r->code.set2 == NULL ||
          lb_imap_set_count (r->code.set) != lb_imap_set_count (r->code.set2))
        continue;
      from = g_array_new (FALSE, FALSE, sizeof (guint32));
      to = g_array_new (FALSE, FALSE, sizeof (guint32));
      for (guint k = 0; k < 2; k++)
        {
          LbImapSet *set = k == 0 ? r->code.set : r->code.set2;
          GArray *out = k == 0 ? from : to;

          for (guint j = 0; j < set->ranges->len; j++)
            {
              LbImapRange *range = &g_array_index (set->ranges, LbImapRange, j);
              gint step = range->first <= range->last ? 1 : -1;

              for (guint32 u = range->first;; u += step)
                {
                  g_array_append_val (out, u);
                  if (u == range->last)
                    break;
                }
            }
        }
      for (guint j = 0; j < from->len; j++)
        g_hash_table_insert (run->batch_new, GUINT_TO_POINTER (g_array_index (from, guint32, j)),
                             GUINT_TO_POINTER (g_array_index (to, guint32, j)));
    }
  run->chunk++;
  batch_step (task);
}

static void
batch_moved_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapSet) dest = NULL;
  GError *error = NULL;

  lb_imap_session_move_finish (LB_IMAP_SESSION (source), result, NULL, &dest, &error);
  if (!batch_command_ok (task, error))
    return;
  /* Without MOVE the session copies: only the destination UIDs are known, so they map to
   * the sources only when every one of them was copied (both in ascending order). */
  if (dest != NULL)
    {
      g_autoptr(LbImapSet) ours = NULL;
      g_autofree char *line = g_strdup_printf ("* VANISHED %s", run->chunks[run->chunk]);
      g_autoptr(LbImapResponse) parsed = lb_imap_parse_response (line, strlen (line), NULL);

      if (parsed != NULL && parsed->vanished != NULL &&
          lb_imap_set_count (parsed->vanished) == lb_imap_set_count (dest))
        {
          guint n = 0;
          guint32 *to = g_new (guint32, lb_imap_set_count (dest));

          for (guint j = 0; j < dest->ranges->len; j++)
            {
              LbImapRange *range = &g_array_index (dest->ranges, LbImapRange, j);

              for (guint32 u = MIN (range->first, range->last);; u++)
                {
                  to[n++] = u;
                  if (u == MAX (range->first, range->last))
                    break;
                }
            }
          n = 0;
          for (guint j = 0; j < parsed->vanished->ranges->len; j++)
            {
              LbImapRange *range = &g_array_index (parsed->vanished->ranges, LbImapRange, j);

              for (guint32 u = range->first;; u++)
                {
                  g_hash_table_insert (run->batch_new, GUINT_TO_POINTER (u),
                                       GUINT_TO_POINTER (to[n++]));
                  if (u == range->last)
                    break;
                }
            }
          g_free (to);
        }
    }
  run->chunk++;
  batch_step (task);
}

/* The batch's commands, chunk by chunk: flags +FLAGS then -FLAGS; expunges \Deleted then
 * UID EXPUNGE (UIDPLUS; else the folder's next expunge takes them); moves UID MOVE. */
static void
batch_step (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e = g_ptr_array_index (run->journal, g_array_index (run->batch, guint, 0));
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (run->chunks[run->chunk] == NULL)
    {
      run->chunk = 0;
      run->batch_step++;
    }
  if (strcmp (e->kind, "flags") == 0)
    {
      if (run->batch_step == 0 && e->set == 0)
        run->batch_step = 1;
      if (run->batch_step == 1 && e->clear == 0)
        run->batch_step = 2;
      if (run->batch_step < 2)
        {
          lb_imap_session_uid_store_async (run->session, run->chunks[run->chunk],
                                           run->batch_step == 0 ? LB_IMAP_STORE_ADD
                                                                : LB_IMAP_STORE_REMOVE,
                                           flag_names (run->batch_step == 0 ? e->set : e->clear),
                                           0, NULL, NULL, cancellable, batch_store_cb, task);
          return;
        }
    }
  else if (strcmp (e->kind, "expunge") == 0)
    {
      static const char *const deleted[] = { "\\Deleted", NULL };

      if (run->batch_step == 1 && (run->batch_refused ||
                                   !lb_imap_session_has_capability (run->session, "UIDPLUS")))
        run->batch_step = 2;
      if (run->batch_step == 0)
        {
          lb_imap_session_uid_store_async (run->session, run->chunks[run->chunk],
                                           LB_IMAP_STORE_ADD, deleted, 0, NULL, NULL, cancellable,
                                           batch_store_cb, task);
          return;
        }
      if (run->batch_step == 1)
        {
          g_autofree char *command = g_strdup_printf ("UID EXPUNGE %s", run->chunks[run->chunk]);

          lb_imap_session_command_async (run->session, command, NULL, cancellable,
                                         batch_command_cb, task);
          return;
        }
    }
  else if (run->batch_step == 0)
    {
      Folder *dest = g_hash_table_lookup (run->by_id, &e->dest_folder);

      if (lb_imap_session_has_capability (run->session, "MOVE"))
        {
          g_autofree char *encoded = lb_imap_session_encode_mailbox (run->session, dest->name);
          g_autofree char *command = g_strdup_printf ("UID MOVE %s %s", run->chunks[run->chunk],
                                                      encoded);

          lb_imap_session_command_async (run->session, command, NULL, cancellable,
                                         batch_command_cb, task);
        }
      else
        lb_imap_session_move_async (run->session, run->chunks[run->chunk], dest->name,
                                    cancellable, batch_moved_cb, task);
      return;
    }
  batch_done (task, FALSE);
}

static void
batch_selected (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  run->chunks = uid_set_chunks (run->batch_uids, BATCH_LINE);
  run->chunk = 0;
  run->batch_step = 0;
  batch_step (task);
}

/* The UID an entry works on where the server has the message now, 0 if unknown. */
static guint32
entry_uid (Entry *e)
{
  return strcmp (e->kind, "flags") == 0 ? e->row_uid : e->src_uid;
}

/* The folder the entry's command runs in. */
static gint64
entry_folder (Entry *e)
{
  return strcmp (e->kind, "flags") == 0 ? e->row_folder : e->folder_id;
}

static gboolean
same_batch (Entry *a,
            Entry *b)
{
  if (strcmp (a->kind, b->kind) != 0 || entry_folder (a) != entry_folder (b) ||
      entry_uid (b) == 0)
    return FALSE;
  if (strcmp (a->kind, "flags") == 0)
    return a->set == b->set && a->clear == b->clear;
  if (strcmp (a->kind, "move") == 0)
    return a->dest_folder == b->dest_folder;
  return TRUE;
}

/* An entry the message pass passes over: the other pass's, or a flag change waiting for
 * its message's UID (a move or upload not replayed yet). */
static gboolean
passed_over (Run   *run,
             Entry *e)
{
  if (run->folder_ops != g_str_has_prefix (e->kind, "folder-"))
    return TRUE;
  if (strcmp (e->kind, "flags") == 0 && e->row_uid == 0)
    {
      run->waited = TRUE;
      return TRUE;
    }
  return FALSE;
}

static void replay_resolve (GTask *task);

typedef struct
{
  GArray *ids;         /* gint64 */
  GPtrArray *payloads; /* char*: as read */
  GArray *valid;       /* gboolean, out: still as read, now marked */
} MarkSent;

static void
mark_sent_free (MarkSent *job)
{
  g_array_unref (job->ids);
  g_ptr_array_unref (job->payloads);
  g_array_unref (job->valid);
  g_free (job);
}

/* Writer thread: the batch's moves as sent ("move-sent"), those still as read. */
static gboolean
mark_sent (sqlite3  *db,
           gpointer  data,
           GError  **error)
{
  MarkSent *job = data;
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2 (db, "UPDATE journal SET kind = 'move-sent' WHERE id = ?1 AND "
                                   "payload = ?2 AND kind IN ('move', 'move-sent')", -1, &s,
                               NULL);

  for (guint i = 0; rc == SQLITE_OK && i < job->ids->len; i++)
    {
      sqlite3_reset (s);
      sqlite3_bind_int64 (s, 1, g_array_index (job->ids, gint64, i));
      sqlite3_bind_text (s, 2, g_ptr_array_index (job->payloads, i), -1, SQLITE_STATIC);
      if ((rc = sqlite3_step (s)) == SQLITE_DONE)
        {
          g_array_index (job->valid, gboolean, i) = sqlite3_changes (db) > 0;
          rc = SQLITE_OK;
        }
    }
  sqlite3_finalize (s);
  return sql_ok (db, rc, error);
}

/* The moves changed since the journal was read (moved on, or back) wait for the next
 * pass; the others go. */
static void
batch_marked (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  g_autoptr(GArray) valid = g_steal_pointer (&run->batch_valid);
  g_autoptr(GArray) batch = g_steal_pointer (&run->batch);
  g_autoptr(GArray) uids = g_steal_pointer (&run->batch_uids);
  Entry *first;

  if (!check_written (task))
    return;
  run->batch = g_array_new (FALSE, FALSE, sizeof (guint));
  run->batch_uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  for (guint i = 0; i < batch->len; i++)
    if (g_array_index (valid, gboolean, i))
      {
        g_array_append_val (run->batch, g_array_index (batch, guint, i));
        g_array_append_val (run->batch_uids, g_array_index (uids, guint32, i));
      }
    else
      run->waited = TRUE;
  if (run->batch->len == 0)
    {
      run->journal_pos = run->batch_end;
      batch_clear (run);
      replay_next (task);
      return;
    }
  first = g_ptr_array_index (run->journal, g_array_index (run->batch, guint, 0));
  replay_select (task, entry_folder (first), batch_selected);
}

/* The entry at journal_pos and those after it it can share a command with. */
static void
replay_batch (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  guint32 uid = entry_uid (e);
  guint pos;

  if (strcmp (e->kind, "move") == 0 &&
      g_hash_table_lookup (run->by_id, &e->dest_folder) == NULL)
    {
      /* The destination is gone on the server. */
      entry_done (task, e, TRUE, 0, 0);
      return;
    }
  if (uid == 0)
    {
      if (strcmp (e->kind, "move") == 0 && e->mid != NULL && e->mid[0] != '\0')
        replay_select (task, e->folder_id, replay_resolve);
      else
        entry_done (task, e, TRUE, 0, 0);
      return;
    }
  run->batch = g_array_new (FALSE, FALSE, sizeof (guint));
  run->batch_uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  run->batch_new = g_hash_table_new (NULL, NULL);
  g_array_append_val (run->batch, run->journal_pos);
  g_array_append_val (run->batch_uids, uid);
  for (pos = run->journal_pos + 1; pos < run->journal->len && run->batch->len < BATCH_MAX; pos++)
    {
      Entry *next = g_ptr_array_index (run->journal, pos);

      if (passed_over (run, next))
        continue;
      if (!same_batch (e, next))
        break;
      uid = entry_uid (next);
      g_array_append_val (run->batch, pos);
      g_array_append_val (run->batch_uids, uid);
    }
  run->batch_end = pos;
  if (strcmp (e->kind, "move") == 0)
    {
      /* Durably marked as sent before UID MOVE goes out, so that a move made meanwhile
       * (an Undo) is recorded after this one instead of cancelling it, also when this
       * run is killed before it records the result. */
      MarkSent *job = g_new0 (MarkSent, 1);

      job->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
      job->payloads = g_ptr_array_new_with_free_func (g_free);
      run->batch_valid = g_array_new (FALSE, TRUE, sizeof (gboolean));
      g_array_set_size (run->batch_valid, run->batch->len);
      job->valid = g_array_ref (run->batch_valid);
      for (guint i = 0; i < run->batch->len; i++)
        {
          Entry *m = g_ptr_array_index (run->journal, g_array_index (run->batch, guint, i));

          g_array_append_val (job->ids, m->id);
          g_ptr_array_add (job->payloads, g_strdup (m->payload));
        }
      exec (task, mark_sent, job, (GDestroyNotify) mark_sent_free);
      when_written (task, (GSourceFunc) batch_marked);
      return;
    }
  replay_select (task, entry_folder (e), batch_selected);
}

/* A move whose source UID is not known (recorded while an earlier move of the message was
 * on its way, and the server did not say where that put it): found by its Message-ID. */
static void
resolved_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  g_autoptr(LbImapSet) set = NULL;
  GError *error = NULL;
  guint32 uid = 0;

  set = lb_imap_session_uid_search_finish (LB_IMAP_SESSION (source), result, &error);
  if (set == NULL && fatal (error))
    {
      fail (task, error);
      return;
    }
  g_clear_error (&error);
  if (set != NULL)
    uid = lb_imap_set_max (set);
  if (uid == 0)
    {
      /* Not there: nothing left to move. */
      entry_done (task, e, TRUE, 0, 0);
      return;
    }
  e->src_uid = uid;
  replay_batch (task);
}

static void
replay_resolve (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  g_autofree char *bracketed = g_strdup_printf ("<%s>", e->mid);
  g_autofree char *quoted = NULL;
  g_autofree char *criteria = NULL;

  for (const char *p = e->mid; *p != '\0'; p++)
    if (*p < 0x20 || *p > 0x7e)
      {
        entry_done (task, e, TRUE, 0, 0);
        return;
      }
  quoted = lb_imap_quote (bracketed);
  criteria = g_strdup_printf ("HEADER Message-ID %s", quoted);
  lb_imap_session_uid_search_async (run->session, criteria, g_task_get_cancellable (task),
                                    resolved_cb, task);
}

/* Folder operations: done by name, before the listing. One the server refuses because it
 * is already so (created, gone) counts as done. */
static void
folder_op_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapResult) done = NULL;
  GError *error = NULL;

  done = lb_imap_session_command_finish (LB_IMAP_SESSION (source), result, &error);
  if (done == NULL)
    {
      if (fatal (error))
        {
          fail (task, error);
          return;
        }
      g_debug ("Folder operation refused: %s", error->message);
      g_error_free (error);
      entry_done (task, entry (run), TRUE, 0, 0);
      return;
    }
  entry_done (task, entry (run), FALSE, 0, 0);
}

static void
replay_folder_op (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  g_autofree char *command = NULL;

  if (strcmp (e->kind, "folder-rename") == 0)
    {
      g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(ss)"), e->payload, NULL, NULL,
                                               NULL);
      const char *from, *to;
      g_autofree char *a = NULL;
      g_autofree char *b = NULL;

      g_variant_get (v, "(&s&s)", &from, &to);
      a = lb_imap_session_encode_mailbox (run->session, from);
      b = lb_imap_session_encode_mailbox (run->session, to);
      command = g_strdup_printf ("RENAME %s %s", a, b);
    }
  else
    {
      g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(s)"), e->payload, NULL, NULL,
                                               NULL);
      const char *name;
      g_autofree char *encoded = NULL;

      g_variant_get (v, "(&s)", &name);
      encoded = lb_imap_session_encode_mailbox (run->session, name);
      if (strcmp (e->kind, "folder-create") == 0)
        command = g_strdup_printf ("CREATE %s", encoded);
      else
        {
          /* A selected mailbox being deleted: leave it first. */
          if (g_strcmp0 (run->selected, name) == 0)
            g_clear_pointer (&run->selected, g_free);
          command = g_strdup_printf ("DELETE %s", encoded);
        }
    }
  lb_imap_session_command_async (run->session, command, NULL, g_task_get_cancellable (task),
                                 folder_op_cb, task);
}

static void
appended_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  guint32 validity = 0, uid = 0;
  GError *error = NULL;

  if (!lb_imap_session_append_finish (LB_IMAP_SESSION (source), result, &validity, &uid, &error))
    {
      if (fatal (error))
        {
          fail (task, error);
          return;
        }
      /* Refused (over quota, no such folder): kept here, the upload dropped. */
      g_warning ("Could not upload message %" G_GINT64_FORMAT ": %s", e->message_id,
                 error->message);
      g_error_free (error);
      entry_done (task, e, TRUE, 0, 0);
      return;
    }
  /* APPENDUID names the new UID; without it the folder's next sync finds the message by
   * its Message-ID. */
  entry_done (task, e, FALSE, e->row_folder, uid);
}

static void replay_append (GTask *task);

static void
upload_found_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  g_autoptr(LbImapSet) set = NULL;
  GError *error = NULL;
  guint32 uid = 0;

  set = lb_imap_session_uid_search_finish (LB_IMAP_SESSION (source), result, &error);
  if (set == NULL)
    {
      if (fatal (error))
        {
          fail (task, error);
          return;
        }
      g_error_free (error);
    }
  if (set != NULL)
    uid = lb_imap_set_max (set);
  if (uid == 0)
    {
      replay_append (task);
      return;
    }
  /* Uploaded by a run that ended before it could record the UID: that copy is ours. */
  g_debug ("Message %" G_GINT64_FORMAT " is on the server already as UID %u", e->message_id,
           uid);
  entry_done (task, e, FALSE, e->row_folder, uid);
}

static void
upload_look_selected (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  g_autoptr(LbStoreMessage) message = lb_store_get_message (run->store, e->message_id, NULL);
  g_autofree char *bracketed = NULL;
  g_autofree char *quoted = NULL;
  g_autofree char *criteria = NULL;

  gboolean plain = message != NULL && message->message_id != NULL;

  /* A quoted string carries printable ASCII only; anything else is not searched for. */
  for (const char *p = plain ? message->message_id : ""; *p != '\0'; p++)
    if (*p < 0x20 || *p > 0x7e)
      plain = FALSE;
  if (!plain || e->row_size == 0)
    {
      replay_append (task);
      return;
    }
  bracketed = g_strdup_printf ("<%s>", message->message_id);
  quoted = lb_imap_quote (bracketed);
  /* Same Message-ID and the very same size (LARGER and SMALLER are strict). */
  criteria = g_strdup_printf ("HEADER Message-ID %s LARGER %" G_GUINT64_FORMAT
                              " SMALLER %" G_GUINT64_FORMAT, quoted, e->row_size - 1,
                              e->row_size + 1);
  lb_imap_session_uid_search_async (run->session, criteria, g_task_get_cancellable (task),
                                    upload_found_cb, task);
}

/* An upload of a stored message (a saved draft, a sent copy, or a copy whose original is
 * not on the server). A run killed between the server's OK and recording the new UID
 * leaves the entry in the journal although the message is there: so the folder is first
 * searched for the same Message-ID and size, and a match is taken as the upload instead
 * of uploading it twice. */
static void
replay_append (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  Folder *f = g_hash_table_lookup (run->by_id, &e->row_folder);
  g_autoptr(GInputStream) body = NULL;
  GError *error = NULL;

  if (e->message_id == 0 || e->row_folder == 0 || e->row_uid != 0 || f == NULL)
    {
      /* Deleted since, already on the server, or its folder is gone there. */
      entry_done (task, e, TRUE, 0, 0);
      return;
    }
  if (run->store == NULL)
    run->store = lb_store_open (lb_store_writer_get_data_dir (run->self->writer), &error);
  if (run->store != NULL && !e->upload_checked)
    {
      e->upload_checked = TRUE;
      replay_select (task, e->row_folder, upload_look_selected);
      return;
    }
  if (run->store != NULL)
    body = lb_store_open_body (run->store, e->message_id, &error);
  if (body == NULL)
    {
      fail (task, error);
      return;
    }
  lb_imap_session_append_async (run->session, f->name, flag_names (e->row_flags), NULL, body,
                                (goffset) e->row_size, g_task_get_cancellable (task), appended_cb,
                                task);
}

static void
copied_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  g_autoptr(LbImapResult) done = NULL;
  GError *error = NULL;
  guint32 uid = 0;

  done = lb_imap_session_command_finish (LB_IMAP_SESSION (source), result, &error);
  if (done == NULL)
    {
      if (fatal (error))
        {
          fail (task, error);
          return;
        }
      /* The original is gone there: upload the copy's body instead. */
      g_error_free (error);
      replay_append (task);
      return;
    }
  if (done->tagged->code.kind == LB_IMAP_CODE_COPYUID && done->tagged->code.set2 != NULL &&
      lb_imap_set_count (done->tagged->code.set2) == 1)
    uid = g_array_index (done->tagged->code.set2->ranges, LbImapRange, 0).first;
  entry_done (task, e, FALSE, e->row_folder, uid);
}

static void
replay_copy_selected (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(xuxs)"), e->payload, NULL, NULL,
                                           NULL);
  gint64 src_folder, dest_folder;
  guint32 src_uid;
  const char *mid;
  Folder *dest;
  g_autofree char *encoded = NULL;
  g_autofree char *command = NULL;

  g_variant_get (v, "(xux&s)", &src_folder, &src_uid, &dest_folder, &mid);
  dest = g_hash_table_lookup (run->by_id, &e->row_folder);
  if (dest == NULL)
    {
      entry_done (task, e, TRUE, 0, 0);
      return;
    }
  encoded = lb_imap_session_encode_mailbox (run->session, dest->name);
  command = g_strdup_printf ("UID COPY %u %s", src_uid, encoded);
  lb_imap_session_command_async (run->session, command, NULL, g_task_get_cancellable (task),
                                 copied_cb, task);
}

static void
replay_copy (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e = entry (run);
  g_autoptr(GVariant) v = g_variant_parse (G_VARIANT_TYPE ("(xuxs)"), e->payload, NULL, NULL,
                                           NULL);
  gint64 src_folder, dest_folder;
  guint32 src_uid;
  const char *mid;

  g_variant_get (v, "(xux&s)", &src_folder, &src_uid, &dest_folder, &mid);
  if (e->message_id == 0 || e->row_uid != 0)
    {
      entry_done (task, e, TRUE, 0, 0);
      return;
    }
  if (src_uid == 0 || g_hash_table_lookup (run->by_id, &src_folder) == NULL)
    {
      replay_append (task);
      return;
    }
  replay_select (task, src_folder, replay_copy_selected);
}

static void
replay_next (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Entry *e;

  if (!check_written (task))
    return;
  /* A loop, not a recursion: a long journal of the other pass's entries is passed over. */
  while (run->journal_pos < run->journal->len && passed_over (run, entry (run)))
    run->journal_pos++;
  if (run->journal_pos >= run->journal->len)
    {
      run->index = 0;
      if (run->folder_ops)
        {
          run->folder_ops = FALSE;
          when_written (task, (GSourceFunc) step_folders);
        }
      else if (run->waited && !run->second_pass)
        {
          /* Flag changes of messages moved or uploaded in this pass: their UIDs are
           * known now (COPYUID, APPENDUID), so they need not wait for the next run. */
          run->second_pass = TRUE;
          run->waited = FALSE;
          when_written (task, (GSourceFunc) step_journal);
        }
      else
        when_written (task, (GSourceFunc) step_folder);
      return;
    }
  e = entry (run);
  if (run->folder_ops)
    replay_folder_op (task);
  else if (strcmp (e->kind, "append") == 0)
    replay_append (task);
  else if (strcmp (e->kind, "copy") == 0)
    replay_copy (task);
  else if (strcmp (e->kind, "flags") == 0 || strcmp (e->kind, "move") == 0 ||
           strcmp (e->kind, "expunge") == 0)
    replay_batch (task);
  else
    {
      g_warning ("Unknown journal entry “%s” left alone", e->kind);
      run->journal_pos++;
      replay_next (task);
    }
}

static void
journal_read (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  trace (run, "journal read: %u entries", run->journal->len);
  replay_next (task);
}

static void
step_journal (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  JournalRead *job = g_new0 (JournalRead, 1);

  g_clear_pointer (&run->journal, g_ptr_array_unref);
  run->journal = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  run->journal_pos = 0;
  job->account_id = g_strdup (run->self->account->id);
  job->entries = g_ptr_array_ref (run->journal);
  exec (task, read_journal, job, (GDestroyNotify) journal_read_free);
  when_written (task, (GSourceFunc) journal_read);
}

/* ---- 4. one folder ---------------------------------------------------------------- */

typedef struct
{
  gint64 folder_id;
  guint32 uidvalidity;
  guint64 modseq;
  guint32 max_uid;
  guint32 highest_uid; /* the highest UID the store holds */
  guint count;         /* messages with a UID (uids->len), unless counted is FALSE */
  gboolean counted;
  GArray *uids;        /* all of them, unless QRESYNC will tell what changed */
  gboolean qresync;
} FolderState;

static void
folder_state_free (FolderState *state)
{
  g_clear_pointer (&state->uids, g_array_unref);
  g_free (state);
}

static gboolean
read_folder_state (sqlite3  *db,
                   gpointer  data,
                   GError  **error)
{
  FolderState *state = data;
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2 (db, "SELECT coalesce (uidvalidity, 0), coalesce (highestmodseq, 0),"
                                   " coalesce (uidnext, 0) FROM folders WHERE id = ?1",
                               -1, &s, NULL);

  if (rc == SQLITE_OK)
    {
      sqlite3_bind_int64 (s, 1, state->folder_id);
      rc = sqlite3_step (s);
      if (rc == SQLITE_ROW)
        {
          state->uidvalidity = (guint32) sqlite3_column_int64 (s, 0);
          state->modseq = (guint64) sqlite3_column_int64 (s, 1);
          state->max_uid = (guint32) sqlite3_column_int64 (s, 2);
        }
    }
  sqlite3_finalize (s);
  if (!sql_ok (db, rc, error))
    return FALSE;
  /* max () alone is one step down the (folder_id, uid) index; with count () beside it
   * SQLite would walk every entry of the folder. */
  rc = sqlite3_prepare_v2 (db, "SELECT coalesce (max (uid), 0) FROM messages "
                               "WHERE folder_id = ?1 AND uid IS NOT NULL", -1, &s, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_bind_int64 (s, 1, state->folder_id);
      rc = sqlite3_step (s);
      if (rc == SQLITE_ROW)
        state->highest_uid = (guint32) sqlite3_column_int64 (s, 0);
    }
  sqlite3_finalize (s);
  if (!sql_ok (db, rc, error))
    return FALSE;
  state->uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  /* With QRESYNC the server says what vanished and changed: no need for the UID list nor
   * their number, which is what keeps a no-change resync of a large folder cheap. */
  if (state->qresync && state->uidvalidity != 0 && state->modseq != 0)
    return TRUE;
  if (!collect_uids (db, "SELECT uid FROM messages WHERE folder_id = ?1 AND uid IS NOT NULL "
                         "ORDER BY uid", state->folder_id, 0, state->uids, error))
    return FALSE;
  state->count = state->uids->len;
  state->counted = TRUE;
  return TRUE;
}

typedef struct
{
  gint64 folder_id;
  GArray *changes; /* Change */
  gint *changed;   /* the run's count of messages whose flags changed here */
} FlagsJob;

static void
flags_job_free (FlagsJob *job)
{
  g_array_unref (job->changes);
  g_free (job);
}

/* Writer thread: the server's flags, except where a local change waits for replay. */
static gboolean
store_flags (sqlite3  *db,
             gpointer  data,
             GError  **error)
{
  FlagsJob *job = data;
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2 (db, "UPDATE messages SET flags = ?3, keywords = ?4, modseq = ?5 "
                                   "WHERE folder_id = ?1 AND uid = ?2 AND (flags <> ?3 OR "
                                   "keywords <> ?4) AND NOT EXISTS (SELECT 1 FROM journal j "
                                   "WHERE j.message_id = messages.id)", -1, &s, NULL);

  for (guint i = 0; rc == SQLITE_OK && i < job->changes->len; i++)
    {
      Change *c = &g_array_index (job->changes, Change, i);

      sqlite3_reset (s);
      sqlite3_bind_int64 (s, 1, job->folder_id);
      sqlite3_bind_int64 (s, 2, c->uid);
      sqlite3_bind_int (s, 3, (int) c->flags);
      sqlite3_bind_text (s, 4, c->keywords != NULL ? c->keywords : "", -1, SQLITE_STATIC);
      sqlite3_bind_int64 (s, 5, (sqlite3_int64) c->modseq);
      rc = sqlite3_step (s);
      if (rc == SQLITE_DONE)
        {
          g_atomic_int_add (job->changed, sqlite3_changes (db));
          rc = SQLITE_OK;
        }
    }
  sqlite3_finalize (s);
  return sql_ok (db, rc, error);
}

typedef struct
{
  gint64 folder_id;
  guint32 uidvalidity;
  guint64 modseq;
  guint32 max_uid;
  gboolean reset;   /* UIDVALIDITY changed: forget the old UIDs first */
  gboolean complete;
} StateJob;

static gboolean
store_state (sqlite3  *db,
             gpointer  data,
             GError  **error)
{
  StateJob *job = data;
  char *sql;
  int rc;

  if (job->reset)
    sql = sqlite3_mprintf ("UPDATE messages SET uid = NULL WHERE folder_id = %lld; "
                           "UPDATE folders SET uidvalidity = %u, highestmodseq = 0, uidnext = 0, "
                           "synced = 0 WHERE id = %lld",
                           (long long) job->folder_id, job->uidvalidity,
                           (long long) job->folder_id);
  else
    sql = sqlite3_mprintf ("UPDATE folders SET uidvalidity = %u, highestmodseq = %llu, "
                           "uidnext = max (coalesce (uidnext, 0), %u), synced = %lld WHERE id = %lld",
                           job->uidvalidity, (unsigned long long) job->modseq, job->max_uid,
                           (long long) (job->complete ? g_get_real_time () / G_USEC_PER_SEC : 0),
                           (long long) job->folder_id);
  rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
  sqlite3_free (sql);
  return sql_ok (db, rc, error);
}

static void next_folder (GTask *task);
static void fetch_new (GTask *task);

static void
flags_stored_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  lb_store_writer_exec_finish (LB_STORE_WRITER (source), result, &error);
  pending_done (task, error);
  (void) run;
}

static void
submit_flags (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  FlagsJob *job;

  if (run->changes == NULL || run->changes->len == 0)
    return;
  job = g_new0 (FlagsJob, 1);
  job->folder_id = current (run)->id;
  job->changes = g_steal_pointer (&run->changes);
  /* Counted as the store changes: a UID/flags diff lists every message, changed or not. */
  job->changed = (gint *) &run->stats.flag_updates;
  crash_point ("flags");
  run->pending++;
  lb_store_writer_exec_async (run->self->writer, store_flags, job,
                              (GDestroyNotify) flags_job_free, g_task_get_cancellable (task),
                              flags_stored_cb, g_object_ref (task));
}

static void
collect_change (LbImapResponse *r,
                gpointer        user_data)
{
  Run *run = user_data;
  Change c = { 0 };

  if (r->data != LB_IMAP_DATA_FETCH || r->fetch == NULL ||
      !(r->fetch->present & LB_IMAP_FETCH_UID) || !(r->fetch->present & LB_IMAP_FETCH_FLAGS))
    return;
  c.uid = r->fetch->uid;
  c.flags = parse_flags (r->fetch->flags, &c.keywords);
  c.modseq = r->fetch->modseq;
  if (run->changes == NULL)
    {
      run->changes = g_array_new (FALSE, FALSE, sizeof (Change));
      g_array_set_clear_func (run->changes, (GDestroyNotify) change_clear);
    }
  g_array_append_val (run->changes, c);
  if (run->server_uids != NULL)
    g_array_append_val (run->server_uids, c.uid);
}

static void
expunge (GTask  *task,
         GArray *uids)
{
  Run *run = g_task_get_task_data (task);

  if (uids->len == 0)
    return;
  run->stats.expunged += uids->len;
  run->pending++;
  lb_store_writer_expunge_uids_async (run->self->writer, current (run)->id,
                                      (const guint32 *) (gpointer) uids->data, uids->len,
                                      g_task_get_cancellable (task),
                                      (GAsyncReadyCallback) flags_stored_cb, g_object_ref (task));
}

static void search_all_cb (GObject *source, GAsyncResult *result, gpointer user_data);

/* The UID/flags diff (and CONDSTORE): local UIDs the server did not list are gone. */
static void
diff_fetched_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(GArray) gone = g_array_new (FALSE, FALSE, sizeof (guint32));
  GError *error = NULL;

  if (!lb_imap_session_uid_fetch_finish (LB_IMAP_SESSION (source), result, &error) &&
      !g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_NO))
    {
      fail (task, error);
      return;
    }
  g_clear_error (&error);
  submit_flags (task);
  if (run->server_uids != NULL)
    {
      g_array_sort (run->server_uids, compare_uid);
      for (guint i = 0, j = 0; i < run->local_uids->len; i++)
        {
          guint32 uid = g_array_index (run->local_uids, guint32, i);

          while (j < run->server_uids->len && g_array_index (run->server_uids, guint32, j) < uid)
            j++;
          if (j >= run->server_uids->len || g_array_index (run->server_uids, guint32, j) != uid)
            g_array_append_val (gone, uid);
        }
      expunge (task, gone);
      fetch_new (task);
      return;
    }
  /* CONDSTORE: which of the known UIDs are still there. */
  {
    g_autofree char *criteria = g_strdup_printf ("UID 1:%u", run->known_max_uid);

    lb_imap_session_uid_search_async (run->session, criteria, g_task_get_cancellable (task),
                                      search_all_cb, task);
  }
}

static void
search_all_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapSet) set = NULL;
  g_autoptr(GArray) gone = g_array_new (FALSE, FALSE, sizeof (guint32));
  GError *error = NULL;

  set = lb_imap_session_uid_search_finish (LB_IMAP_SESSION (source), result, &error);
  if (set == NULL)
    {
      fail (task, error);
      return;
    }
  for (guint i = 0; i < run->local_uids->len; i++)
    {
      guint32 uid = g_array_index (run->local_uids, guint32, i);

      if (!lb_imap_set_contains (set, uid))
        g_array_append_val (gone, uid);
    }
  expunge (task, gone);
  fetch_new (task);
}

static void sync_known (GTask *task);

typedef struct
{
  gint64 folder_id;
  GArray *uids;
} UidsRead;

static void
uids_read_free (UidsRead *job)
{
  g_array_unref (job->uids);
  g_free (job);
}

static gboolean
read_uids (sqlite3  *db,
           gpointer  data,
           GError  **error)
{
  UidsRead *job = data;

  return collect_uids (db, "SELECT uid FROM messages WHERE folder_id = ?1 AND uid IS NOT NULL "
                           "ORDER BY uid", job->folder_id, 0, job->uids, error);
}

static void
uids_read (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  run->local_count = run->local_uids->len;
  run->local_counted = TRUE;
  sync_known (task);
}

static void
read_local_uids (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  UidsRead *job = g_new0 (UidsRead, 1);

  g_array_set_size (run->local_uids, 0);
  job->folder_id = current (run)->id;
  job->uids = g_array_ref (run->local_uids);
  exec (task, read_uids, job, (GDestroyNotify) uids_read_free);
  when_written (task, (GSourceFunc) uids_read);
}

/* Flags and expunges of the messages the store knows, when QRESYNC did not tell. */
static void
sync_known (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  g_autofree char *range = NULL;

  if (run->known_max_uid == 0)
    {
      fetch_new (task);
      return;
    }
  if (!run->local_counted)
    {
      /* Skipped in the hope of QRESYNC, which the server did not do after all. */
      read_local_uids (task);
      return;
    }
  if (run->local_count == 0)
    {
      fetch_new (task);
      return;
    }
  range = g_strdup_printf ("1:%u", run->known_max_uid);
  if (run->condstore && run->local_modseq != 0 && run->info->highestmodseq != 0)
    {
      run->stats.method = "condstore";
      if (run->info->highestmodseq == run->local_modseq && run->info->exists == run->local_count)
        {
          /* Nothing changed and nothing went. */
          fetch_new (task);
          return;
        }
      /* Changed flags since the last modseq; expunges from the UIDs still there. */
      lb_imap_session_uid_fetch_async (run->session, range, "FLAGS", run->local_modseq,
                                       collect_change, run, g_task_get_cancellable (task),
                                       (GAsyncReadyCallback) diff_fetched_cb, task);
      return;
    }
  run->stats.method = "uid-diff";
  run->server_uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  lb_imap_session_uid_fetch_async (run->session, range, "FLAGS", 0, collect_change, run,
                                   g_task_get_cancellable (task),
                                   (GAsyncReadyCallback) diff_fetched_cb, task);
}

/* New messages: their UIDs above what the store has, newest first, in chunks. */
static void fetch_headers_chunk (GTask *task);

static void
header_added_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GError *error = NULL;

  lb_store_writer_add_finish (LB_STORE_WRITER (source), result, &error);
  pending_done (user_data, error);
}

static LbStoreMessage *
message_from_fetch (Run             *run,
                    LbImapFetch     *fetch,
                    GBytes          *raw,
                    gboolean         whole)
{
  /* Rows are keyed by UID: no content key; a header block has no text to index. */
  LbStoreMessage *m = lb_store_message_from_bytes_full (raw, current (run)->id,
                                                        whole ? LB_STORE_MESSAGE_BODY_TEXT
                                                              : LB_STORE_MESSAGE_SUMMARY,
                                                        NULL);

  if (m == NULL)
    {
      /* Not parseable as a message: still listed, by its UID, so nothing is lost. */
      m = lb_store_message_new ();
      m->folder_id = current (run)->id;
      m->subject = g_strdup (_("(unreadable message)"));
    }
  m->uid = fetch->uid;
  m->flags = parse_flags (fetch->flags, &m->keywords);
  m->modseq = fetch->modseq;
  m->internal_date = lb_imap_parse_internal_date (fetch->internaldate);
  if (m->date == 0)
    m->date = m->internal_date;
  if (fetch->present & LB_IMAP_FETCH_SIZE)
    m->size = fetch->size;
  return m;
}

static void
on_header (LbImapResponse *r,
           gpointer        user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  LbImapFetch *fetch = r->fetch;
  g_autoptr(GBytes) raw = NULL;
  LbStoreMessage *m;

  if (r->data != LB_IMAP_DATA_FETCH || fetch == NULL || !(fetch->present & LB_IMAP_FETCH_UID) ||
      fetch->uid <= run->local_max_uid)
    return;
  for (guint i = 0; fetch->sections != NULL && i < fetch->sections->len; i++)
    {
      LbImapSection *section = g_ptr_array_index (fetch->sections, i);

      if (section->value != NULL && section->value->kind == LB_IMAP_VALUE_STRING)
        raw = g_bytes_new (section->value->str, section->value->len);
    }
  if (raw == NULL)
    raw = g_bytes_new_static ("", 0);
  m = message_from_fetch (run, fetch, raw, FALSE);
  run->stats.new_messages++;
  if (run->parsed == NULL)
    run->parsed = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_store_message_free);
  g_ptr_array_add (run->parsed, m);
}

static void
headers_added_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GError *error = NULL;

  lb_store_writer_add_many_finish (LB_STORE_WRITER (source), result, &error);
  pending_done (user_data, error);
}

/* The headers of one FETCH go to the writer as one job when it completes: queued one by
 * one as they were parsed, they would reach a writer that is faster than the parsing a
 * few at a time, every commit of a few rows rewriting the same index and FTS pages, and
 * each costing a task and a wake-up of this thread. */
static void
queue_headers (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  if (run->parsed == NULL)
    return;
  run->pending++;
  lb_store_writer_add_many_async (run->self->writer, g_steal_pointer (&run->parsed),
                                  g_task_get_cancellable (task), headers_added_cb,
                                  g_object_ref (task));
}

/* Each header FETCH in flight holds the task. */
static void
headers_fetched_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  run->fetches--;
  if (!lb_imap_session_uid_fetch_finish (LB_IMAP_SESSION (source), result, &error))
    {
      if (!run->finished)
        fail (task, error);
      else
        g_error_free (error);
    }
  else if (!run->finished)
    {
      queue_headers (task);
      trace (run, "headers FETCH done (%u of %u asked for, %u writer jobs pending)",
             run->wanted_pos, run->wanted->len, run->pending);
      progress (run, current (run)->name, run->wanted_pos, run->wanted->len);
      crash_point ("headers");
      fetch_headers_chunk (task);
    }
  g_object_unref (task);
}

static void
save_state (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  StateJob *job = g_new0 (StateJob, 1);
  guint32 max_uid = run->local_max_uid;

  for (guint i = 0; i < run->wanted->len; i++)
    max_uid = MAX (max_uid, g_array_index (run->wanted, guint32, i));
  job->folder_id = current (run)->id;
  job->uidvalidity = run->info->uidvalidity;
  job->modseq = run->info->highestmodseq;
  job->max_uid = max_uid;
  job->complete = TRUE;
  trace (run, "“%s”: state queued (%u writer jobs pending)", current (run)->name, run->pending);
  crash_point ("state");
  exec (task, store_state, job, g_free);
  run->stats.folders++;
  when_written (task, (GSourceFunc) next_folder);
}

static void
fetch_headers_chunk (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  g_autofree char *set = NULL;
  guint n;

  if (!check_written (task))
    return;
  if (run->wanted_pos >= run->wanted->len)
    {
      if (run->fetches == 0)
        save_state (task);
      return; /* else the last FETCH's callback comes back here */
    }
  /* Pipelined: the server sends the next chunk while this one is parsed and stored. */
  while (run->fetches < HEADER_FETCHES && run->wanted_pos < run->wanted->len)
    {
      n = MIN (header_chunk (), run->wanted->len - run->wanted_pos);
      set = uid_set_string (&g_array_index (run->wanted, guint32, run->wanted_pos), n);
      run->wanted_pos += n;
      run->fetches++;
      lb_imap_session_uid_fetch_async (run->session, set,
                                       run->condstore ? HEADER_ITEMS " MODSEQ" : HEADER_ITEMS, 0,
                                       on_header, task, g_task_get_cancellable (task),
                                       headers_fetched_cb, g_object_ref (task));
      g_clear_pointer (&set, g_free);
    }
}

static void
new_uids_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapSet) set = NULL;
  GError *error = NULL;

  set = lb_imap_session_uid_search_finish (LB_IMAP_SESSION (source), result, &error);
  if (set == NULL)
    {
      fail (task, error);
      return;
    }
  g_clear_pointer (&run->wanted, g_array_unref);
  run->wanted = g_array_new (FALSE, FALSE, sizeof (guint32));
  run->wanted_pos = 0;
  /* Newest first: the ranges come sorted as sent; walk them from the end. */
  for (guint i = set->ranges->len; i > 0; i--)
    {
      LbImapRange *range = &g_array_index (set->ranges, LbImapRange, i - 1);
      guint32 lo = MIN (range->first, range->last), hi = MAX (range->first, range->last);

      for (guint32 uid = hi; uid >= lo && uid > run->local_max_uid; uid--)
        {
          g_array_append_val (run->wanted, uid);
          if (uid == 0)
            break;
        }
    }
  trace (run, "UID SEARCH: %u new", run->wanted->len);
  /* The server may send the ranges unordered: newest first overall. */
  g_array_sort (run->wanted, compare_uid);
  for (guint i = 0, j = run->wanted->len; i < j / 2; i++)
    {
      guint32 t = g_array_index (run->wanted, guint32, i);

      g_array_index (run->wanted, guint32, i) = g_array_index (run->wanted, guint32, j - 1 - i);
      g_array_index (run->wanted, guint32, j - 1 - i) = t;
    }
  fetch_headers_chunk (task);
}

static void
fetch_new (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  g_autofree char *criteria = NULL;

  if (run->info->exists == 0 ||
      (run->info->uidnext != 0 && run->info->uidnext <= run->local_max_uid + 1))
    {
      g_clear_pointer (&run->wanted, g_array_unref);
      run->wanted = g_array_new (FALSE, FALSE, sizeof (guint32));
      run->wanted_pos = 0;
      fetch_headers_chunk (task);
      return;
    }
  criteria = g_strdup_printf ("UID %u:*", run->local_max_uid + 1);
  lb_imap_session_uid_search_async (run->session, criteria, g_task_get_cancellable (task),
                                    new_uids_cb, task);
}

static void
on_qresync_change (LbImapResponse *r,
                   gpointer        user_data)
{
  collect_change (r, user_data);
}

static void
folder_state_read (GTask *task);

static void
selected_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  Folder *f = current (run);
  GError *error = NULL;

  g_clear_pointer (&run->info, lb_imap_mailbox_info_free);
  run->info = lb_imap_session_select_finish (LB_IMAP_SESSION (source), result, &error);
  if (run->info == NULL)
    {
      if (fatal (error))
        {
          fail (task, error);
          return;
        }
      /* Deleted on the server since the LIST: the next sync removes it here. */
      g_debug ("Skipping “%s”: %s", f->name, error->message);
      g_error_free (error);
      next_folder (task);
      return;
    }
  g_free (run->selected);
  run->selected = g_strdup (f->name);
  trace (run, "“%s” selected: %u messages%s", f->name, run->info->exists,
         run->info->qresync ? ", QRESYNC" : "");

  if (run->local_validity != 0 && run->info->uidvalidity != run->local_validity)
    {
      /* The server renumbered the folder: the rows lose their UIDs and are taken back by
       * Message-ID as the headers come in again; those left over are removed after. */
      StateJob *job = g_new0 (StateJob, 1);

      g_debug ("UIDVALIDITY of “%s” changed from %u to %u", f->name, run->local_validity,
               run->info->uidvalidity);
      job->folder_id = f->id;
      job->uidvalidity = run->info->uidvalidity;
      job->reset = TRUE;
      exec (task, store_state, job, g_free);
      run->reset = TRUE;
      run->stats.uidvalidity_resets++;
      run->local_max_uid = 0;
      run->known_max_uid = 0;
      run->local_modseq = 0;
      g_array_set_size (run->local_uids, 0);
      g_clear_pointer (&run->changes, g_array_unref);
      fetch_new (task);
      return;
    }
  if (run->info->qresync)
    {
      g_autoptr(GArray) gone = g_array_new (FALSE, FALSE, sizeof (guint32));

      run->stats.method = "qresync";
      if (run->info->vanished != NULL)
        {
          g_autofree char *text = lb_imap_set_to_string (run->info->vanished);

          g_debug ("“%s”: vanished %s (store up to UID %u)", f->name, text, run->known_max_uid);
        }
      submit_flags (task);
      for (guint i = 0; run->info->vanished != NULL && i < run->info->vanished->ranges->len; i++)
        {
          LbImapRange *range = &g_array_index (run->info->vanished->ranges, LbImapRange, i);

          for (guint32 uid = MIN (range->first, range->last);
               uid <= MAX (range->first, range->last) && uid <= run->known_max_uid; uid++)
            {
              g_array_append_val (gone, uid);
              if (uid == G_MAXUINT32)
                break;
            }
        }
      expunge (task, gone);
      fetch_new (task);
      return;
    }
  sync_known (task);
}


typedef struct
{
  GTask *task;
  FolderState *state;
} StateRead;

static void
state_read_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  StateRead *read = user_data;
  GTask *task = read->task;
  Run *run = g_task_get_task_data (task);
  Folder *f = current (run);
  FolderState *state = read->state;
  GError *error = NULL;
  LbImapQresyncParams params = { 0 };

  g_free (read);
  if (!lb_store_writer_exec_finish (LB_STORE_WRITER (source), result, &error))
    {
      folder_state_free (state);
      fail (task, error);
      return;
    }
  run->local_validity = state->uidvalidity;
  run->local_modseq = state->modseq;
  run->local_max_uid = state->max_uid;
  g_clear_pointer (&run->local_uids, g_array_unref);
  run->local_uids = g_steal_pointer (&state->uids);
  /* New mail is what lies above the saved state, not above the highest UID the store
   * holds: headers come newest first, so a sync killed half way holds the newest and
   * not yet the older ones (their adds are idempotent when fetched again). */
  run->known_max_uid = MAX (run->local_max_uid, state->highest_uid);
  run->local_count = state->count;
  run->local_counted = state->counted;
  trace (run, "“%s”: state read (%u UIDs loaded), SELECT", f->name, run->local_uids->len);
  folder_state_free (state);
  run->reset = FALSE;
  g_clear_pointer (&run->changes, g_array_unref);
  g_clear_pointer (&run->server_uids, g_array_unref);
  progress (run, f->name, 0, 0);

  params.uidvalidity = run->local_validity;
  params.modseq = run->local_modseq;
  lb_imap_session_select_async (run->session, f->name, FALSE,
                                run->qresync && run->local_validity != 0 && run->local_modseq != 0
                                  ? &params : NULL,
                                on_qresync_change, run, g_task_get_cancellable (task),
                                selected_cb, task);
}

static void
folder_state_read (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  StateRead *read = g_new0 (StateRead, 1);
  FolderState *state = g_new0 (FolderState, 1);

  state->folder_id = current (run)->id;
  state->qresync = run->qresync;
  trace (run, "“%s”: folder started", current (run)->name);
  read->task = task;
  read->state = state;
  /* The state object outlives the job: the callback frees it. */
  lb_store_writer_exec_async (run->self->writer, read_folder_state, state, NULL,
                              g_task_get_cancellable (task), state_read_cb, read);
}


typedef struct
{
  gint64 folder_id;
  GArray *ids;
} LeftOver;

static void
left_over_free (LeftOver *job)
{
  g_array_unref (job->ids);
  g_free (job);
}

/* Writer thread: after a UIDVALIDITY reset, the rows no server message took back. */
static gboolean
read_left_over (sqlite3  *db,
                gpointer  data,
                GError  **error)
{
  LeftOver *job = data;
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2 (db, "SELECT id FROM messages m WHERE folder_id = ?1 AND uid IS NULL "
                                   "AND NOT EXISTS (SELECT 1 FROM journal j WHERE "
                                   "j.message_id = m.id)", -1, &s, NULL);

  if (rc == SQLITE_OK)
    sqlite3_bind_int64 (s, 1, job->folder_id);
  while (rc == SQLITE_OK && (rc = sqlite3_step (s)) == SQLITE_ROW)
    {
      gint64 id = sqlite3_column_int64 (s, 0);

      g_array_append_val (job->ids, id);
      rc = SQLITE_OK;
    }
  sqlite3_finalize (s);
  return sql_ok (db, rc, error);
}

static void
deleted_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GError *error = NULL;

  lb_store_writer_delete_finish (LB_STORE_WRITER (source), result, &error);
  /* Already gone is fine. */
  if (g_error_matches (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND))
    g_clear_error (&error);
  pending_done (user_data, error);
}

typedef struct
{
  GTask *task;
  LeftOver *job;
} LeftOverRead;

static void
left_over_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  LeftOverRead *read = user_data;
  GTask *task = read->task;
  Run *run = g_task_get_task_data (task);
  LeftOver *job = read->job;
  GError *error = NULL;

  g_free (read);
  if (!lb_store_writer_exec_finish (LB_STORE_WRITER (source), result, &error))
    {
      left_over_free (job);
      fail (task, error);
      return;
    }
  for (guint i = 0; i < job->ids->len; i++)
    {
      run->pending++;
      run->stats.expunged++;
      lb_store_writer_delete_async (run->self->writer, g_array_index (job->ids, gint64, i),
                                    g_task_get_cancellable (task), deleted_cb, g_object_ref (task));
    }
  left_over_free (job);
  run->index++;
  when_written (task, (GSourceFunc) step_folder);
}

static void
next_folder (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  trace (run, "“%s”: folder done", current (run)->name);
  if (run->reset)
    {
      LeftOverRead *read = g_new0 (LeftOverRead, 1);

      run->reset = FALSE;
      read->task = task;
      read->job = g_new0 (LeftOver, 1);
      read->job->folder_id = current (run)->id;
      read->job->ids = g_array_new (FALSE, FALSE, sizeof (gint64));
      lb_store_writer_exec_async (run->self->writer, read_left_over, read->job, NULL,
                                  g_task_get_cancellable (task), left_over_cb, read);
      return;
    }
  run->index++;
  step_folder (task);
}

static void
step_folder (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  if (!check_written (task))
    return;
  while (run->index < run->folders->len &&
         (!current (run)->selectable ||
          ((run->flags & LB_IMAP_SYNC_INBOX_ONLY) && current (run)->role != LB_FOLDER_ROLE_INBOX)))
    run->index++;
  if (run->index >= run->folders->len)
    {
      run->index = 0;
      step_bodies (task);
      return;
    }
  folder_state_read (task);
}

/* ---- 5. bodies -------------------------------------------------------------------- */

typedef struct
{
  gint64 folder_id;
  gint64 since;      /* internal date lower bound, or 0 */
  GArray *uids;
} BodiesRead;

static gboolean
read_missing_bodies (sqlite3  *db,
                     gpointer  data,
                     GError  **error)
{
  BodiesRead *job = data;

  return collect_uids (db, "SELECT uid FROM messages WHERE folder_id = ?1 AND "
                           "uid IS NOT NULL AND body_state <> 2 AND internal_date >= ?2 "
                           "ORDER BY uid DESC", job->folder_id, job->since, job->uids, error);
}

static gpointer
sink_begin (const LbImapLiteralInfo *info,
            gpointer                 user_data,
            GError                 **error)
{
  Run *run = user_data;
  GByteArray *buffer = g_byte_array_sized_new ((guint) MIN (info->size, 64 * 1024 * 1024));

  g_hash_table_replace (run->streamed, GUINT_TO_POINTER (info->seq), buffer);
  return buffer;
}

static gboolean
sink_write (gpointer      handle,
            const guint8 *data,
            gsize         len,
            gpointer      user_data,
            GError      **error)
{
  g_byte_array_append (handle, data, (guint) len);
  return TRUE;
}

static gboolean
sink_end (gpointer   handle,
          gpointer   user_data,
          GError   **error)
{
  return TRUE;
}

static void
sink_abort (gpointer handle,
            gpointer user_data)
{
}

static const LbImapLiteralSink body_sink = { sink_begin, sink_write, sink_end, sink_abort };

static void fetch_bodies_chunk (GTask *task);

static void
on_body (LbImapResponse *r,
         gpointer        user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  LbImapFetch *fetch = r->fetch;
  g_autoptr(GBytes) raw = NULL;
  g_autoptr(GInputStream) stream = NULL;
  LbStoreMessage *m;

  if (r->data != LB_IMAP_DATA_FETCH || fetch == NULL || !(fetch->present & LB_IMAP_FETCH_UID))
    return;
  for (guint i = 0; fetch->sections != NULL && i < fetch->sections->len; i++)
    {
      LbImapSection *section = g_ptr_array_index (fetch->sections, i);

      if (section->value == NULL || strcmp (section->name, "BODY[]") != 0)
        continue;
      if (section->value->kind == LB_IMAP_VALUE_STRING)
        raw = g_bytes_new (section->value->str, section->value->len);
      else if (section->value->kind == LB_IMAP_VALUE_STREAMED)
        {
          GByteArray *buffer = NULL;

          if (g_hash_table_steal_extended (run->streamed, GUINT_TO_POINTER (r->number), NULL,
                                           (gpointer *) &buffer))
            raw = g_byte_array_free_to_bytes (buffer);
        }
    }
  if (raw == NULL)
    return; /* the server sent flags only (a change); the body comes another time */
  m = message_from_fetch (run, fetch, raw, TRUE);
  stream = g_memory_input_stream_new_from_bytes (raw);
  run->stats.bodies++;
  run->pending++;
  lb_store_writer_add_async (run->self->writer, m, stream, (goffset) g_bytes_get_size (raw),
                             g_task_get_cancellable (task), header_added_cb, g_object_ref (task));
}

static void
bodies_fetched (GObject      *source,
                GAsyncResult *result,
                GTask        *task)
{
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  run->fetches--;
  if (run->finished)
    return;
  if (!lb_imap_session_uid_fetch_finish (LB_IMAP_SESSION (source), result, &error))
    {
      lb_imap_session_set_literal_sink (run->session, NULL, NULL);
      fail (task, error);
      return;
    }
  progress (run, current (run)->name, run->wanted_pos, run->wanted->len);
  crash_point ("bodies");
  /* The network and the writer work at once, but the writer is kept at most a few
   * chunks behind, so memory stays bounded. */
  if (run->pending > BODY_CHUNK * BODY_FETCHES)
    when_written (task, (GSourceFunc) fetch_bodies_chunk);
  else
    fetch_bodies_chunk (task);
}

/* Each FETCH in flight holds the task. */
static void
bodies_fetched_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;

  bodies_fetched (source, result, task);
  g_object_unref (task);
}

static void next_bodies_folder (GTask *task);

static void
fetch_bodies_chunk (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  g_autofree char *set = NULL;
  guint n;

  if (run->wanted_pos >= run->wanted->len)
    {
      if (run->fetches > 0)
        return; /* the last one's callback comes back here */
      /* Once only: a wait for the writer set by an earlier chunk must not come back. */
      if (run->after_pending == (GSourceFunc) fetch_bodies_chunk)
        run->after_pending = NULL;
      lb_imap_session_set_literal_sink (run->session, NULL, NULL);
      run->index++;
      next_bodies_folder (task);
      return;
    }
  /* Pipelined: the next chunk is asked for while the last one arrives. */
  while (run->fetches < BODY_FETCHES && run->wanted_pos < run->wanted->len)
    {
      n = MIN (BODY_CHUNK, run->wanted->len - run->wanted_pos);
      set = uid_set_string (&g_array_index (run->wanted, guint32, run->wanted_pos), n);
      run->wanted_pos += n;
      run->fetches++;
      lb_imap_session_uid_fetch_async (run->session, set, "UID FLAGS INTERNALDATE RFC822.SIZE "
                                       "BODY.PEEK[]", 0, on_body, task,
                                       g_task_get_cancellable (task), bodies_fetched_cb,
                                       g_object_ref (task));
      g_clear_pointer (&set, g_free);
    }
}

typedef struct
{
  GTask *task;
  BodiesRead *job;
} BodiesWait;

static void
bodies_selected_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(LbImapMailboxInfo) info = NULL;
  GError *error = NULL;

  info = lb_imap_session_select_finish (LB_IMAP_SESSION (source), result, &error);
  if (info == NULL)
    {
      if (fatal (error))
        {
          fail (task, error);
          return;
        }
      g_error_free (error);
      run->index++;
      next_bodies_folder (task);
      return;
    }
  g_free (run->selected);
  run->selected = g_strdup (current (run)->name);
  lb_imap_session_set_literal_sink (run->session, &body_sink, run);
  fetch_bodies_chunk (task);
}

static void
missing_read_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  BodiesWait *wait = user_data;
  GTask *task = wait->task;
  Run *run = g_task_get_task_data (task);
  BodiesRead *job = wait->job;
  GError *error = NULL;

  g_free (wait);
  if (!lb_store_writer_exec_finish (LB_STORE_WRITER (source), result, &error))
    {
      g_array_unref (job->uids);
      g_free (job);
      fail (task, error);
      return;
    }
  g_clear_pointer (&run->wanted, g_array_unref);
  run->wanted = job->uids;
  run->wanted_pos = 0;
  g_free (job);
  trace (run, "“%s”: %u bodies to fetch", current (run)->name, run->wanted->len);
  if (run->wanted->len == 0)
    {
      run->index++;
      next_bodies_folder (task);
      return;
    }
  if (g_strcmp0 (run->selected, current (run)->name) == 0)
    {
      lb_imap_session_set_literal_sink (run->session, &body_sink, run);
      fetch_bodies_chunk (task);
      return;
    }
  lb_imap_session_select_async (run->session, current (run)->name, FALSE, NULL, NULL, NULL,
                                g_task_get_cancellable (task), bodies_selected_cb, task);
}

static void
next_bodies_folder (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  const LbAccount *account = run->self->account;
  BodiesWait *wait;

  if (!check_written (task))
    return;
  while (run->index < run->folders->len &&
         (!current (run)->selectable ||
          ((run->flags & LB_IMAP_SYNC_INBOX_ONLY) && current (run)->role != LB_FOLDER_ROLE_INBOX)))
    run->index++;
  if (run->index >= run->folders->len)
    {
      when_written (task, (GSourceFunc) step_done);
      return;
    }
  wait = g_new0 (BodiesWait, 1);
  wait->task = task;
  wait->job = g_new0 (BodiesRead, 1);
  wait->job->folder_id = current (run)->id;
  wait->job->uids = g_array_new (FALSE, FALSE, sizeof (guint32));
  if (account->bodies == LB_ACCOUNT_BODIES_RECENT)
    wait->job->since = g_get_real_time () / G_USEC_PER_SEC - (gint64) account->bodies_days * 86400;
  lb_store_writer_exec_async (run->self->writer, read_missing_bodies, wait->job, NULL,
                              g_task_get_cancellable (task), missing_read_cb, wait);
}

static void
step_bodies (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  if ((run->flags & LB_IMAP_SYNC_HEADERS_ONLY) ||
      run->self->account->bodies == LB_ACCOUNT_BODIES_ON_DEMAND)
    {
      when_written (task, (GSourceFunc) step_done);
      return;
    }
  run->index = 0;
  next_bodies_folder (task);
}

static void
step_done (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  LbImapSyncStats *stats;

  if (!check_written (task))
    return;
  /* Moves replayed before their destination synced may have left flag entries waiting
   * for a UID that the destination's sync has now given them. */
  trace (run, "done");
  run->finished = TRUE;
  stats = g_memdup2 (&run->stats, sizeof run->stats);
  g_task_return_pointer (task, stats, g_free);
  g_object_unref (task);
}

/* ---- the object ------------------------------------------------------------------- */

static void
lb_imap_sync_dispose (GObject *object)
{
  LbImapSync *self = LB_IMAP_SYNC (object);

  lb_imap_sync_unwatch (self);
  g_clear_object (&self->service);
  G_OBJECT_CLASS (lb_imap_sync_parent_class)->dispose (object);
}

static void
lb_imap_sync_finalize (GObject *object)
{
  LbImapSync *self = LB_IMAP_SYNC (object);

  lb_account_free (self->account);
  g_strfreev (self->disabled_capabilities);
  g_clear_object (&self->writer);
  G_OBJECT_CLASS (lb_imap_sync_parent_class)->finalize (object);
}

static void
lb_imap_sync_class_init (LbImapSyncClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = lb_imap_sync_dispose;
  object_class->finalize = lb_imap_sync_finalize;

  /**
   * LbImapSync::progress:
   * @folder: the folder being synced
   * @done: messages fetched in this step so far
   * @total: messages this step fetches (0 when the step just started)
   */
  signals[SIGNAL_PROGRESS] =
    g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_UINT, G_TYPE_UINT);

  /**
   * LbImapSync::inbox-synced:
   * @error: (nullable): why the sync the watcher started failed, or %NULL
   */
  signals[SIGNAL_INBOX_SYNCED] =
    g_signal_new ("inbox-synced", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
lb_imap_sync_init (LbImapSync *self)
{
}

/**
 * lb_imap_sync_new:
 * @account: an account with an incoming IMAP server (copied)
 * @writer: the store's writer
 */
LbImapSync *
lb_imap_sync_new (const LbAccount *account,
                  LbStoreWriter   *writer)
{
  LbImapSync *self;

  g_return_val_if_fail (account != NULL && account->incoming != NULL &&
                          account->incoming->protocol == LB_ACCOUNT_PROTOCOL_IMAP, NULL);
  g_return_val_if_fail (LB_IS_STORE_WRITER (writer), NULL);

  self = g_object_new (LB_TYPE_IMAP_SYNC, NULL);
  self->account = lb_account_copy (account);
  self->writer = g_object_ref (writer);
  return self;
}

static Run *
new_run (LbImapSync      *self,
         LbImapSyncFlags  flags)
{
  Run *run = g_new0 (Run, 1);

  run->self = g_object_ref (self);
  run->flags = flags;
  run->folders = g_ptr_array_new_with_free_func ((GDestroyNotify) folder_free);
  run->by_id = g_hash_table_new (g_int64_hash, g_int64_equal);
  run->streamed = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_byte_array_unref);
  run->stats.method = "none";
  run->trace = g_getenv ("LB_SYNC_TRACE") != NULL;
  run->started = g_get_monotonic_time ();
  return run;
}

/**
 * lb_imap_sync_run_async:
 *
 * Syncs the account once (see the top of this file). One run at a time per object.
 */
void
lb_imap_sync_run_async (LbImapSync          *self,
                        LbImapSyncFlags      flags,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  GTask *task;
  Run *run;

  g_return_if_fail (LB_IS_IMAP_SYNC (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_imap_sync_run_async);
  if (self->running)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               _("Account “%s” is already being synced"),
                               account_name (self));
      g_object_unref (task);
      return;
    }
  self->running = TRUE;
  run = new_run (self, flags);
  g_task_set_task_data (task, run, (GDestroyNotify) run_free);
  start_run (task);
}

gboolean
lb_imap_sync_run_finish (LbImapSync       *self,
                         GAsyncResult     *result,
                         LbImapSyncStats  *stats,
                         GError          **error)
{
  g_autofree LbImapSyncStats *done = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  done = g_task_propagate_pointer (G_TASK (result), error);
  if (done == NULL)
    return FALSE;
  if (stats != NULL)
    *stats = *done;
  return TRUE;
}

/* ---- push ------------------------------------------------------------------------- */

static void
watch_sync_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  LbImapSync *self = LB_IMAP_SYNC (source);
  g_autoptr(GError) error = NULL;

  lb_imap_sync_run_finish (self, result, NULL, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    return;
  g_signal_emit (self, signals[SIGNAL_INBOX_SYNCED], 0, error);
}

static void
mailbox_changed_cb (LbImapService *service,
                    const char    *mailbox,
                    gpointer       user_data)
{
  LbImapSync *self = user_data;

  if (self->running)
    {
      self->dirty = TRUE;
      return;
    }
  self->dirty = FALSE;
  lb_imap_sync_run_async (self, LB_IMAP_SYNC_INBOX_ONLY, self->watch_cancel, watch_sync_cb, NULL);
}

static gboolean
rerun_inbox (gpointer data)
{
  LbImapSync *self = data;

  if (self->watching && self->dirty && !self->running)
    mailbox_changed_cb (self->service, "INBOX", self);
  return G_SOURCE_REMOVE;
}

/**
 * lb_imap_sync_watch:
 *
 * Needs a first lb_imap_sync_run_async() to have logged in (the watcher uses its
 * connection settings and password).
 */
void
lb_imap_sync_watch (LbImapSync *self)
{
  g_return_if_fail (LB_IS_IMAP_SYNC (self));
  g_return_if_fail (self->service != NULL);

  if (self->watching)
    return;
  self->watching = TRUE;
  self->watch_cancel = g_cancellable_new ();
  self->changed_handler = g_signal_connect (self->service, "mailbox-changed",
                                            G_CALLBACK (mailbox_changed_cb), self);
  lb_imap_service_watch (self->service, "INBOX");
}

void
lb_imap_sync_unwatch (LbImapSync *self)
{
  g_return_if_fail (LB_IS_IMAP_SYNC (self));

  if (!self->watching)
    return;
  self->watching = FALSE;
  g_cancellable_cancel (self->watch_cancel);
  g_clear_object (&self->watch_cancel);
  g_clear_signal_handler (&self->changed_handler, self->service);
  lb_imap_service_unwatch (self->service);
}

/**
 * lb_imap_sync_set_disabled_capabilities:
 * @capabilities: (nullable): capabilities not to use with this server (upper case), such
 *   as "QRESYNC"; before the first run
 *
 * For servers whose extensions misbehave, and for tests of the fallbacks (CONDSTORE
 * without QRESYNC, the UID/flags diff without either).
 */
void
lb_imap_sync_set_disabled_capabilities (LbImapSync        *self,
                                        const char *const *capabilities)
{
  g_return_if_fail (LB_IS_IMAP_SYNC (self));
  g_return_if_fail (self->service == NULL);

  g_strfreev (self->disabled_capabilities);
  self->disabled_capabilities = g_strdupv ((char **) capabilities);
}

/* ---- one body on demand ----------------------------------------------------------- */

typedef struct
{
  gint64 message_id;
  gint64 folder_id;
  char *folder_name;
  guint32 uid;
  gboolean complete;
} Location;

static void
location_free (Location *where)
{
  g_free (where->folder_name);
  g_free (where);
}

static gboolean
read_location (sqlite3  *db,
               gpointer  data,
               GError  **error)
{
  Location *where = data;
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2 (db, "SELECT m.folder_id, f.name, coalesce (m.uid, 0), "
                                   "m.body_state = 2 FROM messages m JOIN folders f "
                                   "ON f.id = m.folder_id WHERE m.id = ?1", -1, &s, NULL);

  if (rc == SQLITE_OK)
    {
      sqlite3_bind_int64 (s, 1, where->message_id);
      rc = sqlite3_step (s);
      if (rc == SQLITE_ROW)
        {
          where->folder_id = sqlite3_column_int64 (s, 0);
          where->folder_name = g_strdup ((const char *) sqlite3_column_text (s, 1));
          where->uid = (guint32) sqlite3_column_int64 (s, 2);
          where->complete = sqlite3_column_int (s, 3) != 0;
        }
    }
  sqlite3_finalize (s);
  return sql_ok (db, rc, error);
}

static void
body_fetched_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  lb_imap_session_set_literal_sink (run->session, NULL, NULL);
  if (!lb_imap_session_uid_fetch_finish (LB_IMAP_SESSION (source), result, &error))
    {
      fail (task, error);
      return;
    }
  if (run->stats.bodies == 0)
    {
      fail (task, g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_NONEXISTENT,
                               _("The message is no longer in “%s” on the server"),
                               current (run)->name));
      return;
    }
  when_written (task, (GSourceFunc) step_done);
}

static void
body_fetch_selected (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  Folder *f = current (run);
  g_autofree char *uid = g_strdup_printf ("%u", (guint32) f->fetch_uid);

  lb_imap_session_set_literal_sink (run->session, &body_sink, run);
  lb_imap_session_uid_fetch_async (run->session, uid, "UID FLAGS INTERNALDATE RFC822.SIZE "
                                   "BODY.PEEK[]", 0, on_body, task, g_task_get_cancellable (task),
                                   body_fetched_cb, task);
}

static void
body_selected_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(LbImapMailboxInfo) info = NULL;
  GError *error = NULL;

  info = lb_imap_session_select_finish (LB_IMAP_SESSION (source), result, &error);
  if (info == NULL)
    {
      fail (task, error);
      return;
    }
  body_fetch_selected (task);
}

typedef struct
{
  GTask *task;
  Location *where;
} LocationRead;

static void
location_read_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  LocationRead *read = user_data;
  GTask *task = read->task;
  Run *run = g_task_get_task_data (task);
  Location *where = read->where;
  GError *error = NULL;
  Folder *f;

  g_free (read);
  if (!lb_store_writer_exec_finish (LB_STORE_WRITER (source), result, &error))
    {
      location_free (where);
      fail (task, error);
      return;
    }
  if (where->folder_name == NULL || where->uid == 0)
    {
      fail (task, g_error_new (LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                               where->folder_name == NULL
                                 ? _("There is no message %lld in the mail store")
                                 : _("Message %lld is not on the server yet"),
                               (long long) where->message_id));
      location_free (where);
      return;
    }
  if (where->complete)
    {
      /* Already here (a sync brought it meanwhile). */
      location_free (where);
      run->stats.bodies = 1;
      step_done (task);
      return;
    }
  f = g_new0 (Folder, 1);
  f->id = where->folder_id;
  f->name = g_steal_pointer (&where->folder_name);
  f->attributes = g_strdup ("");
  f->selectable = TRUE;
  f->fetch_uid = where->uid;
  g_ptr_array_add (run->folders, f);
  run->index = 0;
  location_free (where);
  /* Read-only: opening a message must not change the folder (\Recent, flags). */
  lb_imap_session_select_async (run->session, f->name, TRUE, NULL, NULL, NULL,
                                g_task_get_cancellable (task), body_selected_cb, task);
}

static void
body_fetch_start (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  LocationRead *read = g_new0 (LocationRead, 1);

  read->task = task;
  read->where = g_new0 (Location, 1);
  read->where->message_id = run->fetch_message;
  lb_store_writer_exec_async (run->self->writer, read_location, read->where, NULL,
                              g_task_get_cancellable (task), location_read_cb, read);
}

/**
 * lb_imap_sync_fetch_body_async:
 * @message_id: a message of this account whose body is not in the store yet
 *
 * Downloads one body now (a message opened under the "on demand" policy, or before the
 * background download reached it), on a connection of its own from the account's pool,
 * alongside a sync that may be running. The folder is opened read-only.
 */
void
lb_imap_sync_fetch_body_async (LbImapSync          *self,
                               gint64               message_id,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task;
  Run *run;

  g_return_if_fail (LB_IS_IMAP_SYNC (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_imap_sync_fetch_body_async);
  run = new_run (self, LB_IMAP_SYNC_NONE);
  run->fetch_message = message_id;
  g_task_set_task_data (task, run, (GDestroyNotify) run_free);
  start_run (task);
}

gboolean
lb_imap_sync_fetch_body_finish (LbImapSync    *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_autofree LbImapSyncStats *done = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  done = g_task_propagate_pointer (G_TASK (result), error);
  return done != NULL;
}
