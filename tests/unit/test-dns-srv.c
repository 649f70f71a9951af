/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lb-dns-srv.h"

/* The pure DNS SRV query and response code (accounts/lb-dns-srv.c): the query's exact
 * bytes, responses dnsmasq sent (tests/fuzz/corpus/dns-srv), compression, aliases, every
 * kind of broken or foreign message, every prefix of a good one, random mutations, and
 * the fuzz corpus replayed. */

#define IMAPS "_imaps._tcp.example.test"

/* ---- building messages ---------------------------------------------------------------- */

static void
put16 (GByteArray *m,
       guint       v)
{
  guint8 b[2] = { v >> 8, v & 0xff };

  g_byte_array_append (m, b, 2);
}

static void
put32 (GByteArray *m,
       guint32     v)
{
  put16 (m, v >> 16);
  put16 (m, v & 0xffff);
}

static void
put_name (GByteArray *m,
          const char *name)
{
  g_auto(GStrv) labels = g_strsplit (name, ".", -1);

  for (guint i = 0; labels[i] != NULL; i++)
    {
      guint8 len = strlen (labels[i]);

      if (len == 0)
        continue;
      g_byte_array_append (m, &len, 1);
      g_byte_array_append (m, (const guint8 *) labels[i], len);
    }
  g_byte_array_append (m, (const guint8 *) "", 1);
}

static GByteArray *
response (guint16     id,
          guint       flags,
          guint       ancount,
          const char *qname)
{
  GByteArray *m = g_byte_array_new ();

  put16 (m, id);
  put16 (m, flags);
  put16 (m, 1);
  put16 (m, ancount);
  put16 (m, 0);
  put16 (m, 0);
  put_name (m, qname);
  put16 (m, 33);
  put16 (m, 1);
  return m;
}

/* An RR header with the owner as a pointer to the question's name (offset 12). */
static void
put_rr (GByteArray *m,
        guint       type,
        guint       rdlength)
{
  put16 (m, 0xC00C);
  put16 (m, type);
  put16 (m, 1);
  put32 (m, 300);
  put16 (m, rdlength);
}

static void
put_srv (GByteArray *m,
         guint       priority,
         guint       weight,
         guint       port,
         const char *target)
{
  g_autoptr(GByteArray) name = g_byte_array_new ();

  put_name (name, target);
  put_rr (m, 33, 6 + name->len);
  put16 (m, priority);
  put16 (m, weight);
  put16 (m, port);
  g_byte_array_append (m, name->data, name->len);
}

static GPtrArray *
parse (GByteArray  *m,
       const char  *name,
       guint16      id,
       GError     **error)
{
  return lb_dns_srv_parse (m->data, m->len, name, id, error);
}

static void
expect_error (GByteArray *m,
              const char *name,
              guint16     id,
              int         code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = parse (m, name, id, &error);

  g_assert_null (records);
  g_assert_error (error, LB_DNS_ERROR, code);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_test_message ("%s", error->message);
}

static LbDnsSrvRecord *
record (GPtrArray *records,
        guint      i)
{
  g_assert_cmpuint (i, <, records->len);
  return g_ptr_array_index (records, i);
}

static GBytes *
corpus_file (const char *name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "dns-srv",
                                                 name, NULL);
  g_autoptr(GError) error = NULL;
  char *data = NULL;
  gsize len = 0;

  g_file_get_contents (path, &data, &len, &error);
  g_assert_no_error (error);
  return g_bytes_new_take (data, len);
}

