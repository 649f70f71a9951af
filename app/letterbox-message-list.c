/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "letterbox-clip-model.h"
#include "letterbox-message-list.h"
#include "letterbox-message-list-model.h"
#include "letterbox-message-row.h"

/*
 * The message list pane: a GtkListView over LetterboxMessageListModel (which pages from
 * the store, so a folder of any size costs a few pages of memory), multi-selection
 * (Ctrl/Shift+click, Ctrl+A), an empty state for an empty folder or a search without
 * results, and a drag source carrying the selected messages' ids as "id1,id2".
 * Conversations follow the GSettings key "conversations".
 *
 * A folder (or search) newly shown comes to the list view a screenful at a time: the list
 * view sees only the rows the tallest monitor can show (a LetterboxClipModel over the
 * model) until a frame has painted them, or a key is pressed in it, then all of them.
 * GTK 4.8's list view makes and binds some 200 rows whatever its height, and the first
 * frame, the launch's above all, need not wait for the rows below the window.
 *
 * With LETTERBOX_BENCH=1 it prints timings on stderr for bench/app-list.sh: the first
 * frame painted with rows ("bench first-list-painted"), and with LETTERBOX_BENCH_SCROLL=N
 * it then scrolls from top to bottom in N jumps, one per frame (=page: a screenful per
 * frame), starting half a second after that first frame as a person would (the frames
 * right after it still finish the launch: the window taking the focus restyles it all),
 * and prints the frame intervals and resident memory ("bench scroll …") before
 * quitting; with LETTERBOX_BENCH_QUIT=1 instead it quits after the first frame (for
 * profiling a launch with perf).
 */

struct _LetterboxMessageList
{
  GtkWidget parent_instance;

  LetterboxMessageListModel *model;
  LetterboxClipModel *shown;   /* the model, cut to a screenful until a frame shows it */
  GtkMultiSelection *selection;
  GSettings *settings;
  LetterboxMessageItem *pending_item;   /* selected before it was read */
  gulong pending_id;

  GtkStack *stack;
  GtkScrolledWindow *scrolled_window;
  GtkListView *list_view;
  LetterboxMessageRow *star_row;   /* weak: the row whose star the pointer is on */
  gboolean star_pressed;
  gint64 star_pressed_id;          /* the message whose star was pressed */
  AdwStatusPage *empty_page;
  AdwStatusPage *no_results_page;

  /* LETTERBOX_BENCH */
  gboolean bench;
  gboolean bench_painted;
  gboolean bench_scroll;
  guint bench_start_id;
  guint bench_steps;
  guint bench_step;
  gint64 bench_last_frame;
  gint64 bench_last_cpu;
  GArray *bench_intervals;
  GArray *bench_cpu;
  GString *bench_slow;         /* frames over 50 ms: "frame:interval_ms:cpu_ms,…" */
};

enum
{
  PROP_0,
  PROP_THREADS,
  PROP_LOADING,
  N_PROPS
};

enum
{
  SELECTION_CHANGED,
  SELECTED_UPDATED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (LetterboxMessageList, letterbox_message_list, GTK_TYPE_WIDGET)

/* The rows the tallest monitor shows at most (rows are never shorter than
 * LETTERBOX_MESSAGE_ROW_MIN_HEIGHT), and one more for a row cut at the bottom. */
static guint
screenful_rows (LetterboxMessageList *self)
{
  GListModel *monitors = gdk_display_get_monitors (gtk_widget_get_display (GTK_WIDGET (self)));
  int tallest = 0;

  for (guint i = 0; i < g_list_model_get_n_items (monitors); i++)
    {
      g_autoptr(GdkMonitor) monitor = g_list_model_get_item (monitors, i);
      GdkRectangle geometry;

      gdk_monitor_get_geometry (monitor, &geometry);
      tallest = MAX (tallest, geometry.height);
    }
  if (tallest <= 0)
    tallest = 4096;  /* no monitor known yet: a tall one's worth */
  return (guint) (tallest / LETTERBOX_MESSAGE_ROW_MIN_HEIGHT) + 1;
}

/* Newly shown: the list view sees a screenful until a frame has shown it. */
static void
cut_to_screenful (LetterboxMessageList *self)
{
  letterbox_clip_model_set_limit (self->shown, screenful_rows (self));
}

static gboolean
is_cut (LetterboxMessageList *self)
{
  return letterbox_clip_model_get_limit (self->shown) != G_MAXUINT;
}

/* Every row, from now on (also before acting on positions: Ctrl+A, the next row, and any
 * key the list view itself answers, End or Page Down). */
static void
uncut (LetterboxMessageList *self)
{
  letterbox_clip_model_set_limit (self->shown, G_MAXUINT);
}

/* A frame painted the first rows (or the list has none): the rest follow in the next. */
static void
after_paint_cb (GdkFrameClock        *clock,
                LetterboxMessageList *self)
{
  if (is_cut (self) && !letterbox_message_list_model_get_loading (self->model) &&
      gtk_widget_get_mapped (GTK_WIDGET (self)))
    uncut (self);
}

static gboolean
key_pressed_cb (LetterboxMessageList *self)
{
  uncut (self);
  return GDK_EVENT_PROPAGATE;
}

static void
update_state (LetterboxMessageList *self)
{
  const GError *error = letterbox_message_list_model_get_error (self->model);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->model));

  if (n > 0 || letterbox_message_list_model_get_loading (self->model))
    {
      gtk_stack_set_visible_child_name (self->stack, "messages");
      return;
    }

  if (letterbox_message_list_model_is_search (self->model))
    {
      adw_status_page_set_description (self->no_results_page,
                                       error != NULL ? error->message
                                                     : _("No messages match your search"));
      gtk_stack_set_visible_child_name (self->stack, "no-results");
    }
  else
    {
      adw_status_page_set_description (self->empty_page,
                                       error != NULL ? error->message : _("This folder is empty"));
      gtk_stack_set_visible_child_name (self->stack, "empty");
    }
}

