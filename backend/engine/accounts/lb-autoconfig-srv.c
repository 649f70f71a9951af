/* SPDX-License-Identifier: GPL-3.0-or-later */
/* RFC 6186 SRV records for an e-mail address's domain: asked of the system's resolver
 * (GResolver) or, for tests and local setups, of a given DNS server over UDP with the
 * pure query and response code of lb-dns-srv.c. The servers they name are then checked
 * for a greeting, as the probe does (lb-autoconfig.c). */
#define G_LOG_DOMAIN "lb-accounts"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-autoconfig-private.h"
#include "lb-dns-srv.h"

/* A lost datagram is sent again after this long, until the step's timeout. */
#define RESEND_MS 1000
/* Whatever a server sends, a datagram is never cut short on reading. */
#define RECEIVE_BUFFER 65536

/* RFC 6186 §3.1–3.3, and RFC 8314 §5.1 for _submissions. A service without the "s" is
 * reached in clear and upgraded with STARTTLS, which the sessions then require
 * (LB_NET_SECURITY_STARTTLS): no SRV record ever gives a server without TLS. Within a
 * protocol the implicit-TLS service comes first: RFC 8314 §3 prefers it. */
static const struct
{
  const char *service;
  LbAccountProtocol protocol;
  LbNetSecurity security;
} services[] = {
  { "imaps", LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_TLS },
  { "imap", LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_STARTTLS },
  { "pop3s", LB_ACCOUNT_PROTOCOL_POP3, LB_NET_SECURITY_TLS },
  { "pop3", LB_ACCOUNT_PROTOCOL_POP3, LB_NET_SECURITY_STARTTLS },
  { "submissions", LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_TLS },
  { "submission", LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_STARTTLS },
};
#define N_SERVICES G_N_ELEMENTS (services)

/* "ADDRESS", "ADDRESS:PORT", "[IPv6]:PORT" with an IP address: no name to resolve. */
static GSocketAddress *
parse_nameserver (const char  *text,
                  GError     **error)
{
  g_autofree char *host = NULL;
  g_autoptr(GInetAddress) address = NULL;
  const char *port_text = NULL;
  guint64 port = 53;

  if (text[0] == '[')
    {
      const char *close = strchr (text, ']');

      if (close == NULL || (close[1] != '\0' && close[1] != ':'))
        goto bad;
      host = g_strndup (text + 1, close - text - 1);
      if (close[1] == ':')
        port_text = close + 2;
    }
  else
    {
      const char *colon = strchr (text, ':');

      /* More than one colon: an IPv6 address without a port. */
      if (colon != NULL && strchr (colon + 1, ':') == NULL)
        {
          host = g_strndup (text, colon - text);
          port_text = colon + 1;
        }
      else
        host = g_strdup (text);
    }
  if (port_text != NULL && !g_ascii_string_to_unsigned (port_text, 10, 1, 65535, &port, NULL))
    goto bad;
  address = g_inet_address_new_from_string (host);
  if (address == NULL)
    goto bad;
  return g_inet_socket_address_new (address, (guint16) port);

bad:
  g_set_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_OPTION,
               _("The nameserver “%s” is not an IP address with an optional port "
                 "(ADDRESS:PORT)"), text);
  return NULL;
}

/* ---- one query over UDP ---------------------------------------------------------------- */

typedef struct
{
  GSocket *socket;
  GBytes *query;
  char *name;
  char *server;
  guint16 id;
  guint timeout;
  guint8 *buffer;
  GSource *read_source;
  GSource *resend_source;
  GSource *timeout_source;
} UdpQuery;

static void
udp_query_stop (UdpQuery *q)
{
  GSource **sources[] = { &q->read_source, &q->resend_source, &q->timeout_source };

  for (guint i = 0; i < G_N_ELEMENTS (sources); i++)
    if (*sources[i] != NULL)
      {
        g_source_destroy (*sources[i]);
        g_clear_pointer (sources[i], g_source_unref);
      }
  if (q->socket != NULL)
    g_socket_close (q->socket, NULL);
}

static void
udp_query_free (UdpQuery *q)
{
  udp_query_stop (q);
  g_clear_object (&q->socket);
  g_clear_pointer (&q->query, g_bytes_unref);
  g_free (q->name);
  g_free (q->server);
  g_free (q->buffer);
  g_free (q);
}

