# scripts/bench_compare.sh — `./scripts/bench compare`: our drain and pickup
# latency side by side with the queue anchors (graphile-worker, pg-boss) of
# ../shared/bench/queue-anchors, all measured in the same run, printed as one
# table of ratios ours ÷ anchor. Sourced by scripts/bench (needs lib.sh, $B,
# $TMP and the test environment it exports).
# shellcheck shell=bash

# Knobs (env): QUEUE_ANCHORS (the anchors' folder), ANCHOR_REPS (1),
# ANCHOR_PGBENCH_T (5 s; run.sh always runs pgbench too), COMPARE_OURS_AFTER (1:
# measure ours again after the anchors, so drift on the machine shows).

# The anchors' folder: $QUEUE_ANCHORS, else ../shared/bench/queue-anchors from
# the checkout or from its parent (a worktree under /work/wt/NAME).
anchors_dir() {
  local d
  for d in "${QUEUE_ANCHORS:-}" "$ROOT/../shared/bench/queue-anchors" \
    "$ROOT/../../shared/bench/queue-anchors"; do
    [ -n "$d" ] && [ -x "$d/run.sh" ] && { (cd "$d" && pwd); return 0; }
  done
  return 1
}

# Node and npm: the Debian packages, installed like lib.sh installs the
# others; returns 1 (and says why) when they cannot be had, e.g. no network.
anchors_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "node/npm missing; install them with: sudo apt-get install -y nodejs npm"
    return 1
  fi
  say "installing nodejs npm (Debian)"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm \
      >/dev/null 2>&1; }; then
    say "could not install nodejs and npm (no network or no package mirror?)"
    return 1
  fi
}

# ours_run LABEL — bench_jobs a b; appends "LABEL drain p50 p99" to $TMP/ours.
ours_run() {
  local out=$TMP/ours-$1.txt drain p50 p99
  say "ours ($1): drain and pickup latency"
  "$B/tests/bench/bench_jobs" a b | tee "$out" | grep -E '^\((a|b)\) (drain|pickup latency):' || true
  drain=$(sed -n 's/^(a) drain: \([0-9.]*\) jobs\/s.*/\1/p' "$out" | head -1)
  p50=$(sed -n 's/^(b) pickup latency: p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\1/p' "$out" | head -1)
  p99=$(sed -n 's/^(b) pickup latency: p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\2/p' "$out" | head -1)
  echo "$1 ${drain:-nan} ${p50:-nan} ${p99:-nan}" >>"$TMP/ours"
}

# anchors_run — copies the anchors to $TMP/anchors, runs them there (main
# pass, default durability) and leaves their raw.jsonl in $TMP/anchors.jsonl.
anchors_run() {
  local src port
  src=$(anchors_dir) || { say "queue anchors not found (set QUEUE_ANCHORS); anchors skipped"; return 1; }
  anchors_node || { say "anchors skipped: Node and npm are needed"; return 1; }
  if [ "$(id -u)" -ne 0 ]; then say "anchors skipped: run.sh must run as root"; return 1; fi
  cp -r "$src" "$TMP/anchors"
  chmod -R u+w "$TMP/anchors"
  rm -rf "$TMP/anchors/results" "$TMP/anchors/pgdata"
  if [ ! -d "$TMP/anchors/node_modules" ]; then
    say "npm ci (graphile-worker, pg-boss)"
    (cd "$TMP/anchors" && timeout 600 npm ci --no-audit --no-fund >"$TMP/npm.log" 2>&1) ||
      { say "npm ci failed (no network?); anchors skipped; log: $(tail -3 "$TMP/npm.log")"; return 1; }
  fi
  port=$(free_port)
  say "anchors: $src/run.sh (copy in $TMP/anchors, port $port; several minutes)"
  (cd "$TMP/anchors" && REPS=${ANCHOR_REPS:-1} SYNC_OFF_PASS=0 PGBENCH_T=${ANCHOR_PGBENCH_T:-5} \
    PGPORT=$port ./run.sh >"$TMP/anchors.log" 2>&1) ||
    { say "anchors' run.sh failed; the end of its log:"; tail -15 "$TMP/anchors.log" >&2; }
  cp "$TMP/anchors/results/latest/raw.jsonl" "$TMP/anchors.jsonl" 2>/dev/null || return 1
}

