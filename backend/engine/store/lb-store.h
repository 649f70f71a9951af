/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-folder.h"
#include "lb-message-summary.h"
#include "lb-store-writer.h"

G_BEGIN_DECLS

#define LB_STORE_ERROR (lb_store_error_quark ())

/**
 * LbStoreError:
 * @LB_STORE_ERROR_IO: the store's directory or database file cannot be created or read
 * @LB_STORE_ERROR_CORRUPT: the database file is damaged or is not a Letterbox store
 * @LB_STORE_ERROR_TOO_NEW: the store was written by a newer Letterbox
 * @LB_STORE_ERROR_BUSY: another process held the store locked for too long
 * @LB_STORE_ERROR_NOT_FOUND: the folder or message asked for does not exist
 */
typedef enum
{
  LB_STORE_ERROR_IO,
  LB_STORE_ERROR_CORRUPT,
  LB_STORE_ERROR_TOO_NEW,
  LB_STORE_ERROR_BUSY,
  LB_STORE_ERROR_NOT_FOUND,
} LbStoreError;

/* The embedded default account (DESIGN.md): always present, never synced. */
#define LB_STORE_LOCAL_ACCOUNT_ID "local"

GQuark lb_store_error_quark (void);

#define LB_TYPE_STORE (lb_store_get_type ())
G_DECLARE_FINAL_TYPE (LbStore, lb_store, LB, STORE, GObject)

char       *lb_store_default_data_dir     (void);
guint       lb_store_schema_version       (void);

LbStore    *lb_store_open                 (const char           *data_dir,
                                           GError              **error);
void        lb_store_open_async           (const char           *data_dir,
                                           GCancellable         *cancellable,
                                           GAsyncReadyCallback   callback,
                                           gpointer              user_data);
LbStore    *lb_store_open_finish          (GAsyncResult         *result,
                                           GError              **error);

const char *lb_store_get_data_dir         (LbStore              *self);

gboolean    lb_store_count_accounts       (LbStore              *self,
                                           guint                *n_accounts,
                                           GError              **error);

GPtrArray  *lb_store_list_folders         (LbStore              *self,
                                           GError              **error);
void        lb_store_list_folders_async   (LbStore              *self,
                                           GCancellable         *cancellable,
                                           GAsyncReadyCallback   callback,
                                           gpointer              user_data);
GPtrArray  *lb_store_list_folders_finish  (LbStore              *self,
                                           GAsyncResult         *result,
                                           GError              **error);

GPtrArray  *lb_store_list_messages        (LbStore              *self,
                                           gint64                folder_id,
                                           guint                 offset,
                                           guint                 limit,
                                           GError              **error);
void        lb_store_list_messages_async  (LbStore              *self,
                                           gint64                folder_id,
                                           guint                 offset,
                                           guint                 limit,
                                           GCancellable         *cancellable,
                                           GAsyncReadyCallback   callback,
                                           gpointer              user_data);
GPtrArray  *lb_store_list_messages_finish (LbStore              *self,
                                           GAsyncResult         *result,
                                           GError              **error);

GInputStream *lb_store_open_body            (LbStore              *self,
                                           gint64                message_id,
                                           GError              **error);
GPtrArray  *lb_store_search               (LbStore              *self,
                                           const char           *query,
                                           guint                 offset,
                                           guint                 limit,
                                           GError              **error);
GPtrArray  *lb_store_list_thread          (LbStore              *self,
                                           gint64                message_id,
                                           GError              **error);

gboolean    lb_store_count_search         (LbStore              *self,
                                           const char           *query,
                                           guint                *count,
                                           GError              **error);
gboolean    lb_store_count_messages_in    (LbStore              *self,
                                           const gint64         *folder_ids,
                                           guint                 n_folders,
                                           gboolean              threads,
                                           guint                *count,
                                           GError              **error);
GPtrArray  *lb_store_list_messages_in     (LbStore              *self,
                                           const gint64         *folder_ids,
                                           guint                 n_folders,
                                           gboolean              threads,
                                           guint                 offset,
                                           guint                 limit,
                                           GError              **error);

LbStoreMessage *lb_store_get_message      (LbStore              *self,
                                           gint64                message_id,
                                           GError              **error);

/* What the whole store holds, for a status line. */
typedef struct
{
  guint accounts;
  guint folders;
  guint messages;
  guint unread;
  guint pending;   /* offline operations in the journal, not yet replayed by sync */
} LbStoreCounts;

gboolean    lb_store_get_counts           (LbStore              *self,
                                           LbStoreCounts        *counts,
                                           GError              **error);

/* One message as a bulk action needs it (lb_store_list_message_ids()). */
typedef struct
{
  gint64 id;
  gint64 folder_id;
  LbMessageFlags flags;
} LbMessageRef;

GArray     *lb_store_list_message_ids     (LbStore              *self,
                                           const gint64         *folder_ids,
                                           guint                 n_folders,
                                           const char           *query,
                                           GError              **error);

G_END_DECLS
