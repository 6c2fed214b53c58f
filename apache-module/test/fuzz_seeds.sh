#!/bin/sh
# Seed corpus for test/fuzz_proto: every golden vector in test/fixtures/protocol
# as a frame stream (target byte 0x00), whole and split into 7-byte reads, plus
# a few HTTP/1.x response heads for the direct path's parser (target 0x01/0x03).
#   sh test/fuzz_seeds.sh <fixtures dir> <out dir>
set -eu
fixtures=$1
out=$2
mkdir -p "$out"
for f in "$fixtures"/*.hex; do
  name=$(basename "$f" .hex)
  bytes=$(tr -d ' \n\r\t' < "$f")
  printf '0000%s' "$bytes" | perl -ne 'print pack("H*", $_)' > "$out/frame-$name"
  printf '0007%s' "$bytes" | perl -ne 'print pack("H*", $_)' > "$out/frame7-$name"
done
printf '\001\000HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello' > "$out/http-length"
printf '\001\000HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-A: b\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n' > "$out/http-chunked"
printf '\001\000HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n' > "$out/http-101"
printf '\003\000HTTP/1.0 304 Not Modified\r\nConnection: close\r\n\r\n' > "$out/http-head-304"
