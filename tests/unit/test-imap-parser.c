/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-imap-parser.h"

/*
 * The IMAP response parser on real server output (Dovecot transcripts, the examples of
 * RFC 3501 and RFC 9051), on every split of the input, and on hostile input: huge
 * literal counts, deep nesting, truncated and over-long lines, NUL bytes.
 */

/* Parses @input whole; returns each response printed, one per line. */
static char *
parse_all (const char  *input,
           gsize        len,
           GError     **error)
{
  g_autoptr(LbImapParser) parser = lb_imap_parser_new (NULL);
  g_autoptr(GString) out = g_string_new (NULL);
  LbImapResponse *r;

  if (!lb_imap_parser_feed (parser, (const guint8 *) input, len, error))
    return NULL;
  while ((r = lb_imap_parser_pop (parser)) != NULL)
    {
      g_autofree char *s = lb_imap_response_to_string (r);

      g_string_append_printf (out, "%s\n", s);
      lb_imap_response_free (r);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static LbImapResponse *
parse_one (const char *input)
{
  g_autoptr(LbImapParser) parser = lb_imap_parser_new (NULL);
  g_autoptr(GError) error = NULL;
  LbImapResponse *r;

  lb_imap_parser_feed (parser, (const guint8 *) input, strlen (input), &error);
  g_assert_no_error (error);
  r = lb_imap_parser_pop (parser);
  g_assert_nonnull (r);
  g_assert_null (lb_imap_parser_pop (parser));
  g_assert_true (lb_imap_parser_is_idle (parser));
  return r;
}

static void
assert_parses_to (const char *input,
                  const char *expected)
{
  g_autoptr(LbImapResponse) r = parse_one (input);
  g_autofree char *s = lb_imap_response_to_string (r);

  g_assert_cmpstr (s, ==, expected);
}

static void
assert_fails (const char *input,
              gsize       len,
              int         code)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = parse_all (input, len, &error);

  g_assert_null (out);
  g_assert_error (error, LB_IMAP_PARSE_ERROR, code);
}

static void
test_greeting_and_status (void)
{
  assert_parses_to ("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
                    "STARTTLS LOGINDISABLED] Dovecot (Debian) ready.\r\n",
                    "* OK [CAPABILITY (IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
                    "STARTTLS LOGINDISABLED)] text=\"Dovecot (Debian) ready.\"");
  assert_parses_to ("a1 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n",
                    "tag=a1 OK [READ-WRITE] text=\"Select completed (0.001 + 0.000 secs).\"");
  assert_parses_to ("a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
                    "tag=a2 NO [AUTHENTICATIONFAILED] text=\"Authentication failed.\"");
  assert_parses_to ("a3 BAD Error in IMAP command received by server.\r\n",
                    "tag=a3 BAD text=\"Error in IMAP command received by server.\"");
  assert_parses_to ("* PREAUTH IMAP4rev2 server logged in as Smith\r\n",
                    "* PREAUTH text=\"IMAP4rev2 server logged in as Smith\"");
  assert_parses_to ("* BYE Logging out\r\n", "* BYE text=\"Logging out\"");
  assert_parses_to ("* OK [ALERT] System shutdown in 10 minutes\r\n",
                    "* OK [ALERT] text=\"System shutdown in 10 minutes\"");
  /* No text at all after the status, as some servers send it. */
  assert_parses_to ("a4 OK\r\n", "tag=a4 OK text=\"\"");
  /* Bare LF line ends are tolerated. */
  assert_parses_to ("a5 OK done\n", "tag=a5 OK text=\"done\"");
}

static void
test_select_responses (void)
{
  assert_parses_to ("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n",
                    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)");
  assert_parses_to ("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
                    "Flags permitted.\r\n",
                    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
                    "text=\"Flags permitted.\"");
  assert_parses_to ("* 172 EXISTS\r\n", "* 172 EXISTS");
  assert_parses_to ("* 1 RECENT\r\n", "* 1 RECENT");
  assert_parses_to ("* 44 EXPUNGE\r\n", "* 44 EXPUNGE");
  assert_parses_to ("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
                    "* OK [UIDVALIDITY n=3857529045] text=\"UIDs valid\"");
  assert_parses_to ("* OK [UIDNEXT 4392] Predicted next UID\r\n",
                    "* OK [UIDNEXT n=4392] text=\"Predicted next UID\"");
  assert_parses_to ("* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
                    "* OK [HIGHESTMODSEQ n=715194045007] text=\"Highest\"");
  assert_parses_to ("* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n",
                    "* OK [NOMODSEQ] text=\"Sorry, this mailbox format doesn't support "
                    "modsequences\"");
  assert_parses_to ("* OK [CLOSED] Previous mailbox closed.\r\n",
                    "* OK [CLOSED] text=\"Previous mailbox closed.\"");
  assert_parses_to ("d OK [MODIFIED 7,9] Conditional STORE failed\r\n",
                    "tag=d OK [MODIFIED set=7,9] text=\"Conditional STORE failed\"");
  assert_parses_to ("A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
                    "tag=A003 OK [APPENDUID n=38505 set=3955] text=\"APPEND completed\"");
  assert_parses_to ("A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
                    "tag=A004 OK [COPYUID n=38505 set=304,319:320 set2=3956:3958] text=\"Done\"");
  /* A known code with arguments that do not fit is kept raw, not an error. */
  assert_parses_to ("a OK [UIDNEXT soon] odd\r\n", "tag=a OK [UIDNEXT raw=\"soon\"] text=\"odd\"");
  assert_parses_to ("a OK [X-UNKNOWN-CODE 1 (2 3)] fine\r\n",
                    "tag=a OK [X-UNKNOWN-CODE raw=\"1 (2 3)\"] text=\"fine\"");
}

static void
test_list (void)
{
  g_autoptr(LbImapResponse) literal_name = NULL;

  assert_parses_to ("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n",
                    "* LIST (\\HasNoChildren \\Sent) delim=/ \"Sent\"");
  assert_parses_to ("* LIST (\\Noselect) NIL \"\"\r\n", "* LIST (\\Noselect) delim=NIL \"\"");
  assert_parses_to ("* LIST () \".\" \"INBOX.&AMQ-rger\"\r\n",
                    "* LIST () delim=. \"INBOX.&AMQ-rger\"");
  assert_parses_to ("* LIST () \"\\\\\" \"a \\\"quoted\\\" \\\\ name\"\r\n",
                    "* LIST () delim=\\ \"a \\\"quoted\\\" \\\\ name\"");
  assert_parses_to ("* LIST (\\Subscribed) \"/\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\") "
                    "\"OLDNAME\" (\"Bar\"))\r\n",
                    "* LIST (\\Subscribed) delim=/ \"Foo\" oldname=\"Bar\" childinfo=SUBSCRIBED");
  assert_parses_to ("* LSUB () \"/\" Archive/2024\r\n", "* LSUB () delim=/ \"Archive/2024\"");
  assert_parses_to ("* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 1700000000 UNSEEN 1 "
                    "HIGHESTMODSEQ 7)\r\n",
                    "* STATUS \"INBOX\" present=157 messages=3 recent=0 uidnext=4 "
                    "uidvalidity=1700000000 unseen=1 deleted=0 size=0 highestmodseq=7");

  literal_name = parse_one ("* LIST (\\HasChildren) \"/\" {10}\r\nWith \"Odd\"\r\n");
  g_assert_cmpint (literal_name->data, ==, LB_IMAP_DATA_LIST);
  g_assert_cmpstr (literal_name->list->mailbox, ==, "With \"Odd\"");
  g_assert_cmpuint (literal_name->list->mailbox_len, ==, 10);
}

static void
test_search (void)
{
  assert_parses_to ("* SEARCH 2 84 882\r\n", "* SEARCH 2 84 882");
  assert_parses_to ("* SEARCH\r\n", "* SEARCH");
  assert_parses_to ("* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n",
                    "* SEARCH 2 5 6 7 11 12 18 19 20 23 modseq=917162500");
  assert_parses_to ("* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n",
                    "* ESEARCH tag=\"A285\" UID min=7 max=3800");
  assert_parses_to ("* ESEARCH (TAG \"A5\") UID COUNT 4 ALL 2,10:11,90 MODSEQ 12\r\n",
                    "* ESEARCH tag=\"A5\" UID count=4 modseq=12 all=2,10:11,90");
  assert_parses_to ("* ESEARCH (TAG \"A6\")\r\n", "* ESEARCH tag=\"A6\"");
  assert_parses_to ("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n",
                    "* VANISHED (EARLIER) 41,43:116,118,120:211,214:540");
  assert_parses_to ("* VANISHED 405,407,410,425\r\n", "* VANISHED 405,407,410,425");
}

static void
test_session_data (void)
{
  assert_parses_to ("* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT THREAD=REFERENCES "
                    "CONDSTORE QRESYNC COMPRESS=DEFLATE\r\n",
                    "* CAPABILITY (IMAP4rev1 SASL-IR ID ENABLE IDLE SORT THREAD=REFERENCES "
                    "CONDSTORE QRESYNC COMPRESS=DEFLATE)");
  assert_parses_to ("* ENABLED CONDSTORE QRESYNC\r\n", "* ENABLED (CONDSTORE QRESYNC)");
  assert_parses_to ("* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) NIL\r\n",
                    "* NAMESPACE ((\"\" /)) ((\"~\" /)) NIL");
  assert_parses_to ("* NAMESPACE ((\"INBOX.\" \".\" \"X-PARAM\" (\"FLAG1\"))) NIL NIL\r\n",
                    "* NAMESPACE ((\"INBOX.\" .)) NIL NIL");
  assert_parses_to ("* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n",
                    "* ID (\"name\" \"Dovecot\" \"version\" NIL)");
  assert_parses_to ("* ID NIL\r\n", "* ID ()");
  assert_parses_to ("+ idling\r\n", "+ \"idling\"");
  assert_parses_to ("+ \r\n", "+ \"\"");
  assert_parses_to ("+\r\n", "+ \"\"");
  assert_parses_to ("+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHeceP2CWY0SR0fAQAgAAQEBAQ=\r\n",
                    "+ \"YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHeceP2CWY0SR0fAQAgAAQEBAQ=\"");
  assert_parses_to ("* XFOO 1 (a \"b\" NIL) c\r\n", "* OTHER XFOO (1 (a \"b\" NIL) c)");
  assert_parses_to ("* 3 XBAR extra\r\n", "* OTHER XBAR n=3 (extra)");
}

static void
test_fetch_rfc3501 (void)
{
  /* RFC 3501 §8, the FETCH example. */
  assert_parses_to (
    "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 "
    "ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and "
    "minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" "
    "\"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL "
    "\"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John "
    "Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\") "
    "BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n",
    "* 12 FETCH flags=(\\Seen) internaldate=\"17-Jul-1996 02:44:25 -0700\" size=4286 "
    "envelope=(date=\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" subject=\"IMAP4rev1 WG mtg "
    "summary and minutes\" from=((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
    "sender=((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) reply-to=((\"Terry Gray\" NIL "
    "\"gray\" \"cac.washington.edu\")) to=((NIL NIL \"imap\" \"cac.washington.edu\")) cc=((NIL NIL "
    "\"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) bcc=NIL "
    "in-reply-to=NIL message-id=\"<B27397-0100000@cac.washington.edu>\") body=(text/plain "
    "params=(\"CHARSET\" \"US-ASCII\") id=NIL desc=NIL enc=\"7BIT\" size=3028 lines=92 md5=NIL "
    "disposition=NIL NIL lang=NIL loc=NIL)");
}

static void
test_fetch_bodystructure (void)
{
  g_autoptr(LbImapResponse) r = NULL;
  LbImapBody *body, *alt, *pdf, *msg;

  /* multipart/mixed (multipart/alternative (text/plain, text/html), application/pdf,
   * message/rfc822) with all the extension data Dovecot sends. */
  r = parse_one (
    "* 1 FETCH (UID 7 MODSEQ (12121231000) BODYSTRUCTURE (((\"text\" \"plain\" (\"charset\" "
    "\"utf-8\") NIL NIL \"quoted-printable\" 120 4 NIL NIL NIL NIL)(\"text\" \"html\" "
    "(\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 400 10 NIL NIL NIL NIL) "
    "\"alternative\" (\"boundary\" \"b1\") NIL NIL NIL)(\"application\" \"pdf\" (\"name\" "
    "\"r.pdf\") NIL NIL \"base64\" 5000 NIL (\"attachment\" (\"filename\" \"r.pdf\" \"size\" "
    "\"3700\")) NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 300 (\"Mon, 1 Jan 2024 "
    "00:00:00 +0000\" \"Inner\" ((\"A\" NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL NIL NIL) "
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 1 NIL NIL NIL NIL) 12 NIL "
    "(\"inline\" NIL) (\"en\" \"de\") \"http://example.org/x\" 42) \"mixed\" (\"boundary\" \"b0\") "
    "NIL NIL NIL) FLAGS (\\Seen $Junk))\r\n");

  g_assert_cmpint (r->data, ==, LB_IMAP_DATA_FETCH);
  g_assert_cmpuint (r->fetch->uid, ==, 7);
  g_assert_cmpuint (r->fetch->modseq, ==, 12121231000);
  g_assert_cmpuint (r->fetch->flags->len, ==, 2);
  body = r->fetch->body;
  g_assert_cmpstr (body->type, ==, "multipart");
  g_assert_cmpstr (body->subtype, ==, "mixed");
  g_assert_cmpstr (lb_imap_body_get_param (body, "BOUNDARY"), ==, "b0");
  g_assert_cmpuint (body->children->len, ==, 3);

  alt = g_ptr_array_index (body->children, 0);
  g_assert_cmpstr (alt->subtype, ==, "alternative");
  g_assert_cmpuint (alt->children->len, ==, 2);
  g_assert_cmpstr (((LbImapBody *) g_ptr_array_index (alt->children, 1))->subtype, ==, "html");
  g_assert_cmpuint (((LbImapBody *) g_ptr_array_index (alt->children, 0))->lines, ==, 4);

  pdf = g_ptr_array_index (body->children, 1);
  g_assert_cmpstr (pdf->type, ==, "application");
  g_assert_cmpuint (pdf->size, ==, 5000);
  g_assert_cmpstr (pdf->disposition, ==, "attachment");
  g_assert_cmpstr (g_ptr_array_index (pdf->disposition_params, 1), ==, "r.pdf");

  msg = g_ptr_array_index (body->children, 2);
  g_assert_cmpstr (msg->type, ==, "message");
  g_assert_cmpstr (msg->envelope->subject, ==, "Inner");
  g_assert_cmpstr (msg->message->subtype, ==, "plain");
  g_assert_cmpuint (msg->lines, ==, 12);
  g_assert_cmpstr (msg->disposition, ==, "inline");
  g_assert_cmpstr (msg->language, ==, "en");
  g_assert_cmpstr (msg->location, ==, "http://example.org/x");
}

