/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include "letterbox-bench.h"
#include "letterbox-message-list-model.h"

/*
 * The message list as a GListModel that pages from the store (issue #8): one query
 * learns the number of rows, pages of rows are read on demand in worker threads (the
 * store's connection, under its lock: the main loop never waits on SQLite), and at most
 * max_pages pages stay in memory, the least recently used going first. A row not read
 * yet is a LetterboxMessageItem without a summary, filled in place when its page arrives,
 * so items keep their identity (and the selection, which follows items) across page
 * loads and refreshes. Depends on GIO and the engine only, so it is unit-tested without
 * a display.
 *
 * Refresh (after StoreChanged) counts again and rereads the loaded rows around the most
 * recently used page, widened by the change in size, then walks old and new rows in the
 * list's order (date, then id, newest first) and emits one items-changed per run of
 * removed or inserted rows, each against the list as it is at that moment; unchanged
 * rows keep their items, changed ones are updated in place.
 */

#define DEFAULT_PAGE_SIZE 200
#define DEFAULT_MAX_PAGES 8
/* A refresh rereads at most this many pages' worth; beyond, it starts over. */
#define MAX_REFRESH_PAGES 24

typedef enum
{
  SOURCE_NONE,
  SOURCE_FOLDERS,
  SOURCE_INBOXES,
  SOURCE_QUERY,
} SourceKind;

typedef struct
{
  guint index;
  GPtrArray *items;           /* LetterboxMessageItem, one per row of the page */
  gboolean loaded;
  GCancellable *cancellable;  /* while its rows are being read */
  guint64 used;
  gboolean kept;              /* kept in memory across a hold (hold_pages()) */
} Page;

typedef struct
{
  guint position;
  LetterboxMessageItem *item;
} Orphan;

typedef enum
{
  JOB_COUNT,
  JOB_PAGE,
  JOB_REFRESH,
} JobKind;

typedef struct
{
  JobKind kind;
  guint generation;
  LbStore *store;
  SourceKind source;
  GArray *folder_ids;
  char *query;
  gboolean threads;
  guint page_size;
  GCancellable *cancellable;

  guint page_index;           /* JOB_PAGE */
  guint old_n;                /* JOB_REFRESH: the rows of the window to reread */
  guint window_lo;
  guint window_hi;

  guint count;                /* results */
  guint rows_offset;
  GPtrArray *rows;
} Job;

struct _LetterboxMessageListModel
{
  GObject parent_instance;

  LbStore *store;
  SourceKind source;
  GArray *folder_ids;         /* gint64; for SOURCE_INBOXES, as last resolved */
  char *query;
  gboolean threads;

  guint page_size;
  guint max_pages;

  guint n_items;
  guint generation;
  GHashTable *pages;          /* page index → Page */
  guint64 clock;
  GCancellable *cancellable;  /* the count and refreshes of this source */
  guint n_jobs;
  gboolean loading;
  gboolean refreshing;
  gboolean refresh_again;
  GError *error;

  /* While a refresh emits its changes: the window as it stands, and the items outside it
   * that the list may hold, at their current positions. */
  gboolean emitting;
  GPtrArray *emit_items;
  guint emit_start;
  GArray *orphans;
};

enum
{
  PROP_0,
  PROP_LOADING,
  PROP_BUSY,
  PROP_ERROR,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  ROWS_REFRESHED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void list_model_iface_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LetterboxMessageListModel, letterbox_message_list_model,
                               G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, list_model_iface_init))

static void start_page_load (LetterboxMessageListModel *self,
                             Page                      *page);

static void
page_free (gpointer data)
{
  Page *page = data;

  if (page->cancellable != NULL)
    g_cancellable_cancel (page->cancellable);
  g_clear_object (&page->cancellable);
  g_ptr_array_unref (page->items);
  g_free (page);
}

static void
job_free (gpointer data)
{
  Job *job = data;

  g_clear_object (&job->store);
  g_clear_pointer (&job->folder_ids, g_array_unref);
  g_free (job->query);
  g_clear_object (&job->cancellable);
  g_clear_pointer (&job->rows, g_ptr_array_unref);
  g_free (job);
}

/* Newest first: < 0 when @a comes before @b in the list. */
static int
key_cmp (LbMessageSummary *a,
         LbMessageSummary *b)
{
  gint64 da = lb_message_summary_get_date (a), db = lb_message_summary_get_date (b);
  gint64 ia = lb_message_summary_get_id (a), ib = lb_message_summary_get_id (b);

  if (da != db)
    return da > db ? -1 : 1;
  if (ia != ib)
    return ia > ib ? -1 : 1;
  return 0;
}

/* ---- Worker side ---- */

static gboolean
job_resolve_folders (Job     *job,
                     GError **error)
{
  g_autoptr(GPtrArray) folders = NULL;

  if (job->source != SOURCE_INBOXES)
    return TRUE;

  /* The unified Inbox: every account's Inbox, Local Folders' included. */
  folders = lb_store_list_folders (job->store, error);
  if (folders == NULL)
    return FALSE;
  g_array_set_size (job->folder_ids, 0);
  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);

      if (lb_folder_get_role (folder) == LB_FOLDER_ROLE_INBOX)
        {
          gint64 id = lb_folder_get_id (folder);

          g_array_append_val (job->folder_ids, id);
        }
    }
  return TRUE;
}

