/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-store.h"
#include "letterbox-message-item.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_MESSAGE_LIST_MODEL (letterbox_message_list_model_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxMessageListModel, letterbox_message_list_model,
                      LETTERBOX, MESSAGE_LIST_MODEL, GObject)

LetterboxMessageListModel *letterbox_message_list_model_new     (void);

void     letterbox_message_list_model_show_folders       (LetterboxMessageListModel *self,
                                                          LbStore                   *store,
                                                          const gint64              *folder_ids,
                                                          guint                      n_folders);
void     letterbox_message_list_model_show_unified_inbox (LetterboxMessageListModel *self,
                                                          LbStore                   *store);
void     letterbox_message_list_model_show_query         (LetterboxMessageListModel *self,
                                                          LbStore                   *store,
                                                          const char                *query);
void     letterbox_message_list_model_clear              (LetterboxMessageListModel *self);
void     letterbox_message_list_model_refresh            (LetterboxMessageListModel *self);

void     letterbox_message_list_model_set_threads        (LetterboxMessageListModel *self,
                                                          gboolean                   threads);
gboolean letterbox_message_list_model_get_threads        (LetterboxMessageListModel *self);
gboolean letterbox_message_list_model_get_loading        (LetterboxMessageListModel *self);
gboolean letterbox_message_list_model_get_busy           (LetterboxMessageListModel *self);
const GError *letterbox_message_list_model_get_error     (LetterboxMessageListModel *self);
gboolean letterbox_message_list_model_is_search          (LetterboxMessageListModel *self);

guint    letterbox_message_list_model_find               (LetterboxMessageListModel *self,
                                                          gint64                     message_id);

LetterboxMessageItem *letterbox_message_list_model_peek (LetterboxMessageListModel *self,
                                                         guint                      position);

void     letterbox_message_list_model_hold_pages         (LetterboxMessageListModel *self,
                                                          gboolean                   hold);

/* Tuning, and what the tests look at. */
void     letterbox_message_list_model_set_page_size      (LetterboxMessageListModel *self,
                                                          guint                      page_size,
                                                          guint                      max_pages);
guint    letterbox_message_list_model_get_n_pages        (LetterboxMessageListModel *self);
guint    letterbox_message_list_model_get_n_loaded_rows  (LetterboxMessageListModel *self);

void     letterbox_message_list_model_list_ids_async     (LetterboxMessageListModel *self,
                                                          GCancellable              *cancellable,
                                                          GAsyncReadyCallback        callback,
                                                          gpointer                   user_data);
GArray  *letterbox_message_list_model_list_ids_finish    (LetterboxMessageListModel *self,
                                                          GAsyncResult              *result,
                                                          GError                   **error);

G_END_DECLS
