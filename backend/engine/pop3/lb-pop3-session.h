/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-connection.h"
#include "lb-pop3-parser.h"

G_BEGIN_DECLS

/*
 * LbPop3Session: one POP3 session (RFC 1939) over an LbConnection.
 *
 *   connect_async → login_async → stat/list/uidl/top/retrieve… → quit_async
 *
 * Every call is GIO async (_async/_finish, GCancellable, one GTask per call); callbacks
 * and RETR sinks run in the thread-default main context of the call. Calls may be made
 * without waiting for earlier ones: they are answered in order, pipelined when the
 * server offers PIPELINING (RFC 2449 §6.6).
 *
 * Nothing is lost — the safe order for moving mail off the server:
 *   1. lb_pop3_session_uidl_async() to know which messages are new;
 *   2. lb_pop3_session_retrieve_async() each one into the store;
 *   3. once the store has committed it, lb_pop3_session_mark_stored();
 *   4. lb_pop3_session_delete_async(), which refuses (LB_POP3_ERROR_NOT_STORED, nothing
 *      sent) any message not marked stored;
 *   5. lb_pop3_session_quit_async(): only now does the server remove what was marked
 *      deleted. A session that ends any other way (a dropped connection, an error,
 *      lb_pop3_session_abort(), the object freed) removes nothing (RFC 1939 §6).
 */

#define LB_POP3_ERROR (lb_pop3_error_quark ())

/**
 * LbPop3Error:
 * @LB_POP3_ERROR_ERR: the server answered -ERR (its text is in the message); the session
 *   goes on. Do not retry the same command blindly.
 * @LB_POP3_ERROR_TEMPORARY: the server refused for now: [IN-USE] (another client holds
 *   the maildrop), [LOGIN-DELAY] (RFC 2449 §8.1), [SYS/TEMP] (RFC 3206); retry later
 * @LB_POP3_ERROR_AUTH: the credentials were refused ([AUTH], RFC 3206, or any -ERR to
 *   a login command without a temporary code); ask the user
 * @LB_POP3_ERROR_INSECURE: going on would send credentials without the protection the
 *   account requires (no STLS, no TLS off loopback, APOP in the clear); nothing was sent
 * @LB_POP3_ERROR_PROTOCOL: the server broke the protocol; the connection is closed
 * @LB_POP3_ERROR_UNSUPPORTED: the server lacks what the operation needs (TOP, UIDL, a
 *   usable login method)
 * @LB_POP3_ERROR_NOT_STORED: DELE was asked for a message whose local copy the caller
 *   has not confirmed with lb_pop3_session_mark_stored(); nothing was sent
 *
 * Network and TLS failures come as %LB_NET_ERROR, cancellation as %G_IO_ERROR_CANCELLED.
 */
typedef enum
{
  LB_POP3_ERROR_ERR,
  LB_POP3_ERROR_TEMPORARY,
  LB_POP3_ERROR_AUTH,
  LB_POP3_ERROR_INSECURE,
  LB_POP3_ERROR_PROTOCOL,
  LB_POP3_ERROR_UNSUPPORTED,
  LB_POP3_ERROR_NOT_STORED,
} LbPop3Error;

GQuark lb_pop3_error_quark (void);

/**
 * LbPop3State:
 * @LB_POP3_STATE_DISCONNECTED: not connected yet, or the connection broke
 * @LB_POP3_STATE_GREETING: connected, waiting for the server's greeting
 * @LB_POP3_STATE_AUTHORIZATION: greeted; CAPA, STLS and login (RFC 1939 §4)
 * @LB_POP3_STATE_TRANSACTION: logged in; the maildrop is ours
 * @LB_POP3_STATE_UPDATE: QUIT sent from TRANSACTION: the server removes what was
 *   marked deleted, only now (RFC 1939 §6)
 * @LB_POP3_STATE_CLOSED: the session ended with QUIT, or was aborted
 */
typedef enum
{
  LB_POP3_STATE_DISCONNECTED,
  LB_POP3_STATE_GREETING,
  LB_POP3_STATE_AUTHORIZATION,
  LB_POP3_STATE_TRANSACTION,
  LB_POP3_STATE_UPDATE,
  LB_POP3_STATE_CLOSED,
} LbPop3State;

/* The server's CAPA (RFC 2449 §6, RFC 2595 §4, RFC 3206 §6). */
typedef enum
{
  LB_POP3_CAP_STLS = 1 << 0,
  LB_POP3_CAP_SASL = 1 << 1,
  LB_POP3_CAP_USER = 1 << 2,
  LB_POP3_CAP_TOP = 1 << 3,
  LB_POP3_CAP_UIDL = 1 << 4,
  LB_POP3_CAP_PIPELINING = 1 << 5,
  LB_POP3_CAP_RESP_CODES = 1 << 6,
  LB_POP3_CAP_AUTH_RESP_CODE = 1 << 7,
  LB_POP3_CAP_EXPIRE = 1 << 8,
  LB_POP3_CAP_LOGIN_DELAY = 1 << 9,
} LbPop3Capabilities;

