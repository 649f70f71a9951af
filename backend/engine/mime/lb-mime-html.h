/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char *lb_mime_html_to_text (const char *html,
                            gssize      len);

G_END_DECLS
