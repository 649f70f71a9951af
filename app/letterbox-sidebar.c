/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "letterbox-bench.h"
#include "letterbox-folder-row.h"
#include "letterbox-sidebar.h"

/*
 * The folder pane: "All Inboxes" when there is at least one account besides Local
 * Folders, then Local Folders and each account under a heading, each account's folders
 * nested by the server's hierarchy delimiter (a folder with folders inside can hide
 * them). Unread counts come from the store and are brought up to date by
 * letterbox_sidebar_refresh() without rebuilding the rows, so the selection and the
 * keyboard focus stay where they are. Rows take message drops from the message list.
 * The selection is remembered in the "selected-folder" setting.
 */

#define ALL_INBOXES_KEY "all-inboxes"

typedef struct
{
  LetterboxFolderRow *row;
  int parent;                  /* index in the entries, or -1 */
} Entry;

struct _LetterboxSidebar
{
  AdwBin parent_instance;

  GSettings *settings;
  LbStore *store;
  GCancellable *cancellable;
  GArray *entries;             /* Entry, in display order; excludes All Inboxes */
  GPtrArray *folders;          /* LbFolder, as the store listed them */
  LetterboxFolderRow *all_inboxes;
  gboolean loaded;
  gboolean rebuilding;

  GtkListBox *list;
};

G_DEFINE_FINAL_TYPE (LetterboxSidebar, letterbox_sidebar, ADW_TYPE_BIN)

enum
{
  FOLDER_SELECTED,
  MESSAGES_DROPPED,
  LOAD_FAILED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static char *
folder_key (LbFolder *folder)
{
  return g_strdup_printf ("%s/%s", lb_folder_get_account_id (folder), lb_folder_get_name (folder));
}

static void
update_visibility (LetterboxSidebar *self)
{
  g_autofree gboolean *shown = g_new0 (gboolean, MAX (self->entries->len, 1));

  for (guint i = 0; i < self->entries->len; i++)
    {
      Entry *e = &g_array_index (self->entries, Entry, i);

      if (e->parent < 0)
        shown[i] = TRUE;
      else
        shown[i] = shown[e->parent] &&
                   letterbox_folder_row_get_expanded (
                     g_array_index (self->entries, Entry, e->parent).row);
      gtk_widget_set_visible (GTK_WIDGET (e->row), shown[i]);
    }
}

static void
header_func (GtkListBoxRow *row,
             GtkListBoxRow *before,
             gpointer       user_data)
{
  LbFolder *folder = letterbox_folder_row_get_folder (LETTERBOX_FOLDER_ROW (row));
  LbFolder *previous = NULL;
  GtkWidget *header;

  if (before != NULL)
    previous = letterbox_folder_row_get_folder (LETTERBOX_FOLDER_ROW (before));

  if (folder == NULL ||
      (previous != NULL &&
       g_strcmp0 (lb_folder_get_account_id (folder), lb_folder_get_account_id (previous)) == 0))
    {
      gtk_list_box_row_set_header (row, NULL);
      return;
    }

  header = gtk_label_new (lb_folder_get_account_name (folder));
  gtk_label_set_xalign (GTK_LABEL (header), 0);
  gtk_label_set_ellipsize (GTK_LABEL (header), PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (header, "heading");
  gtk_widget_add_css_class (header, "account-header");
  gtk_list_box_row_set_header (row, header);
}

static void
row_selected_cb (LetterboxSidebar *self,
                 GtkListBoxRow    *row)
{
  LbFolder *folder;
  g_autofree char *key = NULL;

  if (self->rebuilding || row == NULL)
    return;

  folder = letterbox_folder_row_get_folder (LETTERBOX_FOLDER_ROW (row));
  key = folder != NULL ? folder_key (folder) : g_strdup (ALL_INBOXES_KEY);
  g_settings_set_string (self->settings, "selected-folder", key);
  g_signal_emit (self, signals[FOLDER_SELECTED], 0, folder);
}

static void
row_dropped_cb (LetterboxFolderRow *row,
                const char         *ids,
                LetterboxSidebar   *self)
{
  g_signal_emit (self, signals[MESSAGES_DROPPED], 0, letterbox_folder_row_get_folder (row), ids);
}

static void
row_expanded_cb (LetterboxSidebar *self)
{
  update_visibility (self);
}

/* The folder that @folder is inside: the longest proper prefix of its name, cut at the
 * delimiter, that is a folder of the same account; or -1. */
static int
find_parent (GHashTable *by_name,
             LbFolder   *folder)
{
  char delimiter = lb_folder_get_delimiter (folder);
  g_autofree char *name = g_strdup (lb_folder_get_name (folder));
  char *cut;

  if (delimiter == 0)
    return -1;

  while ((cut = strrchr (name, delimiter)) != NULL)
    {
      gpointer index;

      *cut = '\0';
      if (g_hash_table_lookup_extended (by_name, name, NULL, &index))
        return GPOINTER_TO_INT (index);
    }
  return -1;
}

typedef struct
{
  LbFolder *folder;
  int parent;                  /* index in the account's folders, or -1 */
  GArray *children;            /* int */
} Node;

static void
node_clear (Node *node)
{
  g_clear_pointer (&node->children, g_array_unref);
}

/* One account's folders (consecutive in @folders, from @start to @end) in display
 * order: parents before their children, children in the store's order. */
static void
order_account (GPtrArray *folders,
               guint      start,
               guint      end,
               GPtrArray *ordered,
               GArray    *parents)
{
  g_autoptr(GHashTable) by_name = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GArray) nodes = g_array_new (FALSE, TRUE, sizeof (Node));
  g_autoptr(GArray) roots = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr(GArray) stack = g_array_new (FALSE, FALSE, sizeof (int));
  g_autofree int *position = NULL;
  guint base = ordered->len;

  g_array_set_clear_func (nodes, (GDestroyNotify) node_clear);
  g_array_set_size (nodes, end - start);
  for (guint i = start; i < end; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);

      g_array_index (nodes, Node, i - start).folder = folder;
      g_hash_table_insert (by_name, (gpointer) lb_folder_get_name (folder),
                           GINT_TO_POINTER (i - start));
    }