/**
 * LbPop3AuthMethod:
 * @LB_POP3_AUTH_AUTO: SASL AUTH (RFC 5034) when the server offers a mechanism that may
 *   be used here, else APOP when the greeting has a timestamp, else USER/PASS
 * @LB_POP3_AUTH_SASL: only SASL AUTH
 * @LB_POP3_AUTH_APOP: only APOP (RFC 1939 §7)
 * @LB_POP3_AUTH_USER: only USER/PASS
 *
 * Whatever the method, a password goes only inside TLS or to loopback, and APOP too:
 * its MD5 digest of a known timestamp lets an eavesdropper test passwords offline, so
 * it protects no more than the clear text would. SCRAM needs no such protection.
 */
typedef enum
{
  LB_POP3_AUTH_AUTO,
  LB_POP3_AUTH_SASL,
  LB_POP3_AUTH_APOP,
  LB_POP3_AUTH_USER,
} LbPop3AuthMethod;

typedef struct
{
  guint32 number;
  guint64 size;
} LbPop3ListEntry;

typedef struct
{
  guint32 number;
  char *uid;
} LbPop3UidlEntry;

#define LB_TYPE_POP3_SESSION (lb_pop3_session_get_type ())
G_DECLARE_FINAL_TYPE (LbPop3Session, lb_pop3_session, LB, POP3_SESSION, GObject)

LbPop3Session      *lb_pop3_session_new                (LbConnection       *connection);
LbConnection       *lb_pop3_session_get_connection     (LbPop3Session      *self);
LbPop3State         lb_pop3_session_get_state          (LbPop3Session      *self);
LbPop3Capabilities  lb_pop3_session_get_capabilities   (LbPop3Session      *self);
gboolean            lb_pop3_session_has_capa           (LbPop3Session      *self);
const char *const  *lb_pop3_session_get_sasl_mechanisms (LbPop3Session     *self);
const char         *lb_pop3_session_get_apop_timestamp (LbPop3Session      *self);
int                 lb_pop3_session_get_expire_days    (LbPop3Session      *self);
guint               lb_pop3_session_get_login_delay    (LbPop3Session      *self);
const char         *lb_pop3_session_get_auth_used      (LbPop3Session      *self);
void                lb_pop3_session_set_auth_method    (LbPop3Session      *self,
                                                        LbPop3AuthMethod    method);
void                lb_pop3_session_set_max_in_flight  (LbPop3Session      *self,
                                                        guint               max);
guint               lb_pop3_session_get_peak_in_flight (LbPop3Session      *self);

void                lb_pop3_session_connect_async      (LbPop3Session      *self,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
gboolean            lb_pop3_session_connect_finish     (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);

void                lb_pop3_session_login_async        (LbPop3Session      *self,
                                                        const char         *user,
                                                        const char         *secret,
                                                        gboolean            secret_is_token,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
gboolean            lb_pop3_session_login_finish       (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);

void                lb_pop3_session_stat_async         (LbPop3Session      *self,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
gboolean            lb_pop3_session_stat_finish        (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        guint              *count,
                                                        guint64            *size,
                                                        GError            **error);

void                lb_pop3_session_list_async         (LbPop3Session      *self,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
GArray             *lb_pop3_session_list_finish        (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);

void                lb_pop3_session_uidl_async         (LbPop3Session      *self,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
GArray             *lb_pop3_session_uidl_finish        (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);

void                lb_pop3_session_top_async          (LbPop3Session      *self,
                                                        guint32             number,
                                                        guint               lines,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
GBytes             *lb_pop3_session_top_finish         (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);

void                lb_pop3_session_retrieve_async     (LbPop3Session      *self,
                                                        guint32             number,
                                                        LbPop3SinkFunc      sink,
                                                        gpointer            sink_data,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
void                lb_pop3_session_retrieve_to_stream_async (LbPop3Session *self,
                                                        guint32             number,
                                                        GOutputStream      *stream,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
gboolean            lb_pop3_session_retrieve_finish    (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        guint64            *size,
                                                        GError            **error);

void                lb_pop3_session_mark_stored        (LbPop3Session      *self,
                                                        guint32             number);
gboolean            lb_pop3_session_is_stored          (LbPop3Session      *self,
                                                        guint32             number);

void                lb_pop3_session_delete_async       (LbPop3Session      *self,
                                                        guint32             number,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
gboolean            lb_pop3_session_delete_finish      (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);

void                lb_pop3_session_reset_async        (LbPop3Session      *self,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
gboolean            lb_pop3_session_reset_finish       (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);

void                lb_pop3_session_noop_async         (LbPop3Session      *self,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
gboolean            lb_pop3_session_noop_finish        (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        GError            **error);

void                lb_pop3_session_quit_async         (LbPop3Session      *self,
                                                        GCancellable       *cancellable,
                                                        GAsyncReadyCallback callback,
                                                        gpointer            user_data);
gboolean            lb_pop3_session_quit_finish        (LbPop3Session      *self,
                                                        GAsyncResult       *result,
                                                        guint              *deleted,
                                                        GError            **error);

void                lb_pop3_session_abort              (LbPop3Session      *self);

G_END_DECLS
