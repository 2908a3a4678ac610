// trialbook web UI: charts (plotly.js, served by this server), live updates, note editing
// and decisions. User text goes into the page with textContent only, never innerHTML, and
// into plotly (which reads a little HTML in names) through esc().
"use strict";

const POLL_MS = Number(document.body.dataset.pollMs) || 2000;
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
  "#17becf", "#bcbd22", "#7f7f7f"];

function pageData() {
  const node = document.getElementById("page-data");
  return node ? JSON.parse(node.textContent) : null;
}

function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// On a team server a signed-in page carries its session's CSRF token; every write sends it.
const CSRF_META = document.querySelector('meta[name="csrf-token"]');
const CSRF_TOKEN = CSRF_META ? CSRF_META.getAttribute("content") : null;

async function api(method, url, body) {
  const init = {method, headers: {"accept": "application/json"}};
  if (CSRF_TOKEN && method !== "GET" && method !== "HEAD") init.headers["x-csrf-token"] = CSRF_TOKEN;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const data = await response.json().catch(() => ({detail: response.statusText}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return data;
}

function runUrl(project, run) {
  return `/api/v1/projects/${encodeURIComponent(project)}/runs/${encodeURIComponent(run)}`;
}

// Plotly's toolbar (modebar) stands upright in a right margin of its own, so that it never
// covers a legend (which sits above the plot area, within its width) or a title.
const MODEBAR_REMOVE = ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"];

function plot(div, traces, layout, options) {
  const base = {
    margin: {l: 56, r: 40, t: 36, b: 44}, hovermode: "x unified",
    legend: {orientation: "h", x: 0, xanchor: "left", y: 1.01, yanchor: "bottom"}, font: {size: 12},
    showlegend: true, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff", modebar: {orientation: "v"},
  };
  const config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: MODEBAR_REMOVE};
  return window.Plotly.newPlot(div, traces, Object.assign(base, layout || {}), Object.assign(config, options || {}));
}

// Epochs are whole numbers: ticks 1, 2, 5, 10, 20, 50 ... epochs apart (never 1.5), at most
// about ten across what is shown; kept so on zoom and as live epochs arrive.
function epochStep(span) {
  for (let scale = 1; ; scale *= 10) {
    for (const m of [1, 2, 5]) if (span / (m * scale) <= 10) return m * scale;
  }
}

function epochAxis() {
  return {title: {text: "epoch"}, tickmode: "linear", tick0: 0, dtick: 1, tickformat: "d", hoverformat: "d"};
}

function shownEpochs(div) {
  const range = div.layout.xaxis.range;
  if (range && !div.layout.xaxis.autorange) return range[1] - range[0];
  const xs = div.data.flatMap((t) => Array.from(t.x || []));
  return xs.length ? Math.max(...xs) - Math.min(...xs) : 1;
}

function fitEpochTicks(div) {
  const step = epochStep(Math.max(shownEpochs(div), 1));
  if (div.layout.xaxis.dtick !== step) return window.Plotly.relayout(div, {"xaxis.dtick": step});
  return Promise.resolve();
}

function integerEpochs(div) {
  div.on("plotly_relayout", (change) => {
    if (Object.keys(change).some((k) => k.startsWith("xaxis.range") || k === "xaxis.autorange")) {
      fitEpochTicks(div);
    }
  });
  return fitEpochTicks(div);
}

function setLive(text) {
  const node = document.getElementById("live-status");
  if (node) node.textContent = text;
}

// --------------------------------------------------------------------------- project
function initProject() {
  const boxes = Array.from(document.querySelectorAll("input[name=runs][form=compare-form]"));
  const label = document.getElementById("selected-count");
  const button = document.getElementById("compare-button");
  const update = () => {
    const n = boxes.filter((b) => b.checked).length;
    label.textContent = n ? `${n} selected` : "select two or more runs";
    button.disabled = n === 0;
  };
  boxes.forEach((b) => b.addEventListener("change", update));
  update();
}

// --------------------------------------------------------------------------- compare
function initCompare() {
  const data = pageData();
  initPictures(data.project);  // first: the review's request runs while the charts are drawn
  const div = document.getElementById("curves");
  const yTitle = data.exploratory ? `${data.metric} (exploratory)` : data.metric;
  const traces = data.runs.map((r, i) => ({
    x: r.curve.map((p) => p[0]), y: r.curve.map((p) => p[1]), name: esc(r.name),
    type: "scatter", mode: "lines", line: {color: COLORS[i % COLORS.length], width: r.baseline ? 3 : 2},
  }));
  plot(div, traces, {xaxis: epochAxis(), yaxis: {title: {text: esc(yTitle)}}}).then(() => integerEpochs(div));

  document.getElementById("metric-select").addEventListener("change", (e) => e.target.form.submit());
  document.getElementById("baseline-select").addEventListener("change", (e) => e.target.form.submit());
  drawMatrices(data);
  initDecide(data.project);
  initRecord(data);

  // live: extend the curves of running runs as epochs arrive
  const last = {};
  data.runs.forEach((r) => { last[r.name] = r.curve.length ? r.curve[r.curve.length - 1][0] : null; });
  let running = data.runs.filter((r) => r.status === "running").map((r) => r.name);
  if (!running.length) return;
  setLive(`live: updating every ${POLL_MS / 1000} s`);
  const tick = async () => {
    for (const name of running.slice()) {
      const params = new URLSearchParams({key: data.metric});
      if (last[name] !== null) params.set("since_epoch", last[name]);
      try {
        const h = await api("GET", `${runUrl(data.project, name)}/history?${params}`);
        const pts = (h.series[data.metric] || []).filter((p) => p[1] !== null);
        if (pts.length) {
          const index = data.runs.findIndex((r) => r.name === name);
          await window.Plotly.extendTraces(div, {x: [pts.map((p) => p[0])], y: [pts.map((p) => p[1])]}, [index]);
          await fitEpochTicks(div);
          last[name] = pts[pts.length - 1][0];
        }
        const badge = document.querySelector(`[data-status-of="${CSS.escape(name)}"]`);
        if (badge) { badge.textContent = h.status; badge.className = `status ${h.status}`; }
        if (h.status !== "running") running = running.filter((n) => n !== name);
      } catch (err) {
        setLive(`live update failed: ${err.message}`);
      }
    }
    if (running.length) setTimeout(tick, POLL_MS); else setLive("no run in progress");
  };
  setTimeout(tick, POLL_MS);
}

function drawMatrices(data) {
  const box = document.getElementById("confusion");
  const items = data.confusion.matrices.filter((m) => m.matrix);
  if (!items.length) {
    box.appendChild(el("p", {class: "muted"}, "No confusion matrix recorded (log_eval(..., confusion_matrix=...))."));
    return;
  }
  // every cell is laid out first, so that each plot is drawn at its final width; the title is
  // the page's own heading (it wraps; no toolbar can cover it) and a matrix needs no toolbar
  const cells = [];
  const heat = (title, m, z, diff) => {
    const figure = el("figure", {class: "matrix-box"});
    figure.appendChild(el("h3", {class: "matrix-title"}, title));
    const cell = el("div", {class: "matrix"});
    figure.appendChild(cell);
    box.appendChild(figure);
    cells.push([cell, m, z, diff]);
  };
  const draw = (cell, m, z, diff) => {
    const labels = m.labels.map(esc);
    const text = z.map((row) => row.map((v) => cellText(v, diff)));
    const trace = {z, x: labels, y: labels, text, texttemplate: "%{text}", type: "heatmap", hoverongaps: false,
      colorscale: diff ? "RdBu" : "Blues", reversescale: !diff, zmid: diff ? 0 : undefined,
      hovertemplate: "true %{x}<br>predicted %{y}<br>%{text}<extra></extra>"};
    plot(cell, [trace], {hovermode: "closest",
      xaxis: {title: {text: "true"}}, yaxis: {title: {text: "predicted"}, autorange: "reversed"},
      margin: {l: 80, r: 8, t: 8, b: 64}, height: 310, showlegend: false}, {displayModeBar: false});
  };
  items.forEach((m) => heat(m.run, m, m.matrix, false));
  const base = items.find((m) => m.run === data.confusion.baseline);
  const minus = (a, b) => (a === null || b === null ? null : a - b);
  items.filter((m) => m.comparable_to_baseline).forEach((m) => {
    const diff = m.matrix.map((row, i) => row.map((v, j) => minus(v, base.matrix[i][j])));
    heat(`${m.run} − ${data.confusion.baseline}`, m, diff, true);
  });
  cells.forEach((args) => draw(...args));
}

// The number in a confusion-matrix cell: counts as they are, fractions with 2 decimals, a
// difference with its sign; nothing for a cell without a value.
function cellText(v, diff) {
  if (v === null || v === undefined) return "";
  const text = Number.isInteger(v) ? String(v) : v.toFixed(2);
  return diff && v > 0 ? `+${text}` : text;
}

function renderDecision(box, d) {
  box.replaceChildren();
  box.hidden = false;
  const card = el("article", {class: `decision-card ${d.verdict === "WIN" ? "win" : "more"}`});
  const head = el("header");
  head.appendChild(el("span", {class: "verdict"}, d.verdict === "WIN" ? "WIN" : "MORE EXPERIMENTS"));
  head.appendChild(document.createTextNode(` ${d.candidate} vs ${d.baseline} `));
  head.appendChild(el("span", {class: "muted"},
    `· test reveals ${d.test_reveals_used} of ${d.test_budget}${d.burned ? " (burned)" : ""}`));
  card.appendChild(head);
  const list = el("ul", {class: "gates"});
  for (const g of d.gates) {
    const li = el("li", {class: g.passed ? "pass" : "fail"});
    li.appendChild(el("span", {class: "mark"}, g.passed ? "✓" : "✗"));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("strong", {}, g.gate));
    li.appendChild(document.createTextNode(` ${g.detail}`));
    if (!g.passed && g.hint) li.appendChild(el("div", {class: "hint"}, g.hint));
    list.appendChild(li);
  }
  card.appendChild(list);
  for (const w of d.warnings || []) card.appendChild(el("p", {class: "notice warn"}, w));
  box.appendChild(card);
}

