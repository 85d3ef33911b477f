// SleapRtc live monitor. Reads the room's event stream with fetch() so the room token travels in the
// Authorization header (EventSource cannot set headers and would put it in the URL). Every string that comes
// from a worker is rendered with textContent, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "sleap-rtc-monitor-token:";
  const MAX_RECONNECT_DELAY_MS = 10000;

  const el = (id) => document.getElementById(id);
  const state = {
    roomId: null,
    token: null,
    workers: new Map(),      // peer_id -> worker object from the server
    queue: [],               // waiting tickets in order (the first 100), as queue_changed sends them
    queueLength: 0,
    jobs: new Map(),         // job_id -> record of the room's jobs that are not waiting (assigned, running, finished)
    cards: new Map(),        // peer_id -> card element
    abort: null,
    reconnectDelay: 1000,
    stopped: false,
  };

  function readFragment() {
    const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    return { room: params.get("room"), token: params.get("token") };
  }

  function start() {
    const fragment = readFragment();
    const roomId = fragment.room;
    let token = fragment.token;
    if (roomId && token) {
      // Keep the token out of the address bar (screenshots, shoulder surfing); this tab remembers it for reloads.
      sessionStorage.setItem(TOKEN_KEY + roomId, token);
      history.replaceState(null, "", window.location.pathname + "#room=" + encodeURIComponent(roomId));
    } else if (roomId) {
      token = sessionStorage.getItem(TOKEN_KEY + roomId);
    }
    el("credentials").addEventListener("submit", onSubmit);
    if (roomId && token) openRoom(roomId, token);
    else showForm(roomId || "");
  }

  function onSubmit(event) {
    event.preventDefault();
    const roomId = el("room-input").value.trim();
    const token = el("token-input").value.trim();
    if (!roomId || !token) return;
    sessionStorage.setItem(TOKEN_KEY + roomId, token);
    history.replaceState(null, "", window.location.pathname + "#room=" + encodeURIComponent(roomId));
    openRoom(roomId, token);
  }

  function showForm(roomId) {
    el("credentials").hidden = false;
    el("room-input").value = roomId;
    el("token-input").value = "";
    (roomId ? el("token-input") : el("room-input")).focus();
  }

  function openRoom(roomId, token) {
    if (state.abort) state.abort.abort();
    state.roomId = roomId;
    state.token = token;
    state.stopped = false;
    state.reconnectDelay = 1000;
    clearWorkers();
    el("credentials").hidden = true;
    hideError();
    el("room-label").hidden = false;
    el("room-label").textContent = "room " + roomId;
    connect();
  }

  function setConnection(stateName, text) {
    const node = el("connection");
    node.dataset.state = stateName;
    node.textContent = text;
  }

  function showError(text) {
    const node = el("error");
    node.textContent = text;
    node.hidden = false;
  }

  function hideError() {
    el("error").hidden = true;
    el("error").textContent = "";
  }

  async function connect() {
    const controller = new AbortController();
    state.abort = controller;
    setConnection(state.workers.size ? "reconnecting" : "connecting", state.workers.size ? "reconnecting…" : "connecting…");
    let response;
    try {
      response = await fetch("/api/rooms/" + encodeURIComponent(state.roomId) + "/events", {
        headers: { "Authorization": "Bearer " + state.token, "Accept": "text/event-stream" },
        cache: "no-store",
        credentials: "omit",
        signal: controller.signal,
      });
    } catch (err) {
      if (controller.signal.aborted) return;
      return scheduleReconnect("The server cannot be reached.");
    }
    if (response.status === 401 || response.status === 403) {
      // No token (401) or a wrong one or an unknown room (403): show nothing of the room, forget the token, ask again.
      state.stopped = true;
      sessionStorage.removeItem(TOKEN_KEY + state.roomId);
      clearWorkers();
      el("summary").hidden = true;
      el("empty").hidden = true;
      setConnection("failed", "not authorised");
      showError("Access denied: the room id or token is wrong (or the room has expired). Check the credentials printed by Start-SleapWorker or New-SleapRoom.");
      showForm(state.roomId);
      announceRoom();
      return;
    }
    if (!response.ok || !response.body) {
      let message = "The server answered " + response.status + ".";
      try { const body = await response.json(); if (body && body.message) message = body.message; } catch (e) { /* not JSON */ }
      return scheduleReconnect(message);
    }
    hideError();
    try {
      await readEvents(response.body, controller.signal);
    } catch (err) {
      if (controller.signal.aborted) return;
    }
    if (!controller.signal.aborted) scheduleReconnect("The live connection was lost.");
  }

  function scheduleReconnect(reason) {
    if (state.stopped) return;
    markStale();
    const delay = state.reconnectDelay;
    state.reconnectDelay = Math.min(state.reconnectDelay * 2, MAX_RECONNECT_DELAY_MS);
    setConnection("reconnecting", reason + " Retrying in " + Math.round(delay / 1000) + " s…");
    setTimeout(() => { if (!state.stopped) connect(); }, delay);
  }

  // Minimal server-sent-events reader: blank-line separated blocks of "field: value" lines.
  async function readEvents(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        dispatchBlock(block);
      }
    }
  }

  function dispatchBlock(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    let payload;
    try { payload = JSON.parse(data.join("\n")); } catch (e) { return; }
    handleEvent(name, payload);
  }

  function handleEvent(name, payload) {
    switch (name) {
      case "snapshot":
        state.reconnectDelay = 1000;
        setConnection("live", "live");
        clearWorkers();
        for (const worker of payload.workers || []) upsertWorker(worker);
        state.jobs.clear();
        for (const job of payload.jobs || []) putJob(job);
        setQueue(payload);
        break;
      case "queue_changed":
        setQueue(payload);
        break;
      case "job_changed":
        if (payload.job) putJob(payload.job);
        renderJobs();
        return;
      case "worker_joined":
      case "status_changed":
      case "job_progress":
      case "worker_updated":
        if (payload.worker) upsertWorker(payload.worker);
        break;
      case "worker_left":
        removeWorker(payload.peer_id);
        break;
      default:
        return;
    }
    renderSummary();
    renderJobs();
    announceRoom();
  }

  // ---- queue and jobs (issue 12)
  const MAX_JOBS_SHOWN = 50;

  function setQueue(payload) {
    state.queue = Array.isArray(payload.queue) ? payload.queue : [];
    state.queueLength = typeof payload.queue_length === "number" ? payload.queue_length : state.queue.length;
    renderQueue();
  }

  function putJob(job) {
    if (!job || typeof job.job_id !== "string") return;
    // A ticket waiting in the queue belongs to the queue table; once assigned, running or finished it is a job.
    if (job.state === "Queued" && !job.worker_id) state.jobs.delete(job.job_id);
    else state.jobs.set(job.job_id, job);
    if (state.jobs.size > MAX_JOBS_SHOWN) {
      const oldest = [...state.jobs.values()].sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
      for (const job of oldest.slice(0, state.jobs.size - MAX_JOBS_SHOWN)) state.jobs.delete(job.job_id);
    }
  }

  function cell(row, value, className) {
    const td = document.createElement("td");
    td.textContent = value == null ? "" : String(value);
    if (className) td.className = className;
    row.append(td);
    return td;
  }

  function formatAge(ms) {
    if (typeof ms !== "number") return "";
    const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function describeNeeds(requirements) {
    if (!requirements) return "any worker";
    const parts = [];
    if (requirements.worker_id) parts.push("worker " + requirements.worker_id);
    if (requirements.min_gpu_memory_mb > 0) parts.push("≥ " + formatMemory(requirements.min_gpu_memory_mb));
    if (Array.isArray(requirements.tags) && requirements.tags.length) parts.push("tags " + requirements.tags.join(", "));
    return parts.length ? parts.join(" · ") : "any worker";
  }

  function renderQueue() {
    const section = el("queue-section");
    section.hidden = !state.roomId || state.stopped || el("connection").dataset.state !== "live";
    el("queue-length").textContent = state.queueLength ? "(" + state.queueLength + " waiting)" : "";
    el("queue-empty").hidden = state.queueLength > 0;
    el("queue").hidden = state.queueLength === 0;
    const body = el("queue").querySelector("tbody");
    body.replaceChildren();
    for (const ticket of state.queue) {
      const row = document.createElement("tr");
      row.dataset.jobId = ticket.job_id;
      cell(row, ticket.position, "position");
      cell(row, ticket.job_id, "mono job-id");
      cell(row, ticket.package_name || "", "package");
      cell(row, ticket.priority, "priority");
      cell(row, describeNeeds(ticket.requirements), "needs");
      const age = cell(row, formatAge(ticket.created_at), "age");
      age.dataset.at = String(ticket.created_at || "");
      if (ticket.submitter_present === false) {
        const away = document.createElement("span");
        away.className = "away";
        away.textContent = "submitter away";
        age.append(away);
      }
      body.append(row);
    }
  }

  function workerLabel(peerId) {
    if (!peerId) return "—";
    const worker = state.workers.get(peerId);
    return worker ? displayName(worker) : peerId;
  }

  function renderJobs() {
    const jobs = [...state.jobs.values()].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
    el("jobs-section").hidden = jobs.length === 0;
    const body = el("jobs").querySelector("tbody");
    body.replaceChildren();
    for (const job of jobs) {
      const row = document.createElement("tr");
      row.dataset.jobId = job.job_id;
      cell(row, job.job_id, "mono job-id");
      cell(row, job.package_name || "", "package");
      const stateName = job.state === "Queued" ? "Assigned" : String(job.state || "");
      const stateCell = cell(row, stateName, "state state-" + (/^[A-Za-z]+$/.test(stateName) ? stateName.toLowerCase() : "unknown"));
      if (job.error) {
        const error = document.createElement("div");
        error.className = "job-error";
        error.textContent = job.error;
        stateCell.append(error);
      }
      cell(row, workerLabel(job.worker_id), "worker");
      const progress = job.progress || null;
      const progressCell = cell(row, "", "progress");
      if (progress && progress.epoch_count) {
        progressCell.textContent = (progress.config_count > 1 ? "config " + progress.config_index + "/" + progress.config_count + " · " : "") +
          "epoch " + (progress.epoch || 0) + "/" + progress.epoch_count + " ";
        const bar = document.createElement("progress");
        bar.max = 1;
        bar.value = Math.min(1, (progress.epoch || 0) / progress.epoch_count);
        progressCell.append(bar);
      }
      const lossCell = cell(row, progress && typeof progress.loss === "number" ? formatLoss(progress.loss) + " " : "", "loss");
      const history = progress && Array.isArray(progress.loss_history) ? progress.loss_history : [];
      if (history.length >= 2) {
        const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        svg.setAttribute("class", "sparkline");
        svg.setAttribute("viewBox", "0 0 120 28");
        svg.setAttribute("preserveAspectRatio", "none");
        svg.setAttribute("aria-hidden", "true");
        const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
        line.setAttribute("class", "spark");
        svg.append(line);
        drawSparkline(line, history);
        lossCell.append(svg);
      }
      body.append(row);
    }
  }

  // The submit panel (submit.js) follows the room through this in-page event: the credentials it registers with
  // and the workers as the server last reported them (sent after whole events only, never mid-snapshot).
  function announceRoom() {
    document.dispatchEvent(new CustomEvent("sleaprtc:room", {
      detail: { roomId: state.roomId, token: state.stopped ? null : state.token, workers: [...state.workers.values()] },
    }));
  }

  function clearWorkers() {
    state.workers.clear();
    state.jobs.clear();
    state.queue = [];
    state.queueLength = 0;
    renderQueue();
    renderJobs();
    for (const card of state.cards.values()) card.remove();
    state.cards.clear();
    renderSummary();
  }

  function markStale() {
    for (const card of state.cards.values()) {
      card.classList.add("stale");
      card.querySelector(".status-badge").textContent = "offline";
    }
  }

  function displayName(worker) {
    return worker.name || (worker.space && worker.space.name ? "space " + worker.space.name : worker.peer_id);
  }

  function upsertWorker(worker) {
    state.workers.set(worker.peer_id, worker);
    let card = state.cards.get(worker.peer_id);
    if (!card) {
      card = el("card-template").content.firstElementChild.cloneNode(true);
      card.dataset.peerId = worker.peer_id;
      state.cards.set(worker.peer_id, card);
    }
    fillCard(card, worker);
    placeCard(card, worker);
  }

  function placeCard(card, worker) {
    // Cards stay in name order so they do not jump around when a status changes.
    const container = el("workers");
    const key = displayName(worker).toLowerCase() + "\u0000" + worker.peer_id;
    let before = null;
    for (const other of container.children) {
      if (other === card) continue;
      const otherWorker = state.workers.get(other.dataset.peerId);
      if (!otherWorker) continue;
      const otherKey = displayName(otherWorker).toLowerCase() + "\u0000" + otherWorker.peer_id;
      if (otherKey > key) { before = other; break; }
    }
    if (card.parentNode !== container || card.nextElementSibling !== before) container.insertBefore(card, before);
  }

  function removeWorker(peerId) {
    state.workers.delete(peerId);
    const card = state.cards.get(peerId);
    if (card) card.remove();
    state.cards.delete(peerId);
  }

  function text(card, selector, value) {
    card.querySelector(selector).textContent = value == null ? "" : String(value);
  }

  function formatMemory(mb) {
    if (typeof mb !== "number" || mb <= 0) return "";
    return mb >= 1024 ? (mb / 1024).toFixed(1).replace(/\.0$/, "") + " GB" : mb + " MB";
  }

  function formatSince(iso) {
    const at = new Date(iso);
    if (isNaN(at.getTime())) return "";
    const seconds = Math.max(0, Math.round((Date.now() - at.getTime()) / 1000));
    if (seconds < 60) return "just now";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function formatRunning(iso) {
    const at = new Date(iso || "");
    if (isNaN(at.getTime())) return "";
    const minutes = Math.max(0, Math.floor((Date.now() - at.getTime()) / 60000));
    return minutes < 60 ? "running " + minutes + " min" : "running " + Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function formatLoss(value) {
    if (typeof value !== "number") return "";
    return Math.abs(value) >= 1e-4 || value === 0 ? String(Number(value.toPrecision(3))) : value.toExponential(2);
  }

  function fillCard(card, worker) {
    const status = String(worker.status || "unknown").toLowerCase();
    card.className = "card status-" + (/^[a-z]+$/.test(status) ? status : "unknown");
    text(card, ".name", displayName(worker));
    text(card, ".status-badge", status);
    text(card, ".peer-id", worker.peer_id);
    text(card, ".hostname", worker.hostname || "—");
    text(card, ".gpu-model", worker.gpu_model || "—");
    text(card, ".gpu-memory", formatMemory(worker.gpu_memory_mb));
    const connected = card.querySelector(".connected");
    connected.textContent = formatSince(worker.connected_at);
    connected.title = worker.connected_at || "";
    connected.dataset.at = worker.connected_at || "";

    const job = worker.job;
    card.querySelector(".job").hidden = !job;
    card.querySelector(".idle").hidden = !!job;
    if (!job) return;
    text(card, ".job-package", job.package_name || job.job_id || "training job");
    text(card, ".job-phase", job.phase ? "(" + job.phase + ")" : "");
    const running = card.querySelector(".job-running");
    running.dataset.since = job.started_at || "";
    running.textContent = formatRunning(job.started_at);
    text(card, ".job-config", job.config_count ? "config " + (job.config_index || 0) + " of " + job.config_count + (job.config_name ? " · " + job.config_name : "") : "");
    const epochText = job.epoch_count ? "epoch " + (job.epoch || 0) + " of " + job.epoch_count : (job.epoch != null ? "epoch " + job.epoch : "");
    text(card, ".job-epoch", epochText);
    const bar = card.querySelector(".job-progress");
    bar.hidden = !job.epoch_count;
    bar.value = job.epoch_count ? Math.min(1, (job.epoch || 0) / job.epoch_count) : 0;
    const lossParts = [];
    if (typeof job.loss === "number") lossParts.push("loss " + formatLoss(job.loss));
    if (typeof job.val_loss === "number") lossParts.push("val " + formatLoss(job.val_loss));
    text(card, ".job-loss", lossParts.join(" · "));
    drawSparkline(card.querySelector(".spark"), Array.isArray(job.loss_history) ? job.loss_history : []);
  }

  function drawSparkline(polyline, values) {
    const points = values.filter((v) => typeof v === "number" && isFinite(v));
    if (points.length < 2) { polyline.setAttribute("points", ""); return; }
    const min = Math.min(...points), max = Math.max(...points);
    const span = max - min || 1;
    const step = 120 / (points.length - 1);
    polyline.setAttribute("points", points.map((v, i) =>
      (i * step).toFixed(1) + "," + (26 - ((v - min) / span) * 24).toFixed(1)).join(" "));
  }

  function renderSummary() {
    const summary = el("summary");
    const workers = [...state.workers.values()];
    el("empty").hidden = !(state.roomId && !state.stopped && workers.length === 0 && el("connection").dataset.state === "live");
    summary.hidden = workers.length === 0;
    summary.replaceChildren();
    const counts = {};
    let memory = 0;
    for (const w of workers) {
      counts[w.status] = (counts[w.status] || 0) + 1;
      if (typeof w.gpu_memory_mb === "number") memory += w.gpu_memory_mb;
    }
    const add = (label, value) => {
      const span = document.createElement("span");
      const strong = document.createElement("strong");
      strong.textContent = String(value);
      span.append(strong, " " + label);
      summary.append(span);
    };
    add(workers.length === 1 ? "worker" : "workers", workers.length);
    for (const status of Object.keys(counts).sort()) add(status, counts[status]);
    if (memory > 0) add("GPU memory", formatMemory(memory));
  }

  // "Connected 5 min ago" ages without any server traffic.
  setInterval(() => {
    for (const node of document.querySelectorAll(".connected")) {
      if (node.dataset.at) node.textContent = formatSince(node.dataset.at);
    }
    for (const node of document.querySelectorAll(".job-running")) {
      if (node.dataset.since) node.textContent = formatRunning(node.dataset.since);
    }
    // Queue ages re-render with the queue (the "submitter away" mark lives in the same cell).
    if (state.queue.length) renderQueue();
  }, 15000);

  document.addEventListener("DOMContentLoaded", start);
})();
