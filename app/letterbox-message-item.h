/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

#include "lb-message-summary.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_MESSAGE_ITEM (letterbox_message_item_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxMessageItem, letterbox_message_item, LETTERBOX, MESSAGE_ITEM, GObject)

LetterboxMessageItem *letterbox_message_item_new         (LbMessageSummary     *summary);
LbMessageSummary     *letterbox_message_item_get_summary (LetterboxMessageItem *self);
void                  letterbox_message_item_set_summary (LetterboxMessageItem *self,
                                                          LbMessageSummary     *summary);
gint64                letterbox_message_item_get_id      (LetterboxMessageItem *self);

G_END_DECLS
