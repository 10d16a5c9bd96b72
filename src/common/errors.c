#include "common/errors.h"

#include <uv.h>

const char *soldr_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case SOLDR_ETOOBIG:
        return "limit exceeded";
    case SOLDR_ESTORE:
        return "database error";
    case SOLDR_ESCHEMA:
        return "database schema is newer than this soldr";
    case SOLDR_ECONFIG:
        return "invalid configuration";
    case SOLDR_ENOTFOUND:
        return "not found";
    case SOLDR_EEXIST:
        return "already exists";
    case SOLDR_EMALFORMED:
        return "malformed input";
    case SOLDR_EBUSY:
        return "overloaded, try again later";
    case SOLDR_EFALLBACK:
        return "request neither committed nor logged";
    case SOLDR_ESTOPPED:
        return "shutting down";
    default:
        return uv_strerror(err);
    }
}