static void
clear_pending (LetterboxMessageList *self)
{
  if (self->pending_item != NULL)
    {
      g_clear_signal_handler (&self->pending_id, self->pending_item);
      g_clear_object (&self->pending_item);
    }
}

static void
pending_item_read_cb (LetterboxMessageList *self)
{
  clear_pending (self);
  g_signal_emit (self, signals[SELECTION_CHANGED], 0);
}

static void
model_loading_cb (LetterboxMessageList *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOADING]);
}

static void
rows_refreshed_cb (LetterboxMessageList *self)
{
  g_autoptr(GtkBitset) selected = gtk_selection_model_get_selection (
                                    GTK_SELECTION_MODEL (self->selection));

  if (!gtk_bitset_is_empty (selected))
    g_signal_emit (self, signals[SELECTED_UPDATED], 0);
}

static void
selection_changed_cb (LetterboxMessageList *self)
{
  g_autoptr(GtkBitset) selected = gtk_selection_model_get_selection (
                                    GTK_SELECTION_MODEL (self->selection));

  clear_pending (self);
  g_debug ("Message list: %u selected", (guint) gtk_bitset_get_size (selected));
  /* A single row chosen before its page arrived: say so again once it is read. */
  if (gtk_bitset_get_size (selected) == 1)
    {
      LetterboxMessageItem *item =
        letterbox_message_list_model_peek (self->model, gtk_bitset_get_nth (selected, 0));

      if (item != NULL && letterbox_message_item_get_summary (item) == NULL)
        {
          self->pending_item = g_object_ref (item);
          self->pending_id = g_signal_connect_swapped (item, "notify::summary",
                                                       G_CALLBACK (pending_item_read_cb), self);
        }
    }
  g_signal_emit (self, signals[SELECTION_CHANGED], 0);
}

static void
setup_row_cb (GtkSignalListItemFactory *factory,
              GtkListItem              *item,
              gpointer                  user_data)
{
  gtk_list_item_set_child (item, letterbox_message_row_new ());
}

static void
bind_row_cb (GtkSignalListItemFactory *factory,
             GtkListItem              *item,
             gpointer                  user_data)
{
  letterbox_message_row_set_item (LETTERBOX_MESSAGE_ROW (gtk_list_item_get_child (item)),
                                  gtk_list_item_get_item (item));
}

static void
unbind_row_cb (GtkSignalListItemFactory *factory,
               GtkListItem              *item,
               gpointer                  user_data)
{
  letterbox_message_row_set_item (LETTERBOX_MESSAGE_ROW (gtk_list_item_get_child (item)), NULL);
}

/* "id1,id2" of the selected rows that are read, or of @only alone. */
static char *
selected_ids (LetterboxMessageList *self,
              gint64                only)
{
  g_autoptr(GPtrArray) selected = letterbox_message_list_get_selected (self);
  GString *ids = g_string_new (NULL);
  gboolean only_selected = FALSE;

  for (guint i = 0; i < selected->len; i++)
    only_selected |= lb_message_summary_get_id (g_ptr_array_index (selected, i)) == only;

  if (only > 0 && !only_selected)
    g_string_append_printf (ids, "%" G_GINT64_FORMAT, only);
  else
    for (guint i = 0; i < selected->len; i++)
      g_string_append_printf (ids, i == 0 ? "%" G_GINT64_FORMAT : ",%" G_GINT64_FORMAT,
                              lb_message_summary_get_id (g_ptr_array_index (selected, i)));
  return g_string_free (ids, FALSE);
}

