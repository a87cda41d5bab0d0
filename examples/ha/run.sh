#!/bin/sh
# High availability, for real: a throwaway Postgres (initdb in a temp folder, a free loopback port),
# 3 Bouncer nodes, HAProxy in front, 500 key-auth requests a second while a node is killed (SIGKILL)
# and rejoins, a node drains (SIGTERM) and Postgres restarts; prints what failed, per phase.
# Needs haproxy and the PostgreSQL server binaries (Debian: apt-get install haproxy postgresql).
#   sh examples/ha/run.sh [--seconds 90] [--rate 500] [--workers 2] [--drain-delay 2000]
set -e
cd "$(dirname "$0")/../.."
[ -f dist/bench/ha.js ] || npm run build
exec node dist/bench/ha.js "$@"
