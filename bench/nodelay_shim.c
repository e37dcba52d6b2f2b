/* Diagnostic only (bench/run.py --nodelay-shim): an LD_PRELOAD shim that
 * sets TCP_NODELAY on every TCP socket the process connects. anonrelay's
 * only outgoing connections are to the upstream, so this shows what the
 * relay would measure if its upstream socket disabled Nagle's algorithm,
 * without changing its code. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_connect)(int, const struct sockaddr *, socklen_t);
    if (!real_connect)
        real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return real_connect(fd, addr, len);
}
