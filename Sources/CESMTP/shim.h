/* libesmtp.h uses size_t without including the header that declares it. */
#include <stddef.h>
#include <libesmtp.h>
#include <auth-client.h>