function initDecide(project) {
  const form = document.getElementById("decide-form");
  const box = document.getElementById("decision");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = document.getElementById("decide-button");
    button.disabled = true;
    try {
      const d = await api("POST", `/api/v1/projects/${encodeURIComponent(project)}/decisions`, {
        candidate: form.elements.candidate.value, baseline: form.elements.baseline.value,
      });
      renderDecision(box, d);
    } catch (err) {
      box.hidden = false;
      box.replaceChildren(el("p", {class: "notice bad"}, err.message));
    } finally {
      button.disabled = false;
    }
  });
}

// Recording a comparison is an explicit action (the page itself records nothing): it makes a
// later change of the protocol metric need a reason.
function initRecord(data) {
  const form = document.getElementById("record-form");
  if (!form) return;
  const message = document.getElementById("record-message");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = document.getElementById("record-button");
    button.disabled = true;
    try {
      const done = await api("POST", `/api/v1/projects/${encodeURIComponent(data.project)}/comparisons`, {
        runs: data.runs.map((r) => r.name), metric: data.exploratory ? data.metric : null,
        baseline: data.baseline,
      });
      message.className = "notice";
      message.textContent = `Recorded: ${done.runs.length} runs compared on ${done.metric}` +
        (done.exploratory ? " (exploratory)." : ".");
    } catch (err) {
      message.className = "notice bad";
      message.textContent = `not recorded: ${err.message}`;
      button.disabled = false;
    }
  });
}

