/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd-relay"

#include "config.h"

#include <string.h>

#include "lbd-relay-parser.h"

/*
 * Reply texts are protocol, not UI: they stay ASCII and untranslated, as RFC 5321
 * §4.2 wants (a UTF-8 reply would need SMTPUTF8 on both sides).
 */

G_DEFINE_QUARK (lbd-relay-parse-error-quark, lbd_relay_parse_error)

/**
 * lbd_relay_parse_error_reply:
 *
 * Returns: the reply code and enhanced status code (RFC 3463) for an
 *   %LBD_RELAY_PARSE_ERROR, such as "500 5.5.2"; the error's message is the text.
 */
const char *
lbd_relay_parse_error_reply (const GError *error)
{
  g_return_val_if_fail (error != NULL, "500 5.5.0");

  if (error->domain != LBD_RELAY_PARSE_ERROR)
    return "451 4.3.0";

  switch ((LbdRelayParseError) error->code)
    {
    case LBD_RELAY_PARSE_ERROR_LINE_TOO_LONG:
    case LBD_RELAY_PARSE_ERROR_BARE_LINE_END:
    case LBD_RELAY_PARSE_ERROR_NUL:
      return "500 5.5.2";
    case LBD_RELAY_PARSE_ERROR_UNKNOWN_COMMAND:
      return "500 5.5.1";
    case LBD_RELAY_PARSE_ERROR_NOT_IMPLEMENTED:
      return "502 5.5.1";
    case LBD_RELAY_PARSE_ERROR_SYNTAX:
      return "501 5.5.4";
    case LBD_RELAY_PARSE_ERROR_BAD_SENDER:
      return "501 5.1.7";
    case LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT:
      return "501 5.1.3";
    case LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER:
      return "555 5.5.4";
    case LBD_RELAY_PARSE_ERROR_BAD_PARAMETER:
      return "501 5.5.4";
    case LBD_RELAY_PARSE_ERROR_BAD_RESPONSE:
      return "501 5.5.2";
    default:
      return "500 5.5.0";
    }
}

/**
 * lbd_relay_line_next:
 * @skipping: (inout): the reader's state, %FALSE at the start of a connection
 * @data: input not yet consumed
 * @line_len: (out): the length of the line found, without its CRLF
 * @consumed: (out): how many bytes of @data to drop
 *
 * Finds the next command line. %LBD_RELAY_LINE_OK: the line is the first @line_len
 * bytes of @data. %LBD_RELAY_LINE_MORE: no complete line yet; @consumed may still be
 * non-zero while an overlong line is being skipped, so that memory stays bounded.
 * %LBD_RELAY_LINE_ERROR: a bad line (too long, a bare CR or LF, a NUL), consumed through
 * its end. A bare LF ends a bad line, so the reader stays in step with a client that
 * sends bare LFs, and each such line gets its own error.
 */
LbdRelayLineResult
lbd_relay_line_next (gboolean      *skipping,
                     const guint8  *data,
                     gsize          len,
                     gsize         *line_len,
                     gsize         *consumed,
                     GError       **error)
{
  const guint8 *nl = NULL;
  gsize n;

  *line_len = 0;
  *consumed = 0;

  if (!*skipping)
    {
      if (len == 0)
        return LBD_RELAY_LINE_MORE;
      nl = memchr (data, '\n', MIN (len, LBD_RELAY_MAX_LINE));
      if (nl == NULL && len < LBD_RELAY_MAX_LINE)
        return LBD_RELAY_LINE_MORE;
      /* No LF within the limit: skip to the end of the line, however far. */
      *skipping = nl == NULL;
    }

  if (*skipping)
    {
      nl = len > 0 ? memchr (data, '\n', len) : NULL;
      if (nl == NULL)
        {
          *consumed = len;
          return LBD_RELAY_LINE_MORE;
        }
      *consumed = (gsize) (nl - data) + 1;
      *skipping = FALSE;
      g_set_error_literal (error, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_LINE_TOO_LONG,
                           "Line too long");
      return LBD_RELAY_LINE_ERROR;
    }

  n = (gsize) (nl - data);
  *consumed = n + 1;
  if (n == 0 || data[n - 1] != '\r')
    {
      g_set_error_literal (error, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_BARE_LINE_END,
                           "Bare LF in command; lines must end with CRLF");
      return LBD_RELAY_LINE_ERROR;
    }
  n--;
  if (memchr (data, '\r', n) != NULL)
    {
      g_set_error_literal (error, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_BARE_LINE_END,
                           "Bare CR in command; lines must end with CRLF");
      return LBD_RELAY_LINE_ERROR;
    }
  if (memchr (data, '\0', n) != NULL)
    {
      g_set_error_literal (error, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_NUL,
                           "NUL byte in command");
      return LBD_RELAY_LINE_ERROR;
    }
  *line_len = n;
  return LBD_RELAY_LINE_OK;
}

