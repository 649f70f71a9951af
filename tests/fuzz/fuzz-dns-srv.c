/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-dns-srv.h"

/* libFuzzer target for the DNS SRV response reader: the input is read as the response
 * to each of the names lb-autoconfig asks for, with the ID it carries (so that the ID
 * check lets it through). A result holds records with a host-name target or ".", an
 * error is an LB_DNS_ERROR in UTF-8, never both. The query builder gets the input as a
 * name; a query it builds, turned into a response, reads back as no records. */

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static const char *const names[] = {
  "_imaps._tcp.example.test",
  "_submissions._tcp.example.test",
  "_submission._tcp.example.test",
  "_pop3s._tcp.example.test",
  "_imap._tcp.example.test",
};

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  guint16 id = size >= 2 ? (guint16) ((data[0] << 8) | data[1]) : 0;
  char *name;
  GBytes *query;

  for (guint n = 0; n < G_N_ELEMENTS (names); n++)
    {
      GError *error = NULL;
      GPtrArray *records = lb_dns_srv_parse (data, size, names[n], id, &error);

      if (records != NULL)
        {
          g_assert_null (error);
          for (guint i = 0; i < records->len; i++)
            {
              LbDnsSrvRecord *r = g_ptr_array_index (records, i);

              g_assert_nonnull (r->target);
              g_assert_true (r->target[0] != '\0');
              g_assert_null (strchr (r->target, '\\'));
            }
          g_ptr_array_unref (records);
        }
      else
        {
          g_assert_nonnull (error);
          g_assert_true (error->domain == LB_DNS_ERROR);
          g_assert_true (g_utf8_validate (error->message, -1, NULL));
          g_error_free (error);
        }
    }

  name = g_strndup ((const char *) data, MIN (size, 300));
  query = lb_dns_srv_query_new (name, 0x4242, NULL);
  if (query != NULL)
    {
      gsize len;
      guint8 *copy = g_bytes_unref_to_data (query, &len);
      GPtrArray *records;
      GError *error = NULL;

      copy[2] |= 0x80;
      records = lb_dns_srv_parse (copy, len, name, 0x4242, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (records->len, ==, 0);
      g_ptr_array_unref (records);
      g_free (copy);
    }
  g_free (name);
  return 0;
}
