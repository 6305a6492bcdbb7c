# shellcheck shell=bash
# Installs (when missing) and starts the local infrastructure: PostgreSQL, RabbitMQ with its
# management plugin, nginx, and the MongoDB-wire read store unless MONGODB_URI points
# elsewhere: secantusd-rs (WiredTiger) by default, FerretDB (on PostgreSQL) with
# LOCAL_READ_STORE=ferretdb (docs/local-read-stores.md). Sourced by deploy/up and deploy/test;
# every function is safe to call twice.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${CQRS_STATE_DIR:-$REPO_ROOT/.stack}"
FERRETDB_VERSION="v1.24.2"
export FERRETDB_BIN="${FERRETDB_BIN:-$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin/ferretdb}"
# Jaeger: the v1.75.0 module's `jaeger` program (Jaeger v2, v2.12.0's code); the module
# proxy also serves v1.76.0, not an approved release. docs/tracing.md.
JAEGER_VERSION="v1.75.0"
export JAEGER_BIN="${JAEGER_BIN:-$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin/jaeger-$JAEGER_VERSION}"
export JAEGER_OTLP_PORT="${JAEGER_OTLP_PORT:-4318}"
export JAEGER_QUERY_PORT="${JAEGER_QUERY_PORT:-16686}"
export JAEGER_MAX_TRACES="${JAEGER_MAX_TRACES:-50000}"
case "$JAEGER_MAX_TRACES" in
  '' | *[!0-9]* | 0*)
    echo "error: JAEGER_MAX_TRACES is a whole number above 0 (the default: 50000), not '$JAEGER_MAX_TRACES'" >&2
    exit 2
    ;;
esac
export JAEGER_QUERY_GRPC_PORT="${JAEGER_QUERY_GRPC_PORT:-16685}"
# Where the services send spans, and where the tests and deploy/trace read traces.
export JAEGER_OTLP_URL="http://127.0.0.1:$JAEGER_OTLP_PORT"
export JAEGER_QUERY_URL="http://127.0.0.1:$JAEGER_QUERY_PORT"
# The page the local Jaeger serves instead of its UI, which its Go module does not hold.
export JAEGER_UI_ASSETS="$REPO_ROOT/deploy/jaeger/ui"
SECANTUSD_VERSION="0.5.3-beta.196"
export SECANTUSD_BIN="${SECANTUSD_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/secantusd-rs}"
if [ -n "${SECANTUSD_CACHE_SIZE:-}" ] && ! [[ "$SECANTUSD_CACHE_SIZE" =~ ^[1-9][0-9]*[MG]$ ]]; then
  echo "error: SECANTUSD_CACHE_SIZE is a whole number of MiB or GiB such as 512M or 2G (the default: an eighth of the memory, 128M to 4G), not '$SECANTUSD_CACHE_SIZE'" >&2
  exit 2
fi
PG_ROLE="cqrs"
PG_PASSWORD="cqrs"
RABBIT_USER="cqrs"
# The local read store, on MONGO_WIRE_ADDR; deploy/test also starts the other one, on
# SECOND_STORE_ADDR, and runs the read side's tests against it too.
LOCAL_READ_STORE="${LOCAL_READ_STORE:-secantusd-rs}"
case "$LOCAL_READ_STORE" in
  secantusd-rs | ferretdb) ;;
  *)
    echo "error: LOCAL_READ_STORE is secantusd-rs (the default) or ferretdb, not '$LOCAL_READ_STORE'" >&2
    exit 2
    ;;
esac
MONGO_WIRE_ADDR="127.0.0.1:27017"
SECOND_STORE_ADDR="127.0.0.1:27018"
# A MONGODB_URI set by the caller means "use that server": no read store is then installed or
# started.
MONGODB_URI_GIVEN="${MONGODB_URI:-}"
export MONGODB_URI="${MONGODB_URI_GIVEN:-mongodb://$MONGO_WIRE_ADDR}"
# The kind of server MONGODB_URI names, for the tests that start private servers of the same
# kind (harness's PrivateReadStore).
export READ_STORE="$LOCAL_READ_STORE"

