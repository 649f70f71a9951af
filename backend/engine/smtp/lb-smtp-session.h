/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-connection.h"
#include "lb-smtp-data.h"
#include "lb-smtp-reply.h"

G_BEGIN_DECLS

#define LB_SMTP_ERROR (lb_smtp_error_quark ())

/**
 * LbSmtpError:
 * @LB_SMTP_ERROR_TEMPORARY: the server said 4xx: try the same again later
 * @LB_SMTP_ERROR_PERMANENT: the server said 5xx: sending this again will fail again
 * @LB_SMTP_ERROR_AUTH: the credentials were refused; ask the user
 * @LB_SMTP_ERROR_INSECURE: going on would send credentials or mail without the
 *   protection the account requires (no STARTTLS offered, plaintext login in clear)
 * @LB_SMTP_ERROR_PROTOCOL: the server broke the protocol; the connection is closed
 * @LB_SMTP_ERROR_UNSUPPORTED: the server lacks what this message needs (SMTPUTF8,
 *   8BITMIME, a login method)
 * @LB_SMTP_ERROR_TOO_BIG: the message is larger than the server's SIZE limit
 * @LB_SMTP_ERROR_INVALID: the caller's input is unusable (an address with line breaks,
 *   a message stream that failed); nothing was sent
 *
 * Network and TLS failures come as %LB_NET_ERROR, cancellation as %G_IO_ERROR_CANCELLED.
 */
typedef enum
{
  LB_SMTP_ERROR_TEMPORARY,
  LB_SMTP_ERROR_PERMANENT,
  LB_SMTP_ERROR_AUTH,
  LB_SMTP_ERROR_INSECURE,
  LB_SMTP_ERROR_PROTOCOL,
  LB_SMTP_ERROR_UNSUPPORTED,
  LB_SMTP_ERROR_TOO_BIG,
  LB_SMTP_ERROR_INVALID,
} LbSmtpError;

GQuark lb_smtp_error_quark (void);

/**
 * LbSmtpMessageFlags:
 * @LB_SMTP_MESSAGE_8BIT: the message has bytes over 127 outside headers (BODY=8BITMIME,
 *   RFC 6152)
 * @LB_SMTP_MESSAGE_UTF8: header fields carry raw UTF-8 (RFC 6532); needs SMTPUTF8, as do
 *   addresses outside ASCII (that is found out from the envelope itself)
 */
typedef enum
{
  LB_SMTP_MESSAGE_7BIT = 0,
  LB_SMTP_MESSAGE_8BIT = 1 << 0,
  LB_SMTP_MESSAGE_UTF8 = 1 << 1,
} LbSmtpMessageFlags;

/* Delivery status notifications asked for one recipient (RFC 3461 §4.1). */
typedef enum
{
  LB_SMTP_NOTIFY_DEFAULT = 0, /* no NOTIFY parameter: the server's default (failures) */
  LB_SMTP_NOTIFY_SUCCESS = 1 << 0,
  LB_SMTP_NOTIFY_FAILURE = 1 << 1,
  LB_SMTP_NOTIFY_DELAY = 1 << 2,
  LB_SMTP_NOTIFY_NEVER = 1 << 3,
} LbSmtpNotify;

/* Who the message is from and for: the SMTP envelope, not the headers. */
typedef struct _LbSmtpEnvelope LbSmtpEnvelope;

LbSmtpEnvelope *lb_smtp_envelope_new           (const char      *sender);
void            lb_smtp_envelope_add_recipient (LbSmtpEnvelope  *envelope,
                                                const char      *address,
                                                LbSmtpNotify     notify);
void            lb_smtp_envelope_set_dsn       (LbSmtpEnvelope  *envelope,
                                                gboolean         return_full,
                                                const char      *envelope_id);
void            lb_smtp_envelope_free          (LbSmtpEnvelope  *envelope);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbSmtpEnvelope, lb_smtp_envelope_free)

typedef struct
{
  char *address;
  gboolean accepted;
  guint code;     /* the server's reply to RCPT TO */
  char *reply;    /* the whole reply as a person reads it ("550 5.1.1 …") */
} LbSmtpRecipientResult;

/* What happened to one message: per recipient, and the server's final word. */
typedef struct
{
  GPtrArray *recipients;  /* LbSmtpRecipientResult*, in envelope order */
  guint accepted;         /* how many recipients the server took */
  char *data_reply;       /* the reply to the end of data (often with a queue id) */
  gboolean dsn_used;      /* the DSN parameters were sent (the server offers DSN) */
  gboolean chunked;       /* sent with BDAT (RFC 3030) rather than DATA */
  guint64 bytes_sent;     /* message bytes on the wire (after CRLF and dot handling) */
} LbSmtpSendResult;

void lb_smtp_send_result_free (LbSmtpSendResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbSmtpSendResult, lb_smtp_send_result_free)

#define LB_TYPE_SMTP_SESSION (lb_smtp_session_get_type ())
G_DECLARE_FINAL_TYPE (LbSmtpSession, lb_smtp_session, LB, SMTP_SESSION, GObject)

LbSmtpSession   *lb_smtp_session_new              (LbConnection        *connection);
LbConnection    *lb_smtp_session_get_connection   (LbSmtpSession       *self);
void             lb_smtp_session_set_helo_name    (LbSmtpSession       *self,
                                                   const char          *name);
void             lb_smtp_session_set_disabled_capabilities (LbSmtpSession *self,
                                                   LbSmtpCapabilities   capabilities);
gboolean         lb_smtp_session_has_capability   (LbSmtpSession       *self,
                                                   LbSmtpCapabilities   capability);
guint64          lb_smtp_session_get_size_limit   (LbSmtpSession       *self);
const char      *lb_smtp_session_get_greeting     (LbSmtpSession       *self);
gboolean         lb_smtp_session_is_authenticated (LbSmtpSession       *self);

void             lb_smtp_session_connect_async    (LbSmtpSession       *self,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
gboolean         lb_smtp_session_connect_finish   (LbSmtpSession       *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);

void             lb_smtp_session_login_async      (LbSmtpSession       *self,
                                                   const char          *user,
                                                   const char          *secret,
                                                   gboolean             secret_is_token,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
gboolean         lb_smtp_session_login_finish     (LbSmtpSession       *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);

void             lb_smtp_session_send_async       (LbSmtpSession       *self,
                                                   const LbSmtpEnvelope *envelope,
                                                   GInputStream        *message,
                                                   gint64               size,
                                                   LbSmtpMessageFlags   flags,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
gboolean         lb_smtp_session_send_finish      (LbSmtpSession       *self,
                                                   GAsyncResult        *result,
                                                   LbSmtpSendResult   **send_result,
                                                   GError             **error);

void             lb_smtp_session_quit_async       (LbSmtpSession       *self,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
gboolean         lb_smtp_session_quit_finish      (LbSmtpSession       *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);

G_END_DECLS