  for (guint i = 0; i < nodes->len; i++)
    {
      Node *node = &g_array_index (nodes, Node, i);
      int parent = find_parent (by_name, node->folder);

      node->parent = parent;
      if (parent < 0)
        g_array_append_val (roots, i);
      else
        {
          Node *p = &g_array_index (nodes, Node, parent);

          if (p->children == NULL)
            p->children = g_array_new (FALSE, FALSE, sizeof (int));
          g_array_append_val (p->children, i);
        }
    }

  /* Depth first, roots in order; the stack holds node indices, pushed in reverse. */
  position = g_new0 (int, MAX (nodes->len, 1));
  for (guint r = roots->len; r > 0; r--)
    g_array_append_val (stack, g_array_index (roots, int, r - 1));
  while (stack->len > 0)
    {
      int index = g_array_index (stack, int, stack->len - 1);
      Node *node = &g_array_index (nodes, Node, index);
      int parent_position;

      g_array_set_size (stack, stack->len - 1);
      position[index] = ordered->len;
      parent_position = node->parent < 0 ? -1 : position[node->parent];
      g_ptr_array_add (ordered, node->folder);
      g_array_append_val (parents, parent_position);

      if (node->children != NULL)
        for (guint c = node->children->len; c > 0; c--)
          g_array_append_val (stack, g_array_index (node->children, int, c - 1));
    }

  g_assert (ordered->len == base + nodes->len);
}

/* Everything in display order, with each one's parent (an index into @ordered, or -1). */
static void
order_folders (GPtrArray  *folders,
               GPtrArray **ordered,
               GArray    **parents)
{
  guint start = 0;

  *ordered = g_ptr_array_new ();
  *parents = g_array_new (FALSE, FALSE, sizeof (int));

  while (start < folders->len)
    {
      const char *account = lb_folder_get_account_id (g_ptr_array_index (folders, start));
      guint end = start + 1;

      while (end < folders->len &&
             g_strcmp0 (lb_folder_get_account_id (g_ptr_array_index (folders, end)), account) == 0)
        end++;
      order_account (folders, start, end, *ordered, *parents);
      start = end;
    }
}