mkdir -p "$STATE_DIR/logs" "$STATE_DIR/run"
# The logs are the stack's own (their lines name orders and errors): not for the machine's
# other users.
chmod 750 "$STATE_DIR/logs"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# wait_for_port HOST PORT SECONDS NAME
wait_for_port() {
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "error: $4 did not listen on $1:$2 within $3 s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# state_secret NAME: a random secret made once and kept in the state directory.
state_secret() {
  local file="$STATE_DIR/$1"
  if [ ! -s "$file" ]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

# The operator token of the local stack.
admin_token() { state_secret admin-token; }

# The broker's administrator has a password made for this checkout, never a documented one.
RABBIT_PASSWORD="$(state_secret rabbitmq-admin-password)"
export POSTGRES_ADMIN_URL="postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:5432/postgres"
export AMQP_BASE_URL="amqp://$RABBIT_USER:$RABBIT_PASSWORD@127.0.0.1:5672"
export RABBITMQ_API_URL="http://127.0.0.1:15672"
export RABBITMQ_API_USER="$RABBIT_USER"
export RABBITMQ_API_PASSWORD="$RABBIT_PASSWORD"

# The AMQP URLs of the services' own RabbitMQ users (see create_service_users).
publisher_amqp_url() { echo "amqp://orders-publisher:$(state_secret rabbitmq-publisher-password)@127.0.0.1:5672/%2f"; }
consumer_amqp_url() { echo "amqp://orders-consumer:$(state_secret rabbitmq-consumer-password)@127.0.0.1:5672/%2f"; }

# query_service_env COMMAND_PORT: the environment of a local query-service process (and of its
# operator subcommands), one VAR=VALUE per word.
query_service_env() {
  echo "MONGODB_URI=$MONGODB_URI AMQP_URL=$(consumer_amqp_url) ADMIN_TOKEN=$(admin_token)" \
    "APP_REBUILD__EVENT_LOG_URL=http://127.0.0.1:$1"
}

# run_stack_query_service SUBCOMMAND [ARGUMENT…]: an operator subcommand of the query-service
# that deploy/up built (QUERY_SERVICE_BIN names another build), with the environment of the
# stack's query-service.
run_stack_query_service() {
  local binary="${QUERY_SERVICE_BIN:-$REPO_ROOT/target/release/query-service}"
  [ -x "$binary" ] || {
    echo "error: $binary is missing: run deploy/up first" >&2
    return 1
  }
  # shellcheck disable=SC2046 # one VAR=VALUE per word
  exec env RUST_LOG="${RUST_LOG:-info,lapin=warn}" $(query_service_env "${COMMAND_PORT:-8081}") \
    "$binary" "$@"
}

# postgres_psql ARGUMENT…: psql as the postgres superuser, from /, with any file on standard
# input: the checkout may be in a directory the postgres user cannot enter (mktemp -d's 0700).
postgres_psql() { (cd / && runuser -u postgres -- psql "$@"); }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# listening_program PORT: the name of the program listening on TCP PORT, if any.
listening_program() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)".*/\1/p' | head -1
}