# The table: one row per (figure, anchor configuration), medians over reps.
compare_table() {
  local rows=() line
  # anchors: "kind label value" (kind: drain | p50 | p99), synchronous_commit on only
  if [ -s "$TMP/anchors.jsonl" ]; then
    mapfile -t rows < <(jq -rs '
      def med: sort | if length % 2 == 1 then .[length/2|floor]
                      else (.[length/2 - 1] + .[length/2]) / 2 end;
      map(select(.synchronous_commit == "on" and (.test == "drain" or .test == "latency")))
      | group_by([.lib, .config, .test])[]
      | (.[0] | "\(.lib) \(.version) [\(.config)]") as $l
      | if .[0].test == "drain" then "drain\t\($l)\t\(map(.drain_jobs_per_s) | med)"
        else "p50\t\($l)\t\(map(.latency_ms_from_add_call.p50) | med)",
             "p99\t\($l)\t\(map(.latency_ms_from_add_call.p99) | med)" end' \
      "$TMP/anchors.jsonl")
  fi
  awk -v rows="$(printf '%s\n' "${rows[@]}")" '
    BEGIN { FS = " " }
    { label[NR] = $1; v["drain", NR] = $2; v["p50", NR] = $3; v["p99", NR] = $4; n = NR }
    END {
      name["drain"] = "drain, 20,000 no-op jobs (jobs/s; ratio > 1: ours ahead)"
      name["p50"] = "pickup latency p50 at 100/s (ms; ratio < 1: ours ahead)"
      name["p99"] = "pickup latency p99 at 100/s (ms; ratio < 1: ours ahead)"
      ours = ""; for (i = 1; i <= n; i++) ours = ours (i > 1 ? " / " : "") label[i]
      printf "\nours (%s) vs the queue anchors, same run, synchronous_commit=on\n", ours
      printf "%-58s | %-66s | %-17s | %-10s | %s\n", "figure", "anchor", "ours", "anchor", "ours / anchor"
      m = split(rows, r, "\n"); shown = 0
      split("drain p50 p99", kinds, " ")
      for (k = 1; k <= 3; k++) {
        kind = kinds[k]; any = 0
        for (j = 1; j <= m; j++) {
          if (split(r[j], f, "\t") < 3 || f[1] != kind) continue
          o = ""; q = ""
          for (i = 1; i <= n; i++) {
            x = v[kind, i]
            o = o (i > 1 ? " / " : "") (kind == "drain" ? sprintf("%.0f", x) : sprintf("%.2f", x))
            q = q (i > 1 ? " / " : "") ((f[3] > 0 && x == x + 0) ? sprintf("%.2f", x / f[3]) : "-")
          }
          printf "%-58s | %-66s | %-17s | %-10s | %s\n", name[kind], f[2], o,
            (kind == "drain" ? sprintf("%.0f", f[3]) : sprintf("%.2f", f[3])), q
          any = 1; shown = 1
        }
        if (!any) {
          o = ""; for (i = 1; i <= n; i++) o = o (i > 1 ? " / " : "") v[kind, i]
          printf "%-58s | %-66s | %-17s | %-10s | %s\n", name[kind], "(anchors not measured)", o, "-", "-"
        }
      }
    }' "$TMP/ours"
}

bench_compare() {
  : >"$TMP/ours"
  ours_run before
  anchors_run || true
  [ "${COMPARE_OURS_AFTER:-1}" = 1 ] && ours_run after
  compare_table
  [ -s "$TMP/anchors.log" ] && say "anchors' log: $(grep -c FAILED "$TMP/anchors.log" || true) failed measurement(s)"
  return 0
}