static guint
count_accounts (GPtrArray *folders)
{
  g_autoptr(GHashTable) accounts = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < folders->len; i++)
    {
      const char *account = lb_folder_get_account_id (g_ptr_array_index (folders, i));

      if (g_strcmp0 (account, LB_STORE_LOCAL_ACCOUNT_ID) != 0)
        g_hash_table_add (accounts, (gpointer) account);
    }
  return g_hash_table_size (accounts);
}

static guint
count_inbox_unread (GPtrArray *folders)
{
  guint unread = 0;

  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);

      if (lb_folder_get_role (folder) == LB_FOLDER_ROLE_INBOX)
        unread += lb_folder_get_unread (folder);
    }
  return unread;
}

/* Whether @ordered shows the same folders in the same places as the rows do now. */
static gboolean
same_layout (LetterboxSidebar *self,
             GPtrArray        *ordered,
             GArray           *parents,
             gboolean          with_all_inboxes)
{
  if ((self->all_inboxes != NULL) != with_all_inboxes || ordered->len != self->entries->len)
    return FALSE;

  for (guint i = 0; i < ordered->len; i++)
    {
      Entry *e = &g_array_index (self->entries, Entry, i);
      LbFolder *old = letterbox_folder_row_get_folder (e->row);
      LbFolder *new = g_ptr_array_index (ordered, i);

      if (lb_folder_get_id (old) != lb_folder_get_id (new) ||
          g_strcmp0 (lb_folder_get_name (old), lb_folder_get_name (new)) != 0 ||
          lb_folder_get_role (old) != lb_folder_get_role (new) ||
          e->parent != g_array_index (parents, int, i))
        return FALSE;
    }
  return TRUE;
}

static GtkListBoxRow *
find_row_for_key (LetterboxSidebar *self,
                  const char       *key)
{
  if (key == NULL || key[0] == '\0')
    return NULL;
  if (g_str_equal (key, ALL_INBOXES_KEY))
    return self->all_inboxes != NULL ? GTK_LIST_BOX_ROW (self->all_inboxes) : NULL;

  for (guint i = 0; i < self->entries->len; i++)
    {
      LetterboxFolderRow *row = g_array_index (self->entries, Entry, i).row;
      g_autofree char *row_key = folder_key (letterbox_folder_row_get_folder (row));

      if (g_str_equal (row_key, key))
        return GTK_LIST_BOX_ROW (row);
    }
  return NULL;
}

static GtkListBoxRow *
default_row (LetterboxSidebar *self)
{
  if (self->all_inboxes != NULL)
    return GTK_LIST_BOX_ROW (self->all_inboxes);

  for (guint i = 0; i < self->entries->len; i++)
    {
      LetterboxFolderRow *row = g_array_index (self->entries, Entry, i).row;

      if (lb_folder_get_role (letterbox_folder_row_get_folder (row)) == LB_FOLDER_ROLE_INBOX)
        return GTK_LIST_BOX_ROW (row);
    }
  return self->entries->len > 0 ? GTK_LIST_BOX_ROW (g_array_index (self->entries, Entry, 0).row)
                                : NULL;
}

