# The study report and a run's report in a real browser: a small study's report.html, and the
# report.html that lnlab plot writes for one of its runs, are opened in headless Chromium
# (Debian's chromium, installed by scripts/setup where it can be), which must load every figure
# (each image decoded, with a width) and log no console error; screenshots of the pages are kept
# as build/report-screenshot.png and build/run-report-screenshot.png. Skips cleanly where no
# Chromium can run.
. "$(dirname "$0")/lib.sh"

CHROME=""
for c in chromium chromium-browser google-chrome; do command -v "$c" >/dev/null 2>&1 && { CHROME=$c; break; }; done
if [ -z "$CHROME" ]; then echo "skip browser: no chromium (scripts/setup installs Debian's chromium where apt can)"; finish; fi
# root in a container: Chromium's sandbox needs user namespaces it may not have
FLAGS=(--headless --disable-gpu --no-sandbox --no-first-run --disable-extensions --allow-file-access-from-files
       --hide-scrollbars --user-data-dir="$TMP/profile")
if ! timeout 60 "$CHROME" "${FLAGS[@]}" --dump-dom "data:text/html,<p>ok</p>" >"$TMP/probe" 2>"$TMP/probe.err" ||
   ! grep -q "<p>ok</p>" "$TMP/probe"; then
  echo "skip browser: $CHROME cannot run here: $(tail -n 1 "$TMP/probe.err")"; finish
fi

"$LNLAB" prepare --input /usr/share/common-licenses/GPL-3 --tokenizer byte --val-fraction 0.1 --out "$TMP/data" \
  >/dev/null 2>&1 || { fail prepare "lnlab prepare failed"; finish; }
S="$TMP/study"
"$LNLAB" study --data "$TMP/data" --presets pre,peri --dts 1 --depths 2 --lrs 3e-3,3e-2 --seeds 1 --dim 16 --heads 2 \
  --seq 16 --batch 4 --steps 20 --warmup 0 --eval-every 10 --eval-batches 2 --diag-every 10 --probe-batch 4 \
  --threads 1 --quiet --out "$S" >/dev/null 2>"$TMP/study.err" || { fail study "$(tail -n 2 "$TMP/study.err")"; finish; }
# check_page PREFIX DIR SHOT: DIR/report.html in the browser (checks named PREFIX...), screenshot to SHOT
check_page() {
  local pre=$1 dir=$2 shot=$3 nfig res
  nfig=$(grep -o '<img ' "$dir/report.html" | wc -l)
  [ "$nfig" -gt 0 ] && ok "${pre}report_has_figures" || fail "${pre}report_has_figures" "no <img> in report.html"
  # a page next to the report loads it in a frame and writes into its own DOM what it found: every
  # image complete with a natural width, and any script error of the report
  cat >"$dir/check.html" <<'HTML'
<!DOCTYPE html><html><body><iframe id="r" src="report.html" style="width:1280px;height:800px"></iframe>
<script>
window.errors = [];
document.getElementById('r').addEventListener('load', function () {
  var d = this.contentDocument, bad = [], n = 0;
  if (!d) { document.body.setAttribute('data-result', 'BAD no access to the report'); return; }
  for (var i = 0; i < d.images.length; i++) {
    n++;
    if (!d.images[i].complete || d.images[i].naturalWidth === 0) bad.push(d.images[i].alt || d.images[i].src.slice(0, 60));
  }
  var links = d.querySelectorAll('nav a'), dead = [];
  for (var k = 0; k < links.length; k++) {
    var id = decodeURIComponent(links[k].getAttribute('href').slice(1));
    if (!d.getElementById(id)) dead.push(id);
  }
  document.body.setAttribute('data-result', (bad.length || dead.length ? 'BAD ' : 'OK ') + n + ' images; broken: [' +
    bad.join('; ') + ']; dead contents links: [' + dead.join('; ') + ']');
});
</script></body></html>
HTML
  timeout 120 "$CHROME" "${FLAGS[@]}" --enable-logging=stderr --v=0 --virtual-time-budget=10000 --dump-dom \
    "file://$dir/check.html" >"$TMP/dom" 2>"$TMP/chrome.err"
  rm -f "$dir/check.html"
  res=$(grep -o 'data-result="[^"]*"' "$TMP/dom" | head -n 1)
  case "$res" in
    *'"OK '*) ok "${pre}browser_figures_load" ;;
    *) fail "${pre}browser_figures_load" "${res:-no result: $(tail -n 3 "$TMP/chrome.err")}" ;;
  esac
  case "$res" in *"OK $nfig images"*) ok "${pre}browser_sees_every_figure" ;;
    *) fail "${pre}browser_sees_every_figure" "$res, report has $nfig" ;; esac
  # console errors of either page (Chromium logs them as CONSOLE lines with their level)
  if grep -E 'CONSOLE\([0-9]+\)|:CONSOLE' "$TMP/chrome.err" | grep -qiE 'error|uncaught'; then
    fail "${pre}browser_no_console_error" "$(grep -E 'CONSOLE' "$TMP/chrome.err" | head -n 3)"
  else ok "${pre}browser_no_console_error"; fi
  mkdir -p "$ROOT/build"
  rm -f "$shot"
  if timeout 120 "$CHROME" "${FLAGS[@]}" --window-size=1280,3000 --screenshot="$shot" \
     "file://$dir/report.html" >/dev/null 2>&1 && [ -s "$shot" ]; then ok "${pre}browser_screenshot"
  else fail "${pre}browser_screenshot" "no screenshot written"; fi
}

check_page "" "$S" "$ROOT/build/report-screenshot.png"
# a run of the study, drawn by lnlab plot
R="$S/runs/pre-dt1-L2-lr0.003-s1"
if "$LNLAB" plot "$R" >/dev/null 2>"$TMP/plot.err"; then check_page run_ "$R" "$ROOT/build/run-report-screenshot.png"
else fail run_plot "$(cat "$TMP/plot.err")"; fi
finish