static gboolean
job_count (Job     *job,
           GError **error)
{
  if (job->source == SOURCE_QUERY)
    return lb_store_count_search (job->store, job->query, &job->count, error);
  return lb_store_count_messages_in (job->store, (const gint64 *) job->folder_ids->data,
                                     job->folder_ids->len, job->threads, &job->count, error);
}

static GPtrArray *
job_read (Job     *job,
          guint    offset,
          guint    limit,
          GError **error)
{
  if (job->source == SOURCE_QUERY)
    return lb_store_search (job->store, job->query, offset, limit, error);
  return lb_store_list_messages_in (job->store, (const gint64 *) job->folder_ids->data,
                                    job->folder_ids->len, job->threads, offset, limit, error);
}

static void
job_thread (GTask        *task,
            gpointer      source_object,
            gpointer      task_data,
            GCancellable *cancellable)
{
  Job *job = task_data;
  GError *error = NULL;

  if (g_task_return_error_if_cancelled (task))
    return;

  switch (job->kind)
    {
    case JOB_COUNT:
      if (!job_resolve_folders (job, &error) || !job_count (job, &error))
        break;
      /* The first page comes with the count, so the first paint shows rows. */
      if (job->count > 0)
        job->rows = job_read (job, 0, MIN (job->page_size, job->count), &error);
      break;

    case JOB_PAGE:
      job->rows_offset = job->page_index * job->page_size;
      job->rows = job_read (job, job->rows_offset, job->page_size, &error);
      break;

    case JOB_REFRESH:
      if (!job_resolve_folders (job, &error) || !job_count (job, &error))
        break;
      if (job->window_hi > job->window_lo)
        {
          guint growth = job->count > job->old_n ? job->count - job->old_n
                                                 : job->old_n - job->count;
          guint widen = job->page_size + growth;
          guint lo = job->window_lo > widen ? job->window_lo - widen : 0;
          guint hi = MIN (job->count, job->window_hi + widen);

          job->rows_offset = lo;
          if (hi > lo && hi - lo <= MAX_REFRESH_PAGES * job->page_size)
            job->rows = job_read (job, lo, hi - lo, &error);
        }
      break;

    default:
      g_assert_not_reached ();
    }

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/* ---- Main-thread side ---- */

static void
set_busy_changed (LetterboxMessageListModel *self,
                  gboolean                   was_busy)
{
  if (was_busy != letterbox_message_list_model_get_busy (self))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUSY]);
}

static void
set_loading (LetterboxMessageListModel *self,
             gboolean                   loading)
{
  if (self->loading == loading)
    return;
  self->loading = loading;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOADING]);
}

static void
set_error (LetterboxMessageListModel *self,
           const GError              *error)
{
  if (self->error == NULL && error == NULL)
    return;
  g_clear_error (&self->error);
  if (error != NULL)
    self->error = g_error_copy (error);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ERROR]);
}

static void job_done_cb (GObject      *object,
                         GAsyncResult *result,
                         gpointer      user_data);

static Job *
job_new (LetterboxMessageListModel *self,
         JobKind                    kind,
         GCancellable              *cancellable)
{
  Job *job = g_new0 (Job, 1);

  job->kind = kind;
  job->generation = self->generation;
  job->store = g_object_ref (self->store);
  job->source = self->source;
  job->folder_ids = g_array_copy (self->folder_ids);
  job->query = g_strdup (self->query);
  job->threads = self->threads;
  job->page_size = self->page_size;
  job->cancellable = g_object_ref (cancellable);
  return job;
}

static void
job_start (LetterboxMessageListModel *self,
           Job                       *job)
{
  g_autoptr(GTask) task = NULL;
  gboolean was_busy = letterbox_message_list_model_get_busy (self);

  task = g_task_new (self, job->cancellable, job_done_cb, NULL);
  g_task_set_source_tag (task, job_start);
  g_task_set_task_data (task, job, job_free);
  self->n_jobs++;
  g_task_run_in_thread (task, job_thread);
  set_busy_changed (self, was_busy);
}

static guint
page_rows (LetterboxMessageListModel *self,
           guint                      index)
{
  guint start = index * self->page_size;

  return start < self->n_items ? MIN (self->page_size, self->n_items - start) : 0;
}

/* Whether a row of @page is held outside the model (bound to a row of the list view):
 * dropping the page then would leave that row a placeholder for good, since the view
 * does not ask again for an item it holds. */
static gboolean
page_in_use (Page *page)
{
  for (guint i = 0; i < page->items->len; i++)
    if (G_OBJECT (g_ptr_array_index (page->items, i))->ref_count > 1)
      return TRUE;
  return FALSE;
}

