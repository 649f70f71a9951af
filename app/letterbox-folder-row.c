/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

#include "letterbox-folder-row.h"
#include "lb-store.h"

/* One folder in the sidebar: its icon, its name in the user's language where it has a
 * role, its unread count, and (for a folder with folders inside) a button that shows or
 * hides them. The "All Inboxes" row has no folder. It takes drops of messages from the
 * message list (their ids as a string "1,2,3") and emits "messages-dropped". */
struct _LetterboxFolderRow
{
  GtkListBoxRow parent_instance;

  LbFolder *folder;            /* NULL for All Inboxes */
  char *name;
  guint unread;
  guint depth;
  gboolean expanded;

  GtkBox *box;
  GtkImage *icon;
  GtkLabel *name_label;
  GtkLabel *unread_label;
  GtkButton *expander;
};

G_DEFINE_FINAL_TYPE (LetterboxFolderRow, letterbox_folder_row, GTK_TYPE_LIST_BOX_ROW)

enum
{
  PROP_0,
  PROP_EXPANDED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  MESSAGES_DROPPED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

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
update_accessible (LetterboxFolderRow *self)
{
  g_autofree char *accessible = NULL;

  if (self->unread > 0)
    {
      /* Translators: a folder in the sidebar, for screen readers: "Inbox, 3 unread". */
      accessible = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%s, %u unread",
                                                 "%s, %u unread", self->unread),
                                    self->name, self->unread);
    }

  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  accessible != NULL ? accessible : self->name,
                                  -1);
}

static void
update_expander (LetterboxFolderRow *self)
{
  g_autofree char *label = NULL;

  gtk_button_set_icon_name (GTK_BUTTON (self->expander),
                            self->expanded ? "pan-down-symbolic" : "pan-end-symbolic");
  label = g_strdup_printf (self->expanded ? _("Hide the folders in %s")
                                          : _("Show the folders in %s"),
                           self->name);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->expander), label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->expander),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
  if (gtk_widget_get_visible (GTK_WIDGET (self->expander)))
    gtk_accessible_update_state (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_STATE_EXPANDED,
                                 self->expanded, -1);
}

static void
expander_clicked_cb (LetterboxFolderRow *self)
{
  letterbox_folder_row_set_expanded (self, !self->expanded);
}

static gboolean
drop_cb (GtkDropTarget      *target,
         const GValue       *value,
         double              x,
         double              y,
         LetterboxFolderRow *self)
{
  const char *ids;

  if (self->folder == NULL || !G_VALUE_HOLDS_STRING (value))
    return FALSE;
  ids = g_value_get_string (value);
  if (ids == NULL || ids[0] == '\0')
    return FALSE;

  g_signal_emit (self, signals[MESSAGES_DROPPED], 0, ids);
  return TRUE;
}

