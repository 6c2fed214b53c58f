{
  "targets": [
    {
      "target_name": "ferry_native",
      "sources": ["bindings/src/addon.cc", "bindings/src/socket.cc"],
      "include_dirs": ["<!(node -e \"require('nan')\")"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags_cc": ["-Wall", "-Wextra", "-std=c++17"]
    }
  ]
}