static GdkContentProvider *
drag_prepare_cb (GtkDragSource        *source,
                 double                x,
                 double                y,
                 LetterboxMessageList *self)
{
  GtkWidget *picked = gtk_widget_pick (GTK_WIDGET (self->list_view), x, y, GTK_PICK_DEFAULT);
  GtkWidget *row = picked != NULL ? gtk_widget_get_ancestor (picked, LETTERBOX_TYPE_MESSAGE_ROW)
                                  : NULL;
  g_autofree char *ids = NULL;
  gint64 under = 0;

  /* Dragging a row that is not selected moves that row alone, as in a file manager. */
  if (row == NULL)
    return NULL;
  under = letterbox_message_row_get_message_id (LETTERBOX_MESSAGE_ROW (row));
  if (under <= 0)
    return NULL;
  ids = selected_ids (self, under);
  if (ids[0] == '\0')
    return NULL;
  return gdk_content_provider_new_typed (G_TYPE_STRING, ids);
}

/*
 * The rows' stars: rows have no child widgets (letterbox-message-row.c), so one click
 * gesture and one motion controller on the list find the row under the pointer and ask
 * it whether the pointer is on its star. The gesture runs in the capture phase: a press
 * on a star is claimed before the list item would select the row or a drag could start.
 */

static LetterboxMessageRow *
star_row_at (LetterboxMessageList *self,
             double                x,
             double                y,
             double               *row_x,
             double               *row_y)
{
  GtkWidget *picked = gtk_widget_pick (GTK_WIDGET (self->list_view), x, y, GTK_PICK_DEFAULT);
  GtkWidget *row = picked != NULL ? gtk_widget_get_ancestor (picked, LETTERBOX_TYPE_MESSAGE_ROW)
                                  : NULL;

  if (row == NULL ||
      !gtk_widget_translate_coordinates (GTK_WIDGET (self->list_view), row, x, y, row_x, row_y))
    return NULL;
  return LETTERBOX_MESSAGE_ROW (row);
}

/* The star under the pointer (NULL: none) shows it; the one before stops showing it. */
static void
set_star_row (LetterboxMessageList *self,
              LetterboxMessageRow  *row,
              gboolean              pressed)
{
  if (self->star_row != NULL && self->star_row != row)
    letterbox_message_row_set_star_state (self->star_row, FALSE, FALSE);
  g_set_weak_pointer (&self->star_row, row);
  if (row != NULL)
    letterbox_message_row_set_star_state (row, TRUE, pressed);
}

static void
star_motion_cb (GtkEventControllerMotion *motion,
                double                    x,
                double                    y,
                LetterboxMessageList     *self)
{
  double rx, ry;
  LetterboxMessageRow *row = star_row_at (self, x, y, &rx, &ry);

  if (self->star_pressed)
    {
      /* Dragged off the star while pressing: it shows unpressed until back on it. */
      if (self->star_row != NULL)
        {
          gboolean on = row == self->star_row && letterbox_message_row_star_at (row, rx, ry);

          letterbox_message_row_set_star_state (self->star_row, on, on);
        }
      return;
    }
  set_star_row (self, row != NULL && letterbox_message_row_star_at (row, rx, ry) ? row : NULL,
                FALSE);
}

static void
star_leave_cb (GtkEventControllerMotion *motion,
               LetterboxMessageList     *self)
{
  if (!self->star_pressed)
    set_star_row (self, NULL, FALSE);
}

static void
star_pressed_cb (GtkGestureClick      *click,
                 int                   n_press,
                 double                x,
                 double                y,
                 LetterboxMessageList *self)
{
  double rx, ry;
  LetterboxMessageRow *row = star_row_at (self, x, y, &rx, &ry);

  if (row == NULL || !letterbox_message_row_star_at (row, rx, ry))
    {
      gtk_gesture_set_state (GTK_GESTURE (click), GTK_EVENT_SEQUENCE_DENIED);
      return;
    }
  gtk_gesture_set_state (GTK_GESTURE (click), GTK_EVENT_SEQUENCE_CLAIMED);
  self->star_pressed = TRUE;
  self->star_pressed_id = letterbox_message_row_get_message_id (row);
  set_star_row (self, row, TRUE);
}

static void
star_released_cb (GtkGestureClick      *click,
                  int                   n_press,
                  double                x,
                  double                y,
                  LetterboxMessageList *self)
{
  double rx, ry;
  LetterboxMessageRow *row = star_row_at (self, x, y, &rx, &ry);
  gboolean over = row != NULL && letterbox_message_row_star_at (row, rx, ry);
  /* The same star, and still the same message (the row may show another by now). */
  gboolean on = over && row == self->star_row && self->star_pressed_id > 0 &&
                letterbox_message_row_get_message_id (row) == self->star_pressed_id;

  self->star_pressed = FALSE;
  self->star_pressed_id = 0;
  set_star_row (self, over ? row : NULL, FALSE);
  if (on)
    letterbox_message_row_click_star (row);
}

