#ifndef FERRY_BINDINGS_SOCKET_H
#define FERRY_BINDINGS_SOCKET_H
#include <nan.h>

// peerCred(fd: number): { pid, uid, gid } of the process at the other end of a
// connected Unix socket (SO_PEERCRED). Throws ErrnoException on failure.
NAN_METHOD(PeerCred);

#endif
