#!/bin/sh
# Wire the auth service and a protected API into a running Bouncer through its Admin API.
#   ADMIN (127.0.0.1:8001), AUTH_URL (http://127.0.0.1:3100), API_URL (http://127.0.0.1:3000)
set -eu
ADMIN=${ADMIN:-127.0.0.1:8001}
AUTH_URL=${AUTH_URL:-http://127.0.0.1:3100}
API_URL=${API_URL:-http://127.0.0.1:3000}
put() { curl -sf -X PUT "$ADMIN$1" -H 'content-type: application/json' -d "$2" > /dev/null; }

# the auth service: /auth/login is public, /auth/logout needs a valid token
put /services/auth-service "{\"url\":\"$AUTH_URL\"}"
put /routes/auth-login '{"service":{"name":"auth-service"},"paths":["/auth/login"],"strip_path":false}'
put /routes/auth-logout '{"service":{"name":"auth-service"},"paths":["/auth/logout"],"strip_path":false}'
put /plugins/logout-jwt '{"name":"jwt","route":{"name":"auth-logout"}}'
# the API behind the gateway: every route of this service needs a token
put /services/orders "{\"url\":\"$API_URL\"}"
put /routes/orders '{"service":{"name":"orders"},"paths":["/orders"]}'
put /plugins/orders-jwt '{"name":"jwt","service":{"name":"orders"}}'
echo "wired: /auth/login, /auth/logout and /orders on the gateway"
