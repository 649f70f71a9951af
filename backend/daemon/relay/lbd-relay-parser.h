/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The pure part of the relay's SMTP server (RFC 5321): bytes in, structures out, no I/O.
 * Unit-tested and fuzzed. Three pieces:
 *
 *  - lbd_relay_line_next() cuts command lines out of the input (CRLF only, bounded);
 *  - lbd_relay_command_parse() reads one command line;
 *  - LbdRelayDataDecoder undoes DATA's dot-stuffing and finds the end of data.
 *
 * Error messages are SMTP reply text (ASCII, untranslated: they go on the wire).
 */

#define LBD_RELAY_PARSE_ERROR (lbd_relay_parse_error_quark ())

/**
 * LbdRelayParseError:
 * @LBD_RELAY_PARSE_ERROR_LINE_TOO_LONG: a line over the limit (500 5.5.2)
 * @LBD_RELAY_PARSE_ERROR_BARE_LINE_END: a CR or LF that is not part of a CRLF (500 5.5.2)
 * @LBD_RELAY_PARSE_ERROR_NUL: a NUL byte (500 5.5.2)
 * @LBD_RELAY_PARSE_ERROR_UNKNOWN_COMMAND: no such command (500 5.5.1)
 * @LBD_RELAY_PARSE_ERROR_NOT_IMPLEMENTED: a command this server does not offer, such as
 *   STARTTLS, BDAT, EXPN (502 5.5.1)
 * @LBD_RELAY_PARSE_ERROR_SYNTAX: bad arguments (501 5.5.4), control characters (501 5.5.2)
 * @LBD_RELAY_PARSE_ERROR_BAD_SENDER: MAIL's reverse-path is not an address (501 5.1.7)
 * @LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT: RCPT's forward-path is not an address (501 5.1.3)
 * @LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER: an ESMTP parameter not offered (555 5.5.4)
 * @LBD_RELAY_PARSE_ERROR_BAD_PARAMETER: a known parameter with a bad value, or twice
 *   (501 5.5.4)
 * @LBD_RELAY_PARSE_ERROR_BAD_RESPONSE: an AUTH response that is not base64 or not what
 *   the mechanism expects (501 5.5.2)
 */
typedef enum
{
  LBD_RELAY_PARSE_ERROR_LINE_TOO_LONG,
  LBD_RELAY_PARSE_ERROR_BARE_LINE_END,
  LBD_RELAY_PARSE_ERROR_NUL,
  LBD_RELAY_PARSE_ERROR_UNKNOWN_COMMAND,
  LBD_RELAY_PARSE_ERROR_NOT_IMPLEMENTED,
  LBD_RELAY_PARSE_ERROR_SYNTAX,
  LBD_RELAY_PARSE_ERROR_BAD_SENDER,
  LBD_RELAY_PARSE_ERROR_BAD_RECIPIENT,
  LBD_RELAY_PARSE_ERROR_UNKNOWN_PARAMETER,
  LBD_RELAY_PARSE_ERROR_BAD_PARAMETER,
  LBD_RELAY_PARSE_ERROR_BAD_RESPONSE,
} LbdRelayParseError;

GQuark       lbd_relay_parse_error_quark (void);
const char  *lbd_relay_parse_error_reply (const GError *error);

/* RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with its CRLF. Command lines
 * (512 in §4.5.3.1.4, raised by extensions) get the same bound. */
#define LBD_RELAY_MAX_LINE 1000

typedef enum
{
  LBD_RELAY_LINE_MORE,
  LBD_RELAY_LINE_OK,
  LBD_RELAY_LINE_ERROR,
} LbdRelayLineResult;

LbdRelayLineResult lbd_relay_line_next (gboolean      *skipping,
                                        const guint8  *data,
                                        gsize          len,
                                        gsize         *line_len,
                                        gsize         *consumed,
                                        GError       **error);

typedef enum
{
  LBD_RELAY_VERB_HELO,
  LBD_RELAY_VERB_EHLO,
  LBD_RELAY_VERB_MAIL,
  LBD_RELAY_VERB_RCPT,
  LBD_RELAY_VERB_DATA,
  LBD_RELAY_VERB_RSET,
  LBD_RELAY_VERB_NOOP,
  LBD_RELAY_VERB_QUIT,
  LBD_RELAY_VERB_VRFY,
  LBD_RELAY_VERB_HELP,
  LBD_RELAY_VERB_AUTH,
} LbdRelayVerb;

