/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define LB_NET_ERROR (lb_net_error_quark ())

/**
 * LbNetError:
 * @LB_NET_ERROR_UNREACHABLE: the host could not be resolved or reached (retry later)
 * @LB_NET_ERROR_TIMEOUT: the server did not answer in time (retry later)
 * @LB_NET_ERROR_CLOSED: the server closed the connection (retry later)
 * @LB_NET_ERROR_CERTIFICATE: the server's certificate is not trusted; the user must decide
 *   (lb_connection_get_peer_certificate() tells what it is)
 * @LB_NET_ERROR_TLS: the TLS handshake or session failed for another reason
 * @LB_NET_ERROR_IO: reading or writing failed otherwise
 */
typedef enum
{
  LB_NET_ERROR_UNREACHABLE,
  LB_NET_ERROR_TIMEOUT,
  LB_NET_ERROR_CLOSED,
  LB_NET_ERROR_CERTIFICATE,
  LB_NET_ERROR_TLS,
  LB_NET_ERROR_IO,
} LbNetError;

GQuark lb_net_error_quark (void);

/**
 * LbNetSecurity:
 * @LB_NET_SECURITY_TLS: TLS from the first byte (RFC 8314 implicit TLS, ports 993/995/465)
 * @LB_NET_SECURITY_STARTTLS: plain first, then upgraded by the protocol's STARTTLS; a
 *   server that does not offer it is an error, never a silent downgrade
 * @LB_NET_SECURITY_NONE: no TLS at all (only sensible to a loopback address)
 */
typedef enum
{
  LB_NET_SECURITY_TLS,
  LB_NET_SECURITY_STARTTLS,
  LB_NET_SECURITY_NONE,
} LbNetSecurity;

#define LB_TYPE_CONNECTION (lb_connection_get_type ())
G_DECLARE_FINAL_TYPE (LbConnection, lb_connection, LB, CONNECTION, GObject)

LbConnection    *lb_connection_new                   (const char           *host,
                                                      guint16               port,
                                                      LbNetSecurity         security);
void             lb_connection_set_trusted_fingerprint (LbConnection       *self,
                                                      const char           *sha256);
gboolean         lb_connection_set_ca_file           (LbConnection         *self,
                                                      const char           *path,
                                                      GError              **error);
void             lb_connection_set_timeouts          (LbConnection         *self,
                                                      guint                 connect_seconds,
                                                      guint                 read_seconds);
void             lb_connection_set_read_timeout      (LbConnection         *self,
                                                      guint                 seconds);

const char      *lb_connection_get_host              (LbConnection         *self);
guint16          lb_connection_get_port              (LbConnection         *self);
LbNetSecurity    lb_connection_get_security          (LbConnection         *self);
gboolean         lb_connection_is_encrypted          (LbConnection         *self);
gboolean         lb_connection_is_loopback           (LbConnection         *self);
char            *lb_connection_dup_local_address_literal (LbConnection   *self);
gboolean         lb_connection_is_compressed         (LbConnection         *self);
GTlsCertificate *lb_connection_get_peer_certificate  (LbConnection         *self);
GTlsCertificateFlags lb_connection_get_peer_certificate_errors (LbConnection *self);

char            *lb_certificate_dup_fingerprint      (GTlsCertificate      *certificate);

void             lb_connection_connect_async         (LbConnection         *self,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
gboolean         lb_connection_connect_finish        (LbConnection         *self,
                                                      GAsyncResult         *result,
                                                      GError              **error);

void             lb_connection_start_tls_async       (LbConnection         *self,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
gboolean         lb_connection_start_tls_finish      (LbConnection         *self,
                                                      GAsyncResult         *result,
                                                      GError              **error);

gboolean         lb_connection_start_compress        (LbConnection         *self,
                                                      GError              **error);

void             lb_connection_read_async            (LbConnection         *self,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
GBytes          *lb_connection_read_finish           (LbConnection         *self,
                                                      GAsyncResult         *result,
                                                      GError              **error);

void             lb_connection_write_async           (LbConnection         *self,
                                                      GBytes               *data,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
gboolean         lb_connection_write_finish          (LbConnection         *self,
                                                      GAsyncResult         *result,
                                                      GError              **error);

void             lb_connection_close                 (LbConnection         *self);

G_END_DECLS
