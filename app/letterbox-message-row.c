/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "letterbox-message-row.h"

/* One message (or conversation) in the message list, recycled by the list view's
 * factory: bound to a LetterboxMessageItem, it follows the item's summary as the model
 * fills or updates it.
 *
 * GTK 4.8's list view keeps about 200 rows bound around what is shown, and rebinds them
 * all when the scrollbar jumps, so a row must cost next to nothing to make and to bind:
 * it has no child widgets. It draws its three lines of text itself (Pango layouts made
 * when the row is first painted, so only rows on screen shape text) and its star, which
 * looks and answers like a flat button: the list's one pointer controller finds the row
 * under the pointer (letterbox_message_row_star_at() and friends). A star button per row
 * was a fifth of the launch's first frame (bench/README.md). Screen readers
 * hear "starred" in the row's name; S stars the selection. Its height follows from the
 * font, so binding never asks for a new size. */

#define MARGIN_TOP LETTERBOX_MESSAGE_ROW_MARGIN_TOP
#define MARGIN_BOTTOM LETTERBOX_MESSAGE_ROW_MARGIN_BOTTOM
#define MARGIN_START 12
#define MARGIN_END 6
#define LINE_SPACING LETTERBOX_MESSAGE_ROW_LINE_SPACING
#define ICON_SIZE LETTERBOX_MESSAGE_ROW_ICON_SIZE
#define STAR_SIZE LETTERBOX_MESSAGE_ROW_STAR_SIZE
#define ITEM_SPACING 6
#define STAR_ICON_SIZE 16
#define DIM_ALPHA 0.55

struct _LetterboxMessageRow
{
  GtkWidget parent_instance;

  LetterboxMessageItem *item;
  gulong notify_id;
  gint64 message_id;

  /* What is shown: set on bind, drawn on snapshot. */
  char *sender;
  char *subject;
  char *preview;
  char *date;
  char count[16];
  gboolean unread;
  gboolean attachment;
  int starred;                 /* -1 before the first message */

  /* Made when painted, dropped when the text or the width changes. */
  PangoLayout *sender_layout;
  PangoLayout *subject_layout;
  PangoLayout *preview_layout;
  PangoLayout *date_layout;
  PangoLayout *count_layout;
  int layout_width;

  /* From the font: the height of a line of body text and of caption text. */
  int body_height;
  int caption_height;

  /* The star: where it is (widget coordinates), shown or not (placeholders have none),
   * and the pointer on it. */
  graphene_rect_t star_rect;
  gboolean star_shown;
  gboolean star_hover;
  gboolean star_pressed;
};

G_DEFINE_FINAL_TYPE (LetterboxMessageRow, letterbox_message_row, GTK_TYPE_WIDGET)

/* The local time zone, looked up again after a minute (it may change while we run). */
static GTimeZone *
local_time_zone (void)
{
  static GTimeZone *zone;
  static gint64 looked_up;
  gint64 now = g_get_monotonic_time ();

  if (zone == NULL || now - looked_up > 60 * G_USEC_PER_SEC)
    {
      g_clear_pointer (&zone, g_time_zone_unref);
      zone = g_time_zone_new_local ();
      looked_up = now;
    }
  return zone;
}

/**
 * letterbox_format_date:
 * @unix_time: seconds since the epoch
 * @full: %TRUE for the reading pane (date and time), %FALSE for the list (short)
 *
 * Returns: (transfer full): the date in the user's locale and time zone
 */
char *
letterbox_format_date (gint64   unix_time,
                       gboolean full)
{
  GTimeZone *zone = local_time_zone ();
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (unix_time);
  g_autoptr(GDateTime) date = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now (zone);

  if (utc == NULL)
    return g_strdup ("");
  date = g_date_time_to_timezone (utc, zone);

  if (full)
    /* Translators: a message's full date in the reading pane; see g_date_time_format(). */
    return g_date_time_format (date, _("%A, %-e %B %Y, %H:%M"));

  if (g_date_time_get_year (date) == g_date_time_get_year (now) &&
      g_date_time_get_day_of_year (date) == g_date_time_get_day_of_year (now))
    /* Translators: a message's time when it came today; see g_date_time_format(). */
    return g_date_time_format (date, _("%H:%M"));

  if (g_date_time_get_year (date) == g_date_time_get_year (now))
    /* Translators: a message's date in this year; see g_date_time_format(). */
    return g_date_time_format (date, _("%e %b"));

  /* Translators: a message's date in another year; see g_date_time_format(). */
  return g_date_time_format (date, _("%e %b %Y"));
}

