// Registration only (nan's examples/async_pi_estimate shape): each export lives
// in its own file.
#include <nan.h>
#include "socket.h"

NAN_MODULE_INIT(Init) {
  Nan::Set(target, Nan::New("peerCred").ToLocalChecked(),
           Nan::GetFunction(Nan::New<v8::FunctionTemplate>(PeerCred)).ToLocalChecked());
  Nan::Set(target, Nan::New("sendFd").ToLocalChecked(),
           Nan::GetFunction(Nan::New<v8::FunctionTemplate>(SendFd)).ToLocalChecked());
  Nan::Set(target, Nan::New("recvFd").ToLocalChecked(),
           Nan::GetFunction(Nan::New<v8::FunctionTemplate>(RecvFd)).ToLocalChecked());
}

NODE_MODULE(ferry_native, Init)