static void
evict_pages (LetterboxMessageListModel *self,
             Page                      *keep)
{
  while (g_hash_table_size (self->pages) > self->max_pages)
    {
      GHashTableIter iter;
      gpointer key, value;
      Page *oldest = NULL;

      g_hash_table_iter_init (&iter, self->pages);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          Page *page = value;

          if (page == keep || page_in_use (page))
            continue;
          if (oldest == NULL || (oldest->kept && !page->kept) ||
              (oldest->kept == page->kept && page->used < oldest->used))
            oldest = page;
        }
      /* Every page is on screen (a tall window, small pages): keep them all. */
      if (oldest == NULL)
        return;
      g_hash_table_remove (self->pages, GUINT_TO_POINTER (oldest->index));
    }
}

static Page *
page_new (LetterboxMessageListModel *self,
          guint                      index)
{
  Page *page = g_new0 (Page, 1);
  guint rows = page_rows (self, index);

  page->index = index;
  page->items = g_ptr_array_new_full (rows, g_object_unref);
  page->used = ++self->clock;
  g_hash_table_insert (self->pages, GUINT_TO_POINTER (index), page);
  return page;
}

static Page *
ensure_page (LetterboxMessageListModel *self,
             guint                      index)
{
  Page *page = g_hash_table_lookup (self->pages, GUINT_TO_POINTER (index));

  if (page == NULL)
    {
      guint rows = page_rows (self, index);

      page = page_new (self, index);
      for (guint i = 0; i < rows; i++)
        g_ptr_array_add (page->items, letterbox_message_item_new (NULL));
      start_page_load (self, page);
      evict_pages (self, page);
    }
  page->used = ++self->clock;
  return page;
}

static void
start_page_load (LetterboxMessageListModel *self,
                 Page                      *page)
{
  Job *job;

  if (page->loaded || page->cancellable != NULL || page->items->len == 0)
    return;
  page->cancellable = g_cancellable_new ();
  job = job_new (self, JOB_PAGE, page->cancellable);
  job->page_index = page->index;
  job_start (self, job);
}

static void
fill_page (LetterboxMessageListModel *self,
           Page                      *page,
           GPtrArray                 *rows)
{
  for (guint i = 0; i < page->items->len && i < rows->len; i++)
    letterbox_message_item_set_summary (g_ptr_array_index (page->items, i),
                                        g_ptr_array_index (rows, i));
  page->loaded = rows->len >= page->items->len;
  /* Fewer rows than counted: the store changed since; count again. */
  if (!page->loaded)
    letterbox_message_list_model_refresh (self);
}

static void
orphans_clear (LetterboxMessageListModel *self)
{
  for (guint i = 0; i < self->orphans->len; i++)
    g_object_unref (g_array_index (self->orphans, Orphan, i).item);
  g_array_set_size (self->orphans, 0);
}

static void
drop_all_pages (LetterboxMessageListModel *self)
{
  g_hash_table_remove_all (self->pages);
}

/* Resets the list to @n_items rows, none of them read: the fallback when changes cannot
 * be followed row by row. */
static void
reset_rows (LetterboxMessageListModel *self,
            guint                      n_items)
{
  guint old = self->n_items;

  self->generation++;
  drop_all_pages (self);
  self->n_items = n_items;
  if (old != 0 || n_items != 0)
    g_list_model_items_changed (G_LIST_MODEL (self), 0, old, n_items);
}

/* One change of the list while a refresh is emitting: the orphans follow it. */
static void
emit_change (LetterboxMessageListModel *self,
             guint                      position,
             guint                      removed,
             guint                      added)
{
  for (guint i = 0; i < self->orphans->len;)
    {
      Orphan *o = &g_array_index (self->orphans, Orphan, i);

      if (o->position >= position + removed)
        o->position = o->position - removed + added;
      else if (o->position >= position)
        {
          g_object_unref (o->item);
          g_array_remove_index_fast (self->orphans, i);
          continue;
        }
      i++;
    }
  self->n_items = self->n_items - removed + added;
  g_list_model_items_changed (G_LIST_MODEL (self), position, removed, added);
}

/* After a refresh: pages again, from the window and the orphans at their new places;
 * every page not wholly known is read again. */
static void
rebuild_pages (LetterboxMessageListModel *self)
{
  g_autoptr(GHashTable) wanted = g_hash_table_new (NULL, NULL);
  GHashTableIter iter;
  gpointer key;
  guint win_end = self->emit_start + self->emit_items->len;

  drop_all_pages (self);

  for (guint p = self->emit_start; p < win_end; p++)
    g_hash_table_add (wanted, GUINT_TO_POINTER (p / self->page_size));
  for (guint i = 0; i < self->orphans->len; i++)
    g_hash_table_add (wanted, GUINT_TO_POINTER (g_array_index (self->orphans, Orphan, i).position /
                                                 self->page_size));

  g_hash_table_iter_init (&iter, wanted);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      guint index = GPOINTER_TO_UINT (key);
      guint rows = page_rows (self, index);
      guint start = index * self->page_size;
      Page *page;
      gboolean known = TRUE;

      if (rows == 0)
        continue;
      page = page_new (self, index);
      for (guint r = 0; r < rows; r++)
        {
          guint pos = start + r;
          LetterboxMessageItem *item = NULL;

          if (pos >= self->emit_start && pos < win_end)
            item = g_object_ref (g_ptr_array_index (self->emit_items, pos - self->emit_start));
          else
            {
              known = FALSE;
              for (guint i = 0; i < self->orphans->len && item == NULL; i++)
                if (g_array_index (self->orphans, Orphan, i).position == pos)
                  item = g_object_ref (g_array_index (self->orphans, Orphan, i).item);
              if (item == NULL)
                item = letterbox_message_item_new (NULL);
            }
          g_ptr_array_add (page->items, item);
        }
      page->loaded = known;
      if (!known)
        start_page_load (self, page);
    }

  /* The window's pages are the most recently used. */
  for (guint p = self->emit_start; p < win_end; p += self->page_size)
    {
      Page *page = g_hash_table_lookup (self->pages, GUINT_TO_POINTER (p / self->page_size));

      if (page != NULL)
        page->used = ++self->clock;
    }
  if (win_end > self->emit_start)
    {
      Page *page = g_hash_table_lookup (self->pages,
                                        GUINT_TO_POINTER ((win_end - 1) / self->page_size));
      if (page != NULL)
        page->used = ++self->clock;
    }

  orphans_clear (self);
  g_clear_pointer (&self->emit_items, g_ptr_array_unref);
  evict_pages (self, NULL);
}

