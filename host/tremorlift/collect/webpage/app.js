// tremorlift's live page: draws the collector's state, then each event as it is pushed over
// the WebSocket. Nothing is loaded from anywhere but the collector.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const TREMOR_WORDS = {
  fatigue: "Fatigue tremor",
  instability: "Unsteady",
  rest: "Rest tremor (not from lifting)",
  other: "Shaking",
};
// How long a tremor episode's words stay after it was reported (session seconds).
const TREMOR_SHOWN_S = 20;

const page = {
  ws: null,
  seq: 0, // last event drawn (the state message carries the sequence it holds)
  zones: [],
  threshold: null,
  panels: [], // one per sensor, in the collector's device order
  timers: {}, // device name -> {phase, since_session_s, set_start_session_s}
  alerts: {}, // device name -> {level, message, session_s}
  clock: { session_s: null, at_ms: 0, scale: 1 },
  ended: false,
  audio: null,
  retryMs: 500,
};
// What the page drew and when (for tests and for anyone measuring the page's delay).
window.tremorlift = { draws: [], stateDraws: [], states: 0, page };

function nowMs() { return performance.timeOrigin + performance.now(); }

function sessionNow() {
  const c = page.clock;
  if (c.session_s === null) return null;
  return c.session_s + ((nowMs() - c.at_ms) / 1000) * c.scale;
}

function anchorClock(session_s) {
  if (typeof session_s === "number") {
    page.clock.session_s = session_s;
    page.clock.at_ms = nowMs();
  }
}

function zoneClass(zone) { return zone ? zone.replace(/\s+/g, "-") : ""; }

function zoneOf(lossPct) {
  if (lossPct === null || lossPct === undefined) return null;
  for (const [upper, name] of page.zones) {
    if (upper === null || lossPct < upper) return name;
  }
  return page.zones.length ? page.zones[page.zones.length - 1][1] : null;
}

function fmtClock(s) {
  if (s === null || s < 0) return "";
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return `${m}:${String(sec).padStart(2, "0")}`;
}

// ------------------------------------------------------------------ panels
function makePanel() {
  const node = $("#panel-template").content.firstElementChild.cloneNode(true);
  $("#panels").appendChild(node);
  return {
    node, name: "", limb: null,
    rep: 0, provisional: false, speed: null, zone: null, loss: null, tremor: null, tremorAt: null,
  };
}

function ensurePanels(n) {
  const waiting = $("#waiting");
  if (waiting && n > 0) waiting.remove();
  while (page.panels.length < n) page.panels.push(makePanel());
  while (page.panels.length > n) page.panels.pop().node.remove();
}

function panelFor(index, device) {
  if (typeof index === "number") {
    ensurePanels(Math.max(page.panels.length, index + 1));
    const p = page.panels[index];
    if (device) p.name = device;
    return p;
  }
  return page.panels.find((p) => p.name === device) || null;
}

function drawPanel(p) {
  const n = p.node;
  $(".name", n).textContent = p.name;
  $(".limb", n).textContent = p.limb ? `(${p.limb})` : "";
  const rep = $(".rep", n);
  rep.textContent = p.rep > 0 ? String(p.rep) : "–";
  // A provisional rep 1 (its set not recognised yet) is drawn faded, with a question mark.
  rep.classList.toggle("provisional", p.provisional && p.rep > 0);
  const speed = $(".speed", n);
  speed.textContent = p.speed === null ? "–" : p.speed.toFixed(2);
  speed.className = "speed" + (p.zone ? ` z-${zoneClass(p.zone)}` : "");
  const zone = $(".zone", n);
  zone.textContent = p.zone || "–";
  zone.className = "zone" + (p.zone ? ` z-${zoneClass(p.zone)}` : "");
  $(".loss", n).textContent = p.loss === null ? "–" : `${Math.round(p.loss)} %`;
  const limit = page.threshold;
  $(".limit", n).textContent = limit === null ? "" : `limit ${Math.round(limit)} %`;
  // The bar's full width is twice the limit, so the limit mark sits in the middle.
  const full = limit ? 2 * limit : 50;
  const fill = $(".loss-fill", n);
  fill.style.width = `${Math.max(0, Math.min(100, ((p.loss || 0) / full) * 100))}%`;
  fill.className = "loss-fill" + (p.zone ? ` bg-${zoneClass(p.zone)}` : "");
  $(".loss-limit", n).style.left = limit ? "50%" : "100%";
  drawTremor(p);
}

function drawTremor(p) {
  const el = $(".tremor", p.node);
  const now = sessionNow();
  if (!p.tremor) {
    el.textContent = "Steady";
    return;
  }
  if (p.tremorAt !== null && now !== null && now - p.tremorAt > TREMOR_SHOWN_S) {
    el.textContent = `Steady (last: ${(TREMOR_WORDS[p.tremor.cause] || "shaking").toLowerCase()})`;
    return;
  }
  const words = TREMOR_WORDS[p.tremor.cause] || "Shaking";
  const hz = typeof p.tremor.peak_hz === "number" ? ` · ${p.tremor.peak_hz.toFixed(0)} Hz` : "";
  el.textContent = words + hz;
}

