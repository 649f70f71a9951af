/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The pure part of asking a given DNS server for SRV records (RFC 6186 through RFC 2782):
 * the query, and the response read as RFC 1035 §4 lays it out. No I/O; fuzzed. The
 * client that sends it is in lb-autoconfig-srv.c. */
#define G_LOG_DOMAIN "lb-accounts"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-dns-srv.h"

G_DEFINE_QUARK (lb-dns-error-quark, lb_dns_error)

#define HEADER_SIZE 12
#define FLAG_QR 0x8000
#define FLAG_TC 0x0200
#define FLAG_RD 0x0100
#define RCODE_NXDOMAIN 3
#define TYPE_CNAME 5
#define TYPE_SRV 33
#define TYPE_OPT 41
#define CLASS_IN 1
/* RFC 1035 §2.3.4 */
#define MAX_NAME 255
#define MAX_LABEL 63
/* A chain of aliases longer than this is a loop or an abuse. */
#define MAX_CNAMES 8

void
lb_dns_srv_record_free (LbDnsSrvRecord *record)
{
  if (record == NULL)
    return;
  g_free (record->target);
  g_free (record);
}

static gboolean
is_name_char (guchar c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '_';
}

/* @name without one trailing dot; NULL if that leaves nothing. */
static char *
normalize_name (const char *name)
{
  gsize len = strlen (name);

  if (len > 0 && name[len - 1] == '.')
    len--;
  return len > 0 ? g_strndup (name, len) : NULL;
}

/**
 * lb_dns_srv_query_new:
 * @name: the SRV owner name, such as "_imaps._tcp.example.org" (a final dot is allowed)
 * @id: the message ID, which the response must repeat; pick it at random
 *
 * A standard query (RFC 1035 §4.1) for the SRV records (type 33, class IN) of @name,
 * recursion desired, with an EDNS(0) OPT record (RFC 6891 §6) announcing
 * #LB_DNS_MAX_MESSAGE bytes of UDP payload, so that a long answer is not truncated.
 *
 * Returns: (transfer full): the message, or %NULL with #LB_DNS_ERROR_NAME
 */
GBytes *
lb_dns_srv_query_new (const char  *name,
                      guint16      id,
                      GError     **error)
{
  const guint8 header[HEADER_SIZE] = {
    id >> 8, id & 0xff, FLAG_RD >> 8, FLAG_RD & 0xff,
    0, 1, /* QDCOUNT */
    0, 0, /* ANCOUNT */
    0, 0, /* NSCOUNT */
    0, 1, /* ARCOUNT: the OPT record */
  };
  const guint8 question_tail[4] = { 0, TYPE_SRV, 0, CLASS_IN };
  const guint8 opt[11] = {
    0,                                                 /* the root name */
    0, TYPE_OPT,
    LB_DNS_MAX_MESSAGE >> 8, LB_DNS_MAX_MESSAGE & 0xff, /* "class": the payload size */
    0, 0, 0, 0,                                        /* extended RCODE, version, flags */
    0, 0,                                              /* no options */
  };
  g_autofree char *normalized = NULL;
  g_auto(GStrv) labels = NULL;
  g_autoptr(GByteArray) message = NULL;
  gsize wire = 1;

  g_return_val_if_fail (name != NULL, NULL);

  normalized = normalize_name (name);
  if (normalized == NULL)
    goto bad;
  labels = g_strsplit (normalized, ".", -1);
  for (guint i = 0; labels[i] != NULL; i++)
    {
      gsize len = strlen (labels[i]);

      if (len == 0 || len > MAX_LABEL)
        goto bad;
      for (gsize j = 0; j < len; j++)
        if (!is_name_char (labels[i][j]))
          goto bad;
      wire += len + 1;
    }
  if (wire > MAX_NAME)
    goto bad;

  message = g_byte_array_sized_new (HEADER_SIZE + wire + sizeof question_tail + sizeof opt);
  g_byte_array_append (message, header, sizeof header);
  for (guint i = 0; labels[i] != NULL; i++)
    {
      guint8 len = strlen (labels[i]);

      g_byte_array_append (message, &len, 1);
      g_byte_array_append (message, (const guint8 *) labels[i], len);
    }
  g_byte_array_append (message, (const guint8 *) "", 1);
  g_byte_array_append (message, question_tail, sizeof question_tail);
  g_byte_array_append (message, opt, sizeof opt);
  return g_byte_array_free_to_bytes (g_steal_pointer (&message));

bad:
  g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_NAME,
               _("“%s” is not a name that can be looked up in the DNS"), name);
  return NULL;
}