/* The contiguous run of loaded pages around the most recently used loaded page. */
static gboolean
find_window (LetterboxMessageListModel *self,
             guint                     *first_page,
             guint                     *last_page)
{
  GHashTableIter iter;
  gpointer value;
  Page *mru = NULL;
  Page *p;

  g_hash_table_iter_init (&iter, self->pages);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Page *page = value;

      if (page->loaded && (mru == NULL || page->used > mru->used))
        mru = page;
    }
  if (mru == NULL)
    return FALSE;

  *first_page = *last_page = mru->index;
  while (*first_page > 0 &&
         (p = g_hash_table_lookup (self->pages, GUINT_TO_POINTER (*first_page - 1))) != NULL &&
         p->loaded)
    (*first_page)--;
  while ((p = g_hash_table_lookup (self->pages, GUINT_TO_POINTER (*last_page + 1))) != NULL &&
         p->loaded)
    (*last_page)++;
  return TRUE;
}

static void
apply_refresh (LetterboxMessageListModel *self,
               Job                       *job)
{
  g_autoptr(GPtrArray) old = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;
  guint first_page = 0, last_page = 0;
  guint olo = 0, ohi = 0;
  guint n_old = self->n_items;
  guint n_new = job->count;
  GPtrArray *rows = job->rows;
  guint nlo = job->rows_offset;
  guint i0 = 0, i1 = 0, region_end;
  guint j, b;

  /* The window must be what the job reread around; else start over. */
  if (find_window (self, &first_page, &last_page))
    {
      olo = first_page * self->page_size;
      ohi = MIN (n_old, (last_page + 1) * self->page_size);
    }
  if (olo != job->window_lo || ohi != job->window_hi || job->old_n != n_old)
    {
      /* The list moved on while the job ran (pages read, evicted): reread. */
      self->refresh_again = TRUE;
      return;
    }

  if (ohi == olo || rows == NULL)
    {
      /* Nothing read yet, or too much changed to follow. */
      if (n_old != n_new || ohi > olo)
        reset_rows (self, n_new);
      return;
    }

  for (guint p = olo; p < ohi; p++)
    {
      Page *page = g_hash_table_lookup (self->pages, GUINT_TO_POINTER (p / self->page_size));

      g_ptr_array_add (old, g_object_ref (g_ptr_array_index (page->items,
                                                             p % self->page_size)));
    }

  /* The new rows between the window's first and last keys: rows[i0..i1). */
  {
    LbMessageSummary *first = letterbox_message_item_get_summary (g_ptr_array_index (old, 0));
    LbMessageSummary *last = letterbox_message_item_get_summary (g_ptr_array_index (old,
                                                                                    old->len - 1));

    while (i0 < rows->len && key_cmp (g_ptr_array_index (rows, i0), first) < 0)
      i0++;
    i1 = i0;
    while (i1 < rows->len && key_cmp (g_ptr_array_index (rows, i1), last) <= 0)
      i1++;
    /* Both ends must be seen beyond the window, unless they are the list's ends. */
    if (!((nlo == 0 || i0 > 0) && (nlo + rows->len == n_new || i1 < rows->len)))
      {
        reset_rows (self, n_new);
        return;
      }
  }

  /* From here on the list changes step by step; page loads in flight are stale. */
  self->generation++;
  self->emitting = TRUE;
  self->emit_items = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < old->len; i++)
    g_ptr_array_add (self->emit_items, g_object_ref (g_ptr_array_index (old, i)));
  self->emit_start = olo;

  /* Every other item the list may hold becomes an orphan that follows the changes. */
  g_hash_table_iter_init (&iter, self->pages);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Page *page = value;

      for (guint r = 0; r < page->items->len; r++)
        {
          guint pos = page->index * self->page_size + r;

          if (pos < olo || pos >= ohi)
            {
              Orphan o = { pos, g_object_ref (g_ptr_array_index (page->items, r)) };

              g_array_append_val (self->orphans, o);
            }
        }
    }
  drop_all_pages (self);

  /* Before the window only the number of rows is known: rows there are said to come or
   * go at the top (new mail, the common case, is exactly that). Items the list holds
   * there are read again afterwards, at their new positions. */
  if (nlo + i0 > olo)
    {
      self->emit_start = nlo + i0;
      emit_change (self, 0, 0, nlo + i0 - olo);
    }
  else if (nlo + i0 < olo)
    {
      self->emit_start = nlo + i0;
      emit_change (self, 0, olo - (nlo + i0), 0);
    }

  /* The window, row by row. */
  j = 0;
  b = i0;
  while (j < self->emit_items->len || b < i1)
    {
      guint pos = self->emit_start + j;

      if (j < self->emit_items->len && b < i1)
        {
          LetterboxMessageItem *item = g_ptr_array_index (self->emit_items, j);
          LbMessageSummary *s = g_ptr_array_index (rows, b);
          int cmp = key_cmp (letterbox_message_item_get_summary (item), s);

          if (cmp == 0)
            {
              letterbox_message_item_set_summary (item, s);
              j++;
              b++;
              continue;
            }
          if (cmp < 0)
            {
              guint k = 1;

              /* A run of rows gone. */
              while (j + k < self->emit_items->len &&
                     key_cmp (letterbox_message_item_get_summary (
                                g_ptr_array_index (self->emit_items, j + k)), s) < 0)
                k++;
              g_ptr_array_remove_range (self->emit_items, j, k);
              emit_change (self, pos, k, 0);
              continue;
            }
        }
      else if (j < self->emit_items->len)
        {
          guint k = self->emit_items->len - j;

          g_ptr_array_remove_range (self->emit_items, j, k);
          emit_change (self, pos, k, 0);
          continue;
        }

      /* A run of new rows. */
      {
        LbMessageSummary *next = j < self->emit_items->len
          ? letterbox_message_item_get_summary (g_ptr_array_index (self->emit_items, j))
          : NULL;
        guint k = 0;

        while (b + k < i1 && (next == NULL || key_cmp (g_ptr_array_index (rows, b + k), next) < 0))
          {
            g_ptr_array_insert (self->emit_items, (int) (j + k),
                                letterbox_message_item_new (g_ptr_array_index (rows, b + k)));
            k++;
          }
        emit_change (self, pos, 0, k);
        j += k;
        b += k;
      }
    }

  /* After the window: again only the number of rows. */
  region_end = self->emit_start + self->emit_items->len;
  {
    guint old_after = self->n_items - region_end;
    guint new_after = n_new - (nlo + i1);

    /* Likewise after it, at the bottom. */
    if (new_after > old_after)
      emit_change (self, region_end + old_after, 0, new_after - old_after);
    else if (new_after < old_after)
      emit_change (self, region_end + new_after, old_after - new_after, 0);
  }
  g_assert (self->n_items == n_new);

  self->emitting = FALSE;
  rebuild_pages (self);
}

