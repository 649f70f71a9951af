/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-account.h"
#include "lb-store-writer.h"

G_BEGIN_DECLS

/**
 * LbImapSyncFlags:
 * @LB_IMAP_SYNC_HEADERS_ONLY: fetch no bodies this time, whatever the account's policy
 * @LB_IMAP_SYNC_INBOX_ONLY: only the Inbox (what an IDLE wake-up needs)
 */
typedef enum
{
  LB_IMAP_SYNC_NONE = 0,
  LB_IMAP_SYNC_HEADERS_ONLY = 1 << 0,
  LB_IMAP_SYNC_INBOX_ONLY = 1 << 1,
} LbImapSyncFlags;

/* What one sync did, for the CLI, logs and tests. */
typedef struct
{
  guint folders;          /* folders synced */
  guint new_messages;     /* headers added */
  guint bodies;           /* bodies downloaded */
  guint flag_updates;     /* messages whose flags the server changed */
  guint expunged;         /* messages the server removed */
  guint replayed;         /* journal entries done on the server */
  guint dropped;          /* journal entries dropped (their message is gone) */
  guint uidvalidity_resets;
  const char *method;     /* "qresync", "condstore" or "uid-diff": how changes were found */
  guint folders_changed;  /* folders the listing added to the store or took from it */
} LbImapSyncStats;

#define LB_TYPE_IMAP_SYNC (lb_imap_sync_get_type ())
G_DECLARE_FINAL_TYPE (LbImapSync, lb_imap_sync, LB, IMAP_SYNC, GObject)

LbImapSync *lb_imap_sync_new            (const LbAccount      *account,
                                         LbStoreWriter        *writer);

void        lb_imap_sync_set_disabled_capabilities (LbImapSync *self,
                                         const char *const    *capabilities);

void        lb_imap_sync_run_async      (LbImapSync           *self,
                                         LbImapSyncFlags       flags,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
gboolean    lb_imap_sync_run_finish     (LbImapSync           *self,
                                         GAsyncResult         *result,
                                         LbImapSyncStats      *stats,
                                         GError              **error);

void        lb_imap_sync_fetch_body_async  (LbImapSync        *self,
                                         gint64                message_id,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
gboolean    lb_imap_sync_fetch_body_finish (LbImapSync        *self,
                                         GAsyncResult         *result,
                                         GError              **error);

/* Keeps a connection in IDLE on the Inbox (after a first run has logged in) and syncs
 * the Inbox whenever the server reports a change there; each such sync ends with
 * "inbox-synced". Without IDLE on the server the watcher polls. */
void        lb_imap_sync_watch          (LbImapSync           *self);
void        lb_imap_sync_unwatch        (LbImapSync           *self);

LbFolderRole lb_imap_sync_guess_role    (const char           *name,
                                         const char *const    *attributes);
gint64      lb_imap_parse_internal_date (const char           *text);

G_END_DECLS
