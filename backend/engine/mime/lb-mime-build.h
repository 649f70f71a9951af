/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <gmime/gmime.h>

#include "lb-mime-summary.h"

G_BEGIN_DECLS

/* One attachment of a draft: exactly one of @file (read when the message is written),
 * @stream (read whole when the message is built) or @part (a MIME part taken over as it
 * is: a forwarded message or a forwarded message's attachment). */
typedef struct
{
  GFile *file;
  GInputStream *stream;
  GMimeObject *part;
  char *filename;     /* UTF-8; for @file NULL means its basename */
  char *content_type; /* "type/subtype"; NULL to guess */
} LbMimeDraftAttachment;

LbMimeDraftAttachment *lb_mime_draft_attachment_new_for_file   (GFile        *file,
                                                                const char   *filename,
                                                                const char   *content_type);
LbMimeDraftAttachment *lb_mime_draft_attachment_new_for_stream (GInputStream *stream,
                                                                const char   *filename,
                                                                const char   *content_type);
LbMimeDraftAttachment *lb_mime_draft_attachment_new_for_part   (GMimeObject  *part);
void                   lb_mime_draft_attachment_free           (LbMimeDraftAttachment *attachment);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbMimeDraftAttachment, lb_mime_draft_attachment_free)

/* A message to be: every string UTF-8, every list never NULL. */
typedef struct
{
  LbMimeAddress *from;
  GPtrArray *to;            /* LbMimeAddress* */
  GPtrArray *cc;
  GPtrArray *bcc;
  GPtrArray *reply_to;
  char *subject;
  char *in_reply_to;        /* a msg-id without angle brackets, or NULL */
  GPtrArray *references;    /* char*, msg-ids without angle brackets, oldest first */
  char *body_text;          /* the plain text, lines ended by "\n" */
  char *body_html;          /* NULL for plain text only */
  GPtrArray *attachments;   /* LbMimeDraftAttachment* */
  gboolean allow_8bit;      /* 8bit text parts instead of quoted-printable (needs
                             * 8BITMIME to send) */
} LbMimeDraft;

LbMimeDraft  *lb_mime_draft_new  (void);
void          lb_mime_draft_free (LbMimeDraft *draft);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbMimeDraft, lb_mime_draft_free)

GMimeMessage *lb_mime_build           (const LbMimeDraft *draft,
                                       GError           **error);
gboolean      lb_mime_write_to_stream (GMimeMessage      *message,
                                       GOutputStream     *stream,
                                       GError           **error);

/**
 * LbMimeTransport:
 * @LB_MIME_TRANSPORT_7BIT: ASCII only
 * @LB_MIME_TRANSPORT_8BIT: bytes over 127 outside the top-level header: send with
 *   BODY=8BITMIME (RFC 6152) — LB_SMTP_MESSAGE_8BIT
 * @LB_MIME_TRANSPORT_UTF8: raw UTF-8 in the top-level header (RFC 6532), such as an
 *   address outside ASCII: needs SMTPUTF8 (RFC 6531) — LB_SMTP_MESSAGE_UTF8
 *
 * The bits are those of LbSmtpMessageFlags, so a cast carries them over.
 */
typedef enum
{
  LB_MIME_TRANSPORT_7BIT = 0,
  LB_MIME_TRANSPORT_8BIT = 1 << 0,
  LB_MIME_TRANSPORT_UTF8 = 1 << 1,
} LbMimeTransport;

LbMimeTransport lb_mime_message_get_transport (GMimeMessage *message);

G_END_DECLS
