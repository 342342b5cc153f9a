(function(){
"use strict";
const data = JSON.parse(document.getElementById("report-data").textContent);
const runs = data.runs, span = Math.max(data.span, 1e-6);
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
function fmt(sec){
  if (sec < 1e-3) return (sec*1e6).toFixed(0)+" \u00b5s";
  if (sec < 1) return (sec*1e3).toFixed(1)+" ms";
  if (sec < 120) return sec.toFixed(2)+" s";
  return (sec/60).toFixed(1)+" min";
}
// ------------------------------------------------------------ header
const chips = Object.keys(data.states).map((s) =>
  `<span class="chip"><span class="dot s-${esc(s)}"></span>${esc(s.toLowerCase())} ${data.states[s]}</span>`);
$("counts").innerHTML = `<span class="chip">${runs.length} runs in ${fmt(data.span)}</span>` + chips.join("");
if (data.started) $("when").textContent = new Date(data.started*1000).toLocaleString();
// ------------------------------------------------------------ timeline
const lanes = [...new Set(runs.map((r) => r.lane))].sort();
const laneIndex = new Map(lanes.map((l, i) => [l, i]));
const labels = $("labels"), canvas = $("canvas"), scroller = $("scroller");
labels.innerHTML = '<div class="axis-label">lane</div>' + lanes.map((l) => `<div title="${esc(l)}">${esc(l)}</div>`).join("");
const laneDivs = lanes.map(() => { const d = document.createElement("div"); d.className = "lane"; canvas.appendChild(d); return d; });
const bars = [];
runs.forEach((r, i) => {
  const b = document.createElement("div");
  b.className = "bar s-" + r.type + (r.cached ? " cached" : "");
  b.style.left = (100*r.start/span) + "%";
  b.style.width = (100*(r.end - r.start)/span) + "%";
  b.dataset.i = i;
  laneDivs[laneIndex.get(r.lane)].appendChild(b);
  bars.push(b);
  r.changes.filter((c) => c[0] === "AwaitingRetry").forEach((c) => {
    const m = document.createElement("div");
    m.className = "retry"; m.title = "retry";
    m.style.left = (100*c[1]/span) + "%";
    laneDivs[laneIndex.get(r.lane)].appendChild(m);
  });
});
let zoom = 1;
function ticks(){
  const width = scroller.clientWidth * zoom;
  const target = span / Math.max(width / 110, 1);
  const pow = Math.pow(10, Math.floor(Math.log10(target)));
  const step = [1, 2, 5, 10].map((m) => m*pow).find((s) => s >= target) || target;
  let out = "";
  for (let t = 0; t <= span + 1e-12 && out.length < 200000; t += step)
    out += `<div class="tick" style="left:${100*t/span}%">${fmt(t)}</div>`;
  $("axis").innerHTML = out;
  $("zoomlevel").textContent = zoom.toFixed(zoom < 10 ? 1 : 0) + "\u00d7";
}
function setZoom(z, anchorX){
  const old = zoom;
  zoom = Math.min(Math.max(z, 1), 5000);
  const x = anchorX === undefined ? scroller.clientWidth/2 : anchorX;
  const at = (scroller.scrollLeft + x) / (scroller.clientWidth*old);
  canvas.style.width = (100*zoom) + "%";
  scroller.scrollLeft = at*scroller.clientWidth*zoom - x;
  ticks();
}
$("zin").onclick = () => setZoom(zoom*2);
$("zout").onclick = () => setZoom(zoom/2);
$("zreset").onclick = () => setZoom(1);
scroller.addEventListener("wheel", (e) => {
  if (e.shiftKey) return;
  e.preventDefault();
  const rect = scroller.getBoundingClientRect();
  setZoom(zoom * Math.exp(-e.deltaY/300), e.clientX - rect.left);
}, {passive: false});
window.addEventListener("resize", ticks);
const tip = $("tip");
canvas.addEventListener("mousemove", (e) => {
  const b = e.target.closest(".bar");
  if (!b) { tip.style.display = "none"; return; }
  const r = runs[+b.dataset.i];
  tip.textContent = `${r.name}  [${r.state}]\ntask ${r.task}${r.flow ? "  flow " + r.flow : ""}\n` +
    `start ${fmt(r.start)}  took ${fmt(r.end - r.start)}  attempts ${r.attempts}${r.cached ? "  cached" : ""}\n` +
    `lane ${r.lane}` + (r.params ? `\n${r.params}` : "") + (r.msg ? `\n${r.msg}` : "");
  tip.style.display = "block";
  tip.style.left = Math.min(e.clientX + 14, window.innerWidth - 430) + "px";
  tip.style.top = (e.clientY + 14) + "px";
});
canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
canvas.addEventListener("click", (e) => {
  const b = e.target.closest(".bar");
  if (b) { $("filter").value = runs[+b.dataset.i].name; render(); }
});
// ------------------------------------------------------------ table
const columns = [
  ["name", "run"], ["task", "task"], ["state", "state"], ["start", "start"], ["dur", "duration"],
  ["attempts", "attempts"], ["cached", "cached"], ["lane", "lane"], ["params", "parameters"], ["msg", "message"]];
runs.forEach((r) => { r.dur = r.end - r.start; });
let sortKey = "start", sortDir = 1;
$("thead").innerHTML = "<tr>" + columns.map(([k, t]) => `<th data-k="${k}">${t}</th>`).join("") + "</tr>";
$("thead").addEventListener("click", (e) => {
  const th = e.target.closest("th"); if (!th) return;
  const k = th.dataset.k;
  sortDir = (k === sortKey) ? -sortDir : 1; sortKey = k; render();
});
const stateSelect = $("state");
stateSelect.innerHTML = '<option value="">all states</option>' +
  [...new Set(runs.map((r) => r.state))].sort().map((s) => `<option>${esc(s)}</option>`).join("");
function render(){
  const text = $("filter").value.trim().toLowerCase(), state = stateSelect.value;
  let rows = runs.filter((r) => (!state || r.state === state) &&
    (!text || (r.name + " " + r.task + " " + r.msg + " " + r.params + " " + r.lane).toLowerCase().includes(text)));
  rows.sort((a, b) => { const x = a[sortKey], y = b[sortKey]; return (x < y ? -1 : x > y ? 1 : 0) * sortDir; });
  const shown = rows.slice(0, data.tableLimit);
  $("tbody").innerHTML = shown.map((r) => `<tr data-id="${esc(r.id)}"><td>${esc(r.name)}</td><td>${esc(r.task)}</td>` +
    `<td><span class="dot s-${esc(r.type)}"></span> ${esc(r.state)}</td><td class="num">${fmt(r.start)}</td>` +
    `<td class="num">${fmt(r.dur)}</td><td class="num">${r.attempts}</td><td>${r.cached ? "yes" : ""}</td>` +
    `<td>${esc(r.lane)}</td><td class="cut" title="${esc(r.params)}">${esc(r.params)}</td>` +
    `<td class="msg cut" title="${esc(r.msg)}">${esc(r.msg)}</td></tr>`).join("");
  document.querySelectorAll("#thead th").forEach((th) => {
    th.className = th.dataset.k === sortKey ? (sortDir > 0 ? "asc" : "desc") : ""; });
  $("shown").textContent = `${shown.length} of ${runs.length} runs` +
    (rows.length > shown.length ? ` (first ${shown.length} of ${rows.length} matches; filter to narrow)` : "");
  const matched = new Set(rows.map((r) => r.id));
  bars.forEach((b) => { b.classList.toggle("hl", (text || state) ? matched.has(runs[+b.dataset.i].id) : false); });
  document.body.dataset.rows = String(shown.length);
  document.body.dataset.firstRow = shown.length ? shown[0].name : "";
}
// a link can preset the table: report.html#filter=text&state=Failed&sort=-dur
const preset = new URLSearchParams(location.hash.slice(1));
if (preset.get("filter")) $("filter").value = preset.get("filter");
if (preset.get("state")) stateSelect.value = preset.get("state");
if (preset.get("sort")) { const s = preset.get("sort"); sortDir = s[0] === "-" ? -1 : 1; sortKey = s.replace(/^-/, ""); }
$("filter").addEventListener("input", render);
stateSelect.addEventListener("change", render);
// ------------------------------------------------------------ failures
const failed = runs.filter((r) => r.type === "FAILED" || r.type === "CRASHED");
$("failures-title").textContent = `Failures (${failed.length})`;
$("failures").innerHTML = failed.length ? failed.map((r) =>
  `<div class="failure"><b>${esc(r.name)}</b> <span class="muted">[${esc(r.state)}] task ${esc(r.task)}, ` +
  `${r.attempts} attempt${r.attempts === 1 ? "" : "s"}, at ${fmt(r.end)}</span><br><code>${esc(r.msg)}</code>` +
  (r.params ? `<br><span class="muted">${esc(r.params)}</span>` : "") +
  `<br><span class="muted">${r.changes.map((c) => esc(c[0]) + " " + fmt(c[1])).join(" \u2192 ")}</span></div>`).join("")
  : '<p class="muted" style="margin:0 20px">No failures.</p>';
render();
ticks();
document.body.dataset.bars = String(bars.length);
document.body.dataset.lanes = String(lanes.length);
document.body.dataset.ready = "1";
})();
