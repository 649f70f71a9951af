/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "lb-store.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_SIDEBAR (letterbox_sidebar_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxSidebar, letterbox_sidebar, LETTERBOX, SIDEBAR, AdwBin)

GtkWidget  *letterbox_sidebar_new                    (void);
void        letterbox_sidebar_set_store              (LetterboxSidebar *self,
                                                      LbStore          *store);
void        letterbox_sidebar_refresh                (LetterboxSidebar *self);

LbFolder   *letterbox_sidebar_get_selected_folder    (LetterboxSidebar *self);
gboolean    letterbox_sidebar_get_all_inboxes_selected (LetterboxSidebar *self);
void        letterbox_sidebar_select_folder          (LetterboxSidebar *self,
                                                      gint64            folder_id);

GPtrArray  *letterbox_sidebar_get_folders            (LetterboxSidebar *self);
LbFolder   *letterbox_sidebar_find_folder            (LetterboxSidebar *self,
                                                      gint64            folder_id);
LbFolder   *letterbox_sidebar_find_role              (LetterboxSidebar *self,
                                                      const char       *account_id,
                                                      LbFolderRole      role);
LbFolder   *letterbox_sidebar_find_archive           (LetterboxSidebar *self,
                                                      const char       *account_id);
char       *letterbox_sidebar_dup_folder_path        (LetterboxSidebar *self,
                                                      LbFolder         *folder);

/* What the message list shows for All Inboxes (letterbox_message_list_show_query). */
#define LETTERBOX_SIDEBAR_ALL_INBOXES_QUERY "in:INBOX"

G_END_DECLS
