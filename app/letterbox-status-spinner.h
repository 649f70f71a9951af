/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "letterbox-account-states.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_STATUS_SPINNER (letterbox_status_spinner_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxStatusSpinner, letterbox_status_spinner, LETTERBOX,
                      STATUS_SPINNER, GtkWidget)

GtkWidget *letterbox_status_spinner_new                (void);
void       letterbox_status_spinner_set_account_states (LetterboxStatusSpinner *self,
                                                        LetterboxAccountStates *states);

G_END_DECLS