ensure_packages() {
  local missing=()
  command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
  command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
  command -v nginx >/dev/null || missing+=(nginx-light)
  command -v curl >/dev/null || missing+=(curl)
  command -v ss >/dev/null || missing+=(iproute2)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  [ -e /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
  # secantusd-rs builds WiredTiger from its C sources with CMake.
  command -v cmake >/dev/null || missing+=(cmake)
  command -v make >/dev/null || missing+=(make)
  command -v cc >/dev/null || missing+=(gcc)
  command -v c++ >/dev/null || missing+=(g++)
  command -v logrotate >/dev/null || missing+=(logrotate)
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" ca-certificates >/dev/null
  fi
  command -v cargo >/dev/null || {
    echo "error: cargo not found; install Rust (rustup) first" >&2
    return 1
  }
}

# FerretDB is installed with `go install …@v1.24.2`. Where the module proxy refuses the version
# list that `go install` reads for deprecation notices, the same module version is downloaded
# and built directly (its embedded version file is written first, as FerretDB's docs ask).
ensure_ferretdb() {
  [ -x "$FERRETDB_BIN" ] && return 0
  command -v go >/dev/null || {
    echo "error: Go is needed to build FerretDB (the MongoDB-wire server); set MONGODB_URI to use an existing MongoDB instead" >&2
    return 1
  }
  say "installing FerretDB $FERRETDB_VERSION"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  if GOBIN="$(dirname "$FERRETDB_BIN")" go install "github.com/FerretDB/FerretDB/cmd/ferretdb@$FERRETDB_VERSION" 2>"$STATE_DIR/logs/ferretdb-install.log" &&
    "$FERRETDB_BIN" --version >/dev/null 2>&1; then
    return 0
  fi
  local module_dir build_dir
  say "the module proxy refused go install's version lookup; building the same module version directly"
  module_dir="$(cd "$STATE_DIR" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  build_dir="$(mktemp -d)"
  cp -r "$module_dir/." "$build_dir"
  chmod -R u+w "$build_dir"
  echo "$FERRETDB_VERSION" >"$build_dir/build/version/version.txt"
  (cd "$build_dir" && go build -trimpath -o "$FERRETDB_BIN" ./cmd/ferretdb)
  rm -rf "$build_dir"
  "$FERRETDB_BIN" --version | head -1
}

start_postgres() {
  if ! pg_lsclusters --no-header | grep -q .; then
    local version
    version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    pg_createcluster "$version" main >/dev/null
  fi
  local version cluster status
  read -r version cluster _ status _ < <(pg_lsclusters --no-header | head -1)
  if [ "$status" != "online" ]; then
    say "starting PostgreSQL $version/$cluster"
    pg_ctlcluster "$version" "$cluster" start
  fi
  wait_for_port 127.0.0.1 5432 60 PostgreSQL
  postgres_psql -qtAX -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE'" | grep -q 1 ||
    postgres_psql -q -c "CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
}

# create_postgres_database NAME
create_postgres_database() {
  postgres_psql -qtAX -c "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1 ||
    postgres_psql -q -c "CREATE DATABASE \"$1\" OWNER $PG_ROLE"
}

# The local broker listens on loopback only: AMQP, the management UI, Erlang distribution and
# epmd (rabbitmq-env.conf), and its administrator may log in from loopback only
# (rabbitmq.conf). Its schedulers do not spin while idle (+sbwt none …): the broker shares the
# machine's cores with every other server of the stack, and RabbitMQ advises turning busy
# waiting off on shared hosts (docs/performance.md measures it). Written where Debian's package
# reads them, since the broker is the machine's; a broker started with other files is restarted.
RABBITMQ_ENV_CONF='# Written by deploy/scripts/infra.sh: every listener on loopback, no busy waiting.
NODE_IP_ADDRESS=127.0.0.1
export ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none"
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"'
RABBITMQ_CONF="# Written by deploy/scripts/infra.sh.
listeners.tcp.default = 127.0.0.1:5672
management.tcp.ip = 127.0.0.1
management.tcp.port = 15672
loopback_users.$RABBIT_USER = true"

# write_if_changed FILE CONTENT: writes CONTENT to FILE unless it holds it; succeeds when written.
write_if_changed() {
  [ "$(cat "$1" 2>/dev/null)" = "$2" ] && return 1
  mkdir -p "$(dirname "$1")"
  printf '%s\n' "$2" >"$1"
}

# Every broker command has a deadline: a broker that stops answering fails the script, with
# the end of its log, instead of hanging it.
broker_ctl() { timeout 120 rabbitmqctl -q "$@"; }
broker_api() { curl -fsS --max-time 60 -u "$RABBIT_USER:$RABBIT_PASSWORD" "$@"; }
broker_failed() {
  echo "error: RabbitMQ $1; the end of its log:" >&2
  tail -n 40 /var/log/rabbitmq/rabbit@"$(hostname -s)".log >&2 2>/dev/null || true
  return 1
}

start_rabbitmq() {
  local changed=""
  write_if_changed /etc/rabbitmq/rabbitmq-env.conf "$RABBITMQ_ENV_CONF" && changed=1
  write_if_changed /etc/rabbitmq/rabbitmq.conf "$RABBITMQ_CONF" && changed=1
  if [ -n "$changed" ] && broker_ctl status >/dev/null 2>&1; then
    say "restarting RabbitMQ to listen on loopback only"
    broker_ctl stop >/dev/null || broker_failed "did not stop"
  fi
  # An epmd started before the configuration listens on every interface.
  if [ -n "$changed" ] && pgrep -x epmd >/dev/null; then
    epmd -kill >/dev/null 2>&1 || pkill -x epmd || true
  fi
  if ! broker_ctl status >/dev/null 2>&1; then
    say "starting RabbitMQ"
    rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
    rabbitmq-server -detached
    broker_ctl wait --timeout 120 /var/lib/rabbitmq/mnesia/rabbit@"$(hostname -s)".pid >/dev/null 2>&1 ||
      broker_ctl await_startup --timeout 120 || broker_failed "did not start within 240 s"
  fi
  # A queue deleted while its at-least-once dead-letter worker starts makes RabbitMQ restart
  # that worker until the supervisor of all of them gives up (seen with 3.10; rabbitmq-server
  # issue 16652 on 4.2): from then on no quorum queue with at-least-once dead-lettering, the
  # projection's retry queue among them, works on the node. A node left so (by an earlier run
  # whose test deleted its vhost too soon, say) starts its application again.
  if [ "$(broker_ctl eval 'whereis(rabbit_fifo_dlx_sup).' 2>/dev/null)" = undefined ]; then
    say "restarting RabbitMQ's application: its dead-letter workers' supervisor had stopped"
    broker_ctl stop_app >/dev/null || broker_failed "did not stop its application"
    broker_ctl start_app >/dev/null || broker_failed "did not start its application again"
  fi
  wait_for_port 127.0.0.1 5672 120 RabbitMQ
  # list_users can come back empty on a busy machine (seen once in a fresh-clone run: the user
  # existed and add_user failed the run), so an existing user is also recognised by add_user's answer.
  local users added
  users="$(broker_ctl list_users 2>/dev/null || true)"
  if ! grep -q "^$RABBIT_USER\b" <<<"$users"; then
    if ! added="$(broker_ctl add_user "$RABBIT_USER" "$RABBIT_PASSWORD" 2>&1)" &&
      ! grep -q "already exists" <<<"$added"; then
      echo "error: cannot create the RabbitMQ user $RABBIT_USER: $added" >&2
      return 1
    fi
    broker_ctl set_user_tags "$RABBIT_USER" administrator >/dev/null
    broker_ctl set_permissions -p / "$RABBIT_USER" '.*' '.*' '.*' >/dev/null
  fi
  # The administrator of an older stack had the documented password "cqrs".
  broker_ctl authenticate_user "$RABBIT_USER" "$RABBIT_PASSWORD" >/dev/null 2>&1 ||
    broker_ctl change_password "$RABBIT_USER" "$RABBIT_PASSWORD" >/dev/null
  wait_for_port 127.0.0.1 15672 120 "RabbitMQ management"
  # Debian's broker comes with guest/guest, an administrator; the local stack has no use for it.
  curl -sS --max-time 60 -o /dev/null -u "$RABBIT_USER:$RABBIT_PASSWORD" -X DELETE "$RABBITMQ_API_URL/api/users/guest"
}

# The command service publishes and the query service consumes as users of their own, each
# allowed only that (deploy/rabbitmq/service-users.sh); $RABBIT_USER stays the administrator.
create_service_users() {
  RABBITMQ_API_URL="$RABBITMQ_API_URL" RABBITMQ_API_USER="$RABBIT_USER" \
    RABBITMQ_API_PASSWORD="$RABBIT_PASSWORD" RABBITMQ_VHOST=/ \
    PUBLISHER_USER=orders-publisher PUBLISHER_PASSWORD="$(state_secret rabbitmq-publisher-password)" \
    CONSUMER_USER=orders-consumer CONSUMER_PASSWORD="$(state_secret rabbitmq-consumer-password)" \
    sh "$REPO_ROOT/deploy/rabbitmq/service-users.sh" >/dev/null
}

# The validators the tests run on the OpenAPI documents (and the services against them), the
# events' AsyncAPI document, the Kubernetes manifests and the compose file, and pymongo for the
# read stores' leftovers, pinned. They are kept per set of versions in the user's cache
# (VALIDATORS_HOME), as secantusd-rs and cargo-deny are in ~/.cargo/bin, so that a fresh clone
# finds them installed; a lock keeps two runs from installing one set at once, and a set whose
# install did not finish is installed again. `.stack/validators` links to them. Exports
# VALIDATORS_BIN.
SCHEMATHESIS_VERSION=4.32.5
PYPI_VALIDATORS="openapi-spec-validator==0.9.0 schemathesis==$SCHEMATHESIS_VERSION kubernetes-validate==1.37.0 check-jsonschema==0.39.0 pymongo==4.20.1"
ASYNCAPI_CLI_VERSION=6.2.0
VALIDATORS_HOME="${VALIDATORS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/cqrs-orders}"
install_validators() {
  local venv
  venv="$VALIDATORS_HOME/validators-$(printf '%s @asyncapi/cli@%s' "$PYPI_VALIDATORS" "$ASYNCAPI_CLI_VERSION" | md5sum | cut -c1-12)"
  mkdir -p "$VALIDATORS_HOME"
  (
    flock 9
    if [ ! -e "$venv/.installed" ]; then
      say "installing the validators into $venv: $PYPI_VALIDATORS (PyPI), @asyncapi/cli $ASYNCAPI_CLI_VERSION (npm)"
      rm -rf "$venv"
      python3 -m venv "$venv" 2>/dev/null || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        rm -rf "$venv"
        python3 -m venv "$venv"
      }
      # shellcheck disable=SC2086 # one requirement a word
      "$venv/bin/pip" install -q --disable-pip-version-check $PYPI_VALIDATORS
      install_asyncapi_cli "$venv"
      touch "$venv/.installed"
    fi
  ) 9>"$VALIDATORS_HOME/install.lock"
  # The checkout's name for them, which the docs use (an install of earlier releases was there).
  [ -L "$STATE_DIR/validators" ] || rm -rf "$STATE_DIR/validators"
  ln -sfn "$venv" "$STATE_DIR/validators"
  export VALIDATORS_BIN="$venv/bin"
}

