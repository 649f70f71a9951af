/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-store"

#include "config.h"

#include "lb-message-summary.h"

/* One row of a folder's message list: what the list shows without opening the body. */
struct _LbMessageSummary
{
  GObject parent_instance;

  gint64 id;
  gint64 folder_id;
  gint64 date;
  char *sender;
  char *subject;
  char *preview;
  LbMessageFlags flags;
  gboolean has_attachment;
  guint thread_count;
};

G_DEFINE_FINAL_TYPE (LbMessageSummary, lb_message_summary, G_TYPE_OBJECT)

static void
lb_message_summary_finalize (GObject *object)
{
  LbMessageSummary *self = LB_MESSAGE_SUMMARY (object);

  g_free (self->sender);
  g_free (self->subject);
  g_free (self->preview);

  G_OBJECT_CLASS (lb_message_summary_parent_class)->finalize (object);
}

static void
lb_message_summary_class_init (LbMessageSummaryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = lb_message_summary_finalize;
}

static void
lb_message_summary_init (LbMessageSummary *self)
{
}

LbMessageSummary *
lb_message_summary_new (gint64          id,
                        gint64          folder_id,
                        gint64          date,
                        const char     *sender,
                        const char     *subject,
                        const char     *preview,
                        LbMessageFlags  flags)
{
  LbMessageSummary *self = g_object_new (LB_TYPE_MESSAGE_SUMMARY, NULL);

  self->id = id;
  self->folder_id = folder_id;
  self->date = date;
  self->sender = g_strdup (sender ? sender : "");
  self->subject = g_strdup (subject ? subject : "");
  self->preview = g_strdup (preview ? preview : "");
  self->flags = flags;
  self->thread_count = 1;

  return self;
}

/**
 * lb_message_summary_new_full:
 * @has_attachment: whether the message carries an attachment
 * @thread_count: how many messages the row stands for (a conversation's size), at least 1
 *
 * Like lb_message_summary_new(), with what a message list row shows beyond the envelope.
 */
LbMessageSummary *
lb_message_summary_new_full (gint64          id,
                             gint64          folder_id,
                             gint64          date,
                             const char     *sender,
                             const char     *subject,
                             const char     *preview,
                             LbMessageFlags  flags,
                             gboolean        has_attachment,
                             guint           thread_count)
{
  LbMessageSummary *self = lb_message_summary_new (id, folder_id, date, sender, subject, preview,
                                                   flags);

  self->has_attachment = has_attachment != FALSE;
  self->thread_count = MAX (thread_count, 1);
  return self;
}

gint64
lb_message_summary_get_id (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), 0);
  return self->id;
}

gint64
lb_message_summary_get_folder_id (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), 0);
  return self->folder_id;
}

gint64
lb_message_summary_get_date (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), 0);
  return self->date;
}

const char *
lb_message_summary_get_sender (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), NULL);
  return self->sender;
}

const char *
lb_message_summary_get_subject (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), NULL);
  return self->subject;
}

const char *
lb_message_summary_get_preview (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), NULL);
  return self->preview;
}

LbMessageFlags
lb_message_summary_get_flags (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), LB_MESSAGE_FLAG_NONE);
  return self->flags;
}

gboolean
lb_message_summary_get_has_attachment (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), FALSE);
  return self->has_attachment;
}

guint
lb_message_summary_get_thread_count (LbMessageSummary *self)
{
  g_return_val_if_fail (LB_IS_MESSAGE_SUMMARY (self), 1);
  return self->thread_count;
}
