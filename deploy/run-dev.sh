#!/usr/bin/env bash
# `make run`: migrate an embedded SQLite database, start the fake Infobip, ivrdesk under
# gunicorn and a dispatcher, launch a small demo campaign, and print the admin pages' login and
# a curl that launches another campaign. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8000}"
SIMULATOR_PORT="${SIMULATOR_PORT:-8001}"
BIN=.venv/bin
mkdir -p instance
chmod 700 instance

# A notify token generated once and kept beside the development secret key.
if [ ! -s instance/notify_token ]; then
  "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(24))' > instance/notify_token
  chmod 600 instance/notify_token
fi

export IVR_ENV=development
export IVR_DATABASE_URL="${IVR_DATABASE_URL:-sqlite:///instance/ivrdesk.sqlite3}"
export IVR_INFOBIP_BASE_URL="http://127.0.0.1:${SIMULATOR_PORT}"
export IVR_INFOBIP_API_KEY=sim-key
export IVR_PUBLIC_URL="http://127.0.0.1:${PORT}"
export IVR_NOTIFY_TOKENS="$(cat instance/notify_token)"
export IVR_LOG_FORMAT=text
export GUNICORN_BIND="127.0.0.1:${PORT}"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping ivrdesk, the dispatcher and the fake Infobip"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$BIN/ivrdesk" db upgrade
"$BIN/ivrdesk" simulator --port "$SIMULATOR_PORT" --api-key sim-key &
pids+=($!)
"$BIN/gunicorn" -c deploy/gunicorn.conf.py wsgi:app &
pids+=($!)
"$BIN/ivrdesk" dispatch &
pids+=($!)

for _ in $(seq 1 50); do
  if "$BIN/python" -c "import httpx,sys; sys.exit(httpx.get('http://127.0.0.1:${PORT}/healthz').status_code != 200)" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

TOKEN=$("$BIN/ivrdesk" tokens create "demo-operator-$(date +%s)" --role operator | tail -n 1)

# An admin user for the pages, with a password generated once and kept under instance/.
if [ ! -s instance/admin_password ]; then
  "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(12))' > instance/admin_password
  chmod 600 instance/admin_password
fi
if ! created=$("$BIN/ivrdesk" users create admin --role operator < instance/admin_password 2>&1); then
  case "$created" in *"exists already"*) ;; *) echo "$created" >&2; exit 1 ;; esac
fi

# A demo campaign of 20 calls: the fake Infobip posts their reports within seconds.
"$BIN/python" - "demo-$(date +%Y%m%d-%H%M%S)" > instance/demo-campaign.json <<'PY'
import json, sys
numbers = [{"to": f"417930267{n:02d}"} for n in range(20)]
print(json.dumps({"bulkId": sys.argv[1], "name": "demo", "messages": [{
    "scenarioId": "6298AA7707903A4ED680B436929681AD", "from": "41793026700",
    "destinations": numbers, "callbackData": "demo"}]}))
PY
"$BIN/ivrdesk" launch instance/demo-campaign.json || echo "the demo campaign was not launched"

cat <<MSG

ivrdesk is running on http://127.0.0.1:${PORT} (fake Infobip on http://127.0.0.1:${SIMULATOR_PORT}).
An operator token was created for you: ${TOKEN}

Admin pages: http://127.0.0.1:${PORT}/admin/
  user admin, password $(cat instance/admin_password)

Launch another campaign:

curl -sS -X POST http://127.0.0.1:${PORT}/api/v1/campaigns \\
  -H 'Authorization: Bearer ${TOKEN}' -H 'Content-Type: application/json' \\
  -d '{"name": "demo", "messages": [{"scenarioId": "6298AA7707903A4ED680B436929681AD",
       "from": "41793026700", "destinations": [{"to": "41793026727"}, {"to": "+385 91 234 5678"}],
       "parameters": {"foo": "bar"}, "callbackData": "demo"}]}'

Then look a campaign or a call up (use the bulkId or a messageId from the answer):

curl -sS http://127.0.0.1:${PORT}/api/v1/campaigns/BULKID -H 'Authorization: Bearer ${TOKEN}'
curl -sS http://127.0.0.1:${PORT}/api/v1/calls/MESSAGEID -H 'Authorization: Bearer ${TOKEN}'

Press Ctrl-C to stop everything.
MSG

wait -n "${pids[@]}"
