/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <gmime/gmime.h>

#include "lb-mime-summary.h"

G_BEGIN_DECLS

/* What the reading pane shows of a message: its body as HTML or as text, and the
 * parts a person sees as attachments. */
typedef struct
{
  char *html;              /* the body as HTML (UTF-8), or NULL when it is text only */
  char *text;              /* the body as plain text when @html is NULL, never NULL then */
  gboolean truncated;      /* the body was longer than the display limit */
  GPtrArray *attachments;  /* LbMimeAttachment*: listed to the user (not the inline images
                            * the HTML body refers to by cid:) */
  GHashTable *resources;   /* Content-ID (no brackets) → LbMimeResource*, the parts an
                            * HTML body can refer to by cid: (RFC 2392) */
} LbMimeDisplay;

typedef struct
{
  char *content_type;      /* "type/subtype", lower case */
  GBytes *data;            /* decoded */
} LbMimeResource;

#define LB_MIME_DISPLAY_TEXT_LIMIT (4 * 1024 * 1024)
#define LB_MIME_DISPLAY_RESOURCE_LIMIT (32 * 1024 * 1024)

LbMimeDisplay *lb_mime_display_new          (GMimeMessage  *message);
void           lb_mime_display_free         (LbMimeDisplay *display);
void           lb_mime_resource_free        (LbMimeResource *resource);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbMimeDisplay, lb_mime_display_free)

GMimeObject   *lb_mime_message_find_part    (GMimeMessage  *message,
                                             const char    *part_id);
gboolean       lb_mime_object_write_decoded (GMimeObject   *object,
                                             GOutputStream *output,
                                             GCancellable  *cancellable,
                                             GError       **error);

/* Plain text cut into runs of quoted ("> …", RFC 3676 §4.5) and unquoted lines. */
typedef struct
{
  gsize start;             /* byte offsets into the text; a block ends after its last
                            * line's line end */
  gsize end;
  guint lines;
  gboolean quoted;
} LbMimeTextBlock;

GArray        *lb_mime_text_split_quotes    (const char    *text);

G_END_DECLS
