/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-store"

#include "config.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-store.h"
#include "lb-store-bodies.h"

/*
 * Raw message bytes, one bodies database per account (DESIGN.md: creating a file per
 * message costs ~1 ms here; blobs in SQLite are faster below ~100 KB and fine above).
 * A body is written by reserving zeroblob(size) and filling it through sqlite3_blob_write
 * in 64 KiB pieces from the caller's stream; it is read the same way through
 * LbBlobInputStream, a seekable GInputStream over sqlite3_blob_read with its own
 * read-only connection (so readers in any thread or process never wait on the writer).
 */

#define PIECE (64 * 1024)

static const char bodies_schema[] =
  "CREATE TABLE IF NOT EXISTS bodies ("
  "  id INTEGER PRIMARY KEY,"
  "  size INTEGER NOT NULL,"
  "  data BLOB NOT NULL"
  ")";

static gboolean
bodies_error (GError     **error,
              sqlite3     *db,
              int          rc,
              const char  *path)
{
  int code = (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB
               ? LB_STORE_ERROR_CORRUPT
             : (rc & 0xff) == SQLITE_BUSY ? LB_STORE_ERROR_BUSY : LB_STORE_ERROR_IO;

  g_set_error (error, LB_STORE_ERROR, code, _("The message store “%s” failed: %s"), path,
               db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
  return FALSE;
}

char *
lb_store_bodies_path (const char *data_dir,
                      const char *account_id)
{
  g_autofree char *escaped = g_uri_escape_string (account_id, NULL, FALSE);
  g_autofree char *name = g_strdup_printf ("%s.db", escaped);

  return g_build_filename (data_dir, "bodies", name, NULL);
}

/**
 * lb_store_bodies_open:
 * @writable: open for writing (creating the file and its table), else read-only
 *
 * Returns: (transfer full): a connection in WAL mode, or %NULL with @error set
 */
sqlite3 *
lb_store_bodies_open (const char  *path,
                      gboolean     writable,
                      GError     **error)
{
  sqlite3 *db = NULL;
  int rc;

  if (writable)
    {
      g_autofree char *dir = g_path_get_dirname (path);

      if (g_mkdir_with_parents (dir, 0700) != 0)
        {
          g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                       _("Could not create the folder “%s”: %s"), dir, g_strerror (errno));
          return NULL;
        }
    }
  rc = sqlite3_open_v2 (path, &db,
                        writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                 : SQLITE_OPEN_READONLY,
                        NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_extended_result_codes (db, 1);
      sqlite3_busy_timeout (db, 10000);
    }
  /* Large pages (set before the file has any): a typical message fits in one page with
   * others instead of a chain of 4 KiB overflow pages. */
  if (rc == SQLITE_OK && writable)
    rc = sqlite3_exec (db,
                       "PRAGMA page_size = 65536; PRAGMA journal_mode = WAL; "
                       "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384;",
                       NULL, NULL, NULL);
  if (rc == SQLITE_OK && writable)
    rc = sqlite3_exec (db, bodies_schema, NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    {
      bodies_error (error, db, rc, path);
      sqlite3_close_v2 (db);
      return NULL;
    }
  return db;
}

/**
 * lb_store_bodies_write:
 * @db: a writable bodies connection, inside the caller's transaction
 * @stream: the message, read to its end
 * @size: its exact size in bytes
 *
 * Stores a body. A stream that ends early or runs on past @size is an error, and nothing
 * is kept (the caller rolls its savepoint back).
 *
 * Returns: the body's id, or 0 with @error set
 */
gint64
lb_store_bodies_write (sqlite3       *db,
                       const char    *path,
                       GInputStream  *stream,
                       goffset        size,
                       GCancellable  *cancellable,
                       GError       **error)
{
  sqlite3_stmt *stmt = NULL;
  sqlite3_blob *blob = NULL;
  g_autofree guint8 *piece = NULL;
  goffset done = 0;
  gint64 id;
  int rc;

  if (size < 0 || size > G_MAXINT32)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                   _("A message of %lld bytes cannot be stored"), (long long) size);
      return 0;
    }
  rc = sqlite3_prepare_v2 (db, "INSERT INTO bodies (size, data) VALUES (?1, zeroblob (?1))", -1,
                           &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64 (stmt, 1, size);
  if (rc == SQLITE_OK)
    rc = sqlite3_step (stmt);
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE)
    {
      bodies_error (error, db, rc, path);
      return 0;
    }
  id = sqlite3_last_insert_rowid (db);
  rc = sqlite3_blob_open (db, "main", "bodies", "data", id, 1, &blob);
  if (rc != SQLITE_OK)
    {
      bodies_error (error, db, rc, path);
      return 0;
    }

  piece = g_malloc (PIECE);
  for (;;)
    {
      gsize n = 0;

      if (!g_input_stream_read_all (stream, piece, PIECE, &n, cancellable, error))
        goto fail;
      if (n == 0)
        break;
      if (done + (goffset) n > size)
        {
          g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                       _("The message is longer than the %lld bytes announced"),
                       (long long) size);
          goto fail;
        }
      rc = sqlite3_blob_write (blob, piece, (int) n, (int) done);
      if (rc != SQLITE_OK)
        {
          bodies_error (error, db, rc, path);
          goto fail;
        }
      done += (goffset) n;
    }
  if (done != size)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                   _("The message ended after %lld of the %lld bytes announced"),
                   (long long) done, (long long) size);
      goto fail;
    }
  sqlite3_blob_close (blob);
  return id;

fail:
  sqlite3_blob_close (blob);
  return 0;
}