static void
test_fetch_sections (void)
{
  g_autoptr(LbImapResponse) body = NULL;
  g_autoptr(LbImapResponse) binary = NULL;
  g_autoptr(LbImapResponse) header = NULL;
  LbImapSection *s;
  const char msg[] = "Subject: hi\r\n\r\nHello\r\n";
  g_autofree char *input = g_strdup_printf ("* 3 FETCH (UID 9 BODY[] {%zu}\r\n%s)\r\n",
                                            strlen (msg), msg);
  const char bin_input[] = "* 4 FETCH (BINARY[2] ~{5}\r\na\0b\0c UID 10)\r\n";

  body = parse_one (input);
  g_assert_cmpuint (body->fetch->uid, ==, 9);
  s = g_ptr_array_index (body->fetch->sections, 0);
  g_assert_cmpstr (s->name, ==, "BODY[]");
  g_assert_cmpint (s->value->kind, ==, LB_IMAP_VALUE_STRING);
  g_assert_true (s->value->literal);
  g_assert_cmpstr (s->value->str, ==, msg);

  /* literal8 may carry NUL bytes (RFC 3516). */
  {
    g_autoptr(LbImapParser) parser = lb_imap_parser_new (NULL);
    g_autoptr(GError) error = NULL;

    lb_imap_parser_feed (parser, (const guint8 *) bin_input, sizeof bin_input - 1, &error);
    g_assert_no_error (error);
    binary = lb_imap_parser_pop (parser);
  }
  s = g_ptr_array_index (binary->fetch->sections, 0);
  g_assert_cmpstr (s->name, ==, "BINARY[2]");
  g_assert_cmpuint (s->value->len, ==, 5);
  g_assert_cmpmem (s->value->str, 5, "a\0b\0c", 5);
  g_assert_cmpuint (binary->fetch->uid, ==, 10);

  assert_parses_to ("* 5 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {4}\r\nab\r\n BODY[]<0> "
                    "\"xy\" BODY[1.MIME] NIL)\r\n",
                    "* 5 FETCH BODY[HEADER.FIELDS (SUBJECT FROM)]=\"ab\r\n\" BODY[]<0>=\"xy\" "
                    "BODY[1.MIME]=NIL");
  header = parse_one ("* 6 FETCH (RFC822.HEADER \"a\" BINARY.SIZE[1] 77 X-GM-LABELS (\\Inbox) "
                      "PREVIEW \"Hi there\" EMAILID (M6d99ac3275bb4e))\r\n");
  g_assert_cmpuint (header->fetch->sections->len, ==, 1);
  g_assert_cmpstr (header->fetch->preview, ==, "Hi there");
  g_assert_cmpuint (header->fetch->other->len, ==, 6);
}

