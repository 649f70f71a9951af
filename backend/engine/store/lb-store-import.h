/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-store.h"
#include "lb-store-writer.h"

G_BEGIN_DECLS

typedef enum
{
  LB_STORE_FORMAT_AUTO,    /* a directory with cur/ and new/ is a Maildir, a directory of
                            * files is .eml files, a file starting "From " is an mbox, any
                            * other file one .eml message */
  LB_STORE_FORMAT_MBOX,    /* mboxrd: ">From " lines unescaped on import, escaped on export */
  LB_STORE_FORMAT_MAILDIR,
  LB_STORE_FORMAT_EML,
} LbStoreFormat;

/* How far an import or export got. */
typedef struct
{
  guint messages;  /* messages added (or written, for an export) */
  guint skipped;   /* already in the folder (an import run again), or without a body */
  guint failed;    /* unreadable; the rest went on */
} LbStoreTransferResult;

/* What lb_store_message_from_bytes_full() computes beyond the envelope and preview. */
typedef enum
{
  LB_STORE_MESSAGE_SUMMARY = 0,
  LB_STORE_MESSAGE_BODY_TEXT = 1 << 0,  /* body_text, the text to index */
  LB_STORE_MESSAGE_IMPORT_KEY = 1 << 1, /* import_key, the SHA-1 of the bytes */
} LbStoreMessageParts;

LbStoreMessage *lb_store_message_from_bytes (GBytes              *raw,
                                             gint64               folder_id,
                                             GError             **error);
LbStoreMessage *lb_store_message_from_bytes_full (GBytes          *raw,
                                             gint64               folder_id,
                                             LbStoreMessageParts  parts,
                                             GError             **error);

void     lb_store_import_async   (LbStoreWriter         *writer,
                                  gint64                 folder_id,
                                  GFile                 *source,
                                  LbStoreFormat          format,
                                  GCancellable          *cancellable,
                                  GAsyncReadyCallback    callback,
                                  gpointer               user_data);
gboolean lb_store_import_finish  (LbStoreWriter         *writer,
                                  GAsyncResult          *result,
                                  LbStoreTransferResult *counts,
                                  GError               **error);

void     lb_store_export_async   (LbStore               *store,
                                  gint64                 folder_id,
                                  GFile                 *destination,
                                  LbStoreFormat          format,
                                  GCancellable          *cancellable,
                                  GAsyncReadyCallback    callback,
                                  gpointer               user_data);
gboolean lb_store_export_finish  (LbStore               *store,
                                  GAsyncResult          *result,
                                  LbStoreTransferResult *counts,
                                  GError               **error);

G_END_DECLS
