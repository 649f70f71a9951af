/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * LbdRelaySink:
 * @submit_async: takes one accepted message: the envelope sender ("" for the null
 *   reverse-path), the recipients (%NULL-terminated, in the order given, as given), both
 *   valid until @callback runs; the message as received
 *   (dot-stuffing undone, CRLF line ends, no end-of-data line) and whether the client
 *   logged in over TCP (%FALSE: the Unix socket, whose peer is the user by its
 *   credentials). It must call @callback once, in the caller's thread-default main
 *   context, and only after the message is durably kept (fsync'd).
 * @submit_finish: the queue id (free with g_free()), or %NULL with an error; see
 *   lbd_relay_sink_error_reply() for how errors become SMTP replies
 *
 * Where accepted messages go. The relay knows nothing of the outbox: the daemon wires
 * this to it; tests record into memory.
 */
typedef struct
{
  void  (*submit_async)  (gpointer              sink_data,
                          const char           *envelope_from,
                          const char * const   *recipients,
                          GBytes               *message,
                          gboolean              authenticated_tcp,
                          GCancellable         *cancellable,
                          GAsyncReadyCallback   callback,
                          gpointer              user_data);
  char *(*submit_finish) (gpointer              sink_data,
                          GAsyncResult         *result,
                          GError              **error);
} LbdRelaySink;

#define LBD_RELAY_SINK_ERROR (lbd_relay_sink_error_quark ())

/**
 * LbdRelaySinkError:
 * @LBD_RELAY_SINK_ERROR_TEMPORARY: try again later (451 4.3.0)
 * @LBD_RELAY_SINK_ERROR_NO_SPACE: the queue is full or the disk is (452 4.3.1)
 * @LBD_RELAY_SINK_ERROR_SENDER: no account may send as this sender (554 5.7.1)
 * @LBD_RELAY_SINK_ERROR_MESSAGE: the message itself is unacceptable (554 5.6.0)
 * @LBD_RELAY_SINK_ERROR_PERMANENT: refused for good, for another reason (554 5.0.0)
 *
 * Codes a sink may return. Other domains map as lbd_relay_sink_error_reply() says.
 */
typedef enum
{
  LBD_RELAY_SINK_ERROR_TEMPORARY,
  LBD_RELAY_SINK_ERROR_NO_SPACE,
  LBD_RELAY_SINK_ERROR_SENDER,
  LBD_RELAY_SINK_ERROR_MESSAGE,
  LBD_RELAY_SINK_ERROR_PERMANENT,
} LbdRelaySinkError;

GQuark      lbd_relay_sink_error_quark (void);
const char *lbd_relay_sink_error_reply (const GError *error);

typedef enum
{
  LBD_RELAY_TRANSPORT_UNIX,
  LBD_RELAY_TRANSPORT_TCP,
} LbdRelayTransport;

/**
 * LbdRelaySessionConfig:
 * @transport: the Unix socket (peer already checked) or TCP (AUTH required)
 * @hostname: the name in the greeting and EHLO reply
 * @user_name: the one user name AUTH accepts (TCP)
 * @secret: the one password AUTH accepts (TCP)
 * @size_limit: the largest message, in octets (SIZE, RFC 1870)
 * @max_recipients: RCPTs per message; more get 452 4.5.3
 * @idle_timeout: seconds without a byte from the client (or without it reading ours)
 * @command_timeout: seconds for a whole command line to arrive
 * @data_timeout: seconds for the whole message after the 354 reply
 * @sink: where accepted messages go, with @sink_data
 *
 * The session copies the strings it needs.
 */
typedef struct
{
  LbdRelayTransport transport;
  const char *hostname;
  const char *user_name;
  const char *secret;
  guint64 size_limit;
  guint max_recipients;
  guint idle_timeout;
  guint command_timeout;
  guint data_timeout;
  const LbdRelaySink *sink;
  gpointer sink_data;
} LbdRelaySessionConfig;

#define LBD_TYPE_RELAY_SESSION (lbd_relay_session_get_type ())
G_DECLARE_FINAL_TYPE (LbdRelaySession, lbd_relay_session, LBD, RELAY_SESSION, GObject)

LbdRelaySession *lbd_relay_session_new        (GIOStream                    *stream,
                                               const LbdRelaySessionConfig  *config);
void             lbd_relay_session_run_async  (LbdRelaySession              *self,
                                               GCancellable                 *cancellable,
                                               GAsyncReadyCallback           callback,
                                               gpointer                      user_data);
gboolean         lbd_relay_session_run_finish (LbdRelaySession              *self,
                                               GAsyncResult                 *result,
                                               GError                      **error);

G_END_DECLS