static void
star_cancel_cb (GtkGesture           *gesture,
                GdkEventSequence     *sequence,
                LetterboxMessageList *self)
{
  self->star_pressed = FALSE;
  self->star_pressed_id = 0;
  set_star_row (self, NULL, FALSE);
}

/* However the press ended (a sequence may end without "released" or "cancel"). */
static void
star_end_cb (GtkGesture           *gesture,
             GdkEventSequence     *sequence,
             LetterboxMessageList *self)
{
  self->star_pressed = FALSE;
}

/* ---- LETTERBOX_BENCH ---- */

static glong
rss_kb (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  line = strstr (status, "VmRSS:");
  return line != NULL ? strtol (line + 6, NULL, 10) : -1;
}

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

/* The main thread's CPU time: a frame's own work, whatever else the machine runs. */
static gint64
cpu_us (clockid_t clock)
{
  struct timespec ts;

  clock_gettime (clock, &ts);
  return (gint64) ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static void
bench_stats (GArray  *v,
             gint64  *max,
             gint64  *p99,
             double  *mean,
             guint   *over)
{
  gint64 sum = 0;

  *max = *p99 = 0;
  *over = 0;
  for (guint i = 0; i < v->len; i++)
    {
      gint64 us = g_array_index (v, gint64, i);

      *over += us > 50000;
      *max = MAX (*max, us);
      sum += us;
    }
  g_array_sort (v, compare_gint64);
  if (v->len > 0)
    *p99 = g_array_index (v, gint64, MIN (v->len - 1, (v->len * 99) / 100));
  *mean = v->len > 0 ? (double) sum / v->len : 0;
}

static void
bench_report_scroll (LetterboxMessageList *self)
{
  gint64 max, p99, cpu_max, cpu_p99;
  double mean, cpu_mean;
  guint over, cpu_over;

  bench_stats (self->bench_intervals, &max, &p99, &mean, &over);
  bench_stats (self->bench_cpu, &cpu_max, &cpu_p99, &cpu_mean, &cpu_over);
  fprintf (stderr,
           "bench scroll frames=%u max_ms=%.1f p99_ms=%.1f mean_ms=%.1f over50=%u "
           "cpu_max_ms=%.1f cpu_p99_ms=%.1f cpu_mean_ms=%.1f cpu_over50=%u rows=%u "
           "rss_kb=%ld pages=%u slow=%s\n",
           self->bench_intervals->len, max / 1000.0, p99 / 1000.0, mean / 1000.0, over,
           cpu_max / 1000.0, cpu_p99 / 1000.0, cpu_mean / 1000.0, cpu_over,
           g_list_model_get_n_items (G_LIST_MODEL (self->model)), rss_kb (),
           letterbox_message_list_model_get_n_pages (self->model),
           self->bench_slow->len > 0 ? self->bench_slow->str : "-");
  fflush (stderr);
  g_application_quit (g_application_get_default ());
}

static gboolean
bench_scroll_tick_cb (GtkWidget     *widget,
                      GdkFrameClock *clock,
                      gpointer       user_data)
{
  LetterboxMessageList *self = user_data;
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment (self->scrolled_window);
  gint64 now = gdk_frame_clock_get_frame_time (clock);
  double bottom = gtk_adjustment_get_upper (adj) - gtk_adjustment_get_page_size (adj);

  gint64 cpu = cpu_us (CLOCK_THREAD_CPUTIME_ID);

  if (self->bench_last_frame != 0)
    {
      gint64 interval = now - self->bench_last_frame;
      gint64 work = cpu - self->bench_last_cpu;

      g_array_append_val (self->bench_intervals, interval);
      g_array_append_val (self->bench_cpu, work);
      if (interval > 50000)
        /* Which frame, and whether this thread worked through it or waited. */
        g_string_append_printf (self->bench_slow, "%s%u:%.0f:%.0f",
                                self->bench_slow->len > 0 ? "," : "",
                                self->bench_intervals->len, interval / 1000.0, work / 1000.0);
    }
  self->bench_last_frame = now;
  self->bench_last_cpu = cpu;

  if (gtk_adjustment_get_value (adj) >= bottom ||
      (self->bench_steps > 0 && self->bench_step >= self->bench_steps))
    {
      bench_report_scroll (self);
      return G_SOURCE_REMOVE;
    }
  self->bench_step++;
  if (self->bench_steps == 0)
    /* "page": one screenful further each frame, as a fast flick of the wheel would. */
    gtk_adjustment_set_value (adj, MIN (bottom, gtk_adjustment_get_value (adj) +
                                                gtk_adjustment_get_page_size (adj)));
  else
    /* N jumps, as when dragging the scrollbar: every frame shows rows not seen yet. The
     * list's height is an estimate that changes as rows are measured: aim at the
     * fraction of the way down. */
    gtk_adjustment_set_value (adj, bottom * self->bench_step / self->bench_steps);
  return G_SOURCE_CONTINUE;
}

static gboolean
bench_start_scroll_cb (gpointer user_data)
{
  LetterboxMessageList *self = user_data;

  self->bench_start_id = 0;
  gtk_widget_add_tick_callback (GTK_WIDGET (self->list_view), bench_scroll_tick_cb, self, NULL);
  return G_SOURCE_REMOVE;
}

static void
bench_after_paint_cb (GdkFrameClock        *clock,
                      LetterboxMessageList *self)
{
  LetterboxMessageItem *first;

  if (self->bench_painted)
    return;
  first = letterbox_message_list_model_peek (self->model, 0);
  if (first == NULL || letterbox_message_item_get_summary (first) == NULL ||
      !gtk_widget_get_mapped (GTK_WIDGET (self->list_view)))
    return;

  self->bench_painted = TRUE;
  /* CLOCK_MONOTONIC, comparable with the launcher's own clock. */
  fprintf (stderr, "bench first-list-painted monotonic_us=%" G_GINT64_FORMAT " rows=%u rss_kb=%ld"
           " main_cpu_us=%" G_GINT64_FORMAT " process_cpu_us=%" G_GINT64_FORMAT "\n",
           g_get_monotonic_time (), g_list_model_get_n_items (G_LIST_MODEL (self->model)),
           rss_kb (), cpu_us (CLOCK_THREAD_CPUTIME_ID), cpu_us (CLOCK_PROCESS_CPUTIME_ID));
  fflush (stderr);
  g_signal_handlers_disconnect_by_func (clock, bench_after_paint_cb, self);

  if (self->bench_scroll)
    self->bench_start_id = g_timeout_add (500, bench_start_scroll_cb, self);
  else if (g_getenv ("LETTERBOX_BENCH_QUIT") != NULL)
    g_application_quit (g_application_get_default ());
}

static void
letterbox_message_list_realize (GtkWidget *widget)
{
  LetterboxMessageList *self = LETTERBOX_MESSAGE_LIST (widget);

  GTK_WIDGET_CLASS (letterbox_message_list_parent_class)->realize (widget);

  /* The bench's first: it times the frame, not the rows added after it. */
  if (self->bench)
    g_signal_connect (gtk_widget_get_frame_clock (widget), "after-paint",
                      G_CALLBACK (bench_after_paint_cb), self);
  g_signal_connect (gtk_widget_get_frame_clock (widget), "after-paint",
                    G_CALLBACK (after_paint_cb), self);
}

static void
letterbox_message_list_unrealize (GtkWidget *widget)
{
  LetterboxMessageList *self = LETTERBOX_MESSAGE_LIST (widget);

  g_signal_handlers_disconnect_by_func (gtk_widget_get_frame_clock (widget), after_paint_cb,
                                        self);
  if (self->bench)
    g_signal_handlers_disconnect_by_func (gtk_widget_get_frame_clock (widget),
                                          bench_after_paint_cb, self);
  /* Not shown any more: nothing to wait for. */
  uncut (self);

  GTK_WIDGET_CLASS (letterbox_message_list_parent_class)->unrealize (widget);
}

/* ---- GObject ---- */

static void
letterbox_message_list_dispose (GObject *object)
{
  LetterboxMessageList *self = LETTERBOX_MESSAGE_LIST (object);

  clear_pending (self);
  gtk_widget_dispose_template (GTK_WIDGET (self), LETTERBOX_TYPE_MESSAGE_LIST);
  g_clear_object (&self->selection);
  g_clear_object (&self->shown);
  g_clear_weak_pointer (&self->star_row);
  g_clear_object (&self->model);
  g_clear_object (&self->settings);
  g_clear_handle_id (&self->bench_start_id, g_source_remove);
  g_clear_pointer (&self->bench_intervals, g_array_unref);
  g_clear_pointer (&self->bench_cpu, g_array_unref);
  if (self->bench_slow != NULL)
    g_string_free (g_steal_pointer (&self->bench_slow), TRUE);

  G_OBJECT_CLASS (letterbox_message_list_parent_class)->dispose (object);
}

static void
letterbox_message_list_get_property (GObject    *object,
                                     guint       prop_id,
                                     GValue     *value,
                                     GParamSpec *pspec)
{
  LetterboxMessageList *self = LETTERBOX_MESSAGE_LIST (object);

  switch (prop_id)
    {
    case PROP_THREADS:
      g_value_set_boolean (value, letterbox_message_list_get_threads (self));
      break;

    case PROP_LOADING:
      g_value_set_boolean (value, letterbox_message_list_get_loading (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
letterbox_message_list_set_property (GObject      *object,
                                     guint         prop_id,
                                     const GValue *value,
                                     GParamSpec   *pspec)
{
  LetterboxMessageList *self = LETTERBOX_MESSAGE_LIST (object);

  switch (prop_id)
    {
    case PROP_THREADS:
      letterbox_message_list_set_threads (self, g_value_get_boolean (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
letterbox_message_list_class_init (LetterboxMessageListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_message_list_dispose;
  object_class->get_property = letterbox_message_list_get_property;
  object_class->set_property = letterbox_message_list_set_property;
  widget_class->realize = letterbox_message_list_realize;
  widget_class->unrealize = letterbox_message_list_unrealize;

  /* One row per conversation (bound to the GSettings key "conversations"). */
  /**
   * LetterboxMessageList:loading:
   *
   * Whether the list is reading the first rows of what it was asked to show.
   */
  properties[PROP_LOADING] =
    g_param_spec_boolean ("loading", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_THREADS] =
    g_param_spec_boolean ("threads", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * LetterboxMessageList::selection-changed:
   *
   * The selected rows changed (letterbox_message_list_get_selected() tells which), or the
   * one row selected before it was read has now been read. Emitted in the main context.
   */
  signals[SELECTION_CHANGED] =
    g_signal_new ("selection-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * LetterboxMessageList::selected-messages-updated:
   *
   * The store changed under a selection that did not: the selected messages may have
   * other flags now (one read on open is no longer unread). What acts on the selection
   * looks again; what shows it need not.
   */
  signals[SELECTED_UPDATED] =
    g_signal_new ("selected-messages-updated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-message-list.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageList, stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageList, scrolled_window);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageList, list_view);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageList, empty_page);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageList, no_results_page);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
letterbox_message_list_init (LetterboxMessageList *self)
{
  g_autoptr(GtkListItemFactory) factory = NULL;
  GtkDragSource *drag;
  GtkGesture *star_click;
  GtkEventController *star_motion;
  GtkEventController *keys;
  const char *steps;
  const char *pages;
  guint page_size, max_pages;

  gtk_widget_init_template (GTK_WIDGET (self));

  self->model = letterbox_message_list_model_new ();
  g_signal_connect_object (self->model, "items-changed", G_CALLBACK (update_state), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->model, "notify::loading", G_CALLBACK (update_state), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->model, "notify::loading", G_CALLBACK (model_loading_cb), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->model, "notify::error", G_CALLBACK (update_state), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->model, "rows-refreshed", G_CALLBACK (rows_refreshed_cb), self,
                           G_CONNECT_SWAPPED);

  self->shown = letterbox_clip_model_new (G_LIST_MODEL (self->model));
  self->selection = gtk_multi_selection_new (g_object_ref (G_LIST_MODEL (self->shown)));
  g_signal_connect_swapped (self->selection, "selection-changed",
                            G_CALLBACK (selection_changed_cb), self);

  factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_row_cb), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_row_cb), NULL);
  g_signal_connect (factory, "unbind", G_CALLBACK (unbind_row_cb), NULL);
  gtk_list_view_set_factory (self->list_view, factory);
  gtk_list_view_set_model (self->list_view, GTK_SELECTION_MODEL (self->selection));

  drag = gtk_drag_source_new ();
  gtk_drag_source_set_actions (drag, GDK_ACTION_MOVE | GDK_ACTION_COPY);
  g_signal_connect (drag, "prepare", G_CALLBACK (drag_prepare_cb), self);
  gtk_widget_add_controller (GTK_WIDGET (self->list_view), GTK_EVENT_CONTROLLER (drag));

  /* Before the list view's own bindings see the key. */
  keys = gtk_event_controller_key_new ();
  gtk_event_controller_set_propagation_phase (keys, GTK_PHASE_CAPTURE);
  g_signal_connect_swapped (keys, "key-pressed", G_CALLBACK (key_pressed_cb), self);
  gtk_widget_add_controller (GTK_WIDGET (self->list_view), keys);

  star_click = gtk_gesture_click_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (star_click), GDK_BUTTON_PRIMARY);
  gtk_event_controller_set_propagation_phase (GTK_EVENT_CONTROLLER (star_click),
                                              GTK_PHASE_CAPTURE);
  g_signal_connect (star_click, "pressed", G_CALLBACK (star_pressed_cb), self);
  g_signal_connect (star_click, "released", G_CALLBACK (star_released_cb), self);
  g_signal_connect (star_click, "cancel", G_CALLBACK (star_cancel_cb), self);
  g_signal_connect (star_click, "end", G_CALLBACK (star_end_cb), self);
  gtk_widget_add_controller (GTK_WIDGET (self->list_view), GTK_EVENT_CONTROLLER (star_click));
  /* Also in the capture phase: a claimed press takes the motion events after it from the
   * bubble phase, and the star must show unpressed when dragged off. */
  star_motion = gtk_event_controller_motion_new ();
  gtk_event_controller_set_propagation_phase (star_motion, GTK_PHASE_CAPTURE);
  g_signal_connect (star_motion, "enter", G_CALLBACK (star_motion_cb), self);
  g_signal_connect (star_motion, "motion", G_CALLBACK (star_motion_cb), self);
  g_signal_connect (star_motion, "leave", G_CALLBACK (star_leave_cb), self);
  gtk_widget_add_controller (GTK_WIDGET (self->list_view), star_motion);

  self->settings = g_settings_new (APP_ID);
  g_settings_bind (self->settings, "conversations", self, "threads", G_SETTINGS_BIND_GET);

  /* Tests: LETTERBOX_LIST_PAGES=SIZE,MAX (rows a page, pages kept) makes a small folder
   * larger than what the list keeps loaded. */
  pages = g_getenv ("LETTERBOX_LIST_PAGES");
  if (pages != NULL && sscanf (pages, "%u,%u", &page_size, &max_pages) == 2 &&
      page_size > 0 && max_pages >= 2)
    letterbox_message_list_model_set_page_size (self->model, page_size, max_pages);

  self->bench = g_strcmp0 (g_getenv ("LETTERBOX_BENCH"), "1") == 0;
  steps = g_getenv ("LETTERBOX_BENCH_SCROLL");
  if (self->bench && steps != NULL)
    {
      self->bench_scroll = TRUE;
      self->bench_steps = g_str_equal (steps, "page") ? 0 : (guint) g_ascii_strtoull (steps, NULL, 10);
    }
  self->bench_intervals = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->bench_cpu = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->bench_slow = g_string_new (NULL);

  update_state (self);
}

GtkWidget *
letterbox_message_list_new (void)
{
  return g_object_new (LETTERBOX_TYPE_MESSAGE_LIST, NULL);
}

static void
scroll_to_top (LetterboxMessageList *self)
{
  gtk_adjustment_set_value (gtk_scrolled_window_get_vadjustment (self->scrolled_window), 0);
}

/**
 * letterbox_message_list_show_folder:
 *
 * Lists @folder_id's messages (or conversations), newest first, from the top.
 */
void
letterbox_message_list_show_folder (LetterboxMessageList *self,
                                    LbStore              *store,
                                    gint64                folder_id)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));
  g_return_if_fail (LB_IS_STORE (store));

  letterbox_message_list_model_show_folders (self->model, store, &folder_id, 1);
  cut_to_screenful (self);
  scroll_to_top (self);
}

/* Every account's Inbox and Local Folders' Inbox together. */
void
letterbox_message_list_show_unified_inbox (LetterboxMessageList *self,
                                           LbStore              *store)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));
  g_return_if_fail (LB_IS_STORE (store));

  letterbox_message_list_model_show_unified_inbox (self->model, store);
  cut_to_screenful (self);
  scroll_to_top (self);
}

/* The messages matching @query (the search language of lb-search-query.c), newest first. */
void
letterbox_message_list_show_query (LetterboxMessageList *self,
                                   LbStore              *store,
                                   const char           *query)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));
  g_return_if_fail (LB_IS_STORE (store));
  g_return_if_fail (query != NULL);

  letterbox_message_list_model_show_query (self->model, store, query);
  cut_to_screenful (self);
  scroll_to_top (self);
}

