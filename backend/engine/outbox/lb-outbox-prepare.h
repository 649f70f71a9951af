/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

#include "lb-account.h"
#include "lb-smtp-session.h"

G_BEGIN_DECLS

/*
 * The outbox's pure parts (no I/O, no store): checking a submission's addresses and
 * header, the header fields a submission service adds (RFC 6409 §8), recognising the
 * local user, and choosing the account that sends. Unit-tested and fuzzed.
 */

#define LB_OUTBOX_ERROR (lb_outbox_error_quark ())

/**
 * LbOutboxError:
 * @LB_OUTBOX_ERROR_INVALID: the submission is unusable (no recipient, a bad address, an
 *   empty message, a header that is none); nothing was queued
 * @LB_OUTBOX_ERROR_NO_ACCOUNT: no configured account can send to these recipients
 * @LB_OUTBOX_ERROR_NOT_FOUND: no queued message has that queue id (or it was cancelled)
 * @LB_OUTBOX_ERROR_BUSY: the message is being sent right now
 * @LB_OUTBOX_ERROR_ALREADY_SENT: the message has already been sent
 */
typedef enum
{
  LB_OUTBOX_ERROR_INVALID,
  LB_OUTBOX_ERROR_NO_ACCOUNT,
  LB_OUTBOX_ERROR_NOT_FOUND,
  LB_OUTBOX_ERROR_BUSY,
  LB_OUTBOX_ERROR_ALREADY_SENT,
} LbOutboxError;

GQuark lb_outbox_error_quark (void);

/* The longest header section a submission may have (Postfix's header_size_limit is
 * 100 KB; beyond this it is no header). */
#define LB_OUTBOX_MAX_HEADER (1024 * 1024)

/**
 * LbOutboxPrepared:
 * @prefix: header fields to put in front of the message: `Date:` and `Message-ID:` when
 *   it lacks them, with the message's own line ends; "" when nothing is missing
 * @subject: the decoded Subject, "" without one
 * @message_id: the message's Message-ID, or the one added, without angle brackets
 * @header_size: bytes of the header section of the message as given, with the empty
 *   line that ends it (the whole message when there is no body)
 */
typedef struct
{
  char *prefix;
  char *subject;
  char *message_id;
  gsize header_size;
} LbOutboxPrepared;

LbOutboxPrepared *lb_outbox_prepare_message   (const guint8       *data,
                                               gsize               len,
                                               const char         *domain,
                                               GDateTime          *now,
                                               GError            **error);
void              lb_outbox_prepared_free     (LbOutboxPrepared   *prepared);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbOutboxPrepared, lb_outbox_prepared_free)

gboolean          lb_outbox_check_address     (const char         *address,
                                               GError            **error);
gboolean          lb_outbox_address_is_local  (const char         *address,
                                               const char         *user_name,
                                               const char         *host_name);
char             *lb_outbox_message_id_domain (const char         *sender,
                                               const char         *host_name);

/**
 * LbOutboxRoute:
 * @account: (nullable): the account that sends (borrowed from the list), %NULL when none
 *   can
 * @address: the envelope sender to use with it: the given one when it is one of the
 *   account's addresses, else the account's own address
 * @matched: the sender is one of @account's addresses (or the account was named)
 */
typedef struct
{
  const LbAccount *account;
  char *address;
  gboolean matched;
} LbOutboxRoute;

gboolean          lb_outbox_route             (GPtrArray          *accounts,
                                               const char         *sender,
                                               const char         *account_id,
                                               LbOutboxRoute      *route,
                                               GError            **error);
void              lb_outbox_route_clear       (LbOutboxRoute      *route);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (LbOutboxRoute, lb_outbox_route_clear)

LbSmtpMessageFlags lb_outbox_message_transport (const guint8      *data,
                                               gsize               len,
                                               gsize               header_size);

G_END_DECLS
