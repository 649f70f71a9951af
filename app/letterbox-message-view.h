/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "lb-bus-backend1.h"
#include "lb-store.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_MESSAGE_VIEW (letterbox_message_view_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxMessageView, letterbox_message_view, LETTERBOX, MESSAGE_VIEW,
                      AdwBin)

GtkWidget        *letterbox_message_view_new         (void);
void              letterbox_message_view_show        (LetterboxMessageView *self,
                                                      LbStore              *store,
                                                      LbMessageSummary     *message);
LbMessageSummary *letterbox_message_view_get_message (LetterboxMessageView *self);
void              letterbox_message_view_set_backend (LetterboxMessageView *self,
                                                      LbBusBackend1        *backend);
const char       *letterbox_message_view_get_state   (LetterboxMessageView *self);
GtkWidget        *letterbox_message_view_get_web_view (LetterboxMessageView *self);

void              letterbox_message_view_save_attachment_async  (LetterboxMessageView *self,
                                                                 guint                 index,
                                                                 GFile                *file,
                                                                 GCancellable         *cancellable,
                                                                 GAsyncReadyCallback   callback,
                                                                 gpointer              user_data);
gboolean          letterbox_message_view_save_attachment_finish (LetterboxMessageView *self,
                                                                 GAsyncResult         *result,
                                                                 GError              **error);

G_END_DECLS