static GPtrArray *
parse_bytes (GBytes     *bytes,
             const char *name,
             guint16     id,
             GError    **error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  return lb_dns_srv_parse (data, len, name, id, error);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_query (void)
{
  /* As Python's struct writes it: header (RD, one question, one additional), the name,
   * SRV IN, and the EDNS(0) OPT record announcing 4096 bytes. */
  static const guint8 expected[] = {
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x06, '_', 'i', 'm', 'a', 'p', 's', 0x04, '_', 't', 'c', 'p',
    0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x04, 't', 'e', 's', 't', 0x00,
    0x00, 0x21, 0x00, 0x01,
    0x00, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  };
  const char *bad[] = { "", ".", "..", "a..b", ".a", "a b", "caf\xc3\xa9.test", "a\\b",
                        "a/b" };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) query = lb_dns_srv_query_new (IMAPS, 0x1234, &error);
  g_autoptr(GBytes) dotted = lb_dns_srv_query_new (IMAPS ".", 0x1234, &error);
  g_autofree char *label63 = g_strnfill (63, 'a');
  g_autofree char *label64 = g_strnfill (64, 'a');
  g_autofree char *ok = g_strdup_printf ("%s.%s.%s.%.61s", label63, label63, label63, label63);
  g_autofree char *long_name = g_strdup_printf ("%s.%s.%s.%.62s", label63, label63, label63,
                                                label63);
  g_autoptr(GBytes) max = NULL;

  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (query, NULL), g_bytes_get_size (query), expected,
                   sizeof expected);
  g_assert_true (g_bytes_equal (query, dotted));

  /* 255 octets on the wire at most (RFC 1035 §2.3.4), 63 per label. */
  max = lb_dns_srv_query_new (ok, 1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (max);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GBytes) q = lb_dns_srv_query_new (bad[i], 1, &error);

      g_assert_null (q);
      g_assert_error (error, LB_DNS_ERROR, LB_DNS_ERROR_NAME);
      g_clear_error (&error);
    }
  {
    g_autoptr(GBytes) q = lb_dns_srv_query_new (long_name, 1, &error);

    g_assert_error (error, LB_DNS_ERROR, LB_DNS_ERROR_NAME);
    g_clear_error (&error);
  }
  {
    g_autoptr(GBytes) q = lb_dns_srv_query_new (label64, 1, &error);

    g_assert_error (error, LB_DNS_ERROR, LB_DNS_ERROR_NAME);
    g_clear_error (&error);
  }
}