static void
job_done_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  LetterboxMessageListModel *self = LETTERBOX_MESSAGE_LIST_MODEL (object);
  Job *job = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  gboolean was_busy = letterbox_message_list_model_get_busy (self);
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);
  gboolean current = job->generation == self->generation;

  self->n_jobs--;

  switch (job->kind)
    {
    case JOB_COUNT:
      letterbox_bench_mark ("first-rows-read");
      if (!current)
        break;
      if (!ok)
        {
          set_error (self, error);
          set_loading (self, FALSE);
          break;
        }
      g_array_set_size (self->folder_ids, 0);
      g_array_append_vals (self->folder_ids, job->folder_ids->data, job->folder_ids->len);
      self->n_items = job->count;
      if (job->rows != NULL && job->rows->len > 0)
        {
          Page *page = page_new (self, 0);

          for (guint i = 0; i < page_rows (self, 0); i++)
            g_ptr_array_add (page->items, letterbox_message_item_new (NULL));
          fill_page (self, page, job->rows);
        }
      if (self->n_items > 0)
        g_list_model_items_changed (G_LIST_MODEL (self), 0, 0, self->n_items);
      set_loading (self, FALSE);
      break;

    case JOB_PAGE:
      {
        Page *page = g_hash_table_lookup (self->pages, GUINT_TO_POINTER (job->page_index));

        if (!current || page == NULL || page->cancellable != job->cancellable)
          break;
        g_clear_object (&page->cancellable);
        if (!ok)
          {
            if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
              set_error (self, error);
            break;
          }
        fill_page (self, page, job->rows);
      }
      break;

    case JOB_REFRESH:
      self->refreshing = FALSE;
      if (!current)
        break;
      if (!ok)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            set_error (self, error);
          break;
        }
      g_array_set_size (self->folder_ids, 0);
      g_array_append_vals (self->folder_ids, job->folder_ids->data, job->folder_ids->len);
      set_error (self, NULL);
      apply_refresh (self, job);
      g_signal_emit (self, signals[ROWS_REFRESHED], 0);
      break;

    default:
      g_assert_not_reached ();
    }

  if (self->refresh_again && !self->refreshing && !self->loading && self->source != SOURCE_NONE)
    {
      self->refresh_again = FALSE;
      letterbox_message_list_model_refresh (self);
    }
  set_busy_changed (self, was_busy);
}

