"""The report's stylesheet (inline: the page loads nothing) and its Content-Security-Policy.

The CSP is defence in depth behind escaping: the page needs no script, no network and no external
font, so it allows none (``default-src 'none'``); inline styles only, images only as data: URIs.
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#ffffff; --soft:#f6f7f9;
  --blue:#2f6fdf; --grey:#8a8f98; --good:#1e7f4f; --bad:#b42318; --goodbg:#e8f5ee; --badbg:#fdecea;
  --nullbg:#f2f4f7; --warnbg:#fff6e0; --warn:#8a5a00; }
* { box-sizing:border-box; }
html { -webkit-text-size-adjust:100%; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.55 "Inter","Segoe UI",Roboto,"Helvetica Neue","Liberation Sans","DejaVu Sans",Arial,sans-serif; }
main { max-width:1120px; margin:0 auto; padding:28px 32px 80px; }
header.top { border-bottom:1px solid var(--line); padding-bottom:14px; margin-bottom:8px; }
header.top .kicker { text-transform:uppercase; letter-spacing:.08em; font-size:12px; color:var(--muted); font-weight:600; }
h1 { font-size:28px; line-height:1.25; margin:4px 0 6px; letter-spacing:-.01em; }
h2 { font-size:21px; margin:42px 0 8px; padding-top:8px; letter-spacing:-.005em; }
h3 { font-size:16px; margin:22px 0 6px; }
h4 { font-size:14px; margin:16px 0 4px; color:var(--muted); font-weight:600; }
p { margin:6px 0 10px; }
.muted, .meta { color:var(--muted); }
.meta { font-size:13px; }
nav.toc { display:flex; flex-wrap:wrap; gap:4px 14px; font-size:13px; margin:10px 0 0; }
nav.toc a { color:var(--blue); text-decoration:none; }
nav.toc a:hover { text-decoration:underline; }
.lede { font-size:17px; line-height:1.5; margin:18px 0 14px; max-width:860px; }
.card + .card { margin-top:14px; }
.card .lede { font-size:16px; margin:10px 0 8px; }
b.good { color:var(--good); } b.bad { color:var(--bad); }
table.sumtab { margin:6px 0 4px; font-size:13.5px; width:100%; min-width:760px; table-layout:fixed; }
table.sumtab td { border-bottom:1px solid #f0f2f5; padding:4px 10px 4px 0; vertical-align:middle; }
table.sumtab tr:last-child td { border-bottom:0; }
table.sumtab td { overflow-wrap:anywhere; }  /* p and moved-items wrap inside their columns */
svg.mini { display:block; }
table.compact td.v-better { background:var(--goodbg); } table.compact td.v-worse { background:var(--badbg); }
table.compact td.v-up, table.compact td.v-down { background:#eef4ff; } table.compact td.v-null { color:#475467; }
td.warncell { background:var(--warnbg); color:var(--warn); font-weight:600; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(330px,1fr)); gap:14px; }
.card { border:1px solid var(--line); border-radius:10px; padding:16px 20px; background:#fff;
  box-shadow:0 1px 2px rgba(16,24,40,.04); }
.card h3 { margin:0 0 2px; font-size:16px; }
.card ul { list-style:none; padding:0; margin:10px 0 4px; }
.card li { padding:5px 8px; border-radius:6px; margin:4px 0; font-size:14px; }
li.better { background:var(--goodbg); } li.worse { background:var(--badbg); }
li.up, li.down { background:#eef4ff; } li.null { background:var(--nullbg); color:#344054; }
li.nodata { background:#fff; border:1px dashed var(--line); color:var(--muted); }
.warnbox { background:var(--warnbg); color:var(--warn); border-radius:6px; padding:6px 10px; font-size:14px; margin:8px 0; }
.chip { display:inline-block; font-size:11px; font-weight:600; letter-spacing:.02em; padding:1px 7px;
  border-radius:999px; vertical-align:1px; white-space:nowrap; }
.chip.better { background:var(--goodbg); color:var(--good); } .chip.worse { background:var(--badbg); color:var(--bad); }
.chip.up, .chip.down { background:#eef4ff; color:#1d4ed8; } .chip.null { background:var(--nullbg); color:#475467; }
.chip.no-data { background:#fff; color:var(--muted); border:1px dashed #d0d5dd; }
.num { font-variant-numeric:tabular-nums; white-space:nowrap; }
table { border-collapse:collapse; width:100%; font-size:13.5px; margin:8px 0 14px; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:#344054; background:var(--soft); position:sticky; top:0; }
td.num, th.num { text-align:right; }
tr.headline td { background:#fbfcff; }
td:first-child { min-width:110px; }
.nowrap, table.effects td.num { white-space:nowrap; }
table.effects td .meta { font-size:12px; }
.tablewrap { overflow-x:auto; }
details { margin:8px 0; }
details > summary { cursor:pointer; color:var(--blue); font-size:14px; }
pre { background:var(--soft); border:1px solid var(--line); border-radius:8px; padding:10px 12px; overflow:auto;
  font:12px/1.45 "DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace; max-height:460px; white-space:pre-wrap;
  word-break:break-word; }
.figs { display:flex; flex-wrap:wrap; gap:18px 26px; align-items:flex-start; }
figure { margin:6px 0; }
.figs > figure, .figs > div { flex:1 1 460px; min-width:0; max-width:100%; }
.figs > figure { max-width:600px; }
.figs > figure.wide { flex-basis:600px; max-width:680px; }
figcaption { font-size:12.5px; color:var(--muted); max-width:560px; margin-top:2px; }
svg.chart { max-width:100%; height:auto; overflow:visible; }
svg.chart text { font-family:inherit; fill:#344054; font-size:11px; }
svg.chart text.ct { font-size:13px; font-weight:600; fill:var(--ink); }
svg.chart text.gh { font-size:11px; font-weight:700; fill:var(--muted); text-transform:uppercase; letter-spacing:.06em; }
svg.chart text.al { fill:var(--muted); font-size:11.5px; }
svg.chart text.tick, svg.chart text.muted, svg.chart text.na { fill:#98a2b3; }
svg.chart text.rl { font-size:11.5px; }
svg.chart line.grid { stroke:#eef0f3; } svg.chart line.axis { stroke:#98a2b3; }
svg.chart line.zero { stroke:#475467; stroke-dasharray:3 3; }
.pairs { display:grid; grid-template-columns:1fr 1fr; gap:0 16px; }
.qa { border:1px solid var(--line); border-radius:10px; margin:12px 0; overflow:hidden; }
.qa .prompt { background:var(--soft); padding:8px 12px; font-size:14px; border-bottom:1px solid var(--line); }
.qa .prompt b { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.05em; margin-right:6px; }
.qa .ans { padding:8px 12px 10px; font-size:14px; }
.qa .ans + .ans { border-left:1px solid var(--line); }
.qa .who { font-size:12px; color:var(--muted); font-weight:600; margin-bottom:2px; }
.qa .txt { white-space:pre-wrap; word-break:break-word; }
.qa .same { font-size:12px; color:var(--warn); }
.empty { color:var(--muted); font-style:italic; }
.tokens { font:13px/1.9 "DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace; white-space:pre-wrap;
  word-break:break-word; border:1px solid var(--line); border-radius:8px; padding:10px 12px; max-width:1000px; }
.tokens span { border-radius:3px; padding:1px 0; }
.tk-unshifted { background:#dbe5f3; } .tk-marginal { background:#f5cf6b; } .tk-shifted { background:#e4574a; color:#fff; }
.legend span { display:inline-block; padding:0 8px; border-radius:3px; margin-right:6px; font-size:12px; }
.bar { background:var(--soft); border-radius:3px; height:8px; width:120px; display:inline-block; vertical-align:middle; }
.bar > i { display:block; height:8px; border-radius:3px; background:var(--blue); }
footer { margin-top:50px; border-top:1px solid var(--line); padding-top:12px; font-size:12.5px; color:var(--muted); }
@media (max-width:760px) { main { padding:18px 14px; } .pairs { grid-template-columns:1fr; } .qa .ans + .ans { border-left:0; border-top:1px solid var(--line); } }
"""
