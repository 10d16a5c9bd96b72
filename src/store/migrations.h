/* Embedded migrations (generated from the migrations folder at build time). */
#ifndef SOLDR_STORE_MIGRATIONS_H
#define SOLDR_STORE_MIGRATIONS_H

struct store__migration {
    int version;      /* 1, 2, ... (the file's number) */
    const char *name; /* file name, for logs */
    const char *sql;
};

/* Terminated by an entry with version 0. */
extern const struct store__migration store__migrations[];

#endif
