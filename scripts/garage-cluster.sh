#!/usr/bin/env bash
# Start, break and stop a three-node Garage cluster (an S3-compatible object store) on
# 127.0.0.1, for the tests of S3 remotes.
#
#   bash scripts/garage-cluster.sh start DIR      # a fresh cluster in DIR (created here)
#   bash scripts/garage-cluster.sh kill DIR N     # kill -9 node N (1, 2 or 3)
#   bash scripts/garage-cluster.sh restart DIR N  # start node N again (same ports, same data)
#   bash scripts/garage-cluster.sh stop DIR       # kill -9 every node, wait for them to exit
#
# start writes one config per node (DIR/n1.toml, n2.toml, n3.toml: SQLite metadata,
# replication factor 3, free ports picked on 127.0.0.1, the other two nodes as bootstrap
# peers), runs the three servers in the background, each in a process group of its own
# (output in DIR/nN.log, pid in DIR/nN.pid), lays them out in one zone, creates the key
# and the bucket `trove-test` (read, write, owner), and returns once a signed S3 request
# succeeds through every node (about 2 s). It then writes DIR/env, KEY=VALUE lines
# without quotes (read them line by line: NODE_PIDS holds spaces, so the file is not for
# a shell to source):
#
#   S3_ENDPOINT_1=http://127.0.0.1:PORT   (and _2, _3: the S3 API of each node)
#   AWS_ACCESS_KEY_ID=GK...
#   AWS_SECRET_ACCESS_KEY=...
#   S3_BUCKET=trove-test
#   S3_REGION=garage
#   NODE_PIDS=PID1 PID2 PID3              (the last pid started for each node)
#
# kill returns once the node has exited and the running nodes count it as down, so that
# they send it no more requests (left alone, they notice only at their next ping, up to
# 15 s later, and a request routed to it waits until then).
# restart returns once node N serves S3 again (which takes a second running node: the
# quorum is 2) and every running node sees all the running ones; it rewrites NODE_PIDS.
# start gives up after GARAGE_START_TIMEOUT seconds (default 60), restart after
# GARAGE_RESTART_TIMEOUT (default 30); both then print the tails of the node logs, and a
# failed start kills the nodes it started. A node that cannot bind a port picked for it
# (another process took it meanwhile) makes start try again with new ports, up to three
# times. Other files in DIR: ports (N RPC S3 ADMIN per
# line), nN.id (node id@address), nN/ (metadata and data).
#
# The garage binary is $GARAGE (default `garage`) on PATH, else ~/.cargo/bin/garage
# (`cargo install garage --version 2.5.0 --locked`); start also needs python3 and curl.
# Garage wants the x-amz-content-sha256 header on every request; with curl:
#   curl --aws-sigv4 aws:amz:garage:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
#       -H x-amz-content-sha256:UNSIGNED-PAYLOAD -T FILE "$S3_ENDPOINT_1/trove-test/KEY"
set -euo pipefail

BUCKET=trove-test
KEY_NAME=trove-test
REGION=garage
NODES=(1 2 3)
# The nodes that must keep running while a command waits on the cluster.
WATCH=()
LOG_FROM=()
START_TIMEOUT=${GARAGE_START_TIMEOUT:-60}
RESTART_TIMEOUT=${GARAGE_RESTART_TIMEOUT:-30}

usage() {
    echo "usage: $0 start DIR | kill DIR N | restart DIR N | stop DIR" >&2
    exit 2
}

die() {
    echo "error: $*" >&2
    exit 1
}

# The garage binary: $GARAGE (default `garage`) on PATH, else ~/.cargo/bin/garage.
garage_path() {
    local cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin/garage
    if command -v "${GARAGE:-garage}" >/dev/null 2>&1; then
        command -v "${GARAGE:-garage}"
    elif [ -x "$cargo_bin" ]; then
        echo "$cargo_bin"
    else
        return 1
    fi
}

find_garage() {
    garage_path || die "garage is not installed (looked for ${GARAGE:-garage} on PATH and" \
        "${CARGO_HOME:-$HOME/.cargo}/bin/garage; install it with:" \
        "cargo install garage --version 2.5.0 --locked)"
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is needed to $2"
}

