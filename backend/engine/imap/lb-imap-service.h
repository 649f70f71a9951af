/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-connection.h"
#include "lb-imap-session.h"

G_BEGIN_DECLS

typedef enum
{
  LB_IMAP_SERVICE_OFFLINE,
  LB_IMAP_SERVICE_CONNECTING,
  LB_IMAP_SERVICE_ONLINE,
  /* The last attempt failed; the watcher retries after a back-off unless the failure
   * needs the user (wrong password, untrusted certificate, insecure server). */
  LB_IMAP_SERVICE_ERROR,
} LbImapServiceStatus;

/* Where and who: what an account's incoming IMAP settings say. */
typedef struct
{
  char *host;
  guint16 port;
  LbNetSecurity security;
  char *user;
  char *secret;
  gboolean secret_is_token;
  char *ca_file;
  char *trusted_fingerprint;
  guint max_connections;
  LbImapQuirks quirks;
} LbImapServiceConfig;

#define LB_TYPE_IMAP_SERVICE (lb_imap_service_get_type ())
G_DECLARE_FINAL_TYPE (LbImapService, lb_imap_service, LB, IMAP_SERVICE, GObject)

LbImapService      *lb_imap_service_new                 (const LbImapServiceConfig *config);
LbImapServiceStatus lb_imap_service_get_status          (LbImapService             *self);
const GError       *lb_imap_service_get_last_error      (LbImapService             *self);
gboolean            lb_imap_service_error_needs_user    (const GError              *error);

void                lb_imap_service_acquire_async       (LbImapService             *self,
                                                         GCancellable              *cancellable,
                                                         GAsyncReadyCallback        callback,
                                                         gpointer                   user_data);
LbImapSession      *lb_imap_service_acquire_finish      (LbImapService             *self,
                                                         GAsyncResult              *result,
                                                         GError                   **error);
void                lb_imap_service_release             (LbImapService             *self,
                                                         LbImapSession             *session);

void                lb_imap_service_watch               (LbImapService             *self,
                                                         const char                *mailbox);
void                lb_imap_service_unwatch             (LbImapService             *self);

G_END_DECLS
