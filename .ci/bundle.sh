#!/usr/bin/env bash
# The Claude Desktop bundle, tried the way a host runs it: pack it, unpack it into a clean folder, start the
# server with the command line the unpacked manifest.json gives (server type "uv": the host installs the
# dependencies from the bundle's pyproject.toml with uv), in a fresh environment with nothing from the
# repository's venv, and list its tools over stdio. A broken mcp_config fails this step.
set -euo pipefail
WORK="$(mktemp -d)"
npx -y @anthropic-ai/mcpb@2.1.2 pack . "$WORK/memsweep.mcpb" >/dev/null
mkdir "$WORK/unpacked"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$WORK/memsweep.mcpb" "$WORK/unpacked"
# The host's own uv (Claude Desktop ships one); here a separate tool venv, not the project's.
python3 -m venv "$WORK/host" && "$WORK/host/bin/pip" install -q uv
# The manifest's command line, with ${__dirname} and the user_config values substituted as the host does.
mapfile -t CMD < <(python3 - "$WORK/unpacked" "$WORK/data" <<'PY'
import json, sys
root, data = sys.argv[1], sys.argv[2]
config = json.load(open(f"{root}/manifest.json"))["server"]["mcp_config"]
values = {"${__dirname}": root, "${user_config.data_dir}": data, "${user_config.allow_prune}": "false"}
def sub(s):
    for k, v in values.items():
        s = s.replace(k, v)
    return s
print(sub(config["command"]))
for a in config["args"]:
    print(sub(a))
for k, v in config.get("env", {}).items():
    print(f"ENV {k}={sub(v)}")
PY
)
ARGS=(); ENVS=()
for part in "${CMD[@]}"; do
  if [[ "$part" == ENV\ * ]]; then ENVS+=(-e "${part#ENV }"); else ARGS+=("$part"); fi
done
env -i PATH="$WORK/host/bin:/usr/local/bin:/usr/bin:/bin" HOME="$HOME" SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" \
  npx -y @modelcontextprotocol/inspector@0.15.0 --cli "${ENVS[@]}" "${ARGS[@]}" --method tools/list \
  | python3 -c "import json,sys; n=len(json.load(sys.stdin)['tools']); assert n == 9, n; print(f'bundle: packed, unpacked, started with the manifest command in a fresh environment: {n} tools')"
