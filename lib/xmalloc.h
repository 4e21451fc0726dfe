/* xmalloc.h -- allocation helpers that abort on out-of-memory. */
#ifndef RMILTER_XMALLOC_H
#define RMILTER_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);

#endif