// --------------------------------------------------------------------------- run
function initRun() {
  const data = pageData();
  initGallery();
  initRunImages(data.project, data.images);
  const charts = [];
  document.querySelectorAll(".chart[data-group]").forEach((div) => {
    const group = data.groups[Number(div.dataset.group)];
    const keys = group.keys;
    const traces = keys.map((k, i) => {
      const pts = data.history.series[k] || [];
      return {x: pts.map((p) => p[0]), y: pts.map((p) => p[1]), name: esc(k), type: "scatter",
        mode: "lines", line: {color: COLORS[i % COLORS.length], width: k === data.protocol_metric ? 3 : 1.5}};
    });
    plot(div, traces, {xaxis: epochAxis(), height: 300}).then(() => integerEpochs(div));
    charts.push({div, keys});
  });
  initNote();
  if (data.status !== "running") return;
  let last = data.history.last_epoch;
  setLive(`live: updating every ${POLL_MS / 1000} s`);
  const tick = async () => {
    try {
      const params = new URLSearchParams();
      if (last !== null && last !== undefined) params.set("since_epoch", last);
      const h = await api("GET", `${runUrl(data.project, data.run)}/history?${params}`);
      for (const c of charts) {
        const idx = [], xs = [], ys = [];
        c.keys.forEach((k, i) => {
          const pts = h.series[k] || [];
          if (pts.length) { idx.push(i); xs.push(pts.map((p) => p[0])); ys.push(pts.map((p) => p[1])); }
        });
        if (idx.length) {
          await window.Plotly.extendTraces(c.div, {x: xs, y: ys}, idx);
          await fitEpochTicks(c.div);
        }
      }
      if (h.last_epoch !== null && h.last_epoch !== undefined) last = h.last_epoch;
      const badge = document.getElementById("run-status");
      badge.textContent = h.status;
      badge.className = `status ${h.status}`;
      if (h.status !== "running") { setLive(`run ${h.status}`); return; }
      setLive(`live: epoch ${last}`);
    } catch (err) {
      setLive(`live update failed: ${err.message}`);
    }
    setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

function initNote() {
  const card = document.getElementById("note");
  if (!card) return;
  const form = document.getElementById("note-form");
  const shown = Array.from(card.querySelectorAll(".note-field"));
  const areas = Array.from(form.querySelectorAll("textarea"));
  const actions = card.querySelector(".note-actions");
  const useDraft = document.getElementById("note-use-draft");
  const draftLine = document.getElementById("note-draft-line");
  const draft = document.getElementById("note-draft");
  const message = document.getElementById("note-message");
  const editing = (on) => {
    shown.forEach((p) => { p.hidden = on; });
    areas.forEach((a) => { a.hidden = !on; });
    actions.hidden = !on;
    if (useDraft) useDraft.hidden = !on;
  };
  // the draft shows only where it says something the saved result does not
  const showDraft = (saved) => {
    if (draftLine) draftLine.hidden = draft.textContent.trim() === (saved || "").trim();
  };
  document.getElementById("note-edit").addEventListener("click", () => {
    areas.forEach((a) => { a.value = card.querySelector(`.note-field[data-field="${a.name}"]`).textContent; });
    editing(true);
    areas[0].focus();
  });
  document.getElementById("note-cancel").addEventListener("click", () => editing(false));
  if (useDraft) useDraft.addEventListener("click", () => { form.elements.result.value = draft.textContent; });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {};
    areas.forEach((a) => { body[a.name] = a.value; });
    message.textContent = "saving…";
    try {
      const saved = await api("PUT", `${runUrl(card.dataset.project, card.dataset.run)}/note`, body);
      const note = saved.note || {};
      shown.forEach((p) => { p.textContent = note[p.dataset.field] || ""; });
      editing(false);
      showDraft(note.result);
      const version = document.getElementById("note-version");
      if (version) version.textContent = `version ${note.version}, saved just now`;
      message.textContent = "";
    } catch (err) {
      message.textContent = `not saved: ${err.message}`;
    }
  });
}

