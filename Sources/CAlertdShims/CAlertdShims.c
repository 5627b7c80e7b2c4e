#include <stddef.h>
#include <openssl/ssl.h>
#include <auth-client.h>
#include <pthread.h>
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
#include <openssl/err.h>
#include <poll.h>
#include <stdarg.h>
#include <time.h>
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

/* The socket libESMTP just connected to the server's port: the newest (highest-numbered) TCP
   socket of the process whose peer has that port. One SMTP worker thread runs one session at a
   time, so no other socket to that port is being opened meanwhile. */
static int alertd_session_socket(int port) {
    struct rlimit limit;
    int highest = 1024;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)highest) highest = (int)limit.rlim_cur;
    for (int fd = highest - 1; fd >= 3; fd--) {
        struct sockaddr_storage peer;
        socklen_t size = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &size) != 0) continue;
        int peer_port = -1;
        if (peer.ss_family == AF_INET) peer_port = ntohs(((struct sockaddr_in *)&peer)->sin_port);
        if (peer.ss_family == AF_INET6) peer_port = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
        if (peer_port == port) return fd;
    }
    return -1;
}

static double alertd_monotonic_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* After a TLS 1.3 handshake the server sends its session tickets, which makes the socket
   readable before any reply. libESMTP's protocol loop then reads before it writes its buffered
   EHLO: SSL_read consumes the tickets, finds no reply and waits for one, while the EHLO the reply
   would answer is still in libESMTP's buffer. The session stalls for the whole timeout, then
   fails (seen with Postfix and aiosmtpd, at random, on TLS 1.3 only: in TLS 1.2 the server
   speaks last in the handshake). Reading the tickets here, before the EHLO is written, leaves
   nothing for the loop to misread. The server sends them as soon as it has our Finished, one
   round trip after SSL_connect; the wait is bounded by the time the session took to get this far
   (greeting, EHLO, STARTTLS and the handshake: several round trips), at least 5 ms and at most
   half a second, and stops at the first application data, which stays for libESMTP. */
static int alertd_read_session_tickets(SSL *ssl, int fd, double budget) {
    int records = 0;
    double deadline = alertd_monotonic_seconds() + budget;
    for (;;) {
        int remaining = (int)((deadline - alertd_monotonic_seconds()) * 1000.0);
        if (remaining <= 0) break;
        struct pollfd readable = { .fd = fd, .events = POLLIN, .revents = 0 };
        if (poll(&readable, 1, remaining) != 1 || !(readable.revents & POLLIN)) break;
        char byte;
        int peeked = SSL_peek(ssl, &byte, 1);
        if (peeked > 0) break;
        if (SSL_get_error(ssl, peeked) != SSL_ERROR_WANT_READ) break;
        records += 1;
        /* A server may send its tickets in separate writes: wait a little for the next one. */
        double soon = alertd_monotonic_seconds() + (budget / 4 > 0.005 ? budget / 4 : 0.005);
        if (soon < deadline) deadline = soon;
    }
    ERR_clear_error();
    return records;
}

static void alertd_smtp_event(smtp_session_t session, int event, void *arg, ...) {
    (void)session;
    alertd_smtp_observer *observer = arg;
    static __thread double connected_at;
    va_list arguments;
    va_start(arguments, arg);
    switch (event) {
    case SMTP_EV_CONNECT:
        connected_at = alertd_monotonic_seconds();
        alertd_nodelay_everywhere();
        observer->socket = alertd_session_socket(observer->server_port);
        break;
    case SMTP_EV_STARTTLS_OK: {
        SSL *ssl = va_arg(arguments, SSL *);
        if (SSL_get_fd(ssl) >= 0) observer->socket = SSL_get_fd(ssl);
        observer->tls_version = SSL_version(ssl);
        if (observer->tls_version == TLS1_3_VERSION && observer->socket >= 0) {
            double budget = alertd_monotonic_seconds() - connected_at;
            if (budget < 0.005) budget = 0.005;
            if (budget > 0.5) budget = 0.5;
            observer->post_handshake_records += alertd_read_session_tickets(ssl, observer->socket, budget);
        }
        break;
    }
    case SMTP_EV_EXTNA_STARTTLS:
        observer->starttls_unavailable = 1;
        break;
    case SMTP_EV_WRONG_PEER_CERTIFICATE: {
        int *ok = va_arg(arguments, int *);
        if (observer->certificate_checked_for_ip && ok != NULL) *ok = 1;
        else observer->wrong_peer_certificate = 1;
        break;
    }
    default:
        break;
    }
    va_end(arguments);
}

int alertd_smtp_observe(smtp_session_t session, alertd_smtp_observer *observer) {
    observer->socket = -1;
    observer->tls_version = 0;
    observer->starttls_unavailable = 0;
    observer->wrong_peer_certificate = 0;
    observer->post_handshake_records = 0;
    return smtp_set_eventcb(session, alertd_smtp_event, observer);
}

static pthread_once_t alertd_curl_once = PTHREAD_ONCE_INIT;
static CURLcode alertd_curl_global_result = CURLE_FAILED_INIT;

static void alertd_curl_global_init(void) {
    alertd_curl_global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode alertd_curl_global_init_once(void) {
    pthread_once(&alertd_curl_once, alertd_curl_global_init);
    return alertd_curl_global_result;
}
