/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include "letterbox-toaster.h"

/*
 * The window's toasts, one at a time: a new toast replaces the one shown (AdwToastOverlay
 * would queue it behind), so that Undo always answers the latest change.
 *
 * libadwaita 1.2's AdwToastOverlay frees a toast's state when its hide animation ends,
 * but leaves its show animation's "done" handler connected: a toast dismissed while its
 * show animation would outlive its hide animation crashes the app when the show animation
 * ends (later libadwaita disconnects that handler). The show animation lasts 300 ms, or
 * 500 ms when another toast is still hiding; the hide animation 300 ms; both run on the
 * frame clock. So:
 *   * a toast is added only once the one before has finished hiding (the overlay has let
 *     it go): its show animation is then the short one, which a dismissal by its close
 *     button, Escape or Undo outlives unless one frame spans the ends of both (a main loop
 *     stalled for longer than the person took to close the toast: left to libadwaita);
 *   * a toast is dismissed here (to make room, or asked to) only once it has settled: a
 *     frame of the overlay's clock has passed the end of its show animation, or the
 *     overlay is not mapped (libadwaita then skips animations). Wall-clock time would not
 *     do: a window that gets no frames for a while (a minimised one, on Wayland) finishes
 *     both animations in the same frame when it is drawn again;
 *   * the toasts' timeouts are the toaster's (the AdwToast's is set to 0), so that a
 *     timeout is such a dismissal too.
 * A toast arriving meanwhile waits here, outside the overlay, and a newer one drops it
 * unseen. The app crashed so under fast triage before (test-triage-more).
 */

/* Longer than any show animation (500 ms), counted in frame time. */
#define SETTLE_US (600 * G_TIME_SPAN_MILLISECOND)
/* Should the overlay never let a hidden toast go, the next shows anyway after this much
 * frame time (or at once when the overlay is not mapped). */
#define HIDING_MAX_US (2 * G_TIME_SPAN_SECOND)

struct _LetterboxToaster
{
  GObject parent_instance;

  AdwToastOverlay *overlay;

  AdwToast *shown;             /* in the overlay, not dismissed yet */
  gulong shown_dismissed_id;
  guint timeout_id;
  gint64 shown_frame_time;     /* the overlay's frame time when it was added */
  guint tick_id;
  guint settled_idle_id;
  gboolean settled;
  gboolean dismiss_shown;      /* dismiss it as soon as it has settled */

  AdwToast *hiding;            /* dismissed, still in the overlay (weak) */
  guint hiding_tick_id;
  gint64 hiding_frame_time;    /* the overlay's frame time when it was dismissed */
  guint next_idle_id;

  AdwToast *pending;           /* waits for the toast shown to go */
  guint pending_timeout;       /* seconds (0: none), from when it shows */
};

G_DEFINE_FINAL_TYPE (LetterboxToaster, letterbox_toaster, G_TYPE_OBJECT)

static void show_next (LetterboxToaster *self);

static void
remove_tick (LetterboxToaster *self,
             guint            *tick_id)
{
  if (*tick_id != 0)
    gtk_widget_remove_tick_callback (GTK_WIDGET (self->overlay), *tick_id);
  *tick_id = 0;
}

/* Whether the toast shown may be dismissed without outliving its show animation. */
static gboolean
shown_settled (LetterboxToaster *self)
{
  return self->settled || !gtk_widget_get_mapped (GTK_WIDGET (self->overlay));
}

static void
go_if_wanted (LetterboxToaster *self)
{
  if (self->shown != NULL && (self->pending != NULL || self->dismiss_shown) &&
      shown_settled (self))
    adw_toast_dismiss (self->shown);   /* shown_dismissed_cb() follows, in the emission */
}

/* In an idle after the frame that passed the show animation's end, so that the
 * animation's own tick in that frame has run. */
static gboolean
settled_idle_cb (gpointer user_data)
{
  LetterboxToaster *self = user_data;

  self->settled_idle_id = 0;
  self->settled = TRUE;
  go_if_wanted (self);
  return G_SOURCE_REMOVE;
}