// --------------------------------------------------------------------------- pictures
// Plots (artifacts), thumbnails and boxes. Boxes are fractions (0..1) of the image, drawn in
// an SVG laid over the thumbnail (viewBox 0 0 1 1); every name goes in with textContent.
const SVG_NS = "http://www.w3.org/2000/svg";
const PAGE_SIZE = 24;

function projectApi(project) {
  return `/api/v1/projects/${encodeURIComponent(project)}`;
}

function artifactUrl(project, run, digest) {
  return `${runUrl(project, run)}/artifacts/${encodeURIComponent(digest)}`;
}

function thumbUrl(project, digest) {
  return `${projectApi(project)}/thumbs/${encodeURIComponent(digest)}`;
}

// A service's message with its `commands` as <code>, as text.
function messageNode(tag, attrs, text) {
  const node = el(tag, attrs);
  String(text).split("`").forEach((part, i) => node.appendChild(i % 2 ? el("code", {}, part) : document.createTextNode(part)));
  return node;
}

// One dialog per page for every enlarged picture; Escape or a click outside closes it.
function lightbox() {
  let box = document.getElementById("lightbox");
  if (box) return box;
  box = el("dialog", {id: "lightbox", class: "lightbox"});
  const close = el("button", {type: "button", class: "small close", id: "lightbox-close"}, "Close");
  close.addEventListener("click", () => box.close());
  box.addEventListener("click", (e) => { if (e.target === box) box.close(); });
  box.appendChild(close);
  box.appendChild(el("div", {class: "lightbox-body", id: "lightbox-body"}));
  document.body.appendChild(box);
  return box;
}

function openLightbox(title, content) {
  const box = lightbox();
  const body = document.getElementById("lightbox-body");
  body.replaceChildren(el("h3", {class: "lightbox-title"}, title), ...content);
  if (!box.open) box.showModal();
}

