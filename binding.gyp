{
  "targets": [
    {
      "target_name": "ferry_native",
      "sources": ["bindings/src/addon.cc", "bindings/src/socket.cc"],
      "include_dirs": ["<!(node -e \"require('nan')\")"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags_cc": ["-Wall", "-Wextra", "-std=c++17"]
    },
    {
      "target_name": "ferry-exec-helper",
      "type": "executable",
      "sources": ["bindings/src/exec_helper.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-std=c99"]
    }
  ]
}