void
letterbox_message_list_clear (LetterboxMessageList *self)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));

  letterbox_message_list_model_clear (self->model);
}

/* After StoreChanged: follows the store, keeping the selection and the scroll position. */
void
letterbox_message_list_refresh (LetterboxMessageList *self)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));

  letterbox_message_list_model_refresh (self->model);
}

/**
 * letterbox_message_list_get_selected:
 *
 * The selected rows that are in memory and read: after Ctrl+A in a long folder, the
 * pages around the rows on screen (at most 8 × 200 rows), not the whole folder.
 *
 * Returns: (transfer container) (element-type LbMessageSummary): the selected rows, in
 *   list order
 */
GPtrArray *
letterbox_message_list_get_selected (LetterboxMessageList *self)
{
  g_autoptr(GtkBitset) selected = NULL;
  GPtrArray *summaries = g_ptr_array_new_with_free_func (g_object_unref);
  GtkBitsetIter iter;
  guint position;

  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST (self), summaries);

  selected = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  for (gboolean more = gtk_bitset_iter_init_first (&iter, selected, &position); more;
       more = gtk_bitset_iter_next (&iter, &position))
    {
      LetterboxMessageItem *item = letterbox_message_list_model_peek (self->model, position);

      if (item != NULL && letterbox_message_item_get_summary (item) != NULL)
        g_ptr_array_add (summaries, g_object_ref (letterbox_message_item_get_summary (item)));
    }
  return summaries;
}