# install_asyncapi_cli VENV: the AsyncAPI CLI from the npm registry with the machine's Node.js
# (about a minute, 450 MB), into VENV, its command in VENV/bin. Its install scripts are skipped
# (they fetch a browser for commands the tests do not use), and its anonymous usage metrics
# are off.
install_asyncapi_cli() {
  local prefix="$1/asyncapi-cli"
  command -v npm >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  }
  mkdir -p "$prefix"
  # --prefix also moves npm's global config (to PREFIX/etc/npmrc): name the machine's own, where
  # a machine behind a TLS-inspecting proxy keeps its registry's CA file.
  local machine_config
  machine_config="$(npm config get globalconfig)"
  npm install --prefix "$prefix" --globalconfig "$machine_config" --ignore-scripts --no-audit \
    --no-fund --loglevel=error "@asyncapi/cli@$ASYNCAPI_CLI_VERSION" >/dev/null
  "$prefix/node_modules/.bin/asyncapi" config analytics --disable >/dev/null 2>&1 || true
  ln -sf "$prefix/node_modules/.bin/asyncapi" "$1/bin/asyncapi"
}

# cargo-deny, pinned, from crates.io (built once, about 5 minutes on 2 cores, and kept in
# ~/.cargo/bin), for the dependency checks of deny.toml.
CARGO_DENY_VERSION=0.20.2
install_cargo_deny() {
  if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
    say "installing cargo-deny $CARGO_DENY_VERSION (crates.io)"
    cargo install --quiet --locked cargo-deny --version "$CARGO_DENY_VERSION"
  fi
}