/* Completes the query, once: with @records or with @error (taken). */
static void
udp_query_complete (GTask     *task,
                    GPtrArray *records,
                    GError    *error)
{
  udp_query_stop (g_task_get_task_data (task));
  if (records != NULL)
    g_task_return_pointer (task, records, (GDestroyNotify) g_ptr_array_unref);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

static gboolean
udp_readable_cb (GSocket      *socket,
                 GIOCondition  condition,
                 gpointer      user_data)
{
  GTask *task = user_data;
  UdpQuery *q = g_task_get_task_data (task);
  GError *error = NULL;

  if (g_cancellable_set_error_if_cancelled (g_task_get_cancellable (task), &error))
    {
      udp_query_complete (task, NULL, error);
      return G_SOURCE_REMOVE;
    }
  for (;;)
    {
      gssize n = g_socket_receive (socket, (char *) q->buffer, RECEIVE_BUFFER, NULL, &error);
      GPtrArray *records;

      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_clear_error (&error);
              return G_SOURCE_CONTINUE;
            }
          g_prefix_error (&error, _("The DNS server %s: "), q->server);
          udp_query_complete (task, NULL, error);
          return G_SOURCE_REMOVE;
        }
      records = lb_dns_srv_parse (q->buffer, (gsize) n, q->name, q->id, &error);
      if (records == NULL && g_error_matches (error, LB_DNS_ERROR, LB_DNS_ERROR_MISMATCH))
        {
          /* A late answer to an earlier query, or noise: wait for ours. */
          g_debug ("DNS: ignoring a message from %s: %s", q->server, error->message);
          g_clear_error (&error);
          continue;
        }
      udp_query_complete (task, records, error);
      return G_SOURCE_REMOVE;
    }
}

static gboolean
udp_resend_cb (gpointer user_data)
{
  UdpQuery *q = g_task_get_task_data (user_data);
  g_autoptr(GError) error = NULL;

  if (g_socket_send (q->socket, g_bytes_get_data (q->query, NULL), g_bytes_get_size (q->query),
                     NULL, &error) < 0)
    g_debug ("DNS: sending the query for %s again: %s", q->name, error->message);
  return G_SOURCE_CONTINUE;
}

static gboolean
udp_timeout_cb (gpointer user_data)
{
  GTask *task = user_data;
  UdpQuery *q = g_task_get_task_data (task);

  udp_query_complete (task, NULL,
                      g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                   _("The DNS server %s did not answer for %s within %u s"),
                                   q->server, q->name, q->timeout));
  return G_SOURCE_REMOVE;
}

/* Asks @server for @name's SRV records over UDP, again every second until @timeout
 * seconds have passed. The result is a GPtrArray of LbDnsSrvRecord. */
static void
udp_query_async (GSocketAddress      *server,
                 const char          *name,
                 guint                timeout,
                 GCancellable        *cancellable,
                 GAsyncReadyCallback  callback,
                 gpointer             user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  UdpQuery *q = g_new0 (UdpQuery, 1);
  GError *error = NULL;

  g_task_set_source_tag (task, udp_query_async);
  g_task_set_task_data (task, q, (GDestroyNotify) udp_query_free);
  q->name = g_strdup (name);
  q->server = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (server));
  q->timeout = timeout;
  q->id = (guint16) g_random_int_range (0, 0x10000);
  q->buffer = g_malloc (RECEIVE_BUFFER);

  q->query = lb_dns_srv_query_new (name, q->id, &error);
  if (q->query == NULL)
    goto fail;
  q->socket = g_socket_new (g_socket_address_get_family (server), G_SOCKET_TYPE_DATAGRAM,
                            G_SOCKET_PROTOCOL_UDP, &error);
  if (q->socket == NULL)
    goto fail;
  g_socket_set_blocking (q->socket, FALSE);
  /* Connected, so that the kernel passes on only the server's datagrams and reports an
   * ICMP "port unreachable" as a refused connection at once. The source port is the
   * kernel's random choice. */
  if (!g_socket_connect (q->socket, server, NULL, &error) ||
      g_socket_send (q->socket, g_bytes_get_data (q->query, NULL), g_bytes_get_size (q->query),
                     NULL, &error) < 0)
    {
      g_prefix_error (&error, _("The DNS server %s: "), q->server);
      goto fail;
    }

  q->read_source = g_socket_create_source (q->socket, G_IO_IN, cancellable);
  g_task_attach_source (task, q->read_source, G_SOURCE_FUNC (udp_readable_cb));
  q->resend_source = g_timeout_source_new (RESEND_MS);
  g_task_attach_source (task, q->resend_source, udp_resend_cb);
  q->timeout_source = g_timeout_source_new (timeout * 1000);
  g_task_attach_source (task, q->timeout_source, udp_timeout_cb);
  return;

fail:
  udp_query_complete (task, NULL, error);
}

