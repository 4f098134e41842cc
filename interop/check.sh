#!/usr/bin/env bash
# Interop check: send appeals over all three channels to servers this project did not
# write, and check the report counts exactly what they accepted.
#   email: aiosmtpd's own command-line SMTP server (Debugging handler, prints each message)
#   fax and X: Stoplight Prism serving interop/provider-apis.yaml; it validates every
#   request (multipart fields, content types, auth) and answers with the documented examples.
# Needs Node.js/npm for Prism:  npm install --prefix /tmp/prism @stoplight/prism-cli@5
#   PRISM=/tmp/prism/node_modules/.bin/prism interop/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRISM=${PRISM:-prism}
DISPATCHER=${DISPATCHER:-.venv/bin/dispatcher}
PYTHON=${PYTHON:-.venv/bin/python}
SMTP_PORT=${SMTP_PORT:-2625}
PRISM_PORT=${PRISM_PORT:-4610}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir "$work/campaigns"
sed -e 's/^id = "ua-61-21"/id = "ua-interop"/' \
    -e "s/^deadline = .*/deadline = $(date -u -d '+30 days' +%F)/" \
    config/campaigns/ua-61-21.toml > "$work/campaigns/ua-interop.toml"

"$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" > "$work/smtp.log" 2>&1 &
"$PRISM" mock -h 127.0.0.1 -p "$PRISM_PORT" interop/provider-apis.yaml > "$work/prism.log" 2>&1 &
for _ in $(seq 100); do
    grep -q "Prism is listening" "$work/prism.log" 2>/dev/null && break
    sleep 0.2
done

export DISPATCHER_DATABASE_URL="sqlite+aiosqlite:///$work/interop.db"
export DISPATCHER_CAMPAIGNS_DIR="$work/campaigns"
export DISPATCHER_EMAIL__HOST=127.0.0.1 DISPATCHER_EMAIL__PORT=$SMTP_PORT DISPATCHER_EMAIL__START_TLS=false
export DISPATCHER_EMAIL__FROM_ADDRESS=appeals@example.org DISPATCHER_EMAIL__FROM_NAME="Example Campaigns"
export DISPATCHER_FAX__BASE_URL="http://127.0.0.1:$PRISM_PORT" DISPATCHER_FAX__API_KEY=key DISPATCHER_FAX__API_SECRET=secret
export DISPATCHER_FAX__POLL_SECONDS=0.2
export DISPATCHER_TWITTER__API_BASE_URL="http://127.0.0.1:$PRISM_PORT"
export DISPATCHER_TWITTER__CONSUMER_KEY=ck DISPATCHER_TWITTER__CONSUMER_SECRET=cs
export DISPATCHER_TWITTER__ACCESS_TOKEN=at DISPATCHER_TWITTER__ACCESS_TOKEN_SECRET=ats
export DISPATCHER_RETRY__MAX_ATTEMPTS=1

"$DISPATCHER" send --campaign ua-interop --name "Ana Lima" --email ana@example.org --country Brazil
printf '请立即释放所有被任意拘押的人。\n' > "$work/letter.txt"
"$DISPATCHER" send --campaign ua-interop --name "李华" --email li@example.net \
    --target cui-tiankai --message-file "$work/letter.txt" --language zh
"$DISPATCHER" worker --drain
"$DISPATCHER" log --campaign ua-interop
report=$("$DISPATCHER" report --campaign ua-interop --format json)

emails=$(grep -c "^---------- MESSAGE FOLLOWS ----------" "$work/smtp.log" || true)
faxes=$(grep -c "\[HTTP SERVER\] post /v2/faxes " "$work/prism.log" || true)
tweets=$(grep -c "\[HTTP SERVER\] post /2/tweets " "$work/prism.log" || true)
requests=$(grep -c "\[HTTP SERVER\]" "$work/prism.log" || true)
passed=$(grep -c "The request passed the validation rules" "$work/prism.log" || true)
violations=$((requests - passed))
echo "servers accepted: email $emails, fax $faxes, X $tweets; Prism request violations: $violations"
echo "$report" | "$PYTHON" -c '
import json, sys
report = json.load(sys.stdin)
got = {c: v["delivered"] for c, v in report["channels"].items()}
want = {"email": int(sys.argv[1]), "fax": int(sys.argv[2]), "twitter": int(sys.argv[3])}
print("report delivered:", got, "actions", report["actions"])
bad = {c: v for c, v in report["channels"].items() if v["failed"] or v["pending"]}
sys.exit(0 if got == want and not bad and int(sys.argv[4]) == 0 else "MISMATCH: " + json.dumps(bad))
' "$emails" "$faxes" "$tweets" "$violations"