# Every local connection to PostgreSQL is to 127.0.0.1, where TLS protects nothing (only root
# can read loopback traffic) and cost a tenth of the stack's CPU per order: Debian's server has
# TLS on, and libpq and pgx use it by default when the server offers it.
LOCAL_POSTGRES_TLS="sslmode=disable"

# FerretDB's storage (FerretDB only): its PostgreSQL database, with custom plans forced for
# every statement (pgx sends the parameter at connect): a cached generic plan cannot use the GIN
# indexes of deploy/ferretdb/index-twins.sql, since it does not know which field `_jsonb -> $1`
# names.
export FERRETDB_POSTGRESQL_URL="postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:5432/ferretdb?plan_cache_mode=force_custom_plan&$LOCAL_POSTGRES_TLS"

# install_index_twins DATABASE: FerretDB's indexes are served by GIN indexes there, its
# non-unique btrees replaced by them (see the SQL file).
install_index_twins() {
  postgres_psql -qtAX -v ON_ERROR_STOP=1 -d "$1" -o /dev/null \
    -c 'SET client_min_messages = warning' -f - <"$REPO_ROOT/deploy/ferretdb/index-twins.sql"
}

# Jaeger is built once from the Go module proxy and kept beside FerretDB (about 6 minutes on 2
# cores). Its go.mod has replace directives, which `go install pkg@version` refuses: it is
# built as a tool of a throwaway module instead (`go get -tool`).
ensure_jaeger() {
  [ -x "$JAEGER_BIN" ] && return 0
  command -v go >/dev/null || {
    echo "error: Go is needed to build Jaeger (the trace viewer)" >&2
    return 1
  }
  say "installing Jaeger $JAEGER_VERSION (Go module proxy, about 6 minutes, once)"
  local build_dir
  build_dir="$(mktemp -d)"
  mkdir -p "$(dirname "$JAEGER_BIN")"
  if ! (cd "$build_dir" && go mod init local/jaeger-build &&
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" &&
    go build -trimpath -o "$JAEGER_BIN.partial" github.com/jaegertracing/jaeger/cmd/jaeger) \
    >"$STATE_DIR/logs/jaeger-install.log" 2>&1; then
    rm -rf "$build_dir" "$JAEGER_BIN.partial"
    echo "error: building Jaeger failed; see $STATE_DIR/logs/jaeger-install.log" >&2
    return 1
  fi
  rm -rf "$build_dir"
  mv "$JAEGER_BIN.partial" "$JAEGER_BIN"
}

# in_own_session COMMAND...: runs COMMAND (exec'd: its pid is the caller's $! when started with
# &) in a session of its own. With autogroup (kernel.sched_autogroup_enabled, on by default
# where built in, and on these machines) the scheduler shares the cores between sessions
# first, then between the threads of each: servers started from one shell would share that
# session's share, while PostgreSQL, RabbitMQ and nginx, daemons, have a session each. One
# session per server shares the cores as a deployment's containers do (docs/performance.md).
in_own_session() { exec setsid "$@"; }