static gboolean
settle_tick_cb (GtkWidget     *widget,
                GdkFrameClock *clock,
                gpointer       user_data)
{
  LetterboxToaster *self = user_data;

  if (gdk_frame_clock_get_frame_time (clock) < self->shown_frame_time + SETTLE_US)
    return G_SOURCE_CONTINUE;
  self->tick_id = 0;
  self->settled_idle_id = g_idle_add (settled_idle_cb, self);
  return G_SOURCE_REMOVE;
}

static gboolean
timeout_cb (gpointer user_data)
{
  LetterboxToaster *self = user_data;

  self->timeout_id = 0;
  if (self->shown != NULL)
    letterbox_toaster_dismiss (self, self->shown);
  return G_SOURCE_REMOVE;
}

static void
stop_shown_sources (LetterboxToaster *self)
{
  g_clear_handle_id (&self->timeout_id, g_source_remove);
  g_clear_handle_id (&self->settled_idle_id, g_source_remove);
  remove_tick (self, &self->tick_id);
}

static void
hiding_gone_cb (gpointer  user_data,
                GObject  *where_the_toast_was)
{
  LetterboxToaster *self = user_data;

  self->hiding = NULL;
  remove_tick (self, &self->hiding_tick_id);
  show_next (self);
}

static void
forget_hiding (LetterboxToaster *self)
{
  if (self->hiding != NULL)
    g_object_weak_unref (G_OBJECT (self->hiding), hiding_gone_cb, self);
  self->hiding = NULL;
  remove_tick (self, &self->hiding_tick_id);
}

static gboolean
show_next_idle_cb (gpointer user_data)
{
  LetterboxToaster *self = user_data;

  self->next_idle_id = 0;
  show_next (self);
  return G_SOURCE_REMOVE;
}

static gboolean
hiding_tick_cb (GtkWidget     *widget,
                GdkFrameClock *clock,
                gpointer       user_data)
{
  LetterboxToaster *self = user_data;

  if (gdk_frame_clock_get_frame_time (clock) < self->hiding_frame_time + HIDING_MAX_US)
    return G_SOURCE_CONTINUE;
  self->hiding_tick_id = 0;
  g_message ("A dismissed toast stayed in the overlay for 2 s; showing the next one");
  forget_hiding (self);
  /* Not inside the frame: the overlay is being laid out around its toasts. */
  if (self->next_idle_id == 0)
    self->next_idle_id = g_idle_add (show_next_idle_cb, self);
  return G_SOURCE_REMOVE;
}

static gboolean
unref_idle_cb (gpointer user_data)
{
  g_object_unref (user_data);
  return G_SOURCE_REMOVE;
}

/* The toast shown went: closed, timed out, undone, Escape, or dismissed here. The next
 * one waits until the overlay has let it go. */
static void
shown_dismissed_cb (LetterboxToaster *self)
{
  AdwToast *toast = g_steal_pointer (&self->shown);

  g_clear_signal_handler (&self->shown_dismissed_id, toast);
  stop_shown_sources (self);
  self->dismiss_shown = FALSE;
  forget_hiding (self);
  self->hiding = toast;
  g_object_weak_ref (G_OBJECT (toast), hiding_gone_cb, self);
  if (gtk_widget_get_mapped (GTK_WIDGET (self->overlay)))
    {
      self->hiding_frame_time =
        gdk_frame_clock_get_frame_time (gtk_widget_get_frame_clock (GTK_WIDGET (self->overlay)));
      self->hiding_tick_id = gtk_widget_add_tick_callback (GTK_WIDGET (self->overlay),
                                                           hiding_tick_cb, self, NULL);
    }
  /* Maybe the last reference (the overlay lets an unmapped toast go at once): dropped
   * after the emission of "dismissed", not inside it. */
  g_idle_add_full (G_PRIORITY_DEFAULT, unref_idle_cb, toast, NULL);
}

