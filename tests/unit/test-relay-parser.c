/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lb-smtp-data.h"
#include "lbd-relay-parser.h"
#include "lbd-relay-secret.h"
#include "lbd-relay-server.h"
#include "lbd-relay-session.h"

/* The relay's pure parts: command lines cut from a byte stream (every split), every
 * command form, every class of bad input, DATA's end and dot-stuffing (every split, the
 * smuggling forms, a round trip through the client's encoder), AUTH responses; and the
 * small pure helpers around them: error → reply mappings, the peer check, the secret
 * comparison and the secret file. */

/* Lines */

/* "OK:<line>" or "ERR:<code>" for each result, feeding @input cut at @cut. */
static char *
lines_describe (const char *input,
                gsize       len,
                gsize       cut)
{
  GString *out = g_string_new (NULL);
  GByteArray *buf = g_byte_array_new ();
  gboolean skipping = FALSE;
  gsize fed = 0;

  while (TRUE)
    {
      gsize line_len, consumed;
      g_autoptr(GError) error = NULL;
      LbdRelayLineResult r;

      r = lbd_relay_line_next (&skipping, buf->data, buf->len, &line_len, &consumed, &error);
      if (r == LBD_RELAY_LINE_OK)
        {
          g_string_append_printf (out, "OK:%.*s|", (int) line_len, (const char *) buf->data);
          g_assert_null (error);
        }
      else if (r == LBD_RELAY_LINE_ERROR)
        {
          g_assert_nonnull (error);
          g_string_append_printf (out, "ERR:%d|", error->code);
        }
      g_byte_array_remove_range (buf, 0, consumed);
      if (r == LBD_RELAY_LINE_MORE)
        {
          gsize next = fed < cut ? cut : len;

          if (fed == len)
            break;
          g_byte_array_append (buf, (const guint8 *) input + fed, next - fed);
          fed = next;
        }
    }
  g_byte_array_unref (buf);
  return g_string_free (out, FALSE);
}