/* Addresses (RFC 5321 §4.1.2, RFC 6531 §3.3) */

static gboolean
is_atext (guint8 c)
{
  return g_ascii_isalnum (c) || (c != '\0' && strchr ("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static gboolean
is_let_dig (guint8 c,
            gboolean utf8_ok)
{
  return g_ascii_isalnum (c) || (utf8_ok && c >= 0x80);
}

static gboolean
address_error (GError    **error,
               const char *message)
{
  /* The caller turns this into BAD_SENDER or BAD_RECIPIENT. */
  g_set_error_literal (error, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_SYNTAX, message);
  return FALSE;
}

static gboolean
domain_validate (const char *domain,
                 gsize       len,
                 gboolean    utf8_ok,
                 GError    **error)
{
  gsize label_start = 0;

  if (len == 0)
    return address_error (error, "Missing domain");
  if (len > 255)
    return address_error (error, "Domain too long");

  if (domain[0] == '[')
    {
      /* address-literal: "[" dcontent… "]" (IPv4, IPv6:…, or a general tag:…). */
      if (len < 3 || domain[len - 1] != ']')
        return address_error (error, "Malformed address literal");
      for (gsize i = 1; i < len - 1; i++)
        {
          guint8 c = (guint8) domain[i];

          if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\')
            return address_error (error, "Malformed address literal");
        }
      return TRUE;
    }

  for (gsize i = 0; i <= len; i++)
    {
      if (i == len || domain[i] == '.')
        {
          gsize label_len = i - label_start;

          if (label_len == 0)
            return address_error (error, "Empty label in domain");
          if (label_len > 63)
            return address_error (error, "Domain label too long");
          if (!is_let_dig ((guint8) domain[label_start], utf8_ok) ||
              !is_let_dig ((guint8) domain[i - 1], utf8_ok))
            return address_error (error, "Domain labels must start and end with a letter or digit");
          label_start = i + 1;
        }
      else if (!is_let_dig ((guint8) domain[i], utf8_ok) && domain[i] != '-')
        {
          return address_error (error, "Invalid character in domain");
        }
    }
  return TRUE;
}

/**
 * lbd_relay_address_validate:
 * @address: a mailbox without angle brackets
 * @utf8_ok: whether UTF-8 local parts and domains are allowed (SMTPUTF8)
 *
 * Checks a Mailbox of RFC 5321 §4.1.2: a dot-string or quoted-string local part of at
 * most 64 octets, "@", a domain (at most 255 octets, LDH labels) or an address literal,
 * 254 octets in all (§4.5.3.1.3 less the brackets). Controls, NUL, CR and LF are never
 * allowed, not even quoted; non-ASCII only as valid UTF-8 and only with @utf8_ok.
 */
gboolean
lbd_relay_address_validate (const char  *address,
                            gsize        len,
                            gboolean     utf8_ok,
                            GError     **error)
{
  gsize i = 0, at;

  for (gsize j = 0; j < len; j++)
    {
      guint8 c = (guint8) address[j];

      if (c < 0x20 || c == 0x7f)
        return address_error (error, "Control character in address");
      if (c >= 0x80 && !utf8_ok)
        return address_error (error, "Non-ASCII address needs SMTPUTF8");
    }
  if (!g_utf8_validate (address, len, NULL))
    return address_error (error, "Address is not valid UTF-8");
  if (len == 0)
    return address_error (error, "Empty address");
  if (len > 254)
    return address_error (error, "Address too long");

  if (address[0] == '"')
    {
      for (i = 1; i < len && address[i] != '"'; i++)
        {
          guint8 c = (guint8) address[i];

          if (c == '\\')
            {
              i++;
              if (i >= len || (guint8) address[i] < 32 || (guint8) address[i] > 126)
                return address_error (error, "Malformed quoted local part");
            }
          else if (c < 32 || (c > 126 && !utf8_ok))
            {
              return address_error (error, "Malformed quoted local part");
            }
        }
      if (i >= len)
        return address_error (error, "Unterminated quoted local part");
      i++;
    }
  else
    {
      gboolean dot_ok = FALSE;

      for (i = 0; i < len && address[i] != '@'; i++)
        {
          guint8 c = (guint8) address[i];

          if (c == '.')
            {
              if (!dot_ok)
                return address_error (error, "Misplaced dot in local part");
              dot_ok = FALSE;
            }
          else if (is_atext (c) || (utf8_ok && c >= 0x80))
            {
              dot_ok = TRUE;
            }
          else
            {
              return address_error (error, "Invalid character in local part");
            }
        }
      if (i == 0 || !dot_ok)
        return address_error (error, "Malformed local part");
    }

  at = i;
  if (at >= len || address[at] != '@')
    return address_error (error, "Address needs a domain (local@domain)");
  if (at > 64)
    return address_error (error, "Local part too long");
  return domain_validate (address + at + 1, len - at - 1, utf8_ok, error);
}

/* Commands */

void
lbd_relay_command_free (LbdRelayCommand *command)
{
  if (command == NULL)
    return;
  g_free (command->argument);
  g_free (command->address);
  g_free (command->auth_response);
  g_free (command);
}

static const struct
{
  const char *name;
  int verb; /* -1: known, not offered */
} verbs[] = {
  { "HELO", LBD_RELAY_VERB_HELO },
  { "EHLO", LBD_RELAY_VERB_EHLO },
  { "MAIL", LBD_RELAY_VERB_MAIL },
  { "RCPT", LBD_RELAY_VERB_RCPT },
  { "DATA", LBD_RELAY_VERB_DATA },
  { "RSET", LBD_RELAY_VERB_RSET },
  { "NOOP", LBD_RELAY_VERB_NOOP },
  { "QUIT", LBD_RELAY_VERB_QUIT },
  { "VRFY", LBD_RELAY_VERB_VRFY },
  { "HELP", LBD_RELAY_VERB_HELP },
  { "AUTH", LBD_RELAY_VERB_AUTH },
  { "STARTTLS", -1 },
  { "BDAT", -1 },
  { "EXPN", -1 },
  { "TURN", -1 },
  { "ETRN", -1 },
  { "ATRN", -1 },
  { "SEND", -1 },
  { "SOML", -1 },
  { "SAML", -1 },
};

static gboolean
syntax_error (GError    **error,
              int         code,
              const char *message)
{
  g_set_error_literal (error, LBD_RELAY_PARSE_ERROR, code, message);
  return FALSE;
}

static gboolean
text_is_printable (const char *text,
                   gsize       len)
{
  for (gsize i = 0; i < len; i++)
    if ((guint8) text[i] < 0x20 || (guint8) text[i] == 0x7f)
      return FALSE;
  return TRUE;
}

/* esmtp-value (RFC 5321 §4.1.2): 1*(%d33-60 / %d62-126), UTF-8 allowed (RFC 6531). */
static gboolean
value_is_valid (const char *value)
{
  if (value == NULL || value[0] == '\0')
    return FALSE;
  for (const char *p = value; *p != '\0'; p++)
    if ((guint8) *p < 33 || *p == '=' || (guint8) *p == 127)
      return FALSE;
  return TRUE;
}

/* xtext (RFC 3461 §4): "+" and two upper-case hex digits, else %d33-42 / %d44-60 / %d62-126. */
static gboolean
xtext_is_valid (const char *value)
{
  if (!value_is_valid (value))
    return FALSE;
  for (const char *p = value; *p != '\0'; p++)
    {
      if ((guint8) *p > 126)
        return FALSE;
      if (*p == '+')
        {
          if (!g_ascii_isxdigit (p[1]) || !g_ascii_isxdigit (p[2]) ||
              g_ascii_islower (p[1]) || g_ascii_islower (p[2]))
            return FALSE;
          p += 2;
        }
    }
  return TRUE;
}

static gboolean
keyword_is_valid (const char *keyword)
{
  if (!g_ascii_isalnum (keyword[0]))
    return FALSE;
  for (const char *p = keyword; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-')
      return FALSE;
  return TRUE;
}

static gboolean
parse_notify (const char *value)
{
  g_auto(GStrv) items = NULL;

  if (!value_is_valid (value))
    return FALSE;
  if (g_ascii_strcasecmp (value, "NEVER") == 0)
    return TRUE;
  items = g_strsplit (value, ",", -1);
  for (guint i = 0; items[i] != NULL; i++)
    if (g_ascii_strcasecmp (items[i], "SUCCESS") != 0 &&
        g_ascii_strcasecmp (items[i], "FAILURE") != 0 &&
        g_ascii_strcasecmp (items[i], "DELAY") != 0)
      return FALSE;
  return TRUE;
}

static gboolean
parse_parameters (LbdRelayCommand  *command,
                  const char       *text,
                  GError          **error)
{
  g_auto(GStrv) words = g_strsplit (text, " ", -1);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; words[i] != NULL; i++)
    {
      char *word = words[i];
      char *value = strchr (word, '=');
      g_autofree char *keyword = NULL;

      if (word[0] == '\0')
        continue;
      if (value != NULL)
        *value++ = '\0';
      keyword = g_ascii_strup (word, -1);
      if (!keyword_is_valid (keyword))
        return syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "Malformed parameter");
      if (g_hash_table_contains (seen, keyword))
        return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "Parameter given twice");

      if (command->verb == LBD_RELAY_VERB_MAIL && g_str_equal (keyword, "SIZE"))
        {
          gsize n = value != NULL ? strlen (value) : 0;

          if (n == 0 || n > 20 || strspn (value, "0123456789") != n)
            return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "Bad SIZE value");
          command->has_size = TRUE;
          if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT64, &command->size, NULL))
            command->size = G_MAXUINT64;
        }
      else if (command->verb == LBD_RELAY_VERB_MAIL && g_str_equal (keyword, "BODY"))
        {
          if (value != NULL && g_ascii_strcasecmp (value, "7BIT") == 0)
            command->body = LBD_RELAY_BODY_7BIT;
          else if (value != NULL && g_ascii_strcasecmp (value, "8BITMIME") == 0)
            command->body = LBD_RELAY_BODY_8BITMIME;
          else if (value != NULL && g_ascii_strcasecmp (value, "BINARYMIME") == 0)
            return syntax_error (error, LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER,
                                 "BODY=BINARYMIME is not offered (no CHUNKING)");
          else
            return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "Bad BODY value");
        }
      else if (command->verb == LBD_RELAY_VERB_MAIL && g_str_equal (keyword, "SMTPUTF8"))
        {
          if (value != NULL)
            return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
                                 "SMTPUTF8 takes no value");
          command->smtputf8 = TRUE;
        }
      else if (command->verb == LBD_RELAY_VERB_MAIL &&
               (g_str_equal (keyword, "AUTH") || g_str_equal (keyword, "ENVID")))
        {
          if (!xtext_is_valid (value) &&
              !(g_str_equal (keyword, "AUTH") && g_strcmp0 (value, "<>") == 0))
            return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "Bad xtext value");
        }
      else if (command->verb == LBD_RELAY_VERB_MAIL && g_str_equal (keyword, "RET"))
        {
          if (value == NULL ||
              (g_ascii_strcasecmp (value, "FULL") != 0 && g_ascii_strcasecmp (value, "HDRS") != 0))
            return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "Bad RET value");
        }
      else if (command->verb == LBD_RELAY_VERB_RCPT && g_str_equal (keyword, "NOTIFY"))
        {
          if (!parse_notify (value))
            return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "Bad NOTIFY value");
        }
      else if (command->verb == LBD_RELAY_VERB_RCPT && g_str_equal (keyword, "ORCPT"))
        {
          const char *semi = value != NULL ? strchr (value, ';') : NULL;

          if (semi == NULL || semi == value || !value_is_valid (semi + 1))
            return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_PARAMETER, "Bad ORCPT value");
        }
      else
        {
          return syntax_error (error, LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER,
                               "Unsupported parameter");
        }
      g_hash_table_add (seen, g_steal_pointer (&keyword));
    }
  return TRUE;
}

