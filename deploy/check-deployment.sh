#!/usr/bin/env bash
# Checks that a fresh clone, set up by following README "Deployment" step by step, serves behind the
# example nginx config (deploy/nginx.conf) with TLS on loopback.
#
# Everything happens under a scratch folder that stands in for / ($ROOT/opt/hallmonitor,
# $ROOT/etc/hallmonitor, $ROOT/var/lib/hallmonitor); no system file is touched, no user is created,
# and systemd is not needed: the unit's own ExecStartPre and ExecStart lines are run as written,
# with its EnvironmentFile and Environment loaded. Ports are free loopback ports.
#
# Needs: git, make, python3 (3.11+), openssl, curl and nginx (Debian: apt-get install nginx).
# Without nginx it says so and exits 0 (skipped). Usage: deploy/check-deployment.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
for tool in nginx openssl curl git make python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (Debian: apt-get install nginx openssl curl git make python3); nothing checked"
    exit 0
  fi
done

WORK=$(mktemp -d /tmp/hm-deploy.XXXXXX)
ROOT=$WORK/root
APP_PID=""
NGINX_CONF=$WORK/nginx/nginx.conf
fail() { echo "FAIL: $*"; for log in "$WORK"/app.log "$WORK"/nginx/error.log; do [ -f "$log" ] && tail -n 30 "$log"; done; exit 1; }
pass() { echo "PASS: $*"; }
cleanup() {
  [ -f "$WORK/nginx/nginx.pid" ] && nginx -p "$WORK/nginx" -c "$NGINX_CONF" -s stop 2>/dev/null || true
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
APP_PORT=$(free_port); HTTPS_PORT=$(free_port); HTTP_PORT=$(free_port)
echo "scratch root: $ROOT (app :$APP_PORT, nginx https :$HTTPS_PORT, http :$HTTP_PORT)"

# 1. Code: a fresh clone of what is committed, installed with make.
git clone --quiet "$REPO" "$ROOT/opt/hallmonitor"
(cd "$ROOT/opt/hallmonitor" && make install >"$WORK/install.log" 2>&1) || { tail -n 20 "$WORK/install.log"; fail "make install"; }
HM=$ROOT/opt/hallmonitor/.venv/bin/hallmonitor
pass "1. fresh clone installed ($(git -C "$ROOT/opt/hallmonitor" log -1 --format=%h))"

# 2. Folders (the scratch root stands in for /; the current user stands in for the hallmonitor user).
install -d -m 750 "$ROOT/var/lib/hallmonitor"
install -d -m 755 "$ROOT/etc/hallmonitor"
pass "2. folders"

# 3. Config and policy, with the database in /var/lib/hallmonitor.
cd "$ROOT/opt/hallmonitor"
cp config.example.toml "$ROOT/etc/hallmonitor/config.toml"
cp -r examples "$ROOT/etc/hallmonitor/examples"
sed -i "s|^database_url = \"sqlite:///hallmonitor.db\"|database_url = \"sqlite:///$ROOT/var/lib/hallmonitor/hallmonitor.db\"|" \
  "$ROOT/etc/hallmonitor/config.toml"
grep -q "sqlite:///$ROOT/var/lib/hallmonitor/hallmonitor.db" "$ROOT/etc/hallmonitor/config.toml" || fail "3. database_url not set"
pass "3. config and policy in $ROOT/etc/hallmonitor"

# 4. Secrets, then check-config and doctor through --env-file, as the README says.
ENV_FILE=$ROOT/etc/hallmonitor/hallmonitor.env
install -m 640 deploy/hallmonitor.env.example "$ENV_FILE"
HEALTH_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
sed -i "s|^HALLMONITOR_HEALTH_TOKEN=.*|HALLMONITOR_HEALTH_TOKEN=$HEALTH_TOKEN|; s|^HALLMONITOR_CONFIG=/|HALLMONITOR_CONFIG=$ROOT/|" "$ENV_FILE"
"$HM" --env-file "$ENV_FILE" check-config || fail "4. check-config"
"$HM" --env-file "$ENV_FILE" doctor || fail "4. doctor"
pass "4. check-config and doctor"

# 5. The systemd unit's ExecStartPre and ExecStart, as written, with its environment.
unit_line() { sed -n "s|^$1=||p" deploy/hallmonitor.service | sed "s|/opt/|$ROOT/opt/|g; s|--port 8000|--port $APP_PORT|"; }
START_PRE=$(unit_line ExecStartPre); START=$(unit_line ExecStart)
UNIT_ENV=$(sed -n 's|^Environment=||p' deploy/hallmonitor.service | sed "s|=/|=$ROOT/|")
(
  set -a
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  export "$UNIT_ENV"
  cd "$ROOT/var/lib/hallmonitor"
  $START_PRE >/dev/null
  exec $START
) >"$WORK/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$APP_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$APP_PID" 2>/dev/null || fail "5. the service exited"
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$APP_PORT/healthz" >/dev/null || fail "5. the service did not answer on 127.0.0.1:$APP_PORT"
[ -f "$ROOT/var/lib/hallmonitor/hallmonitor.db" ] || fail "5. no database in /var/lib/hallmonitor"
pass "5. service up on 127.0.0.1:$APP_PORT (unit's ExecStart), database in $ROOT/var/lib/hallmonitor"

# 6. nginx with the example site config: host name, certificate and ports swapped for loopback ones.
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp" "$WORK/tls"
chmod 777 "$WORK/nginx/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
  -keyout "$WORK/tls/privkey.pem" -out "$WORK/tls/fullchain.pem" >/dev/null 2>&1
sed -e "s|hm.example.sch.uk|localhost|g" \
    -e "s|/etc/letsencrypt/live/localhost/|$WORK/tls/|g" \
    -e "/listen \[::\]/d" \
    -e "s|listen 443 ssl|listen 127.0.0.1:$HTTPS_PORT ssl|" \
    -e "s|listen 80;|listen 127.0.0.1:$HTTP_PORT;|" \
    -e "s|https://\$host\$request_uri|https://\$host:$HTTPS_PORT\$request_uri|" \
    -e "s|127.0.0.1:8000|127.0.0.1:$APP_PORT|" \
    -e "s|/var/log/nginx/|$WORK/nginx/logs/|" \
    deploy/nginx.conf >"$WORK/nginx/site.conf"
cat >"$NGINX_CONF" <<EOF
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events {}
http {
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    include $WORK/nginx/site.conf;
}
EOF
nginx -t -q -p "$WORK/nginx" -c "$NGINX_CONF" || fail "6. nginx -t"
nginx -p "$WORK/nginx" -c "$NGINX_CONF" || fail "6. nginx did not start"
pass "6. nginx $(nginx -v 2>&1 | sed 's|.*/||') with deploy/nginx.conf, TLS on 127.0.0.1:$HTTPS_PORT"

# 7. Checks through the proxy.
BASE="https://localhost:$HTTPS_PORT"
CURL=(curl -sS --cacert "$WORK/tls/fullchain.pem" --resolve "localhost:$HTTPS_PORT:127.0.0.1")
body=$("${CURL[@]}" "$BASE/healthz")
[[ $body =~ ^\{\"status\":\"(ok|degraded)\"\}$ ]] || fail "7. /healthz without the token answered $body"
pass "7a. /healthz over TLS answers status only: $body"
details=$("${CURL[@]}" -H "Authorization: Bearer $HEALTH_TOKEN" "$BASE/healthz")
[[ $details == *'"sources"'* ]] || fail "7. /healthz with the token answered $details"
pass "7b. /healthz with the bearer token shows $(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["sources"]))' "$details") sources"
code=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$HTTP_PORT/healthz")
[[ $code == "301 https://"* ]] || fail "7. plain HTTP answered $code"
pass "7c. plain HTTP redirects to HTTPS ($code)"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$BASE/docs")
[ "$code" = 404 ] || fail "7. /docs answered $code"
pass "7d. /docs is off (404)"
head -c 2000000 /dev/zero >"$WORK/big.bin"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST --data-binary @"$WORK/big.bin" "$BASE/webhooks/facebook")
[ "$code" = 413 ] || fail "7. a 2 MB body answered $code"
pass "7e. a 2 MB body is refused (413)"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST -d '{"text":"hi"}' "$BASE/webhooks/generic/nobody")
[ "$code" = 401 ] || fail "7. an unsigned generic webhook answered $code"
pass "7f. an unsigned generic webhook is refused (401)"
out=$("$HM" --env-file "$ENV_FILE" backup --to "$ROOT/var/lib/hallmonitor/backups")
[ -n "$(ls "$ROOT/var/lib/hallmonitor/backups")" ] || fail "7. no backup written"
pass "7g. $out"
echo "deployment check passed"
