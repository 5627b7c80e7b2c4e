#include <stddef.h>
#include <openssl/ssl.h>
#include <auth-client.h>
#include "CAlertdShims.h"

CURLcode alertd_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode alertd_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode alertd_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode alertd_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode alertd_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode alertd_curl_easy_setopt_write_function(CURL *handle, curl_write_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

CURLcode alertd_curl_easy_setopt_header_function(CURL *handle, curl_write_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}

CURLcode alertd_curl_easy_setopt_opensocket_function(CURL *handle, curl_opensocket_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
}

CURLcode alertd_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode alertd_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode alertd_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode alertd_curl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode alertd_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLMcode alertd_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

int alertd_smtp_set_header_string(smtp_message_t message, const char *header, const char *value) {
    return smtp_set_header(message, header, value);
}

int alertd_smtp_set_header_address(smtp_message_t message, const char *header,
                                   const char *phrase, const char *mailbox) {
    return smtp_set_header(message, header, phrase, mailbox);
}

int alertd_smtp_set_message_string(smtp_message_t message, const char *text) {
    return smtp_set_message_str(message, (void *) text);
}

int alertd_smtp_starttls_set_ctx(smtp_session_t session, void *ctx) {
    return smtp_starttls_set_ctx(session, (SSL_CTX *) ctx);
}

int alertd_smtp_auth_set_context(smtp_session_t session, void *context) {
    return smtp_auth_set_context(session, (auth_context_t) context);
}

CURLcode alertd_curl_msg_result(const CURLMsg *message) {
    return message->data.result;
}

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/resource.h>

/* libESMTP writes a message body in 2 KiB pieces and gives no access to its socket. With Nagle's
   algorithm on, the last short piece waits for the server's delayed ACK: 40 ms per message. On
   connect, every TCP socket of the process without TCP_NODELAY gets it; libcurl and libpq set it
   on theirs already, so only libESMTP's changes. */
static void alertd_nodelay_everywhere(void) {
    struct rlimit limit;
    int highest = 1024;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)highest) highest = (int)limit.rlim_cur;
    for (int fd = 3; fd < highest; fd++) {
        int type = 0;
        socklen_t length = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) continue;
        struct sockaddr_storage address;
        socklen_t size = sizeof address;
        if (getsockname(fd, (struct sockaddr *)&address, &size) != 0) continue;
        if (address.ss_family != AF_INET && address.ss_family != AF_INET6) continue;
        int on = 0;
        length = sizeof on;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &length) == 0 && on) continue;
        on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
}

static void alertd_smtp_event(smtp_session_t session, int event, void *arg, ...) {
    (void)session;
    (void)arg;
    if (event == SMTP_EV_CONNECT) alertd_nodelay_everywhere();
}

int alertd_smtp_set_nodelay(smtp_session_t session) {
    return smtp_set_eventcb(session, alertd_smtp_event, NULL);
}