/* "FROM:" / "TO:", optional spaces, "<" path ">", then " " parameters. */
static gboolean
parse_path (LbdRelayCommand  *command,
            const char       *args,
            gsize             len,
            GError          **error)
{
  gboolean is_mail = command->verb == LBD_RELAY_VERB_MAIL;
  const char *prefix = is_mail ? "FROM:" : "TO:";
  int bad = is_mail ? LBD_RELAY_PARSE_ERROR_BAD_SENDER : LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT;
  gsize plen = strlen (prefix);
  gsize i, start, end;
  gboolean quoted = FALSE;
  g_autoptr(GError) local_error = NULL;
  const char *mailbox;
  gsize mailbox_len;

  if (len < plen || g_ascii_strncasecmp (args, prefix, plen) != 0)
    return syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX,
                         is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
  i = plen;
  while (i < len && args[i] == ' ')
    i++;
  if (i >= len || args[i] != '<')
    return syntax_error (error, bad, "Address must be in angle brackets");

  start = ++i;
  for (; i < len; i++)
    {
      if (quoted && args[i] == '\\' && i + 1 < len)
        i++;
      else if (args[i] == '"')
        quoted = !quoted;
      else if (!quoted && args[i] == '>')
        break;
    }
  if (i >= len)
    return syntax_error (error, bad, "Missing closing angle bracket");
  end = i++;
  if (i < len && args[i] != ' ')
    return syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "Garbage after address");

  mailbox = args + start;
  mailbox_len = end - start;
  if (mailbox_len + 2 > 256)
    return syntax_error (error, bad, "Address too long");

  /* A source route ("@a,@b:") is accepted and ignored (RFC 5321 §4.1.2, §C). */
  if (mailbox_len > 0 && mailbox[0] == '@')
    {
      const char *colon = memchr (mailbox, ':', mailbox_len);
      const char *p = mailbox;

      if (colon == NULL)
        return syntax_error (error, bad, "Malformed source route");
      while (p < colon)
        {
          const char *next = memchr (p, ',', colon - p);
          const char *stop = next != NULL ? next : colon;

          if (*p != '@' || !domain_validate (p + 1, stop - p - 1, FALSE, NULL))
            return syntax_error (error, bad, "Malformed source route");
          p = stop + 1;
        }
      mailbox_len -= colon + 1 - mailbox;
      mailbox = colon + 1;
    }

  for (gsize j = 0; j < mailbox_len; j++)
    if ((guint8) mailbox[j] >= 0x80)
      command->address_utf8 = TRUE;

  if (mailbox_len == 0 && is_mail)
    ;
  else if (!is_mail && mailbox_len == 10 && g_ascii_strncasecmp (mailbox, "postmaster", 10) == 0)
    ; /* RFC 5321 §4.5.1: <Postmaster> without a domain. */
  else if (!lbd_relay_address_validate (mailbox, mailbox_len, TRUE, &local_error))
    return syntax_error (error, bad, local_error->message);

  command->address = g_strndup (mailbox, mailbox_len);

  if (i < len)
    {
      g_autofree char *params = g_strndup (args + i + 1, len - i - 1);

      if (!text_is_printable (params, strlen (params)))
        return syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX,
                             "Control character in parameters");
      if (!parse_parameters (command, params, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
parse_auth (LbdRelayCommand  *command,
            const char       *args,
            gsize             len,
            GError          **error)
{
  const char *space = memchr (args, ' ', len);
  gsize mech_len = space != NULL ? (gsize) (space - args) : len;

  if (mech_len == 0 || mech_len > 20)
    return syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "Syntax: AUTH mechanism [response]");
  for (gsize i = 0; i < mech_len; i++)
    if (!g_ascii_isalnum (args[i]) && args[i] != '-' && args[i] != '_')
      return syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "Malformed mechanism name");
  command->argument = g_ascii_strup (args, mech_len);

  if (space != NULL)
    {
      const char *response = space + 1;
      gsize response_len = len - mech_len - 1;

      if (response_len == 0)
        return syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "Empty initial response");
      for (gsize i = 0; i < response_len; i++)
        if (!g_ascii_isalnum (response[i]) && response[i] != '+' && response[i] != '/' &&
            response[i] != '=')
          return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE,
                               "Initial response is not base64");
      command->auth_response = g_strndup (response, response_len);
    }
  return TRUE;
}

