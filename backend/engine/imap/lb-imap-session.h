/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-connection.h"
#include "lb-imap-parser.h"

G_BEGIN_DECLS

#define LB_IMAP_ERROR (lb_imap_error_quark ())

/**
 * LbImapError:
 * @LB_IMAP_ERROR_NO: the server refused the command (its text is the message); the
 *   session goes on
 * @LB_IMAP_ERROR_BAD: the server called the command malformed: a bug or a quirk to learn
 * @LB_IMAP_ERROR_BYE: the server ended the session (shutdown, idle too long)
 * @LB_IMAP_ERROR_PROTOCOL: the server broke the protocol; the connection is closed
 * @LB_IMAP_ERROR_AUTH: the credentials were refused; ask the user
 * @LB_IMAP_ERROR_INSECURE: going on would send credentials or mail without the
 *   protection the account requires (no STARTTLS, LOGINDISABLED)
 * @LB_IMAP_ERROR_UNSUPPORTED: the server lacks what the operation needs
 *
 * Network and TLS failures come as %LB_NET_ERROR, cancellation as %G_IO_ERROR_CANCELLED.
 */
typedef enum
{
  LB_IMAP_ERROR_NO,
  LB_IMAP_ERROR_BAD,
  LB_IMAP_ERROR_BYE,
  LB_IMAP_ERROR_PROTOCOL,
  LB_IMAP_ERROR_AUTH,
  LB_IMAP_ERROR_INSECURE,
  LB_IMAP_ERROR_UNSUPPORTED,
} LbImapError;

GQuark lb_imap_error_quark (void);

typedef enum
{
  LB_IMAP_STATE_DISCONNECTED,
  LB_IMAP_STATE_NOT_AUTHENTICATED,
  LB_IMAP_STATE_AUTHENTICATED,
  LB_IMAP_STATE_SELECTED,
  LB_IMAP_STATE_LOGOUT,
} LbImapState;

/* What a command brought back: its tagged response and the untagged ones that arrived
 * while it ran. */
typedef struct
{
  LbImapResponse *tagged;
  GPtrArray *untagged; /* LbImapResponse* */
} LbImapResult;

void lb_imap_result_free (LbImapResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbImapResult, lb_imap_result_free)

#define LB_TYPE_IMAP_SESSION (lb_imap_session_get_type ())
G_DECLARE_FINAL_TYPE (LbImapSession, lb_imap_session, LB, IMAP_SESSION, GObject)

LbImapSession *lb_imap_session_new              (LbConnection             *connection);
LbConnection  *lb_imap_session_get_connection   (LbImapSession            *self);
LbImapState    lb_imap_session_get_state        (LbImapSession            *self);
gboolean       lb_imap_session_has_capability   (LbImapSession            *self,
                                                 const char               *capability);
char         **lb_imap_session_dup_auth_mechanisms (LbImapSession         *self);
gboolean       lb_imap_session_is_enabled       (LbImapSession            *self,
                                                 const char               *extension);
void           lb_imap_session_set_literal_sink (LbImapSession            *self,
                                                 const LbImapLiteralSink  *sink,
                                                 gpointer                  user_data);

void           lb_imap_session_connect_async    (LbImapSession            *self,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_connect_finish   (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 GError                  **error);

void           lb_imap_session_login_async      (LbImapSession            *self,
                                                 const char               *user,
                                                 const char               *secret,
                                                 gboolean                  secret_is_token,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_login_finish     (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 GError                  **error);

void           lb_imap_session_command_async    (LbImapSession            *self,
                                                 const char               *command,
                                                 GBytes                   *literal,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
LbImapResult  *lb_imap_session_command_finish   (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 GError                  **error);

/* Called for each untagged response while its command runs, instead of collecting them;
 * runs in the session's main context. The response is freed after the call. */
typedef void (*LbImapUntaggedFunc) (LbImapResponse *response,
                                    gpointer        user_data);

void           lb_imap_session_command_full_async (LbImapSession          *self,
                                                 const char               *command,
                                                 GBytes                   *literal,
                                                 LbImapUntaggedFunc        untagged_func,
                                                 gpointer                  untagged_data,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);

/* Servers' workarounds (STYLE.md rule 8): capabilities not to trust, and limits. */
typedef struct
{
  /* Capabilities the server advertises but must not be used (upper case). */
  char **disabled_capabilities;
  /* The longest command line to send; longer UID sets are split (RFC 7162 §4 advises
   * clients to keep lines under 8192 octets). */
  gsize max_command_length;
  /* Leave and re-enter IDLE at least this often (RFC 2177 §3: servers may log out an
   * idle client after 30 minutes). */
  guint idle_seconds;
} LbImapQuirks;

void           lb_imap_quirks_init_defaults     (LbImapQuirks             *quirks);
void           lb_imap_session_set_quirks       (LbImapSession            *self,
                                                 const LbImapQuirks       *quirks);
const LbImapQuirks *lb_imap_session_get_quirks  (LbImapSession            *self);

void           lb_imap_session_move_async       (LbImapSession            *self,
                                                 const char               *uid_set,
                                                 const char               *mailbox,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_move_finish      (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 guint32                  *dest_uidvalidity,
                                                 LbImapSet               **dest_uids,
                                                 GError                  **error);
char          *lb_imap_session_encode_mailbox   (LbImapSession            *self,
                                                 const char               *utf8_name);

void           lb_imap_session_idle_async       (LbImapSession            *self,
                                                 guint                     max_seconds,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_idle_finish      (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 GError                  **error);
void           lb_imap_session_idle_done        (LbImapSession            *self);

void           lb_imap_session_logout_async     (LbImapSession            *self,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_logout_finish    (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 GError                  **error);

char          *lb_imap_quote                    (const char               *string);

G_END_DECLS
