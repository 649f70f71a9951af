/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-imap-sync.h"
#include "lb-store.h"
#include "lb-store-writer.h"

G_BEGIN_DECLS

#define LBD_SCHEDULER_ERROR (lbd_scheduler_error_quark ())

typedef enum
{
  LBD_SCHEDULER_ERROR_NOT_FOUND,  /* no account with that id */
  LBD_SCHEDULER_ERROR_STOPPED,    /* the service is shutting down */
} LbdSchedulerError;

GQuark lbd_scheduler_error_quark (void);

#define LBD_TYPE_SCHEDULER (lbd_scheduler_get_type ())
G_DECLARE_FINAL_TYPE (LbdScheduler, lbd_scheduler, LBD, SCHEDULER, GObject)

LbdScheduler *lbd_scheduler_new               (LbStore             *store,
                                               LbStoreWriter       *writer);
void          lbd_scheduler_set_poll_interval (LbdScheduler        *self,
                                               guint                seconds);
void          lbd_scheduler_set_retry_base    (LbdScheduler        *self,
                                               guint                milliseconds);
void          lbd_scheduler_set_network_monitor (LbdScheduler    *self,
                                                 GNetworkMonitor *monitor);
void          lbd_scheduler_start             (LbdScheduler        *self);
void          lbd_scheduler_stop              (LbdScheduler        *self);
gboolean      lbd_scheduler_is_busy           (LbdScheduler        *self);

/* Account ids, sorted; Local Folders is not among them. */
GStrv         lbd_scheduler_dup_account_ids   (LbdScheduler        *self);
GVariant     *lbd_scheduler_dup_account_state (LbdScheduler        *self,
                                               const char          *account_id);

/* Syncs the accounts (all when @account_ids is NULL or empty) and completes when every
 * one is done, with an a(sa{sv}) of results as org.letterbox.Backend1.Sync returns. */
void          lbd_scheduler_sync_async        (LbdScheduler        *self,
                                               const char * const  *account_ids,
                                               LbImapSyncFlags      flags,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
GVariant     *lbd_scheduler_sync_finish       (LbdScheduler        *self,
                                               GAsyncResult        *result,
                                               GError             **error);
/* Starts a sync of one account soon (after local changes), without waiting for it. */
void          lbd_scheduler_kick              (LbdScheduler        *self,
                                               const char          *account_id);
/* The account's long-lived LbImapSync or LbPop3Sync (for FetchBody), or NULL. */
GObject      *lbd_scheduler_dup_account_sync  (LbdScheduler        *self,
                                               const char          *account_id);

G_END_DECLS