/**
 * lbd_relay_command_parse:
 * @line: one command line without its CRLF (need not be NUL-terminated)
 *
 * Reads one command (RFC 5321 §4.1; verbs are case-insensitive). Commands that take no
 * argument refuse one; controls anywhere are refused.
 *
 * Returns: (transfer full): the command, or %NULL with an %LBD_RELAY_PARSE_ERROR
 */
LbdRelayCommand *
lbd_relay_command_parse (const char  *line,
                         gsize        len,
                         GError     **error)
{
  g_autoptr(LbdRelayCommand) command = g_new0 (LbdRelayCommand, 1);
  const char *space;
  gsize verb_len;
  const char *args = NULL;
  gsize args_len = 0;
  int verb = -2;

  if (memchr (line, '\0', len) != NULL)
    {
      syntax_error (error, LBD_RELAY_PARSE_ERROR_NUL, "NUL byte in command");
      return NULL;
    }
  if (memchr (line, '\r', len) != NULL || memchr (line, '\n', len) != NULL)
    {
      syntax_error (error, LBD_RELAY_PARSE_ERROR_BARE_LINE_END, "Bare CR or LF in command");
      return NULL;
    }
  if (len + 2 > LBD_RELAY_MAX_LINE)
    {
      syntax_error (error, LBD_RELAY_PARSE_ERROR_LINE_TOO_LONG, "Line too long");
      return NULL;
    }

  space = memchr (line, ' ', len);
  verb_len = space != NULL ? (gsize) (space - line) : len;
  if (space != NULL)
    {
      args = space + 1;
      args_len = len - verb_len - 1;
    }

  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    if (strlen (verbs[i].name) == verb_len &&
        g_ascii_strncasecmp (line, verbs[i].name, verb_len) == 0)
      verb = verbs[i].verb;

  if (verb == -2)
    {
      syntax_error (error, LBD_RELAY_PARSE_ERROR_UNKNOWN_COMMAND, "Command unrecognized");
      return NULL;
    }
  if (verb == -1)
    {
      syntax_error (error, LBD_RELAY_PARSE_ERROR_NOT_IMPLEMENTED, "Command not implemented");
      return NULL;
    }
  command->verb = verb;

  if (args != NULL && !text_is_printable (args, args_len) &&
      verb != LBD_RELAY_VERB_MAIL && verb != LBD_RELAY_VERB_RCPT)
    {
      syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "Control character in command");
      return NULL;
    }

  switch ((LbdRelayVerb) verb)
    {
    case LBD_RELAY_VERB_HELO:
    case LBD_RELAY_VERB_EHLO:
      {
        g_autofree char *domain = args != NULL ? g_strstrip (g_strndup (args, args_len)) : NULL;

        if (domain == NULL || domain[0] == '\0')
          {
            syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX,
                          verb == LBD_RELAY_VERB_EHLO ? "Syntax: EHLO domain"
                                                      : "Syntax: HELO domain");
            return NULL;
          }
        command->argument = g_steal_pointer (&domain);
      }
      break;

    case LBD_RELAY_VERB_MAIL:
    case LBD_RELAY_VERB_RCPT:
      if (args == NULL)
        {
          syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX,
                        verb == LBD_RELAY_VERB_MAIL ? "Syntax: MAIL FROM:<address>"
                                                    : "Syntax: RCPT TO:<address>");
          return NULL;
        }
      if (!parse_path (command, args, args_len, error))
        return NULL;
      break;

    case LBD_RELAY_VERB_DATA:
    case LBD_RELAY_VERB_RSET:
    case LBD_RELAY_VERB_QUIT:
      if (args != NULL)
        {
          syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "This command takes no argument");
          return NULL;
        }
      break;

    case LBD_RELAY_VERB_VRFY:
      if (args == NULL || args_len == 0)
        {
          syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "Syntax: VRFY address");
          return NULL;
        }
      command->argument = g_strndup (args, args_len);
      break;

    case LBD_RELAY_VERB_NOOP:
    case LBD_RELAY_VERB_HELP:
      if (args != NULL)
        command->argument = g_strndup (args, args_len);
      break;

    case LBD_RELAY_VERB_AUTH:
      if (args == NULL || !parse_auth (command, args, args_len, error))
        {
          if (args == NULL)
            syntax_error (error, LBD_RELAY_PARSE_ERROR_SYNTAX, "Syntax: AUTH mechanism [response]");
          return NULL;
        }
      break;

    default:
      g_assert_not_reached ();
    }

  return g_steal_pointer (&command);
}

