/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

#include "lb-imap-response.h"

G_BEGIN_DECLS

#define LB_IMAP_PARSE_ERROR (lb_imap_parse_error_quark ())

/**
 * LbImapParseError:
 * @LB_IMAP_PARSE_ERROR_SYNTAX: the server sent something the grammar does not allow
 * @LB_IMAP_PARSE_ERROR_TOO_LONG: a line, literal or nesting went past the parser's limits
 * @LB_IMAP_PARSE_ERROR_SINK: the literal sink refused the data (its message is included)
 *
 * Every one of these is a protocol violation: the connection cannot be trusted to be in
 * step any more and must be closed.
 */
typedef enum
{
  LB_IMAP_PARSE_ERROR_SYNTAX,
  LB_IMAP_PARSE_ERROR_TOO_LONG,
  LB_IMAP_PARSE_ERROR_SINK,
} LbImapParseError;

GQuark lb_imap_parse_error_quark (void);

/**
 * LbImapParserLimits:
 * @max_line: bytes of response text (literals not counted) in one response
 * @max_literal: the largest literal kept in memory
 * @stream_threshold: literals of a FETCH response at least this large go to the sink
 *   (when there is one) instead of memory
 * @max_depth: deepest nesting of parenthesised lists
 *
 * Bounds on what one response may make the parser allocate; past them the response is
 * a %LB_IMAP_PARSE_ERROR_TOO_LONG, never an unbounded allocation.
 */
typedef struct
{
  gsize max_line;
  guint64 max_literal;
  guint64 stream_threshold;
  guint max_depth;
} LbImapParserLimits;

/* Where a streamed literal belongs: the FETCH response's sequence number and the item
 * the literal is the value of. */
typedef struct
{
  guint32 seq;
  const char *item;  /* "BODY[]", "BINARY[1]", "RFC822", … */
  guint64 size;
  gboolean binary;   /* literal8 */
} LbImapLiteralInfo;

/**
 * LbImapLiteralSink:
 * @begin: a streamed literal starts; returns the caller's handle for it or %NULL with
 *   @error set
 * @write: the next bytes of it, in order
 * @end: it is complete (called before the response it belongs to is returned)
 * @abort: the response will never complete (parse error, or the parser is freed)
 *
 * Called from within lb_imap_parser_feed(), in its thread.
 */
typedef struct
{
  gpointer (*begin) (const LbImapLiteralInfo *info, gpointer user_data, GError **error);
  gboolean (*write) (gpointer handle, const guint8 *data, gsize len, gpointer user_data,
                     GError **error);
  gboolean (*end)   (gpointer handle, gpointer user_data, GError **error);
  void     (*abort) (gpointer handle, gpointer user_data);
} LbImapLiteralSink;

typedef struct _LbImapParser LbImapParser;

void            lb_imap_parser_default_limits (LbImapParserLimits        *limits);

LbImapParser   *lb_imap_parser_new          (const LbImapParserLimits  *limits);
void            lb_imap_parser_free         (LbImapParser              *parser);
void            lb_imap_parser_set_sink     (LbImapParser              *parser,
                                             const LbImapLiteralSink   *sink,
                                             gpointer                   user_data);
gboolean        lb_imap_parser_feed         (LbImapParser              *parser,
                                             const guint8              *data,
                                             gsize                      len,
                                             GError                   **error);
LbImapResponse *lb_imap_parser_pop          (LbImapParser              *parser);
gboolean        lb_imap_parser_is_idle      (LbImapParser              *parser);

LbImapResponse *lb_imap_parse_response      (const char                *line,
                                             gsize                      len,
                                             GError                   **error);

char           *lb_imap_utf7_decode         (const char                *name,
                                             gsize                      len,
                                             GError                   **error);
char           *lb_imap_utf7_encode         (const char                *utf8);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbImapParser, lb_imap_parser_free)

G_END_DECLS
