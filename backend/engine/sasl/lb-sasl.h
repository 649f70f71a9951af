/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LB_SASL_ERROR (lb_sasl_error_quark ())

/**
 * LbSaslError:
 * @LB_SASL_ERROR_NO_MECHANISM: the server offers no mechanism Letterbox can use with the
 *   credentials it has
 * @LB_SASL_ERROR_FAILED: the exchange broke down (a malformed challenge, say)
 */
typedef enum
{
  LB_SASL_ERROR_NO_MECHANISM,
  LB_SASL_ERROR_FAILED,
} LbSaslError;

GQuark lb_sasl_error_quark (void);

typedef struct _LbSasl LbSasl;

const char *lb_sasl_choose_mechanism (const char *const *offered,
                                      gboolean           have_token,
                                      gboolean           allow_plaintext);
LbSasl     *lb_sasl_new              (const char        *mechanism,
                                      const char        *user,
                                      const char        *secret,
                                      GError           **error);
void        lb_sasl_free             (LbSasl            *sasl);
const char *lb_sasl_get_mechanism    (LbSasl            *sasl);
gboolean    lb_sasl_has_initial_response (LbSasl        *sasl);
gboolean    lb_sasl_step             (LbSasl            *sasl,
                                      const char        *challenge_b64,
                                      char             **response_b64,
                                      GError           **error);
gboolean    lb_sasl_is_done          (LbSasl            *sasl);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LbSasl, lb_sasl_free)

G_END_DECLS