/* AUTH */

static int
base64_value (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/**
 * lbd_relay_base64_decode:
 *
 * Returns: (transfer full): the decoded bytes (NUL-terminated beyond @out_len), or %NULL
 *   with %LBD_RELAY_PARSE_ERROR_BAD_RESPONSE
 */
guint8 *
lbd_relay_base64_decode (const char  *text,
                         gsize       *out_len,
                         GError     **error)
{
  gsize len = strlen (text);
  g_autofree guint8 *out = g_malloc (len / 4 * 3 + 1);
  gsize n = 0;

  *out_len = 0;
  if (len % 4 != 0)
    {
      syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE, "Cannot decode response");
      return NULL;
    }
  for (gsize i = 0; i < len; i += 4)
    {
      int v[4];
      int pad = 0;

      for (int k = 0; k < 4; k++)
        {
          char c = text[i + k];

          if (c == '=' && i + 4 == len && k >= 2 && (k == 3 || text[i + 3] == '='))
            {
              v[k] = 0;
              pad++;
            }
          else if ((v[k] = base64_value (c)) < 0 || pad > 0)
            {
              syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE, "Cannot decode response");
              return NULL;
            }
        }
      out[n++] = (guint8) ((v[0] << 2) | (v[1] >> 4));
      if (pad < 2)
        out[n++] = (guint8) (((v[1] & 0xf) << 4) | (v[2] >> 2));
      if (pad < 1)
        out[n++] = (guint8) (((v[2] & 0x3) << 6) | v[3]);
    }
  out[n] = '\0';
  *out_len = n;
  return g_steal_pointer (&out);
}

