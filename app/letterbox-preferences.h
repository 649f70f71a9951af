/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define LETTERBOX_TYPE_PREFERENCES (letterbox_preferences_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxPreferences, letterbox_preferences, LETTERBOX, PREFERENCES,
                      AdwPreferencesWindow)

LetterboxPreferences *letterbox_preferences_new    (GtkWindow            *parent);
void                  letterbox_preferences_reload (LetterboxPreferences *self);

G_END_DECLS
