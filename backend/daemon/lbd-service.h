/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-bus-backend1.h"
#include "lb-outbox.h"
#include "lb-store.h"
#include "lb-store-writer.h"
#include "lbd-scheduler.h"

G_BEGIN_DECLS

#define LBD_TYPE_SERVICE (lbd_service_get_type ())
G_DECLARE_FINAL_TYPE (LbdService, lbd_service, LBD, SERVICE, GObject)

LbdService    *lbd_service_new          (LbStore          *store,
                                         LbStoreWriter    *writer,
                                         LbdScheduler     *scheduler);
LbBusBackend1 *lbd_service_get_skeleton (LbdService       *self);
void           lbd_service_set_outbox   (LbdService       *self,
                                         LbOutbox         *outbox);
/* What Status reports of the relay: its socket, and its TCP port (0: none). */
void           lbd_service_set_relay    (LbdService       *self,
                                         const char       *socket_path,
                                         guint16           port);
gboolean       lbd_service_export       (LbdService       *self,
                                         GDBusConnection  *connection,
                                         GError          **error);
void           lbd_service_unexport     (LbdService       *self);

G_END_DECLS