# Jaeger on loopback: OTLP/HTTP in on JAEGER_OTLP_PORT, the query API and UI on
# JAEGER_QUERY_PORT; traces in memory, the newest JAEGER_MAX_TRACES. A Jaeger this checkout
# started with other settings is restarted with these. It runs at the lowest CPU priority:
# its garbage collector takes a core for 100-200 ms at a time, and traces can wait while
# orders are served (docs/tracing.md).
JAEGER_NICENESS=19
start_jaeger() {
  ensure_jaeger
  stop_unless_started_with jaeger "$JAEGER_MAX_TRACES nice $JAEGER_NICENESS, own session"
  local holder
  holder="$(listening_program "$JAEGER_OTLP_PORT")"
  if [ -n "$holder" ] && [ "$holder" != jaeger ] && [ "$holder" != "jaeger-$JAEGER_VERSION" ]; then
    echo "error: port $JAEGER_OTLP_PORT is taken by $holder, not Jaeger; set JAEGER_OTLP_PORT" >&2
    return 1
  fi
  if ! port_open 127.0.0.1 "$JAEGER_QUERY_PORT"; then
    say "starting Jaeger (traces) on 127.0.0.1:$JAEGER_QUERY_PORT"
    # exec: the pid recorded is Jaeger's own, which deploy/down stops. Its session's group
    # gets the niceness too, which is what weighs against the other servers' groups.
    (cd "$STATE_DIR" && in_own_session nohup nice -n "$JAEGER_NICENESS" bash -c \
      '{ echo "$0" >/proc/self/autogroup; } 2>/dev/null; exec "$@"' "$JAEGER_NICENESS" \
      "$JAEGER_BIN" --config "$REPO_ROOT/deploy/jaeger/config.yaml" >>"$STATE_DIR/logs/jaeger.log" 2>&1) &
    echo $! >"$STATE_DIR/run/jaeger.pid"
    record_settings jaeger "$JAEGER_MAX_TRACES nice $JAEGER_NICENESS, own session"
    wait_for_port 127.0.0.1 "$JAEGER_QUERY_PORT" 60 Jaeger
    wait_for_port 127.0.0.1 "$JAEGER_OTLP_PORT" 60 Jaeger
  fi
}

# secantusd-rs (crate secantus-mdb, GPL-2.0-only: a separate program, never linked into the
# services), pinned, built once from crates.io and kept in ~/.cargo/bin: about 5½ minutes on
# 2 cores. It declares a newer Rust than it needs.
ensure_secantusd() {
  [ "$("$SECANTUSD_BIN" --version 2>/dev/null | head -1)" = "secantusd-rs $SECANTUSD_VERSION" ] && return 0
  say "installing secantusd-rs $SECANTUSD_VERSION (crates.io: secantus-mdb, about 5½ minutes)"
  cargo install --quiet --locked --ignore-rust-version --root "$(dirname "$(dirname "$SECANTUSD_BIN")")" \
    secantus-mdb --version "$SECANTUSD_VERSION"
}

# WiredTiger's cache for the local store: SECANTUSD_CACHE_SIZE if set (as --cache-size takes
# it, e.g. 512M or 2G), else an eighth of the machine's memory, between 128 MiB and 4 GiB, so
# that a 500 000-order model and a rebuild's second generation stay in it
# (docs/local-read-stores.md; mongod's default would take half).
secantusd_cache_size() {
  if [ -n "${SECANTUSD_CACHE_SIZE:-}" ]; then
    echo "$SECANTUSD_CACHE_SIZE"
    return
  fi
  local kib
  kib="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
  local mib=$((kib / 1024 / 8))
  ((mib < 128)) && mib=128
  ((mib > 4096)) && mib=4096
  echo "${mib}M"
}

# read_store_arguments KIND ADDR: the command line of the local read store KIND on ADDR.
read_store_arguments() {
  case "$1" in
    secantusd-rs)
      # --sync-on-commit: without it, acknowledged writes were lost to a SIGKILL in every run
      # (docs/local-read-stores.md). The empty configuration file stops the server from
      # reading one from the working or home directory.
      echo "--config=$STATE_DIR/secantusd-rs/secantusd.toml --host=${2%:*} --port=${2##*:}" \
        "--storage-path=$STATE_DIR/secantusd-rs/data --sync-on-commit --standalone" \
        "--cache-size=$(secantusd_cache_size) --log-level=WARNING"
      ;;
    ferretdb)
      # The PostgreSQL URL, password and all, comes from FERRETDB_POSTGRESQL_URL in its
      # environment: a command line is readable by every user of the machine.
      echo "--handler=postgresql" \
        "--state-dir=$STATE_DIR/ferretdb --listen-addr=$2 --telemetry=disable --debug-addr=-" \
        "--log-level=WARN"
      ;;
  esac
}

