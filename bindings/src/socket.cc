// Socket helpers Node lacks (node-posix style: check arguments, one syscall,
// Nan::ErrnoException on failure).
#include "socket.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <vector>

NAN_METHOD(PeerCred) {
  if (info.Length() < 1 || !info[0]->IsInt32()) {
    return Nan::ThrowTypeError("peerCred(fd): fd must be an integer");
  }
  int fd = Nan::To<int32_t>(info[0]).FromJust();
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Nan::ThrowError(Nan::ErrnoException(errno, "getsockopt"));
  }
  v8::Local<v8::Object> out = Nan::New<v8::Object>();
  Nan::Set(out, Nan::New("pid").ToLocalChecked(), Nan::New<v8::Int32>(static_cast<int32_t>(cred.pid)));
  Nan::Set(out, Nan::New("uid").ToLocalChecked(), Nan::New<v8::Uint32>(static_cast<uint32_t>(cred.uid)));
  Nan::Set(out, Nan::New("gid").ToLocalChecked(), Nan::New<v8::Uint32>(static_cast<uint32_t>(cred.gid)));
  info.GetReturnValue().Set(out);
}

// sendFd(sockFd, data, fd): one sendmsg of data on a connected Unix socket with
// fd attached (SCM_RIGHTS, on the first byte), non-blocking. Returns the number
// of bytes sent (the caller writes any rest itself). Throws ErrnoException
// (EAGAIN when the send buffer is full: nothing was sent).
NAN_METHOD(SendFd) {
  if (info.Length() < 3 || !info[0]->IsInt32() || !node::Buffer::HasInstance(info[1]) || !info[2]->IsInt32()) {
    return Nan::ThrowTypeError("sendFd(sockFd, data, fd): sockFd and fd must be integers, data a Buffer");
  }
  int sock = Nan::To<int32_t>(info[0]).FromJust();
  int fd = Nan::To<int32_t>(info[2]).FromJust();
  char *data = node::Buffer::Data(info[1]);
  size_t len = node::Buffer::Length(info[1]);
  if (len == 0) {
    return Nan::ThrowRangeError("sendFd(sockFd, data, fd): data must not be empty (the descriptor travels with a byte)");
  }
  struct iovec iov;
  iov.iov_base = data;
  iov.iov_len = len;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return Nan::ThrowError(Nan::ErrnoException(errno, "sendmsg"));
  }
  info.GetReturnValue().Set(Nan::New<v8::Number>(static_cast<double>(n)));
}

// recvFd(sockFd, maxLen): one non-blocking recvmsg; returns { data: Buffer,
// fd: number } (fd -1 when none came; extra descriptors are closed). data is
// empty at EOF. Throws ErrnoException (EAGAIN when nothing is there).
NAN_METHOD(RecvFd) {
  if (info.Length() < 2 || !info[0]->IsInt32() || !info[1]->IsInt32()) {
    return Nan::ThrowTypeError("recvFd(sockFd, maxLen): sockFd and maxLen must be integers");
  }
  int sock = Nan::To<int32_t>(info[0]).FromJust();
  int max = Nan::To<int32_t>(info[1]).FromJust();
  if (max <= 0 || max > (16 << 20)) {
    return Nan::ThrowRangeError("recvFd(sockFd, maxLen): maxLen must be 1-16777216");
  }
  std::vector<char> buf(static_cast<size_t>(max));
  struct iovec iov;
  iov.iov_base = buf.data();
  iov.iov_len = buf.size();
  union {
    char buf[CMSG_SPACE(sizeof(int) * 4)];
    struct cmsghdr align;
  } control;
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return Nan::ThrowError(Nan::ErrnoException(errno, "recvmsg"));
  }
  int got = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int f;
      memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (got < 0) got = f;
      else close(f);
    }
  }
  v8::Local<v8::Object> out = Nan::New<v8::Object>();
  Nan::Set(out, Nan::New("data").ToLocalChecked(), Nan::CopyBuffer(buf.data(), static_cast<uint32_t>(n)).ToLocalChecked());
  Nan::Set(out, Nan::New("fd").ToLocalChecked(), Nan::New<v8::Int32>(got));
  info.GetReturnValue().Set(out);
}