/**
 * letterbox_message_row_star_at:
 * @x: (in row coordinates)
 *
 * Returns: whether the point is on the row's star (rows not read yet have none)
 */
gboolean
letterbox_message_row_star_at (LetterboxMessageRow *self,
                               double               x,
                               double               y)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_ROW (self), FALSE);

  return self->star_shown &&
         graphene_rect_contains_point (&self->star_rect, &GRAPHENE_POINT_INIT (x, y));
}

/**
 * letterbox_message_row_set_star_state:
 *
 * Shows the pointer on the star (@hover), or pressing it, as a flat button would.
 */
void
letterbox_message_row_set_star_state (LetterboxMessageRow *self,
                                      gboolean             hover,
                                      gboolean             pressed)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_ROW (self));

  if (self->star_hover == hover && self->star_pressed == pressed)
    return;
  self->star_hover = hover;
  self->star_pressed = pressed;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/**
 * letterbox_message_row_click_star:
 *
 * The star was clicked: asks the window to flip it (win.star, triage). All writes go
 * through the backend, and the row shows the new state when the store's change comes
 * back.
 */
void
letterbox_message_row_click_star (LetterboxMessageRow *self)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_ROW (self));

  if (self->star_shown && self->message_id > 0)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.star", "x", self->message_id);
}

/* Asked only when the pointer rests on the row: a tooltip set on every bind would make
 * GTK look up the pointer each time. */
static gboolean
letterbox_message_row_query_tooltip (GtkWidget  *widget,
                                     int         x,
                                     int         y,
                                     gboolean    keyboard_mode,
                                     GtkTooltip *tooltip)
{
  LetterboxMessageRow *self = LETTERBOX_MESSAGE_ROW (widget);

  if (keyboard_mode || !letterbox_message_row_star_at (self, x, y))
    return FALSE;
  gtk_tooltip_set_text (tooltip, self->starred == 1 ? _("Unstar") : _("Star"));
  gtk_tooltip_set_tip_area (tooltip, &(GdkRectangle) { self->star_rect.origin.x,
                                                        self->star_rect.origin.y,
                                                        STAR_SIZE, STAR_SIZE });
  return TRUE;
}

static void
clear_layouts (LetterboxMessageRow *self)
{
  g_clear_object (&self->sender_layout);
  g_clear_object (&self->subject_layout);
  g_clear_object (&self->preview_layout);
  g_clear_object (&self->date_layout);
  g_clear_object (&self->count_layout);
}

/* The caption style (smaller, and with even digits for dates and counts). */
static PangoAttrList *
caption_attributes (gboolean numeric)
{
  PangoAttrList *attrs = pango_attr_list_new ();

  pango_attr_list_insert (attrs, pango_attr_scale_new (PANGO_SCALE_SMALL));
  if (numeric)
    pango_attr_list_insert (attrs, pango_attr_font_features_new ("tnum=1"));
  return attrs;
}

static PangoLayout *
make_layout (LetterboxMessageRow *self,
             const char          *text,
             gboolean             bold,
             gboolean             caption,
             gboolean             numeric,
             int                  width)
{
  PangoLayout *layout = gtk_widget_create_pango_layout (GTK_WIDGET (self), text);
  PangoAttrList *attrs = caption ? caption_attributes (numeric) : pango_attr_list_new ();

  if (bold)
    pango_attr_list_insert (attrs, pango_attr_weight_new (PANGO_WEIGHT_BOLD));
  pango_layout_set_attributes (layout, attrs);
  pango_attr_list_unref (attrs);
  pango_layout_set_single_paragraph_mode (layout, TRUE);
  if (width >= 0)
    {
      pango_layout_set_ellipsize (layout, PANGO_ELLIPSIZE_END);
      pango_layout_set_width (layout, MAX (width, 1) * PANGO_SCALE);
    }
  return layout;
}

static int
layout_width (PangoLayout *layout)
{
  int width;

  pango_layout_get_pixel_size (layout, &width, NULL);
  return width;
}

/* The same for every row (one font, one theme): measured by the first row, again after a
 * change of fonts or resolution. The list measures each of its ~200 rows several times. */
static struct
{
  int body_height;
  int caption_height;
} metrics;