# read_store_environment KIND: what the local read store KIND reads from its environment,
# beyond what every process inherits, as NAME=VALUE words.
read_store_environment() {
  case "$1" in
    # No oplog: the services use no change stream and the server is a single node, so it would
    # only be written (docs/local-read-stores.md#secantusd-rs-without-its-oplog).
    secantusd-rs) echo "SECANTUS_DISABLE_OPLOG=1" ;;
    # Go's collector runs a quarter as often (what that saves and costs:
    # docs/local-read-stores.md#set-up-only-ferretdb-needs).
    ferretdb) echo "GOGC=400" ;;
  esac
}

# start_read_store KIND ADDR: the local read store KIND (secantusd-rs or ferretdb) listening on
# ADDR, installed and prepared when missing. One started by an older script or elsewhere, and
# the other kind on the same address, are stopped first.
start_read_store() {
  local kind="$1" addr="$2" binary other environment arguments
  case "$kind" in
    secantusd-rs)
      ensure_secantusd
      binary="$SECANTUSD_BIN"
      mkdir -p "$STATE_DIR/secantusd-rs"
      [ -e "$STATE_DIR/secantusd-rs/secantusd.toml" ] ||
        echo "# Every setting is on the command line (deploy/scripts/infra.sh)." \
          >"$STATE_DIR/secantusd-rs/secantusd.toml"
      ;;
    ferretdb)
      ensure_ferretdb
      binary="$FERRETDB_BIN"
      create_postgres_database ferretdb
      install_index_twins ferretdb
      # Databases created later, such as the tests' private FerretDB storage, are copies of it.
      install_index_twins template1
      mkdir -p "$STATE_DIR/ferretdb"
      ;;
  esac
  environment="$(read_store_environment "$kind")"
  arguments="$(read_store_arguments "$kind" "$addr")"
  for other in secantusd-rs ferretdb; do
    if [ "$other" != "$kind" ] && [ "$(cat "$STATE_DIR/run/$other.addr" 2>/dev/null)" = "$addr" ]; then
      stop_pidfile "$other"
    fi
  done
  stop_unless_started_with "$kind" "$environment $arguments, own session"
  # A server this checkout did not start may hold the address (another checkout's stack): it
  # serves if it is of this kind, and is never taken for the other.
  local holder
  holder="$(listening_program "${addr##*:}")"
  if [ -n "$holder" ] && [ "$holder" != "$kind" ]; then
    echo "error: $addr is taken by $holder, not $kind; stop it (deploy/down in the checkout that started it) or set LOCAL_READ_STORE or MONGODB_URI" >&2
    return 1
  fi
  if ! port_open "${addr%:*}" "${addr##*:}"; then
    say "starting $kind (read store) on $addr"
    # shellcheck disable=SC2086 # one argument per word
    in_own_session nohup env $environment "$binary" $arguments >>"$STATE_DIR/logs/$kind.log" 2>&1 &
    echo $! >"$STATE_DIR/run/$kind.pid"
    record_settings "$kind" "$environment $arguments, own session"
    echo "$addr" >"$STATE_DIR/run/$kind.addr"
    wait_for_port "${addr%:*}" "${addr##*:}" 60 "$kind"
  fi
}

# The other local read store, on SECOND_STORE_ADDR, for deploy/test's second pass; exports its
# kind and URI as SECOND_READ_STORE and SECOND_MONGODB_URI.
start_second_read_store() {
  case "$LOCAL_READ_STORE" in
    secantusd-rs) SECOND_READ_STORE=ferretdb ;;
    ferretdb) SECOND_READ_STORE=secantusd-rs ;;
  esac
  start_read_store "$SECOND_READ_STORE" "$SECOND_STORE_ADDR"
  export SECOND_READ_STORE SECOND_MONGODB_URI="mongodb://$SECOND_STORE_ADDR"
}

start_infrastructure() {
  ensure_packages
  start_postgres
  start_rabbitmq
  create_service_users
  start_jaeger
  [ -n "$MONGODB_URI_GIVEN" ] || start_read_store "$LOCAL_READ_STORE" "$MONGO_WIRE_ADDR"
}

# The tests of this checkout name what they create "$TEST_NAME_PREFIX"_<random> (harness's
# unique_name), so that leftovers can be told from another checkout's running tests.
export TEST_NAME_PREFIX="test_$(printf '%s' "$REPO_ROOT" | md5sum | cut -c1-8)"

# mongo_leftovers URI [drop]: the databases of this checkout's tests on the MongoDB-wire server
# at URI, one a line, dropped too with "drop" (pymongo, in the validators' virtualenv).
mongo_leftovers() {
  "$VALIDATORS_BIN/python" - "$1" "$TEST_NAME_PREFIX" "${2:-}" <<'PYTHON'
import sys
import pymongo

uri, prefix, drop = sys.argv[1:]
client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
for name in client.list_database_names():
    if name.startswith(prefix + "_"):
        print(name)
        if drop:
            client.drop_database(name)
PYTHON
}

