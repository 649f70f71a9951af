/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "lb-store.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_MESSAGE_LIST (letterbox_message_list_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxMessageList, letterbox_message_list, LETTERBOX, MESSAGE_LIST, GtkWidget)

GtkWidget *letterbox_message_list_new                (void);
void       letterbox_message_list_show_folder        (LetterboxMessageList *self,
                                                      LbStore              *store,
                                                      gint64                folder_id);
void       letterbox_message_list_show_unified_inbox (LetterboxMessageList *self,
                                                      LbStore              *store);
void       letterbox_message_list_show_query         (LetterboxMessageList *self,
                                                      LbStore              *store,
                                                      const char           *query);
void       letterbox_message_list_clear              (LetterboxMessageList *self);
void       letterbox_message_list_refresh            (LetterboxMessageList *self);
GPtrArray *letterbox_message_list_get_selected       (LetterboxMessageList *self);
void       letterbox_message_list_select_all         (LetterboxMessageList *self);
void       letterbox_message_list_select_next        (LetterboxMessageList *self,
                                                      int                   delta);
gboolean   letterbox_message_list_get_loading (LetterboxMessageList *self);
gboolean   letterbox_message_list_get_threads        (LetterboxMessageList *self);
void       letterbox_message_list_set_threads        (LetterboxMessageList *self,
                                                      gboolean              threads);

guint      letterbox_message_list_get_n_items        (LetterboxMessageList *self);
gboolean   letterbox_message_list_get_all_selected   (LetterboxMessageList *self);
GtkBitset *letterbox_message_list_get_selection     (LetterboxMessageList *self);
void       letterbox_message_list_list_all_async     (LetterboxMessageList *self,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
GArray    *letterbox_message_list_list_all_finish    (LetterboxMessageList *self,
                                                      GAsyncResult         *result,
                                                      GError              **error);

G_END_DECLS
