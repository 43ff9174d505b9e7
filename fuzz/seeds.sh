#!/usr/bin/env bash
# Writes the seed inputs of each fuzz target into fuzz/seeds/<target>/, built from the
# hex examples of docs/protocol.md (so the seeds follow the document).
set -euo pipefail
cd "$(dirname "$0")"
doc=../docs/protocol.md
rm -rf seeds

# The bytes of the ```hex name=<name> block, as printf escapes (comments after '#' dropped).
block() {
  awk -v want="$1" '
    /^```/ { if (inside) exit; if ($0 == "```hex name=" want) inside = 1; next }
    inside { sub(/#.*/, ""); for (i = 1; i <= NF; i++) printf "\\x%s", $i }
  ' "$doc"
}

# seed <target> <file> <block>...: the named blocks, one after the other, in one file.
seed() {
  local target=$1 file=$2 bytes=""
  shift 2
  for name in "$@"; do
    local part
    part=$(block "$name")
    if [ -z "$part" ]; then
      echo "seeds.sh: no hex block named $name in $doc" >&2
      exit 1
    fi
    bytes+=$part
  done
  mkdir -p "seeds/$target"
  printf '%b' "$bytes" >"seeds/$target/seed-$file"
}

frames=(request request-deadline response error cancel request-json goaway ping pong)
for name in "${frames[@]}"; do
  seed frame_decoder "$name" "$name"
done
seed frame_decoder all-frames "${frames[@]}"

for name in hello welcome-ok welcome-rejected; do
  seed handshake "$name" "$name"
done

seed server_connection hello hello
seed server_connection hello-request hello request
seed server_connection hello-deadline-cancel hello request-deadline cancel
seed server_connection hello-all-frames hello "${frames[@]}"
# Version 2 control frames: a PING (answered), a PONG that answers nothing (ignored), around
# calls; a GOAWAY, which a client must not send.
seed server_connection hello-ping hello ping
seed server_connection hello-request-ping-pong-cancel hello request ping pong request-deadline cancel
seed server_connection hello-goaway hello request goaway
# The same PING after a version 1 hello (offset 4 set to 1): a protocol violation there.
v1_hello=$(block hello | sed 's/^\(\(\\x..\)\{4\}\)\\x02/\1\\x01/')
mkdir -p seeds/server_connection
printf '%b' "$v1_hello$(block request)$(block ping)" >seeds/server_connection/seed-hello-v1-request-ping
# The same session in JSON: the hello's format byte (offset 6) set to 1.
json_hello=$(block hello | sed 's/^\(\(\\x..\)\{6\}\)\\x00/\1\\x01/')
mkdir -p seeds/server_connection
printf '%b' "$json_hello$(block request-json)" >seeds/server_connection/seed-hello-json-request

# Handles (section 8.4): the hello (25 bytes), then the request of section 8.4 with its
# descriptor at byte 25 (a group header: 1 group, position 25, 1 descriptor); the same
# request for method 1 (`take`, which takes the handle); descriptors the frame does not
# claim (2 for a count of 1); a descriptor with a frame without the flag; and one in the
# middle of a frame.
mkdir -p seeds/frames_with_handles
request_take=$(block request-handles | sed 's/^\(\(\\x..\)\{6\}\)\\x00/\1\\x01/')
printf '%b' "\x01\x19\x00\x01$(block hello)$(block request-handles)" >seeds/frames_with_handles/seed-hello-request-handle
printf '%b' "\x01\x19\x00\x01$(block hello)$request_take" >seeds/frames_with_handles/seed-hello-take-handle
printf '%b' "\x01\x19\x00\x02$(block hello)$(block request-handles)" >seeds/frames_with_handles/seed-hello-more-fds-than-claimed
printf '%b' "\x01\x19\x00\x01$(block hello)$(block request)" >seeds/frames_with_handles/seed-hello-fd-without-flag
printf '%b' "\x01\x1d\x00\x01$(block hello)$(block request)" >seeds/frames_with_handles/seed-hello-fd-mid-frame
printf '%b' "\x00$(block hello)$(block request)" >seeds/frames_with_handles/seed-hello-request
