/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-store.h"
#include "lb-store-writer.h"
#include "lbd-scheduler.h"
#include "lbd-service.h"

G_BEGIN_DECLS

/**
 * LbdHostOptions:
 * @poll_seconds: seconds between polls; 0: the poll-interval setting, else 300
 * @retry_base_ms: the first retry's delay; 0: the scheduler's default (30 s)
 * @relay_port: the relay's TCP port on 127.0.0.1; 0: no TCP; < 0: $LETTERBOX_RELAY_PORT,
 *   else the relay-port setting, else 2525
 * @relay_socket: the relay's Unix socket; %NULL: $XDG_RUNTIME_DIR/letterbox/relay.sock
 * @network_monitor: (nullable): the monitor the scheduler follows; %NULL: the default
 */
typedef struct
{
  guint poll_seconds;
  guint retry_base_ms;
  int relay_port;
  const char *relay_socket;
  GNetworkMonitor *network_monitor;
} LbdHostOptions;

#define LBD_HOST_OPTIONS_INIT { 0, 0, -1, NULL, NULL }

#define LBD_TYPE_HOST (lbd_host_get_type ())
G_DECLARE_FINAL_TYPE (LbdHost, lbd_host, LBD, HOST, GObject)

LbdHost       *lbd_host_new          (const char            *data_dir,
                                      const LbdHostOptions  *options,
                                      GError               **error);
void           lbd_host_new_async    (const char            *data_dir,
                                      const LbdHostOptions  *options,
                                      GCancellable          *cancellable,
                                      GAsyncReadyCallback    callback,
                                      gpointer               user_data);
LbdHost       *lbd_host_new_finish   (GAsyncResult          *result,
                                      GError               **error);

gboolean       lbd_host_export       (LbdHost               *self,
                                      GDBusConnection       *connection,
                                      GError               **error);
void           lbd_host_start        (LbdHost               *self);
void           lbd_host_stop         (LbdHost               *self);
void           lbd_host_stop_async   (LbdHost               *self,
                                      GCancellable          *cancellable,
                                      GAsyncReadyCallback    callback,
                                      gpointer               user_data);
gboolean       lbd_host_stop_finish  (LbdHost               *self,
                                      GAsyncResult          *result,
                                      GError               **error);

gboolean       lbd_host_is_started   (LbdHost               *self);
LbStore       *lbd_host_get_store    (LbdHost               *self);
LbdScheduler  *lbd_host_get_scheduler (LbdHost              *self);
LbdService    *lbd_host_get_service  (LbdHost               *self);

G_END_DECLS
