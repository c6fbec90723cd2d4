/** The status page's stylesheet (inlined into the page by page.ts). */
export const STATUS_PAGE_STYLE = `
:root { --bg: #0f1419; --fg: #d8dee9; --muted: #7b8794; --card: #1a2029; --line: #2a313c; --up: #3fb950; --back: #d29922; --removed: #8b949e; --bad: #f85149; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px; background: var(--bg); color: var(--fg); font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display: flex; align-items: baseline; gap: 12px; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 15px; margin: 20px 0 8px; }
.muted { color: var(--muted); font-weight: normal; font-size: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #0f1419; }
.badge.up, .badge.live { background: var(--up); }
.badge.backing-off { background: var(--back); }
.badge.removed, .badge.off { background: var(--removed); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 22px; font-variant-numeric: tabular-nums; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child, td.err, th:last-child { text-align: left; }
td.err { color: var(--bad); white-space: normal; max-width: 320px; font-size: 12px; }
td.diff { font-size: 12px; text-align: left; white-space: normal; }
#divergences th, #divergences td { text-align: left; }
.bad { color: var(--bad); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 12px; margin-top: 16px; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figcaption { color: var(--muted); font-size: 12px; margin-bottom: 4px; }
svg { width: 100%; height: 160px; display: block; }
svg text { fill: var(--muted); font-size: 10px; }
#legend { margin-top: 8px; font-size: 12px; }
#legend span { margin-right: 14px; }
#legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
footer { margin-top: 16px; }
`