# The MongoDB-wire servers the tests use: the local store, and the second one when it runs.
test_read_store_uris() {
  echo "$MONGODB_URI"
  [ -z "${SECOND_MONGODB_URI:-}" ] || echo "$SECOND_MONGODB_URI"
}

# What this checkout's tests created and did not drop, one "KIND NAME" a line: databases,
# vhosts, RabbitMQ users, and databases of the read stores.
test_leftovers() {
  local prefix="$TEST_NAME_PREFIX" uri
  postgres_psql -qtAX \
    -c "SELECT 'database ' || datname FROM pg_database WHERE datname LIKE '${prefix}\_%'"
  { broker_api "$RABBITMQ_API_URL/api/vhosts?columns=name" |
    grep -o "\"name\":\"${prefix}_[0-9a-f]*\"" | cut -d'"' -f4 | sed 's/^/vhost /'; } || true
  { broker_api "$RABBITMQ_API_URL/api/users?columns=name" |
    grep -o "\"name\":\"${prefix}_[0-9a-z_]*\"" | cut -d'"' -f4 | sed 's/^/user /'; } || true
  while read -r uri; do
    mongo_leftovers "$uri" | sed "s|^|read-store-database $uri |"
  done < <(test_read_store_uris)
}

# Drops what this checkout's earlier test runs left (the tests drop their own; a killed run
# cannot).
remove_test_leftovers() {
  local kind name uri
  local -A read_stores=()
  while read -r kind name; do
    case "$kind" in
      database) postgres_psql -q -c "DROP DATABASE \"$name\" WITH (FORCE)" >/dev/null ;;
      vhost) broker_api -X DELETE "$RABBITMQ_API_URL/api/vhosts/$name" >/dev/null ;;
      user) broker_api -X DELETE "$RABBITMQ_API_URL/api/users/$name" >/dev/null ;;
      # NAME is "URI DATABASE": the store's leftovers go together below.
      read-store-database) read_stores["${name%% *}"]=1 ;;
    esac
  done < <(test_leftovers)
  for uri in "${!read_stores[@]}"; do
    mongo_leftovers "$uri" drop >/dev/null
  done
}

# Fails, naming them, if the tests left anything behind: each test drops what it creates.
check_no_test_leftovers() {
  local leftovers
  leftovers="$(test_leftovers)"
  if [ -n "$leftovers" ]; then
    echo "error: the tests left these behind (each test must drop what it creates):" >&2
    echo "$leftovers" >&2
    return 1
  fi
}

# record_settings NAME SETTINGS: keeps the settings the NAME just started was started with.
record_settings() {
  echo "$2" >"$STATE_DIR/run/$1.args"
}

# stop_unless_started_with NAME SETTINGS: stops the NAME this checkout started unless
# record_settings kept these SETTINGS for it, so that it starts again with them.
stop_unless_started_with() {
  [ "$(cat "$STATE_DIR/run/$1.args" 2>/dev/null)" = "$2" ] || stop_pidfile "$1"
}

# stop_pidfile NAME: stops the process recorded in $STATE_DIR/run/NAME.pid, if it runs.
stop_pidfile() {
  local pidfile="$STATE_DIR/run/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

GATEWAY_DIR="$STATE_DIR/gateway"

# Stops the gateway deploy/up started, through its own pid file.
stop_gateway() {
  if [ -f "$GATEWAY_DIR/nginx.pid" ] && kill -0 "$(cat "$GATEWAY_DIR/nginx.pid")" 2>/dev/null; then
    nginx -c "$GATEWAY_DIR/nginx.conf" -s quit
    for _ in $(seq 100); do [ -f "$GATEWAY_DIR/nginx.pid" ] || break; sleep 0.1; done
  fi
}

# Every minute while the stack runs, deploy/scripts/rotate-logs keeps each of its logs under
# 64 MB with two older copies: under load the services write a line or two per order.
start_log_rotation() {
  stop_pidfile log-rotation
  (exec nohup bash -c 'while :; do "$1" || echo "rotate-logs failed with status $?"; sleep 60; done' \
    log-rotation "$REPO_ROOT/deploy/scripts/rotate-logs" >>"$STATE_DIR/logs/log-rotation.log" 2>&1) &
  echo $! >"$STATE_DIR/run/log-rotation.pid"
}

# Stops every service replica deploy/up started.
stop_services() {
  local pidfile
  for pidfile in "$STATE_DIR"/run/command-service*.pid "$STATE_DIR"/run/query-service*.pid; do
    [ -e "$pidfile" ] && stop_pidfile "$(basename "$pidfile" .pid)"
  done
  return 0
}
