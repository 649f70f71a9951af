/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gmime/gmime.h>

#include "lb-mime-build.h"

G_BEGIN_DECLS

/* The most msg-ids a reply's References keeps: the first and the latest ones. */
#define LB_MIME_REFERENCES_MAX 20

LbMimeDraft *lb_mime_reply_draft     (GMimeMessage *original,
                                      const char   *my_address,
                                      gboolean      reply_all);
LbMimeDraft *lb_mime_forward_draft   (GMimeMessage *original,
                                      gboolean      inline_forward);

char        *lb_mime_reply_subject   (const char   *subject);
char        *lb_mime_forward_subject (const char   *subject);
char        *lb_mime_quote_text      (const char   *text);

G_END_DECLS
