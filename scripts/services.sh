#!/usr/bin/env bash
# scripts/services.sh — the real services of the `dev` profile and the integration tests, on loopback.
#
#   scripts/services.sh up              install what is missing (cached), start all four, wait until ready
#   scripts/services.sh down            stop all four; data under var/services/ stays
#   scripts/services.sh status          one line per service; exit 1 if any is down
#   scripts/services.sh env             `export` lines for the dev profile:  eval "$(scripts/services.sh env)"
#   scripts/services.sh start SVC...    start some (postgres, redis, kafka, ferretdb; `mongo` = ferretdb)
#   scripts/services.sh stop SVC...     stop some (e.g. a test that needs Kafka to go away and come back)
#   scripts/services.sh restart SVC...
#   scripts/services.sh install         only install/download/build (fills the cache), start nothing
#   scripts/services.sh logs SVC [N]    last N lines of a service's log
#   scripts/services.sh reset           stop all and delete var/services/ (the cache is kept)
#
# Services: PostgreSQL (Debian package, own cluster under var/services/postgres, run as the `postgres`
# OS user), Redis (Debian package), Apache Kafka (single-node KRaft broker from Maven Central jars,
# resolved with Maven into the cache), FerretDB v1 (MongoDB wire protocol on top of our PostgreSQL,
# built with Go into the cache).  Everything listens on 127.0.0.1 only.
#
# The cache (downloads and builds) lives outside the repo and survives fresh clones:
#   ${BROKAGE_CACHE:-$HOME/.cache/brokage}
set -euo pipefail

# --- settings (all overridable from the environment) ----------------------------------------------
: "${BROKAGE_PG_PORT:=55432}"
: "${BROKAGE_REDIS_PORT:=6380}"
: "${BROKAGE_MONGO_PORT:=27018}"
: "${BROKAGE_KAFKA_PORT:=19092}"
: "${BROKAGE_KAFKA_CONTROLLER_PORT:=19093}"
: "${BROKAGE_DB_USER:=brokage}"
: "${BROKAGE_DB_PASSWORD:=brokage}"
: "${BROKAGE_KAFKA_VERSION:=4.1.2}"          # org.apache.kafka:kafka_2.13
: "${BROKAGE_LOG4J_VERSION:=2.25.3}"         # the log4j2 that kafka 4.1.2 depends on (+ its slf4j binding)
: "${BROKAGE_FERRETDB_VERSION:=v1.24.2}"     # v1: plain PostgreSQL backend (v2 needs DocumentDB extension)
: "${BROKAGE_KAFKA_HEAP:=512m}"
: "${BROKAGE_KAFKA_GC:=-XX:+UseParallelGC -XX:ParallelGCThreads=1}"   # the broker's collector
: "${BROKAGE_KAFKA_NETWORK_THREADS:=1}"      # num.network.threads
: "${BROKAGE_KAFKA_IO_THREADS:=2}"           # num.io.threads
: "${BROKAGE_FERRETDB_LOG_LEVEL:=warn}"      # info logs every client connection
: "${BROKAGE_START_TIMEOUT:=120}"            # seconds to wait for one service to become ready
: "${BROKAGE_CACHE:=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/brokage}"

HOST=127.0.0.1
DATABASES=(brokage_customers brokage_orders brokage_assets brokage_processor)
FERRETDB_DATABASE=ferretdb

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
: "${BROKAGE_SERVICES_DIR:=$ROOT/var/services}"
SVC="$BROKAGE_SERVICES_DIR"
CACHE="$BROKAGE_CACHE"
ROOT_HASH="$(printf '%s' "$SVC" | sha1sum | cut -c1-10)"

# --- small helpers ---------------------------------------------------------------------------------
say() { echo "services: $*"; }
warn() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

# pid_of PIDFILE PATTERN: print the pid if that process is alive and its command line matches PATTERN
pid_of() {
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
    echo "$pid"
}