void
letterbox_message_list_select_all (LetterboxMessageList *self)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));

  uncut (self);
  /* GtkMultiSelection asks for every item: keep the rows on screen in memory meanwhile. */
  letterbox_message_list_model_hold_pages (self->model, TRUE);
  gtk_selection_model_select_all (GTK_SELECTION_MODEL (self->selection));
  letterbox_message_list_model_hold_pages (self->model, FALSE);
}

/* Selects the row @delta (+1: next, -1: previous) away from the focused or first selected
 * one, alone, and scrolls to it. */
void
letterbox_message_list_select_next (LetterboxMessageList *self,
                                    int                   delta)
{
  g_autoptr(GtkBitset) selected = NULL;
  guint n, position;

  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));

  uncut (self);
  n = g_list_model_get_n_items (G_LIST_MODEL (self->model));
  if (n == 0)
    return;
  selected = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  if (gtk_bitset_is_empty (selected))
    position = delta > 0 ? 0 : n - 1;
  else
    {
      position = delta > 0 ? gtk_bitset_get_maximum (selected) : gtk_bitset_get_minimum (selected);
      if (delta > 0 && position + 1 < n)
        position++;
      else if (delta < 0 && position > 0)
        position--;
    }
  gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), position, TRUE);
  gtk_widget_activate_action (GTK_WIDGET (self->list_view), "list.scroll-to-item", "u", position);
}

