#ifndef FERRY_BINDINGS_SOCKET_H
#define FERRY_BINDINGS_SOCKET_H
#include <nan.h>

// peerCred(fd: number): { pid, uid, gid } of the process at the other end of a
// connected Unix socket (SO_PEERCRED). Throws ErrnoException on failure.
NAN_METHOD(PeerCred);

// sendFd(sockFd, data, fd): sendmsg data with fd attached (SCM_RIGHTS); returns bytes sent.
NAN_METHOD(SendFd);

// recvFd(sockFd, maxLen): non-blocking recvmsg; { data, fd } (fd -1 when none).
NAN_METHOD(RecvFd);

#endif
