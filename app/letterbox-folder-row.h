/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "lb-folder.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_FOLDER_ROW (letterbox_folder_row_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxFolderRow, letterbox_folder_row, LETTERBOX, FOLDER_ROW,
                      GtkListBoxRow)

GtkWidget  *letterbox_folder_row_new              (LbFolder           *folder);
GtkWidget  *letterbox_folder_row_new_all_inboxes  (guint               unread);
LbFolder   *letterbox_folder_row_get_folder       (LetterboxFolderRow *self);
void        letterbox_folder_row_update           (LetterboxFolderRow *self,
                                                   LbFolder           *folder);
void        letterbox_folder_row_set_unread       (LetterboxFolderRow *self,
                                                   guint               unread);
guint       letterbox_folder_row_get_unread       (LetterboxFolderRow *self);
void        letterbox_folder_row_set_level        (LetterboxFolderRow *self,
                                                   guint               depth,
                                                   const char         *name,
                                                   gboolean            has_children);
guint       letterbox_folder_row_get_depth        (LetterboxFolderRow *self);
gboolean    letterbox_folder_row_get_expanded     (LetterboxFolderRow *self);
void        letterbox_folder_row_set_expanded     (LetterboxFolderRow *self,
                                                   gboolean            expanded);
const char *letterbox_folder_row_get_name         (LetterboxFolderRow *self);

char       *letterbox_folder_dup_display_name     (LbFolder           *folder);
const char *letterbox_folder_get_icon_name        (LbFolder           *folder);

G_END_DECLS
