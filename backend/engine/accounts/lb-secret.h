/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define LB_SECRET_ERROR (lb_secret_error_quark ())

/**
 * LbSecretError:
 * @LB_SECRET_ERROR_NO_SERVICE: no Secret Service (keyring) runs on this desktop
 * @LB_SECRET_ERROR_NO_KEYRING: the service runs but has no usable login keyring
 * @LB_SECRET_ERROR_LOCKED: the keyring is locked and the user did not unlock it
 * @LB_SECRET_ERROR_FAILED: the keyring refused for another reason (its message included)
 *
 * Each of these needs the user to act; none is worth retrying by itself.
 */
typedef enum
{
  LB_SECRET_ERROR_NO_SERVICE,
  LB_SECRET_ERROR_NO_KEYRING,
  LB_SECRET_ERROR_LOCKED,
  LB_SECRET_ERROR_FAILED,
} LbSecretError;

GQuark  lb_secret_error_quark  (void);

void     lb_secret_store_async   (const char           *account_id,
                                  const char           *protocol,
                                  const char           *label,
                                  const char           *password,
                                  GCancellable         *cancellable,
                                  GAsyncReadyCallback   callback,
                                  gpointer              user_data);
gboolean lb_secret_store_finish  (GAsyncResult         *result,
                                  GError              **error);

void     lb_secret_lookup_async  (const char           *account_id,
                                  const char           *protocol,
                                  GCancellable         *cancellable,
                                  GAsyncReadyCallback   callback,
                                  gpointer              user_data);
char    *lb_secret_lookup_finish (GAsyncResult         *result,
                                  GError              **error);

void     lb_secret_clear_async   (const char           *account_id,
                                  const char           *protocol,
                                  GCancellable         *cancellable,
                                  GAsyncReadyCallback   callback,
                                  gpointer              user_data);
gboolean lb_secret_clear_finish  (GAsyncResult         *result,
                                  GError              **error);

G_END_DECLS