static void
test_dnsmasq (void)
{
  g_autoptr(GError) error = NULL;

  /* Two records, in the server's order (sorting them is the caller's business). */
  {
    g_autoptr(GBytes) b = corpus_file ("dnsmasq-imaps.bin");
    g_autoptr(GPtrArray) r = parse_bytes (b, IMAPS, 0x1234, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (r->len, ==, 2);
    g_assert_cmpstr (record (r, 0)->target, ==, "imap2.example.test");
    g_assert_cmpuint (record (r, 0)->priority, ==, 10);
    g_assert_cmpuint (record (r, 0)->weight, ==, 5);
    g_assert_cmpuint (record (r, 0)->port, ==, 993);
    g_assert_cmpstr (record (r, 1)->target, ==, "imap.example.test");
    g_assert_cmpuint (record (r, 1)->priority, ==, 0);
    g_assert_cmpuint (record (r, 1)->weight, ==, 1);
  }
  /* No target: the root, "not offered". */
  {
    g_autoptr(GBytes) b = corpus_file ("dnsmasq-submissions.bin");
    g_autoptr(GPtrArray) r = parse_bytes (b, "_submissions._tcp.example.test", 0x1235, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (r->len, ==, 1);
    g_assert_cmpstr (record (r, 0)->target, ==, ".");
  }
  {
    g_autoptr(GBytes) b = corpus_file ("dnsmasq-submission.bin");
    g_autoptr(GPtrArray) r = parse_bytes (b, "_submission._tcp.EXAMPLE.test.", 0x1236, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (r->len, ==, 1);
    g_assert_cmpstr (record (r, 0)->target, ==, "127.0.0.2");
    g_assert_cmpuint (record (r, 0)->port, ==, 587);
  }
  /* Through a CNAME to another name's SRV record. */
  {
    g_autoptr(GBytes) b = corpus_file ("dnsmasq-pop3s.bin");
    g_autoptr(GPtrArray) r = parse_bytes (b, "_pop3s._tcp.example.test", 0x1237, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (r->len, ==, 1);
    g_assert_cmpstr (record (r, 0)->target, ==, "pop.example.test");
    g_assert_cmpuint (record (r, 0)->port, ==, 995);
  }
  /* NXDOMAIN: nothing, not an error. */
  {
    g_autoptr(GBytes) b = corpus_file ("dnsmasq-imap.bin");
    g_autoptr(GPtrArray) r = parse_bytes (b, "_imap._tcp.example.test", 0x1238, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (r->len, ==, 0);
  }
}

static void
test_compression (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GByteArray) m = response (7, 0x8180, 3, IMAPS);
  g_autoptr(GPtrArray) r = NULL;
  const guint8 mail_example[] = { 4, 'm', 'a', 'i', 'l', 0xC0, 12 + 7 + 5 };
  const guint8 same[] = { 0xC0, 12 + 7 + 5 };

  /* A target that ends in a pointer into the question ("example.test"), one that is only
   * a pointer, and one written out; owners are pointers to the question. */
  put_rr (m, 33, 6 + sizeof mail_example);
  put16 (m, 0);
  put16 (m, 0);
  put16 (m, 993);
  g_byte_array_append (m, mail_example, sizeof mail_example);
  put_rr (m, 33, 6 + sizeof same);
  put16 (m, 1);
  put16 (m, 0);
  put16 (m, 993);
  g_byte_array_append (m, same, sizeof same);
  put_srv (m, 2, 0, 143, "Imap.Example.TEST");
  r = parse (m, IMAPS, 7, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (r->len, ==, 3);
  g_assert_cmpstr (record (r, 0)->target, ==, "mail.example.test");
  g_assert_cmpstr (record (r, 1)->target, ==, "example.test");
  g_assert_cmpstr (record (r, 2)->target, ==, "Imap.Example.TEST");
}

static void
test_filtered (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GByteArray) m = response (9, 0x8180, 6, IMAPS);
  g_autoptr(GPtrArray) r = NULL;
  const guint8 odd_target[] = { 3, 'a', '.', 'b', 4, 't', 'e', 's', 't', 0 };
  const guint8 nul_target[] = { 3, 'a', 0, 'b', 0 };
  const guint8 other_owner[] = { 5, 'o', 't', 'h', 'e', 'r', 0 };

  /* A label with a dot in it, one with a NUL: no host names, left out. */
  put_rr (m, 33, 6 + sizeof odd_target);
  put16 (m, 0);
  put16 (m, 0);
  put16 (m, 1);
  g_byte_array_append (m, odd_target, sizeof odd_target);
  put_rr (m, 33, 6 + sizeof nul_target);
  put16 (m, 0);
  put16 (m, 0);
  put16 (m, 2);
  g_byte_array_append (m, nul_target, sizeof nul_target);
  /* Another owner's SRV record: left out. */
  g_byte_array_append (m, other_owner, sizeof other_owner);
  put16 (m, 33);
  put16 (m, 1);
  put32 (m, 1);
  put16 (m, 6 + 3);
  put16 (m, 0);
  put16 (m, 0);
  put16 (m, 3);
  put_name (m, "x");
  /* Records of other types and classes are skipped. */
  put_rr (m, 1, 4);
  put32 (m, 0x7f000001);
  put16 (m, 0xC00C);
  put16 (m, 33);
  put16 (m, 3);
  put32 (m, 0);
  put16 (m, 0);
  put_srv (m, 5, 6, 7, "good.example.test");
  r = parse (m, IMAPS, 9, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (r->len, ==, 1);
  g_assert_cmpstr (record (r, 0)->target, ==, "good.example.test");
  g_assert_cmpuint (record (r, 0)->priority, ==, 5);
  g_assert_cmpuint (record (r, 0)->weight, ==, 6);
  g_assert_cmpuint (record (r, 0)->port, ==, 7);
}

static void
test_aliases (void)
{
  g_autoptr(GError) error = NULL;

  /* Two CNAMEs that lead to each other: followed a bounded number of times, and the
   * reading ends. */
  {
    g_autoptr(GByteArray) m = response (3, 0x8180, 3, IMAPS);
    g_autoptr(GPtrArray) r = NULL;
    gsize b_offset;

    put_rr (m, 5, 3);
    b_offset = m->len;
    put_name (m, "b");
    put16 (m, 0xC000 | b_offset);
    put16 (m, 5);
    put16 (m, 1);
    put32 (m, 0);
    put16 (m, 2);
    put16 (m, 0xC00C);
    put_srv (m, 0, 0, 993, "loop.example.test");
    r = parse (m, IMAPS, 3, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (r->len, <=, 1);
  }
  /* A CNAME to a name whose record is there; the record of the name asked for is not
   * (RFC 1034 §3.6.2: an alias has no other data). */
  {
    g_autoptr(GByteArray) m = response (4, 0x8180, 3, IMAPS);
    g_autoptr(GPtrArray) r = NULL;
    gsize target_offset;

    put_srv (m, 0, 0, 1, "stale.example.test");
    put_rr (m, 5, 14);
    target_offset = m->len;
    put_name (m, "real.example");
    g_assert_cmpuint (m->len - target_offset, ==, 14);
    put16 (m, 0xC000 | target_offset);
    put16 (m, 33);
    put16 (m, 1);
    put32 (m, 0);
    put16 (m, 6 + 2);
    put16 (m, 3);
    put16 (m, 4);
    put16 (m, 995);
    put16 (m, 0xC000 | target_offset);
    r = parse (m, IMAPS, 4, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (r->len, ==, 1);
    g_assert_cmpstr (record (r, 0)->target, ==, "real.example");
    g_assert_cmpuint (record (r, 0)->port, ==, 995);
  }
}

static void
test_errors (void)
{
  GByteArray *m;

  /* Shorter than a header. */
  m = g_byte_array_new ();
  expect_error (m, IMAPS, 0, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);

  /* Not ours: another ID, a query, another opcode, another name or type. */
  m = response (1, 0x8180, 0, IMAPS);
  expect_error (m, IMAPS, 2, LB_DNS_ERROR_MISMATCH);
  g_byte_array_unref (m);
  m = response (1, 0x0100, 0, IMAPS);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MISMATCH);
  g_byte_array_unref (m);
  m = response (1, 0x8180 | (2 << 11), 0, IMAPS);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MISMATCH);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 0, "_imap._tcp.example.test");
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MISMATCH);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 0, IMAPS);
  m->data[m->len - 3] = 1; /* type A */
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MISMATCH);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 0, IMAPS);
  m->data[5] = 2; /* two questions */
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MISMATCH);
  g_byte_array_unref (m);

  /* Truncated, server errors with and without the question. */
  m = response (1, 0x8380, 0, IMAPS);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_TRUNCATED);
  g_byte_array_unref (m);
  m = response (1, 0x8182, 0, IMAPS);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_SERVER);
  g_byte_array_unref (m);
  m = response (1, 0x8185, 0, IMAPS);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_SERVER);
  g_byte_array_unref (m);
  m = response (1, 0x818b, 0, IMAPS);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_SERVER);
  g_byte_array_unref (m);
  m = response (1, 0x8181, 0, IMAPS);
  g_byte_array_set_size (m, 12);
  m->data[5] = 0;
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_SERVER);
  g_byte_array_unref (m);

  /* Names: a pointer to itself, a pointer forward, a label type of RFC 6891, a pointer
   * cut in half, a name longer than 255 octets. */
  m = response (1, 0x8180, 1, IMAPS);
  put16 (m, 0xC000 | m->len);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  put16 (m, 0xC000 | (m->len + 2));
  put_name (m, "x");
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  g_byte_array_append (m, (const guint8 *) "\x41\x00", 2);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  g_byte_array_append (m, (const guint8 *) "\xC0", 1);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  for (guint i = 0; i < 130; i++)
    g_byte_array_append (m, (const guint8 *) "\x01x", 2);
  g_byte_array_append (m, (const guint8 *) "", 1);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  /* A chain of pointers, each one back, is fine until the name gets too long: 200
   * labels of one letter, each followed by a pointer to the one before, inside the data
   * of a record of an unknown type; the next record's owner points to the last. */
  m = response (1, 0x8180, 2, IMAPS);
  put_rr (m, 99, 200 * 4);
  {
    gsize previous = 12;

    for (guint i = 0; i < 200; i++)
      {
        gsize here = m->len;

        g_byte_array_append (m, (const guint8 *) "\x01y", 2);
        put16 (m, 0xC000 | previous);
        previous = here;
      }
    put16 (m, 0xC000 | previous);
  }
  put16 (m, 33);
  put16 (m, 1);
  put32 (m, 0);
  put16 (m, 0);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);

  /* Records: more announced than present, data past the end, SRV data too short, a
   * target longer or shorter than the record. */
  m = response (1, 0x8180, 2, IMAPS);
  put_srv (m, 0, 0, 1, "a.test");
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  put_rr (m, 33, 100);
  put16 (m, 0);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  put_rr (m, 33, 6);
  put16 (m, 0);
  put16 (m, 0);
  put16 (m, 1);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  put_rr (m, 33, 6 + 3);
  put16 (m, 0);
  put16 (m, 0);
  put16 (m, 1);
  put_name (m, "ab");
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  put_rr (m, 33, 6 + 5);
  put16 (m, 0);
  put16 (m, 0);
  put16 (m, 1);
  put_name (m, "ab");
  put16 (m, 0);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
  m = response (1, 0x8180, 1, IMAPS);
  put_rr (m, 5, 3);
  put_name (m, "ab");
  put16 (m, 0);
  expect_error (m, IMAPS, 1, LB_DNS_ERROR_MALFORMED);
  g_byte_array_unref (m);
}

