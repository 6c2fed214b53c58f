// Registration only (nan's examples/async_pi_estimate shape): each export lives
// in its own file.
#include <nan.h>
#include "socket.h"

NAN_MODULE_INIT(Init) {
  Nan::Set(target, Nan::New("peerCred").ToLocalChecked(),
           Nan::GetFunction(Nan::New<v8::FunctionTemplate>(PeerCred)).ToLocalChecked());
}

NODE_MODULE(ferry_native, Init)
