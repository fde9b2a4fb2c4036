#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks: Debian's postgresql package
# (installed with apt-get when missing and run as root), a new cluster made by initdb in a
# folder of the caller's, owned by an unprivileged user, listening on 127.0.0.1 at a free port.
#
#   scripts/postgres.sh start DIR   # prints the URL of database "zt": postgres://zt@127.0.0.1:PORT/zt
#   scripts/postgres.sh replica DIR PRIMARY_DIR  # a streaming replica of the server in PRIMARY_DIR
#   scripts/postgres.sh restart DIR   # fast shutdown, then up again on the same port
#   scripts/postgres.sh tls DIR CERT KEY   # TLS on, and required for every TCP connection
#   scripts/postgres.sh stop DIR
#
# Trust authentication on loopback only: the cluster is a test fixture, gone with DIR.
set -euo pipefail

bin_dir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "postgres.sh: installing Debian's postgresql package" >&2
            # The package would start a cluster of its own: not in this machine's services.
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
            rm -f /usr/sbin/policy-rc.d
            d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
        else
            echo "postgres.sh: PostgreSQL server binaries missing: apt-get install postgresql" >&2
            exit 1
        fi
    fi
    printf '%s' "$d"
}

# PostgreSQL refuses to run as root: as root, the server runs as an unprivileged user.
run_as() {
    if [ "$(id -u)" = 0 ]; then
        if ! id zt-postgres >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin zt-postgres
        fi
        runuser -u zt-postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

own() {
    mkdir -p "$1"
    if [ "$(id -u)" = 0 ]; then chown zt-postgres "$1"; fi
    chmod 700 "$1"
}

start_server() {
    local dir=$1 bin=$2 port=$3
    run_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1" >/dev/null
    echo "$port" > "$dir/port"
}

cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || { echo "usage: $0 start|replica|restart|stop DIR [PRIMARY_DIR]" >&2; exit 2; }
case "$cmd" in
start)
    bin=$(bin_dir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    run_as true
    own "$dir"; own "$dir/data"; own "$dir/sock"
    chmod 755 "$dir"
    run_as "$bin/initdb" -D "$dir/data" -U zt --auth=trust --no-locale -E UTF8 >/dev/null
    port=$(free_port)
    start_server "$dir" "$bin" "$port"
    run_as "$bin/createdb" -h 127.0.0.1 -p "$port" -U zt zt
    echo "postgres://zt@127.0.0.1:$port/zt"
    ;;
replica)
    primary=${3:?primary DIR}
    bin=$(bin_dir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    own "$dir"; own "$dir/sock"
    chmod 755 "$dir"
    pport=$(cat "$primary/port")
    # A base backup with the standby settings written (-R): the server starts as a hot standby
    # streaming from the primary.
    run_as "$bin/pg_basebackup" -h 127.0.0.1 -p "$pport" -U zt -D "$dir/data" -R -X stream --checkpoint=fast >/dev/null
    port=$(free_port)
    start_server "$dir" "$bin" "$port"
    echo "postgres://zt@127.0.0.1:$port/zt"
    ;;
tls)
    cert=${3:?certificate file}
    key=${4:?key file}
    bin=$(bin_dir)
    install -m 0644 "$cert" "$dir/data/server.crt"
    install -m 0600 "$key" "$dir/data/server.key"
    if [ "$(id -u)" = 0 ]; then chown zt-postgres "$dir/data/server.crt" "$dir/data/server.key"; fi
    printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >> "$dir/data/postgresql.conf"
    # TCP only over TLS; the socket in DIR (pg_ctl's) stays as it was.
    printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl replication all 127.0.0.1/32 trust\n' > "$dir/data/pg_hba.conf"
    if [ "$(id -u)" = 0 ]; then chown zt-postgres "$dir/data/pg_hba.conf"; fi
    run_as "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart >/dev/null
    ;;
restart)
    bin=$(bin_dir)
    run_as "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart >/dev/null
    ;;
stop)
    bin=$(bin_dir)
    if [ -f "$dir/data/postmaster.pid" ]; then
        run_as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    ;;
*)
    echo "usage: $0 start|replica|restart|tls|stop DIR [PRIMARY_DIR | CERT KEY]" >&2
    exit 2
    ;;
esac