static void
test_prefixes (void)
{
  const char *files[] = { "dnsmasq-imaps.bin", "dnsmasq-pop3s.bin", "compressed-target.bin" };
  const char *names[] = { IMAPS, "_pop3s._tcp.example.test", IMAPS };

  /* Every message cut short anywhere before its answers end is an error, never a
   * crash (the OPT record at the end of dnsmasq's is not read: cuts there are fine). */
  for (guint f = 0; f < G_N_ELEMENTS (files); f++)
    {
      g_autoptr(GBytes) b = corpus_file (files[f]);
      gsize len;
      const guint8 *data = g_bytes_get_data (b, &len);
      guint16 id = (guint16) ((data[0] << 8) | data[1]);
      gsize answers_end = 0;

      for (gsize cut = len; cut > 0; cut--)
        {
          g_autoptr(GError) error = NULL;
          g_autofree guint8 *copy = g_memdup2 (data, cut - 1);
          g_autoptr(GPtrArray) r = lb_dns_srv_parse (copy, cut - 1, names[f], id, &error);

          g_assert_true ((r == NULL) != (error == NULL));
          if (r != NULL)
            {
              g_assert_cmpuint (answers_end, ==, 0);
              continue;
            }
          if (answers_end == 0)
            answers_end = cut;
          g_assert_error (error, LB_DNS_ERROR, LB_DNS_ERROR_MALFORMED);
        }
      g_assert_cmpuint (answers_end, >, 12);
    }
}