static GPtrArray *
udp_query_finish (GAsyncResult  *result,
                  GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- the SRV step ------------------------------------------------------------------------ */

typedef struct
{
  LbAutoconfigOpts options;
  char *address;
  char *domain;
  GSocketAddress *nameserver;    /* NULL: the system's resolver */
  guint pending;
  GList *targets[N_SERVICES];    /* GSrvTarget, in the order to try them (RFC 2782) */
  char *last_problem;
} Srv;

static void
srv_free (Srv *s)
{
  lb_autoconfig_opts_clear (&s->options);
  g_free (s->address);
  g_free (s->domain);
  g_clear_object (&s->nameserver);
  for (guint i = 0; i < N_SERVICES; i++)
    g_list_free_full (s->targets[i], (GDestroyNotify) g_srv_target_free);
  g_free (s->last_problem);
  g_free (s);
}

typedef struct
{
  GTask *task;
  guint service;
} SrvLookup;

/* The lowest priority among @protocol's records; G_MAXUINT without any. */
static guint
best_priority (Srv               *s,
               LbAccountProtocol  protocol)
{
  guint best = G_MAXUINT;

  for (guint i = 0; i < N_SERVICES; i++)
    if (services[i].protocol == protocol)
      for (GList *l = s->targets[i]; l != NULL; l = l->next)
        best = MIN (best, g_srv_target_get_priority (l->data));
  return best;
}

static void
srv_verify_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  LbAutoconfig *config = lb_autoconfig_verify_finish (result, &error);

  if (config != NULL)
    g_task_return_pointer (task, config, (GDestroyNotify) lb_autoconfig_free);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

static void
srv_all_done (GTask *task)
{
  Srv *s = g_task_get_task_data (task);
  g_autoptr(GPtrArray) candidates = NULL;
  g_autofree char *failure = NULL;
  LbAccountProtocol order[3];

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  /* Between IMAP and POP3 the lower priority wins (RFC 6186 §3.4), IMAP on a tie; within a
   * protocol the implicit-TLS service goes first, each service's targets in RFC 2782
   * order. The check keeps the first that answers per protocol. */
  order[0] = LB_ACCOUNT_PROTOCOL_IMAP;
  order[1] = LB_ACCOUNT_PROTOCOL_POP3;
  order[2] = LB_ACCOUNT_PROTOCOL_SMTP;
  if (best_priority (s, LB_ACCOUNT_PROTOCOL_POP3) < best_priority (s, LB_ACCOUNT_PROTOCOL_IMAP))
    {
      order[0] = LB_ACCOUNT_PROTOCOL_POP3;
      order[1] = LB_ACCOUNT_PROTOCOL_IMAP;
    }
  candidates = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_autoconfig_candidate_free);
  for (guint o = 0; o < G_N_ELEMENTS (order); o++)
    for (guint i = 0; i < N_SERVICES; i++)
      {
        if (services[i].protocol != order[o])
          continue;
        for (GList *l = s->targets[i]; l != NULL; l = l->next)
          g_ptr_array_add (candidates,
                           lb_autoconfig_candidate_new (services[i].protocol,
                                                        services[i].security,
                                                        g_srv_target_get_hostname (l->data),
                                                        g_srv_target_get_port (l->data)));
      }

  if (candidates->len == 0)
    {
      if (s->last_problem != NULL)
        g_task_return_new_error (task, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND,
                                 _("No SRV records for mail services were found for %s (%s)"),
                                 s->domain, s->last_problem);
      else
        g_task_return_new_error (task, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND,
                                 _("%s has no SRV records for mail services"), s->domain);
      g_object_unref (task);
      return;
    }
  failure = g_strdup_printf (_("None of the servers named by the SRV records of %s answered"),
                             s->domain);
  lb_autoconfig_verify_async (s->address, &s->options, g_steal_pointer (&candidates),
                              LB_AUTOCONFIG_METHOD_SRV, "dns-srv",
                              LB_AUTOCONFIG_ERROR_UNREACHABLE, failure,
                              g_task_get_cancellable (task), srv_verify_cb, task);
}

/* One service's answer: @targets sorted (taken), or @error (taken). */
static void
srv_lookup_done (SrvLookup *lookup,
                 GList     *targets,
                 GError    *error)
{
  GTask *task = lookup->task;
  Srv *s = g_task_get_task_data (task);
  const char *service = services[lookup->service].service;

  if (error != NULL)
    {
      if (g_error_matches (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND))
        g_debug ("autoconfig: no _%s._tcp.%s", service, s->domain);
      else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_debug ("autoconfig: _%s._tcp.%s: %s", service, s->domain, error->message);
          g_free (s->last_problem);
          s->last_problem = g_strdup_printf ("_%s._tcp.%s: %s", service, s->domain,
                                             error->message);
        }
      g_error_free (error);
    }
  s->targets[lookup->service] = targets;
  g_free (lookup);
  if (--s->pending == 0)
    srv_all_done (task);
}

/* Without "." (RFC 2782: "decidedly not available"; alone it is the whole answer, among
 * other records it means nothing). */
