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
 * @LB_IMAP_ERROR_NONEXISTENT: the mailbox does not exist (NO [TRYCREATE] or
 *   [NONEXISTENT]); create it and try again
 * @LB_IMAP_ERROR_SOURCE: a message to upload could not be read, or its stream was shorter
 *   or longer than the size announced to the server; the server was owed exactly that many
 *   bytes, so the connection was closed (nothing was appended); do not retry as is
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
  LB_IMAP_ERROR_NONEXISTENT,
  LB_IMAP_ERROR_SOURCE,
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
  /* The most connections the server lets one account open; 0 when not known. A hint for
   * the pool (LbImapServiceConfig.max_connections). */
  guint max_connections;
  /* FALSE (the default): after login the session adds the rules that
   * lb_imap_quirks_for_server() knows for the server it is talking to, which only ever
   * tighten these. TRUE: use exactly these. */
  gboolean fixed;
} LbImapQuirks;

void           lb_imap_quirks_init_defaults     (LbImapQuirks             *quirks);
void           lb_imap_quirks_clear             (LbImapQuirks             *quirks);
const char    *lb_imap_quirks_for_server        (LbImapQuirks             *quirks,
                                                 const char *const        *capabilities,
                                                 const char               *greeting,
                                                 const char *const        *id_params);
void           lb_imap_session_set_quirks       (LbImapSession            *self,
                                                 const LbImapQuirks       *quirks);
const LbImapQuirks *lb_imap_session_get_quirks  (LbImapSession            *self);
const char    *lb_imap_session_get_server_id    (LbImapSession            *self,
                                                 const char               *key);
const char    *lb_imap_session_get_server_kind  (LbImapSession            *self);

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

/* ---- Typed commands: callers never build command strings. ---- */

/* One message to upload: @size bytes read from @stream (read once, in order, from the
 * session's main context), with its flags and internal date. */
typedef struct
{
  GInputStream *stream;
  goffset size;
  const char *const *flags;   /* such as "\\Seen", "$Forwarded"; or NULL */
  GDateTime *internal_date;   /* or NULL: the server's time of arrival */
} LbImapAppendMessage;

void           lb_imap_session_append_async     (LbImapSession            *self,
                                                 const char               *mailbox,
                                                 const char *const        *flags,
                                                 GDateTime                *internal_date,
                                                 GInputStream             *message,
                                                 goffset                   size,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_append_finish    (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 guint32                  *uidvalidity,
                                                 guint32                  *uid,
                                                 GError                  **error);

void           lb_imap_session_append_many_async (LbImapSession           *self,
                                                 const char               *mailbox,
                                                 const LbImapAppendMessage *messages,
                                                 guint                     n_messages,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_append_many_finish (LbImapSession          *self,
                                                 GAsyncResult             *result,
                                                 guint32                  *uidvalidity,
                                                 LbImapSet               **uids,
                                                 GError                  **error);

void           lb_imap_session_replace_draft_async (LbImapSession         *self,
                                                 const char               *mailbox,
                                                 guint32                   old_uid,
                                                 const char *const        *flags,
                                                 GInputStream             *message,
                                                 goffset                   size,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
guint32        lb_imap_session_replace_draft_finish (LbImapSession        *self,
                                                 GAsyncResult             *result,
                                                 gboolean                 *old_removed,
                                                 GError                  **error);

/* What the client knows of a mailbox, for QRESYNC (RFC 7162 §3.2.5). */
typedef struct
{
  guint32 uidvalidity;
  guint64 modseq;
  const char *known_uids;  /* a UID set such as "1:500", or NULL */
} LbImapQresyncParams;

/* What SELECT/EXAMINE told (RFC 9051 §6.3.2, RFC 7162). */
typedef struct
{
  guint32 exists;
  guint32 recent;          /* IMAP4rev1 servers only; 0 otherwise */
  guint32 unseen;          /* first unseen sequence number (IMAP4rev1), 0 if not told */
  guint32 uidvalidity;
  guint32 uidnext;         /* 0 if not told */
  guint64 highestmodseq;   /* 0 with nomodseq or without CONDSTORE */
  gboolean nomodseq;
  gboolean read_only;
  char **flags;
  char **permanent_flags;
  /* The server resynchronised from the LbImapQresyncParams: vanished and the changed
   * FETCHes are the complete difference. FALSE (no QRESYNC, or UIDVALIDITY changed): the
   * caller must resynchronise the whole mailbox. */
  gboolean qresync;
  LbImapSet *vanished;     /* VANISHED (EARLIER) UIDs, or NULL */
  GPtrArray *changed;      /* LbImapResponse* FETCHes, when no changed_func was given */
} LbImapMailboxInfo;

void           lb_imap_mailbox_info_free        (LbImapMailboxInfo        *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbImapMailboxInfo, lb_imap_mailbox_info_free)

void           lb_imap_session_select_async     (LbImapSession            *self,
                                                 const char               *mailbox,
                                                 gboolean                  read_only,
                                                 const LbImapQresyncParams *qresync,
                                                 LbImapUntaggedFunc        changed_func,
                                                 gpointer                  changed_data,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
LbImapMailboxInfo *lb_imap_session_select_finish (LbImapSession           *self,
                                                 GAsyncResult             *result,
                                                 GError                  **error);

void           lb_imap_session_uid_fetch_async  (LbImapSession            *self,
                                                 const char               *uid_set,
                                                 const char               *items,
                                                 guint64                   changed_since,
                                                 LbImapUntaggedFunc        untagged_func,
                                                 gpointer                  untagged_data,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_uid_fetch_finish (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 GError                  **error);

typedef enum
{
  LB_IMAP_STORE_ADD,      /* +FLAGS */
  LB_IMAP_STORE_REMOVE,   /* -FLAGS */
  LB_IMAP_STORE_REPLACE,  /* FLAGS */
} LbImapStoreAction;

void           lb_imap_session_uid_store_async  (LbImapSession            *self,
                                                 const char               *uid_set,
                                                 LbImapStoreAction         action,
                                                 const char *const        *flags,
                                                 guint64                   unchanged_since,
                                                 LbImapUntaggedFunc        untagged_func,
                                                 gpointer                  untagged_data,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
gboolean       lb_imap_session_uid_store_finish (LbImapSession            *self,
                                                 GAsyncResult             *result,
                                                 LbImapSet               **modified,
                                                 GError                  **error);

void           lb_imap_session_uid_search_async (LbImapSession            *self,
                                                 const char               *criteria,
                                                 GCancellable             *cancellable,
                                                 GAsyncReadyCallback       callback,
                                                 gpointer                  user_data);
LbImapSet     *lb_imap_session_uid_search_finish (LbImapSession           *self,
                                                 GAsyncResult             *result,
                                                 GError                  **error);

char          *lb_imap_quote                    (const char               *string);

G_END_DECLS