static void
test_random (void)
{
  g_autoptr(GBytes) seed = corpus_file ("dnsmasq-imaps.bin");
  gsize len;
  const guint8 *data = g_bytes_get_data (seed, &len);
  g_autoptr(GRand) rand = g_rand_new_with_seed (6186);

  /* Mutations of a good response, and noise: a result or an error, never both. */
  for (guint i = 0; i < 20000; i++)
    {
      g_autofree guint8 *copy = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) r = NULL;
      gsize size;

      if (i % 4 == 0)
        {
          size = g_rand_int_range (rand, 0, 600);
          copy = g_malloc (MAX (size, 1));
          for (gsize j = 0; j < size; j++)
            copy[j] = g_rand_int_range (rand, 0, 256);
        }
      else
        {
          size = len;
          copy = g_memdup2 (data, len);
          for (guint j = g_rand_int_range (rand, 1, 6); j > 0; j--)
            copy[g_rand_int_range (rand, 2, len)] = g_rand_int_range (rand, 0, 256);
        }
      r = lb_dns_srv_parse (copy, size, IMAPS, 0x1234, &error);
      g_assert_true ((r == NULL) != (error == NULL));
      if (error != NULL)
        g_assert_true (error->domain == LB_DNS_ERROR);
      for (guint j = 0; r != NULL && j < r->len; j++)
        g_assert_null (strchr (record (r, j)->target, '\\'));
    }
}

static void
test_corpus (void)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "dns-srv",
                                                 NULL);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autoptr(GBytes) b = corpus_file (name);
      gsize len;
      const guint8 *data = g_bytes_get_data (b, &len);
      guint16 id = len >= 2 ? (guint16) ((data[0] << 8) | data[1]) : 0;
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) r = lb_dns_srv_parse (data, len, IMAPS, id, &error);

      g_assert_true ((r == NULL) != (error == NULL));
      n++;
    }
  g_assert_cmpuint (n, >, 5);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dns-srv/query", test_query);
  g_test_add_func ("/dns-srv/dnsmasq", test_dnsmasq);
  g_test_add_func ("/dns-srv/compression", test_compression);
  g_test_add_func ("/dns-srv/filtered", test_filtered);
  g_test_add_func ("/dns-srv/aliases", test_aliases);
  g_test_add_func ("/dns-srv/errors", test_errors);
  g_test_add_func ("/dns-srv/prefixes", test_prefixes);
  g_test_add_func ("/dns-srv/random", test_random);
  g_test_add_func ("/dns-srv/corpus", test_corpus);
  return g_test_run ();
}