static void
ensure_line_heights (LetterboxMessageRow *self)
{
  if (self->body_height > 0)
    return;
  if (metrics.body_height == 0)
    {
      g_autoptr(PangoLayout) body = make_layout (self, "Ag", TRUE, FALSE, FALSE, -1);
      g_autoptr(PangoLayout) caption = make_layout (self, "Ag", FALSE, TRUE, TRUE, -1);

      pango_layout_get_pixel_size (body, NULL, &metrics.body_height);
      pango_layout_get_pixel_size (caption, NULL, &metrics.caption_height);
    }
  self->body_height = metrics.body_height;
  self->caption_height = metrics.caption_height;
}

/* Line 1: sender … [count] [attachment] date; line 2: subject … star; line 3: preview. */
static int
line1_height (LetterboxMessageRow *self)
{
  return MAX (MAX (self->body_height, self->caption_height), ICON_SIZE);
}

static int
line2_height (LetterboxMessageRow *self)
{
  return MAX (self->body_height, STAR_SIZE);
}

static void
letterbox_message_row_measure (GtkWidget      *widget,
                               GtkOrientation  orientation,
                               int             for_size,
                               int            *minimum,
                               int            *natural,
                               int            *minimum_baseline,
                               int            *natural_baseline)
{
  LetterboxMessageRow *self = LETTERBOX_MESSAGE_ROW (widget);

  ensure_line_heights (self);
  if (orientation == GTK_ORIENTATION_VERTICAL)
    *minimum = *natural = MARGIN_TOP + line1_height (self) + LINE_SPACING +
                          line2_height (self) + LINE_SPACING + self->caption_height +
                          MARGIN_BOTTOM;
  else
    {
      /* Text is ellipsized: the row fits any width that leaves room for the star. */
      *minimum = MARGIN_START + MARGIN_END + STAR_SIZE + 4 * self->body_height;
      *natural = MAX (*minimum, 30 * self->body_height);
    }
}

static void
letterbox_message_row_size_allocate (GtkWidget *widget,
                                     int        width,
                                     int        height,
                                     int        baseline)
{
  LetterboxMessageRow *self = LETTERBOX_MESSAGE_ROW (widget);
  int x, y;

  ensure_line_heights (self);
  if (width != self->layout_width)
    clear_layouts (self);
  x = gtk_widget_get_direction (widget) == GTK_TEXT_DIR_RTL ? MARGIN_END
                                                              : width - MARGIN_END - STAR_SIZE;
  y = MARGIN_TOP + line1_height (self) + LINE_SPACING + (line2_height (self) - STAR_SIZE) / 2;
  graphene_rect_init (&self->star_rect, x, y, STAR_SIZE, STAR_SIZE);
}

static void
ensure_layouts (LetterboxMessageRow *self,
                int                  width)
{
  int text_width = width - MARGIN_START - MARGIN_END;
  int right, star_w;

  if (self->sender_layout != NULL)
    return;
  self->layout_width = width;
  star_w = self->star_shown ? STAR_SIZE : 0;

  self->date_layout = make_layout (self, self->date, FALSE, TRUE, TRUE, -1);
  right = layout_width (self->date_layout) + ITEM_SPACING;
  if (self->count[0] != '\0')
    {
      self->count_layout = make_layout (self, self->count, FALSE, TRUE, TRUE, -1);
      right += layout_width (self->count_layout) + ITEM_SPACING;
    }
  if (self->attachment)
    right += ICON_SIZE + ITEM_SPACING;
  self->sender_layout = make_layout (self, self->sender, self->unread, FALSE, FALSE,
                                     text_width - right);
  self->subject_layout = make_layout (self, self->subject, self->unread, FALSE, FALSE,
                                      text_width - star_w - ITEM_SPACING);
  self->preview_layout = make_layout (self, self->preview, FALSE, TRUE, FALSE,
                                      text_width - ITEM_SPACING);
}

/* Draws @layout with its left edge at @x counted from the start side. */
static void
draw_layout (GtkSnapshot   *snapshot,
             PangoLayout   *layout,
             gboolean       rtl,
             int            width,
             int            x,
             int            y,
             const GdkRGBA *color)
{
  int w = layout_width (layout);

  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (rtl ? width - x - w : x, y));
  gtk_snapshot_append_layout (snapshot, layout, color);
  gtk_snapshot_restore (snapshot);
}

