/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * LbMessageFlags:
 *
 * The IMAP system flags (RFC 9051 §2.3.2) as a bit set, the way the index stores them.
 */
typedef enum
{
  LB_MESSAGE_FLAG_NONE = 0,
  LB_MESSAGE_FLAG_SEEN = 1 << 0,
  LB_MESSAGE_FLAG_ANSWERED = 1 << 1,
  LB_MESSAGE_FLAG_FLAGGED = 1 << 2,
  LB_MESSAGE_FLAG_DELETED = 1 << 3,
  LB_MESSAGE_FLAG_DRAFT = 1 << 4,
} LbMessageFlags;

#define LB_TYPE_MESSAGE_SUMMARY (lb_message_summary_get_type ())
G_DECLARE_FINAL_TYPE (LbMessageSummary, lb_message_summary, LB, MESSAGE_SUMMARY, GObject)

LbMessageSummary *lb_message_summary_new         (gint64          id,
                                                  gint64          folder_id,
                                                  gint64          date,
                                                  const char     *sender,
                                                  const char     *subject,
                                                  const char     *preview,
                                                  LbMessageFlags  flags);
LbMessageSummary *lb_message_summary_new_full    (gint64          id,
                                                  gint64          folder_id,
                                                  gint64          date,
                                                  const char     *sender,
                                                  const char     *subject,
                                                  const char     *preview,
                                                  LbMessageFlags  flags,
                                                  gboolean        has_attachment,
                                                  guint           thread_count);
gint64            lb_message_summary_get_id        (LbMessageSummary *self);
gint64            lb_message_summary_get_folder_id (LbMessageSummary *self);
gint64            lb_message_summary_get_date      (LbMessageSummary *self);
const char       *lb_message_summary_get_sender    (LbMessageSummary *self);
const char       *lb_message_summary_get_subject   (LbMessageSummary *self);
const char       *lb_message_summary_get_preview   (LbMessageSummary *self);
LbMessageFlags    lb_message_summary_get_flags     (LbMessageSummary *self);
gboolean          lb_message_summary_get_has_attachment (LbMessageSummary *self);
guint             lb_message_summary_get_thread_count   (LbMessageSummary *self);

G_END_DECLS