static void
show_next (LetterboxToaster *self)
{
  AdwToast *toast;

  if (self->shown != NULL || self->hiding != NULL || self->pending == NULL)
    return;

  toast = g_steal_pointer (&self->pending);
  self->shown = toast;
  self->settled = FALSE;
  self->dismiss_shown = FALSE;
  adw_toast_overlay_add_toast (self->overlay, g_object_ref (toast));
  /* After the overlay's own handler, which starts the hide animation. */
  self->shown_dismissed_id = g_signal_connect_swapped (toast, "dismissed",
                                                       G_CALLBACK (shown_dismissed_cb), self);
  if (gtk_widget_get_mapped (GTK_WIDGET (self->overlay)))
    {
      GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (self->overlay));

      self->shown_frame_time = gdk_frame_clock_get_frame_time (clock);
      self->tick_id = gtk_widget_add_tick_callback (GTK_WIDGET (self->overlay), settle_tick_cb,
                                                    self, NULL);
    }
  else
    self->settled = TRUE;   /* libadwaita skipped its show animation */
  if (self->pending_timeout > 0)
    self->timeout_id = g_timeout_add (self->pending_timeout * 1000, timeout_cb, self);
}

static void
letterbox_toaster_dispose (GObject *object)
{
  LetterboxToaster *self = LETTERBOX_TOASTER (object);

  if (self->shown != NULL)
    {
      stop_shown_sources (self);
      g_clear_signal_handler (&self->shown_dismissed_id, self->shown);
      g_clear_object (&self->shown);
    }
  forget_hiding (self);
  g_clear_handle_id (&self->next_idle_id, g_source_remove);
  g_clear_object (&self->pending);
  g_clear_object (&self->overlay);

  G_OBJECT_CLASS (letterbox_toaster_parent_class)->dispose (object);
}

static void
letterbox_toaster_class_init (LetterboxToasterClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = letterbox_toaster_dispose;
}

static void
letterbox_toaster_init (LetterboxToaster *self)
{
}

LetterboxToaster *
letterbox_toaster_new (AdwToastOverlay *overlay)
{
  LetterboxToaster *self;

  g_return_val_if_fail (ADW_IS_TOAST_OVERLAY (overlay), NULL);

  self = g_object_new (LETTERBOX_TYPE_TOASTER, NULL);
  self->overlay = g_object_ref (overlay);
  return self;
}

/**
 * letterbox_toaster_show:
 * @toast: (transfer full): the new toast, not in an overlay yet
 *
 * Shows @toast in place of the one shown, at once or as soon as that one has settled and
 * hidden (a toast waiting for then is dropped for @toast). @toast's timeout is kept by the
 * toaster from when it shows; the AdwToast's own is set to 0.
 */
void
letterbox_toaster_show (LetterboxToaster *self,
                        AdwToast         *toast)
{
  g_return_if_fail (LETTERBOX_IS_TOASTER (self));
  g_return_if_fail (ADW_IS_TOAST (toast));

  g_clear_object (&self->pending);
  self->pending = toast;
  self->pending_timeout = adw_toast_get_timeout (toast);
  adw_toast_set_timeout (toast, 0);
  go_if_wanted (self);
  show_next (self);
}

/* Dismisses @toast: a toast waiting is dropped, the toast shown goes once it has settled. */
void
letterbox_toaster_dismiss (LetterboxToaster *self,
                           AdwToast         *toast)
{
  g_return_if_fail (LETTERBOX_IS_TOASTER (self));
  g_return_if_fail (ADW_IS_TOAST (toast));

  if (toast == self->pending)
    g_clear_object (&self->pending);
  else if (toast == self->shown)
    {
      self->dismiss_shown = TRUE;
      go_if_wanted (self);
    }
}

/* Returns: (transfer none) (nullable): the toast waiting, else the toast shown */
AdwToast *
letterbox_toaster_get_latest (LetterboxToaster *self)
{
  g_return_val_if_fail (LETTERBOX_IS_TOASTER (self), NULL);

  return self->pending != NULL ? self->pending : self->shown;
}

/* Returns: (transfer none) (nullable): the toast in the overlay, not dismissed yet */
AdwToast *
letterbox_toaster_get_shown (LetterboxToaster *self)
{
  g_return_val_if_fail (LETTERBOX_IS_TOASTER (self), NULL);

  return self->shown;
}
