#ifndef ALERTD_SHIMS_H
#define ALERTD_SHIMS_H

/*
 * Typed, one-line wrappers for the parts of libcurl and libesmtp that Swift cannot call:
 * variadic functions (curl_easy_setopt, curl_easy_getinfo, smtp_set_header) and macros
 * (smtp_set_message_str). Every decision about what to set lives in Swift. And one signal
 * handler, which must be C: see alertd_end_on_sent_crash_signals.
 */

#include <stddef.h>
#include <curl/curl.h>
#include <libesmtp.h>

/* curl_easy_setopt, one function per argument type the option takes. */
CURLcode alertd_curl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode alertd_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode alertd_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode alertd_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode alertd_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode alertd_curl_easy_setopt_write_function(CURL *handle, curl_write_callback callback);
CURLcode alertd_curl_easy_setopt_header_function(CURL *handle, curl_write_callback callback);
CURLcode alertd_curl_easy_setopt_opensocket_function(CURL *handle, curl_opensocket_callback callback);

/* curl_easy_getinfo, one function per result type. */
CURLcode alertd_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode alertd_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode alertd_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode alertd_curl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value);
CURLcode alertd_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);

/* curl_global_init, once per process whoever calls first (it is not thread-safe): returns its
   result, the same to every caller. */
CURLcode alertd_curl_global_init_once(void);

/* curl_multi_setopt is variadic as well. */
CURLMcode alertd_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value);
/* The result of a finished transfer, from the union in CURLMsg. */
CURLcode alertd_curl_msg_result(const CURLMsg *message);

/* smtp_set_header for headers whose value is one string (Subject, Message-ID, ...). */
int alertd_smtp_set_header_string(smtp_message_t message, const char *header, const char *value);
/* smtp_set_header for address headers (From, To): a phrase, which may be NULL, and a mailbox. */
int alertd_smtp_set_header_address(smtp_message_t message, const char *header,
                                   const char *phrase, const char *mailbox);
/* smtp_set_message_str is a macro; the string must stay alive until smtp_start_session returns. */
int alertd_smtp_set_message_string(smtp_message_t message, const char *text);
/* libesmtp declares these only after <openssl/ssl.h> and <auth-client.h>; the shim includes them
   in that order so that Swift modules need not. ctx is an SSL_CTX *, context an auth_context_t. */
int alertd_smtp_starttls_set_ctx(smtp_session_t session, void *ctx);
int alertd_smtp_auth_set_context(smtp_session_t session, void *context);
/* What alertd learns from one session's libESMTP events (which Swift cannot receive: the event
   callback is variadic). Owned by the caller, alive until smtp_start_session returns. */
typedef struct alertd_smtp_observer {
    /* Set by the caller: the host is an IP address whose certificate OpenSSL checked against it
       during the handshake, so libESMTP's own check, which knows only DNS names, is overruled. */
    int certificate_checked_for_ip;
    int server_port;              /* the SMTP server's port, to find the session's socket */
    /* Filled in during the session. */
    int socket;                   /* the connection's socket once connected, else -1 */
    int tls_version;              /* SSL_version() of the STARTTLS connection, 0 before */
    int starttls_unavailable;     /* STARTTLS was required and the server did not offer it */
    int wrong_peer_certificate;   /* libESMTP found the certificate not for the host */
    int post_handshake_records;   /* TLS 1.3 session tickets read before the first command */
} alertd_smtp_observer;

/* Observes the session's events into `observer`: turns Nagle's algorithm off once it connects
   (libESMTP offers no access to the socket), and after a TLS 1.3 handshake reads the server's
   session tickets before libESMTP sends its first command (see the .c file). */
int alertd_smtp_observe(smtp_session_t session, alertd_smtp_observer *observer);

/* Makes a crash signal sent with kill(2) (SIGSEGV, SIGBUS, SIGABRT, ...) end the process after
   Swift's crash report, as a fault does (see CrashSignals.c). Returns 0, or -1 if sigaction
   failed for one of them. */
int alertd_end_on_sent_crash_signals(void);

#endif
