/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include "letterbox-message-item.h"

/*
 * One row of the message list model: a slot that holds the row's LbMessageSummary, or
 * nothing while its page is still being read (a placeholder). The model fills and
 * updates the slot in place (notify::summary) instead of replacing the item, so that the
 * list's selection, which follows items, survives pages arriving and flags changing.
 */
struct _LetterboxMessageItem
{
  GObject parent_instance;

  LbMessageSummary *summary;
};

enum
{
  PROP_0,
  PROP_SUMMARY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (LetterboxMessageItem, letterbox_message_item, G_TYPE_OBJECT)

static void
letterbox_message_item_finalize (GObject *object)
{
  LetterboxMessageItem *self = LETTERBOX_MESSAGE_ITEM (object);

  g_clear_object (&self->summary);

  G_OBJECT_CLASS (letterbox_message_item_parent_class)->finalize (object);
}

static void
letterbox_message_item_get_property (GObject    *object,
                                     guint       prop_id,
                                     GValue     *value,
                                     GParamSpec *pspec)
{
  LetterboxMessageItem *self = LETTERBOX_MESSAGE_ITEM (object);

  switch (prop_id)
    {
    case PROP_SUMMARY:
      g_value_set_object (value, self->summary);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
letterbox_message_item_class_init (LetterboxMessageItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = letterbox_message_item_finalize;
  object_class->get_property = letterbox_message_item_get_property;

  /* NULL while the row is not read yet. Notified in the main context. */
  properties[PROP_SUMMARY] =
    g_param_spec_object ("summary", NULL, NULL, LB_TYPE_MESSAGE_SUMMARY,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
letterbox_message_item_init (LetterboxMessageItem *self)
{
}

LetterboxMessageItem *
letterbox_message_item_new (LbMessageSummary *summary)
{
  LetterboxMessageItem *self = g_object_new (LETTERBOX_TYPE_MESSAGE_ITEM, NULL);

  g_set_object (&self->summary, summary);
  return self;
}

/**
 * letterbox_message_item_get_summary:
 *
 * Returns: (transfer none) (nullable): the row, or %NULL for a placeholder
 */
LbMessageSummary *
letterbox_message_item_get_summary (LetterboxMessageItem *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_ITEM (self), NULL);
  return self->summary;
}

static gboolean
same_summary (LbMessageSummary *a,
              LbMessageSummary *b)
{
  return lb_message_summary_get_id (a) == lb_message_summary_get_id (b) &&
         lb_message_summary_get_folder_id (a) == lb_message_summary_get_folder_id (b) &&
         lb_message_summary_get_date (a) == lb_message_summary_get_date (b) &&
         lb_message_summary_get_flags (a) == lb_message_summary_get_flags (b) &&
         lb_message_summary_get_has_attachment (a) == lb_message_summary_get_has_attachment (b) &&
         lb_message_summary_get_thread_count (a) == lb_message_summary_get_thread_count (b) &&
         g_str_equal (lb_message_summary_get_sender (a), lb_message_summary_get_sender (b)) &&
         g_str_equal (lb_message_summary_get_subject (a), lb_message_summary_get_subject (b)) &&
         g_str_equal (lb_message_summary_get_preview (a), lb_message_summary_get_preview (b));
}

/* Notifies only when what a row shows changed. */
void
letterbox_message_item_set_summary (LetterboxMessageItem *self,
                                    LbMessageSummary     *summary)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_ITEM (self));
  g_return_if_fail (summary == NULL || LB_IS_MESSAGE_SUMMARY (summary));

  if (self->summary == summary ||
      (self->summary != NULL && summary != NULL && same_summary (self->summary, summary)))
    return;

  g_set_object (&self->summary, summary);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SUMMARY]);
}

/* 0 for a placeholder. */
gint64
letterbox_message_item_get_id (LetterboxMessageItem *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_ITEM (self), 0);
  return self->summary != NULL ? lb_message_summary_get_id (self->summary) : 0;
}
