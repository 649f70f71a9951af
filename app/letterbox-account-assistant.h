/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define LETTERBOX_TYPE_ACCOUNT_ASSISTANT (letterbox_account_assistant_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxAccountAssistant, letterbox_account_assistant, LETTERBOX,
                      ACCOUNT_ASSISTANT, AdwWindow)

LetterboxAccountAssistant *letterbox_account_assistant_new             (GtkWindow   *parent);
LetterboxAccountAssistant *letterbox_account_assistant_new_for_account (GtkWindow   *parent,
                                                                        const char  *account_id,
                                                                        GError     **error);
const char                *letterbox_account_assistant_get_account_id  (LetterboxAccountAssistant *self);
void                       letterbox_account_assistant_check_now       (LetterboxAccountAssistant *self);

G_END_DECLS