/* ---- GListModel ---- */

static GType
list_model_get_item_type (GListModel *model)
{
  return LETTERBOX_TYPE_MESSAGE_ITEM;
}

static guint
list_model_get_n_items (GListModel *model)
{
  return LETTERBOX_MESSAGE_LIST_MODEL (model)->n_items;
}

static gpointer
emitting_get_item (LetterboxMessageListModel *self,
                   guint                      position)
{
  Orphan o;

  if (position >= self->emit_start && position < self->emit_start + self->emit_items->len)
    return g_object_ref (g_ptr_array_index (self->emit_items, position - self->emit_start));

  for (guint i = 0; i < self->orphans->len; i++)
    if (g_array_index (self->orphans, Orphan, i).position == position)
      return g_object_ref (g_array_index (self->orphans, Orphan, i).item);

  /* Handed out now, read once the refresh is done. */
  o.position = position;
  o.item = letterbox_message_item_new (NULL);
  g_array_append_val (self->orphans, o);
  return g_object_ref (o.item);
}

static gpointer
list_model_get_item (GListModel *model,
                     guint       position)
{
  LetterboxMessageListModel *self = LETTERBOX_MESSAGE_LIST_MODEL (model);
  guint index, offset;
  Page *page;
  gpointer item;

  if (position >= self->n_items)
    return NULL;
  if (self->emitting)
    return emitting_get_item (self, position);

  index = position / self->page_size;
  offset = position % self->page_size;
  page = ensure_page (self, index);
  item = g_object_ref (g_ptr_array_index (page->items, offset));

  /* Read the neighbours ahead: GTK 4.8's list view binds some 200 rows around the
   * visible ones, and a page that arrives after its rows were bound rebinds them all in
   * one frame; read early, a page costs nothing to fill. */
  if ((index + 1) * self->page_size < self->n_items)
    ensure_page (self, index + 1);
  if (index > 0)
    ensure_page (self, index - 1);
  /* The page asked for stays the most recent, ahead of the one read ahead. */
  page = g_hash_table_lookup (self->pages, GUINT_TO_POINTER (index));
  if (page != NULL)
    page->used = ++self->clock;

  return item;
}

static void
list_model_iface_init (GListModelInterface *iface)
{
  iface->get_item_type = list_model_get_item_type;
  iface->get_n_items = list_model_get_n_items;
  iface->get_item = list_model_get_item;
}

/* ---- GObject ---- */

static void
letterbox_message_list_model_dispose (GObject *object)
{
  LetterboxMessageListModel *self = LETTERBOX_MESSAGE_LIST_MODEL (object);

  g_cancellable_cancel (self->cancellable);
  g_hash_table_remove_all (self->pages);
  orphans_clear (self);

  G_OBJECT_CLASS (letterbox_message_list_model_parent_class)->dispose (object);
}

static void
letterbox_message_list_model_finalize (GObject *object)
{
  LetterboxMessageListModel *self = LETTERBOX_MESSAGE_LIST_MODEL (object);

  g_clear_object (&self->store);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->pages, g_hash_table_unref);
  g_clear_pointer (&self->folder_ids, g_array_unref);
  g_clear_pointer (&self->orphans, g_array_unref);
  g_clear_pointer (&self->emit_items, g_ptr_array_unref);
  g_free (self->query);
  g_clear_error (&self->error);

  G_OBJECT_CLASS (letterbox_message_list_model_parent_class)->finalize (object);
}