# Whether node N's server runs: its pid is alive, not a zombie (an exited process may
# linger as one until something reaps it), and runs with the node's config.
is_running() {
    local n=$1 pid stat
    pid=$(node_pid "$n")
    [ -n "$pid" ] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # The state is the field after the parenthesised command name.
    stat=${stat##*) }
    [ "${stat%% *}" != Z ] || return 1
    grep -qxF "$DIR/n$n.toml" < <(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline")
}

node_pid() {
    cat "$DIR/n$1.pid" 2>/dev/null || true
}

# Port N_FIELD of node N from DIR/ports (lines "N RPC S3 ADMIN").
port() {
    awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$DIR/ports"
}
rpc_port() { port "$1" 2; }
s3_port() { port "$1" 3; }
admin_port() { port "$1" 4; }

# Nine free TCP ports on 127.0.0.1, all held open together so that none repeats.
free_ports() {
    python3 - <<'EOF'
import socket
socks = []
for _ in range(9):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# write_config N SECRET [PEER...]
write_config() {
    local n=$1 secret=$2 peers=""
    shift 2
    local peer
    for peer in "$@"; do
        peers+="    \"$peer\","$'\n'
    done
    cat >"$DIR/n$n.toml" <<EOF
metadata_dir = "$DIR/n$n/meta"
data_dir = "$DIR/n$n/data"
db_engine = "sqlite"
replication_factor = 3

rpc_secret = "$secret"
rpc_bind_addr = "127.0.0.1:$(rpc_port "$n")"
rpc_public_addr = "127.0.0.1:$(rpc_port "$n")"
bootstrap_peers = [
$peers]

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$(s3_port "$n")"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$(admin_port "$n")"
EOF
}

# Runs the server of node N in the background, in a process group of its own (setsid
# execs garage in place: a background job of this script is no group leader), with a
# log free of colour codes. The job is disowned: the shell does not report its death.
launch() {
    local n=$1
    NO_COLOR=1 setsid "$GARAGE_BIN" -c "$DIR/n$n.toml" server >>"$DIR/n$n.log" 2>&1 </dev/null &
    echo $! >"$DIR/n$n.pid"
    disown
}

# kill -9 node N (its process group) and wait until it has exited.
kill_node() {
    local n=$1 pid i
    pid=$(node_pid "$n")
    if is_running "$n"; then
        kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    fi
    for ((i = 0; i < 100; i++)); do
        is_running "$n" || return 0
        sleep 0.1
    done
    die "node $n (pid $pid) is still running 10 s after kill -9"
}

# The admin API's /health of node N: prints the body, fails unless it answered 200.
health() {
    curl -sf --max-time 2 "http://127.0.0.1:$(admin_port "$1")/health" 2>/dev/null
}

# The body of node N's /health, whatever the status (nothing if it does not answer).
health_body() {
    curl -s --max-time 2 "http://127.0.0.1:$(admin_port "$1")/health" 2>/dev/null || true
}

# A signed ListObjectsV2 of the bucket through node N.
s3_ok() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        --aws-sigv4 "aws:amz:$REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        "http://127.0.0.1:$(s3_port "$1")/$BUCKET?list-type=2" 2>/dev/null) || return 1
    [ "$code" = 200 ]
}

# Runs garage's command line against node 1.
cli() {
    "$GARAGE_BIN" -c "$DIR/n1.toml" "$@"
}

# Whether node N's server failed to bind one of its ports. It then exits, or (for the
# S3 and admin APIs) runs on without that API.
# Only the log written since this script started the node counts (LOG_FROM: its size then).
port_clash() {
    grep -q "Address already in use" < <(tail -c "+$((${LOG_FROM[$1]:-0} + 1))" "$DIR/n$1.log" 2>/dev/null)
}

# Fails, with a message, when a node in WATCH (the nodes that must be running) has
# exited or could not bind its ports.
watched_nodes_ok() {
    local n
    for n in ${WATCH[@]+"${WATCH[@]}"}; do
        if ! is_running "$n"; then
            echo "error: node $n has exited" >&2
            return 1
        elif port_clash "$n"; then
            echo "error: node $n could not bind one of its ports (Address already in use)" >&2
            return 1
        fi
    done
}

# Runs a command until it succeeds or the deadline passes (or a watched node fails); its
# last output goes to DIR/last.out (and is printed on success).
retry() {
    while true; do
        if "$@" >"$DIR/last.out" 2>&1; then
            cat "$DIR/last.out"
            return 0
        fi
        if ! watched_nodes_ok || [ "$SECONDS" -ge "$DEADLINE" ]; then
            {
                echo "error: \`$*\` kept failing; its last output:"
                sed 's/^/    /' "$DIR/last.out"
            } >&2
            return 1
        fi
        sleep 0.2
    done
}

# Waits until COMMAND succeeds, failing (with WHAT in the message) at the deadline or
# when a watched node fails.
wait_until() {
    local what=$1
    shift
    until "$@"; do
        watched_nodes_ok || return 1
        if [ "$SECONDS" -ge "$DEADLINE" ]; then
            echo "error: timed out waiting for $what" >&2
            return 1
        fi
        sleep 0.2
    done
}

dead_nodes() {
    local n out=""
    for n in "${NODES[@]}"; do
        is_running "$n" || out+=" $n"
    done
    echo "${out# }"
}

show_logs() {
    local n
    for n in "${NODES[@]}"; do
        [ -e "$DIR/n$n.log" ] || continue
        echo "---- tail of $DIR/n$n.log (pid $(node_pid "$n")) ----" >&2
        tail -n 25 "$DIR/n$n.log" >&2
    done
}

# Whether every node answers as Garage on its admin and S3 ports; status 2 when a node
# has exited or could not bind its ports.
all_listening() {
    local n
    for n in "${NODES[@]}"; do
        if ! is_running "$n" || port_clash "$n"; then
            return 2
        fi
    done
    for n in "${NODES[@]}"; do
        grep -q "^Garage is\|^Quorum is not available" <<<"$(health_body "$n")" || return 1
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$(s3_port "$n")/" || return 1
    done
}

# Every running node answers /health, and with all three running each says it is fully
# operational (it sees every storage node), else that quorum is there.
cluster_healthy() {
    local n body all=1
    [ -z "$(dead_nodes)" ] || all=0
    for n in "${NODES[@]}"; do
        is_running "$n" || continue
        body=$(health "$n") || return 1
        if [ "$all" = 1 ]; then
            grep -q "fully operational" <<<"$body" || return 1
        fi
    done
}

all_serve_s3() {
    local n
    for n in "${NODES[@]}"; do
        s3_ok "$n" || return 1
    done
}

write_env() {
    local tmp="$DIR/env.tmp" n pids=""
    for n in "${NODES[@]}"; do
        pids+=" $(node_pid "$n")"
    done
    {
        for n in "${NODES[@]}"; do
            echo "S3_ENDPOINT_$n=http://127.0.0.1:$(s3_port "$n")"
        done
        echo "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
        echo "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
        echo "S3_BUCKET=$BUCKET"
        echo "S3_REGION=$REGION"
        echo "NODE_PIDS=${pids# }"
    } >"$tmp"
    mv "$tmp" "$DIR/env"
}

load_env() {
    [ -e "$DIR/env" ] || die "$DIR/env is missing: was the cluster started with \`start $DIR\`?"
    AWS_ACCESS_KEY_ID=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' "$DIR/env")
    AWS_SECRET_ACCESS_KEY=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$DIR/env")
}

hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Picks ports, writes the configs and starts the three servers; fails with status 2 when
# a node exits early or cannot bind a port (another process took it since it was picked). The configs get
# their bootstrap peers (every other node) once the servers run: a node's id is its key,
# which the server makes in its metadata_dir when it first starts. The running servers
# are connected by start; the peers are there for a node that restart starts again.
launch_all() {
    local n m secret ids=() peers=() rc=0
    local -a ports
    read -r -a ports <<<"$(free_ports)"
    [ "${#ports[@]}" = 9 ] || die "could not pick free ports with python3"
    : >"$DIR/ports"
    for n in "${NODES[@]}"; do
        m=$((3 * (n - 1)))
        echo "$n ${ports[m]} ${ports[m + 1]} ${ports[m + 2]}" >>"$DIR/ports"
    done
    secret=$(hex 32)
    for n in "${NODES[@]}"; do
        rm -rf "$DIR/n$n" "$DIR/n$n.log"
        mkdir -p "$DIR/n$n/meta" "$DIR/n$n/data"
        write_config "$n" "$secret"
        launch "$n"
    done
    local launched=$SECONDS
    while true; do
        rc=0
        all_listening || rc=$?
        [ "$rc" != 0 ] || break
        [ "$rc" != 2 ] || return 2
        # A taken admin port makes no error in the log: the server runs on, and the
        # port's owner does not answer as Garage would.
        if [ $((SECONDS - launched)) -ge 10 ]; then
            echo "garage-cluster: a node does not answer on its ports after 10 s" >&2
            return 2
        fi
        if [ "$SECONDS" -ge "$DEADLINE" ]; then
            echo "error: the Garage nodes did not start listening within ${START_TIMEOUT} s" >&2
            return 1
        fi
        sleep 0.1
    done
    for n in "${NODES[@]}"; do
        # ID@ADDR, from the key in the node's metadata_dir.
        ids[n]=$("$GARAGE_BIN" -c "$DIR/n$n.toml" node id -q 2>"$DIR/last.out") || {
            cat "$DIR/last.out" >&2
            echo "error: \`garage node id\` failed for node $n" >&2
            return 1
        }
        echo "${ids[n]}" >"$DIR/n$n.id"
    done
    for n in "${NODES[@]}"; do
        peers=()
        for m in "${NODES[@]}"; do
            [ "$m" = "$n" ] || peers+=("${ids[m]}")
        done
        write_config "$n" "$secret" "${peers[@]}"
    done
}

# The steps of start that must happen once: each also succeeds when an earlier try that
# reported an error did the work.
apply_layout() {
    cli layout apply --version 1 ||
        grep -qx "Current cluster layout version: 1" <<<"$(cli layout show 2>/dev/null)"
}

import_key() {
    cli key import --yes -n "$KEY_NAME" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" ||
        cli key info "$AWS_ACCESS_KEY_ID"
}

create_bucket() {
    cli bucket create "$BUCKET" || cli bucket info "$BUCKET"
}

start_failed() {
    local status=$?
    if [ "$status" != 0 ]; then
        echo "error: the Garage cluster in $DIR did not come up" >&2
        show_logs
        local n
        for n in "${NODES[@]}"; do
            kill_node "$n" || true
        done
    fi
    exit "$status"
}

cmd_start() {
    need python3 "pick free ports"
    need curl "check that the cluster serves S3"
    need setsid "start the nodes"
    GARAGE_BIN=$(find_garage)
    if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
        die "$DIR is not empty; start wants a fresh folder"
    fi
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    DEADLINE=$((SECONDS + START_TIMEOUT))
    trap start_failed EXIT

    local attempt n status
    for attempt in 1 2 3; do
        status=0
        launch_all || status=$?
        [ "$status" = 2 ] || break
        # Most likely a port was taken between picking and binding it: start over with
        # new ports.
        echo "garage-cluster: a node failed at start (attempt $attempt of 3):" >&2
        show_logs
        for n in "${NODES[@]}"; do
            kill_node "$n"
        done
    done
    [ "$status" = 0 ] || exit 1
    WATCH=("${NODES[@]}")

    local ids=() addrs=()
    for n in "${NODES[@]}"; do
        ids[n]=$(cut -d@ -f1 "$DIR/n$n.id")
        addrs[n]=$(cat "$DIR/n$n.id")
    done
    # Node 1 connects to the others, and they learn of each other from it.
    for n in 2 3; do
        retry cli node connect "${addrs[n]}" >/dev/null
    done
    retry cli layout assign -z dc1 -c 1G "${ids[1]}" "${ids[2]}" "${ids[3]}" >/dev/null
    retry apply_layout >/dev/null
    wait_until "every node to be healthy" cluster_healthy

    # A key of our own making, imported: unlike `key create`, trying again cannot leave
    # a second key of the same name behind.
    AWS_ACCESS_KEY_ID=GK$(hex 12)
    AWS_SECRET_ACCESS_KEY=$(hex 32)
    retry import_key >/dev/null
    retry create_bucket >/dev/null
    retry cli bucket allow --read --write --owner "$BUCKET" --key "$AWS_ACCESS_KEY_ID" >/dev/null
    wait_until "a signed S3 request to succeed through every node" all_serve_s3

    write_env
    rm -f "$DIR/last.out"
    echo "garage-cluster: 3 nodes up in $DIR in ${SECONDS} s" >&2
}

node_arg() {
    case "${1:-}" in
        1 | 2 | 3) ;;
        *) usage ;;
    esac
}

