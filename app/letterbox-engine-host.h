/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define LETTERBOX_TYPE_ENGINE_HOST (letterbox_engine_host_get_type ())
G_DECLARE_FINAL_TYPE (LetterboxEngineHost, letterbox_engine_host, LETTERBOX, ENGINE_HOST,
                      GObject)

LetterboxEngineHost *letterbox_engine_host_new         (GDBusConnection      *connection,
                                                        GSettings            *settings);
void                 letterbox_engine_host_start       (LetterboxEngineHost  *self);
gboolean             letterbox_engine_host_get_hosting (LetterboxEngineHost  *self);
gboolean             letterbox_engine_host_get_serving (LetterboxEngineHost  *self);
void                 letterbox_engine_host_stop_async  (LetterboxEngineHost  *self,
                                                        GAsyncReadyCallback   callback,
                                                        gpointer              user_data);
gboolean             letterbox_engine_host_stop_finish (LetterboxEngineHost  *self,
                                                        GAsyncResult         *result,
                                                        GError              **error);

G_END_DECLS
