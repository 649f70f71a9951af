/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/*
 * The bodies databases: per account, `bodies/<account>.db` beside the index, one row per
 * message with its raw bytes as a blob. Written and read with SQLite's incremental blob
 * I/O, so a message never has to sit in memory whole.
 */

char         *lb_store_bodies_path       (const char     *data_dir,
                                          const char     *account_id);
sqlite3      *lb_store_bodies_open       (const char     *path,
                                          gboolean        writable,
                                          GError        **error);
gint64        lb_store_bodies_write      (sqlite3        *db,
                                          const char     *path,
                                          GInputStream   *stream,
                                          goffset         size,
                                          GCancellable   *cancellable,
                                          GError        **error);
gboolean      lb_store_bodies_delete     (sqlite3        *db,
                                          const char     *path,
                                          gint64          body_id,
                                          GError        **error);

#define LB_TYPE_BLOB_INPUT_STREAM (lb_blob_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (LbBlobInputStream, lb_blob_input_stream, LB, BLOB_INPUT_STREAM, GInputStream)

GInputStream *lb_blob_input_stream_new   (const char     *path,
                                          gint64          body_id,
                                          GError        **error);
goffset       lb_blob_input_stream_get_size (LbBlobInputStream *self);

G_END_DECLS