/**
 * lbd_relay_sasl_plain_decode:
 * @base64: the client's response ("=" or "" for an empty one)
 *
 * Splits a PLAIN response. The three fields must be valid UTF-8 (RFC 4616 §2); the
 * authentication identity and the password must not be empty.
 */
gboolean
lbd_relay_sasl_plain_decode (const char  *base64,
                             char       **authzid,
                             char       **authcid,
                             char       **password,
                             GError     **error)
{
  g_autofree guint8 *raw = NULL;
  const char *first, *second;
  gsize len;

  *authzid = *authcid = *password = NULL;
  raw = lbd_relay_base64_decode (g_str_equal (base64, "=") ? "" : base64, &len, error);
  if (raw == NULL)
    return FALSE;

  first = memchr (raw, '\0', len);
  second = first != NULL ? memchr (first + 1, '\0', len - (first + 1 - (const char *) raw)) : NULL;
  if (second == NULL || memchr (second + 1, '\0', len - (second + 1 - (const char *) raw)) != NULL)
    return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE,
                         "PLAIN response must be authzid NUL authcid NUL password");
  if (second == first + 1 || (const char *) raw + len == second + 1)
    return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE,
                         "PLAIN response lacks a user name or password");
  if (!g_utf8_validate ((const char *) raw, -1, NULL) || !g_utf8_validate (first + 1, -1, NULL) ||
      !g_utf8_validate (second + 1, -1, NULL))
    return syntax_error (error, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE,
                         "PLAIN response is not UTF-8");

  *authzid = g_strdup ((const char *) raw);
  *authcid = g_strdup (first + 1);
  *password = g_strdup (second + 1);
  memset (raw, 0, len);
  return TRUE;
}

