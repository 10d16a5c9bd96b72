/* /api/v1/stats and /metrics (to be written). */
#include "mgmt/mgmt_int.h"

const struct mgmt_route mgmt__stats_routes[] = {
    {NULL, NULL, NULL, 0},
};