typedef struct
{
  const guint8 *data;
  gsize length;
} Message;

static gboolean
malformed (GError    **error,
           const char *what)
{
  g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_MALFORMED,
               _("The DNS response is malformed: %s"), what);
  return FALSE;
}

static gboolean
has (const Message *m,
     gsize          offset,
     gsize          count)
{
  return offset <= m->length && m->length - offset >= count;
}

static guint16
get16 (const Message *m,
       gsize          offset)
{
  return (guint16) ((m->data[offset] << 8) | m->data[offset + 1]);
}

/* Reads the name at *offset (RFC 1035 §4.1.4: labels ending in a zero octet or in a
 * pointer to an earlier name), writes it to @out in presentation form (RFC 1035 §5.1:
 * octets other than letters, digits, '-' and '_' as \DDD; the root as ".") and moves
 * *offset past it. Every pointer must lead before the labels read so far, so reading
 * always ends. */
static gboolean
read_name (const Message *m,
           gsize         *offset,
           GString       *out,
           GError       **error)
{
  gsize pos = *offset;
  gsize run_start = pos;
  gsize end = 0;
  gboolean jumped = FALSE;
  gsize wire = 1;

  g_string_truncate (out, 0);
  for (;;)
    {
      guint8 len;

      if (!has (m, pos, 1))
        return malformed (error, _("a name runs past the end"));
      len = m->data[pos];
      if ((len & 0xC0) == 0xC0)
        {
          gsize target;

          if (!has (m, pos, 2))
            return malformed (error, _("a name runs past the end"));
          target = ((gsize) (len & 0x3F) << 8) | m->data[pos + 1];
          if (target >= run_start)
            return malformed (error, _("a compressed name does not point back"));
          if (!jumped)
            end = pos + 2;
          jumped = TRUE;
          pos = run_start = target;
          continue;
        }
      if ((len & 0xC0) != 0)
        return malformed (error, _("a label of an unknown type"));
      if (len == 0)
        {
          if (!jumped)
            end = pos + 1;
          break;
        }
      wire += len + 1;
      if (wire > MAX_NAME)
        return malformed (error, _("a name longer than 255 octets"));
      if (!has (m, pos + 1, len))
        return malformed (error, _("a name runs past the end"));
      if (out->len > 0)
        g_string_append_c (out, '.');
      for (gsize i = 0; i < len; i++)
        {
          guchar c = m->data[pos + 1 + i];

          if (is_name_char (c))
            g_string_append_c (out, c);
          else
            g_string_append_printf (out, "\\%03u", c);
        }
      pos += 1 + len;
    }
  if (out->len == 0)
    g_string_assign (out, ".");
  *offset = end;
  return TRUE;
}

static const char *
rcode_name (guint rcode)
{
  switch (rcode)
    {
    case 1:
      return "FORMERR";
    case 2:
      return "SERVFAIL";
    case 4:
      return "NOTIMP";
    case 5:
      return "REFUSED";
    default:
      return NULL;
    }
}

static void
set_server_error (GError     **error,
                  guint        rcode,
                  const char  *name)
{
  const char *text = rcode_name (rcode);

  if (text != NULL)
    g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_SERVER,
                 _("The DNS server answered %s for %s"), text, name);
  else
    g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_SERVER,
                 _("The DNS server answered with error %u for %s"), rcode, name);
}

