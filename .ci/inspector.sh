#!/usr/bin/env bash
# The MCP Inspector's CLI against the real `memsweep serve` on a store with data. Every Inspector call starts
# a fresh server process, so the guarded delete below is previewed in one process and confirmed in another.
set -euo pipefail
INSPECTOR="npx -y @modelcontextprotocol/inspector@0.15.0"
DATA_DIR="$(mktemp -d)"
export MEMSWEEP_DATA_DIR="$DATA_DIR"
MEMSWEEP="$(command -v memsweep)"

call() {  # call TOOL [--tool-arg k=v ...]: prints the result JSON; fails on isError
  local tool=$1; shift
  $INSPECTOR --cli -e MEMSWEEP_DATA_DIR="$DATA_DIR" "$MEMSWEEP" serve --method tools/call --tool-name "$tool" "$@" \
    | python -c "import json,sys; d=json.load(sys.stdin); assert not d.get('isError'), d; print(json.dumps(d['structuredContent']))"
}
get() { python -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

n=$($INSPECTOR --cli -e MEMSWEEP_DATA_DIR="$DATA_DIR" "$MEMSWEEP" serve --method tools/list | get "len(d['tools'])")
[ "$n" = 9 ] || { echo "inspector: expected 9 tools, got $n"; exit 1; }
item=$(call add --tool-arg dataset=notes --tool-arg 'text=Alice moved to Oslo.' | get "d['data_id']")
call add --tool-arg dataset=notes --tool-arg 'text=Bob flew to Oslo.' >/dev/null
call list_datasets | get "d['datasets'][0]['items']" | grep -qx 2
call list_data --tool-arg dataset_id=notes | get "len(d['items'])" | grep -qx 2
call search --tool-arg query=Oslo | get "len(d['hits'])" | grep -qx 2
call delete_data --tool-arg dataset_id=notes --tool-arg data_id="$item" --tool-arg dry_run=true | get "d['items']" | grep -qx 1
token=$(call empty_dataset --tool-arg dataset_id=notes | get "d['confirm_token']")
call empty_dataset --tool-arg dataset_id=notes --tool-arg confirm_token="$token" | get "d['executed']" | grep -qx True
call list_datasets | get "len(d['datasets'])" | grep -qx 0
echo "inspector: 9 tools; add, list_datasets, list_data, search, delete_data (dry run) and a guarded empty_dataset confirmed in a second process all passed"