function enlargeOnClick(link, title) {
  link.addEventListener("click", (e) => {
    e.preventDefault();
    openLightbox(title, [el("img", {src: link.getAttribute("href"), alt: title, class: "large"})]);
  });
}

// the layers of one reviewed image: [key, label, boxes, matched, missed] (a prediction box
// is [cls, conf, x1, y1, x2, y2], a ground-truth box [cls, x1, y1, x2, y2]; matched[i]: box i
// matched; missed: what a ground-truth box not matched says)
function reviewLayers(item, names) {
  return [
    ["gt", "ground truth", item.gt, item.candidate_found, `missed by ${names.candidate}`],
    ["candidate", names.candidate, item.candidate_pred, item.candidate_matched],
    ["baseline", names.baseline, item.baseline_pred, item.baseline_matched],
  ];
}

function runLayers(item) {
  return [["gt", "ground truth", item.gt, item.found, "missed"], ["pred", "predictions", item.pred, item.matched]];
}

function boxLabel(layer, box, classNames, i) {
  const [key, label, , matched, missed] = layer;
  const name = classNames[box[0]] ?? `class ${box[0]}`;
  const hit = matched ? matched[i] : undefined;
  if (key === "gt") return `${label}: ${name}${hit === false ? ` (${missed})` : ""}`;
  const said = hit === undefined ? "" : hit ? " (true positive)" : " (false positive)";
  return `${label}: ${name} ${Number(box[1]).toFixed(2)}${said}`;
}

function boxesSvg(layers, classNames) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 1 1");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "boxes");
  for (const layer of layers) {
    const [key, , boxes, matched] = layer;
    (boxes || []).forEach((box, i) => {
      const [x1, y1, x2, y2] = box.length === 6 ? box.slice(2) : box.slice(1);
      const rect = document.createElementNS(SVG_NS, "rect");
      const miss = matched && matched[i] === false ? " miss" : "";
      rect.setAttribute("class", `box ${key}${miss}`);
      rect.setAttribute("data-layer", key);
      rect.setAttribute("x", x1);
      rect.setAttribute("y", y1);
      rect.setAttribute("width", Math.max(x2 - x1, 0));
      rect.setAttribute("height", Math.max(y2 - y1, 0));
      rect.setAttribute("vector-effect", "non-scaling-stroke");
      const title = document.createElementNS(SVG_NS, "title");
      title.textContent = boxLabel(layer, box, classNames, i);
      rect.appendChild(title);
      svg.appendChild(rect);
    });
  }
  return svg;
}

// A thumbnail with its boxes over it, at the image's aspect ratio.
function framed(project, item, layers, classNames, large) {
  const frame = el("div", {class: large ? "frame large" : "frame"});
  frame.style.aspectRatio = `${item.width || 4} / ${item.height || 3}`;
  if (item.thumb) frame.appendChild(el("img", {src: thumbUrl(project, item.thumb), alt: item.image, loading: "lazy"}));
  else frame.appendChild(el("span", {class: "no-thumb muted"}, "no thumbnail stored"));
  frame.appendChild(boxesSvg(layers, classNames));
  return frame;
}

function countsText(c) {
  return `${c.tp} tp · ${c.fp} fp · ${c.fn} fn`;
}

function shotCard(project, item, layers, classNames, lines, open) {
  const card = el("figure", {class: "shot", tabindex: "0", "data-image": item.image});
  card.appendChild(framed(project, item, layers, classNames, false));
  const caption = el("figcaption");
  caption.appendChild(el("div", {class: "shot-name", title: item.image}, item.image));
  lines.forEach(([cls, text]) => caption.appendChild(el("div", {class: cls}, text)));
  card.appendChild(caption);
  const show = () => open(item);
  card.addEventListener("click", show);
  card.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); show(); } });
  return card;
}

function enlargeShot(project, item, layers, classNames, hidden, lines) {
  const frame = framed(project, item, layers, classNames, true);
  const wrap = el("div", {class: `shot-large ${hidden()}`, id: "shot-large"});
  wrap.appendChild(frame);
  const side = el("div", {class: "shot-boxes"});
  lines.forEach(([cls, text]) => side.appendChild(el("p", {class: cls}, text)));
  for (const layer of layers) {
    const [key, label, boxes] = layer;
    side.appendChild(el("h4", {class: `layer ${key}`}, `${label} (${(boxes || []).length})`));
    const list = el("ul", {class: "plain", "data-layer": key});
    (boxes || []).forEach((b, i) => list.appendChild(el("li", {}, boxLabel(layer, b, classNames, i))));
    side.appendChild(list);
  }
  wrap.appendChild(side);
  openLightbox(item.image, [wrap]);
}

