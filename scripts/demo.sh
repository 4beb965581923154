#!/usr/bin/env bash
# The demo: the Django example project (examples/django) served by mongrel2 +
# wsgid on 127.0.0.1. Sets everything up on a fresh machine, starts both,
# prints the URL, and stops everything on Ctrl-C (or TERM).
#
# Environment (all optional):
#   WSGID_VENV       the venv to use/create        (default: .venv)
#   WSGID_DEMO_DIR   where the demo keeps its state (default: examples/django/var)
#   WSGID_DEMO_PORT  the HTTP port                  (default: 8080, or a free port if taken)
#   WSGID_WORKERS    wsgid workers                  (default: 2)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXAMPLE=$ROOT/examples/django
VENV=${WSGID_VENV:-$ROOT/.venv}
STATE=${WSGID_DEMO_DIR:-$EXAMPLE/var}
WORKERS=${WSGID_WORKERS:-2}

say() { printf '[demo] %s\n' "$*"; }
die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }

# -- 1. mongrel2 and the venv -------------------------------------------------------------
say "checking mongrel2 (Debian's mongrel2-core)"
bash "$ROOT/scripts/mongrel2-install.sh"

if [ ! -x "$VENV/bin/python" ]; then
    say "creating the venv $VENV"
    python3 -m venv "$VENV"
fi
PY=$VENV/bin/python
if ! "$PY" - "$ROOT" >/dev/null 2>&1 <<'EOF'
import os, sys
import django, zmq, daemon, tnetstring, wsgid
assert os.path.dirname(os.path.dirname(os.path.abspath(wsgid.__file__))) == sys.argv[1]
EOF
then
    say "installing wsgid with its Django extra into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[django]"
fi

# -- 2. the app folder ----------------------------------------------------------------------
# The app folder is also mongrel2's chroot: mongrel2 serves <app>/static/
# (collectstatic's output), writes bodies over its limit to <app>/tmp/ and
# binds its handler sockets in <app>/handlers/ (mode 0700: mongrel2 and wsgid
# both run as the app folder's owner).
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
APP=$STATE/site
say "app folder $APP"
# Run as root, the demo's app folder is root's: wsgid runs it only when told to.
AS_ROOT=()
[ "$(id -u)" -ne 0 ] || AS_ROOT=(--run-as-root)
"$PY" -m wsgid init --app-path "$APP" "${AS_ROOT[@]}" >/dev/null
cp -R "$EXAMPLE/app/." "$APP/app/"
cp "$EXAMPLE/django.json" "$APP/django.json"
cp "$EXAMPLE"/plugins/*.py "$APP/plugins/"
mkdir -p "$APP/run" "$APP/tmp" "$APP/static"
mkdir -p -m 0700 "$APP/handlers"

manage() { (cd "$APP" && env -u DJANGO_SETTINGS_MODULE "$PY" app/manage.py "$@"); }
say "manage.py migrate, collectstatic"
manage migrate --noinput >/dev/null
manage collectstatic --noinput >/dev/null

PASSWORD_FILE=$APP/admin-password
if [ ! -s "$PASSWORD_FILE" ]; then
    (umask 077; "$PY" -c 'import secrets; print(secrets.token_urlsafe(12))' >"$PASSWORD_FILE")
    DJANGO_SUPERUSER_PASSWORD=$(cat "$PASSWORD_FILE") \
        manage createsuperuser --noinput --username admin --email admin@localhost >/dev/null 2>&1 \
        || manage shell -c "from django.contrib.auth.models import User; u = User.objects.get(username='admin'); u.set_password(open('$PASSWORD_FILE').read().strip()); u.save()"
fi
# The chat's demo users (/chat/), with the same password.
# "--password=": a generated password may begin with "-" (token_urlsafe), which
# argparse would take for an option.
manage chatusers --password="$(cat "$PASSWORD_FILE")" alice bob >/dev/null

# -- 3. the port, the handler sockets and the mongrel2 config -----------------------------------
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_busy() {
    "$PY" -c 'import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$1"
}
HTTP_PORT=${WSGID_DEMO_PORT:-8080}
if port_busy "$HTTP_PORT"; then
    [ -z "${WSGID_DEMO_PORT:-}" ] || die "port $HTTP_PORT is taken (WSGID_DEMO_PORT)"
    HTTP_PORT=$(free_port)
fi

# A fresh handler UUID for this start of mongrel2 (see docs/deployment.rst).
IDENT=$(cat /proc/sys/kernel/random/uuid)
sed -e "s|@CHROOT@|$APP|" -e "s|@HTTP_PORT@|$HTTP_PORT|" -e "s|@IDENT@|$IDENT|g" \
    "$EXAMPLE/mongrel2.conf.in" >"$STATE/mongrel2.conf"
rm -f "$STATE/config.sqlite" "$APP/run/mongrel2.pid"
(cd "$STATE" && LOGNAME=${LOGNAME:-root} m2sh load -config mongrel2.conf -db config.sqlite \
    >"$STATE/m2sh.log" 2>&1) || { cat "$STATE/m2sh.log" >&2; die "m2sh load failed"; }
SERVER_UUID=$(sed -n 's/.*uuid="\([^"]*\)".*/\1/p' "$STATE/mongrel2.conf" | head -n1)

