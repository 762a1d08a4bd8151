/* mior_addr <-> struct sockaddr, and host names to addresses, once for both systems (their
 * sockaddr_in/_in6 and getaddrinfo agree). */
#include <errno.h>
#include <string.h>

#include "common/internal.h"
#include "common/socket.h"

socklen_t mior__sockaddr_from(const mior_addr *a, mior__sockaddr *ss) {
  memset(ss, 0, sizeof *ss);
  if (a->family == MIOR_AF_INET6) {
    ss->in6.sin6_family = AF_INET6;
    ss->in6.sin6_port = htons(a->port);
    ss->in6.sin6_scope_id = a->scope_id;
    memcpy(&ss->in6.sin6_addr, a->addr, 16);
    return (socklen_t)sizeof ss->in6;
  }
  ss->in.sin_family = AF_INET;
  ss->in.sin_port = htons(a->port);
  memcpy(&ss->in.sin_addr, a->addr, 4);
  return (socklen_t)sizeof ss->in;
}

void mior__sockaddr_to(const struct sockaddr *sa, socklen_t len, mior_addr *out) {
  memset(out, 0, sizeof *out);
  if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    out->family = MIOR_AF_INET;
    out->port = ntohs(s4->sin_port);
    memcpy(out->addr, &s4->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    out->family = MIOR_AF_INET6;
    out->port = ntohs(s6->sin6_port);
    out->scope_id = s6->sin6_scope_id;
    memcpy(out->addr, &s6->sin6_addr, 16);
  }
}

int mior__socket_resolve(const char *name, mior_addr *out) {
  int rc = mior__socket_startup();
  if (rc < 0) return rc;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  rc = getaddrinfo(name, NULL, &hints, &res);
  if (rc != 0 || !res) return mior__fail(-EINVAL, "cannot resolve host '%s': %s", name, gai_strerror(rc));
  const struct addrinfo *pick = res;
  for (const struct addrinfo *a = res; a; a = a->ai_next)
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  uint16_t port = out->port;
  mior__sockaddr_to(pick->ai_addr, (socklen_t)pick->ai_addrlen, out);
  out->port = port;
  freeaddrinfo(res);
  return 0;
}