static void
draw_attachment_icon (LetterboxMessageRow *self,
                      GtkSnapshot         *snapshot,
                      double               x,
                      double               y,
                      const GdkRGBA       *color)
{
  GtkIconTheme *theme = gtk_icon_theme_get_for_display (gtk_widget_get_display (GTK_WIDGET (self)));
  g_autoptr(GtkIconPaintable) icon = NULL;

  icon = gtk_icon_theme_lookup_icon (theme, "mail-attachment-symbolic", NULL, ICON_SIZE,
                                     gtk_widget_get_scale_factor (GTK_WIDGET (self)),
                                     gtk_widget_get_direction (GTK_WIDGET (self)), 0);
  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (x, y));
  gtk_symbolic_paintable_snapshot_symbolic (GTK_SYMBOLIC_PAINTABLE (icon), snapshot,
                                            ICON_SIZE, ICON_SIZE, color, 1);
  gtk_snapshot_restore (snapshot);
}

/* Like a flat circular button: a circle under the pointer, darker while pressed. */
static void
draw_star (LetterboxMessageRow *self,
           GtkSnapshot         *snapshot,
           const GdkRGBA       *color)
{
  GtkIconTheme *theme = gtk_icon_theme_get_for_display (gtk_widget_get_display (GTK_WIDGET (self)));
  g_autoptr(GtkIconPaintable) icon = NULL;
  const graphene_rect_t *r = &self->star_rect;

  if (self->star_hover)
    {
      GskRoundedRect circle;
      GdkRGBA shade = *color;

      shade.alpha = self->star_pressed ? 0.16 : 0.07;
      gsk_rounded_rect_init_from_rect (&circle, r, STAR_SIZE / 2.0);
      gtk_snapshot_push_rounded_clip (snapshot, &circle);
      gtk_snapshot_append_color (snapshot, &shade, r);
      gtk_snapshot_pop (snapshot);
    }
  icon = gtk_icon_theme_lookup_icon (theme, self->starred == 1 ? "starred-symbolic"
                                                               : "non-starred-symbolic",
                                     NULL, STAR_ICON_SIZE,
                                     gtk_widget_get_scale_factor (GTK_WIDGET (self)),
                                     gtk_widget_get_direction (GTK_WIDGET (self)), 0);
  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot,
                          &GRAPHENE_POINT_INIT (r->origin.x + (STAR_SIZE - STAR_ICON_SIZE) / 2,
                                                r->origin.y + (STAR_SIZE - STAR_ICON_SIZE) / 2));
  gtk_symbolic_paintable_snapshot_symbolic (GTK_SYMBOLIC_PAINTABLE (icon), snapshot,
                                            STAR_ICON_SIZE, STAR_ICON_SIZE, color, 1);
  gtk_snapshot_restore (snapshot);
}

static void
letterbox_message_row_snapshot (GtkWidget   *widget,
                                GtkSnapshot *snapshot)
{
  LetterboxMessageRow *self = LETTERBOX_MESSAGE_ROW (widget);
  int width = gtk_widget_get_width (widget);
  gboolean rtl = gtk_widget_get_direction (widget) == GTK_TEXT_DIR_RTL;
  GdkRGBA color, dim;
  int y1, y2, y3, right;

  if (self->sender == NULL)
    return;
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &color);
  G_GNUC_END_IGNORE_DEPRECATIONS
  dim = color;
  dim.alpha *= DIM_ALPHA;

  ensure_line_heights (self);
  ensure_layouts (self, width);
  y1 = MARGIN_TOP;
  y2 = y1 + line1_height (self) + LINE_SPACING;
  y3 = y2 + line2_height (self) + LINE_SPACING;

  /* Line 1, from the end side: date, attachment, count; the sender takes the rest. */
  right = width - MARGIN_END - layout_width (self->date_layout);
  draw_layout (snapshot, self->date_layout, rtl, width, right,
               y1 + (line1_height (self) - self->caption_height) / 2, &dim);
  if (self->attachment)
    {
      right -= ITEM_SPACING + ICON_SIZE;
      draw_attachment_icon (self, snapshot, rtl ? width - right - ICON_SIZE : right,
                            y1 + (line1_height (self) - ICON_SIZE) / 2, &dim);
    }
  if (self->count_layout != NULL)
    {
      right -= ITEM_SPACING + layout_width (self->count_layout);
      draw_layout (snapshot, self->count_layout, rtl, width, right,
                   y1 + (line1_height (self) - self->caption_height) / 2, &dim);
    }
  draw_layout (snapshot, self->sender_layout, rtl, width, MARGIN_START,
               y1 + (line1_height (self) - self->body_height) / 2, &color);

  draw_layout (snapshot, self->subject_layout, rtl, width, MARGIN_START,
               y2 + (line2_height (self) - self->body_height) / 2, &color);
  draw_layout (snapshot, self->preview_layout, rtl, width, MARGIN_START, y3, &dim);

  if (self->star_shown)
    draw_star (self, snapshot, &color);
}

