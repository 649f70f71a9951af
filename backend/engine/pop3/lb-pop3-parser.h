/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LB_POP3_PARSE_ERROR (lb_pop3_parse_error_quark ())

typedef enum
{
  LB_POP3_PARSE_ERROR_SYNTAX,
  LB_POP3_PARSE_ERROR_TOO_LONG,
  LB_POP3_PARSE_ERROR_UNEXPECTED,
  LB_POP3_PARSE_ERROR_SINK,
} LbPop3ParseError;

GQuark lb_pop3_parse_error_quark (void);

/* What the next response is (the client knows from the command it sent, RFC 1939 §3). */
typedef enum
{
  LB_POP3_EXPECT_LINE,      /* a status line only (USER, PASS, STAT, DELE, QUIT…) */
  LB_POP3_EXPECT_MULTILINE, /* status, then data up to "." kept in memory (CAPA, LIST, UIDL, TOP) */
  LB_POP3_EXPECT_STREAMED,  /* status, then data up to "." handed to the sink (RETR) */
  LB_POP3_EXPECT_AUTH,      /* AUTH (RFC 5034 §4): "+ challenge" lines, each one a response
                             * with continuation set, until the final status line */
} LbPop3Expect;

typedef struct
{
  gboolean ok;         /* +OK or -ERR */
  char *code;          /* RFC 2449 extended response code ("IN-USE", "SYS/TEMP"…), or NULL */
  char *text;
  GByteArray *data;    /* MULTILINE: the data, dot-stuffing undone, CRLF kept; else NULL */
  guint64 data_size;   /* bytes of data (also when streamed) */
  gboolean continuation; /* EXPECT_AUTH: a "+ " challenge (its base64 in text), not the end */
} LbPop3Response;

void lb_pop3_response_free (LbPop3Response *response);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbPop3Response, lb_pop3_response_free)

/* Receives a streamed response's data in order, dot-stuffing undone. */
typedef gboolean (*LbPop3SinkFunc) (const guint8 *data,
                                    gsize         len,
                                    gpointer      user_data,
                                    GError      **error);

typedef struct _LbPop3Parser LbPop3Parser;

LbPop3Parser   *lb_pop3_parser_new      (void);
void            lb_pop3_parser_free     (LbPop3Parser   *parser);
void            lb_pop3_parser_expect   (LbPop3Parser   *parser,
                                         LbPop3Expect    expect);
void            lb_pop3_parser_set_sink (LbPop3Parser   *parser,
                                         LbPop3SinkFunc  sink,
                                         gpointer        user_data);
gboolean        lb_pop3_parser_feed     (LbPop3Parser   *parser,
                                         const guint8   *data,
                                         gsize           len,
                                         GError        **error);
LbPop3Response *lb_pop3_parser_pop      (LbPop3Parser   *parser);
guint           lb_pop3_parser_count_ready (LbPop3Parser *parser);
gboolean        lb_pop3_parser_is_idle  (LbPop3Parser   *parser);

gboolean        lb_pop3_parse_scan_line (const char     *line,
                                         guint32        *number,
                                         guint64        *size);
gboolean        lb_pop3_parse_uidl_line (const char     *line,
                                         guint32        *number,
                                         char          **uid);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbPop3Parser, lb_pop3_parser_free)

G_END_DECLS