static void
letterbox_message_list_model_get_property (GObject    *object,
                                           guint       prop_id,
                                           GValue     *value,
                                           GParamSpec *pspec)
{
  LetterboxMessageListModel *self = LETTERBOX_MESSAGE_LIST_MODEL (object);

  switch (prop_id)
    {
    case PROP_LOADING:
      g_value_set_boolean (value, self->loading);
      break;

    case PROP_BUSY:
      g_value_set_boolean (value, letterbox_message_list_model_get_busy (self));
      break;

    case PROP_ERROR:
      g_value_set_boxed (value, self->error);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
letterbox_message_list_model_class_init (LetterboxMessageListModelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = letterbox_message_list_model_dispose;
  object_class->finalize = letterbox_message_list_model_finalize;
  object_class->get_property = letterbox_message_list_model_get_property;

  /* TRUE from a show_*() call until the number of rows is known. */
  properties[PROP_LOADING] =
    g_param_spec_boolean ("loading", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* TRUE while any read is in flight. */
  properties[PROP_BUSY] =
    g_param_spec_boolean ("busy", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* The last read's error (a store error, or LB_SEARCH_QUERY_ERROR for a query). */
  properties[PROP_ERROR] =
    g_param_spec_boxed ("error", NULL, NULL, G_TYPE_ERROR,
                        G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * LetterboxMessageListModel::rows-refreshed:
   *
   * A refresh read the rows again: loaded items may show new flags or text (their
   * #LetterboxMessageItem:summary changed) although no item came or went.
   */
  signals[ROWS_REFRESHED] =
    g_signal_new ("rows-refreshed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
letterbox_message_list_model_init (LetterboxMessageListModel *self)
{
  self->page_size = DEFAULT_PAGE_SIZE;
  self->max_pages = DEFAULT_MAX_PAGES;
  self->pages = g_hash_table_new_full (NULL, NULL, NULL, page_free);
  self->folder_ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->orphans = g_array_new (FALSE, FALSE, sizeof (Orphan));
  self->cancellable = g_cancellable_new ();
}

LetterboxMessageListModel *
letterbox_message_list_model_new (void)
{
  return g_object_new (LETTERBOX_TYPE_MESSAGE_LIST_MODEL, NULL);
}

/* ---- API ---- */

static void
show (LetterboxMessageListModel *self,
      LbStore                   *store,
      SourceKind                 source,
      const gint64              *folder_ids,
      guint                      n_folders,
      const char                *query)
{
  gboolean was_busy = letterbox_message_list_model_get_busy (self);
  guint old = self->n_items;

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->generation++;
  self->refreshing = FALSE;
  self->refresh_again = FALSE;
  drop_all_pages (self);

  if (store != NULL)
    g_set_object (&self->store, store);
  self->source = source;
  g_array_set_size (self->folder_ids, 0);
  if (n_folders > 0)
    g_array_append_vals (self->folder_ids, folder_ids, n_folders);
  g_free (self->query);
  self->query = g_strdup (query);
  set_error (self, NULL);

  self->n_items = 0;
  if (old > 0)
    g_list_model_items_changed (G_LIST_MODEL (self), 0, old, 0);

  if (source == SOURCE_NONE)
    {
      set_loading (self, FALSE);
      set_busy_changed (self, was_busy);
      return;
    }
  set_loading (self, TRUE);
  job_start (self, job_new (self, JOB_COUNT, self->cancellable));
}

/**
 * letterbox_message_list_model_show_folders:
 * @folder_ids: (array length=n_folders): one folder, or several listed together
 *
 * Lists the folders' messages (or conversations, see set_threads()), newest first. The
 * rows appear (items-changed) once counted, in the main context.
 */
void
letterbox_message_list_model_show_folders (LetterboxMessageListModel *self,
                                           LbStore                   *store,
                                           const gint64              *folder_ids,
                                           guint                      n_folders)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));
  g_return_if_fail (LB_IS_STORE (store));

  show (self, store, SOURCE_FOLDERS, folder_ids, n_folders, NULL);
}

/* Every account's Inbox and Local Folders' Inbox, together; the set is looked up again
 * at each refresh, so a new account's Inbox joins. */
void
letterbox_message_list_model_show_unified_inbox (LetterboxMessageListModel *self,
                                                 LbStore                   *store)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));
  g_return_if_fail (LB_IS_STORE (store));

  show (self, store, SOURCE_INBOXES, NULL, 0, NULL);
}

/* The messages matching @query (lb-search-query.c's language), newest first; a query to
 * correct ends with the model's error set (LB_SEARCH_QUERY_ERROR) and no rows. */
void
letterbox_message_list_model_show_query (LetterboxMessageListModel *self,
                                         LbStore                   *store,
                                         const char                *query)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));
  g_return_if_fail (LB_IS_STORE (store));
  g_return_if_fail (query != NULL);

  show (self, store, SOURCE_QUERY, NULL, 0, query);
}

void
letterbox_message_list_model_clear (LetterboxMessageListModel *self)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));

  show (self, NULL, SOURCE_NONE, NULL, 0, NULL);
}

/**
 * letterbox_message_list_model_refresh:
 *
 * Follows the store after a change (StoreChanged): counts again, rereads the rows around
 * the ones last asked for, and emits the smallest changes it can, so that the selection
 * and the scroll position survive. Rows elsewhere are read again when next asked for.
 */
void
letterbox_message_list_model_refresh (LetterboxMessageListModel *self)
{
  guint first_page, last_page;
  Job *job;

  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));

  if (self->source == SOURCE_NONE)
    return;
  if (self->refreshing || self->loading || self->emitting)
    {
      self->refresh_again = TRUE;
      return;
    }

  job = job_new (self, JOB_REFRESH, self->cancellable);
  job->old_n = self->n_items;
  if (find_window (self, &first_page, &last_page))
    {
      job->window_lo = first_page * self->page_size;
      job->window_hi = MIN (self->n_items, (last_page + 1) * self->page_size);
    }
  self->refreshing = TRUE;
  job_start (self, job);
}

void
letterbox_message_list_model_set_threads (LetterboxMessageListModel *self,
                                          gboolean                   threads)
{
  g_autoptr(GArray) ids = NULL;

  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));

  threads = threads != FALSE;
  if (self->threads == threads)
    return;
  self->threads = threads;

  /* A search lists messages either way. */
  if (self->source == SOURCE_FOLDERS || self->source == SOURCE_INBOXES)
    {
      ids = g_array_copy (self->folder_ids);
      show (self, NULL, self->source, (const gint64 *) ids->data, ids->len, NULL);
    }
}

gboolean
letterbox_message_list_model_get_threads (LetterboxMessageListModel *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), FALSE);
  return self->threads;
}

gboolean
letterbox_message_list_model_get_loading (LetterboxMessageListModel *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), FALSE);
  return self->loading;
}