/* DATA (RFC 5321 §4.1.1.4, §4.5.2) */

enum
{
  DATA_LINE_START,
  DATA_MID,
  DATA_CR,
  DATA_DOT,
  DATA_DOT_CR,
  DATA_DONE,
};

void
lbd_relay_data_decoder_init (LbdRelayDataDecoder *decoder)
{
  memset (decoder, 0, sizeof *decoder);
  decoder->state = DATA_LINE_START;
}

static inline void
data_emit (LbdRelayDataDecoder *d,
           GByteArray          *out,
           const guint8        *bytes,
           gsize                n)
{
  d->size += n;
  if (out != NULL && d->flaws == 0)
    g_byte_array_append (out, bytes, n);
}

static inline void
data_content (LbdRelayDataDecoder *d,
              GByteArray          *out,
              guint8               c)
{
  if (c == '\n')
    d->flaws |= LBD_RELAY_DATA_BARE_LF;
  else if (c == '\0')
    d->flaws |= LBD_RELAY_DATA_NUL;
  d->line_len++;
  if (d->line_len > LBD_RELAY_MAX_LINE - 2)
    d->flaws |= LBD_RELAY_DATA_LONG_LINE;
  data_emit (d, out, &c, 1);
}

/**
 * lbd_relay_data_decode:
 * @decoder: state carried across calls (lbd_relay_data_decoder_init() first)
 * @data: bytes received after the 354 reply
 * @out: (nullable): receives the message: dot-stuffing undone, line ends as sent
 *   (CRLF), no end-of-data line; nothing more once a flaw is found
 * @done: (out): set when the end-of-data line was read
 *
 * Returns: how many bytes of @data belong to the message (through the end-of-data line
 *   when @done); the rest is the client's next command
 */
