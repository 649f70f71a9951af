/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-account.h"

G_BEGIN_DECLS

#define LB_AUTOCONFIG_ERROR (lb_autoconfig_error_quark ())

/**
 * LbAutoconfigError:
 * @LB_AUTOCONFIG_ERROR_ADDRESS: the e-mail address is not one settings can be looked up
 *   for (no '@', an empty part, a domain with characters a host name cannot have)
 * @LB_AUTOCONFIG_ERROR_PARSE: the configuration document is not well-formed or not a
 *   Thunderbird `clientConfig` (the message says where)
 * @LB_AUTOCONFIG_ERROR_TOO_BIG: the document is larger or nested deeper than allowed
 * @LB_AUTOCONFIG_ERROR_EMPTY: the document names no server Letterbox can use
 * @LB_AUTOCONFIG_ERROR_NOT_FOUND: no address gave a configuration, the domain has no
 *   usable SRV record, or no probed server answered; the message names the last problem
 * @LB_AUTOCONFIG_ERROR_UNREACHABLE: the domain's SRV records name servers, but none of
 *   them answered with a greeting over a verified TLS connection (or before STARTTLS)
 * @LB_AUTOCONFIG_ERROR_OPTION: an #LbAutoconfigOptions field cannot be used (a
 *   nameserver that is not ADDRESS[:PORT])
 */
typedef enum
{
  LB_AUTOCONFIG_ERROR_ADDRESS,
  LB_AUTOCONFIG_ERROR_PARSE,
  LB_AUTOCONFIG_ERROR_TOO_BIG,
  LB_AUTOCONFIG_ERROR_EMPTY,
  LB_AUTOCONFIG_ERROR_NOT_FOUND,
  LB_AUTOCONFIG_ERROR_UNREACHABLE,
  LB_AUTOCONFIG_ERROR_OPTION,
} LbAutoconfigError;

GQuark lb_autoconfig_error_quark (void);

/** The largest configuration document accepted (and read over HTTP). */
#define LB_AUTOCONFIG_MAX_SIZE (1024 * 1024)
/** The deepest element nesting accepted. */
#define LB_AUTOCONFIG_MAX_DEPTH 32

/**
 * LbAutoconfigMethod:
 * @LB_AUTOCONFIG_METHOD_DOCUMENT: read from a document given to lb_autoconfig_parse()
 * @LB_AUTOCONFIG_METHOD_FILE: the provider's autoconfig file, fetched over HTTP(S)
 * @LB_AUTOCONFIG_METHOD_SRV: the domain's RFC 6186 SRV records, each server checked for a
 *   greeting
 * @LB_AUTOCONFIG_METHOD_PROBE: the usual host names and ports, probed for a greeting
 */
typedef enum
{
  LB_AUTOCONFIG_METHOD_DOCUMENT,
  LB_AUTOCONFIG_METHOD_FILE,
  LB_AUTOCONFIG_METHOD_SRV,
  LB_AUTOCONFIG_METHOD_PROBE,
} LbAutoconfigMethod;

/**
 * LbAutoconfig:
 * @display_name: (nullable): the provider's `displayName`
 * @incoming: (element-type LbAccountServer): IMAP and POP3 servers, in document order
 *   (the provider's preference first)
 * @outgoing: (element-type LbAccountServer): SMTP servers, in document order
 * @source: (nullable): where the settings came from: the URL fetched (after redirects),
 *   "dns-srv" for lb_autoconfig_srv_async() or "probe" for lb_autoconfig_probe_async();
 *   %NULL from lb_autoconfig_parse()
 * @method: how they were found
 *
 * Servers come with `%EMAILADDRESS%`, `%EMAILLOCALPART%` and `%EMAILDOMAIN%` already
 * replaced; `auth` is "auto" for passwords (cleartext or encrypted: the engine picks the
 * SASL mechanism) and "XOAUTH2" for OAuth2. A server with no security is returned with
 * `allow_insecure` %FALSE: consenting is the user's decision.
 */