typedef struct
{
  guint begins, ends, aborts;
  guint32 seq;
  char *item;
  guint64 size;
  GByteArray *data;
  gboolean refuse_writes;
} Sink;

static gpointer
sink_begin (const LbImapLiteralInfo *info,
            gpointer                 user_data,
            GError                 **error)
{
  Sink *sink = user_data;

  sink->begins++;
  sink->seq = info->seq;
  g_free (sink->item);
  sink->item = g_strdup (info->item);
  sink->size = info->size;
  g_byte_array_set_size (sink->data, 0);
  return sink;
}

static gboolean
sink_write (gpointer      handle,
            const guint8 *data,
            gsize         len,
            gpointer      user_data,
            GError      **error)
{
  Sink *sink = user_data;

  if (sink->refuse_writes)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "disk full");
      return FALSE;
    }
  g_byte_array_append (sink->data, data, (guint) len);
  return TRUE;
}

static gboolean
sink_end (gpointer   handle,
          gpointer   user_data,
          GError   **error)
{
  ((Sink *) user_data)->ends++;
  return TRUE;
}

static void
sink_abort (gpointer handle,
            gpointer user_data)
{
  ((Sink *) user_data)->aborts++;
}

static const LbImapLiteralSink sink_funcs = { sink_begin, sink_write, sink_end, sink_abort };

