/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <sqlite3.h>

#include "lb-folder.h"
#include "lb-message-summary.h"

G_BEGIN_DECLS

/* What the index keeps of one message (issue #5): the server's view, the envelope as
 * shown and searched, and the text to index. Strings are UTF-8; NULL means empty. */
typedef struct
{
  gint64 folder_id;
  guint32 uid;              /* the server's UID; 0 for local-only mail */
  LbMessageFlags flags;
  char *keywords;           /* IMAP keywords, space separated */
  guint64 modseq;
  gint64 internal_date;     /* unix seconds; 0 = unknown */
  gint64 date;              /* the Date header, unix seconds */
  char *sender;             /* as shown: the name, else the address */
  char *sender_address;
  char *recipients;         /* To/Cc names and addresses, as searched */
  char *subject;
  char *preview;
  char *message_id;         /* without angle brackets */
  char *in_reply_to;
  char **references;        /* oldest first */
  gboolean has_attachment;
  guint64 size;             /* RFC822.SIZE */
  char *body_text;          /* indexable text, or NULL before the body is known */
  char *import_key;         /* a content key for imports that must not duplicate */
} LbStoreMessage;

LbStoreMessage *lb_store_message_new  (void);
void            lb_store_message_free (LbStoreMessage *message);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbStoreMessage, lb_store_message_free)

#define LB_TYPE_STORE_WRITER (lb_store_writer_get_type ())
G_DECLARE_FINAL_TYPE (LbStoreWriter, lb_store_writer, LB, STORE_WRITER, GObject)

LbStoreWriter *lb_store_writer_new            (const char          *data_dir,
                                               GError             **error);
void           lb_store_writer_close          (LbStoreWriter       *self);

void           lb_store_writer_ensure_folder_async  (LbStoreWriter       *self,
                                               const char          *account_id,
                                               const char          *account_kind,
                                               const char          *account_name,
                                               const char          *folder_name,
                                               LbFolderRole         role,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gint64         lb_store_writer_ensure_folder_finish (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);

void           lb_store_writer_add_async      (LbStoreWriter       *self,
                                               LbStoreMessage      *message,
                                               GInputStream        *body,
                                               goffset              body_size,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gint64         lb_store_writer_add_finish     (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);
gint64         lb_store_writer_add_finish_full (LbStoreWriter      *self,
                                               GAsyncResult        *result,
                                               gboolean            *existed,
                                               GError             **error);
void           lb_store_writer_add_many_async (LbStoreWriter       *self,
                                               GPtrArray           *messages,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_add_many_finish (LbStoreWriter      *self,
                                               GAsyncResult        *result,
                                               GError             **error);

void           lb_store_writer_set_flags_async (LbStoreWriter      *self,
                                               gint64               message_id,
                                               LbMessageFlags       set,
                                               LbMessageFlags       clear,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_set_flags_finish (LbStoreWriter     *self,
                                               GAsyncResult        *result,
                                               GError             **error);

void           lb_store_writer_delete_async   (LbStoreWriter       *self,
                                               gint64               message_id,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_delete_finish  (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* ---- Work for sync: run on the writer thread, in queue order. ---- */

/* Runs inside the writer's transaction, in its own savepoint: returning FALSE (with
 * @error set) undoes what the function did and fails only this job. It must not touch
 * messages_fts or bodies; use the jobs below for that. */
typedef gboolean (*LbStoreWriterFunc) (sqlite3   *db,
                                       gpointer   data,
                                       GError   **error);

void           lb_store_writer_exec_async     (LbStoreWriter       *self,
                                               LbStoreWriterFunc    func,
                                               gpointer             data,
                                               GDestroyNotify       destroy,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_exec_finish    (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* Completes once everything queued before it is committed and on disk (fsync'd): the
 * point after which mail may be deleted from a server or a submission acknowledged. */
void           lb_store_writer_flush_async    (LbStoreWriter       *self,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_flush_finish   (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* Removes the messages of @folder_id with these server UIDs (index, search and bodies):
 * what the server expunged. Messages with a pending journal entry are kept. */
void           lb_store_writer_expunge_uids_async (LbStoreWriter   *self,
                                               gint64               folder_id,
                                               const guint32       *uids,
                                               guint                n_uids,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_expunge_uids_finish (LbStoreWriter  *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* ---- Offline operations (issue #6): applied to the store at once and recorded in the
 * journal in the same transaction; sync replays them on the server in order. Messages
 * of the local account are changed without a journal entry. ---- */

void           lb_store_writer_change_flags_async (LbStoreWriter   *self,
                                               gint64               message_id,
                                               LbMessageFlags       set,
                                               LbMessageFlags       clear,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_change_flags_finish (LbStoreWriter  *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* Moves a message to another folder of the same account (the message keeps its id). */
void           lb_store_writer_move_async     (LbStoreWriter       *self,
                                               gint64               message_id,
                                               gint64               folder_id,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_move_finish    (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* Deletes a message for good (here now, expunged on the server by sync). */
void           lb_store_writer_expunge_async  (LbStoreWriter       *self,
                                               gint64               message_id,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_expunge_finish (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* A message made here (saved draft, copy of a sent message): added now, uploaded by sync. */
void           lb_store_writer_append_async   (LbStoreWriter       *self,
                                               LbStoreMessage      *message,
                                               GInputStream        *body,
                                               goffset              body_size,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gint64         lb_store_writer_append_finish  (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);

/* Runs inside the append's savepoint with the appended message's id (see
 * lb_store_writer_append_full_async()); the same rules as LbStoreWriterFunc. */
typedef gboolean (*LbStoreWriterAddedFunc) (sqlite3   *db,
                                            gint64     message_id,
                                            gpointer   data,
                                            GError   **error);

void           lb_store_writer_append_full_async (LbStoreWriter     *self,
                                               LbStoreMessage      *message,
                                               GInputStream        *body,
                                               goffset              body_size,
                                               LbStoreWriterAddedFunc func,
                                               gpointer             data,
                                               GDestroyNotify       destroy,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);

void           lb_store_writer_copy_async     (LbStoreWriter       *self,
                                               gint64               message_id,
                                               gint64               folder_id,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gint64         lb_store_writer_copy_finish    (LbStoreWriter       *self,
                                               GAsyncResult        *result,
                                               GError             **error);

void           lb_store_writer_create_folder_async (LbStoreWriter  *self,
                                               const char          *account_id,
                                               const char          *name,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gint64         lb_store_writer_create_folder_finish (LbStoreWriter *self,
                                               GAsyncResult        *result,
                                               GError             **error);
void           lb_store_writer_rename_folder_async (LbStoreWriter  *self,
                                               gint64               folder_id,
                                               const char          *name,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_rename_folder_finish (LbStoreWriter *self,
                                               GAsyncResult        *result,
                                               GError             **error);
void           lb_store_writer_delete_folder_async (LbStoreWriter  *self,
                                               gint64               folder_id,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean       lb_store_writer_delete_folder_finish (LbStoreWriter *self,
                                               GAsyncResult        *result,
                                               GError             **error);

const char    *lb_store_writer_get_data_dir   (LbStoreWriter       *self);
guint64        lb_store_writer_get_commits    (LbStoreWriter       *self);
guint64        lb_store_writer_get_syncs      (LbStoreWriter       *self);
guint          lb_store_writer_get_queued     (LbStoreWriter       *self);

char          *lb_store_base_subject          (const char          *subject);

G_END_DECLS
