#!/usr/bin/env bash
# Interop check: send appeals over all three channels to servers this project did not
# write, once per fax provider, and check the report counts exactly what they accepted.
#   email: aiosmtpd's own command-line SMTP server (Debugging handler, prints each message)
#   fax and X: Stoplight Prism serving interop/provider-apis.yaml; it validates every
#   request (multipart fields, JSON bodies, content types, auth) and answers with the
#   documented examples. The fax goes through Phaxio v2, Sinch v3 and Telnyx in turn.
# Only emails to the campaign's officials are appeals: the receipts the supporters get go
# through the same server and are not counted.
# Needs Node.js/npm for Prism:  npm install --prefix var/prism @stoplight/prism-cli@5
#   PRISM=var/prism/node_modules/.bin/prism interop/check.sh [phaxio] [sinch] [telnyx]
set -euo pipefail
cd "$(dirname "$0")/.."
PRISM=${PRISM:-prism}
DISPATCHER=${DISPATCHER:-.venv/bin/dispatcher}
PYTHON=${PYTHON:-.venv/bin/python}
SMTP_PORT=${SMTP_PORT:-2625}
PRISM_PORT=${PRISM_PORT:-4610}
dialects=("$@")
[ ${#dialects[@]} -gt 0 ] || dialects=(phaxio sinch telnyx)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir "$work/campaigns"
sed -e 's/^id = "ua-61-21"/id = "ua-interop"/' \
    -e "s/^deadline = .*/deadline = $(date -u -d '+30 days' +%F)/" \
    -e '/^fax_hours = /d' \
    -e 's/^x_mode = .*/x_mode = "organisation"/' \
    config/campaigns/ua-61-21.toml > "$work/campaigns/ua-interop.toml"
printf '请立即释放所有被任意拘押的人。\n' > "$work/letter.txt"

check_dialect() {
    local dialect=$1 run="$work/$1"
    mkdir "$run"
    "$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" > "$run/smtp.log" 2>&1 &
    local smtp=$!
    "$PRISM" mock -h 127.0.0.1 -p "$PRISM_PORT" interop/provider-apis.yaml > "$run/prism.log" 2>&1 &
    local prism=$!
    for _ in $(seq 150); do
        grep -q "Prism is listening" "$run/prism.log" 2>/dev/null && break
        sleep 0.2
    done
    (
        export DISPATCHER_DATABASE_URL="sqlite+aiosqlite:///$run/interop.db"
        export DISPATCHER_CAMPAIGNS_DIR="$work/campaigns"
        export DISPATCHER_SECRET_KEY=interop-check-secret-key-0123456789
        export DISPATCHER_EMAIL__HOST=127.0.0.1 DISPATCHER_EMAIL__PORT=$SMTP_PORT DISPATCHER_EMAIL__START_TLS=false
        export DISPATCHER_EMAIL__FROM_ADDRESS=appeals@example.org DISPATCHER_EMAIL__FROM_NAME="Example Campaigns"
        export DISPATCHER_FAX__PROVIDER=$dialect DISPATCHER_FAX__POLL_SECONDS=0.2
        local prism_url="http://127.0.0.1:$PRISM_PORT"
        case $dialect in
            phaxio) export DISPATCHER_FAX__BASE_URL=$prism_url DISPATCHER_FAX__API_KEY=key DISPATCHER_FAX__API_SECRET=secret ;;
            sinch) export DISPATCHER_FAX__BASE_URL=$prism_url DISPATCHER_FAX__PROJECT_ID=interop-project \
                DISPATCHER_FAX__KEY_ID=key DISPATCHER_FAX__KEY_SECRET=secret DISPATCHER_FAX__FROM_NUMBER=+12025550100 ;;
            telnyx) export DISPATCHER_FAX__BASE_URL=$prism_url/telnyx DISPATCHER_FAX__API_KEY=key \
                DISPATCHER_FAX__CONNECTION_ID=interop-connection DISPATCHER_FAX__FROM_NUMBER=+12025550100 \
                DISPATCHER_PUBLIC_URL=https://appeals.example.org ;;
        esac
        export DISPATCHER_TWITTER__API_BASE_URL=$prism_url
        export DISPATCHER_TWITTER__CONSUMER_KEY=ck DISPATCHER_TWITTER__CONSUMER_SECRET=cs
        export DISPATCHER_TWITTER__ACCESS_TOKEN=at DISPATCHER_TWITTER__ACCESS_TOKEN_SECRET=ats
        # The organisation's account posts (Prism stands in for X); unpaced for the check.
        export DISPATCHER_TWITTER__PER_MINUTE=600
        export DISPATCHER_RETRY__MAX_ATTEMPTS=1
        "$DISPATCHER" send --campaign ua-interop --name "Ana Lima" --email ana@example.org --country Brazil
        "$DISPATCHER" send --campaign ua-interop --name "李华" --email li@example.net \
            --target cui-tiankai --message-file "$work/letter.txt" --language zh
        "$DISPATCHER" worker --drain
        "$DISPATCHER" log --campaign ua-interop
        "$DISPATCHER" report --campaign ua-interop --format json > "$run/report.json"
    )
    kill "$smtp" "$prism" 2>/dev/null || true
    wait "$smtp" "$prism" 2>/dev/null || true
    "$PYTHON" - "$dialect" "$run" "$work/campaigns/ua-interop.toml" <<'PY'
import json, re, sys, tomllib
from pathlib import Path

dialect, run, campaign = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
officials = {t["email"].lower() for t in tomllib.loads(Path(campaign).read_text())["targets"] if t.get("email")}
smtp = (run / "smtp.log").read_text(errors="replace")
messages = smtp.split("---------- MESSAGE FOLLOWS ----------")[1:]
to_line = re.compile(r"^To:\s*(.*)$", re.M | re.I)
def addressed(message: str) -> set[str]:
    found = to_line.search(message.split("\n\n", 1)[0])
    return set(re.findall(r"[\w.+-]+@[\w.-]+", found.group(1).lower())) if found else set()
appeals = sum(1 for m in messages if addressed(m) & officials)
receipts = len(messages) - appeals
prism = (run / "prism.log").read_text(errors="replace")
fax_post = {"phaxio": r"post /v2/faxes ", "sinch": r"post /v3/projects/[^/ ]+/faxes ", "telnyx": r"post /telnyx/v2/faxes "}[dialect]
faxes = len(re.findall(r"\[HTTP SERVER\] " + fax_post, prism))
tweets = prism.count("[HTTP SERVER] post /2/tweets ")
requests = prism.count("[HTTP SERVER]")
violations = requests - prism.count("The request passed the validation rules")
report = json.loads((run / "report.json").read_text())
got = {c: v["delivered"] for c, v in report["channels"].items()}
want = {"email": appeals, "fax": faxes, "twitter": tweets}
bad = {c: v for c, v in report["channels"].items() if v["failed"] or v["pending"]}
print(f"[{dialect}] servers accepted: email {appeals} to officials (+{receipts} receipts to "
      f"supporters), fax {faxes}, X {tweets}; Prism request violations: {violations}")
print(f"[{dialect}] report delivered: {got}, actions {report['actions']}")
ok = got == want and not bad and violations == 0 and faxes > 0
sys.exit(0 if ok else f"[{dialect}] MISMATCH: want {want}, problems {json.dumps(bad)}, violations {violations}")
PY
}

for dialect in "${dialects[@]}"; do
    check_dialect "$dialect"
done
echo "interop check passed: ${dialects[*]}"