typedef struct
{
  char *display_name;
  GPtrArray *incoming;
  GPtrArray *outgoing;
  char *source;
  LbAutoconfigMethod method;
} LbAutoconfig;

void          lb_autoconfig_free          (LbAutoconfig       *config);

gboolean      lb_autoconfig_split_address (const char         *address,
                                           char              **local_part,
                                           char              **domain,
                                           GError            **error);

LbAutoconfig *lb_autoconfig_parse         (const char         *data,
                                           gsize               length,
                                           const char         *address,
                                           GError            **error);

/**
 * LbAutoconfigPorts:
 * Ports to probe instead of the registered ones; 0 means the registered port
 * (993, 143, 995, 110, 465, 587). For tests and unusual local setups.
 */
typedef struct
{
  guint16 imaps;
  guint16 imap;
  guint16 pop3s;
  guint16 pop3;
  guint16 smtps;
  guint16 submission;
} LbAutoconfigPorts;

/**
 * LbAutoconfigOptions:
 * @allow_insecure: lookups may also try the http:// addresses (after the https:// ones);
 *   probes are never made without TLS or STARTTLS either way
 * @base_url_override: (nullable): for tests and local setups: "http://127.0.0.1:8080"
 *   replaces scheme and host of every lookup URL; only the two paths are tried
 * @ca_file: (nullable): trust certificates from this CA file (HTTPS and probes) instead of
 *   the system store
 * @timeout_seconds: per request or connection; 0 means 10
 * @probe_hosts: (nullable) (array zero-terminated=1): the hosts to probe instead of
 *   imap./pop3./smtp./mail.<domain> and <domain>
 * @probe_ports: ports to probe instead of the registered ones
 * @nameserver: (nullable): for tests and local setups: "ADDRESS:PORT" ("[IPv6]:PORT";
 *   port 53 when left out) of the DNS server that SRV records are asked from, over UDP,
 *   instead of the system's resolver
 * @trusted_fingerprint: (nullable): when checking servers (SRV, probe), also accept the
 *   one certificate with this SHA-256 fingerprint, like lb_connection_set_trusted_fingerprint()
 *
 * The strings are copied by the calls; the struct may be freed once they return.
 */
typedef struct
{
  gboolean allow_insecure;
  const char *base_url_override;
  const char *ca_file;
  guint timeout_seconds;
  const char * const *probe_hosts;
  LbAutoconfigPorts probe_ports;
  const char *nameserver;
  const char *trusted_fingerprint;
} LbAutoconfigOptions;

void          lb_autoconfig_lookup_async  (const char                *address,
                                           const LbAutoconfigOptions *options,
                                           GCancellable              *cancellable,
                                           GAsyncReadyCallback        callback,
                                           gpointer                   user_data);
LbAutoconfig *lb_autoconfig_lookup_finish (GAsyncResult              *result,
                                           GError                   **error);

void          lb_autoconfig_probe_async   (const char                *address,
                                           const LbAutoconfigOptions *options,
                                           GCancellable              *cancellable,
                                           GAsyncReadyCallback        callback,
                                           gpointer                   user_data);
LbAutoconfig *lb_autoconfig_probe_finish  (GAsyncResult              *result,
                                           GError                   **error);

void          lb_autoconfig_srv_async     (const char                *address,
                                           const LbAutoconfigOptions *options,
                                           GCancellable              *cancellable,
                                           GAsyncReadyCallback        callback,
                                           gpointer                   user_data);
LbAutoconfig *lb_autoconfig_srv_finish    (GAsyncResult              *result,
                                           GError                   **error);

void          lb_autoconfig_discover_async (const char                *address,
                                            const LbAutoconfigOptions *options,
                                            GCancellable              *cancellable,
                                            GAsyncReadyCallback        callback,
                                            gpointer                   user_data);
LbAutoconfig *lb_autoconfig_discover_finish (GAsyncResult             *result,
                                             GError                  **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbAutoconfig, lb_autoconfig_free)

G_END_DECLS
