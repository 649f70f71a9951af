/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>
#include <sys/types.h>

#include "lbd-relay-session.h"

G_BEGIN_DECLS

#define LBD_RELAY_ERROR (lbd_relay_error_quark ())

/**
 * LbdRelayError:
 * @LBD_RELAY_ERROR_IN_USE: another relay listens on the socket, or the path is taken by
 *   something that is not a socket
 * @LBD_RELAY_ERROR_UNSAFE: the socket's directory is not the user's own
 * @LBD_RELAY_ERROR_PEER: a client of the Unix socket is another user
 */
typedef enum
{
  LBD_RELAY_ERROR_IN_USE,
  LBD_RELAY_ERROR_UNSAFE,
  LBD_RELAY_ERROR_PEER,
} LbdRelayError;

GQuark lbd_relay_error_quark (void);

#define LBD_RELAY_DEFAULT_SIZE_LIMIT (50 * 1024 * 1024)
#define LBD_RELAY_DEFAULT_MAX_RECIPIENTS 1000
#define LBD_RELAY_DEFAULT_MAX_CONNECTIONS 64
/* RFC 5321 §4.5.3.2: five minutes for a command, ten for the end of data. */
#define LBD_RELAY_DEFAULT_IDLE_TIMEOUT 300
#define LBD_RELAY_DEFAULT_COMMAND_TIMEOUT 300
#define LBD_RELAY_DEFAULT_DATA_TIMEOUT 600

#define LBD_TYPE_RELAY_SERVER (lbd_relay_server_get_type ())
G_DECLARE_FINAL_TYPE (LbdRelayServer, lbd_relay_server, LBD, RELAY_SERVER, GObject)

LbdRelayServer *lbd_relay_server_new              (const LbdRelaySink  *sink,
                                                   gpointer             sink_data);
gboolean        lbd_relay_server_start            (LbdRelayServer      *self,
                                                   GError             **error);
void            lbd_relay_server_stop             (LbdRelayServer      *self);
const char     *lbd_relay_server_get_socket_path  (LbdRelayServer      *self);
guint16         lbd_relay_server_get_tcp_port     (LbdRelayServer      *self);
guint           lbd_relay_server_get_n_sessions   (LbdRelayServer      *self);
void            lbd_relay_server_set_secret       (LbdRelayServer      *self,
                                                   const char          *secret);

char           *lbd_relay_default_socket_path     (void);
gboolean        lbd_relay_check_peer              (GCredentials        *credentials,
                                                   uid_t                owner,
                                                   GError             **error);

G_END_DECLS