static GList *
usable_targets (GList *targets)
{
  GList *l = targets;

  while (l != NULL)
    {
      GList *next = l->next;
      const char *host = g_srv_target_get_hostname (l->data);

      if (host[0] == '\0' || strcmp (host, ".") == 0)
        {
          g_srv_target_free (l->data);
          targets = g_list_delete_link (targets, l);
        }
      l = next;
    }
  return targets;
}

static void
resolver_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GError *error = NULL;
  GList *targets = g_resolver_lookup_service_finish (G_RESOLVER (source), result, &error);

  /* GResolver has sorted them (g_srv_target_list_sort()). */
  srv_lookup_done (user_data, usable_targets (targets), error);
}

static void
udp_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  GError *error = NULL;
  g_autoptr(GPtrArray) records = udp_query_finish (result, &error);
  GList *targets = NULL;

  if (records != NULL)
    {
      for (guint i = 0; i < records->len; i++)
        {
          LbDnsSrvRecord *r = g_ptr_array_index (records, i);

          targets = g_list_prepend (targets, g_srv_target_new (r->target, r->port, r->priority,
                                                               r->weight));
        }
      targets = g_srv_target_list_sort (usable_targets (g_list_reverse (targets)));
    }
  srv_lookup_done (user_data, targets, error);
}

/**
 * lb_autoconfig_srv_async:
 * @address: the user's e-mail address
 * @options: (nullable): #LbAutoconfigOptions.nameserver, .ca_file, .trusted_fingerprint
 *   and .timeout_seconds apply
 *
 * Looks up the RFC 6186 SRV records of the address's domain, all at once:
 * `_imaps._tcp`, `_imap._tcp`, `_pop3s._tcp`, `_pop3._tcp`, `_submissions._tcp` (RFC 8314)
 * and `_submission._tcp`, through the system's resolver, or with
 * @options->nameserver by asking that server over UDP. A target of "." says the service
 * is not offered. The servers are then tried as the probe tries its guesses — TLS
 * verified, only the greeting read, nothing sent — in this order: between IMAP and POP3
 * the one with the lower priority (RFC 6186 §3.4, IMAP on a tie), within a protocol the
 * implicit-TLS service first (RFC 8314), and each service's targets by priority and
 * weight (RFC 2782). The first server that answers per protocol is kept, the user being
 * the whole address. A service without TLS ("imap", "pop3", "submission") is returned as
 * STARTTLS, which the sessions require: never a server without TLS.
 *
 * The records are not authenticated (no DNSSEC here): RFC 6186 §6 asks that a target
 * outside the address's domain be shown to the user before it is used; that is the
 * caller's part (letterbox-ctl names such targets).
 */
void
lb_autoconfig_srv_async (const char                *address,
                         const LbAutoconfigOptions *options,
                         GCancellable              *cancellable,
                         GAsyncReadyCallback        callback,
                         gpointer                   user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Srv *s = g_new0 (Srv, 1);
  g_autoptr(GResolver) resolver = NULL;
  GError *error = NULL;

  g_task_set_source_tag (task, lb_autoconfig_srv_async);
  g_task_set_task_data (task, s, (GDestroyNotify) srv_free);
  lb_autoconfig_opts_init (&s->options, options);
  s->address = g_strdup (address);

  if (!lb_autoconfig_split_address (address, NULL, &s->domain, &error) ||
      (s->options.nameserver != NULL &&
       (s->nameserver = parse_nameserver (s->options.nameserver, &error)) == NULL))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  if (s->nameserver == NULL)
    resolver = g_resolver_get_default ();
  s->pending = N_SERVICES;
  for (guint i = 0; i < N_SERVICES; i++)
    {
      SrvLookup *lookup = g_new0 (SrvLookup, 1);

      lookup->task = task;
      lookup->service = i;
      if (resolver != NULL)
        g_resolver_lookup_service_async (resolver, services[i].service, "tcp", s->domain,
                                         cancellable, resolver_cb, lookup);
      else
        {
          g_autofree char *name = g_strdup_printf ("_%s._tcp.%s", services[i].service,
                                                   s->domain);

          udp_query_async (s->nameserver, name, s->options.timeout, cancellable, udp_cb,
                           lookup);
        }
    }
}

/**
 * lb_autoconfig_srv_finish:
 *
 * Returns: (transfer full): the servers that answered (#LbAutoconfig.method
 *   #LB_AUTOCONFIG_METHOD_SRV, .source "dns-srv"), or %NULL with
 *   #LB_AUTOCONFIG_ERROR_NOT_FOUND (no usable record; the message names the last DNS
 *   problem), #LB_AUTOCONFIG_ERROR_UNREACHABLE (records, but no server answered),
 *   #LB_AUTOCONFIG_ERROR_ADDRESS, #LB_AUTOCONFIG_ERROR_OPTION (the nameserver), an error
 *   about the CA file, or #G_IO_ERROR_CANCELLED
 */
LbAutoconfig *
lb_autoconfig_srv_finish (GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
