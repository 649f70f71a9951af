/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

#include "letterbox-account-states.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_STATUS_AREA (letterbox_status_area_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxStatusArea, letterbox_status_area, LETTERBOX, STATUS_AREA,
                      GtkWidget)

GtkWidget *letterbox_status_area_new                 (void);
void       letterbox_status_area_set_account_states  (LetterboxStatusArea    *self,
                                                      LetterboxAccountStates *states);
void       letterbox_status_area_set_network_monitor (LetterboxStatusArea    *self,
                                                      GNetworkMonitor        *monitor);
gboolean   letterbox_status_area_get_offline         (LetterboxStatusArea    *self);
guint      letterbox_status_area_get_n_problems      (LetterboxStatusArea    *self);

G_END_DECLS
