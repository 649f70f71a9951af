/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-store.h"

G_BEGIN_DECLS

#define LBD_TYPE_SERVICE (lbd_service_get_type ())
G_DECLARE_FINAL_TYPE (LbdService, lbd_service, LBD, SERVICE, GObject)

LbdService *lbd_service_new      (LbStore          *store);
gboolean    lbd_service_export   (LbdService       *self,
                                  GDBusConnection  *connection,
                                  GError          **error);
void        lbd_service_unexport (LbdService       *self);

G_END_DECLS
