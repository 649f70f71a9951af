/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LB_DNS_ERROR (lb_dns_error_quark ())

/**
 * LbDnsError:
 * @LB_DNS_ERROR_NAME: the name cannot be asked for (an empty label, a label over 63
 *   octets, more than 255 octets, a character a service or host name cannot have)
 * @LB_DNS_ERROR_MALFORMED: the response is not a well-formed DNS message (RFC 1035 §4):
 *   cut short, a name pointer that loops or points forward, a record past the end
 * @LB_DNS_ERROR_MISMATCH: a well-formed message that is not the answer to this query
 *   (another ID, not a response, another question); a client waits on for the right one
 * @LB_DNS_ERROR_TRUNCATED: the server set TC: the answer did not fit
 * @LB_DNS_ERROR_SERVER: the server answered with an error (SERVFAIL, REFUSED…)
 */
typedef enum
{
  LB_DNS_ERROR_NAME,
  LB_DNS_ERROR_MALFORMED,
  LB_DNS_ERROR_MISMATCH,
  LB_DNS_ERROR_TRUNCATED,
  LB_DNS_ERROR_SERVER,
} LbDnsError;

GQuark lb_dns_error_quark (void);

/** The largest response read: the EDNS(0) payload size the query announces. */
#define LB_DNS_MAX_MESSAGE 4096

/**
 * LbDnsSrvRecord:
 * @priority: lower is tried first (RFC 2782)
 * @weight: relative weight among records of the same priority
 * @port: the service's port
 * @target: the host name without the final dot, or "." for the root: "the service is
 *   decidedly not available at this domain" (RFC 2782)
 */
typedef struct
{
  guint16 priority;
  guint16 weight;
  guint16 port;
  char *target;
} LbDnsSrvRecord;

void       lb_dns_srv_record_free (LbDnsSrvRecord *record);

GBytes    *lb_dns_srv_query_new   (const char     *name,
                                   guint16         id,
                                   GError        **error);
GPtrArray *lb_dns_srv_parse       (const guint8   *data,
                                   gsize           length,
                                   const char     *name,
                                   guint16         id,
                                   GError        **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbDnsSrvRecord, lb_dns_srv_record_free)

G_END_DECLS