static void
rebuild (LetterboxSidebar *self,
         GPtrArray        *ordered,
         GArray           *parents,
         gboolean          with_all_inboxes,
         guint             inbox_unread)
{
  g_autofree char *wanted = NULL;
  GtkListBoxRow *selected = gtk_list_box_get_selected_row (self->list);
  GtkListBoxRow *select;
  GtkWidget *child;
  g_autoptr(GHashTable) collapsed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  if (selected != NULL)
    {
      LbFolder *folder = letterbox_folder_row_get_folder (LETTERBOX_FOLDER_ROW (selected));

      wanted = folder != NULL ? folder_key (folder) : g_strdup (ALL_INBOXES_KEY);
    }
  else
    wanted = g_settings_get_string (self->settings, "selected-folder");

  for (guint i = 0; i < self->entries->len; i++)
    {
      LetterboxFolderRow *row = g_array_index (self->entries, Entry, i).row;

      if (!letterbox_folder_row_get_expanded (row))
        g_hash_table_add (collapsed, folder_key (letterbox_folder_row_get_folder (row)));
    }

  self->rebuilding = TRUE;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->list))) != NULL)
    gtk_list_box_remove (self->list, child);
  g_array_set_size (self->entries, 0);
  self->all_inboxes = NULL;

  if (with_all_inboxes)
    {
      self->all_inboxes = LETTERBOX_FOLDER_ROW (letterbox_folder_row_new_all_inboxes (inbox_unread));
      gtk_list_box_append (self->list, GTK_WIDGET (self->all_inboxes));
    }

  for (guint i = 0; i < ordered->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (ordered, i);
      Entry e = { LETTERBOX_FOLDER_ROW (letterbox_folder_row_new (folder)),
                  g_array_index (parents, int, i) };
      g_autofree char *key = folder_key (folder);
      g_autofree char *leaf = NULL;
      gboolean has_children = i + 1 < ordered->len &&
                              g_array_index (parents, int, i + 1) == (int) i;
      guint depth = 0;

      for (int p = e.parent; p >= 0; p = g_array_index (parents, int, p))
        depth++;
      if (e.parent >= 0)
        {
          LbFolder *parent = g_ptr_array_index (ordered, e.parent);

          leaf = g_strdup (lb_folder_get_name (folder) + strlen (lb_folder_get_name (parent)) + 1);
        }
      letterbox_folder_row_set_level (e.row, depth, leaf, has_children);
      if (g_hash_table_contains (collapsed, key))
        letterbox_folder_row_set_expanded (e.row, FALSE);
      g_signal_connect (e.row, "messages-dropped", G_CALLBACK (row_dropped_cb), self);
      g_signal_connect_swapped (e.row, "notify::expanded", G_CALLBACK (row_expanded_cb), self);
      gtk_list_box_append (self->list, GTK_WIDGET (e.row));
      g_array_append_val (self->entries, e);
    }
  update_visibility (self);
  self->rebuilding = FALSE;

  select = find_row_for_key (self, wanted);
  if (select == NULL)
    select = default_row (self);
  if (select != NULL)
    gtk_list_box_select_row (self->list, select);  /* the rows are new: this emits */
}

static void
list_folders_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  LetterboxSidebar *self = user_data;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(GPtrArray) ordered = NULL;
  g_autoptr(GArray) parents = NULL;
  g_autoptr(GError) error = NULL;
  gboolean with_all_inboxes;
  guint inbox_unread;

  folders = lb_store_list_folders_finish (LB_STORE (object), result, &error);
  letterbox_bench_mark ("folders-listed");
  if (folders == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_signal_emit (self, signals[LOAD_FAILED], 0, error);
      g_object_unref (self);
      return;
    }

  order_folders (folders, &ordered, &parents);
  with_all_inboxes = count_accounts (folders) >= 1;
  inbox_unread = count_inbox_unread (folders);

  if (self->loaded && same_layout (self, ordered, parents, with_all_inboxes))
    {
      for (guint i = 0; i < ordered->len; i++)
        letterbox_folder_row_update (g_array_index (self->entries, Entry, i).row,
                                     g_ptr_array_index (ordered, i));
      if (self->all_inboxes != NULL)
        letterbox_folder_row_set_unread (self->all_inboxes, inbox_unread);
    }
  else
    rebuild (self, ordered, parents, with_all_inboxes, inbox_unread);

  g_clear_pointer (&self->folders, g_ptr_array_unref);
  self->folders = g_steal_pointer (&folders);
  self->loaded = TRUE;
  g_object_unref (self);
}

/**
 * letterbox_sidebar_refresh:
 *
 * Reads the folders and their counts from the store again (on StoreChanged). Rows are
 * rebuilt only when folders came or went; the selection stays.
 */
void
letterbox_sidebar_refresh (LetterboxSidebar *self)
{
  g_return_if_fail (LETTERBOX_IS_SIDEBAR (self));

  if (self->store == NULL)
    return;

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  lb_store_list_folders_async (self->store, self->cancellable, list_folders_cb,
                               g_object_ref (self));
}

