/* /api/v1/requests: list, read, edit, resend, bulk resend (to be written). */
#include "mgmt/mgmt_int.h"

const struct mgmt_route mgmt__request_routes[] = {
    {NULL, NULL, NULL, 0},
};
