/**
 * The status page's script (inlined into the page by page.ts). Plain browser JavaScript, no modules and no library.
 * It is kept free of template-literal syntax (backticks, dollar-brace) because it lives inside one.
 */
export const STATUS_PAGE_SCRIPT = String.raw`
'use strict';
(function () {
  var WINDOW_MS = 5 * 60 * 1000;
  var CHART_MS = 15 * 60 * 1000;
  var COLORS = ['#58a6ff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#79c0ff', '#ffa657', '#56d4dd'];
  var FATE_GROUPS = [
    ['ok', ['ok']],
    ['cut off', ['overflow', 'write-timeout', 'flood']],
    ['refused', ['refused', 'connect-timeout', 'tls-failed']],
    ['auth-failed', ['auth-failed']],
    ['skipped', ['skipped']],
    ['reset/closed', ['reset', 'closed']]
  ];
  var history = [];
  var latest = null;
  var colorOf = {};
  var nextColor = 0;

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    return e;
  }
  function color(name) {
    if (!colorOf[name]) colorOf[name] = COLORS[nextColor++ % COLORS.length];
    return colorOf[name];
  }
  function num(n) {
    if (n === null || n === undefined || isNaN(n)) return '-';
    if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(1) + 'G';
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    if (n !== Math.floor(n)) return n.toFixed(n < 10 ? 2 : 1);
    return String(n);
  }
  function bytes(n) {
    if (n === null || n === undefined || isNaN(n)) return '-';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + ' ' + units[i];
  }
  function sumFates(fates, names) {
    var s = 0;
    for (var i = 0; i < names.length; i++) s += (fates && fates[names[i]]) || 0;
    return s;
  }
  function otherFates(fates) {
    var known = {};
    FATE_GROUPS.forEach(function (g) { g[1].forEach(function (f) { known[f] = true; }); });
    var s = 0;
    for (var k in fates) if (!known[k]) s += fates[k] || 0;
    return s;
  }
  // Every number in an object, by dotted path: shows whatever diff counters the metrics have.
  function leaves(obj, prefix, out) {
    for (var k in obj) {
      var v = obj[k];
      var key = prefix ? prefix + '.' + k : k;
      if (typeof v === 'number') out[key] = v;
      else if (v && typeof v === 'object') leaves(v, key, out);
    }
    return out;
  }
  function diverged(m) {
    var l = leaves((m && m.diff) || {}, '', {});
    var s = 0;
    // Mirror connections whose comparison diverged (outcomes.diverged): the same unit for every comparer.
    for (var k in l) if (/(^|\.)diverged$/.test(k)) s += l[k];
    return s;
  }
  // The sample closest to (and not after) t - ms, or the oldest.
  function sampleBefore(ms) {
    var cut = latest.t - ms;
    var pick = history[0];
    for (var i = 0; i < history.length; i++) { if (history[i].t <= cut) pick = history[i]; else break; }
    return pick;
  }
  function perSecond(a, b, read) {
    if (!a || !b || b.t <= a.t) return null;
    return Math.max(0, (read(b) - read(a)) * 1000 / (b.t - a.t));
  }
  function mirrorOf(sample, name) { return (sample && sample.snap.mirrors[name]) || null; }

  function renderCards() {
    var s = latest.snap;
    var prev = history.length > 1 ? history[history.length - 2] : null;
    $('c-active').textContent = num(s.connections.active);
    $('c-total').textContent = num(s.connections.total);
    $('c-cps').textContent = num(perSecond(prev, latest, function (x) { return x.snap.connections.total; }));
    $('c-up').textContent = bytes(perSecond(prev, latest, function (x) { return x.snap.bytes.clientToMain; })) + '/s';
    $('c-down').textContent = bytes(perSecond(prev, latest, function (x) { return x.snap.bytes.mainToClient; })) + '/s';
    var mf = s.main.connectFailures + s.main.connectTimeouts;
    $('c-mainfail').textContent = num(mf);
    $('c-mainfail').className = mf > 0 ? 'value bad' : 'value';
  }

  function renderTable(mirrors) {
    var tbody = document.querySelector('#mirrors tbody');
    var old = sampleBefore(WINDOW_MS);
    var prev = history.length > 1 ? history[history.length - 2] : null;
    var mins = Math.max(0, Math.round((latest.t - old.t) / 60000));
    $('window').textContent = '(fates over the last ' + (mins < 1 ? 'minute' : mins + ' min') + ')';
    var rows = [];
    var s = latest.snap;
    var main = el('tr', { 'data-target': 'main' });
    main.appendChild(el('td', {}, 'main'));
    var st = el('td', {}); st.appendChild(el('span', { 'class': 'badge up', 'data-state': 'main' }, 'main'));
    main.appendChild(st);
    main.appendChild(el('td', {}, num(s.connections.active)));
    main.appendChild(el('td', {}, num(perSecond(prev, latest, function (x) { return x.snap.connections.total; }))));
    main.appendChild(el('td', {}, bytes(perSecond(prev, latest, function (x) { return x.snap.bytes.clientToMain; })) + '/s'));
    main.appendChild(el('td', {}, '-'));
    main.appendChild(el('td', {}, '-'));
    main.appendChild(el('td', {}, '-'));
    var mainFail = function (x) { return x.snap.main.connectFailures + x.snap.main.connectTimeouts; };
    main.appendChild(el('td', { 'class': mainFail(latest) - mainFail(old) > 0 ? 'bad' : '' }, num(mainFail(latest) - mainFail(old))));
    for (var i = 0; i < 5; i++) main.appendChild(el('td', {}, '-'));
    main.appendChild(el('td', { 'class': 'err' }, ''));
    rows.push(main);
    mirrors.forEach(function (info) {
      var name = info.address;
      var now = mirrorOf(latest, name) || { fates: {}, active: 0, connects: 0, bytesSent: 0, diff: {} };
      var then = mirrorOf(old, name) || { fates: {}, connects: 0, bytesSent: 0 };
      var tr = el('tr', { 'data-target': name, 'data-state': info.state });
      var td = el('td', {}); var sw = el('i', { style: 'display:inline-block;width:8px;height:8px;margin-right:6px;background:' + color(name) });
      td.appendChild(sw); td.appendChild(document.createTextNode(name)); tr.appendChild(td);
      var stc = el('td', {}); stc.appendChild(el('span', { 'class': 'badge ' + info.state, 'data-state': info.state }, info.state)); tr.appendChild(stc);
      tr.appendChild(el('td', {}, num(info.activeConnections)));
      tr.appendChild(el('td', {}, num(perSecond(prev, latest, function (x) { var m = mirrorOf(x, name); return m ? m.connects : 0; }))));
      tr.appendChild(el('td', {}, bytes(perSecond(prev, latest, function (x) { var m = mirrorOf(x, name); return m ? m.bytesSent : 0; })) + '/s'));
      // Queue fill: bytes waiting for this mirror now, over what its open connections may hold (--mirror-buffer each).
      var fill = now.queueLimitBytes > 0 ? Math.round(100 * (now.queuedBytes || 0) / now.queueLimitBytes) : 0;
      tr.appendChild(el('td', { 'data-queue': String(now.queuedBytes || 0), title: 'bytes queued for this mirror now, and the share of its connections\' --mirror-buffer' },
        now.queueLimitBytes > 0 ? bytes(now.queuedBytes || 0) + ' (' + fill + '%)' : '-'));
      FATE_GROUPS.forEach(function (g) {
        var n = sumFates(now.fates, g[1]) - sumFates(then.fates, g[1]);
        tr.appendChild(el('td', { 'class': n > 0 && g[0] !== 'ok' && g[0] !== 'skipped' ? 'bad' : '', 'data-fate': g[0] }, num(n)));
      });
      tr.appendChild(el('td', { title: 'aborted, removed and any other fate' }, num(otherFates(now.fates) - otherFates(then.fates))));
      var d = leaves(now.diff || {}, '', {});
      var parts = [];
      for (var k in d) if (d[k] !== 0) parts.push(k.replace(/^outcomes\./, '') + ' ' + num(d[k]));
      tr.appendChild(el('td', { 'class': 'diff' }, parts.length ? parts.join(', ') : '-'));
      tr.appendChild(el('td', { 'class': 'err' }, info.lastError ? info.lastError.message : ''));
      rows.push(tr);
    });
    tbody.replaceChildren.apply(tbody, rows);
  }

  // One line per series over the last 15 minutes; a gap of more than three intervals breaks the line.
  function chart(id, series) {
    var svg = $(id);
    var W = 600, H = 160, PAD = 4;
    // The x axis spans the history there is (at least a minute), up to 15 minutes.
    var span = Math.min(CHART_MS, Math.max(60000, latest.t - (history.length ? history[0].t : latest.t)));
    var t1 = latest.t, t0 = t1 - span;
    var max = 0;
    series.forEach(function (s) { s.points.forEach(function (p) { if (p[1] > max) max = p[1]; }); });
    var kids = [];
    for (var g = 1; g <= 3; g++) kids.push(svgEl('line', { x1: 0, x2: W, y1: H - g * (H - 2 * PAD) / 4, y2: H - g * (H - 2 * PAD) / 4, stroke: '#2a313c', 'stroke-width': 1 }));
    series.forEach(function (s) {
      var d = '';
      var lastT = null;
      s.points.forEach(function (p) {
        if (p[0] < t0) return;
        var x = ((p[0] - t0) / span) * W;
        var y = H - PAD - (max > 0 ? (p[1] / max) * (H - 2 * PAD) : 0);
        d += (lastT === null || p[0] - lastT > 3 * s.step ? 'M' : 'L') + x.toFixed(1) + ' ' + y.toFixed(1) + ' ';
        lastT = p[0];
      });
      if (d) kids.push(svgEl('path', { d: d, fill: 'none', stroke: s.color, 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke', 'data-series': s.name }));
    });
    var label = svgEl('text', { x: 4, y: 12 });
    label.textContent = 'max ' + (id === 'chart-bytes' ? bytes(max) : num(max)) + '/s';
    kids.push(label);
    var label2 = svgEl('text', { x: 4, y: H - 4 });
    label2.textContent = '-' + (span >= 120000 ? Math.round(span / 60000) + ' min' : Math.round(span / 1000) + ' s');
    kids.push(label2);
    svg.replaceChildren.apply(svg, kids);
  }

  function rateSeries(read) {
    var names = {};
    history.forEach(function (x) { for (var k in x.snap.mirrors) names[k] = true; });
    var step = history.length > 1 ? (history[history.length - 1].t - history[0].t) / (history.length - 1) : 2000;
    return Object.keys(names).map(function (name) {
      var pts = [];
      for (var i = 1; i < history.length; i++) {
        var a = history[i - 1], b = history[i];
        var ma = mirrorOf(a, name), mb = mirrorOf(b, name);
        if (!mb) continue;
        pts.push([b.t, Math.max(0, (read(mb) - (ma ? read(ma) : read(mb))) * 1000 / (b.t - a.t))]);
      }
      return { name: name, color: color(name), points: pts, step: Math.max(step, 1000) };
    });
  }

  function renderCharts() {
    var bytesSeries = rateSeries(function (m) { return m.bytesSent; });
    var mainPts = [];
    for (var i = 1; i < history.length; i++) {
      mainPts.push([history[i].t, Math.max(0, (history[i].snap.bytes.clientToMain - history[i - 1].snap.bytes.clientToMain) * 1000 / (history[i].t - history[i - 1].t))]);
    }
    bytesSeries.unshift({ name: 'main', color: '#d8dee9', points: mainPts, step: 2000 });
    chart('chart-bytes', bytesSeries);
    chart('chart-conns', rateSeries(function (m) { return m.connects; }));
    chart('chart-diverged', rateSeries(diverged));
    var legend = $('legend');
    var items = [el('span', {}, '')];
    items[0].appendChild(el('i', { style: 'background:#d8dee9' })); items[0].appendChild(document.createTextNode('main'));
    Object.keys(colorOf).forEach(function (name) {
      var s = el('span', {}); s.appendChild(el('i', { style: 'background:' + colorOf[name] })); s.appendChild(document.createTextNode(name)); items.push(s);
    });
    legend.replaceChildren.apply(legend, items);
  }

  function renderDivergences(list) {
    var section = $('divergences-section');
    if (!list || !list.length) { section.hidden = true; return; }
    section.hidden = false;
    var tbody = document.querySelector('#divergences tbody');
    var rows = list.slice().reverse().map(function (d) {
      var tr = el('tr', { 'data-mirror': d.mirror });
      tr.appendChild(el('td', {}, new Date(d.at).toLocaleTimeString()));
      tr.appendChild(el('td', {}, d.mirror));
      tr.appendChild(el('td', {}, '#' + d.conn + ' ' + d.client));
      tr.appendChild(el('td', {}, d.outcome));
      var where = d.request !== undefined ? d.request : d.index !== undefined ? 'reply ' + d.index : d.offset !== undefined ? 'byte ' + d.offset : '';
      tr.appendChild(el('td', { 'class': 'diff' }, where));
      tr.appendChild(el('td', { 'class': 'diff' }, d.what));
      return tr;
    });
    tbody.replaceChildren.apply(tbody, rows);
  }

  function render(overview) {
    latest = { t: overview.t, snap: overview.snap };
    var last = history[history.length - 1];
    if (!last || latest.t > last.t) history.push(latest);
    while (history.length && latest.t - history[0].t > CHART_MS) history.shift();
    renderCards();
    renderTable(overview.mirrors);
    renderCharts();
    renderDivergences(overview.snap.recentDivergences);
    $('updated').textContent = 'updated ' + new Date(overview.t).toLocaleTimeString();
    document.body.setAttribute('data-updated', String(overview.t));
  }

  function live(on) {
    var c = $('conn');
    c.textContent = on ? 'live' : 'reconnecting';
    c.className = 'badge ' + (on ? 'live' : 'off');
    c.setAttribute('data-live', on ? 'true' : 'false');
  }

  var es = new EventSource('events');
  es.addEventListener('history', function (e) { history = JSON.parse(e.data); live(true); });
  es.addEventListener('update', function (e) { live(true); render(JSON.parse(e.data)); });
  es.onerror = function () { live(false); };
})();
`
