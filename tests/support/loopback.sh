# Sourced by the CLI tests that talk to a loopback server: a temporary folder $tmp removed at exit,
# and start_server CMD…, which runs a server that writes its port to "$tmp/port", waits for the
# port and stops the server at exit.
tmp=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
start_server() {
  "$@" &
  server=$!
  n=0; while [ ! -s "$tmp/port" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  [ -s "$tmp/port" ] || { echo "the loopback server did not start" >&2; exit 1; }
}