function drawTimers() {
  const now = sessionNow();
  for (const p of page.panels) {
    const t = page.timers[p.name];
    const phase = $(".phase", p.node);
    const clock = $(".clock", p.node);
    if (!t || !t.phase) {
      phase.textContent = page.ended ? "Session ended" : "Ready";
      clock.textContent = "";
      continue;
    }
    const inSet = t.kind === "hold" ? "Hold" : `Set ${t.number || ""}`.trim();
    phase.textContent = page.ended ? "Ended" : t.phase === "set" ? inSet : "Rest";
    clock.textContent = page.ended || now === null ? "" : fmtClock(now - t.since_session_s);
  }
}

// ------------------------------------------------------------------ alerts
function drawAlerts() {
  let level = null;
  let text = "";
  for (const [device, a] of Object.entries(page.alerts)) {
    if (!a || a.acknowledged) continue;
    if (a.level === "stop" || (a.level === "warn" && level !== "stop")) {
      level = a.level;
      text = page.panels.length > 1 ? `${device}: ${a.message}` : a.message;
    }
  }
  document.body.classList.toggle("alert-warn", level === "warn");
  document.body.classList.toggle("alert-stop", level === "stop");
  const banner = $("#banner");
  banner.hidden = !level;
  banner.textContent = level ? `${level === "stop" ? "STOP" : "WARN"} · ${text}` : "";
}

function beep(level) {
  const ctx = page.audio;
  if (!ctx) return;
  const count = level === "stop" ? 3 : 1;
  const freq = level === "stop" ? 1200 : 880;
  for (let i = 0; i < count; i++) {
    const t0 = ctx.currentTime + i * 0.28;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0);
    gain.gain.exponentialRampToValueAtTime(0.6, t0 + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.2);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t0);
    osc.stop(t0 + 0.22);
  }
}

// ------------------------------------------------------------------ messages
function applyState(msg) {
  page.seq = msg.seq;
  page.zones = msg.zones || [];
  page.ended = !!msg.ended;
  page.clock.scale = msg.time_scale || 1;
  anchorClock(msg.session_s);
  page.timers = msg.timers || {};
  page.alerts = {};
  const st = msg.state;
  if (!st) {
    ensurePanels(0);
    if (!$("#waiting")) {
      const w = document.createElement("p");
      w.id = "waiting";
      w.className = "waiting";
      $("#panels").appendChild(w);
    }
    $("#waiting").textContent = "Waiting for the wearables…";
    drawAlerts();
    return;
  }
  page.threshold = st.vl_threshold_pct;
  ensurePanels(st.devices.length);
  st.devices.forEach((dev, i) => {
    const p = page.panels[i];
    const lift = st.lifts[i] || {};
    p.name = dev.name;
    p.limb = lift.limb || null;
    p.provisional = !!lift.rep_provisional;
    p.rep = lift.in_set || lift.set_kind === "dynamic" || p.provisional ? lift.rep_number || 0 : 0;
    p.speed = lift.last_rep_velocity_mps ?? null;
    p.loss = lift.velocity_loss_pct ?? null;
    p.zone = lift.zone || zoneOf(p.loss);
    p.tremor = lift.tremor_cause ? { cause: lift.tremor_cause, peak_hz: lift.tremor_peak_hz } : null;
    p.tremorAt = (page.timers[dev.name] || {}).tremor_session_s ?? null;
    drawLink(p, dev.state, dev.live_degraded);
    drawPanel(p);
  });
  // Warn and stop alerts still standing: raised since their sensor's set started.
  for (const a of st.alerts || []) {
    if (a.level !== "warn" && a.level !== "stop") continue;
    const t = page.timers[a.device];
    if (!t || t.set_start_session_s === undefined || a.session_s < t.set_start_session_s) continue;
    const prev = page.alerts[a.device];
    if (!prev || a.level === "stop" || prev.level !== "stop") {
      page.alerts[a.device] = { level: a.level, message: a.message, session_s: a.session_s };
    }
  }
  drawAlerts();
  drawTimers();
  window.tremorlift.states += 1;
  requestAnimationFrame(() => {
    window.tremorlift.stateDraws.push({
      seq: msg.seq, ...shown(page.panels[0]), sent_unix_ms: msg.sent_unix_ms, drawn_unix_ms: nowMs(),
    });
  });
}

function drawLink(p, state, degraded) {
  const el = $(".link", p.node);
  const good = state === "streaming" && !degraded;
  el.textContent = good ? "" : degraded ? "· link lossy" : `· ${state}`;
  el.className = "link" + (good ? "" : " bad");
}

