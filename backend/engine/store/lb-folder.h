/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * LbFolderRole:
 *
 * What a folder is for, from the server's SPECIAL-USE attributes (RFC 6154) or, for
 * Local Folders, fixed at creation. Stored as a short string in the index database.
 */
typedef enum
{
  LB_FOLDER_ROLE_NONE,
  LB_FOLDER_ROLE_INBOX,
  LB_FOLDER_ROLE_DRAFTS,
  LB_FOLDER_ROLE_SENT,
  LB_FOLDER_ROLE_TRASH,
  LB_FOLDER_ROLE_JUNK,
  LB_FOLDER_ROLE_ARCHIVE,
} LbFolderRole;

const char  *lb_folder_role_to_string   (LbFolderRole role);
LbFolderRole lb_folder_role_from_string (const char  *str);

#define LB_TYPE_FOLDER (lb_folder_get_type ())
G_DECLARE_FINAL_TYPE (LbFolder, lb_folder, LB, FOLDER, GObject)

LbFolder     *lb_folder_new               (gint64        id,
                                           const char   *account_id,
                                           const char   *account_name,
                                           const char   *name,
                                           LbFolderRole  role,
                                           guint         total,
                                           guint         unread);
gint64        lb_folder_get_id            (LbFolder *self);
const char   *lb_folder_get_account_id    (LbFolder *self);
const char   *lb_folder_get_account_name  (LbFolder *self);
const char   *lb_folder_get_name          (LbFolder *self);
LbFolderRole  lb_folder_get_role          (LbFolder *self);
guint         lb_folder_get_total         (LbFolder *self);
guint         lb_folder_get_unread        (LbFolder *self);
char          lb_folder_get_delimiter     (LbFolder *self);
void          lb_folder_set_delimiter     (LbFolder *self,
                                           char      delimiter);

G_END_DECLS
