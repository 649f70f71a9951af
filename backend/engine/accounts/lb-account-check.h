/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-account.h"

G_BEGIN_DECLS

/**
 * LbAccountCheckFailure:
 * @LB_ACCOUNT_CHECK_OK: the server let the user in
 * @LB_ACCOUNT_CHECK_PASSWORD: the server refused the user name or password
 * @LB_ACCOUNT_CHECK_CERTIFICATE: the server's certificate is not trusted; the user may
 *   look at it and pin it (#LbAccount.fingerprint)
 * @LB_ACCOUNT_CHECK_UNREACHABLE: the host could not be resolved, reached or did not answer
 * @LB_ACCOUNT_CHECK_SECURITY: TLS failed otherwise, or the server does not offer the
 *   security asked for (no STARTTLS)
 * @LB_ACCOUNT_CHECK_OTHER: anything else (a protocol error, a server refusing otherwise)
 *
 * What went wrong, in the terms a user acts on.
 */
typedef enum
{
  LB_ACCOUNT_CHECK_OK,
  LB_ACCOUNT_CHECK_PASSWORD,
  LB_ACCOUNT_CHECK_CERTIFICATE,
  LB_ACCOUNT_CHECK_UNREACHABLE,
  LB_ACCOUNT_CHECK_SECURITY,
  LB_ACCOUNT_CHECK_OTHER,
} LbAccountCheckFailure;

LbAccountCheckFailure lb_account_check_classify       (const GError          *error);

void                  lb_account_check_server_async   (const LbAccount       *account,
                                                       const LbAccountServer *server,
                                                       const char            *password,
                                                       GCancellable          *cancellable,
                                                       GAsyncReadyCallback    callback,
                                                       gpointer               user_data);
gboolean              lb_account_check_server_finish  (GAsyncResult          *result,
                                                       GTlsCertificate      **peer_certificate,
                                                       GError               **error);

G_END_DECLS
