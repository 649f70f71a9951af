/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <gmime/gmime.h>

G_BEGIN_DECLS

#define LB_MIME_ERROR (lb_mime_error_quark ())

/* Programming errors are g_return_if_fail; these are about the bytes and streams. */
typedef enum
{
  LB_MIME_ERROR_PARSE,  /* the input is not a message at all */
  LB_MIME_ERROR_SOURCE, /* a stream to read from (a message, an attachment) failed */
  LB_MIME_ERROR_WRITE,  /* the stream written to failed */
  LB_MIME_ERROR_INVALID /* a draft that cannot become a message (no sender, say) */
} LbMimeError;

GQuark lb_mime_error_quark (void);

/* GMime 3.2 declares no autoptr cleanups of its own. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeFilter, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeObject, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeMessage, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimePart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeTextPart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeMultipart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeMessagePart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeDataWrapper, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeContentDisposition, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeContentType, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (InternetAddress, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (InternetAddressList, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeReferences, g_mime_references_free)

void                lb_mime_init              (void);
GMimeParserOptions *lb_mime_parser_options    (void);
GMimeFormatOptions *lb_mime_format_options    (void);

GMimeMessage       *lb_mime_parse_stream      (GInputStream  *stream,
                                               GError       **error);
GMimeMessage       *lb_mime_parse_bytes       (const guint8  *data,
                                               gsize          len,
                                               GError       **error);

char               *lb_mime_part_read_text    (GMimePart     *part,
                                               gsize          max_bytes,
                                               gboolean      *truncated);
char               *lb_mime_utf8_truncate     (const char    *text,
                                               gsize          max_bytes);

G_END_DECLS
