/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LB_SMTP_PARSE_ERROR (lb_smtp_parse_error_quark ())

typedef enum
{
  LB_SMTP_PARSE_ERROR_SYNTAX,
  LB_SMTP_PARSE_ERROR_TOO_LONG,
} LbSmtpParseError;

GQuark lb_smtp_parse_error_quark (void);

/* One SMTP reply (RFC 5321 §4.2): a three-digit code and one or more lines of text, with
 * the enhanced status code (RFC 3463) when the first line starts with one. */
typedef struct
{
  guint code;
  gboolean has_enhanced;
  guint enhanced[3];
  GPtrArray *lines; /* char*, the text of each line without code and enhanced code */
} LbSmtpReply;

void      lb_smtp_reply_free       (LbSmtpReply *reply);
char     *lb_smtp_reply_dup_text   (const LbSmtpReply *reply);
gboolean  lb_smtp_reply_is_positive (const LbSmtpReply *reply);
gboolean  lb_smtp_reply_is_transient (const LbSmtpReply *reply);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbSmtpReply, lb_smtp_reply_free)

typedef struct _LbSmtpReplyParser LbSmtpReplyParser;

LbSmtpReplyParser *lb_smtp_reply_parser_new  (void);
void               lb_smtp_reply_parser_free (LbSmtpReplyParser *parser);
gboolean           lb_smtp_reply_parser_feed (LbSmtpReplyParser *parser,
                                              const guint8      *data,
                                              gsize              len,
                                              GError           **error);
LbSmtpReply       *lb_smtp_reply_parser_pop  (LbSmtpReplyParser *parser);
gboolean           lb_smtp_reply_parser_is_empty (LbSmtpReplyParser *parser);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbSmtpReplyParser, lb_smtp_reply_parser_free)

/* What an EHLO reply says the server can do (RFC 5321 §4.1.1.1 and the extensions). */
typedef enum
{
  LB_SMTP_CAP_PIPELINING = 1 << 0,          /* RFC 2920 */
  LB_SMTP_CAP_8BITMIME = 1 << 1,            /* RFC 6152 */
  LB_SMTP_CAP_SMTPUTF8 = 1 << 2,            /* RFC 6531 */
  LB_SMTP_CAP_CHUNKING = 1 << 3,            /* RFC 3030 */
  LB_SMTP_CAP_BINARYMIME = 1 << 4,          /* RFC 3030 */
  LB_SMTP_CAP_DSN = 1 << 5,                 /* RFC 3461 */
  LB_SMTP_CAP_ENHANCEDSTATUSCODES = 1 << 6, /* RFC 2034 */
  LB_SMTP_CAP_STARTTLS = 1 << 7,            /* RFC 3207 */
  LB_SMTP_CAP_SIZE = 1 << 8,                /* RFC 1870 */
  LB_SMTP_CAP_AUTH = 1 << 9,                /* RFC 4954 */
  LB_SMTP_CAP_REQUIRETLS = 1 << 10,         /* RFC 8689 */
} LbSmtpCapabilities;

typedef struct
{
  char *domain;           /* the server's name from the first line */
  LbSmtpCapabilities caps;
  guint64 size_limit;     /* SIZE n; 0 when unlimited or not announced */
  char **auth_mechanisms; /* upper case, never NULL */
} LbSmtpEhlo;

LbSmtpEhlo *lb_smtp_ehlo_parse (const LbSmtpReply *reply,
                                GError           **error);
void        lb_smtp_ehlo_free  (LbSmtpEhlo        *ehlo);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbSmtpEhlo, lb_smtp_ehlo_free)

G_END_DECLS