static void
test_streaming (void)
{
  LbImapParserLimits limits;
  g_autoptr(LbImapParser) parser = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbImapResponse) r = NULL;
  g_autoptr(LbImapResponse) small = NULL;
  g_autoptr(GString) input = g_string_new (NULL);
  g_autofree char *message = NULL;
  Sink sink = { 0 };
  LbImapSection *s;
  gsize message_len = 3 * 1024 * 1024 + 17;

  lb_imap_parser_default_limits (&limits);
  limits.max_literal = 1024 * 1024; /* smaller than the message: it must be streamed */
  limits.stream_threshold = 4096;
  parser = lb_imap_parser_new (&limits);
  sink.data = g_byte_array_new ();
  lb_imap_parser_set_sink (parser, &sink_funcs, &sink);

  message = g_malloc (message_len);
  for (gsize i = 0; i < message_len; i++)
    message[i] = "abcdefghij\r\n"[i % 12];
  g_string_append_printf (input, "* 42 FETCH (BODY[] {%zu}\r\n", message_len);
  g_string_append_len (input, message, message_len);
  g_string_append (input, " UID 4711)\r\n* 43 FETCH (UID 4712 BODY[TEXT] {3}\r\nabc)\r\n");

  /* In uneven chunks, as a socket delivers them. */
  for (gsize off = 0; off < input->len;)
    {
      gsize n = MIN (input->len - off, 1 + (off * 7919) % 65521);

      lb_imap_parser_feed (parser, (const guint8 *) input->str + off, n, &error);
      g_assert_no_error (error);
      off += n;
    }

  r = lb_imap_parser_pop (parser);
  g_assert_nonnull (r);
  g_assert_cmpuint (sink.begins, ==, 1);
  g_assert_cmpuint (sink.ends, ==, 1);
  g_assert_cmpuint (sink.seq, ==, 42);
  g_assert_cmpstr (sink.item, ==, "BODY[]");
  g_assert_cmpuint (sink.size, ==, message_len);
  g_assert_cmpmem (sink.data->data, sink.data->len, message, message_len);
  s = g_ptr_array_index (r->fetch->sections, 0);
  g_assert_cmpint (s->value->kind, ==, LB_IMAP_VALUE_STREAMED);
  g_assert_cmpuint (s->value->number, ==, message_len);
  g_assert_cmpuint (r->fetch->uid, ==, 4711);

  /* Below the threshold a literal stays in the response. */
  small = lb_imap_parser_pop (parser);
  s = g_ptr_array_index (small->fetch->sections, 0);
  g_assert_cmpint (s->value->kind, ==, LB_IMAP_VALUE_STRING);
  g_assert_cmpuint (sink.begins, ==, 1);

  /* A sink that fails ends the parse with its reason. */
  {
    g_autoptr(LbImapParser) p2 = lb_imap_parser_new (&limits);
    g_autofree char *head = g_strdup_printf ("* 1 FETCH (BODY[] {%zu}\r\n", message_len);

    sink.refuse_writes = TRUE;
    lb_imap_parser_set_sink (p2, &sink_funcs, &sink);
    g_clear_error (&error);
    lb_imap_parser_feed (p2, (const guint8 *) head, strlen (head), &error);
    g_assert_no_error (error);
    lb_imap_parser_feed (p2, (const guint8 *) message, 10000, &error);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
    g_assert_cmpuint (sink.aborts, ==, 1);
  }

  g_byte_array_unref (sink.data);
  g_free (sink.item);
}