gsize
lbd_relay_data_decode (LbdRelayDataDecoder *decoder,
                       const guint8        *data,
                       gsize                len,
                       GByteArray          *out,
                       gboolean            *done)
{
  LbdRelayDataDecoder *d = decoder;
  gsize i = 0;

  *done = d->state == DATA_DONE;
  while (i < len && d->state != DATA_DONE)
    {
      guint8 c = data[i];

      switch (d->state)
        {
        case DATA_LINE_START:
          if (c == '.')
            {
              d->state = DATA_DOT;
              i++;
              continue;
            }
          d->state = DATA_MID;
          continue;

        case DATA_DOT:
          if (c == '\r')
            {
              d->state = DATA_DOT_CR;
              i++;
              continue;
            }
          /* The leading dot was stuffing: drop it, the byte is content. */
          d->state = DATA_MID;
          continue;

        case DATA_DOT_CR:
          if (c == '\n')
            {
              d->state = DATA_DONE;
              i++;
              continue;
            }
          d->flaws |= LBD_RELAY_DATA_BARE_CR;
          d->line_len++;
          data_emit (d, out, (const guint8 *) "\r", 1);
          d->state = DATA_MID;
          continue;

        case DATA_MID:
          {
            gsize run = i;

            /* The common case in bulk: bytes that need no decision. */
            while (run < len && data[run] != '\r' && data[run] != '\n' && data[run] != '\0')
              run++;
            if (run > i)
              {
                d->line_len += run - i;
                if (d->line_len > LBD_RELAY_MAX_LINE - 2)
                  d->flaws |= LBD_RELAY_DATA_LONG_LINE;
                data_emit (d, out, data + i, run - i);
                i = run;
                continue;
              }
            if (c == '\r')
              d->state = DATA_CR;
            else
              data_content (d, out, c);
            i++;
          }
          continue;

        case DATA_CR:
          if (c == '\n')
            {
              data_emit (d, out, (const guint8 *) "\r\n", 2);
              d->line_len = 0;
              d->state = DATA_LINE_START;
              i++;
              continue;
            }
          /* The CR before was bare; this byte is looked at afresh. */
          d->flaws |= LBD_RELAY_DATA_BARE_CR;
          data_content (d, out, '\r');
          d->state = DATA_MID;
          continue;

        default:
          g_assert_not_reached ();
        }
    }
  *done = d->state == DATA_DONE;
  return i;
}

/**
 * lbd_relay_data_flaws_reply:
 *
 * Returns: the whole reply line (without CRLF) refusing a message with @flaws
 */
const char *
lbd_relay_data_flaws_reply (LbdRelayDataFlaws flaws)
{
  if (flaws & LBD_RELAY_DATA_NUL)
    return "550 5.6.0 Message refused: it contains a NUL byte";
  if (flaws & (LBD_RELAY_DATA_BARE_CR | LBD_RELAY_DATA_BARE_LF))
    return "550 5.6.0 Message refused: bare CR or LF; lines must end with CRLF";
  if (flaws & LBD_RELAY_DATA_LONG_LINE)
    return "550 5.6.0 Message refused: a line is longer than 1000 octets";
  return "250 2.0.0 Ok";
}
