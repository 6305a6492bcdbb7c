#!/bin/sh
# Creates (or updates) the two RabbitMQ users of the order system in one vhost, each with only
# the permissions its service needs, through the management HTTP API. Used by deploy/up, by
# docker-compose (the rabbitmq-users service) and by the tests, so all three grant the same.
#
#   publisher (command service): declare and publish to the orders.events exchange; read
#     nothing, so it cannot consume anyone's events.
#   consumer (query service): declare, bind and consume its projection queue and the queue's
#     .retry-quorum, .dead-letter and .rebuild-g<N> (a rebuild's capture queue) companions;
#     read the exchange to bind; publish only through the default exchange (to its own retry and
#     dead-letter queues), never to orders.events.
#
# Environment: RABBITMQ_API_URL, RABBITMQ_API_USER, RABBITMQ_API_PASSWORD (an administrator),
# RABBITMQ_VHOST (default /), PUBLISHER_USER, PUBLISHER_PASSWORD, CONSUMER_USER,
# CONSUMER_PASSWORD, PROJECTION_QUEUE (default orders.query-projection). POSIX sh and curl only,
# so that it also runs in a curl container.
set -eu

: "${RABBITMQ_API_URL:?}" "${RABBITMQ_API_USER:?}" "${RABBITMQ_API_PASSWORD:?}"
: "${PUBLISHER_USER:?}" "${PUBLISHER_PASSWORD:?}" "${CONSUMER_USER:?}" "${CONSUMER_PASSWORD:?}"
vhost="${RABBITMQ_VHOST:-/}"
queue="${PROJECTION_QUEUE:-orders.query-projection}"

# A regular expression matching exactly NAME, escaped for JSON: dots are literal.
exact() { printf '%s' "$1" | sed 's/\./\\\\./g'; }

api() { # api METHOD PATH JSON
  curl -fsS --max-time 60 -X "$1" -u "$RABBITMQ_API_USER:$RABBITMQ_API_PASSWORD" \
    -H 'content-type: application/json' -d "$3" "$RABBITMQ_API_URL/api$2" >/dev/null
}

vhost_path="$(printf '%s' "$vhost" | sed 's|/|%2F|g')"
exchange="$(exact orders.events)"
queues="$(exact "$queue")(\\\\.retry-quorum|\\\\.dead-letter|\\\\.rebuild-g[0-9]+)?"

api PUT "/users/$PUBLISHER_USER" "{\"password\":\"$PUBLISHER_PASSWORD\",\"tags\":\"\"}"
api PUT "/permissions/$vhost_path/$PUBLISHER_USER" \
  "{\"configure\":\"^$exchange\$\",\"write\":\"^$exchange\$\",\"read\":\"^\$\"}"

api PUT "/users/$CONSUMER_USER" "{\"password\":\"$CONSUMER_PASSWORD\",\"tags\":\"\"}"
api PUT "/permissions/$vhost_path/$CONSUMER_USER" \
  "{\"configure\":\"^($exchange|$queues)\$\",\"write\":\"^(amq\\\\.default|$queues)\$\",\"read\":\"^($exchange|$queues)\$\"}"

echo "RabbitMQ users $PUBLISHER_USER (publish) and $CONSUMER_USER (consume) ready in vhost $vhost"
