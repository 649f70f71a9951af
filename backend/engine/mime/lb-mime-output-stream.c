/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-mime"

#include "config.h"

#include "lb-mime-output-stream.h"

/*
 * A write-only GMimeStream onto a GOutputStream (blocking writes), so that GMime writes
 * a message straight to a file or socket, never whole into memory. The first error is
 * kept for the caller; GMime itself only sees -1.
 */

struct _LbMimeOutputStream
{
  GMimeStream parent_instance;

  GOutputStream *stream;
  GCancellable *cancellable;
  GError *error;
};

G_DEFINE_FINAL_TYPE (LbMimeOutputStream, lb_mime_output_stream, GMIME_TYPE_STREAM)

static ssize_t
lb_mime_output_stream_read (GMimeStream *stream,
                            char        *buf,
                            size_t       len)
{
  return -1;
}

static ssize_t
lb_mime_output_stream_write (GMimeStream *stream,
                             const char  *buf,
                             size_t       len)
{
  LbMimeOutputStream *self = LB_MIME_OUTPUT_STREAM (stream);

  if (self->error != NULL)
    return -1;
  if (!g_output_stream_write_all (self->stream, buf, len, NULL, self->cancellable,
                                  &self->error))
    return -1;
  stream->position += len;
  return len;
}

static int
lb_mime_output_stream_flush (GMimeStream *stream)
{
  LbMimeOutputStream *self = LB_MIME_OUTPUT_STREAM (stream);

  if (self->error != NULL)
    return -1;
  return g_output_stream_flush (self->stream, self->cancellable, &self->error) ? 0 : -1;
}

static int
lb_mime_output_stream_close (GMimeStream *stream)
{
  /* The GOutputStream belongs to the caller, who closes it. */
  return 0;
}

static gboolean
lb_mime_output_stream_eos (GMimeStream *stream)
{
  return FALSE;
}

static int
lb_mime_output_stream_reset (GMimeStream *stream)
{
  return -1;
}

static gint64
lb_mime_output_stream_seek (GMimeStream    *stream,
                            gint64          offset,
                            GMimeSeekWhence whence)
{
  return -1;
}

static gint64
lb_mime_output_stream_tell (GMimeStream *stream)
{
  return stream->position;
}

static gint64
lb_mime_output_stream_length (GMimeStream *stream)
{
  return -1;
}

static GMimeStream *
lb_mime_output_stream_substream (GMimeStream *stream,
                                 gint64       start,
                                 gint64       end)
{
  return NULL;
}

static void
lb_mime_output_stream_finalize (GObject *object)
{
  LbMimeOutputStream *self = LB_MIME_OUTPUT_STREAM (object);

  g_clear_object (&self->stream);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->error);
  G_OBJECT_CLASS (lb_mime_output_stream_parent_class)->finalize (object);
}

static void
lb_mime_output_stream_class_init (LbMimeOutputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GMimeStreamClass *stream_class = GMIME_STREAM_CLASS (klass);

  object_class->finalize = lb_mime_output_stream_finalize;
  stream_class->read = lb_mime_output_stream_read;
  stream_class->write = lb_mime_output_stream_write;
  stream_class->flush = lb_mime_output_stream_flush;
  stream_class->close = lb_mime_output_stream_close;
  stream_class->eos = lb_mime_output_stream_eos;
  stream_class->reset = lb_mime_output_stream_reset;
  stream_class->seek = lb_mime_output_stream_seek;
  stream_class->tell = lb_mime_output_stream_tell;
  stream_class->length = lb_mime_output_stream_length;
  stream_class->substream = lb_mime_output_stream_substream;
}

static void
lb_mime_output_stream_init (LbMimeOutputStream *self)
{
}

/**
 * lb_mime_output_stream_new:
 * @stream: written to with blocking calls; not closed
 * @cancellable: (nullable): for those writes
 *
 * Returns: (transfer full): the GMime stream
 */
GMimeStream *
lb_mime_output_stream_new (GOutputStream *stream,
                           GCancellable  *cancellable)
{
  LbMimeOutputStream *self;

  g_return_val_if_fail (G_IS_OUTPUT_STREAM (stream), NULL);

  self = g_object_new (LB_TYPE_MIME_OUTPUT_STREAM, NULL);
  g_mime_stream_construct (GMIME_STREAM (self), 0, -1);
  self->stream = g_object_ref (stream);
  self->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  return GMIME_STREAM (self);
}

/* The first write or flush error, or NULL. */
const GError *
lb_mime_output_stream_get_error (LbMimeOutputStream *self)
{
  g_return_val_if_fail (LB_IS_MIME_OUTPUT_STREAM (self), NULL);
  return self->error;
}
