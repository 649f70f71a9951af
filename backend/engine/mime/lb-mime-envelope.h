/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * LbMimeEnvelope:
 * @sender: (nullable): the address of the first From mailbox (else of Sender), or %NULL
 * @recipients: the addresses of the To, Cc and Bcc fields, groups opened, each once
 *   (compared without case), in the order they appear
 * @message: the message as given, less every Bcc field (its continuation lines too)
 *
 * What `sendmail -t` and an envelope-less submission take from a message's header.
 */
typedef struct
{
  char *sender;
  GStrv recipients;
  GBytes *message;
} LbMimeEnvelope;

LbMimeEnvelope *lb_mime_envelope_from_message (GBytes          *message,
                                               GError         **error);
void            lb_mime_envelope_free         (LbMimeEnvelope  *envelope);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbMimeEnvelope, lb_mime_envelope_free)

G_END_DECLS