void
letterbox_sidebar_set_store (LetterboxSidebar *self,
                             LbStore          *store)
{
  g_return_if_fail (LETTERBOX_IS_SIDEBAR (self));
  g_return_if_fail (store == NULL || LB_IS_STORE (store));

  if (!g_set_object (&self->store, store))
    return;
  self->loaded = FALSE;
  letterbox_sidebar_refresh (self);
}

/* Returns: (transfer none) (nullable): the selected folder; %NULL for All Inboxes or none */
LbFolder *
letterbox_sidebar_get_selected_folder (LetterboxSidebar *self)
{
  GtkListBoxRow *row;

  g_return_val_if_fail (LETTERBOX_IS_SIDEBAR (self), NULL);

  row = gtk_list_box_get_selected_row (self->list);
  return row != NULL ? letterbox_folder_row_get_folder (LETTERBOX_FOLDER_ROW (row)) : NULL;
}

gboolean
letterbox_sidebar_get_all_inboxes_selected (LetterboxSidebar *self)
{
  g_return_val_if_fail (LETTERBOX_IS_SIDEBAR (self), FALSE);

  return self->all_inboxes != NULL &&
         gtk_list_box_get_selected_row (self->list) == GTK_LIST_BOX_ROW (self->all_inboxes);
}

/**
 * letterbox_sidebar_select_folder:
 * @folder_id: a folder's id, or 0 for All Inboxes
 */
void
letterbox_sidebar_select_folder (LetterboxSidebar *self,
                                 gint64            folder_id)
{
  g_return_if_fail (LETTERBOX_IS_SIDEBAR (self));

  if (folder_id == 0)
    {
      if (self->all_inboxes != NULL)
        gtk_list_box_select_row (self->list, GTK_LIST_BOX_ROW (self->all_inboxes));
      return;
    }

  for (guint i = 0; i < self->entries->len; i++)
    {
      LetterboxFolderRow *row = g_array_index (self->entries, Entry, i).row;

      if (lb_folder_get_id (letterbox_folder_row_get_folder (row)) == folder_id)
        {
          gtk_list_box_select_row (self->list, GTK_LIST_BOX_ROW (row));
          return;
        }
    }
}

/**
 * letterbox_sidebar_get_folders:
 *
 * Returns: (transfer container) (element-type LbFolder): every folder in display order
 */
GPtrArray *
letterbox_sidebar_get_folders (LetterboxSidebar *self)
{
  GPtrArray *folders;

  g_return_val_if_fail (LETTERBOX_IS_SIDEBAR (self), NULL);

  folders = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < self->entries->len; i++)
    g_ptr_array_add (folders, g_object_ref (letterbox_folder_row_get_folder (
                       g_array_index (self->entries, Entry, i).row)));
  return folders;
}

/* Returns: (transfer none) (nullable) */
LbFolder *
letterbox_sidebar_find_folder (LetterboxSidebar *self,
                               gint64            folder_id)
{
  g_return_val_if_fail (LETTERBOX_IS_SIDEBAR (self), NULL);

  for (guint i = 0; i < self->entries->len; i++)
    {
      LbFolder *folder = letterbox_folder_row_get_folder (g_array_index (self->entries, Entry, i).row);

      if (lb_folder_get_id (folder) == folder_id)
        return folder;
    }
  return NULL;
}

/* Returns: (transfer none) (nullable): the account's folder with that role */
LbFolder *
letterbox_sidebar_find_role (LetterboxSidebar *self,
                             const char       *account_id,
                             LbFolderRole      role)
{
  g_return_val_if_fail (LETTERBOX_IS_SIDEBAR (self), NULL);

  for (guint i = 0; i < self->entries->len; i++)
    {
      LbFolder *folder = letterbox_folder_row_get_folder (g_array_index (self->entries, Entry, i).row);

      if (lb_folder_get_role (folder) == role &&
          g_strcmp0 (lb_folder_get_account_id (folder), account_id) == 0)
        return folder;
    }
  return NULL;
}

/**
 * letterbox_sidebar_find_archive:
 *
 * Where archiving puts an account's mail: its folder with the Archive role, or else one
 * called "All Mail" (at any level: "[Gmail]/All Mail").
 *
 * Returns: (transfer none) (nullable): the folder, or %NULL when the account has none
 */