/* A host name a connection can be made to: only letters, digits, '-', '_' and dots (no
 * \DDD escapes), no empty label. */
static gboolean
is_host_name (const char *name)
{
  char prev = '.';

  for (const char *p = name; *p != '\0'; p++)
    {
      if (*p == '.' ? prev == '.' : !is_name_char (*p))
        return FALSE;
      prev = *p;
    }
  return prev != '.';
}

typedef struct
{
  char *owner;
  char *target;
} Alias;

static void
alias_free (Alias *alias)
{
  g_free (alias->owner);
  g_free (alias->target);
  g_free (alias);
}

/**
 * lb_dns_srv_parse:
 * @data: (array length=length): a response as received
 * @name: the name asked for with lb_dns_srv_query_new()
 * @id: the query's ID
 *
 * Reads the header, the question and the answer section (RFC 1035 §4.1) of a response to
 * the query for @name's SRV records. Names may be compressed (§4.1.4), the target too,
 * although RFC 2782 says it should not be. An answer may go through CNAME records
 * (RFC 1034 §3.6.2): SRV records are kept when they belong to @name or to the name its
 * aliases lead to; others, and targets that are no host name, are left out. The
 * authority and additional sections are not read.
 *
 * Returns: (transfer full) (element-type LbDnsSrvRecord): the records in the order of the
 *   response, empty when the name does not exist (NXDOMAIN) or has no SRV record; or
 *   %NULL with an #LB_DNS_ERROR: MISMATCH when the message is not the answer to this
 *   query (wrong ID, not a response, another question), TRUNCATED, SERVER for an error
 *   code, MALFORMED
 */
