/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* Shared by lb-autoconfig.c (files, probe, discover) and lb-autoconfig-srv.c (SRV). */

#include "lb-autoconfig.h"

G_BEGIN_DECLS

/* LbAutoconfigOptions as a running step keeps them: copied, defaults filled in. */
typedef struct
{
  gboolean allow_insecure;
  char *base_url_override;
  char *ca_file;
  guint timeout;
  GStrv probe_hosts;
  LbAutoconfigPorts probe_ports;
  char *nameserver;
  char *trusted_fingerprint;
} LbAutoconfigOpts;

void lb_autoconfig_opts_init   (LbAutoconfigOpts          *opts,
                                const LbAutoconfigOptions *from);
void lb_autoconfig_opts_clear  (LbAutoconfigOpts          *opts);
void lb_autoconfig_opts_view   (const LbAutoconfigOpts    *opts,
                                LbAutoconfigOptions       *view);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (LbAutoconfigOpts, lb_autoconfig_opts_clear)

/* A server to check for a greeting. */
typedef struct
{
  LbAccountProtocol protocol;
  LbNetSecurity security;
  char *host;
  guint16 port;
} LbAutoconfigCandidate;

LbAutoconfigCandidate *lb_autoconfig_candidate_new  (LbAccountProtocol      protocol,
                                                     LbNetSecurity          security,
                                                     const char            *host,
                                                     guint16                port);
void                   lb_autoconfig_candidate_free (LbAutoconfigCandidate *candidate);

/* Connects to @candidates in turn (TLS verified with the options' CA file or
 * fingerprint, else the system's trust store), reads the greeting and closes; the first
 * candidate that answers per protocol is kept. When none does: @error_code with
 * "@failure (the last problem)". */
void          lb_autoconfig_verify_async  (const char             *address,
                                           const LbAutoconfigOpts *opts,
                                           GPtrArray              *candidates,
                                           LbAutoconfigMethod      method,
                                           const char             *source,
                                           LbAutoconfigError       error_code,
                                           const char             *failure,
                                           GCancellable           *cancellable,
                                           GAsyncReadyCallback     callback,
                                           gpointer                user_data);
LbAutoconfig *lb_autoconfig_verify_finish (GAsyncResult           *result,
                                           GError                **error);

G_END_DECLS
