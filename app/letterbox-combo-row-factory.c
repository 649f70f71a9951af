/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include "letterbox-combo-row-factory.h"

/* The items of an AdwComboRow over a GtkStringList, the one shown in the row and those
 * of its popup list: the string, with a check mark on the chosen one in the list, as
 * libadwaita draws them, and the string as the item's name for screen readers.
 * libadwaita 1.2 leaves those items (GtkListView rows) without a name, and GTK 4.8 has
 * no API to name one but through the widget that holds the item's child. */

static void
show_check (GtkListItem *item,
            GtkWidget   *check)
{
  gtk_widget_set_opacity (check, gtk_list_item_get_selected (item) ? 1.0 : 0.0);
}

static void
selected_changed_cb (GtkListItem *item,
                     GParamSpec  *pspec,
                     GtkWidget   *check)
{
  show_check (item, check);
}

/* Names the widget that holds the item's child after the item's string, and shows the
 * check mark in the popup only. GTK 4.8 binds an item before it puts the child in that
 * widget, so this runs at both. */
static void
update_holder (GtkWidget *box)
{
  GtkWidget *holder = gtk_widget_get_parent (box);
  GtkWidget *label = gtk_widget_get_first_child (box);

  gtk_widget_set_visible (gtk_widget_get_last_child (box),
                          gtk_widget_get_ancestor (box, GTK_TYPE_POPOVER) != NULL);
  if (holder != NULL)
    gtk_accessible_update_property (GTK_ACCESSIBLE (holder), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                    gtk_label_get_label (GTK_LABEL (label)), -1);
}

static void
parent_changed_cb (GtkWidget  *box,
                   GParamSpec *pspec,
                   gpointer    user_data)
{
  update_holder (box);
}

static void
setup_cb (GtkSignalListItemFactory *factory,
          GtkListItem              *item,
          gpointer                  user_data)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new (NULL);
  GtkWidget *check = g_object_new (GTK_TYPE_IMAGE,
                                   "icon-name", "object-select-symbolic",
                                   "accessible-role", GTK_ACCESSIBLE_ROLE_PRESENTATION,
                                   NULL);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand (label, TRUE);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), check);
  gtk_list_item_set_child (item, box);
  g_signal_connect_object (item, "notify::selected", G_CALLBACK (selected_changed_cb), check, 0);
  g_signal_connect (box, "notify::parent", G_CALLBACK (parent_changed_cb), NULL);
}

static void
bind_cb (GtkSignalListItemFactory *factory,
         GtkListItem              *item,
         gpointer                  user_data)
{
  GtkWidget *box = gtk_list_item_get_child (item);
  GObject *string = gtk_list_item_get_item (item);
  const char *text = GTK_IS_STRING_OBJECT (string)
                     ? gtk_string_object_get_string (GTK_STRING_OBJECT (string)) : "";

  gtk_label_set_label (GTK_LABEL (gtk_widget_get_first_child (box)), text);
  show_check (item, gtk_widget_get_last_child (box));
  update_holder (box);
}

/**
 * letterbox_combo_row_factory_new:
 *
 * A factory for adw_combo_row_set_factory() on a combo row whose model is a
 * GtkStringList.
 *
 * Returns: (transfer full): the factory
 */
GtkListItemFactory *
letterbox_combo_row_factory_new (void)
{
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();

  g_signal_connect (factory, "setup", G_CALLBACK (setup_cb), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_cb), NULL);
  return factory;
}