# After a kill -9 the other nodes learn that node N is gone only when they next write to
# their connection to it, and a request they send it meanwhile waits for that: up to
# their next ping (every 15 s). Asking each of them for every node's statistics, and
# giving up on the answer, has them write to the dead connection twice, and the second
# write closes it. Returns once no running node counts node N as up (or after ~8 s).
notice_down() {
    local n=$1 m t pending
    GARAGE_BIN=$(garage_path) || return 0
    for t in 0.5 1 2 4; do
        pending=()
        for m in "${NODES[@]}"; do
            if [ "$m" != "$n" ] && is_running "$m" &&
                grep -q "fully operational" <<<"$(health_body "$m")"; then
                pending+=("$m")
            fi
        done
        [ "${#pending[@]}" -gt 0 ] || return 0
        for m in "${pending[@]}"; do
            timeout "$t" "$GARAGE_BIN" -c "$DIR/n$m.toml" stats -a >/dev/null 2>&1 &
        done
        wait
    done
}

cmd_kill() {
    local n=$1 was_running=0
    if is_running "$n"; then
        was_running=1
    fi
    kill_node "$n"
    if [ "$was_running" = 1 ]; then
        notice_down "$n"
    fi
}

cmd_restart() {
    local n=$1 pid
    GARAGE_BIN=$(find_garage)
    load_env
    pid=$(node_pid "$n")
    if is_running "$n"; then
        die "node $n is running (pid $pid); kill it first"
    fi
    DEADLINE=$((SECONDS + RESTART_TIMEOUT))
    LOG_FROM[n]=$(stat -c %s "$DIR/n$n.log" 2>/dev/null || echo 0)
    launch "$n"
    write_env
    WATCH=("$n")
    if ! wait_until "node $n to serve S3 again" s3_ok "$n" ||
        ! connect_to "$n" ||
        ! wait_until "the running nodes to see each other" cluster_healthy; then
        show_logs
        exit 1
    fi
    rm -f "$DIR/last.out"
}