gboolean
letterbox_message_list_model_get_busy (LetterboxMessageListModel *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), FALSE);
  return self->n_jobs > 0 || self->refresh_again;
}

const GError *
letterbox_message_list_model_get_error (LetterboxMessageListModel *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), NULL);
  return self->error;
}

gboolean
letterbox_message_list_model_is_search (LetterboxMessageListModel *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), FALSE);
  return self->source == SOURCE_QUERY;
}

/* The position of a loaded row, or G_MAXUINT. */
guint
letterbox_message_list_model_find (LetterboxMessageListModel *self,
                                   gint64                     message_id)
{
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), G_MAXUINT);

  g_hash_table_iter_init (&iter, self->pages);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Page *page = value;

      for (guint i = 0; i < page->items->len; i++)
        if (letterbox_message_item_get_id (g_ptr_array_index (page->items, i)) == message_id)
          return page->index * self->page_size + i;
    }
  return G_MAXUINT;
}

/**
 * letterbox_message_list_model_peek:
 *
 * The item at @position if its page is in memory, without reading anything.
 *
 * Returns: (transfer none) (nullable): the item, or %NULL
 */
LetterboxMessageItem *
letterbox_message_list_model_peek (LetterboxMessageListModel *self,
                                   guint                      position)
{
  Page *page;

  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), NULL);

  if (position >= self->n_items)
    return NULL;
  page = g_hash_table_lookup (self->pages, GUINT_TO_POINTER (position / self->page_size));
  if (page == NULL || position % self->page_size >= page->items->len)
    return NULL;
  return g_ptr_array_index (page->items, position % self->page_size);
}

/**
 * letterbox_message_list_model_hold_pages:
 * @hold: %TRUE before something asks for every row (selecting all), %FALSE after
 *
 * While held, the pages in memory now (the rows on screen among them) are the last to
 * go: the rows a list shows keep following the store, however many rows are asked for
 * in between. Released, they become the most recently used.
 */
void
letterbox_message_list_model_hold_pages (LetterboxMessageListModel *self,
                                         gboolean                   hold)
{
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));

  g_hash_table_iter_init (&iter, self->pages);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Page *page = value;

      if (!hold && page->kept)
        page->used = ++self->clock;
      page->kept = hold;
    }
}

/* Takes effect at the next show_*(). */
void
letterbox_message_list_model_set_page_size (LetterboxMessageListModel *self,
                                            guint                      page_size,
                                            guint                      max_pages)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));
  g_return_if_fail (page_size > 0 && max_pages >= 2);

  self->page_size = page_size;
  self->max_pages = max_pages;
}

guint
letterbox_message_list_model_get_n_pages (LetterboxMessageListModel *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), 0);
  return g_hash_table_size (self->pages);
}

guint
letterbox_message_list_model_get_n_loaded_rows (LetterboxMessageListModel *self)
{
  GHashTableIter iter;
  gpointer value;
  guint n = 0;

  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self), 0);

  g_hash_table_iter_init (&iter, self->pages);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Page *page = value;

      for (guint i = 0; i < page->items->len; i++)
        if (letterbox_message_item_get_summary (g_ptr_array_index (page->items, i)) != NULL)
          n++;
    }
  return n;
}

/* ---- Every message of the source, for a bulk action after "select all" ---- */

static void
list_ids_thread (GTask        *task,
                 gpointer      source_object,
                 gpointer      task_data,
                 GCancellable *cancellable)
{
  Job *job = task_data;
  GError *error = NULL;
  GArray *refs;

  if (!job_resolve_folders (job, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  refs = lb_store_list_message_ids (job->store, (const gint64 *) job->folder_ids->data,
                                    job->folder_ids->len,
                                    job->source == SOURCE_QUERY ? job->query : NULL, &error);
  if (refs == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, refs, (GDestroyNotify) g_array_unref);
}

/**
 * letterbox_message_list_model_list_ids_async:
 *
 * Reads every message the model lists (all of the folders', the unified Inbox's or the
 * search's, loaded or not; with conversations, every message of them in these folders),
 * in a worker thread: one light query, whatever the size.
 */
void
letterbox_message_list_model_list_ids_async (LetterboxMessageListModel *self,
                                             GCancellable              *cancellable,
                                             GAsyncReadyCallback        callback,
                                             gpointer                   user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GCancellable) job_cancellable = cancellable != NULL ? g_object_ref (cancellable)
                                                                : g_cancellable_new ();

  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST_MODEL (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, letterbox_message_list_model_list_ids_async);
  if (self->store == NULL || self->source == SOURCE_NONE)
    {
      g_task_return_pointer (task, g_array_new (FALSE, FALSE, sizeof (LbMessageRef)),
                             (GDestroyNotify) g_array_unref);
      return;
    }
  g_task_set_task_data (task, job_new (self, JOB_COUNT, job_cancellable), job_free);
  g_task_run_in_thread (task, list_ids_thread);
}

/* Returns: (transfer full) (element-type LbMessageRef): the messages, newest first */
GArray *
letterbox_message_list_model_list_ids_finish (LetterboxMessageListModel  *self,
                                              GAsyncResult               *result,
                                              GError                    **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
