/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The keyring item's "protocol" attribute under the org.letterbox.Account schema (its
 * "account" attribute is the login name). */
#define LBD_RELAY_SECRET_PROTOCOL "relay"

char     *lbd_relay_secret_default_path   (void);
char     *lbd_relay_secret_load_or_create (const char           *path,
                                           gboolean             *created,
                                           GError              **error);
void      lbd_relay_secret_publish_async  (const char           *secret,
                                           GCancellable         *cancellable,
                                           GAsyncReadyCallback   callback,
                                           gpointer              user_data);
gboolean  lbd_relay_secret_publish_finish (GAsyncResult         *result,
                                           GError              **error);
gboolean  lbd_relay_secret_equal          (const char           *a,
                                           const char           *b);

G_END_DECLS
