/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-connection.h"

G_BEGIN_DECLS

#define LB_ACCOUNT_ERROR (lb_account_error_quark ())

/**
 * LbAccountError:
 * @LB_ACCOUNT_ERROR_INVALID: the configuration (a file, a URL or the struct) is wrong; the
 *   message names the account and the field
 * @LB_ACCOUNT_ERROR_NOT_FOUND: no such account, or no password stored for it
 * @LB_ACCOUNT_ERROR_IO: the account file or directory could not be read or written
 * @LB_ACCOUNT_ERROR_PASSWORD: the password command failed (its exit status and the first
 *   line of its standard error are in the message, never its output)
 *
 * None is worth retrying without the user changing something.
 */
typedef enum
{
  LB_ACCOUNT_ERROR_INVALID,
  LB_ACCOUNT_ERROR_NOT_FOUND,
  LB_ACCOUNT_ERROR_IO,
  LB_ACCOUNT_ERROR_PASSWORD,
} LbAccountError;

GQuark lb_account_error_quark (void);

typedef enum
{
  LB_ACCOUNT_PROTOCOL_IMAP,
  LB_ACCOUNT_PROTOCOL_POP3,
  LB_ACCOUNT_PROTOCOL_SMTP,
} LbAccountProtocol;

typedef enum
{
  LB_ACCOUNT_PASSWORD_KEYRING,
  LB_ACCOUNT_PASSWORD_COMMAND,
} LbAccountPasswordSource;

/**
 * LbAccountBodies:
 * @LB_ACCOUNT_BODIES_ALL: download every message body
 * @LB_ACCOUNT_BODIES_RECENT: bodies of the last #LbAccount.bodies_days days only
 * @LB_ACCOUNT_BODIES_ON_DEMAND: bodies only when a message is opened
 */
typedef enum
{
  LB_ACCOUNT_BODIES_ALL,
  LB_ACCOUNT_BODIES_RECENT,
  LB_ACCOUNT_BODIES_ON_DEMAND,
} LbAccountBodies;

/**
 * LbAccountServer:
 * @protocol: IMAP or POP3 for the incoming server, SMTP for the outgoing one
 * @host: host name or address (an IPv6 address without brackets)
 * @port: 1–65535 (a #guint so that a bad value can be reported, not truncated)
 * @security: TLS, STARTTLS or none
 * @user: (nullable): the login name; %NULL means the first identity's address
 * @auth: "auto" or a SASL mechanism name
 * @allow_insecure: the user's explicit consent to #LB_NET_SECURITY_NONE to a host that
 *   is not loopback (`allow-insecure=true` in the file); without it that is refused
 */
typedef struct
{
  LbAccountProtocol protocol;
  char *host;
  guint port;
  LbNetSecurity security;
  char *user;
  char *auth;
  gboolean allow_insecure;
} LbAccountServer;

typedef struct
{
  char *name;
  char *address;
} LbAccountIdentity;

/**
 * LbAccount:
 * @id: [A-Za-z0-9._-]+, not starting with '.'; the file name without ".ini"
 * @display_name: (nullable): what the UI shows; %NULL means the id
 * @identities: (element-type LbAccountIdentity): at least one; the first is the default
 * @incoming: the IMAP or POP3 server
 * @outgoing: (nullable): the SMTP server
 * @ca_file: (nullable): trust only certificates from this CA file
 * @fingerprint: (nullable): trust the one certificate with this SHA-256 fingerprint, as
 *   lb_certificate_dup_fingerprint() writes it ("AA:BB:…", 32 upper-case hex pairs)
 * @password_source: the keyring (libsecret) or @password_command
 * @password_command: (nullable): run by `/bin/sh -c`; the first line of its output is the
 *   password
 * @bodies: which message bodies to keep offline
 * @bodies_days: for #LB_ACCOUNT_BODIES_RECENT, how many days back (≥ 1)
 * @leave_on_server: POP3: keep messages on the server after downloading them
 * @delete_after_days: POP3 with @leave_on_server: delete them after this many days;
 *   0 = never
 */
typedef struct
{
  char *id;
  char *display_name;
  GPtrArray *identities;
  LbAccountServer *incoming;
  LbAccountServer *outgoing;
  char *ca_file;
  char *fingerprint;
  LbAccountPasswordSource password_source;
  char *password_command;
  LbAccountBodies bodies;
  guint bodies_days;
  gboolean leave_on_server;
  guint delete_after_days;
} LbAccount;

const char      *lb_account_protocol_to_string   (LbAccountProtocol   protocol);
const char      *lb_account_security_to_string   (LbNetSecurity       security);

LbAccountServer *lb_account_server_new           (LbAccountProtocol   protocol,
                                                  const char         *host,
                                                  guint               port,
                                                  LbNetSecurity       security);
LbAccountServer *lb_account_server_copy          (const LbAccountServer *server);
void             lb_account_server_free          (LbAccountServer    *server);
LbAccountServer *lb_account_server_from_url      (const char         *url,
                                                  GError            **error);
guint            lb_account_default_port        (LbAccountProtocol   protocol,
                                                  LbNetSecurity       security);

LbAccount       *lb_account_new                  (const char         *id);
void             lb_account_free                 (LbAccount          *account);
LbAccount       *lb_account_copy                 (const LbAccount    *account);
void             lb_account_add_identity         (LbAccount          *account,
                                                  const char         *name,
                                                  const char         *address);
const char      *lb_account_get_address          (const LbAccount    *account);
gboolean         lb_account_validate             (const LbAccount    *account,
                                                  GError            **error);
gboolean         lb_account_id_is_valid          (const char         *id);

char            *lb_account_dir                  (void);
LbAccount       *lb_account_load_from_data       (const char         *id,
                                                  const char         *data,
                                                  gssize              length,
                                                  GError            **error);
char            *lb_account_to_data              (const LbAccount    *account,
                                                  gsize              *length);
LbAccount       *lb_account_load                 (const char         *id,
                                                  GError            **error);
gboolean         lb_account_save                 (const LbAccount    *account,
                                                  GError            **error);
char           **lb_account_list_ids             (GError            **error);
GPtrArray       *lb_account_load_all             (GError            **error);
gboolean         lb_account_remove               (const char         *id,
                                                  GError            **error);

void             lb_account_get_password_async   (const LbAccount    *account,
                                                  LbAccountProtocol   protocol,
                                                  GCancellable       *cancellable,
                                                  GAsyncReadyCallback callback,
                                                  gpointer            user_data);
char            *lb_account_get_password_finish  (GAsyncResult       *result,
                                                  GError            **error);
void             lb_account_set_password_async   (const LbAccount    *account,
                                                  LbAccountProtocol   protocol,
                                                  const char         *password,
                                                  GCancellable       *cancellable,
                                                  GAsyncReadyCallback callback,
                                                  gpointer            user_data);
gboolean         lb_account_set_password_finish  (GAsyncResult       *result,
                                                  GError            **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbAccountServer, lb_account_server_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbAccount, lb_account_free)

G_END_DECLS