// Checkboxes [data-layer] of a toolbar hide that layer's boxes in `targets` (by a class
// hide-LAYER on each); returns the classes in force, for a view opened later.
function layerToggles(toolbar, targets) {
  const inputs = Array.from(toolbar.querySelectorAll("input[data-layer]"));
  const hidden = () => inputs.filter((i) => !i.checked).map((i) => `hide-${i.dataset.layer}`).join(" ");
  const apply = () => {
    for (const t of targets()) {
      inputs.forEach((i) => t.classList.toggle(`hide-${i.dataset.layer}`, !i.checked));
    }
  };
  inputs.forEach((i) => i.addEventListener("change", apply));
  return hidden;
}

// Pages of images from a JSON route (limit/offset), shown while `keep(item)` holds.
function pagedShots({url, grid, more, summary, keep, render, onFirst}) {
  let offset = 0;
  let done = false;
  const load = async () => {
    more.disabled = true;
    try {
      const params = new URLSearchParams(url.params);
      params.set("limit", PAGE_SIZE);
      params.set("offset", offset);
      const data = await api("GET", `${url.path}?${params}`);
      if (offset === 0 && onFirst) onFirst(data);
      const shown = data.images.filter(keep);
      shown.forEach((item) => grid.appendChild(render(data, item)));
      offset += data.images.length;
      done = shown.length < data.images.length || offset >= data.image_count;
      more.hidden = done;
    } catch (err) {
      summary.replaceChildren(messageNode("span", {class: "notice bad"}, err.message));
      more.hidden = true;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  return load();
}

function initGallery() {
  document.querySelectorAll("#gallery a.plot-link").forEach((a) => enlargeOnClick(a, a.dataset.name || ""));
}

function initRunImages(project, section) {
  const box = document.getElementById("run-images");
  if (!box || !section || !section.ready) return;
  const grid = document.getElementById("run-images-grid");
  const summary = document.getElementById("run-images-summary");
  const hidden = layerToggles(document.getElementById("run-layers"), () => [grid, document.getElementById("shot-large")].filter(Boolean));
  let classNames = [];
  const open = (item) => {
    const lines = [["counts", countsText(item.counts)]];
    enlargeShot(project, item, runLayers(item), classNames, hidden, lines);
  };
  pagedShots({
    url: {path: `${runUrl(project, section.run)}/review`, params: {split: section.split, iou: section.iou, conf: section.conf}},
    grid, more: document.getElementById("run-images-more"), summary,
    keep: (item) => item.counts.fp + item.counts.fn > 0,
    onFirst: (data) => {
      classNames = data.class_names;
      const t = data.totals;
      const wrong = data.images.filter((i) => i.counts.fp + i.counts.fn > 0).length;
      summary.textContent = wrong
        ? `${data.image_count} images: ${countsText(t)} in all; the most wrong first`
        : `${data.image_count} images, none wrong at this IoU and confidence`;
    },
    render: (data, item) => shotCard(project, item, runLayers(item), data.class_names,
      [["counts", countsText(item.counts)]], open),
  });
}

function initSidePlots(project, plots) {
  const select = document.getElementById("plot-select");
  const box = document.getElementById("side-plots");
  if (!select || !plots.names.length) return;
  const show = () => {
    const name = select.value;
    box.replaceChildren();
    for (const p of plots.plots[name] || []) {
      const figure = el("figure", {class: "plot", "data-run": p.run});
      figure.appendChild(el("h3", {}, p.run));
      if (p.digest) {
        const url = artifactUrl(project, p.run, p.digest);
        const link = el("a", {class: "plot-link", href: url, target: "_blank", rel: "noopener"});
        link.appendChild(el("img", {src: url, alt: `${p.run}: ${name}`, loading: "lazy"}));
        enlargeOnClick(link, `${p.run}: ${name}`);
        figure.appendChild(link);
        figure.appendChild(el("figcaption", {class: "muted"}, p.source));
      } else {
        figure.appendChild(el("p", {class: "muted empty"}, `no ${name}`));
      }
      box.appendChild(figure);
    }
  };
  select.addEventListener("change", show);
  show();
}

function classTable(table, data) {
  table.replaceChildren();
  const head = el("thead");
  const row = el("tr");
  ["class", "gained", "lost", "fp added", "fp removed", data.candidate, data.baseline].forEach((h, i) =>
    row.appendChild(el("th", {class: i && i < 5 ? "n" : ""}, h)));
  head.appendChild(row);
  table.appendChild(head);
  const body = el("tbody");
  for (const [name, t] of Object.entries(data.classes)) {
    const tr = el("tr", {"data-class": name});
    tr.appendChild(el("td", {}, name));
    tr.appendChild(el("td", {class: `n${t.gained ? " up" : ""}`}, t.gained));
    tr.appendChild(el("td", {class: `n${t.lost ? " down" : ""}`}, t.lost));
    tr.appendChild(el("td", {class: `n${t.fp_added ? " down" : ""}`}, t.fp_added));
    tr.appendChild(el("td", {class: `n${t.fp_removed ? " up" : ""}`}, t.fp_removed));
    tr.appendChild(el("td", {}, countsText(t.candidate)));
    tr.appendChild(el("td", {}, countsText(t.baseline)));
    body.appendChild(tr);
  }
  table.appendChild(body);
}

function deltaText(d) {
  return d > 0 ? `+${d} errors` : `${d} errors`;
}

function initReview(project, section) {
  const box = document.getElementById("review");
  if (!box || !section || !section.ready) return;
  const grid = document.getElementById("review-grid");
  const summary = document.getElementById("review-summary");
  const names = {candidate: section.candidate, baseline: section.baseline};
  const hidden = layerToggles(document.getElementById("review-layers"), () => [grid, document.getElementById("shot-large")].filter(Boolean));
  let classNames = [];
  const lines = (item) => [
    ["delta down", `${deltaText(item.delta)} for ${names.candidate}`],
    ["counts candidate", `${names.candidate}: ${countsText(item.candidate)}`],
    ["counts baseline", `${names.baseline}: ${countsText(item.baseline)}`],
  ];
  const open = (item) => enlargeShot(project, item, reviewLayers(item, names), classNames, hidden, lines(item));
  pagedShots({
    url: {path: `${projectApi(project)}/review`, params: {candidate: section.candidate, baseline: section.baseline,
      split: section.split, iou: section.iou, conf: section.conf}},
    grid, more: document.getElementById("review-more"), summary,
    keep: (item) => item.delta > 0,
    onFirst: (data) => {
      classNames = data.class_names;
      classTable(document.getElementById("review-classes"), data);
      const [c, b] = [data.totals.candidate, data.totals.baseline];
      summary.textContent = `${data.worse} of ${data.image_count} images worse for ${data.candidate}, ` +
        `${data.better} better. In all: ${data.candidate} ${countsText(c)}; ${data.baseline} ${countsText(b)}.` +
        (data.worse ? " The worst first." : "");
    },
    render: (data, item) => shotCard(project, item, reviewLayers(item, names), data.class_names, lines(item), open),
  });
}

function initPictures(project) {
  const node = document.getElementById("pictures-data");
  if (!node) return;
  const data = JSON.parse(node.textContent);
  initSidePlots(project, data.plots);
  initReview(project, data.review);
}

// --------------------------------------------------------------------------- datasets
function initDatasets() {
  const data = pageData();
  const versions = {};
  data.datasets.forEach((ds) => ds.versions.forEach((v) => { versions[v.digest] = v; }));
  document.querySelectorAll(".chart.bars").forEach((div) => {
    const v = versions[div.dataset.digest];
    if (!v) return;
    const traces = Object.entries(v.splits).map(([split, s], i) => {
      const classes = s.classes || [];
      return {x: classes.map((c) => esc(c.name)), y: classes.map((c) => c.instances), name: esc(split),
        type: "bar", marker: {color: COLORS[i % COLORS.length]}};
    });
    plot(div, traces, {barmode: "group", height: 240, hovermode: "closest",
      yaxis: {title: {text: "instances"}}, margin: {l: 56, r: 40, t: 30, b: 40}});
  });
}

const PAGES = {project: initProject, compare: initCompare, run: initRun, datasets: initDatasets};

document.addEventListener("DOMContentLoaded", () => {
  const init = PAGES[document.body.dataset.page];
  if (init) init();
});
