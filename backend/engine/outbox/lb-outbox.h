/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-outbox-prepare.h"
#include "lb-store.h"
#include "lb-store-writer.h"

G_BEGIN_DECLS

/**
 * LbOutboxState:
 * @LB_OUTBOX_STATE_QUEUED: waiting for its next attempt
 * @LB_OUTBOX_STATE_SENDING: being sent now (found so at start: the last run ended while
 *   sending, and it is sent again); also the moment after the server's reply while its
 *   Sent copy or notice goes into the store (found so at start: they are added, the
 *   message is not sent again)
 * @LB_OUTBOX_STATE_SENT: delivered (to the server, or into Local Folders); the Sent copy
 *   is in the store
 * @LB_OUTBOX_STATE_FAILED: refused for good, or given up; a notice is in Local Folders
 * @LB_OUTBOX_STATE_CANCELLED: cancelled by the user
 */
typedef enum
{
  LB_OUTBOX_STATE_QUEUED,
  LB_OUTBOX_STATE_SENDING,
  LB_OUTBOX_STATE_SENT,
  LB_OUTBOX_STATE_FAILED,
  LB_OUTBOX_STATE_CANCELLED,
} LbOutboxState;

const char    *lb_outbox_state_to_string   (LbOutboxState  state);

/**
 * LbOutboxItem:
 * @queue_id: 16 hexadecimal digits
 * @account_id: (nullable): the account that sends it; %NULL for mail delivered into
 *   Local Folders only
 * @sender: the envelope sender
 * @recipients: the recipients still to be sent to (all of them once sent)
 * @subject: the decoded Subject
 * @size: the message's size in bytes
 * @attempts: how many times sending was tried
 * @next_attempt: when the next attempt is due (microseconds since the epoch, as
 *   g_get_real_time())
 * @last_error: (nullable): why the last attempt failed
 * @created: when it was submitted (microseconds since the epoch)
 */
typedef struct
{
  char *queue_id;
  char *account_id;
  char *sender;
  char **recipients;
  char *subject;
  guint64 size;
  LbOutboxState state;
  guint attempts;
  gint64 next_attempt;
  char *last_error;
  gint64 created;
} LbOutboxItem;

#define LB_TYPE_OUTBOX_ITEM (lb_outbox_item_get_type ())
GType          lb_outbox_item_get_type     (void) G_GNUC_CONST;
LbOutboxItem  *lb_outbox_item_copy         (const LbOutboxItem *item);
void           lb_outbox_item_free         (LbOutboxItem       *item);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbOutboxItem, lb_outbox_item_free)

#define LB_TYPE_OUTBOX (lb_outbox_get_type ())
G_DECLARE_FINAL_TYPE (LbOutbox, lb_outbox, LB, OUTBOX, GObject)

LbOutbox      *lb_outbox_new               (LbStore              *store,
                                            LbStoreWriter        *writer,
                                            GError              **error);

void           lb_outbox_submit_async      (LbOutbox             *self,
                                            const char           *envelope_from,
                                            const char * const   *recipients,
                                            GBytes               *message,
                                            const char           *account_id,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
char          *lb_outbox_submit_finish     (LbOutbox             *self,
                                            GAsyncResult         *result,
                                            GError              **error);

void           lb_outbox_start             (LbOutbox             *self);
void           lb_outbox_stop              (LbOutbox             *self);

GPtrArray     *lb_outbox_list              (LbOutbox             *self,
                                            GError              **error);
GVariant      *lb_outbox_list_variant      (LbOutbox             *self,
                                            GError              **error);
guint          lb_outbox_get_pending_count (LbOutbox             *self);
gboolean       lb_outbox_is_sending        (LbOutbox             *self);

void           lb_outbox_cancel_async      (LbOutbox             *self,
                                            const char           *queue_id,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
gboolean       lb_outbox_cancel_finish     (LbOutbox             *self,
                                            GAsyncResult         *result,
                                            GError              **error);
void           lb_outbox_retry_async       (LbOutbox             *self,
                                            const char           *queue_id,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
gboolean       lb_outbox_retry_finish      (LbOutbox             *self,
                                            GAsyncResult         *result,
                                            GError              **error);

G_END_DECLS