typedef enum
{
  LBD_RELAY_BODY_UNSPECIFIED,
  LBD_RELAY_BODY_7BIT,
  LBD_RELAY_BODY_8BITMIME,
} LbdRelayBody;

/**
 * LbdRelayCommand:
 * @verb: the command
 * @argument: HELO/EHLO's domain, VRFY's, HELP's or NOOP's text (%NULL when none), AUTH's
 *   mechanism in upper case
 * @address: MAIL's or RCPT's mailbox without angle brackets and source route; "" for
 *   MAIL's null reverse-path (`MAIL FROM:<>`)
 * @address_utf8: the address has non-ASCII characters (needs SMTPUTF8, RFC 6531)
 * @has_size: MAIL carried SIZE= (RFC 1870); @size its value, G_MAXUINT64 when larger
 * @body: MAIL's BODY= (RFC 6152)
 * @smtputf8: MAIL carried SMTPUTF8 (RFC 6531)
 * @auth_response: AUTH's initial response as sent (base64, or "=" for an empty one),
 *   %NULL when none (RFC 4954)
 *
 * AUTH= on MAIL (RFC 4954 §5) and DSN's RET, ENVID, NOTIFY, ORCPT (RFC 3461) are
 * checked and ignored: the relay offers no DSN and trusts its own authentication.
 */
typedef struct
{
  LbdRelayVerb verb;
  char *argument;
  char *address;
  gboolean address_utf8;
  gboolean has_size;
  guint64 size;
  LbdRelayBody body;
  gboolean smtputf8;
  char *auth_response;
} LbdRelayCommand;

LbdRelayCommand *lbd_relay_command_parse (const char       *line,
                                          gsize             len,
                                          GError          **error);
void             lbd_relay_command_free  (LbdRelayCommand  *command);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbdRelayCommand, lbd_relay_command_free)

/* RFC 5321 §4.1.2 with the RFC 6531 extension (UTF-8 when @utf8_ok). */
gboolean lbd_relay_address_validate (const char  *address,
                                     gsize        len,
                                     gboolean     utf8_ok,
                                     GError     **error);

/* Base64 as RFC 4648 §4 says, strictly: no whitespace, padding only at the end. */
guint8  *lbd_relay_base64_decode (const char  *text,
                                  gsize       *out_len,
                                  GError     **error);

/* RFC 4616: "[authzid] NUL authcid NUL passwd", from base64. */
gboolean lbd_relay_sasl_plain_decode (const char  *base64,
                                      char       **authzid,
                                      char       **authcid,
                                      char       **password,
                                      GError     **error);

/**
 * LbdRelayDataFlaws:
 * @LBD_RELAY_DATA_BARE_CR: a CR not followed by LF
 * @LBD_RELAY_DATA_BARE_LF: an LF without CR before it
 * @LBD_RELAY_DATA_NUL: a NUL byte
 * @LBD_RELAY_DATA_LONG_LINE: a line over %LBD_RELAY_MAX_LINE octets with its CRLF
 *
 * Each makes the message unacceptable (550 5.6.0 after the end of data). A bare CR or
 * LF never ends a line, so "LF . CRLF" never ends the data (the SMTP smuggling attack).
 */
typedef enum
{
  LBD_RELAY_DATA_BARE_CR = 1 << 0,
  LBD_RELAY_DATA_BARE_LF = 1 << 1,
  LBD_RELAY_DATA_NUL = 1 << 2,
  LBD_RELAY_DATA_LONG_LINE = 1 << 3,
} LbdRelayDataFlaws;

typedef struct
{
  guint state;
  gsize line_len;
  guint64 size;
  LbdRelayDataFlaws flaws;
} LbdRelayDataDecoder;

void  lbd_relay_data_decoder_init (LbdRelayDataDecoder *decoder);
gsize lbd_relay_data_decode       (LbdRelayDataDecoder *decoder,
                                   const guint8        *data,
                                   gsize                len,
                                   GByteArray          *out,
                                   gboolean            *done);
const char *lbd_relay_data_flaws_reply (LbdRelayDataFlaws flaws);

G_END_DECLS