/* A transcript from Dovecot 2.3 for the incremental checks. */
static const char transcript[] =
  "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] "
  "Dovecot (Debian) ready.\r\n"
  "a1 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
  "THREAD=REFERENCES MULTIAPPEND UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED CONDSTORE "
  "QRESYNC ESEARCH LIST-STATUS BINARY MOVE SPECIAL-USE] Logged in\r\n"
  "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n"
  "* STATUS Drafts (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 1763780000 UNSEEN 0)\r\n"
  "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
  "* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 1763780000 UNSEEN 1)\r\n"
  "a2 OK List completed (0.001 + 0.000 secs).\r\n"
  "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
  "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
  "* 2 EXISTS\r\n"
  "* 0 RECENT\r\n"
  "* OK [UIDVALIDITY 1763780000] UIDs valid\r\n"
  "* OK [UIDNEXT 3] Predicted next UID\r\n"
  "* OK [HIGHESTMODSEQ 4] Highest\r\n"
  "a3 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n"
  "* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 25 BODY[] {25}\r\n"
  "Subject: a\r\n\r\n{3}\r\n)(\"\\\r\n"
  " MODSEQ (3))\r\n"
  "* 2 FETCH (UID 2 FLAGS () BODY[HEADER.FIELDS (SUBJECT)] {0}\r\n"
  " INTERNALDATE \"22-Nov-2026 02:09:29 +0000\")\r\n"
  "+ idling\r\n"
  "* 3 EXISTS\r\n"
  "* VANISHED (EARLIER) 1:2\r\n"
  "a4 OK Idle completed (0.001 + 1.234 secs).\r\n"
  "* BYE Logging out\r\n"
  "a5 OK Logout completed (0.001 + 0.000 secs).\r\n";

