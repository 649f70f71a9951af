/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include "letterbox-toaster.h"

/*
 * The window's toasts, one at a time: a new toast replaces the one shown (AdwToastOverlay
 * would queue it behind), so that Undo always answers the latest change.
 *
 * Replacing is not done at once when the toast shown is young. libadwaita 1.2's
 * AdwToastOverlay frees a toast dismissed while its show animation still runs, if its hide
 * animation ends first: the show animation lasts 500 ms when the toast replaced another,
 * the hide animation 300 ms, and the show animation's end then unrefs through the freed
 * memory. The app crashed so when a second change followed the first within 200 ms of its
 * toast (test-triage-more, on a fast machine; later libadwaita disconnects that handler).
 * So the toast shown is dismissed no sooner than LETTERBOX_TOASTER_SETTLED_MS after it was
 * shown; a toast arriving meanwhile waits here (never in the overlay's queue) and is
 * itself replaced by a newer one, unseen. The overlay never holds more than the toast shown
 * and those hiding.
 */
struct _LetterboxToaster
{
  GObject parent_instance;

  AdwToastOverlay *overlay;
  AdwToast *shown;             /* in the overlay, not dismissed yet */
  gulong shown_dismissed_id;
  gint64 shown_at;             /* monotonic µs */
  gboolean dismiss_shown;      /* dismiss it as soon as it may be */
  AdwToast *pending;           /* waits for the toast shown to settle */
  guint settle_id;
};

G_DEFINE_FINAL_TYPE (LetterboxToaster, letterbox_toaster, G_TYPE_OBJECT)

static void show_now (LetterboxToaster *self,
                      AdwToast         *toast);

static gint64
settled_at (LetterboxToaster *self)
{
  return self->shown_at + LETTERBOX_TOASTER_SETTLED_MS * G_TIME_SPAN_MILLISECOND;
}

/* The toast shown went: closed, timed out, or dismissed here. The one waiting follows. */
static void
shown_dismissed_cb (LetterboxToaster *self)
{
  g_clear_signal_handler (&self->shown_dismissed_id, self->shown);
  g_clear_object (&self->shown);
  self->dismiss_shown = FALSE;
  g_clear_handle_id (&self->settle_id, g_source_remove);
  if (self->pending != NULL)
    show_now (self, g_steal_pointer (&self->pending));
}

static gboolean
settled_cb (gpointer user_data)
{
  LetterboxToaster *self = user_data;

  self->settle_id = 0;
  if (self->shown != NULL && (self->pending != NULL || self->dismiss_shown))
    adw_toast_dismiss (self->shown);   /* shown_dismissed_cb() shows the one waiting */
  return G_SOURCE_REMOVE;
}

static void
wait_to_settle (LetterboxToaster *self)
{
  gint64 left = settled_at (self) - g_get_monotonic_time ();

  if (self->settle_id != 0)
    return;
  self->settle_id = g_timeout_add (MAX (left, 0) / G_TIME_SPAN_MILLISECOND + 1, settled_cb, self);
}

static void
show_now (LetterboxToaster *self,
          AdwToast         *toast)
{
  self->shown = toast;
  self->shown_at = g_get_monotonic_time ();
  self->dismiss_shown = FALSE;
  adw_toast_overlay_add_toast (self->overlay, g_object_ref (toast));
  /* After the overlay's own handler: the next toast is added once it has let this one
   * go, and is shown at once rather than queued. */
  self->shown_dismissed_id = g_signal_connect_swapped (toast, "dismissed",
                                                       G_CALLBACK (shown_dismissed_cb), self);
}

static void
letterbox_toaster_dispose (GObject *object)
{
  LetterboxToaster *self = LETTERBOX_TOASTER (object);

  g_clear_handle_id (&self->settle_id, g_source_remove);
  if (self->shown != NULL)
    g_clear_signal_handler (&self->shown_dismissed_id, self->shown);
  g_clear_object (&self->shown);
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
 * @toast: (transfer full): the new toast
 *
 * Shows @toast in place of the one shown, at once or, when that one is younger than
 * LETTERBOX_TOASTER_SETTLED_MS, as soon as it is that old (a toast waiting for then is
 * dropped for @toast).
 */
void
letterbox_toaster_show (LetterboxToaster *self,
                        AdwToast         *toast)
{
  g_return_if_fail (LETTERBOX_IS_TOASTER (self));
  g_return_if_fail (ADW_IS_TOAST (toast));

  g_clear_object (&self->pending);
  if (self->shown == NULL)
    {
      show_now (self, toast);
      return;
    }
  self->pending = toast;
  if (g_get_monotonic_time () >= settled_at (self))
    adw_toast_dismiss (self->shown);   /* shown_dismissed_cb() shows @toast */
  else
    wait_to_settle (self);
}

/* Dismisses @toast: a toast waiting is dropped, the toast shown goes once it may. */
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
      if (g_get_monotonic_time () >= settled_at (self))
        adw_toast_dismiss (toast);
      else
        {
          self->dismiss_shown = TRUE;
          wait_to_settle (self);
        }
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
