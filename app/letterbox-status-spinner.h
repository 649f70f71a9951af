/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "lb-bus-backend1.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_STATUS_SPINNER (letterbox_status_spinner_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxStatusSpinner, letterbox_status_spinner, LETTERBOX,
                      STATUS_SPINNER, GtkWidget)

GtkWidget *letterbox_status_spinner_new         (void);
void       letterbox_status_spinner_set_backend (LetterboxStatusSpinner *self,
                                                 LbBusBackend1          *backend);

G_END_DECLS
