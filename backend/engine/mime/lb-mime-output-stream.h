/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-mime.h"

G_BEGIN_DECLS

#define LB_TYPE_MIME_OUTPUT_STREAM (lb_mime_output_stream_get_type ())

G_DECLARE_FINAL_TYPE (LbMimeOutputStream, lb_mime_output_stream, LB, MIME_OUTPUT_STREAM, GMimeStream)

GMimeStream  *lb_mime_output_stream_new       (GOutputStream      *stream,
                                               GCancellable       *cancellable);
const GError *lb_mime_output_stream_get_error (LbMimeOutputStream *self);

G_END_DECLS