LbFolder *
letterbox_sidebar_find_archive (LetterboxSidebar *self,
                                const char       *account_id)
{
  LbFolder *archive;

  g_return_val_if_fail (LETTERBOX_IS_SIDEBAR (self), NULL);

  archive = letterbox_sidebar_find_role (self, account_id, LB_FOLDER_ROLE_ARCHIVE);
  if (archive != NULL)
    return archive;

  for (guint i = 0; i < self->entries->len; i++)
    {
      LbFolder *folder = letterbox_folder_row_get_folder (g_array_index (self->entries, Entry, i).row);
      const char *name = lb_folder_get_name (folder);
      char delimiter = lb_folder_get_delimiter (folder);
      const char *leaf = delimiter != 0 && strrchr (name, delimiter) != NULL
                           ? strrchr (name, delimiter) + 1 : name;

      if (g_strcmp0 (lb_folder_get_account_id (folder), account_id) == 0 &&
          g_ascii_strcasecmp (leaf, "All Mail") == 0)
        return folder;
    }
  return NULL;
}

/**
 * letterbox_sidebar_dup_folder_path:
 *
 * Returns: (transfer full): how the folder is called for a user who does not see the
 *   sidebar: "alice@example.test › Projects › Letterbox"
 */
char *
letterbox_sidebar_dup_folder_path (LetterboxSidebar *self,
                                   LbFolder         *folder)
{
  g_autofree char *display = letterbox_folder_dup_display_name (folder);
  char delimiter = lb_folder_get_delimiter (folder);
  g_autofree char *levels = NULL;

  g_return_val_if_fail (LETTERBOX_IS_SIDEBAR (self), NULL);

  if (delimiter != 0 && lb_folder_get_role (folder) == LB_FOLDER_ROLE_NONE)
    {
      char separator[2] = { delimiter, '\0' };
      g_auto(GStrv) parts = g_strsplit (lb_folder_get_name (folder), separator, -1);

      levels = g_strjoinv (" › ", parts);
    }
  return g_strdup_printf ("%s › %s", lb_folder_get_account_name (folder),
                          levels != NULL ? levels : display);
}

static void
letterbox_sidebar_dispose (GObject *object)
{
  LetterboxSidebar *self = LETTERBOX_SIDEBAR (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->store);
  g_clear_object (&self->settings);
  g_clear_pointer (&self->folders, g_ptr_array_unref);

  G_OBJECT_CLASS (letterbox_sidebar_parent_class)->dispose (object);
}

static void
letterbox_sidebar_finalize (GObject *object)
{
  LetterboxSidebar *self = LETTERBOX_SIDEBAR (object);

  g_array_unref (self->entries);

  G_OBJECT_CLASS (letterbox_sidebar_parent_class)->finalize (object);
}

static void
letterbox_sidebar_class_init (LetterboxSidebarClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_sidebar_dispose;
  object_class->finalize = letterbox_sidebar_finalize;

  /**
   * LetterboxSidebar::folder-selected:
   * @folder: (nullable): the folder, or %NULL for All Inboxes
   */
  signals[FOLDER_SELECTED] =
    g_signal_new ("folder-selected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 1, LB_TYPE_FOLDER);

  /**
   * LetterboxSidebar::messages-dropped:
   * @folder: where they were dropped
   * @ids: the messages' store ids, comma-separated
   */
  signals[MESSAGES_DROPPED] =
    g_signal_new ("messages-dropped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 2, LB_TYPE_FOLDER, G_TYPE_STRING);

  /**
   * LetterboxSidebar::load-failed:
   * @error: why the folders could not be read
   */
  signals[LOAD_FAILED] =
    g_signal_new ("load-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-sidebar.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxSidebar, list);
}

static void
letterbox_sidebar_init (LetterboxSidebar *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = g_settings_new (APP_ID);
  self->entries = g_array_new (FALSE, FALSE, sizeof (Entry));
  gtk_list_box_set_header_func (self->list, header_func, NULL, NULL);
  g_signal_connect_swapped (self->list, "row-selected", G_CALLBACK (row_selected_cb), self);
}

GtkWidget *
letterbox_sidebar_new (void)
{
  return g_object_new (LETTERBOX_TYPE_SIDEBAR, NULL);
}