# stop_pid PIDFILE PATTERN NAME [GRACE_SECONDS]: TERM, wait, then KILL
stop_pid() {
    local pid i grace="${4:-30}"
    pid="$(pid_of "$1" "$2")" || { rm -f "$1"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$3 did not stop within ${grace}s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$1"
}

log_tail() { # FILE [N]
    if [ -f "$1" ]; then
        echo "----- last ${2:-30} lines of $1 -----" >&2
        tail -n "${2:-30}" "$1" >&2
        echo "-----" >&2
    else
        echo "(no log at $1)" >&2
    fi
}

fail_service() { # NAME REASON LOGFILE
    echo "services: ERROR: $1 could not start: $2" >&2
    log_tail "$3" 40
    exit 1
}

fail_started() { # NAME PIDFILE REASON LOGFILE: stop what we launched (no half-started leftovers), then fail
    local pid
    pid="$(cat "$2" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        sleep 2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$2"
    fail_service "$1" "$3" "$4"
}

port_owner() { # PORT -> "pid/name" of the listener, if ss can tell
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*' | head -1 | sed 's/users:((//' || true
}

python_with() { # MODULE: print a python that can import MODULE (the project's venv preferred)
    local py
    for py in "${BROKAGE_PYTHON:-}" "$ROOT/.venv/bin/python" python3; do
        [ -n "$py" ] || continue
        command -v "$py" >/dev/null 2>&1 || continue
        "$py" -c "import $1" 2>/dev/null && { echo "$py"; return 0; }
    done
    return 1
}

elapsed() { echo "$((SECONDS - $1))s"; }

# --- apt ---------------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
    is_root || die "need root to 'apt-get install $*' (install it yourself, or run as root)"
    command -v apt-get >/dev/null || die "no apt-get here: install $* by hand"
    say "installing $* with apt-get (first run only)"
    local aptlog
    aptlog="$(mktemp /tmp/brokage-apt.XXXXXX)"
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >"$aptlog" 2>&1 ||
            { log_tail "$aptlog"; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    # Keep the packages' own init scripts from starting system-wide daemons (we run our own instances).
    local made_policy=0 rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "$@" >>"$aptlog" 2>&1 || rc=$?
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || { log_tail "$aptlog"; die "apt-get install $* failed (exit $rc)"; }
    rm -f "$aptlog"
}

# =====================================================================================================
# PostgreSQL
# =====================================================================================================
PG_BIN=""
pg_find_bin() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    if [ -n "$d" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then PG_BIN="$d"; return 0; fi
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir)"
        if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then PG_BIN="$d"; return 0; fi
    fi
    return 1
}

pg_install() {
    if ! pg_find_bin || { is_root && ! id postgres >/dev/null 2>&1; }; then
        apt_install postgresql
        pg_find_bin || die "postgresql installed but pg_ctl/initdb not found under /usr/lib/postgresql"
    fi
    if is_root && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    command -v psql >/dev/null 2>&1 || [ -x "$PG_BIN/psql" ] || apt_install postgresql-client
}

# run a command as the OS user that owns the cluster (postgres refuses to run as root)
as_pg() {
    if is_root; then (cd / && runuser -u postgres -- "$@" 9>&-); else (cd / && "$@" 9>&-); fi
}

PG_DIR="" PG_DATA="" PG_SOCK="" PG_LOG=""
pg_paths() {
    if [ -L "$SVC/postgres" ]; then PG_DIR="$(readlink -f "$SVC/postgres")"; else PG_DIR="$SVC/postgres"; fi
    PG_DATA="$PG_DIR/data"
    PG_LOG="$PG_DIR/postgres.log"
    PG_SOCK="$PG_DIR/run"
    # unix socket paths are limited to ~107 bytes
    if [ $((${#PG_SOCK} + 20)) -gt 100 ]; then PG_SOCK="/tmp/brokage-pg-$ROOT_HASH"; fi
}

pg_prepare_dirs() {
    mkdir -p "$SVC"
    pg_paths
    mkdir -p "$PG_DIR"
    if is_root; then
        chown postgres:postgres "$PG_DIR"
        if ! as_pg test -w "$PG_DIR" -a -x "$PG_DIR"; then
            # The repo lives where the postgres user cannot go (e.g. under /root): keep the cluster in
            # /var/lib/brokage and point var/services/postgres at it.
            [ -L "$SVC/postgres" ] || rmdir "$SVC/postgres" 2>/dev/null ||
                die "postgres user cannot reach $PG_DIR and it is not empty; fix permissions or 'reset'"
            local alt="/var/lib/brokage/$ROOT_HASH/postgres"
            # a fresh var/services (e.g. a fresh clone at the same path) gets a fresh cluster too
            [ -L "$SVC/postgres" ] || rm -rf "$alt"
            mkdir -p "$alt" && chmod 755 /var/lib/brokage "/var/lib/brokage/$ROOT_HASH"
            chown postgres:postgres "$alt"
            ln -sfn "$alt" "$SVC/postgres"
            say "postgres: the postgres user cannot reach $SVC; cluster kept in $alt (symlinked)"
            pg_paths
        fi
    fi
    mkdir -p "$PG_SOCK"
    is_root && chown postgres:postgres "$PG_SOCK"
    chmod 755 "$PG_SOCK"
}

pg_running() {
    pg_paths
    [ -f "$PG_DATA/postmaster.pid" ] || return 1
    pg_find_bin || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 || return 1
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$BROKAGE_PG_PORT" -t 2 >/dev/null 2>&1
}

psql_admin() { # run SQL from stdin as the postgres superuser over our unix socket
    local psql="$PG_BIN/psql"
    [ -x "$psql" ] || psql="psql"
    "$psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$BROKAGE_PG_PORT" -U postgres -d postgres "$@"
}

pg_provision() {
    local dbs=("${DATABASES[@]}" "$FERRETDB_DATABASE") d
    {
        cat <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'u') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I LOGIN SUPERUSER CREATEDB PASSWORD %L', :'u', :'p') \gexec
SQL
        for d in "${dbs[@]}"; do
            echo "SELECT format('CREATE DATABASE %I OWNER %I', '$d', :'u') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$d') \\gexec"
        done
    } | psql_admin -v u="$BROKAGE_DB_USER" -v p="$BROKAGE_DB_PASSWORD" >/dev/null
    # FerretDB's storage: indexes its `@>` filters can use (see the file)
    psql_admin -d "$FERRETDB_DATABASE" -v db="$FERRETDB_DATABASE" <"$ROOT/scripts/ferretdb-indexes.sql" >/dev/null
}

pg_start() {
    local t0=$SECONDS
    pg_install
    pg_prepare_dirs
    if pg_running; then
        pg_archive_ensure
        pg_provision || die "postgres: creating role/databases failed"
        say "postgres ... up on $HOST:$BROKAGE_PG_PORT (already running)"
        return 0
    fi
    if port_open "$BROKAGE_PG_PORT"; then
        die "postgres: port $BROKAGE_PG_PORT is taken by another process ($(port_owner "$BROKAGE_PG_PORT")); set BROKAGE_PG_PORT"
    fi
    local major
    major="$(basename "$(dirname "$PG_BIN")")"
    if [ -f "$PG_DATA/PG_VERSION" ] && [ "$(cat "$PG_DATA/PG_VERSION")" != "$major" ]; then
        die "postgres: cluster in $PG_DATA is version $(cat "$PG_DATA/PG_VERSION") but $PG_BIN is $major; run '$0 reset'"
    fi
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        say "postgres: initdb $PG_DATA"
        rm -rf "$PG_DATA"
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C \
            --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 ||
            fail_service postgres "initdb failed" "$PG_DIR/initdb.log"
        echo "include_if_exists = 'brokage.conf'" >>"$PG_DATA/postgresql.conf"
    fi
    # rewritten at every start so that port overrides take effect
    cat >"$PG_DATA/brokage.conf" <<EOF
# written by scripts/services.sh at every start; edits are lost
listen_addresses = '$HOST'
port = $BROKAGE_PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 128MB
fsync = on
# Durable commits: a transaction the API acknowledged survives a crash of PostgreSQL or the machine.
# Concurrent commits share one WAL flush (group commit), so the saga's many small transactions stay cheap.
synchronous_commit = on
timezone = 'UTC'
log_timezone = 'UTC'
EOF
    pg_archive_conf >>"$PG_DATA/brokage.conf"
    is_root && chown postgres:postgres "$PG_DATA/brokage.conf"
    is_root && { touch "$PG_LOG"; chown postgres:postgres "$PG_LOG"; }
    # setsid: a later Ctrl-C in the terminal that ran `up` must not reach the server
    if ! as_pg setsid -w "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$BROKAGE_START_TIMEOUT" start >/dev/null 2>&1; then
        fail_service postgres "pg_ctl start failed" "$PG_LOG"
    fi
    pg_running || fail_service postgres "not accepting connections on $HOST:$BROKAGE_PG_PORT" "$PG_LOG"
    pg_provision || fail_service postgres "creating role/databases failed" "$PG_LOG"
    say "postgres ... up on $HOST:$BROKAGE_PG_PORT (started in $(elapsed $t0))"
}

# WAL archiving for point-in-time recovery (docs/operations.md): every finished WAL segment is copied
# into the backup store's WAL area, where a base backup (pg_basebackup) plus these segments restore
# the cluster to any moment since. archive_mode takes effect only at a start, so a cluster started
# before this setting existed is restarted once by `up` (quick; clients reconnect).
pg_wal_archive_dir() { echo "${BROKAGE_WAL_ARCHIVE_DIR:-$PG_DIR/wal-archive}"; }
pg_archive_conf() {
    local wal
    wal="$(pg_wal_archive_dir)"
    mkdir -p "$wal"
    is_root && chown postgres:postgres "$wal"
    echo "archive_mode = on"
    echo "archive_command = 'test ! -f \"$wal/%f\" && cp \"%p\" \"$wal/%f.part\" && mv \"$wal/%f.part\" \"$wal/%f\"'"
}
pg_archive_ensure() { # an already running cluster: archive_mode on, restarting it once if needed
    grep -q '^archive_mode = on' "$PG_DATA/brokage.conf" 2>/dev/null || pg_archive_conf >>"$PG_DATA/brokage.conf"
    [ "$(psql_admin -At -c 'SHOW archive_mode')" = on ] && return 0
    say "postgres: restarting once to turn on WAL archiving into $(pg_wal_archive_dir)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$BROKAGE_START_TIMEOUT" -m fast restart >/dev/null 2>&1 ||
        fail_service postgres "pg_ctl restart failed" "$PG_LOG"
}

pg_stop() {
    pg_paths
    if pg_find_bin && [ -f "$PG_DATA/postmaster.pid" ] &&
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null ||
            die "postgres: pg_ctl stop failed"
        say "postgres ... stopped"
    else
        say "postgres ... not running"
    fi
}

pg_status() {
    if pg_running; then echo "postgres  up    $HOST:$BROKAGE_PG_PORT  data=$PG_DATA"; return 0; fi
    echo "postgres  DOWN  $HOST:$BROKAGE_PG_PORT"
    return 1
}

# =====================================================================================================
# Redis
# =====================================================================================================
REDIS_DIR="$SVC/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"

redis_install() {
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
    apt_install redis-server
}

redis_ping() { redis-cli -h "$HOST" -p "$BROKAGE_REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
redis_running() { pid_of "$REDIS_PID" redis-server >/dev/null && redis_ping; }

redis_start() {
    local t0=$SECONDS i
    redis_install
    if redis_running; then say "redis ... up on $HOST:$BROKAGE_REDIS_PORT (already running)"; return 0; fi
    if port_open "$BROKAGE_REDIS_PORT"; then
        die "redis: port $BROKAGE_REDIS_PORT is taken by another process ($(port_owner "$BROKAGE_REDIS_PORT")); set BROKAGE_REDIS_PORT"
    fi
    mkdir -p "$REDIS_DIR"
    cat >"$REDIS_DIR/redis.conf" <<EOF
# written by scripts/services.sh at every start; edits are lost
bind $HOST
port $BROKAGE_REDIS_PORT
protected-mode yes
daemonize yes
pidfile "$REDIS_PID"
logfile "$REDIS_LOG"
dir "$REDIS_DIR"
dbfilename dump.rdb
save 3600 1 300 100 60 10000
appendonly no
databases 16
EOF
    [ -f "$REDIS_LOG" ] && mv -f "$REDIS_LOG" "$REDIS_LOG.1"
    setsid redis-server "$REDIS_DIR/redis.conf" 9>&- >/dev/null 2>"$REDIS_DIR/startup.err" ||
        { cat "$REDIS_DIR/startup.err" >>"$REDIS_LOG"; fail_service redis "redis-server exited" "$REDIS_LOG"; }
    for ((i = 0; i < BROKAGE_START_TIMEOUT * 5; i++)); do
        redis_running && break
        sleep 0.2
    done
    redis_running || fail_service redis "no PONG on $HOST:$BROKAGE_REDIS_PORT" "$REDIS_LOG"
    say "redis ... up on $HOST:$BROKAGE_REDIS_PORT (started in $(elapsed $t0))"
}

redis_stop() {
    local pid
    if pid="$(pid_of "$REDIS_PID" redis-server)"; then
        redis-cli -h "$HOST" -p "$BROKAGE_REDIS_PORT" shutdown >/dev/null 2>&1 ||
            redis-cli -h "$HOST" -p "$BROKAGE_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
        stop_pid "$REDIS_PID" redis-server redis 20
        say "redis ... stopped"
    else
        rm -f "$REDIS_PID"
        say "redis ... not running"
    fi
}

redis_status() {
    if redis_running; then echo "redis     up    $HOST:$BROKAGE_REDIS_PORT  data=$REDIS_DIR"; return 0; fi
    echo "redis     DOWN  $HOST:$BROKAGE_REDIS_PORT"
    return 1
}

# =====================================================================================================
# Kafka (single-node KRaft broker+controller; jars from Maven Central)
# =====================================================================================================
KAFKA_CACHE="$CACHE/kafka-$BROKAGE_KAFKA_VERSION"
KAFKA_LIB="$KAFKA_CACHE/lib"
KAFKA_DIR="$SVC/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
KAFKA_PROPS="$KAFKA_DIR/server.properties"

java_major() {
    local v
    v="$(java -version 2>&1 | head -1 | sed -E 's/.*version "([^"]+)".*/\1/')" || return 1
    case "$v" in 1.*) echo "${v#1.}" | cut -d. -f1 ;; *) echo "$v" | cut -d. -f1 | cut -d- -f1 ;; esac
}

kafka_install() {
    if ! command -v java >/dev/null 2>&1 || [ "$(java_major 2>/dev/null || echo 0)" -lt 17 ]; then
        apt_install openjdk-17-jre-headless
    fi
    [ -f "$KAFKA_LIB/.complete" ] && return 0
    command -v mvn >/dev/null 2>&1 || apt_install maven
    local t0=$SECONDS
    say "kafka: resolving org.apache.kafka:kafka_2.13:$BROKAGE_KAFKA_VERSION from Maven Central (first run only)"
    mkdir -p "$KAFKA_CACHE"
    cat >"$KAFKA_CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <!-- written by brokage scripts/services.sh: the runtime classpath of a Kafka broker -->
  <modelVersion>4.0.0</modelVersion>
  <groupId>brokage.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$BROKAGE_KAFKA_VERSION</version></dependency>
    <!-- slf4j 1.7 (what kafka uses) -> log4j2, so the broker logs -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$BROKAGE_LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$BROKAGE_LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
    rm -rf "$KAFKA_LIB.tmp"
    if ! mvn -B -q -f "$KAFKA_CACHE/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB.tmp" >"$KAFKA_CACHE/mvn.log" 2>&1; then
        fail_service kafka "maven could not resolve the broker jars" "$KAFKA_CACHE/mvn.log"
    fi
    [ -f "$KAFKA_LIB.tmp/kafka_2.13-$BROKAGE_KAFKA_VERSION.jar" ] ||
        fail_service kafka "kafka_2.13 jar missing after maven run" "$KAFKA_CACHE/mvn.log"
    rm -rf "$KAFKA_LIB"
    mv "$KAFKA_LIB.tmp" "$KAFKA_LIB"
    touch "$KAFKA_LIB/.complete"
    say "kafka: $(ls "$KAFKA_LIB"/*.jar | wc -l) jars in $KAFKA_LIB ($(elapsed $t0))"
}

kafka_java() { java -cp "$KAFKA_LIB/*" -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" "$@"; }

kafka_write_config() {
    mkdir -p "$KAFKA_DATA"
    cat >"$KAFKA_PROPS" <<EOF
# written by scripts/services.sh at every start; edits are lost
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$BROKAGE_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$BROKAGE_KAFKA_PORT,CONTROLLER://$HOST:$BROKAGE_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$BROKAGE_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=67108864
num.network.threads=$BROKAGE_KAFKA_NETWORK_THREADS
num.io.threads=$BROKAGE_KAFKA_IO_THREADS
EOF
    cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
# written by scripts/services.sh; the broker writes to stdout, which goes to kafka.log
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

kafka_running() { pid_of "$KAFKA_PID" kafka.Kafka >/dev/null && port_open "$BROKAGE_KAFKA_PORT"; }

kafka_ready_check() { # a real metadata request when confluent-kafka is at hand
    local py
    py="$(python_with confluent_kafka)" || return 0
    "$py" - "$HOST:$BROKAGE_KAFKA_PORT" <<'PY' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5)
sys.exit(0 if md.brokers else 1)
PY
}

kafka_start() {
    local t0=$SECONDS i pid
    kafka_install
    if kafka_running; then say "kafka ... up on $HOST:$BROKAGE_KAFKA_PORT (already running)"; return 0; fi
    for p in "$BROKAGE_KAFKA_PORT" "$BROKAGE_KAFKA_CONTROLLER_PORT"; do
        port_open "$p" && die "kafka: port $p is taken by another process ($(port_owner "$p")); set BROKAGE_KAFKA_PORT / BROKAGE_KAFKA_CONTROLLER_PORT"
    done
    kafka_write_config
    if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
        local cid="-"
        # what `kafka-storage random-uuid` prints: 16 random bytes, url-safe base64, no padding, no leading '-'
        while [ "${cid:0:1}" = "-" ]; do
            cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        done
        say "kafka: formatting KRaft storage (cluster id $cid)"
        kafka_java kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" --ignore-formatted \
            >>"$KAFKA_DIR/format.log" 2>&1 || fail_service kafka "storage format failed" "$KAFKA_DIR/format.log"
    fi
    [ -f "$KAFKA_LOG" ] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
    # setsid: its own session, so a Ctrl-C in the terminal that ran `up` does not reach it
    # A fixed heap, touched at start (Kafka's own advice: -Xms = -Xmx): the broker's memory is what
    # it is from the first minute instead of creeping up to the cap under load. One node on a small
    # host: the parallel collector with one thread, one network thread and two request handlers (G1
    # with 20 ms pauses, 2 and 4 before: `bench.cpu` put the broker at 5.9-6.0 ms per order with
    # those, 4.7-5.2 with these, on a host busy with other work; BROKAGE_KAFKA_GC and the two thread
    # counts override them).
    (cd "$KAFKA_DIR" && exec setsid nohup java -Xms"$BROKAGE_KAFKA_HEAP" -Xmx"$BROKAGE_KAFKA_HEAP" \
        -XX:+AlwaysPreTouch $BROKAGE_KAFKA_GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
        -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DIR" \
        -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_PROPS" </dev/null >"$KAFKA_LOG" 2>&1 9>&-) &
    pid=$!
    echo "$pid" >"$KAFKA_PID"
    for ((i = 0; i < BROKAGE_START_TIMEOUT * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || fail_started kafka "$KAFKA_PID" "the broker process exited" "$KAFKA_LOG"
        if port_open "$BROKAGE_KAFKA_PORT" && grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null; then
            break
        fi
        sleep 0.2
    done
    kafka_running && grep -q 'Kafka Server started' "$KAFKA_LOG" ||
        fail_started kafka "$KAFKA_PID" "not ready on $HOST:$BROKAGE_KAFKA_PORT after ${BROKAGE_START_TIMEOUT}s" "$KAFKA_LOG"
    for ((i = 0; i < 10; i++)); do kafka_ready_check && break; sleep 1; done
    kafka_ready_check || fail_started kafka "$KAFKA_PID" "metadata request to $HOST:$BROKAGE_KAFKA_PORT failed" "$KAFKA_LOG"
    say "kafka ... up on $HOST:$BROKAGE_KAFKA_PORT (started in $(elapsed $t0))"
}

kafka_stop() {
    if pid_of "$KAFKA_PID" kafka.Kafka >/dev/null; then
        stop_pid "$KAFKA_PID" kafka.Kafka kafka 60
        say "kafka ... stopped"
    else
        rm -f "$KAFKA_PID"
        say "kafka ... not running"
    fi
}

kafka_status() {
    if kafka_running; then echo "kafka     up    $HOST:$BROKAGE_KAFKA_PORT  data=$KAFKA_DATA"; return 0; fi
    echo "kafka     DOWN  $HOST:$BROKAGE_KAFKA_PORT"
    return 1
}

# =====================================================================================================
# FerretDB v1 (MongoDB wire protocol; PostgreSQL backend on our cluster, database "ferretdb")
# =====================================================================================================
FERRET_CACHE="$CACHE/ferretdb-$BROKAGE_FERRETDB_VERSION"
FERRET_BIN="$FERRET_CACHE/ferretdb"
FERRET_DIR="$SVC/ferretdb"
FERRET_PID="$FERRET_DIR/ferretdb.pid"
FERRET_LOG="$FERRET_DIR/ferretdb.log"

go_bin() {
    local g
    for g in "${BROKAGE_GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
        [ -n "$g" ] && [ -x "$g" ] && { echo "$g"; return 0; }
    done
    return 1
}

ferret_install() {
    [ -x "$FERRET_BIN" ] && return 0
    local go t0=$SECONDS dir
    go="$(go_bin)" || die "ferretdb: building FerretDB needs Go >= 1.24 (not found; set BROKAGE_GO)"
    say "ferretdb: building FerretDB $BROKAGE_FERRETDB_VERSION with $("$go" version | cut -d' ' -f3) (first run only; 1-5 min depending on the network)"
    mkdir -p "$FERRET_CACHE"
    export GOPATH="$CACHE/go" GOCACHE="$CACHE/go-build" GOFLAGS=-modcacherw
    # `go install ...@version` builds a binary that panics (build/version/version.txt is generated by
    # FerretDB's release tooling), so build from a copy of the module with that file written.
    dir="$("$go" mod download -json "github.com/FerretDB/FerretDB@$BROKAGE_FERRETDB_VERSION" 2>"$FERRET_CACHE/build.log" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    [ -n "$dir" ] && [ -d "$dir" ] || fail_service ferretdb "go mod download failed" "$FERRET_CACHE/build.log"
    rm -rf "$FERRET_CACHE/src"
    cp -r "$dir" "$FERRET_CACHE/src"
    chmod -R u+w "$FERRET_CACHE/src"
    echo "$BROKAGE_FERRETDB_VERSION" >"$FERRET_CACHE/src/build/version/version.txt"
    if ! (cd "$FERRET_CACHE/src" && "$go" build -trimpath -o "$FERRET_BIN.tmp" ./cmd/ferretdb) >>"$FERRET_CACHE/build.log" 2>&1; then
        fail_service ferretdb "go build failed" "$FERRET_CACHE/build.log"
    fi
    mv "$FERRET_BIN.tmp" "$FERRET_BIN"
    # only the binary is kept: the module and build caches are ~1 GB
    rm -rf "$FERRET_CACHE/src" "$GOPATH" "$GOCACHE"
    "$FERRET_BIN" --version >/dev/null 2>&1 || fail_service ferretdb "built binary does not run" "$FERRET_CACHE/build.log"
    say "ferretdb: built $FERRET_BIN ($(elapsed $t0))"
}

ferret_running() { pid_of "$FERRET_PID" ferretdb >/dev/null && port_open "$BROKAGE_MONGO_PORT"; }

ferret_ready_check() { # a real ping round trip when pymongo is at hand
    local py
    py="$(python_with pymongo)" || return 0
    "$py" - "mongodb://$HOST:$BROKAGE_MONGO_PORT/" <<'PY' 2>/dev/null
import sys
from pymongo import MongoClient
c = MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
c.admin.command("ping")
c["brokage_probe"].list_collection_names()
PY
}

ferret_start() {
    local t0=$SECONDS i pid
    ferret_install
    if ferret_running; then say "ferretdb ... up on $HOST:$BROKAGE_MONGO_PORT (already running)"; return 0; fi
    pg_running || pg_start
    if port_open "$BROKAGE_MONGO_PORT"; then
        die "ferretdb: port $BROKAGE_MONGO_PORT is taken by another process ($(port_owner "$BROKAGE_MONGO_PORT")); set BROKAGE_MONGO_PORT"
    fi
    mkdir -p "$FERRET_DIR"
    [ -f "$FERRET_LOG" ] && mv -f "$FERRET_LOG" "$FERRET_LOG.1"
    # nice 10: on a shared machine FerretDB serves what is off the order path (notices, the audit
    # trail, request telemetry), so it yields the CPU to the order path under a burst and catches up.
    (cd "$FERRET_DIR" && exec setsid nohup nice -n 10 "$FERRET_BIN" \
        --handler=postgresql \
        --postgresql-url="postgres://$BROKAGE_DB_USER:$BROKAGE_DB_PASSWORD@$HOST:$BROKAGE_PG_PORT/$FERRETDB_DATABASE" \
        --listen-addr="$HOST:$BROKAGE_MONGO_PORT" \
        --debug-addr=- \
        --state-dir="$FERRET_DIR" \
        --telemetry=disable \
        --log-level="$BROKAGE_FERRETDB_LOG_LEVEL" \
        </dev/null >"$FERRET_LOG" 2>&1 9>&-) &
    pid=$!
    echo "$pid" >"$FERRET_PID"
    for ((i = 0; i < BROKAGE_START_TIMEOUT * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || fail_started ferretdb "$FERRET_PID" "the process exited" "$FERRET_LOG"
        port_open "$BROKAGE_MONGO_PORT" && break
        sleep 0.2
    done
    ferret_running || fail_started ferretdb "$FERRET_PID" "not listening on $HOST:$BROKAGE_MONGO_PORT" "$FERRET_LOG"
    for ((i = 0; i < 10; i++)); do ferret_ready_check && break; sleep 1; done
    ferret_ready_check || fail_started ferretdb "$FERRET_PID" "MongoDB ping to $HOST:$BROKAGE_MONGO_PORT failed" "$FERRET_LOG"
    say "ferretdb (mongodb) ... up on $HOST:$BROKAGE_MONGO_PORT (started in $(elapsed $t0))"
}

ferret_stop() {
    if pid_of "$FERRET_PID" ferretdb >/dev/null; then
        stop_pid "$FERRET_PID" ferretdb ferretdb 20
        say "ferretdb ... stopped"
    else
        rm -f "$FERRET_PID"
        say "ferretdb ... not running"
    fi
}

ferret_status() {
    if ferret_running; then echo "ferretdb  up    $HOST:$BROKAGE_MONGO_PORT  (mongodb wire protocol; backend postgresql db $FERRETDB_DATABASE)"; return 0; fi
    echo "ferretdb  DOWN  $HOST:$BROKAGE_MONGO_PORT"
    return 1
}

# =====================================================================================================
# commands
# =====================================================================================================
canon() { # service name -> function prefix
    case "$1" in
        postgres | postgresql | pg) echo pg ;;
        redis) echo redis ;;
        kafka) echo kafka ;;
        ferretdb | ferret | mongo | mongodb) echo ferret ;;
        *) die "unknown service '$1' (postgres, redis, kafka, ferretdb)" ;;
    esac
}

lock() { # serialize concurrent up/down/start/stop runs
    mkdir -p "$SVC"
    exec 9>"$SVC/.lock"
    flock -w 600 9 || die "another scripts/services.sh is still running (lock $SVC/.lock)"
}

print_env() {
    local a d
    printf 'export BROKAGE_PROFILE=dev\n'
    for d in "${DATABASES[@]}"; do
        a="$(echo "${d#brokage_}" | tr '[:lower:]' '[:upper:]')"
        printf 'export DATABASE_URL_%s=%q\n' "$a" \
            "postgresql://$BROKAGE_DB_USER:$BROKAGE_DB_PASSWORD@$HOST:$BROKAGE_PG_PORT/$d"
    done
    printf 'export MONGODB_URL=%q\n' "mongodb://$HOST:$BROKAGE_MONGO_PORT/"
    printf 'export REDIS_URL=%q\n' "redis://$HOST:$BROKAGE_REDIS_PORT/0"
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "$HOST:$BROKAGE_KAFKA_PORT"
    pg_paths
    printf 'export BROKAGE_WAL_ARCHIVE_DIR=%q\n' "$(pg_wal_archive_dir)"
}

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    up)
        lock
        t0=$SECONDS
        pg_start
        redis_start
        kafka_start
        ferret_start
        say "all up in $(elapsed $t0); for the dev profile: eval \"\$($0 env)\""
        ;;
    down)
        lock
        ferret_stop
        kafka_stop
        redis_stop
        pg_stop
        ;;
    start | stop | restart)
        [ $# -gt 0 ] || die "usage: $0 $cmd SERVICE..."
        lock
        for s in "$@"; do
            p="$(canon "$s")"
            case "$cmd" in
                start) "${p}_start" ;;
                stop) "${p}_stop" ;;
                restart) "${p}_stop" && "${p}_start" ;;
            esac
        done
        ;;
    status)
        rc=0
        pg_status || rc=1
        redis_status || rc=1
        kafka_status || rc=1
        ferret_status || rc=1
        exit $rc
        ;;
    env) print_env ;;
    install)
        lock
        pg_install
        redis_install
        kafka_install
        ferret_install
        say "everything installed; cache: $CACHE"
        ;;
    logs)
        [ $# -gt 0 ] || die "usage: $0 logs SERVICE [LINES]"
        case "$(canon "$1")" in
            pg) pg_paths; f="$PG_LOG" ;;
            redis) f="$REDIS_LOG" ;;
            kafka) f="$KAFKA_LOG" ;;
            ferret) f="$FERRET_LOG" ;;
        esac
        tail -n "${2:-50}" "$f"
        ;;
    reset)
        lock
        ferret_stop
        kafka_stop
        redis_stop
        pg_stop
        pg_paths
        if [ -L "$SVC/postgres" ]; then rm -rf "$PG_DIR"; rmdir "$(dirname "$PG_DIR")" 2>/dev/null || true; fi
        [ "$PG_SOCK" = "/tmp/brokage-pg-$ROOT_HASH" ] && rm -rf "$PG_SOCK"
        rm -rf "$SVC"
        say "removed $SVC (cache $CACHE kept)"
        ;;
    -h | --help | help | "") usage ;;
    *) usage >&2; exit 2 ;;
esac