static void
test_lines (void)
{
  static const struct
  {
    const char *input;
    gsize len;
    const char *expected;
  } cases[] = {
    { "EHLO a\r\nMAIL FROM:<>\r\n", 0, "OK:EHLO a|OK:MAIL FROM:<>|" },
    { "\r\n", 0, "OK:|" },
    { "NOOP\r\nQUIT", 0, "OK:NOOP|" },
    { "NOOP\nQUIT\r\n", 0, "ERR:1|OK:QUIT|" },
    { "\nQUIT\r\n", 0, "ERR:1|OK:QUIT|" },
    { "NO\rOP\r\nQUIT\r\n", 0, "ERR:1|OK:QUIT|" },
    { "NOOP\r\r\n", 0, "ERR:1|" },
    { "NO\0OP\r\nQUIT\r\n", 13, "ERR:2|OK:QUIT|" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gsize len = cases[i].len != 0 ? cases[i].len : strlen (cases[i].input);

      for (gsize cut = 0; cut <= len; cut++)
        {
          g_autofree char *got = lines_describe (cases[i].input, len, cut);

          g_assert_cmpstr (got, ==, cases[i].expected);
        }
    }
}

static void
test_lines_long (void)
{
  g_autoptr(GString) input = g_string_new (NULL);
  g_autofree char *got = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *x998 = g_strnfill (998, 'x');

  /* 998 + CRLF = 1000: the limit; 999 + CRLF is over it; a very long one, then a good
   * line: the reader is back in step after it. */
  g_string_append_printf (input, "%s\r\n", x998);
  g_string_append_printf (input, "%sy\r\n", x998);
  for (guint i = 0; i < 300; i++)
    g_string_append (input, "0123456789");
  g_string_append (input, "\nNOOP\r\n");
  expected = g_strdup_printf ("OK:%s|ERR:0|ERR:0|OK:NOOP|", x998);
  for (gsize cut = 0; cut <= input->len; cut += 97)
    {
      g_free (got);
      got = lines_describe (input->str, input->len, cut);
      g_assert_cmpstr (got, ==, expected);
    }
}

/* Commands */

static LbdRelayCommand *
parse_ok (const char *line)
{
  g_autoptr(GError) error = NULL;
  LbdRelayCommand *command = lbd_relay_command_parse (line, strlen (line), &error);

  if (command == NULL)
    g_error ("%s: %s", line, error->message);
  return command;
}

/* @len -1: up to the NUL */
static void
parse_fails (const char *line,
             gssize      len,
             int         code,
             const char *reply)
{
  g_autoptr(GError) error = NULL;
  LbdRelayCommand *command = lbd_relay_command_parse (line, len < 0 ? strlen (line) : (gsize) len,
                                                      &error);

  if (command != NULL)
    g_error ("accepted: %s", line);
  g_assert_error (error, LBD_RELAY_PARSE_ERROR, code);
  g_assert_cmpstr (lbd_relay_parse_error_reply (error), ==, reply);
  /* Reply text: printable ASCII. */
  for (const char *p = error->message; *p != '\0'; p++)
    g_assert_true (*p >= 0x20 && *p < 0x7f);
}

static void
test_commands (void)
{
  static const struct
  {
    const char *line;
    LbdRelayVerb verb;
    const char *argument;
  } simple[] = {
    { "HELO client.example", LBD_RELAY_VERB_HELO, "client.example" },
    { "helo [127.0.0.1]", LBD_RELAY_VERB_HELO, "[127.0.0.1]" },
    { "EHLO client.example", LBD_RELAY_VERB_EHLO, "client.example" },
    { "Ehlo  spaced.example  ", LBD_RELAY_VERB_EHLO, "spaced.example" },
    { "DATA", LBD_RELAY_VERB_DATA, NULL },
    { "data", LBD_RELAY_VERB_DATA, NULL },
    { "RSET", LBD_RELAY_VERB_RSET, NULL },
    { "NOOP", LBD_RELAY_VERB_NOOP, NULL },
    { "NOOP anything at all", LBD_RELAY_VERB_NOOP, "anything at all" },
    { "QUIT", LBD_RELAY_VERB_QUIT, NULL },
    { "VRFY alice", LBD_RELAY_VERB_VRFY, "alice" },
    { "HELP", LBD_RELAY_VERB_HELP, NULL },
    { "HELP MAIL", LBD_RELAY_VERB_HELP, "MAIL" },
    { "AUTH plain", LBD_RELAY_VERB_AUTH, "PLAIN" },
    { "AUTH LOGIN", LBD_RELAY_VERB_AUTH, "LOGIN" },
    { "AUTH CRAM-MD5", LBD_RELAY_VERB_AUTH, "CRAM-MD5" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (simple); i++)
    {
      g_autoptr(LbdRelayCommand) c = parse_ok (simple[i].line);

      g_assert_cmpint (c->verb, ==, simple[i].verb);
      g_assert_cmpstr (c->argument, ==, simple[i].argument);
      g_assert_null (c->address);
      g_assert_null (c->auth_response);
    }

  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("AUTH PLAIN AGFsaWNlAHNlY3JldA==");

    g_assert_cmpstr (c->argument, ==, "PLAIN");
    g_assert_cmpstr (c->auth_response, ==, "AGFsaWNlAHNlY3JldA==");
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("AUTH PLAIN =");

    g_assert_cmpstr (c->auth_response, ==, "=");
  }

  parse_fails ("", -1, LBD_RELAY_PARSE_ERROR_UNKNOWN_COMMAND, "500 5.5.1");
  parse_fails ("FOO", -1, LBD_RELAY_PARSE_ERROR_UNKNOWN_COMMAND, "500 5.5.1");
  parse_fails ("MAILFROM:<a@b.c>", -1, LBD_RELAY_PARSE_ERROR_UNKNOWN_COMMAND, "500 5.5.1");
  parse_fails (" EHLO x", -1, LBD_RELAY_PARSE_ERROR_UNKNOWN_COMMAND, "500 5.5.1");
  parse_fails ("STARTTLS", -1, LBD_RELAY_PARSE_ERROR_NOT_IMPLEMENTED, "502 5.5.1");
  parse_fails ("BDAT 10 LAST", -1, LBD_RELAY_PARSE_ERROR_NOT_IMPLEMENTED, "502 5.5.1");
  parse_fails ("EXPN staff", -1, LBD_RELAY_PARSE_ERROR_NOT_IMPLEMENTED, "502 5.5.1");
  parse_fails ("EHLO", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("EHLO   ", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("HELO", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("EHLO a\tb", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("EHLO a\x1b[2J", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("DATA now", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("QUIT now", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("RSET x", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("VRFY", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("AUTH", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("AUTH PLAIN ", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("AUTH PL@IN", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("AUTH ABCDEFGHIJKLMNOPQRSTU", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("AUTH PLAIN a b", -1, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE, "501 5.5.2");
  parse_fails ("NOOP\0", 5, LBD_RELAY_PARSE_ERROR_NUL, "500 5.5.2");
  parse_fails ("NOOP\r", -1, LBD_RELAY_PARSE_ERROR_BARE_LINE_END, "500 5.5.2");
  parse_fails ("NOOP\nQUIT", -1, LBD_RELAY_PARSE_ERROR_BARE_LINE_END, "500 5.5.2");
  {
    g_autofree char *long_line = g_strdup_printf ("NOOP %0999d", 1);

    parse_fails (long_line, strlen (long_line), LBD_RELAY_PARSE_ERROR_LINE_TOO_LONG, "500 5.5.2");
  }
}

static void
test_mail (void)
{
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("MAIL FROM:<alice@example.test>");

    g_assert_cmpint (c->verb, ==, LBD_RELAY_VERB_MAIL);
    g_assert_cmpstr (c->address, ==, "alice@example.test");
    g_assert_false (c->has_size);
    g_assert_cmpint (c->body, ==, LBD_RELAY_BODY_UNSPECIFIED);
    g_assert_false (c->smtputf8);
    g_assert_false (c->address_utf8);
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("mail from:<>");

    g_assert_cmpstr (c->address, ==, "");
  }
  {
    /* A space after the colon is common and harmless. */
    g_autoptr(LbdRelayCommand) c = parse_ok ("MAIL FROM: <a@b.example>");

    g_assert_cmpstr (c->address, ==, "a@b.example");
  }
  {
    g_autoptr(LbdRelayCommand) c =
      parse_ok ("MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8 AUTH=<> "
                "RET=HDRS ENVID=QQ314159+2B1");

    g_assert_true (c->has_size);
    g_assert_cmpuint (c->size, ==, 12345);
    g_assert_cmpint (c->body, ==, LBD_RELAY_BODY_8BITMIME);
    g_assert_true (c->smtputf8);
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("MAIL FROM:<a@b.example> body=7bit size=0");

    g_assert_cmpint (c->body, ==, LBD_RELAY_BODY_7BIT);
    g_assert_true (c->has_size);
    g_assert_cmpuint (c->size, ==, 0);
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("MAIL FROM:<a@b.example> SIZE=99999999999999999999");

    g_assert_cmpuint (c->size, ==, G_MAXUINT64);
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("MAIL FROM:<a@b.example> AUTH=alice+40example.test");

    g_assert_cmpstr (c->address, ==, "a@b.example");
  }
  {
    /* RFC 6531: a UTF-8 sender, flagged for the session to check against SMTPUTF8. */
    g_autoptr(LbdRelayCommand) c = parse_ok ("MAIL FROM:<jörg@bücher.example> SMTPUTF8");

    g_assert_true (c->address_utf8);
    g_assert_true (c->smtputf8);
    g_assert_cmpstr (c->address, ==, "jörg@bücher.example");
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("MAIL FROM:<\"a>b c\"@example.test>");

    g_assert_cmpstr (c->address, ==, "\"a>b c\"@example.test");
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("MAIL FROM:<@relay.example,@b.example:a@c.example>");

    g_assert_cmpstr (c->address, ==, "a@c.example");
  }

  parse_fails ("MAIL", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("MAIL TO:<a@b.c>", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("MAIL FROM:a@b.example", -1, LBD_RELAY_PARSE_ERROR_BAD_SENDER, "501 5.1.7");
  parse_fails ("MAIL FROM:<a@b.example", -1, LBD_RELAY_PARSE_ERROR_BAD_SENDER, "501 5.1.7");
  parse_fails ("MAIL FROM:<a@b.example>x", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> FOO=1", -1, LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER,
               "555 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> NOTIFY=NEVER", -1,
               LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER, "555 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> BODY=BINARYMIME", -1,
               LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER, "555 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> BODY=9BIT", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> SIZE", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> SIZE=-1", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> SIZE=1x", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> SIZE=123456789012345678901", -1,
               LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> SIZE=1 SIZE=2", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> SMTPUTF8=yes", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> RET=ALL", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> ENVID=a+zz", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> -X=1", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("MAIL FROM:<a@b.example> SIZE=1\x01", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("MAIL FROM:<@relay.example:a@c.example", -1, LBD_RELAY_PARSE_ERROR_BAD_SENDER,
               "501 5.1.7");
  parse_fails ("MAIL FROM:<@relay..example:a@c.example>", -1, LBD_RELAY_PARSE_ERROR_BAD_SENDER,
               "501 5.1.7");
}

static void
test_rcpt (void)
{
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("RCPT TO:<bob@example.test>");

    g_assert_cmpint (c->verb, ==, LBD_RELAY_VERB_RCPT);
    g_assert_cmpstr (c->address, ==, "bob@example.test");
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("rcpt to:<Postmaster>");

    g_assert_cmpstr (c->address, ==, "Postmaster");
  }
  {
    g_autoptr(LbdRelayCommand) c =
      parse_ok ("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test");

    g_assert_cmpstr (c->address, ==, "bob@example.test");
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("RCPT TO:<bob@[127.0.0.1]>");

    g_assert_cmpstr (c->address, ==, "bob@[127.0.0.1]");
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("RCPT TO:<bob@[IPv6:::1]>");

    g_assert_cmpstr (c->address, ==, "bob@[IPv6:::1]");
  }
  {
    g_autoptr(LbdRelayCommand) c = parse_ok ("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>");

    g_assert_true (c->address_utf8);
  }

  parse_fails ("RCPT TO:<>", -1, LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT, "501 5.1.3");
  parse_fails ("RCPT TO:<bob>", -1, LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT, "501 5.1.3");
  parse_fails ("RCPT FROM:<bob@example.test>", -1, LBD_RELAY_PARSE_ERROR_SYNTAX, "501 5.5.4");
  parse_fails ("RCPT TO:<bob@example.test> SIZE=1", -1, LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER,
               "555 5.5.4");
  parse_fails ("RCPT TO:<bob@example.test> NOTIFY=SOMETIMES", -1,
               LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "501 5.5.4");
  parse_fails ("RCPT TO:<bob@example.test> ORCPT=bob", -1, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
               "501 5.5.4");
  /* CR, LF, NUL and other controls smuggled into the path. */
  parse_fails ("RCPT TO:<bob@example.test\r>", -1, LBD_RELAY_PARSE_ERROR_BARE_LINE_END,
               "500 5.5.2");
  parse_fails ("RCPT TO:<bob\n@example.test>", -1, LBD_RELAY_PARSE_ERROR_BARE_LINE_END,
               "500 5.5.2");
  parse_fails ("RCPT TO:<bob\0@example.test>", 27, LBD_RELAY_PARSE_ERROR_NUL, "500 5.5.2");
  parse_fails ("RCPT TO:<bob\x01@example.test>", -1, LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT,
               "501 5.1.3");
  parse_fails ("RCPT TO:<bob\x7f@example.test>", -1, LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT,
               "501 5.1.3");
  parse_fails ("RCPT TO:<\"bob\x01\"@example.test>", -1, LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT,
               "501 5.1.3");
  parse_fails ("RCPT TO:<bob@exa\tmple.test>", -1, LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT,
               "501 5.1.3");
}

static void
test_addresses (void)
{
  static const char *good[] = {
    "a@b",
    "alice@example.test",
    "first.last+tag@sub.example.test",
    "!#$%&'*+-/=?^_`{|}~@example.test",
    "\"quoted string\"@example.test",
    "\"with \\\" escape\"@example.test",
    "\"\"@example.test",
    "a@[192.0.2.1]",
    "a@[IPv6:2001:db8::1]",
    "a@xn--bcher-kva.example",
    "a@0-9.example",
  };
  static const char *bad[] = {
    "",
    "alice",
    "@example.test",
    "alice@",
    ".alice@example.test",
    "alice.@example.test",
    "al..ice@example.test",
    "al ice@example.test",
    "al(ice@example.test",
    "alice@@example.test",
    "alice@exa mple.test",
    "alice@-example.test",
    "alice@example-.test",
    "alice@example..test",
    "alice@.example.test",
    "alice@example.test.",
    "alice@exa_mple.test",
    "\"unterminated@example.test",
    "\"bad\\\x01\"@example.test",
    "\"a\"b@example.test",
    "a@[1.2.3.4",
    "a@[]",
    "a@[a[b]",
    "a\r@example.test",
    "a\n@example.test",
    "a\t@example.test",
    "a@example.test\x1b",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;

      if (!lbd_relay_address_validate (good[i], strlen (good[i]), FALSE, &error))
        g_error ("%s: %s", good[i], error->message);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;

      if (lbd_relay_address_validate (bad[i], strlen (bad[i]), TRUE, &error))
        g_error ("accepted: %s", bad[i]);
      g_assert_error (error, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_SYNTAX);
    }

  /* NUL inside the given length. */
  g_assert_false (lbd_relay_address_validate ("a\0b@example.test", 16, TRUE, NULL));

  /* UTF-8 only with SMTPUTF8, and only valid UTF-8. */
  g_assert_true (lbd_relay_address_validate ("jörg@example.test", strlen ("jörg@example.test"),
                                             TRUE, NULL));
  g_assert_false (lbd_relay_address_validate ("jörg@example.test", strlen ("jörg@example.test"),
                                              FALSE, NULL));
  g_assert_false (lbd_relay_address_validate ("j\xc3@example.test", 15, TRUE, NULL));
  g_assert_false (lbd_relay_address_validate ("j\xff@example.test", 15, TRUE, NULL));

  /* Lengths (RFC 5321 §4.5.3.1): local part 64, domain label 63, path 256. */
  {
    g_autofree char *local64 = g_strnfill (64, 'l');
    g_autofree char *local65 = g_strnfill (65, 'l');
    g_autofree char *label63 = g_strnfill (63, 'd');
    g_autofree char *label64 = g_strnfill (64, 'd');
    g_autofree char *ok1 = g_strconcat (local64, "@example.test", NULL);
    g_autofree char *bad1 = g_strconcat (local65, "@example.test", NULL);
    g_autofree char *ok2 = g_strconcat ("a@", label63, ".test", NULL);
    g_autofree char *bad2 = g_strconcat ("a@", label64, ".test", NULL);
    g_autofree char *bad3 = g_strconcat ("a@", label63, ".", label63, ".", label63, ".",
                                         label63, ".test", NULL);
    g_autofree char *rcpt = g_strdup_printf ("RCPT TO:<%s>", bad3);

    g_assert_true (lbd_relay_address_validate (ok1, strlen (ok1), FALSE, NULL));
    g_assert_false (lbd_relay_address_validate (bad1, strlen (bad1), FALSE, NULL));
    g_assert_true (lbd_relay_address_validate (ok2, strlen (ok2), FALSE, NULL));
    g_assert_false (lbd_relay_address_validate (bad2, strlen (bad2), FALSE, NULL));
    g_assert_false (lbd_relay_address_validate (bad3, strlen (bad3), FALSE, NULL));
    parse_fails (rcpt, strlen (rcpt), LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT, "501 5.1.3");
  }
}

static void
test_auth (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *authzid = NULL;
  g_autofree char *authcid = NULL;
  g_autofree char *password = NULL;
  g_autofree guint8 *raw = NULL;
  gsize len;

  /* base64: strict RFC 4648. */
  raw = lbd_relay_base64_decode ("", &len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (len, ==, 0);
  g_clear_pointer (&raw, g_free);
  raw = lbd_relay_base64_decode ("YWxpY2U=", &len, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (raw, len, "alice", 5);
  g_clear_pointer (&raw, g_free);
  raw = lbd_relay_base64_decode ("YQ==", &len, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (raw, len, "a", 1);
  g_clear_pointer (&raw, g_free);
  {
    static const char *bad[] = { "YWxpY2U", "YW=pY2U=", "Y===", "====", "YWxp Y2U=", "YWxp\nY2U=",
                                 "YQ=a", "YWxpY2U=YQ==", "*", "YW\xc3\xa9Y", "YQ-_" };

    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr(GError) e = NULL;

        g_assert_null (lbd_relay_base64_decode (bad[i], &len, &e));
        g_assert_error (e, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE);
      }
  }

  /* PLAIN: "\0alice\0secret" and "alice\0alice\0secret". */
  g_assert_true (lbd_relay_sasl_plain_decode ("AGFsaWNlAHNlY3JldA==", &authzid, &authcid,
                                              &password, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (authzid, ==, "");
  g_assert_cmpstr (authcid, ==, "alice");
  g_assert_cmpstr (password, ==, "secret");
  g_clear_pointer (&authzid, g_free);
  g_clear_pointer (&authcid, g_free);
  g_clear_pointer (&password, g_free);
  g_assert_true (lbd_relay_sasl_plain_decode ("YWxpY2UAYWxpY2UAc2VjcmV0", &authzid, &authcid,
                                              &password, &error));
  g_assert_cmpstr (authzid, ==, "alice");
  g_clear_pointer (&authzid, g_free);
  g_clear_pointer (&authcid, g_free);
  g_clear_pointer (&password, g_free);
  {
    static const char *bad[] = {
      "=",                          /* empty */
      "YWxpY2U=",                   /* "alice": no NULs */
      "AGFsaWNl",                   /* "\0alice": one NUL */
      "AABzZWNyZXQ=",               /* "\0\0secret": no authcid */
      "AGFsaWNlAA==",               /* "\0alice\0": no password */
      "AGFsaWNlAHNlYwByZXQ=",       /* "\0alice\0sec\0ret": a third NUL */
      "AGFs/2ljZQBzZWNyZXQ=",       /* invalid UTF-8 */
      "not base64!",
    };

    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr(GError) e = NULL;

        g_assert_false (lbd_relay_sasl_plain_decode (bad[i], &authzid, &authcid, &password, &e));
        g_assert_error (e, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE);
        g_assert_null (authcid);
        g_assert_null (password);
      }
  }
}

/* DATA */

typedef struct
{
  GByteArray *message;
  gsize consumed;
  gboolean done;
  LbdRelayDataFlaws flaws;
  guint64 size;
} Decoded;

static Decoded
decode (const guint8 *data,
        gsize         len,
        const gsize  *cuts,
        guint         n_cuts)
{
  Decoded r = { g_byte_array_new (), 0, FALSE, 0, 0 };
  LbdRelayDataDecoder d;
  gsize start = 0;

  lbd_relay_data_decoder_init (&d);
  for (guint i = 0; i <= n_cuts && !r.done; i++)
    {
      gsize end = i < n_cuts ? MIN (cuts[i], len) : len;

      if (end < start)
        continue;
      r.consumed += lbd_relay_data_decode (&d, data + start, end - start, r.message, &r.done);
      start = end;
    }
  r.flaws = d.flaws;
  r.size = d.size;
  return r;
}

static void
check_data (const char        *input,
            gsize              len,
            const char        *expected,
            gssize             expected_consumed,
            LbdRelayDataFlaws  expected_flaws)
{
  for (gsize cut = 0; cut <= len; cut++)
    for (gsize cut2 = cut; cut2 <= len; cut2 += (len > 40 ? 7 : 1))
      {
        gsize cuts[] = { cut, cut2 };
        Decoded r = decode ((const guint8 *) input, len, cuts, 2);

        if (expected_consumed < 0)
          g_assert_false (r.done);
        else
          {
            g_assert_true (r.done);
            g_assert_cmpuint (r.consumed, ==, (gsize) expected_consumed);
          }
        g_assert_cmpuint (r.flaws, ==, expected_flaws);
        if (expected != NULL)
          {
            g_assert_cmpmem (r.message->data, r.message->len, expected, strlen (expected));
            g_assert_cmpuint (r.size, ==, strlen (expected));
          }
        g_byte_array_unref (r.message);
      }
}

static void
test_data (void)
{
  const char *s;

  check_data (".\r\n", 3, "", 3, 0);
  check_data (".\r\nQUIT\r\n", 9, "", 3, 0);
  check_data ("Subject: x\r\n\r\nbody\r\n.\r\n", 23, "Subject: x\r\n\r\nbody\r\n", 23, 0);
  /* Dots: stuffed ones unstuffed; a dot alone only at a line start after CRLF. */
  s = "..\r\n...x\r\n.y\r\na.b\r\n.\r\n";
  check_data (s, strlen (s), ".\r\n..x\r\ny\r\na.b\r\n", (gssize) strlen (s), 0);
  s = "a\r\n.\r\nMAIL FROM:<x@y.z>\r\n";
  check_data (s, strlen (s), "a\r\n", 6, 0);
  /* Not yet the end. */
  check_data ("abc\r\n", 5, "abc\r\n", -1, 0);
  check_data ("abc\r\n.", 6, "abc\r\n", -1, 0);
  check_data ("abc\r\n.\r", 7, "abc\r\n", -1, 0);
  /* No final CRLF before the dot: the dot line is content, RFC 5321 §4.1.1.4. */
  check_data ("abc.\r\n", 6, "abc.\r\n", -1, 0);

  /* SMTP smuggling: "LF . CRLF", "CR . CRLF", "LF . LF", "CR LF . LF" never end the
   * data, and they make the message unacceptable. */
  s = "a\n.\r\nMAIL FROM:<evil@x.y>\r\n\r\n.\r\n";
  check_data (s, strlen (s), NULL, (gssize) strlen (s), LBD_RELAY_DATA_BARE_LF);
  s = "a\r.\r\nRCPT TO:<evil@x.y>\r\n.\r\n";
  check_data (s, strlen (s), NULL, (gssize) strlen (s), LBD_RELAY_DATA_BARE_CR);
  s = "a\r\n.\nDATA\r\n.\r\n";
  check_data (s, strlen (s), NULL, (gssize) strlen (s), LBD_RELAY_DATA_BARE_LF);
  s = "a\n.\n";
  check_data (s, strlen (s), NULL, -1, LBD_RELAY_DATA_BARE_LF);
  s = "a\r\n.\r\r\n.\r\n";
  check_data (s, strlen (s), NULL, (gssize) strlen (s), LBD_RELAY_DATA_BARE_CR);
  s = "a\r\r\n.\r\n";
  check_data (s, strlen (s), NULL, (gssize) strlen (s), LBD_RELAY_DATA_BARE_CR);
  check_data ("a\0b\r\n.\r\n", 8, NULL, 8, LBD_RELAY_DATA_NUL);

  /* Line length: 998 octets + CRLF pass, 999 do not. */
  {
    g_autofree char *x998 = g_strnfill (998, 'x');
    g_autofree char *ok = g_strdup_printf ("%s\r\n.\r\n", x998);
    g_autofree char *ok_expected = g_strdup_printf ("%s\r\n", x998);
    g_autofree char *long_line = g_strdup_printf ("%sx\r\n.\r\n", x998);
    g_autofree char *dotted = g_strdup_printf (".%s\r\n.\r\n", x998);

    check_data (ok, strlen (ok), ok_expected, (gssize) strlen (ok), 0);
    check_data (long_line, strlen (long_line), NULL, (gssize) strlen (long_line),
                LBD_RELAY_DATA_LONG_LINE);
    /* A stuffed dot does not count. */
    check_data (dotted, strlen (dotted), ok_expected, (gssize) strlen (dotted), 0);
  }

  g_assert_cmpstr (lbd_relay_data_flaws_reply (LBD_RELAY_DATA_BARE_LF), ==,
                   "550 5.6.0 Message refused: bare CR or LF; lines must end with CRLF");
  g_assert_true (g_str_has_prefix (lbd_relay_data_flaws_reply (LBD_RELAY_DATA_NUL), "550 5.6.0 "));
  g_assert_true (g_str_has_prefix (lbd_relay_data_flaws_reply (LBD_RELAY_DATA_LONG_LINE),
                                   "550 5.6.0 "));
}

/* What the client's encoder (smtp/lb-smtp-data.c, used by letterbox-sendmail) sends
 * decodes back to the BDAT form of the same bytes, for any bytes and any split. */
static void
test_data_round_trip (void)
{
  GRand *rand = g_rand_new_with_seed (20240601);
  static const char alphabet[] = "ab.\r\n\r\n..x";

  for (guint round = 0; round < 3000; round++)
    {
      guint len = g_rand_int_range (rand, 0, 80);
      g_autofree guint8 *raw = g_malloc (len + 1);
      g_autoptr(GByteArray) wire = g_byte_array_new ();
      g_autoptr(GByteArray) plain = g_byte_array_new ();
      guint state = 0, state2 = 0;
      gsize cuts[2];
      Decoded r;

      for (guint i = 0; i < len; i++)
        raw[i] = (guint8) alphabet[g_rand_int_range (rand, 0, sizeof alphabet - 1)];
      lb_smtp_data_encode (&state, raw, len, TRUE, wire);
      lb_smtp_data_encode_finish (&state, TRUE, wire);
      lb_smtp_data_encode (&state2, raw, len, FALSE, plain);
      lb_smtp_data_encode_finish (&state2, FALSE, plain);
      /* Something after the end must stay unread. */
      g_byte_array_append (wire, (const guint8 *) "QUIT\r\n", 6);

      cuts[0] = g_rand_int_range (rand, 0, wire->len + 1);
      cuts[1] = g_rand_int_range (rand, cuts[0], wire->len + 1);
      r = decode (wire->data, wire->len, cuts, 2);
      g_assert_true (r.done);
      g_assert_cmpuint (r.flaws, ==, 0);
      g_assert_cmpuint (r.consumed, ==, wire->len - 6);
      g_assert_cmpmem (r.message->data, r.message->len, plain->data, plain->len);
      g_byte_array_unref (r.message);
    }
  g_rand_free (rand);
}

/* Replies for the rest of the relay */

static void
test_sink_errors (void)
{
  static const struct
  {
    GQuark domain;
    int code;
    const char *reply;
  } cases[] = {
    { 0, LBD_RELAY_SINK_ERROR_TEMPORARY, "451 4.3.0" },
    { 0, LBD_RELAY_SINK_ERROR_NO_SPACE, "452 4.3.1" },
    { 0, LBD_RELAY_SINK_ERROR_SENDER, "554 5.7.1" },
    { 0, LBD_RELAY_SINK_ERROR_MESSAGE, "554 5.6.0" },
    { 0, LBD_RELAY_SINK_ERROR_PERMANENT, "554 5.0.0" },
    { 1, G_IO_ERROR_NO_SPACE, "452 4.3.1" },
    { 1, G_IO_ERROR_PERMISSION_DENIED, "554 5.7.1" },
    { 1, G_IO_ERROR_INVALID_DATA, "554 5.6.0" },
    { 1, G_IO_ERROR_FAILED, "451 4.3.0" },
    { 1, G_IO_ERROR_CANCELLED, "451 4.3.0" },
    { 2, 0, "451 4.3.0" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      GQuark domain = cases[i].domain == 0 ? LBD_RELAY_SINK_ERROR
                      : cases[i].domain == 1 ? G_IO_ERROR
                      : g_quark_from_static_string ("some-store-error");
      g_autoptr(GError) error = g_error_new_literal (domain, cases[i].code, "x");

      g_assert_cmpstr (lbd_relay_sink_error_reply (error), ==, cases[i].reply);
    }
}

static void
test_peer_check (void)
{
  g_autoptr(GCredentials) mine = g_credentials_new ();
  g_autoptr(GCredentials) other = g_credentials_new ();
  g_autoptr(GError) error = NULL;
  uid_t someone = getuid () == 65534 ? 65533 : 65534;

  /* g_credentials_new() describes this process. */
  g_assert_true (lbd_relay_check_peer (mine, getuid (), &error));
  g_assert_no_error (error);

  g_assert_true (g_credentials_set_unix_user (other, someone, &error));
  g_assert_no_error (error);
  g_assert_false (lbd_relay_check_peer (other, getuid (), &error));
  g_assert_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_PEER);
  g_clear_error (&error);
  g_assert_true (lbd_relay_check_peer (other, someone, NULL));

  g_assert_false (lbd_relay_check_peer (NULL, getuid (), &error));
  g_assert_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_PEER);
}

static void
test_secret_equal (void)
{
  g_assert_true (lbd_relay_secret_equal ("abc", "abc"));
  g_assert_true (lbd_relay_secret_equal ("", ""));
  g_assert_false (lbd_relay_secret_equal ("abc", "abd"));
  g_assert_false (lbd_relay_secret_equal ("abc", "ab"));
  g_assert_false (lbd_relay_secret_equal ("ab", "abc"));
  g_assert_false (lbd_relay_secret_equal ("", "a"));
  g_assert_false (lbd_relay_secret_equal (NULL, "a"));
  g_assert_false (lbd_relay_secret_equal ("a", NULL));
}

static void
test_secret_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("relay-secret-XXXXXX", &error);
  g_autofree char *sub = g_build_filename (dir, "letterbox", NULL);
  g_autofree char *path = g_build_filename (sub, "relay-secret", NULL);
  g_autofree char *first = NULL;
  g_autofree char *again = NULL;
  g_autofree char *replaced = NULL;
  g_autofree char *contents = NULL;
  gboolean created = FALSE;
  struct stat st;

  g_assert_no_error (error);

  first = lbd_relay_secret_load_or_create (path, &created, &error);
  g_assert_no_error (error);
  g_assert_true (created);
  g_assert_cmpuint (strlen (first), ==, 64);
  g_assert_cmpuint (strspn (first, "0123456789abcdef"), ==, 64);
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_cmpint (stat (sub, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0700);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_true (g_str_has_prefix (contents, first));
  g_assert_cmpstr (contents + 64, ==, "\n");

  again = lbd_relay_secret_load_or_create (path, &created, &error);
  g_assert_no_error (error);
  g_assert_false (created);
  g_assert_cmpstr (again, ==, first);

  /* Readable by others: possibly known, so replaced. */
  g_assert_cmpint (chmod (path, 0644), ==, 0);
  g_test_expect_message ("lbd-relay", G_LOG_LEVEL_WARNING, "*could be read by other users*");
  replaced = lbd_relay_secret_load_or_create (path, &created, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_true (created);
  g_assert_cmpstr (replaced, !=, first);
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);

  /* A file that holds no usable secret is an error, not silently replaced. */
  g_assert_true (g_file_set_contents_full (path, "short\n", -1, G_FILE_SET_CONTENTS_NONE, 0600,
                                           NULL));
  g_assert_null (lbd_relay_secret_load_or_create (path, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_true (g_file_set_contents_full (path, "has space in it 0123456789\n", -1,
                                           G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_assert_null (lbd_relay_secret_load_or_create (path, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* A symbolic link is not followed. */
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (symlink ("/etc/hostname", path), ==, 0);
  g_assert_null (lbd_relay_secret_load_or_create (path, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_cmpint (g_unlink (path), ==, 0);

  /* Someone else's file (root can make one). */
  if (getuid () == 0)
    {
      g_assert_true (g_file_set_contents_full (path, "0123456789abcdef0123\n", -1,
                                               G_FILE_SET_CONTENTS_NONE, 0600, NULL));
      g_assert_cmpint (chown (path, 65534, 65534), ==, 0);
      g_assert_null (lbd_relay_secret_load_or_create (path, NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
      g_clear_error (&error);
      g_assert_cmpint (g_unlink (path), ==, 0);
    }

  g_assert_cmpint (g_rmdir (sub), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* The fuzzer's seeds, run through every entry point. */
static void
test_corpus (void)
{
  g_autofree char *dir_path = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "relay", NULL);
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      g_autofree char *contents = NULL;
      gsize len;
      g_autofree char *whole = NULL;

      g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
      whole = lines_describe (contents, len, len);
      for (gsize cut = 0; cut <= len; cut += 1 + len / 16)
        {
          g_autofree char *split = lines_describe (contents, len, cut);

          g_assert_cmpstr (split, ==, whole);
        }
      {
        gsize cuts[] = { len / 3, len / 2 };
        Decoded a = decode ((const guint8 *) contents, len, NULL, 0);
        Decoded b = decode ((const guint8 *) contents, len, cuts, 2);

        g_assert_cmpuint (a.consumed, ==, b.consumed);
        g_assert_cmpuint (a.flaws, ==, b.flaws);
        /* After a flaw the message is not kept, so its bytes may differ. */
        if (a.flaws == 0)
          g_assert_cmpmem (a.message->data, a.message->len, b.message->data, b.message->len);
        g_byte_array_unref (a.message);
        g_byte_array_unref (b.message);
      }
      n++;
    }
  g_assert_cmpuint (n, >=, 5);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/relay/parser/lines", test_lines);
  g_test_add_func ("/relay/parser/lines-long", test_lines_long);
  g_test_add_func ("/relay/parser/commands", test_commands);
  g_test_add_func ("/relay/parser/mail", test_mail);
  g_test_add_func ("/relay/parser/rcpt", test_rcpt);
  g_test_add_func ("/relay/parser/addresses", test_addresses);
  g_test_add_func ("/relay/parser/auth", test_auth);
  g_test_add_func ("/relay/parser/data", test_data);
  g_test_add_func ("/relay/parser/data-round-trip", test_data_round_trip);
  g_test_add_func ("/relay/parser/corpus", test_corpus);
  g_test_add_func ("/relay/sink-errors", test_sink_errors);
  g_test_add_func ("/relay/peer-check", test_peer_check);
  g_test_add_func ("/relay/secret/equal", test_secret_equal);
  g_test_add_func ("/relay/secret/file", test_secret_file);

  return g_test_run ();
}