# -- 4. start, wait, print the URL, stop on Ctrl-C -----------------------------------------------
M2_PID=""
WSGID_PID=""
LINKS=""
stopping=0
stop_all() {
    [ "$stopping" = 1 ] && return
    stopping=1
    trap - INT TERM HUP
    say "stopping"
    [ -n "$WSGID_PID" ] && kill -TERM "$WSGID_PID" 2>/dev/null || true
    [ -n "$M2_PID" ] && kill -INT "$M2_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while { [ -n "$WSGID_PID" ] && kill -0 "$WSGID_PID" 2>/dev/null; } \
       || { [ -n "$M2_PID" ] && kill -0 "$M2_PID" 2>/dev/null; }; do
        if [ $SECONDS -ge $deadline ]; then
            [ -n "$WSGID_PID" ] && kill -KILL "$WSGID_PID" 2>/dev/null || true
            [ -n "$M2_PID" ] && kill -KILL "$M2_PID" 2>/dev/null || true
            break
        fi
        [ -n "$M2_PID" ] && kill -INT "$M2_PID" 2>/dev/null || true
        wait -n 2>/dev/null || sleep 0.1
    done
    wait 2>/dev/null || true
    [ -z "$LINKS" ] || rm -rf "$LINKS"
    say "stopped"
}
trap 'stop_all; exit 0' INT TERM HUP
trap 'stop_all' EXIT

# Both servers run in sessions of their own: Ctrl-C reaches only this script,
# whose trap stops them in order (wsgid gracefully, then mongrel2). mongrel2
# starts from the app folder: as a normal user it cannot chroot, and then
# finds its pid file, static/ and handlers/ from its working directory.
say "starting mongrel2 on 127.0.0.1:$HTTP_PORT"
(cd "$APP" && exec setsid mongrel2 "$STATE/config.sqlite" "$SERVER_UUID" \
    >"$STATE/mongrel2.out" 2>&1) &
M2_PID=$!

# mongrel2 binds handlers/send.ipc and recv.ipc (see mongrel2.conf.in); wsgid
# connects to them by their full paths. A unix socket's path is at most 107
# bytes: under a deeper app folder wsgid goes through a link to <app>/handlers
# in a private folder of /tmp, removed when the demo stops.
HANDLERS=$APP/handlers
if [ "$(printf %s "$HANDLERS/send.ipc" | wc -c)" -gt 107 ]; then
    LINKS=$(mktemp -d /tmp/wsgid-demo.XXXXXX)
    ln -s "$APP/handlers" "$LINKS/handlers"
    HANDLERS=$LINKS/handlers
    say "$APP/handlers is too deep for a unix socket's path: wsgid connects through $HANDLERS"
fi

# The chat's WebSocket handler is named in its settings too (the workers would
# find it there); named here, the master knows of it and holds one connection
# to mongrel2, so a socket's frames reach the handler in order.
say "starting wsgid ($WORKERS workers); log: $APP/logs/wsgid.log"
setsid env -u DJANGO_SETTINGS_MODULE "$PY" -m wsgid --app-path "$APP" \
    --recv "ipc://$HANDLERS/send.ipc" --send "ipc://$HANDLERS/recv.ipc" \
    --mongrel2-chroot "$APP" --mongrel2-upload-dir /tmp/upload.XXXXXX --workers "$WORKERS" \
    --websocket-handler chat.websocket:handler \
    --no-daemon "${AS_ROOT[@]}" \
    >"$STATE/wsgid.out" 2>&1 &
WSGID_PID=$!

URL="http://127.0.0.1:$HTTP_PORT/"
"$PY" - "$URL" "$M2_PID" "$WSGID_PID" <<'EOF' || { cat "$STATE/mongrel2.out" "$STATE/wsgid.out" >&2; tail -n 20 "$APP/logs/wsgid.log" >&2 || true; die "the site did not come up"; }
import sys, time, urllib.request
url, pids = sys.argv[1], [int(p) for p in sys.argv[2:]]

def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False

deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    for pid in pids:
        if not alive(pid):
            sys.exit("process %d exited" % pid)
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("timed out waiting for %s" % url)
EOF

cat <<EOF

  The demo is up:  $URL
  Admin:           ${URL}admin/  (user admin, password $(cat "$PASSWORD_FILE"))
  Chat:            ${URL}chat/  (users alice and bob, the same password; two browsers)
  Logs:            $APP/logs/wsgid.log, $APP/logs/access.log

  Press Ctrl-C to stop.

EOF

# Wait until Ctrl-C/TERM (the trap stops everything) or one of the two dies.
while kill -0 "$M2_PID" 2>/dev/null && kill -0 "$WSGID_PID" 2>/dev/null; do
    wait -n "$M2_PID" "$WSGID_PID" 2>/dev/null || sleep 0.5
done
say "a server exited on its own; see $STATE/mongrel2.out, $STATE/wsgid.out and $APP/logs/"
exit 1