static void
test_any_split (void)
{
  g_autoptr(GError) error = NULL;
  gsize len = sizeof transcript - 1;
  g_autofree char *whole = parse_all (transcript, len, &error);

  g_assert_no_error (error);
  g_assert_nonnull (strstr (whole, "* 1 FETCH uid=1 flags=(\\Seen) size=25 modseq=3 BODY[]=\"Subject: a\r\n\r\n{3}\r\n)(\\\"\\\\\r\n\"\n"));

  /* Byte by byte, and every two-piece split. */
  for (gsize cut = 0; cut <= len; cut++)
    {
      g_autoptr(LbImapParser) parser = lb_imap_parser_new (NULL);
      g_autoptr(GString) out = g_string_new (NULL);
      LbImapResponse *r;

      lb_imap_parser_feed (parser, (const guint8 *) transcript, cut, &error);
      g_assert_no_error (error);
      lb_imap_parser_feed (parser, (const guint8 *) transcript + cut, len - cut, &error);
      g_assert_no_error (error);
      while ((r = lb_imap_parser_pop (parser)) != NULL)
        {
          g_autofree char *s = lb_imap_response_to_string (r);

          g_string_append_printf (out, "%s\n", s);
          lb_imap_response_free (r);
        }
      g_assert_cmpstr (out->str, ==, whole);
    }

  {
    g_autoptr(LbImapParser) parser = lb_imap_parser_new (NULL);
    g_autoptr(GString) out = g_string_new (NULL);
    LbImapResponse *r;

    for (gsize i = 0; i < len; i++)
      {
        lb_imap_parser_feed (parser, (const guint8 *) transcript + i, 1, &error);
        g_assert_no_error (error);
        while ((r = lb_imap_parser_pop (parser)) != NULL)
          {
            g_autofree char *s = lb_imap_response_to_string (r);

            g_string_append_printf (out, "%s\n", s);
            lb_imap_response_free (r);
          }
      }
    g_assert_cmpstr (out->str, ==, whole);
    g_assert_true (lb_imap_parser_is_idle (parser));
  }
}

