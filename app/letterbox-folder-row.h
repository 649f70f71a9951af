/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "lb-folder.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_FOLDER_ROW (letterbox_folder_row_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxFolderRow, letterbox_folder_row, LETTERBOX, FOLDER_ROW,
                      GtkListBoxRow)

GtkWidget  *letterbox_folder_row_new              (LbFolder           *folder);
LbFolder   *letterbox_folder_row_get_folder       (LetterboxFolderRow *self);

char       *letterbox_folder_dup_display_name     (LbFolder           *folder);
const char *letterbox_folder_get_icon_name        (LbFolder           *folder);

G_END_DECLS