# Has every other running node connect to node N. The restarted node connects to its
# bootstrap peers at once, but a peer that lost node N retries its own connection only
# after a back-off (tens of seconds), and until then counts node N as down.
connect_to() {
    local n=$1 m
    for m in "${NODES[@]}"; do
        if [ "$m" = "$n" ] || ! is_running "$m"; then
            continue
        fi
        retry "$GARAGE_BIN" -c "$DIR/n$m.toml" node connect "$(cat "$DIR/n$n.id")" >/dev/null ||
            return 1
    done
}

cmd_stop() {
    local n
    for n in "${NODES[@]}"; do
        [ -e "$DIR/n$n.pid" ] || continue
        kill_node "$n"
    done
}

[ $# -ge 2 ] || usage
COMMAND=$1
DIR=$2
case "$COMMAND" in
    start)
        [ $# -eq 2 ] || usage
        cmd_start
        ;;
    kill | restart)
        [ $# -eq 3 ] || usage
        node_arg "$3"
        [ -d "$DIR" ] || die "$DIR does not exist"
        # Absolute and free of symlinks, as in the configs (is_running looks for the
        # config's path on the server's command line).
        DIR=$(cd "$DIR" && pwd -P)
        "cmd_$COMMAND" "$3"
        ;;
    stop)
        [ $# -eq 2 ] || usage
        [ -d "$DIR" ] || die "$DIR does not exist"
        DIR=$(cd "$DIR" && pwd -P)
        cmd_stop
        ;;
    *)
        usage
        ;;
esac
