/* ssrf_guard.h — which addresses an outbound request to a URL a user gave
 * (NOTIFY_WEBHOOK, any step's http_post) may connect to: public unicast
 * only, never loopback, private, link-local, cloud metadata, multicast or
 * reserved ranges. The check runs on the address curl is about to connect
 * to (CURLOPT_OPENSOCKETFUNCTION), after resolution, so a name that
 * resolves to 127.0.0.1 — or changes its answer between two lookups — is
 * refused as well. */
#ifndef GHL_SSRF_GUARD_H
#define GHL_SSRF_GUARD_H

#include <curl/curl.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util.h"

/* 1 when sa (AF_INET or AF_INET6) is a public unicast address; else 0 with
 * the range it falls in as e's message ("loopback", "private", ...; code
 * ERR_INVALID). e may be NULL. */
int ssrf_addr_is_public(const struct sockaddr *sa, struct err *e);

/* A CURLOPT_OPENSOCKETFUNCTION: opens the socket (close-on-exec) when the
 * address is public, else logs the refusal (address and range, at warn) and
 * returns CURL_SOCKET_BAD, so the transfer fails like an unreachable host. */
curl_socket_t ssrf_guard_opensocket(void *clientp, curlsocktype purpose,
				    struct curl_sockaddr *address);

#endif
