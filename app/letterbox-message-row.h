/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "lb-message-summary.h"
#include "letterbox-message-item.h"

G_BEGIN_DECLS

#define LETTERBOX_MESSAGE_ROW_MARGIN_TOP 9
#define LETTERBOX_MESSAGE_ROW_MARGIN_BOTTOM 9
#define LETTERBOX_MESSAGE_ROW_ICON_SIZE 12
#define LETTERBOX_MESSAGE_ROW_STAR_SIZE 34  /* as a circular button: a 16 px icon in a 34 px circle */
#define LETTERBOX_MESSAGE_ROW_LINE_SPACING 3
/* Whatever the font: the margins, the first line's icon and the second line's star. */
#define LETTERBOX_MESSAGE_ROW_MIN_HEIGHT                                                    \
  (LETTERBOX_MESSAGE_ROW_MARGIN_TOP + LETTERBOX_MESSAGE_ROW_ICON_SIZE +                     \
   LETTERBOX_MESSAGE_ROW_LINE_SPACING + LETTERBOX_MESSAGE_ROW_STAR_SIZE +                   \
   LETTERBOX_MESSAGE_ROW_LINE_SPACING + LETTERBOX_MESSAGE_ROW_MARGIN_BOTTOM)

#define LETTERBOX_TYPE_MESSAGE_ROW (letterbox_message_row_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxMessageRow, letterbox_message_row, LETTERBOX, MESSAGE_ROW, GtkWidget)

GtkWidget *letterbox_message_row_new          (void);
void       letterbox_message_row_set_item     (LetterboxMessageRow  *self,
                                               LetterboxMessageItem *item);
gint64     letterbox_message_row_get_message_id (LetterboxMessageRow *self);
void       letterbox_message_row_set_message  (LetterboxMessageRow  *self,
                                               LbMessageSummary     *message);
gboolean   letterbox_message_row_star_at      (LetterboxMessageRow  *self,
                                               double                x,
                                               double                y);
void       letterbox_message_row_set_star_state (LetterboxMessageRow *self,
                                                 gboolean             hover,
                                                 gboolean             pressed);
void       letterbox_message_row_click_star   (LetterboxMessageRow  *self);

char      *letterbox_format_date              (gint64                unix_time,
                                               gboolean              full);

G_END_DECLS