static void
letterbox_folder_row_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  LetterboxFolderRow *self = LETTERBOX_FOLDER_ROW (object);

  switch (prop_id)
    {
    case PROP_EXPANDED:
      g_value_set_boolean (value, self->expanded);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
letterbox_folder_row_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  LetterboxFolderRow *self = LETTERBOX_FOLDER_ROW (object);

  switch (prop_id)
    {
    case PROP_EXPANDED:
      letterbox_folder_row_set_expanded (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
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
letterbox_folder_row_finalize (GObject *object)
{
  LetterboxFolderRow *self = LETTERBOX_FOLDER_ROW (object);

  g_free (self->name);

  G_OBJECT_CLASS (letterbox_folder_row_parent_class)->finalize (object);
}

static void
letterbox_folder_row_class_init (LetterboxFolderRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->get_property = letterbox_folder_row_get_property;
  object_class->set_property = letterbox_folder_row_set_property;
  object_class->dispose = letterbox_folder_row_dispose;
  object_class->finalize = letterbox_folder_row_finalize;

  properties[PROP_EXPANDED] =
    g_param_spec_boolean ("expanded", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * LetterboxFolderRow::messages-dropped:
   * @ids: the dropped messages' store ids, comma-separated
   *
   * Messages from the message list were dropped on this folder.
   */
  signals[MESSAGES_DROPPED] =
    g_signal_new ("messages-dropped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-folder-row.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxFolderRow, box);
  gtk_widget_class_bind_template_child (widget_class, LetterboxFolderRow, icon);
  gtk_widget_class_bind_template_child (widget_class, LetterboxFolderRow, name_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxFolderRow, unread_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxFolderRow, expander);
  gtk_widget_class_bind_template_callback (widget_class, expander_clicked_cb);
}

static void
letterbox_folder_row_init (LetterboxFolderRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->expanded = TRUE;
}

static LetterboxFolderRow *
row_new (LbFolder   *folder,
         const char *name,
         const char *icon_name,
         guint       unread)
{
  LetterboxFolderRow *self = g_object_new (LETTERBOX_TYPE_FOLDER_ROW, NULL);

  self->folder = folder != NULL ? g_object_ref (folder) : NULL;
  self->name = g_strdup (name);
  gtk_image_set_from_icon_name (self->icon, icon_name);
  gtk_label_set_label (self->name_label, name);
  letterbox_folder_row_set_unread (self, unread);

  if (folder != NULL)
    {
      GtkDropTarget *target = gtk_drop_target_new (G_TYPE_STRING, GDK_ACTION_MOVE | GDK_ACTION_COPY);

      g_signal_connect (target, "drop", G_CALLBACK (drop_cb), self);
      gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (target));
    }

  return self;
}

GtkWidget *
letterbox_folder_row_new (LbFolder *folder)
{
  g_autofree char *name = NULL;

  g_return_val_if_fail (LB_IS_FOLDER (folder), NULL);

  name = letterbox_folder_dup_display_name (folder);
  return GTK_WIDGET (row_new (folder, name, letterbox_folder_get_icon_name (folder),
                              lb_folder_get_unread (folder)));
}

/**
 * letterbox_folder_row_new_all_inboxes:
 * @unread: the unread messages of every Inbox together
 *
 * The row of the unified Inbox, which has no folder of its own.
 */
GtkWidget *
letterbox_folder_row_new_all_inboxes (guint unread)
{
  return GTK_WIDGET (row_new (NULL, _("All Inboxes"), "letterbox-inbox-symbolic", unread));
}

void
letterbox_folder_row_set_unread (LetterboxFolderRow *self,
                                 guint               unread)
{
  g_autofree char *count = NULL;

  g_return_if_fail (LETTERBOX_IS_FOLDER_ROW (self));

  self->unread = unread;
  count = g_strdup_printf ("%u", unread);
  gtk_label_set_label (self->unread_label, count);
  gtk_widget_set_visible (GTK_WIDGET (self->unread_label), unread > 0);
  update_accessible (self);
}

guint
letterbox_folder_row_get_unread (LetterboxFolderRow *self)
{
  g_return_val_if_fail (LETTERBOX_IS_FOLDER_ROW (self), 0);

  return self->unread;
}

/* Replaces the folder (same id, newer counts) without rebuilding the row. */
void
letterbox_folder_row_update (LetterboxFolderRow *self,
                             LbFolder           *folder)
{
  g_return_if_fail (LETTERBOX_IS_FOLDER_ROW (self));
  g_return_if_fail (LB_IS_FOLDER (folder));

  g_set_object (&self->folder, folder);
  letterbox_folder_row_set_unread (self, lb_folder_get_unread (folder));
}

/**
 * letterbox_folder_row_set_level:
 * @depth: how many folders this one is inside (0 for a top-level folder)
 * @name: (nullable): the name to show instead of the full one (the last level), or %NULL
 * @has_children: whether folders are inside this one (it gets a show/hide button)
 */
void
letterbox_folder_row_set_level (LetterboxFolderRow *self,
                                guint               depth,
                                const char         *name,
                                gboolean            has_children)
{
  g_return_if_fail (LETTERBOX_IS_FOLDER_ROW (self));

  self->depth = depth;
  gtk_widget_set_margin_start (GTK_WIDGET (self->box), 18 * depth);
  if (name != NULL)
    {
      g_free (self->name);
      self->name = g_strdup (name);
      gtk_label_set_label (self->name_label, name);
      update_accessible (self);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->expander), has_children);
  update_expander (self);
}

guint
letterbox_folder_row_get_depth (LetterboxFolderRow *self)
{
  g_return_val_if_fail (LETTERBOX_IS_FOLDER_ROW (self), 0);

  return self->depth;
}

gboolean
letterbox_folder_row_get_expanded (LetterboxFolderRow *self)
{
  g_return_val_if_fail (LETTERBOX_IS_FOLDER_ROW (self), FALSE);

  return self->expanded;
}

void
letterbox_folder_row_set_expanded (LetterboxFolderRow *self,
                                   gboolean            expanded)
{
  g_return_if_fail (LETTERBOX_IS_FOLDER_ROW (self));

  expanded = !!expanded;
  if (self->expanded == expanded)
    return;

  self->expanded = expanded;
  update_expander (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_EXPANDED]);
}

const char *
letterbox_folder_row_get_name (LetterboxFolderRow *self)
{
  g_return_val_if_fail (LETTERBOX_IS_FOLDER_ROW (self), NULL);

  return self->name;
}

/* Returns: (transfer none) (nullable): the folder, or %NULL for All Inboxes */
LbFolder *
letterbox_folder_row_get_folder (LetterboxFolderRow *self)
{
  g_return_val_if_fail (LETTERBOX_IS_FOLDER_ROW (self), NULL);

  return self->folder;
}
