/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <adwaita.h>

#include "lb-bus-backend1.h"
#include "lb-store.h"

G_BEGIN_DECLS

#define LETTERBOX_TYPE_APPLICATION (letterbox_application_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxApplication, letterbox_application, LETTERBOX, APPLICATION,
                      AdwApplication)

LetterboxApplication *letterbox_application_new         (void);
LbBusBackend1        *letterbox_application_get_backend (LetterboxApplication *self);
void                  letterbox_application_open_store_async  (LetterboxApplication  *self,
                                                               GCancellable          *cancellable,
                                                               GAsyncReadyCallback    callback,
                                                               gpointer               user_data);
LbStore              *letterbox_application_open_store_finish (LetterboxApplication  *self,
                                                               GAsyncResult          *result,
                                                               GError               **error);

G_END_DECLS