/**
 * letterbox_message_list_get_loading:
 *
 * Returns: whether the list is reading the first rows of what it was asked to show
 */
gboolean
letterbox_message_list_get_loading (LetterboxMessageList *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST (self), FALSE);

  return letterbox_message_list_model_get_loading (self->model);
}

gboolean
letterbox_message_list_get_threads (LetterboxMessageList *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST (self), FALSE);

  return letterbox_message_list_model_get_threads (self->model);
}

void
letterbox_message_list_set_threads (LetterboxMessageList *self,
                                    gboolean              threads)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));

  if (letterbox_message_list_model_get_threads (self->model) == !!threads)
    return;
  letterbox_message_list_model_set_threads (self->model, threads);
  /* A folder is listed anew; a search lists the same rows. */
  if (letterbox_message_list_model_get_loading (self->model))
    cut_to_screenful (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_THREADS]);
}

static void
list_all_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  GArray *refs;

  refs = letterbox_message_list_model_list_ids_finish (LETTERBOX_MESSAGE_LIST_MODEL (object),
                                                       result, &error);
  if (refs == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, refs, (GDestroyNotify) g_array_unref);
}

/* The rows listed, loaded or not. */
guint
letterbox_message_list_get_n_items (LetterboxMessageList *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST (self), 0);

  return g_list_model_get_n_items (G_LIST_MODEL (self->model));
}

