#!/bin/sh
# Redis with Sentinel on Kubernetes (deploy/k8s/redis.yaml): what the `redis` and `redis-sentinel` pods run, in
# fovea/redis:7.0-bookworm (Debian's redis-server and redis-cli). The topology is the one deploy/multihost/run.py
# tests: a primary and a replica, three Sentinels (quorum 2, down after 2 s), every process named by a stable DNS
# name (StatefulSet pods behind headless Services), so a pod that comes back on another IP is the same instance.
#
#   redis.sh server     a Redis: the replica of the primary the Sentinels name (else the one that says it is
#                       primary, else redis-0 on a first start)
#   redis.sh sentinel   a Sentinel monitoring that primary
#   redis.sh pre-stop   a primary about to be stopped (drain, rollout) hands over first: SENTINEL FAILOVER, then
#                       it follows the new primary (<= 15 s), so a planned stop is a switch, not a 2 s outage
#   redis.sh ready      readiness: PONG                   (port 6379, or 26379 with SENTINEL=1)
#   redis.sh live       liveness: PONG, or busy loading its data (LOADING) or without a primary (MASTERDOWN)
#
# The password (Secret fovea-redis, $REDIS_PASSWORD) is written into a 0600 file, never onto a command line.
# Environment: REDIS_PASSWORD, POD_NAME and POD_NAMESPACE (downward API), REDIS_PODS (the redis StatefulSet's
# replicas); optional CLUSTER_DOMAIN (cluster.local), REDIS_MASTER_NAME (fovea), REDIS_MAXMEMORY (1gb), and the
# folders REDIS_DATA_DIR (/data), REDIS_RUN_DIR (/run/redis), SENTINEL_DIR (/sentinel).
# deploy/k8s/redis/check.py runs this script in network namespaces through a failover.
set -eu

MASTER=${REDIS_MASTER_NAME:-fovea}
SUFFIX="${POD_NAMESPACE:?}.svc.${CLUSTER_DOMAIN:-cluster.local}"
SENTINELS="redis-sentinel-0 redis-sentinel-1 redis-sentinel-2"
POD=${POD_NAME:-$(hostname)}
DATA=${REDIS_DATA_DIR:-/data}
RUN=${REDIS_RUN_DIR:-/run/redis}
SDIR=${SENTINEL_DIR:-/sentinel}

cli() {  # cli ARGS...: redis-cli with the password, bounded, errors silenced
  REDISCLI_AUTH="$REDIS_PASSWORD" timeout 3 redis-cli --no-auth-warning "$@" 2>/dev/null
}

sentinel_primary() {  # the primary's DNS name as the first Sentinel that answers names it; empty if none does
  for s in $SENTINELS; do
    addr=$(cli -h "$s.redis-sentinel.$SUFFIX" -p 26379 SENTINEL get-master-addr-by-name "$MASTER" | head -1 || true)
    if [ -n "$addr" ]; then
      echo "$addr"
      return
    fi
  done
}

primary() {  # the primary's DNS name
  addr=$(sentinel_primary)
  if [ -n "$addr" ]; then
    echo "$addr"
    return
  fi
  i=0
  while [ "$i" -lt "${REDIS_PODS:-2}" ]; do  # no Sentinel answers: a Redis that is primary (and has replicas)
    host="redis-$i.redis.$SUFFIX"
    if cli -h "$host" INFO replication | grep -q '^role:master'; then
      echo "$host"
      return
    fi
    i=$((i + 1))
  done
  echo "redis-0.redis.$SUFFIX"  # nothing answers: a first start
}

wait_dns() {  # a name only resolves once its pod exists (the headless Services publish pods not yet ready)
  n=0
  until getent hosts "$1" >/dev/null; do
    n=$((n + 1))
    if [ "$n" -ge 60 ]; then
      echo "redis.sh: $1 does not resolve" >&2
      exit 1
    fi
    sleep 2
  done
}