gboolean
lb_store_bodies_delete (sqlite3     *db,
                        const char  *path,
                        gint64       body_id,
                        GError     **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc;

  rc = sqlite3_prepare_v2 (db, "DELETE FROM bodies WHERE id = ?1", -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64 (stmt, 1, body_id);
  if (rc == SQLITE_OK)
    rc = sqlite3_step (stmt);
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE)
    return bodies_error (error, db, rc, path);
  return TRUE;
}

/* ---- reading ---------------------------------------------------------------------- */

struct _LbBlobInputStream
{
  GInputStream parent_instance;

  sqlite3 *db;
  sqlite3_blob *blob;
  goffset size;
  goffset position;
};

static void lb_blob_input_stream_seekable_init (GSeekableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LbBlobInputStream, lb_blob_input_stream, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_SEEKABLE,
                                                      lb_blob_input_stream_seekable_init))

static void
release (LbBlobInputStream *self)
{
  if (self->blob != NULL)
    sqlite3_blob_close (self->blob);
  self->blob = NULL;
  if (self->db != NULL)
    {
      /* The read transaction the blob held ends here. */
      sqlite3_exec (self->db, "COMMIT", NULL, NULL, NULL);
      sqlite3_close_v2 (self->db);
    }
  self->db = NULL;
}

static void
lb_blob_input_stream_finalize (GObject *object)
{
  release (LB_BLOB_INPUT_STREAM (object));
  G_OBJECT_CLASS (lb_blob_input_stream_parent_class)->finalize (object);
}

static gssize
lb_blob_input_stream_read (GInputStream  *stream,
                           void          *buffer,
                           gsize          count,
                           GCancellable  *cancellable,
                           GError       **error)
{
  LbBlobInputStream *self = LB_BLOB_INPUT_STREAM (stream);
  goffset left = self->size - self->position;
  int n;
  int rc;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;
  if (left <= 0 || count == 0)
    return 0;
  n = (int) MIN ((goffset) MIN (count, G_MAXINT32), left);
  rc = sqlite3_blob_read (self->blob, buffer, n, (int) self->position);
  if (rc != SQLITE_OK)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                   _("Could not read a stored message: %s"), sqlite3_errstr (rc));
      return -1;
    }
  self->position += n;
  return n;
}

static gboolean
lb_blob_input_stream_close (GInputStream  *stream,
                            GCancellable  *cancellable,
                            GError       **error)
{
  release (LB_BLOB_INPUT_STREAM (stream));
  return TRUE;
}

static void
lb_blob_input_stream_class_init (LbBlobInputStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = lb_blob_input_stream_finalize;
  stream_class->read_fn = lb_blob_input_stream_read;
  stream_class->close_fn = lb_blob_input_stream_close;
}

static void
lb_blob_input_stream_init (LbBlobInputStream *self)
{
}

static goffset
seekable_tell (GSeekable *seekable)
{
  return LB_BLOB_INPUT_STREAM (seekable)->position;
}

static gboolean
seekable_can_seek (GSeekable *seekable)
{
  return TRUE;
}

static gboolean
seekable_seek (GSeekable     *seekable,
               goffset        offset,
               GSeekType      type,
               GCancellable  *cancellable,
               GError       **error)
{
  LbBlobInputStream *self = LB_BLOB_INPUT_STREAM (seekable);
  goffset target;

  switch (type)
    {
    case G_SEEK_SET:
      target = offset;
      break;
    case G_SEEK_CUR:
      target = self->position + offset;
      break;
    case G_SEEK_END:
      target = self->size + offset;
      break;
    default:
      target = -1;
      break;
    }
  if (target < 0 || target > self->size)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           _("Cannot seek outside the message"));
      return FALSE;
    }
  self->position = target;
  return TRUE;
}

static gboolean
seekable_can_truncate (GSeekable *seekable)
{
  return FALSE;
}

static gboolean
seekable_truncate (GSeekable     *seekable,
                   goffset        offset,
                   GCancellable  *cancellable,
                   GError       **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       _("Stored messages cannot be changed"));
  return FALSE;
}

static void
lb_blob_input_stream_seekable_init (GSeekableIface *iface)
{
  iface->tell = seekable_tell;
  iface->can_seek = seekable_can_seek;
  iface->seek = seekable_seek;
  iface->can_truncate = seekable_can_truncate;
  iface->truncate_fn = seekable_truncate;
}

/**
 * lb_blob_input_stream_new:
 *
 * Opens one stored body for reading. The stream keeps a read transaction (a snapshot) on
 * its own connection until it is closed or freed, so the writer never changes what it
 * reads.
 *
 * Returns: (transfer full): the stream, or %NULL with @error set
 *   (%LB_STORE_ERROR_NOT_FOUND when there is no such body)
 */
GInputStream *
lb_blob_input_stream_new (const char  *path,
                          gint64       body_id,
                          GError     **error)
{
  g_autoptr(LbBlobInputStream) self = g_object_new (LB_TYPE_BLOB_INPUT_STREAM, NULL);
  int rc;

  self->db = lb_store_bodies_open (path, FALSE, error);
  if (self->db == NULL)
    return NULL;
  rc = sqlite3_exec (self->db, "BEGIN", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_blob_open (self->db, "main", "bodies", "data", body_id, 0, &self->blob);
  if (rc != SQLITE_OK)
    {
      if ((rc & 0xff) == SQLITE_ERROR)
        g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                     _("The message’s body is not stored"));
      else
        bodies_error (error, self->db, rc, path);
      return NULL;
    }
  self->size = sqlite3_blob_bytes (self->blob);
  return G_INPUT_STREAM (g_steal_pointer (&self));
}

goffset
lb_blob_input_stream_get_size (LbBlobInputStream *self)
{
  return self->size;
}