/* Whether every row is selected (Ctrl+A), loaded or not. */
gboolean
letterbox_message_list_get_all_selected (LetterboxMessageList *self)
{
  g_autoptr(GtkBitset) selected = NULL;
  guint n;

  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST (self), FALSE);

  n = g_list_model_get_n_items (G_LIST_MODEL (self->model));
  selected = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  return n > 0 && gtk_bitset_get_size (selected) == n;
}

/* Returns: (transfer full): the positions selected, loaded or not */
GtkBitset *
letterbox_message_list_get_selection (LetterboxMessageList *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_LIST (self), NULL);

  return gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
}

/**
 * letterbox_message_list_list_all_async:
 *
 * Reads every message the list shows from the store (the whole folder, unified Inbox or
 * search, not just its loaded pages; with conversations, all their messages there), in
 * a worker thread, for an action after "select all".
 */
void
letterbox_message_list_list_all_async (LetterboxMessageList *self,
                                       GCancellable         *cancellable,
                                       GAsyncReadyCallback   callback,
                                       gpointer              user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (LETTERBOX_IS_MESSAGE_LIST (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, letterbox_message_list_list_all_async);
  letterbox_message_list_model_list_ids_async (self->model, cancellable, list_all_cb,
                                               g_steal_pointer (&task));
}

/* Returns: (transfer full) (element-type LbMessageRef): the messages, newest first, or
 *   %NULL with @error set */
GArray *
letterbox_message_list_list_all_finish (LetterboxMessageList  *self,
                                        GAsyncResult          *result,
                                        GError               **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
