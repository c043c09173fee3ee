// The inference page: tasks from GET v1/tasks, a form built from the chosen task, POST v1/predict,
// and the answer rendered (prediction, ranked answers as bars, the box over the image, latency).
// Plain browser JavaScript, no framework and nothing loaded from the network.
"use strict";

(function () {
  // Option names that hold a closed set of answers, in order of preference.
  const CLOSED_SET_OPTIONS = ["labels", "answers", "candidates", "classes"];

  const state = {
    tasks: [],        // from GET v1/tasks
    language: null,   // the model's language (from GET v1/tasks): the language select's default
    task: null,       // the chosen task
    closedSetKey: null,
    file: null,       // the chosen image (File or Blob)
    previewUrl: null,
    box: null,        // [x0, y0, x1, y1] in original image pixels, or null
    pending: null,    // AbortController of the request in flight
  };

  const $ = (id) => document.getElementById(id);

  // ---- small helpers ---------------------------------------------------------------------------

  function humanize(name) {
    const text = String(name).replace(/[_-]+/g, " ").trim();
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function show(element, visible) {
    element.hidden = !visible;
  }

  function setStatus(text) {
    $("status").textContent = text || "";
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message || "";
    show(box, Boolean(message));
  }

  async function errorMessage(response) {
    // The API answers errors as {"error": "one line"}; anything else is shown as text.
    let text = "";
    try {
      text = await response.text();
      const body = JSON.parse(text);
      if (body && typeof body.error === "string") return body.error;
      if (body && body.detail !== undefined) {
        return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      }
    } catch (ignored) { /* not JSON */ }
    const status = `${response.status} ${response.statusText || ""}`.trim();
    return text ? `${status}: ${text.slice(0, 300)}` : status;
  }

  function parseJsonObject(text, what) {
    if (!text.trim()) return {};
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new Error(`${what}: not valid JSON (${error.message})`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error(`${what}: must be a JSON object, e.g. {"name": value}`);
    }
    return value;
  }

  function lines(text) {
    return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line.length > 0);
  }

  // ---- tasks and the form ----------------------------------------------------------------------

  async function loadTasks() {
    const select = $("task");
    try {
      const response = await fetch("v1/tasks", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(await errorMessage(response));
      const body = await response.json();
      state.tasks = Array.isArray(body.tasks) ? body.tasks : [];
      state.language = typeof body.language === "string" ? body.language : null;
    } catch (error) {
      select.innerHTML = "";
      select.append(new Option("No tasks", ""));
      showError(`Could not load the tasks: ${error.message}`);
      return;
    }
    select.innerHTML = "";
    if (state.tasks.length === 0) {
      select.append(new Option("No tasks", ""));
      showError("The server offers no tasks.");
      return;
    }
    for (const task of state.tasks) select.append(new Option(task.name, task.name));
    const wanted = new URLSearchParams(window.location.search).get("task");
    const initial = state.tasks.find((task) => task.name === wanted)
      || state.tasks.find((task) => task.name === "caption") || state.tasks[0];
    select.value = initial.name;
    select.disabled = false;
    chooseTask(initial.name);
  }

  function chooseTask(name) {
    const task = state.tasks.find((candidate) => candidate.name === name) || null;
    state.task = task;
    $("send").disabled = !task;
    $("task-description").textContent = task && task.description ? task.description : "";
    buildLanguages(task);
    buildFields(task);
    buildClosedSet(task);
    $("options-json").value = "";
  }

  function buildLanguages(task) {
    const select = $("lang");
    const languages = task && Array.isArray(task.languages) ? task.languages : [];
    const previous = select.value;
    select.innerHTML = "";
    for (const lang of languages) select.append(new Option(lang, lang));
    if (languages.includes(previous)) select.value = previous;
    else if (languages.includes(state.language)) select.value = state.language;
    else if (languages.includes("en")) select.value = "en";
    show($("lang-field"), languages.length > 1);
  }

  function buildFields(task) {
    const container = $("fields");
    const previous = {};
    for (const input of container.querySelectorAll("[data-field]")) previous[input.dataset.field] = input.value;
    container.innerHTML = "";
    const fields = task && Array.isArray(task.fields) ? task.fields : [];
    for (const name of fields) {
      const wrapper = document.createElement("div");
      wrapper.className = "field";
      const id = `field-${name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = humanize(name);
      const input = document.createElement("input");
      input.type = "text";
      input.id = id;
      input.name = name;
      input.dataset.field = name;
      input.required = true;
      input.autocomplete = "off";
      if (name === "question") input.placeholder = "What is in the image?";
      if (previous[name]) input.value = previous[name];
      wrapper.append(label, input);
      container.append(wrapper);
    }
    show($("task-fields"), fields.length > 0);
  }

  function buildClosedSet(task) {
    const options = (task && task.options) || {};
    const keys = Object.keys(options);
    const key = task && task.closed_set
      ? (CLOSED_SET_OPTIONS.find((name) => keys.includes(name)) || null)
      : null;
    state.closedSetKey = key;
    const textarea = $("closed-set");
    if (key) {
      $("closed-set-label").textContent = `${humanize(key)} (one per line)`;
      textarea.name = key;
      const defaults = options[key];
      textarea.value = Array.isArray(defaults) ? defaults.join("\n") : "";
      textarea.placeholder = key === "labels" ? "cat\ndog\ncar" : "yes\nno";
      $("closed-set-hint").textContent = key === "labels"
        ? "The model picks among these labels; sent as the task option \u201clabels\u201d."
        : `Leave empty for an open-ended answer; sent as the task option \u201c${key}\u201d.`;
    }
    show($("closed-set-field"), Boolean(key));

    const topK = $("top-k");
    const hasTopK = Boolean(task && task.closed_set && keys.includes("top_k"));
    topK.value = hasTopK && Number.isInteger(options.top_k) && options.top_k > 1 ? String(options.top_k) : "";
    topK.placeholder = hasTopK ? "all" : "";
    show($("top-k-field"), hasTopK);
  }

  // ---- the image -------------------------------------------------------------------------------

  function setImage(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith("image/")) {
      showError(`${file.name || "That file"} is not an image.`);
      return;
    }
    showError("");
    state.file = file;
    state.box = null;
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = URL.createObjectURL(file);
    const img = $("preview");
    img.src = state.previewUrl;
    show($("preview-box"), true);
    const size = file.size !== undefined ? ` (${Math.round(file.size / 1024)} KiB)` : "";
    $("image-info").textContent = `${file.name || "Pasted image"}${size}`;
  }

  function setupImageInput() {
    const input = $("image");
    const zone = $("drop-zone");
    input.addEventListener("change", () => setImage(input.files && input.files[0]));

    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) setImage(file);
    });
    zone.addEventListener("keydown", (event) => {
      if (event.target === zone && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        input.click();
      }
    });
    document.addEventListener("paste", (event) => {
      const items = event.clipboardData ? Array.from(event.clipboardData.items) : [];
      const item = items.find((candidate) => candidate.kind === "file" && candidate.type.startsWith("image/"));
      if (item) setImage(item.getAsFile());
    });
    $("preview").addEventListener("load", drawBox);
    if (window.ResizeObserver) new ResizeObserver(drawBox).observe($("preview"));
    else window.addEventListener("resize", drawBox);
  }

  // ---- the request -----------------------------------------------------------------------------

  function buildRequest() {
    const task = state.task;
    if (!task) throw new Error("Pick a task first.");
    if (!state.file) throw new Error("Choose an image first.");
    const form = new FormData();
    form.append("image", state.file, state.file.name || "image.png");
    form.append("task", task.name);
    if ($("lang").value) form.append("lang", $("lang").value);
    for (const input of $("fields").querySelectorAll("[data-field]")) {
      if (!input.value.trim()) {
        input.focus();
        throw new Error(`${humanize(input.dataset.field)}: please fill it in.`);
      }
      form.append(input.dataset.field, input.value.trim());
    }
    const options = parseJsonObject($("options-json").value, "Other task options");
    if (state.closedSetKey) {
      const answers = lines($("closed-set").value);
      if (answers.length > 0) options[state.closedSetKey] = answers;
    }
    if (!$("top-k-field").hidden && $("top-k").value.trim()) {
      const k = Number($("top-k").value);
      if (!Number.isInteger(k) || k < 1) throw new Error("Top k: a whole number of at least 1.");
      options.top_k = k;
    }
    if (Object.keys(options).length > 0) form.append("options", JSON.stringify(options));
    const generation = parseJsonObject($("generation-json").value, "Generation settings");
    if (Object.keys(generation).length > 0) form.append("generation", JSON.stringify(generation));
    return form;
  }

  async function send(event) {
    if (event) event.preventDefault();
    showError("");
    let form;
    try {
      form = buildRequest();
    } catch (error) {
      showError(error.message);
      return;
    }
    if (state.pending) state.pending.abort();
    const controller = new AbortController();
    state.pending = controller;
    const button = $("send");
    button.disabled = true;
    $("result").setAttribute("aria-busy", "true");
    setStatus("Predicting…");
    const started = performance.now();
    try {
      const response = await fetch("v1/predict", { method: "POST", body: form, signal: controller.signal });
      if (!response.ok) throw new Error(await errorMessage(response));
      const result = await response.json();
      render(result, performance.now() - started);
      setStatus("Done.");
    } catch (error) {
      if (error.name === "AbortError") return;
      clearResult();
      showError(`Prediction failed: ${error.message}`);
      setStatus("");
    } finally {
      if (state.pending === controller) {
        state.pending = null;
        button.disabled = !state.task;
        $("result").removeAttribute("aria-busy");
      }
    }
  }

  // ---- the result ------------------------------------------------------------------------------

  function clearResult() {
    show($("placeholder"), true);
    for (const id of ["prediction-block", "box-block", "ranking-block"]) show($(id), false);
    $("ranking").innerHTML = "";
    $("latency").textContent = "";
    state.box = null;
    drawBox();
  }

  function softmax(scores) {
    const finite = scores.map((score) => (Number.isFinite(score) ? score : -Infinity));
    const max = Math.max(...finite);
    if (!Number.isFinite(max)) return scores.map(() => 1 / scores.length);
    const exps = finite.map((score) => Math.exp(score - max));
    const total = exps.reduce((sum, value) => sum + value, 0);
    return exps.map((value) => value / total);
  }

  function formatPrediction(prediction) {
    if (prediction === null || prediction === undefined) return "";
    if (typeof prediction === "string") return prediction;
    return JSON.stringify(prediction);
  }

  function validBox(box) {
    return Array.isArray(box) && box.length === 4 && box.every((value) => Number.isFinite(Number(value)));
  }

  // Renders an answer of POST v1/predict; `roundTripMs` (optional) is the time the browser waited.
  function render(result, roundTripMs) {
    showError("");
    result = result || {};
    show($("placeholder"), false);

    $("prediction").textContent = formatPrediction(result.prediction);
    show($("prediction-block"), result.prediction !== undefined && result.prediction !== null);

    const list = $("ranking");
    list.innerHTML = "";
    const ranking = Array.isArray(result.ranking) ? result.ranking : [];
    if (ranking.length > 0) {
      const scores = ranking.map((entry) => Number(entry.score));
      const probabilities = softmax(scores);
      ranking.forEach((entry, index) => {
        const item = document.createElement("li");
        item.className = index === 0 ? "rank top" : "rank";
        const answer = document.createElement("span");
        answer.className = "answer";
        answer.textContent = String(entry.answer);
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.setAttribute("role", "meter");
        bar.setAttribute("aria-valuemin", "0");
        bar.setAttribute("aria-valuemax", "100");
        const percent = probabilities[index] * 100;
        bar.setAttribute("aria-valuenow", percent.toFixed(1));
        bar.setAttribute("aria-label", `${entry.answer}: ${percent.toFixed(1)} percent`);
        const fill = document.createElement("span");
        fill.className = "fill";
        fill.style.width = `${Math.max(0, Math.min(100, percent))}%`;
        bar.append(fill);
        const numbers = document.createElement("span");
        numbers.className = "score";
        const raw = Number.isFinite(scores[index]) ? scores[index].toFixed(3) : String(entry.score);
        numbers.textContent = `${percent.toFixed(1)}% \u00b7 log-prob ${raw}`;
        item.append(answer, bar, numbers);
        list.append(item);
      });
    }
    show($("ranking-block"), ranking.length > 0);

    state.box = validBox(result.box) ? result.box.map(Number) : null;
    if (state.box) {
      const [x0, y0, x1, y1] = state.box.map((value) => Math.round(value * 10) / 10);
      $("box-text").textContent = `(${x0}, ${y0}) \u2013 (${x1}, ${y1}) in image pixels`;
    }
    show($("box-block"), Boolean(state.box));
    drawBox();

    const parts = [];
    if (Number.isFinite(Number(result.latency_ms))) parts.push(`Model: ${Number(result.latency_ms).toFixed(0)} ms`);
    if (Number.isFinite(roundTripMs)) parts.push(`round trip: ${roundTripMs.toFixed(0)} ms`);
    if (result.id !== undefined && result.id !== null) parts.push(`id ${result.id}`);
    $("latency").textContent = parts.join(" \u00b7 ");
  }

  // Draws state.box on the canvas laid over the preview, scaled from image pixels to the preview's size.
  function drawBox() {
    const img = $("preview");
    const canvas = $("overlay");
    const width = img.clientWidth;
    const height = img.clientHeight;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(width * ratio));
    canvas.height = Math.max(1, Math.round(height * ratio));
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (!state.box || !img.naturalWidth || !img.naturalHeight || !width || !height) return;
    const scaleX = (width / img.naturalWidth) * ratio;
    const scaleY = (height / img.naturalHeight) * ratio;
    const [x0, y0, x1, y1] = state.box;
    const left = Math.min(x0, x1) * scaleX;
    const top = Math.min(y0, y1) * scaleY;
    const boxWidth = Math.abs(x1 - x0) * scaleX;
    const boxHeight = Math.abs(y1 - y0) * scaleY;
    context.fillStyle = "rgba(255, 196, 0, 0.25)";
    context.fillRect(left, top, boxWidth, boxHeight);
    context.lineWidth = Math.max(2, 2 * ratio);
    context.strokeStyle = "rgb(255, 64, 0)";
    context.strokeRect(left, top, boxWidth, boxHeight);
  }

  // ---- start -----------------------------------------------------------------------------------

  function start() {
    $("task").addEventListener("change", (event) => chooseTask(event.target.value));
    $("predict-form").addEventListener("submit", send);
    setupImageInput();
    clearResult();
    loadTasks();
  }

  // For tests and the console: render a stubbed answer, read the state.
  window.OFAPage = { render, clearResult, showError, setImage, softmax, state };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
