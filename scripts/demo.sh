#!/usr/bin/env bash
# The main job: set up (once), then run the whole demo cycle on the built-in SmolLM2-135M-Instruct:
# data -> SFT -> eval -> Label Studio review (scripted reviewers) -> reward model -> DPO -> online RL
# -> eval -> review -> gate -> promote -> audit report. Pass a config and overrides to change it:
#   bash scripts/demo.sh examples/demo/cycle.yaml sft.max_steps=8
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
H=.venv/bin/harness
CONFIG=${1:-examples/demo/cycle.yaml}
shift || true
SHOWN=$($H config show --config "$CONFIG" "$@")
RUN=$(sed -n '/^run:/,/^[a-z]/s/^  id: //p' <<<"$SHOWN" | head -1)
RUN_DIR=$(sed -n '/^run:/,/^[a-z]/s/^  root: //p' <<<"$SHOWN" | head -1)/$RUN
started=$(date +%s)
code=0
$H cycle --config "$CONFIG" "$@" || code=$?
elapsed=$(( $(date +%s) - started ))
# The cycle's exit codes: 0 done, 1 a stage crashed, 2 bad input, 3 rejected by the gate, 4 waiting for reviewers.
HOME_DIR=${HARNESS_HOME:-$HOME/.cache/harness}
echo
MLFLOW_NOTE=""
if [ "$code" = 3 ]; then
  MLFLOW_NOTE="
                                  (this rejected candidate was not registered; the report says which rule failed)"
fi
case $code in
  0) echo "Demo cycle finished in $((elapsed / 60)) min $((elapsed % 60)) s." ;;
  3) echo "Demo cycle finished in $((elapsed / 60)) min $((elapsed % 60)) s: the gate rejected the candidate (see the report for why)." ;;
  *) echo "The demo cycle stopped (exit code $code); run the same command again to continue where it stopped."; exit "$code" ;;
esac
cat <<EOF
Look at:
  $RUN_DIR/report/audit.html     the audit report: decision, evaluation with CIs, reviewers, training curves, ledger
                                  (also audit.pdf and audit.json)
  $RUN_DIR/cycle.json            every stage: status, time, one-line result (re-running skips unchanged stages)
  Label Studio                    $($H feedback status --config "$CONFIG" 2>/dev/null | sed -n 's/.*"url": "\([^"]*\)".*/\1/p')
                                  the operator logs in as admin@harness.local, password in $HOME_DIR/labelstudio/secrets.json
                                  (reviewers get their own accounts: .venv/bin/harness feedback reviewers add NAME EMAIL)
                                  projects '$RUN review', '$RUN review (final)' and '$RUN review (final vs SFT)'
  MLflow UI                       .venv/bin/mlflow ui --backend-store-uri sqlite:///$HOME_DIR/mlflow/mlflow.db
                                  then http://127.0.0.1:5000 (model 'harness-model', alias 'champion')$MLFLOW_NOTE
  .venv/bin/harness ledger verify the tamper-evident decision ledger
Stop Label Studio with: .venv/bin/harness feedback stop
EOF
# A rejected candidate is a finished demo (the gate did its job); only a failed stage is an error here.
exit 0