static void
test_truncated_is_pending (void)
{
  g_autoptr(LbImapParser) parser = lb_imap_parser_new (NULL);
  g_autoptr(GError) error = NULL;
  const char partial[] = "* 1 FETCH (UID 5 BODY[] {100}\r\nonly part of it";

  lb_imap_parser_feed (parser, (const guint8 *) partial, sizeof partial - 1, &error);
  g_assert_no_error (error);
  g_assert_null (lb_imap_parser_pop (parser));
  g_assert_false (lb_imap_parser_is_idle (parser));
}

static void
test_hostile (void)
{
  LbImapParserLimits limits;
  g_autoptr(GString) deep = g_string_new ("* XFOO ");
  g_autoptr(GString) deep_body = g_string_new ("* 1 FETCH (BODYSTRUCTURE ");
  g_autoptr(GString) long_line = g_string_new ("* OK ");
  g_autoptr(GError) error = NULL;

  /* Literal counts past 2^63, and past the in-memory limit. */
  assert_fails ("* 1 FETCH (BODY[] {99999999999999999999999}\r\n", 46, LB_IMAP_PARSE_ERROR_TOO_LONG);
  assert_fails ("* 1 FETCH (BODY[] {9223372036854775807}\r\n", 41, LB_IMAP_PARSE_ERROR_TOO_LONG);
  assert_fails ("* LIST () \"/\" {4294967296}\r\n", 28, LB_IMAP_PARSE_ERROR_TOO_LONG);

  /* Nesting. */
  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '(');
  g_string_append (deep, "\r\n");
  assert_fails (deep->str, deep->len, LB_IMAP_PARSE_ERROR_TOO_LONG);
  for (guint i = 0; i < 1000; i++)
    g_string_append_c (deep_body, '(');
  g_string_append (deep_body, "\r\n");
  assert_fails (deep_body->str, deep_body->len, LB_IMAP_PARSE_ERROR_TOO_LONG);

  /* A line past the limit, even without a line end. */
  lb_imap_parser_default_limits (&limits);
  for (gsize i = 0; i <= limits.max_line; i += 10)
    g_string_append (long_line, "xxxxxxxxxx");
  assert_fails (long_line->str, long_line->len, LB_IMAP_PARSE_ERROR_TOO_LONG);

  /* NUL outside a literal. */
  assert_fails ("* OK a\0b\r\n", 10, LB_IMAP_PARSE_ERROR_SYNTAX);

  /* Malformed. */
  assert_fails ("* 1 FETCH (UID)\r\n", 17, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* 1 FETCH (UID 1\r\n", 18, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* 99999999999 EXISTS\r\n", 22, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails (")))\r\n", 5, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("a1 MAYBE done\r\n", 15, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* LIST () \"/\" \"unterminated\r\n", 29, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* LIST () \"/\" \"bad \\x escape\"\r\n", 31, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* LIST () \"//\" x\r\n", 18, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* 1 FETCH (ENVELOPE (NIL))\r\n", 28, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* 1 FETCH (BODY[] (1 2))\r\n", 26, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* VANISHED 1:*\r\n", 16, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("\r\n", 2, LB_IMAP_PARSE_ERROR_SYNTAX);
  assert_fails ("* OK [ALERT without end\r\n", 25, LB_IMAP_PARSE_ERROR_SYNTAX);

  /* After an error the parser stays failed. */
  {
    g_autoptr(LbImapParser) parser = lb_imap_parser_new (NULL);

    lb_imap_parser_feed (parser, (const guint8 *) ")\r\n", 3, &error);
    g_assert_error (error, LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_SYNTAX);
    g_clear_error (&error);
    lb_imap_parser_feed (parser, (const guint8 *) "a OK fine\r\n", 11, &error);
    g_assert_error (error, LB_IMAP_PARSE_ERROR, LB_IMAP_PARSE_ERROR_SYNTAX);
    g_assert_null (lb_imap_parser_pop (parser));
  }

  /* The error names the place, readably. */
  {
    g_autoptr(GError) e = NULL;
    g_autofree char *out = parse_all ("* 1 FETCH (UID x)\r\n", 19, &e);

    g_assert_null (out);
    g_assert_nonnull (strstr (e->message, "expected a number"));
    g_assert_nonnull (strstr (e->message, "* 1 FETCH (UID x)"));
  }
}

static void
test_utf7 (void)
{
  const struct
  {
    const char *utf7;
    const char *utf8;
  } cases[] = {
    { "INBOX", "INBOX" },
    { "&AMQ-rger", "Ärger" },
    { "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語" },
    { "A&-B", "A&B" },
    { "&-", "&" },
    { "&2D3eAA-", "😀" },
    { "Entw&APw-rfe", "Entwürfe" },
  };
  const char *invalid[] = { "&Jjo", "&AGE-", "&-&", "&2D0-", "&3gA-", "a\x01", "&U,BTF-", "&!-" };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *decoded = lb_imap_utf7_decode (cases[i].utf7, strlen (cases[i].utf7),
                                                      &error);
      g_autofree char *encoded = lb_imap_utf7_encode (cases[i].utf8);

      g_assert_no_error (error);
      g_assert_cmpstr (decoded, ==, cases[i].utf8);
      g_assert_cmpstr (encoded, ==, cases[i].utf7);
    }
  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *decoded = lb_imap_utf7_decode (invalid[i], strlen (invalid[i]), &error);

      g_assert_null (decoded);
      g_assert_error (error, G_CONVERT_ERROR, G_CONVERT_ERROR_ILLEGAL_SEQUENCE);
    }
}

static void
test_sets (void)
{
  g_autoptr(LbImapResponse) r = parse_one ("* VANISHED 5,1:3,9:7\r\n");

  g_assert_cmpuint (lb_imap_set_count (r->vanished), ==, 7);
  g_assert_true (lb_imap_set_contains (r->vanished, 2));
  g_assert_true (lb_imap_set_contains (r->vanished, 8));
  g_assert_false (lb_imap_set_contains (r->vanished, 4));
  g_assert_false (lb_imap_set_contains (r->vanished, 10));
  /* The highest, though the set ends with a range that runs downwards (RFC 9051 §9). */
  g_assert_cmpuint (lb_imap_set_max (r->vanished), ==, 9);
  {
    g_autoptr(LbImapResponse) esearch = parse_one ("* ESEARCH (TAG \"A1\") UID ALL 12:4,2\r\n");
    g_autoptr(LbImapSet) empty = lb_imap_set_new ();

    g_assert_nonnull (esearch->esearch);
    g_assert_nonnull (esearch->esearch->all);
    g_assert_cmpuint (lb_imap_set_max (esearch->esearch->all), ==, 12);
    g_assert_cmpuint (lb_imap_set_max (empty), ==, 0);
  }
}

/* Every file in tests/fuzz/corpus/imap parses or fails cleanly (the fuzzer's seeds,
 * replayed in every build, also without a fuzzing compiler). */
static void
test_corpus (void)
{
  g_autofree char *dir = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "imap", NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *data = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *out = NULL;
      gsize len;

      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      out = parse_all (data, len, &error);
      g_assert_true ((out != NULL) != (error != NULL));
      n++;
    }
  g_assert_cmpuint (n, >=, 10);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/imap/parser/status", test_greeting_and_status);
  g_test_add_func ("/imap/parser/select", test_select_responses);
  g_test_add_func ("/imap/parser/list", test_list);
  g_test_add_func ("/imap/parser/search", test_search);
  g_test_add_func ("/imap/parser/session-data", test_session_data);
  g_test_add_func ("/imap/parser/fetch-rfc3501", test_fetch_rfc3501);
  g_test_add_func ("/imap/parser/bodystructure", test_fetch_bodystructure);
  g_test_add_func ("/imap/parser/sections", test_fetch_sections);
  g_test_add_func ("/imap/parser/streaming", test_streaming);
  g_test_add_func ("/imap/parser/any-split", test_any_split);
  g_test_add_func ("/imap/parser/truncated", test_truncated_is_pending);
  g_test_add_func ("/imap/parser/hostile", test_hostile);
  g_test_add_func ("/imap/parser/sets", test_sets);
  g_test_add_func ("/imap/utf7", test_utf7);
  g_test_add_func ("/imap/parser/corpus", test_corpus);

  return g_test_run ();
}