/* Fonts, text scaling or the screen's resolution changed: measure the lines again. */
static void
letterbox_message_row_system_setting_changed (GtkWidget        *widget,
                                              GtkSystemSetting  setting)
{
  LetterboxMessageRow *self = LETTERBOX_MESSAGE_ROW (widget);

  GTK_WIDGET_CLASS (letterbox_message_row_parent_class)->system_setting_changed (widget, setting);
  memset (&metrics, 0, sizeof metrics);
  self->body_height = self->caption_height = 0;
  clear_layouts (self);
  gtk_widget_queue_resize (widget);
}

static void
letterbox_message_row_direction_changed (GtkWidget        *widget,
                                         GtkTextDirection  previous)
{
  clear_layouts (LETTERBOX_MESSAGE_ROW (widget));
  GTK_WIDGET_CLASS (letterbox_message_row_parent_class)->direction_changed (widget, previous);
}

static void
letterbox_message_row_dispose (GObject *object)
{
  LetterboxMessageRow *self = LETTERBOX_MESSAGE_ROW (object);

  letterbox_message_row_set_item (self, NULL);
  clear_layouts (self);

  G_OBJECT_CLASS (letterbox_message_row_parent_class)->dispose (object);
}

static void
letterbox_message_row_finalize (GObject *object)
{
  LetterboxMessageRow *self = LETTERBOX_MESSAGE_ROW (object);

  g_free (self->sender);
  g_free (self->subject);
  g_free (self->preview);
  g_free (self->date);

  G_OBJECT_CLASS (letterbox_message_row_parent_class)->finalize (object);
}

static void
letterbox_message_row_class_init (LetterboxMessageRowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_message_row_dispose;
  object_class->finalize = letterbox_message_row_finalize;
  widget_class->measure = letterbox_message_row_measure;
  widget_class->size_allocate = letterbox_message_row_size_allocate;
  widget_class->snapshot = letterbox_message_row_snapshot;
  widget_class->system_setting_changed = letterbox_message_row_system_setting_changed;
  widget_class->direction_changed = letterbox_message_row_direction_changed;
  widget_class->query_tooltip = letterbox_message_row_query_tooltip;

  gtk_widget_class_set_css_name (widget_class, "messagerow");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_GROUP);
}

/* GTK 4.8 binds a GtkListView row before it puts the row in the list's item widget:
 * name that item (see set_accessible_label()) once it holds the row. */
static void
parent_changed_cb (LetterboxMessageRow *self,
                   GParamSpec          *pspec,
                   gpointer             user_data)
{
  if (self->item != NULL && gtk_widget_get_parent (GTK_WIDGET (self)) != NULL)
    letterbox_message_row_set_message (self, letterbox_message_item_get_summary (self->item));
}

static void
letterbox_message_row_init (LetterboxMessageRow *self)
{
  self->starred = -1;
  gtk_widget_set_has_tooltip (GTK_WIDGET (self), TRUE);

  g_signal_connect (self, "notify::parent", G_CALLBACK (parent_changed_cb), NULL);
}

GtkWidget *
letterbox_message_row_new (void)
{
  return g_object_new (LETTERBOX_TYPE_MESSAGE_ROW, NULL);
}

/* The row's name for screen readers, also on the list's item that holds it: that item
 * (GtkListView's row, which GTK 4.8 lets no one name otherwise) is what takes the focus
 * and what a screen reader reads. */
static void
set_accessible_label (LetterboxMessageRow *self,
                      const char          *label)
{
  GtkWidget *parent = gtk_widget_get_parent (GTK_WIDGET (self));

  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
  if (parent != NULL)
    gtk_accessible_update_property (GTK_ACCESSIBLE (parent), GTK_ACCESSIBLE_PROPERTY_LABEL, label,
                                    -1);
}

