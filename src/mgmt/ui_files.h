/* The UI files built into the binary (generated from ui/ at build time). */
#ifndef SOLDR_MGMT_UI_FILES_H
#define SOLDR_MGMT_UI_FILES_H

#include <stddef.h>

struct mgmt_ui_file {
    const char *path; /* "/index.html" */
    const unsigned char *data;
    size_t len;
};

/* Terminated by an entry with a NULL path. */
extern const struct mgmt_ui_file mgmt__ui_files[];

#endif