role() {
  cli INFO replication | sed -n 's/^role:\([a-z]*\).*/\1/p'
}

case "${1:-}" in
server)
  self="$POD.redis.$SUFFIX"
  p=$(primary)
  umask 077
  {
    echo "port 6379"
    echo "bind * -::*"
    echo "dir $DATA"
    echo "requirepass $REDIS_PASSWORD"
    echo "masterauth $REDIS_PASSWORD"
    echo "replica-announce-ip $self"  # a name, not the pod's IP: the Sentinels announce names
    echo "appendonly yes"
    echo "appendfsync everysec"
    echo 'save ""'
    # galleries and job state are never evicted: the style store caps its own results (FOVEA_STYLE_MAX_*)
    echo "maxmemory ${REDIS_MAXMEMORY:-1gb}"
    echo "maxmemory-policy noeviction"
    if [ "$p" != "$self" ]; then
      wait_dns "$p"
      echo "replicaof $p 6379"
    fi
  } >"$RUN/redis.conf"
  echo "redis.sh: $self, primary $p"
  exec redis-server "$RUN/redis.conf"
  ;;
sentinel)
  self="$POD.redis-sentinel.$SUFFIX"
  p=$(primary)
  wait_dns "$p"
  umask 077
  # Sentinel rewrites its file (what it learns: replicas, other Sentinels, the epoch): an emptyDir, made afresh
  # on each start from what the others know.
  {
    echo "port 26379"
    echo "bind * -::*"
    echo "protected-mode no"
    echo "dir $SDIR"
    echo "sentinel resolve-hostnames yes"
    echo "sentinel announce-hostnames yes"
    echo "sentinel announce-ip $self"
    echo "requirepass $REDIS_PASSWORD"
    echo "sentinel sentinel-pass $REDIS_PASSWORD"
    echo "sentinel monitor $MASTER $p 6379 2"
    echo "sentinel auth-pass $MASTER $REDIS_PASSWORD"
    echo "sentinel down-after-milliseconds $MASTER 2000"
    echo "sentinel failover-timeout $MASTER 10000"
    echo "sentinel parallel-syncs $MASTER 1"
  } >"$SDIR/sentinel.conf"
  echo "redis.sh: $self, monitoring $p"
  exec redis-server "$SDIR/sentinel.conf" --sentinel
  ;;
pre-stop)
  self="$POD.redis.$SUFFIX"
  if [ "$(role)" = master ]; then
    for s in $SENTINELS; do
      if cli -h "$s.redis-sentinel.$SUFFIX" -p 26379 SENTINEL FAILOVER "$MASTER" | grep -q OK; then
        break
      fi
    done
    # The Sentinels promote a replica within a second or two, but would turn this one into its replica only some
    # 8 s later; until then it still takes the writes of clients connected to it. So follow the new primary at
    # once: its clients get READONLY and reconnect through the Sentinels.
    n=0
    while [ "$n" -lt 30 ]; do
      p=$(sentinel_primary)
      if [ -n "$p" ] && [ "$p" != "$self" ]; then
        cli REPLICAOF "$p" 6379 >/dev/null || true
        break
      fi
      sleep 0.5
      n=$((n + 1))
    done
    echo "redis.sh: pre-stop: $self handed over to ${p:-nobody}, now $(role)"
  fi
  ;;
ready)
  [ "$(cli -p "$([ -n "${SENTINEL:-}" ] && echo 26379 || echo 6379)" PING)" = PONG ]
  ;;
live)
  reply=$(cli -p "$([ -n "${SENTINEL:-}" ] && echo 26379 || echo 6379)" PING || true)
  case "$reply" in
  PONG | LOADING* | MASTERDOWN*) exit 0 ;;
  *) exit 1 ;;
  esac
  ;;
*)
  echo "usage: redis.sh server|sentinel|pre-stop|ready|live" >&2
  exit 2
  ;;
esac