/* Sets what the row shows; %TRUE when anything changed. */
static gboolean
set_text (char       **field,
          const char  *text)
{
  if (g_strcmp0 (*field, text) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (text);
  return TRUE;
}

static void
show_placeholder (LetterboxMessageRow *self)
{
  self->message_id = 0;
  g_clear_pointer (&self->sender, g_free);
  clear_layouts (self);
  /* No star, but room for it: a row is as tall before its message is read as after. */
  self->star_shown = FALSE;
  set_accessible_label (self, _("Loading message"));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
show_star (LetterboxMessageRow *self,
           gboolean             starred)
{
  if (self->star_shown && self->starred == starred)
    return;
  self->star_shown = TRUE;
  self->starred = starred;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/**
 * letterbox_message_row_set_message:
 * @message: (nullable): the row to show, %NULL for one not read yet
 */
void
letterbox_message_row_set_message (LetterboxMessageRow *self,
                                   LbMessageSummary    *message)
{
  g_autofree char *date = NULL;
  g_autoptr(GString) accessible = NULL;
  const char *subject;
  const char *sender;
  LbMessageFlags flags;
  gboolean unread, starred, attachment, changed = FALSE;
  guint count;
  char count_text[16] = "";

  g_return_if_fail (LETTERBOX_IS_MESSAGE_ROW (self));
  g_return_if_fail (message == NULL || LB_IS_MESSAGE_SUMMARY (message));

  if (message == NULL)
    {
      show_placeholder (self);
      return;
    }

  self->message_id = lb_message_summary_get_id (message);
  subject = lb_message_summary_get_subject (message);
  if (subject[0] == '\0')
    subject = _("(No subject)");
  sender = lb_message_summary_get_sender (message);
  flags = lb_message_summary_get_flags (message);
  unread = (flags & LB_MESSAGE_FLAG_SEEN) == 0;
  starred = (flags & LB_MESSAGE_FLAG_FLAGGED) != 0;
  attachment = lb_message_summary_get_has_attachment (message);
  count = lb_message_summary_get_thread_count (message);
  date = letterbox_format_date (lb_message_summary_get_date (message), FALSE);
  if (count > 1)
    g_snprintf (count_text, sizeof count_text, "%u", count);

  changed |= set_text (&self->sender, sender);
  changed |= set_text (&self->subject, subject);
  changed |= set_text (&self->preview, lb_message_summary_get_preview (message));
  changed |= set_text (&self->date, date);
  changed |= strcmp (self->count, count_text) != 0;
  changed |= self->unread != unread || self->attachment != attachment;
  g_strlcpy (self->count, count_text, sizeof self->count);
  self->unread = unread;
  self->attachment = attachment;
  show_star (self, starred);
  if (changed)
    {
      clear_layouts (self);
      gtk_widget_queue_draw (GTK_WIDGET (self));
    }

  accessible = g_string_new (NULL);
  if (unread)
    /* Translators: a message in the list, for screen readers: sender, subject, date. */
    g_string_printf (accessible, _("Unread message from %s, %s, %s"), sender, subject, date);
  else
    g_string_printf (accessible, _("Message from %s, %s, %s"), sender, subject, date);
  if (starred)
    /* Translators: added to a message's description for screen readers. */
    g_string_append (accessible, _(", starred"));
  if (attachment)
    /* Translators: added to a message's description for screen readers. */
    g_string_append (accessible, _(", with attachment"));
  if (count > 1)
    /* Translators: added to a conversation's description for screen readers. */
    g_string_append_printf (accessible, ngettext (", %u message in the conversation",
                                                  ", %u messages in the conversation", count),
                            count);
  set_accessible_label (self, accessible->str);
}

static void
item_summary_changed_cb (LetterboxMessageRow *self)
{
  letterbox_message_row_set_message (self, letterbox_message_item_get_summary (self->item));
}

/**
 * letterbox_message_row_set_item:
 * @item: (nullable): the list model's item to show and follow, %NULL to unbind
 */
void
letterbox_message_row_set_item (LetterboxMessageRow  *self,
                                LetterboxMessageItem *item)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_ROW (self));
  g_return_if_fail (item == NULL || LETTERBOX_IS_MESSAGE_ITEM (item));

  if (self->item != NULL)
    {
      g_clear_signal_handler (&self->notify_id, self->item);
      g_clear_object (&self->item);
    }
  /* A recycled row does not keep the pointer's state: the list sets it again when the
   * pointer moves. */
  letterbox_message_row_set_star_state (self, FALSE, FALSE);
  if (item == NULL)
    return;

  self->item = g_object_ref (item);
  self->notify_id = g_signal_connect_swapped (item, "notify::summary",
                                              G_CALLBACK (item_summary_changed_cb), self);
  item_summary_changed_cb (self);
}

/* The id of the message shown, 0 while the row is not read. */
gint64
letterbox_message_row_get_message_id (LetterboxMessageRow *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_ROW (self), 0);
  return self->message_id;
}
