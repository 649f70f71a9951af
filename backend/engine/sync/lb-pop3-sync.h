/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-account.h"
#include "lb-store-writer.h"

G_BEGIN_DECLS

/*
 * LbPop3Sync: one POP3 account's mail into its Inbox in the store.
 *
 * A run connects and logs in with the account's password and trust settings, lists the
 * maildrop by UIDL, downloads every message the store does not know yet (several RETRs
 * in flight, each spooled to an unlinked temporary file, never whole in memory on the
 * way), adds it with the import key "pop3:<uidl>" and records its UIDL in the store's
 * pop3_uidls table. Once the writer has flushed all of that to disk, it deletes from the
 * server what the account's policy says (#LbAccount.leave_on_server,
 * #LbAccount.delete_after_days), and QUITs, which is when the server removes them.
 *
 * Crash safety: a UIDL is recorded only in a transaction that sees its message complete
 * in the store, DELE goes only for recorded UIDLs and only after the flush, and a message
 * stored but not yet recorded is found by its import key on the next run; so a run
 * killed at any point, then run again, loses nothing and duplicates nothing.
 */

/**
 * LbPop3SyncStats:
 * @downloaded: messages retrieved and stored by this run
 * @skipped_known: messages on the server that were already stored
 * @deleted_on_server: messages the server removed at QUIT
 */
typedef struct
{
  guint downloaded;
  guint skipped_known;
  guint deleted_on_server;
} LbPop3SyncStats;

#define LB_TYPE_POP3_SYNC (lb_pop3_sync_get_type ())
G_DECLARE_FINAL_TYPE (LbPop3Sync, lb_pop3_sync, LB, POP3_SYNC, GObject)

LbPop3Sync *lb_pop3_sync_new        (const LbAccount     *account,
                                     LbStoreWriter       *writer);

void        lb_pop3_sync_run_async  (LbPop3Sync          *self,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data);
gboolean    lb_pop3_sync_run_finish (LbPop3Sync          *self,
                                     GAsyncResult        *result,
                                     LbPop3SyncStats     *stats,
                                     GError             **error);

G_END_DECLS