GPtrArray *
lb_dns_srv_parse (const guint8  *data,
                  gsize          length,
                  const char    *name,
                  guint16        id,
                  GError       **error)
{
  Message m = { data, length };
  g_autofree char *qname = NULL;
  g_autoptr(GString) owner = g_string_new (NULL);
  g_autoptr(GString) target = g_string_new (NULL);
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func (
    (GDestroyNotify) lb_dns_srv_record_free);
  g_autoptr(GPtrArray) owners = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) aliases = g_ptr_array_new_with_free_func ((GDestroyNotify) alias_free);
  GPtrArray *result;
  const char *current;
  guint16 flags, qdcount, ancount;
  guint rcode;
  gsize pos;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  qname = normalize_name (name);
  if (qname == NULL)
    qname = g_strdup (".");

  if (length < HEADER_SIZE)
    {
      g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_MALFORMED,
                   _("The DNS response is %u bytes long, shorter than its header"),
                   (guint) length);
      return NULL;
    }
  flags = get16 (&m, 2);
  if (get16 (&m, 0) != id || (flags & FLAG_QR) == 0 || ((flags >> 11) & 0xF) != 0)
    {
      g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_MISMATCH,
                   _("The DNS message is not the response to the query for %s"), qname);
      return NULL;
    }
  rcode = flags & 0xF;
  qdcount = get16 (&m, 4);
  ancount = get16 (&m, 6);
  if ((flags & FLAG_TC) != 0)
    {
      g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_TRUNCATED,
                   _("The DNS server's answer for %s was truncated"), qname);
      return NULL;
    }
  /* An error response need not repeat the question (RFC 6891 §7 for FORMERR). */
  if (qdcount == 0 && rcode != 0 && rcode != RCODE_NXDOMAIN)
    {
      set_server_error (error, rcode, qname);
      return NULL;
    }
  if (qdcount != 1)
    {
      g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_MISMATCH,
                   _("The DNS response has %u questions, not the one asked"), qdcount);
      return NULL;
    }

  pos = HEADER_SIZE;
  if (!read_name (&m, &pos, owner, error))
    return NULL;
  if (!has (&m, pos, 4))
    {
      malformed (error, _("the question is cut short"));
      return NULL;
    }
  if (g_ascii_strcasecmp (owner->str, qname) != 0 || get16 (&m, pos) != TYPE_SRV ||
      get16 (&m, pos + 2) != CLASS_IN)
    {
      g_set_error (error, LB_DNS_ERROR, LB_DNS_ERROR_MISMATCH,
                   _("The DNS response answers another question than the one for %s"),
                   qname);
      return NULL;
    }
  pos += 4;
  if (rcode == RCODE_NXDOMAIN)
    return g_steal_pointer (&records);
  if (rcode != 0)
    {
      set_server_error (error, rcode, qname);
      return NULL;
    }

  for (guint i = 0; i < ancount; i++)
    {
      guint16 type, klass, rdlength;
      gsize rdata, rdata_end, p;

      if (!read_name (&m, &pos, owner, error))
        return NULL;
      if (!has (&m, pos, 10))
        {
          malformed (error, _("a record is cut short"));
          return NULL;
        }
      type = get16 (&m, pos);
      klass = get16 (&m, pos + 2);
      rdlength = get16 (&m, pos + 8);
      rdata = pos + 10;
      if (!has (&m, rdata, rdlength))
        {
          malformed (error, _("a record's data runs past the end"));
          return NULL;
        }
      rdata_end = rdata + rdlength;
      p = rdata;
      if (klass == CLASS_IN && type == TYPE_CNAME)
        {
          Alias *alias;

          if (!read_name (&m, &p, target, error))
            return NULL;
          if (p != rdata_end)
            {
              malformed (error, _("a CNAME record's length does not match its name"));
              return NULL;
            }
          alias = g_new0 (Alias, 1);
          alias->owner = g_strdup (owner->str);
          alias->target = g_strdup (target->str);
          g_ptr_array_add (aliases, alias);
        }
      else if (klass == CLASS_IN && type == TYPE_SRV)
        {
          LbDnsSrvRecord *record;

          if (rdlength < 7)
            {
              malformed (error, _("an SRV record is too short"));
              return NULL;
            }
          p = rdata + 6;
          if (!read_name (&m, &p, target, error))
            return NULL;
          if (p != rdata_end)
            {
              malformed (error, _("an SRV record's length does not match its target"));
              return NULL;
            }
          record = g_new0 (LbDnsSrvRecord, 1);
          record->priority = get16 (&m, rdata);
          record->weight = get16 (&m, rdata + 2);
          record->port = get16 (&m, rdata + 4);
          record->target = g_strdup (target->str);
          g_ptr_array_add (records, record);
          g_ptr_array_add (owners, g_strdup (owner->str));
        }
      pos = rdata_end;
    }

  /* Follow the aliases from the name asked for (RFC 1034 §3.6.2). */
  current = qname;
  for (guint hops = 0; hops < MAX_CNAMES; hops++)
    {
      const char *next = NULL;

      for (guint i = 0; i < aliases->len && next == NULL; i++)
        {
          Alias *alias = g_ptr_array_index (aliases, i);

          if (g_ascii_strcasecmp (alias->owner, current) == 0)
            next = alias->target;
        }
      if (next == NULL)
        break;
      current = next;
    }

  result = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_dns_srv_record_free);
  for (guint i = 0; i < records->len; i++)
    {
      LbDnsSrvRecord *record = g_ptr_array_index (records, i);

      if (g_ascii_strcasecmp (g_ptr_array_index (owners, i), current) != 0)
        continue;
      if (strcmp (record->target, ".") != 0 && !is_host_name (record->target))
        {
          g_debug ("DNS: SRV target %s of %s is not a host name", record->target, qname);
          continue;
        }
      g_ptr_array_add (result, g_steal_pointer (&records->pdata[i]));
    }
  return result;
}