function applyEvent(msg) {
  if (msg.seq <= page.seq) return; // already in the state drawn
  page.seq = msg.seq;
  const ev = msg.event;
  anchorClock(ev.session_s);
  const p = ev.device ? panelFor(msg.index, ev.device) : null;
  switch (ev.type) {
    case "session_start":
      page.ended = false;
      page.threshold = ev.threshold_pct;
      break;
    case "set_start":
      if (!p) break;
      page.timers[p.name] = {
        ...(page.timers[p.name] || {}), phase: "set", since_session_s: ev.session_s,
        set_start_session_s: ev.session_s, kind: ev.kind, number: ev.set ?? null,
      };
      delete page.alerts[p.name];
      if (ev.kind !== "hold" || p.provisional) {
        p.rep = 0; p.speed = null; p.zone = null; p.loss = null;
      }
      p.provisional = false;
      break;
    case "rep_provisional":
      if (!p) break;
      p.rep = 1;
      p.provisional = true;
      p.speed = ev.velocity_mps ?? null;
      p.loss = 0;
      p.zone = ev.zone || zoneOf(0);
      break;
    case "rep_withdrawn":
      if (!p || !p.provisional) break;
      p.rep = 0; p.provisional = false; p.speed = null; p.zone = null; p.loss = null;
      break;
    case "rep":
      if (!p) break;
      p.provisional = false;
      p.rep = ev.rep;
      p.speed = ev.velocity_mps ?? null;
      p.loss = ev.velocity_loss_pct ?? null;
      p.zone = ev.zone || zoneOf(p.loss);
      if (ev.threshold_pct !== null && ev.threshold_pct !== undefined) page.threshold = ev.threshold_pct;
      break;
    case "set_end":
      if (!p) break;
      page.timers[p.name] = {
        ...(page.timers[p.name] || {}), phase: "rest", since_session_s: ev.session_s,
      };
      break;
    case "tremor":
      if (!p) break;
      p.tremor = { cause: ev.cause, peak_hz: ev.peak_hz };
      p.tremorAt = ev.session_s;
      break;
    case "alert":
      if (!p || (ev.level !== "warn" && ev.level !== "stop")) break;
      if (!(page.alerts[p.name] && page.alerts[p.name].level === "stop" && ev.level === "warn")) {
        page.alerts[p.name] = { level: ev.level, message: ev.message, session_s: ev.session_s };
      }
      beep(ev.level);
      break;
    case "link":
      if (p) drawLink(p, ev.state, ev.degraded);
      break;
    case "session_end":
      page.ended = true;
      break;
  }
  if (p) drawPanel(p);
  drawAlerts();
  drawTimers();
  // Logged in the frame that shows it: what was drawn, and when against when it was published.
  requestAnimationFrame((frameMs) => {
    window.tremorlift.draws.push({
      seq: msg.seq, type: ev.type, device: ev.device || null, set: ev.set ?? null,
      rep: ev.rep ?? null, level: ev.level ?? null, ...shown(p),
      published_unix_ms: msg.published_unix_ms, drawn_unix_ms: nowMs(),
      frame_unix_ms: performance.timeOrigin + frameMs,
    });
  });
}

function shown(p) {
  return {
    shown_rep: p ? $(".rep", p.node).textContent : null,
    shown_provisional: p ? $(".rep", p.node).classList.contains("provisional") : null,
    shown_speed: p ? $(".speed", p.node).textContent : null,
    shown_phase: p ? $(".timer", p.node).textContent.trim() : null,
    page_alert: document.body.classList.contains("alert-stop") ? "stop"
      : document.body.classList.contains("alert-warn") ? "warn" : null,
    background: getComputedStyle(document.body).backgroundColor,
  };
}

function setConn(text, ok) {
  const el = $("#conn");
  el.textContent = text;
  el.className = "conn " + (ok ? "ok" : "down");
}

function connect() {
  const url = new URL("events", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(url);
  page.ws = ws;
  ws.onopen = () => { page.retryMs = 500; setConn("live", true); };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.kind === "state") applyState(msg);
    else if (msg.kind === "event") applyEvent(msg);
  };
  ws.onclose = () => {
    setConn(page.ended ? "session ended" : "reconnecting…", false);
    page.ws = null;
    setTimeout(connect, page.retryMs);
    page.retryMs = Math.min(page.retryMs * 2, 4000);
  };
}

// A tap turns the sound on (browsers play audio only after a user gesture) and acknowledges a
// standing alert (the page turns back until the next one).
$("#sound").addEventListener("click", (e) => {
  e.stopPropagation();
  if (!page.audio) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) page.audio = new Ctx();
  }
  if (page.audio) {
    page.audio.resume();
    $("#sound").textContent = "Sound on";
    $("#sound").setAttribute("aria-pressed", "true");
    beep("warn");
  }
});
document.body.addEventListener("click", () => {
  for (const a of Object.values(page.alerts)) if (a) a.acknowledged = true;
  drawAlerts();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && page.ws && page.ws.readyState === WebSocket.OPEN) {
    page.ws.send("state");
  }
});
setInterval(() => { drawTimers(); page.panels.forEach(drawTremor); }, 250);
connect();
