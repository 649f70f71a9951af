/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gmime/gmime.h>

G_BEGIN_DECLS

/* One mailbox, decoded: @name may be NULL, @address is never NULL (maybe ""). */
typedef struct
{
  char *name;
  char *address;
} LbMimeAddress;

LbMimeAddress *lb_mime_address_new  (const char          *name,
                                     const char          *address);
LbMimeAddress *lb_mime_address_copy (const LbMimeAddress *address);
void           lb_mime_address_free (LbMimeAddress       *address);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbMimeAddress, lb_mime_address_free)

GPtrArray     *lb_mime_address_list_from_gmime (InternetAddressList *list);

typedef enum
{
  LB_MIME_DISPOSITION_INLINE,
  LB_MIME_DISPOSITION_ATTACHMENT,
} LbMimeDisposition;

typedef struct
{
  char *filename;                /* RFC 2231/2047 decoded, no directories; may be NULL */
  char *content_type;            /* "type/subtype", lower case */
  LbMimeDisposition disposition;
  guint64 size;                  /* decoded size in bytes */
  char *part_id;                 /* IMAP section (RFC 3501 §6.4.5): "2", "1.2" */
  char *content_id;              /* without angle brackets; may be NULL */
} LbMimeAttachment;

void lb_mime_attachment_free (LbMimeAttachment *attachment);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbMimeAttachment, lb_mime_attachment_free)

typedef enum
{
  LB_MIME_SUMMARY_NONE = 0,
  LB_MIME_SUMMARY_TEXT = 1 << 0, /* also body_text, for the search index */
} LbMimeSummaryFlags;

#define LB_MIME_PREVIEW_CHARS 200
#define LB_MIME_TEXT_LIMIT_DEFAULT (256 * 1024)

typedef struct
{
  LbMimeAddress *from;      /* the first mailbox of From; NULL without one */
  GPtrArray *to;            /* LbMimeAddress*, never NULL; groups flattened */
  GPtrArray *cc;
  GPtrArray *bcc;
  GPtrArray *reply_to;
  char *subject;            /* decoded; "" when missing */
  char *message_id;         /* without angle brackets; NULL when missing */
  char *in_reply_to;        /* the first msg-id of In-Reply-To; NULL when missing */
  GPtrArray *references;    /* char*, oldest first, never NULL */
  gint64 date;              /* Unix seconds; 0 when missing or unreadable */
  char *preview;            /* up to LB_MIME_PREVIEW_CHARS characters, never NULL */
  GPtrArray *attachments;   /* LbMimeAttachment*, in part order, never NULL */
  gboolean has_attachment;
  char *body_text;          /* with LB_MIME_SUMMARY_TEXT, else NULL */
} LbMimeSummary;

LbMimeSummary *lb_mime_summarise      (GMimeMessage       *message,
                                       LbMimeSummaryFlags  flags);
LbMimeSummary *lb_mime_summarise_full (GMimeMessage       *message,
                                       LbMimeSummaryFlags  flags,
                                       gsize               text_limit);
void           lb_mime_summary_free   (LbMimeSummary      *summary);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbMimeSummary, lb_mime_summary_free)

char          *lb_mime_make_preview   (const char         *text,
                                       guint               max_chars);
char          *lb_mime_message_get_text (GMimeMessage     *message,
                                         gsize             max_bytes,
                                         gboolean         *from_html);
GPtrArray     *lb_mime_message_get_attachment_parts (GMimeMessage *message);

G_END_DECLS
