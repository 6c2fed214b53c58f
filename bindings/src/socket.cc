// Socket helpers Node lacks (node-posix style: check arguments, one syscall,
// Nan::ErrnoException on failure).
#include "socket.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <errno.h>

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
