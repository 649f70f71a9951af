/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A small JSON writer (RFC 8259) for `letterbox-ctl --json`: one document on one line,
 * members separated by ", " and names by ": ". Strings are escaped as the RFC requires
 * (quotation mark, reverse solidus, control characters), plus U+2028/U+2029 for readers
 * that are JavaScript; bytes that are not UTF-8 become U+FFFD, so the output is always
 * valid JSON. Misnesting is a programming error (g_return_if_fail). */

typedef struct _LbctlJson LbctlJson;

LbctlJson *lbctl_json_new            (void);
void       lbctl_json_free           (LbctlJson  *json);
char      *lbctl_json_free_to_string (LbctlJson  *json);

void       lbctl_json_begin_object   (LbctlJson  *json);
void       lbctl_json_end_object     (LbctlJson  *json);
void       lbctl_json_begin_array    (LbctlJson  *json);
void       lbctl_json_end_array      (LbctlJson  *json);

/* The name of the next value, inside an object. */
void       lbctl_json_name           (LbctlJson  *json,
                                      const char *name);

/* Values: in an array, or after lbctl_json_name(). A NULL string is null. */
void       lbctl_json_string         (LbctlJson  *json,
                                      const char *value);
void       lbctl_json_int            (LbctlJson  *json,
                                      gint64      value);
void       lbctl_json_boolean        (LbctlJson  *json,
                                      gboolean    value);
void       lbctl_json_null           (LbctlJson  *json);

/* Name and value in one call. */
void       lbctl_json_member_string  (LbctlJson  *json,
                                      const char *name,
                                      const char *value);
void       lbctl_json_member_int     (LbctlJson  *json,
                                      const char *name,
                                      gint64      value);
void       lbctl_json_member_boolean (LbctlJson  *json,
                                      const char *name,
                                      gboolean    value);

void       lbctl_json_escape         (GString    *out,
                                      const char *value);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbctlJson, lbctl_json_free)

G_END_DECLS
