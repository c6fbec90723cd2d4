/**
 * The status page served at `GET /` of the admin endpoint: one self-contained HTML document (style and script inline),
 * so the package needs no build step, no copy step and no CDN. The script reads `GET /events` (Server-Sent Events,
 * same origin, so the browser sends the same basic-auth credentials) and draws its charts as inline SVG: no charting
 * library. The browser test (test/status-page-browser.test.ts) drives it in headless Chromium.
 */
import { STATUS_PAGE_SCRIPT } from './script.js'
import { STATUS_PAGE_STYLE } from './style.js'

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tcptee status</title>
<style>${STATUS_PAGE_STYLE}</style>
</head>
<body>
<header>
  <h1>tcptee</h1>
  <span id="conn" class="badge off" data-live="false">connecting</span>
  <span id="updated" class="muted"></span>
</header>
<section class="cards" id="cards">
  <div class="card"><div class="label">active connections</div><div class="value" id="c-active">-</div></div>
  <div class="card"><div class="label">connections/s</div><div class="value" id="c-cps">-</div></div>
  <div class="card"><div class="label">client &rarr; main</div><div class="value" id="c-up">-</div></div>
  <div class="card"><div class="label">main &rarr; client</div><div class="value" id="c-down">-</div></div>
  <div class="card"><div class="label">main connect failures</div><div class="value" id="c-mainfail">-</div></div>
  <div class="card"><div class="label">connections total</div><div class="value" id="c-total">-</div></div>
</section>
<section>
  <h2>Main and mirrors <span class="muted" id="window"></span></h2>
  <table id="mirrors">
    <thead><tr>
      <th>target</th><th>state</th><th>active</th><th>conn/s</th><th>bytes/s</th>
      <th>queue</th><th>ok</th><th>cut off</th><th>refused</th><th>auth-failed</th><th>skipped</th><th>reset/closed</th><th>other</th><th>diff</th><th>last error</th>
    </tr></thead>
    <tbody></tbody>
  </table>
</section>
<section id="divergences-section" hidden>
  <h2>Latest divergences <span class="muted">(--diff; reply excerpts are in the --diff-log file)</span></h2>
  <table id="divergences">
    <thead><tr><th>time</th><th>mirror</th><th>connection</th><th>outcome</th><th>where</th><th>what</th></tr></thead>
    <tbody></tbody>
  </table>
</section>
<section class="charts">
  <figure><figcaption>bytes/s per mirror (main: client &rarr; main)</figcaption><svg id="chart-bytes" viewBox="0 0 600 160" preserveAspectRatio="none"></svg></figure>
  <figure><figcaption>connections/s per mirror</figcaption><svg id="chart-conns" viewBox="0 0 600 160" preserveAspectRatio="none"></svg></figure>
  <figure><figcaption>diverged connections/s per mirror (--diff)</figcaption><svg id="chart-diverged" viewBox="0 0 600 160" preserveAspectRatio="none"></svg></figure>
</section>
<div id="legend"></div>
<footer class="muted">Live over <code>/events</code>; the same numbers as <code>/metrics</code> and <code>/mirrors</code>. Rates and fates are over the last 5 minutes of samples; charts show the last 15 minutes this endpoint was watched.</footer>
<script>${STATUS_PAGE_SCRIPT}</script>
</body>
</html>
`
