/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

#include "letterbox-folder-row.h"
#include "lb-store.h"

/* One folder in the sidebar: its icon, its name in the user's language where it has a
 * role, and its unread count. */
struct _LetterboxFolderRow
{
  GtkListBoxRow parent_instance;

  LbFolder *folder;

  GtkImage *icon;
  GtkLabel *name_label;
  GtkLabel *unread_label;
};

G_DEFINE_FINAL_TYPE (LetterboxFolderRow, letterbox_folder_row, GTK_TYPE_LIST_BOX_ROW)

/**
 * letterbox_folder_dup_display_name:
 *
 * The name a user sees: an Inbox is always called so in their language (RFC 9051 §5.1
 * makes INBOX special on every server), and Local Folders' own folders are named by
 * their role; other server folders keep the name the server gives.
 */
char *
letterbox_folder_dup_display_name (LbFolder *folder)
{
  LbFolderRole role = lb_folder_get_role (folder);
  gboolean local = g_strcmp0 (lb_folder_get_account_id (folder), LB_STORE_LOCAL_ACCOUNT_ID) == 0;

  if (role == LB_FOLDER_ROLE_INBOX)
    return g_strdup (_("Inbox"));

  if (local)
    {
      switch (role)
        {
        case LB_FOLDER_ROLE_DRAFTS:
          return g_strdup (_("Drafts"));
        case LB_FOLDER_ROLE_SENT:
          return g_strdup (_("Sent"));
        case LB_FOLDER_ROLE_TRASH:
          return g_strdup (_("Trash"));
        case LB_FOLDER_ROLE_JUNK:
          return g_strdup (_("Junk"));
        case LB_FOLDER_ROLE_ARCHIVE:
          return g_strdup (_("Archive"));
        case LB_FOLDER_ROLE_INBOX:
        case LB_FOLDER_ROLE_NONE:
        default:
          break;
        }
    }

  return g_strdup (lb_folder_get_name (folder));
}

const char *
letterbox_folder_get_icon_name (LbFolder *folder)
{
  switch (lb_folder_get_role (folder))
    {
    case LB_FOLDER_ROLE_INBOX:
      return "letterbox-inbox-symbolic";
    case LB_FOLDER_ROLE_DRAFTS:
      return "document-edit-symbolic";
    case LB_FOLDER_ROLE_SENT:
      return "mail-send-symbolic";
    case LB_FOLDER_ROLE_TRASH:
      return "user-trash-symbolic";
    case LB_FOLDER_ROLE_JUNK:
      return "mail-mark-junk-symbolic";
    case LB_FOLDER_ROLE_ARCHIVE:
    case LB_FOLDER_ROLE_NONE:
    default:
      return "folder-symbolic";
    }
}

static void
letterbox_folder_row_dispose (GObject *object)
{
  LetterboxFolderRow *self = LETTERBOX_FOLDER_ROW (object);

  g_clear_object (&self->folder);

  G_OBJECT_CLASS (letterbox_folder_row_parent_class)->dispose (object);
}

static void
letterbox_folder_row_class_init (LetterboxFolderRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_folder_row_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-folder-row.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxFolderRow, icon);
  gtk_widget_class_bind_template_child (widget_class, LetterboxFolderRow, name_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxFolderRow, unread_label);
}

static void
letterbox_folder_row_init (LetterboxFolderRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

GtkWidget *
letterbox_folder_row_new (LbFolder *folder)
{
  LetterboxFolderRow *self;
  g_autofree char *name = NULL;
  g_autofree char *accessible = NULL;
  guint unread;

  g_return_val_if_fail (LB_IS_FOLDER (folder), NULL);

  self = g_object_new (LETTERBOX_TYPE_FOLDER_ROW, NULL);
  self->folder = g_object_ref (folder);

  name = letterbox_folder_dup_display_name (folder);
  unread = lb_folder_get_unread (folder);

  gtk_image_set_from_icon_name (self->icon, letterbox_folder_get_icon_name (folder));
  gtk_label_set_label (self->name_label, name);
  if (unread > 0)
    {
      g_autofree char *count = g_strdup_printf ("%u", unread);

      gtk_label_set_label (self->unread_label, count);
      gtk_widget_set_visible (GTK_WIDGET (self->unread_label), TRUE);
      /* Translators: a folder in the sidebar, for screen readers: "Inbox, 3 unread". */
      accessible = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%s, %u unread",
                                                 "%s, %u unread", unread),
                                    name, unread);
    }

  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  accessible != NULL ? accessible : name,
                                  -1);

  return GTK_WIDGET (self);
}

LbFolder *
letterbox_folder_row_get_folder (LetterboxFolderRow *self)
{
  g_return_val_if_fail (LETTERBOX_IS_FOLDER_ROW (self), NULL);

  return self->folder;
}
