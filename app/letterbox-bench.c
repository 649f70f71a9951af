/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <stdio.h>

#include "letterbox-bench.h"

/*
 * With LETTERBOX_BENCH=1 (bench/app-list.sh) the app says on stderr when each step of
 * its launch is reached, on CLOCK_MONOTONIC so that the launcher can subtract its own
 * start: "bench mark PHASE monotonic_us=N". Without it, this costs one getenv.
 */
void
letterbox_bench_mark (const char *phase)
{
  static int enabled = -1;

  if (enabled < 0)
    enabled = g_strcmp0 (g_getenv ("LETTERBOX_BENCH"), "1") == 0;
  if (!enabled)
    return;
  fprintf (stderr, "bench mark %s monotonic_us=%" G_GINT64_FORMAT "\n", phase,
           g_get_monotonic_time ());
  fflush (stderr);
}
