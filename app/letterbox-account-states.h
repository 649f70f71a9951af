/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-bus-backend1.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_ACCOUNT_STATES (letterbox_account_states_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxAccountStates, letterbox_account_states, LETTERBOX,
                      ACCOUNT_STATES, GObject)

LetterboxAccountStates *letterbox_account_states_new              (void);
void                    letterbox_account_states_set_backend      (LetterboxAccountStates *self,
                                                                   LbBusBackend1          *backend);
LbBusBackend1          *letterbox_account_states_get_backend      (LetterboxAccountStates *self);
GVariant               *letterbox_account_states_get_state        (LetterboxAccountStates *self,
                                                                   const char             *account_id);
const char             *letterbox_account_states_get_display_name (LetterboxAccountStates *self,
                                                                   const char             *account_id);
gboolean                letterbox_account_states_get_syncing      (LetterboxAccountStates *self,
                                                                   const char             *account_id);
GStrv                   letterbox_account_states_dup_syncing      (LetterboxAccountStates *self);
guint                   letterbox_account_states_get_n_list_calls (LetterboxAccountStates *self);

G_END_DECLS
