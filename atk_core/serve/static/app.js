"use strict";
// atk serve: the page. Plain JS, no build step. Talks to the JSON API under /api/.
(() => {
  const POLL_MS = 700;
  const TOKEN_KEY = "atk-serve-token";

  // -- the token: accepted once from ?token=, then sent as a header --------------------------
  const query = new URLSearchParams(location.search);
  if (query.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, query.get("token"));
    query.delete("token");
    const rest = query.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  const token = () => sessionStorage.getItem(TOKEN_KEY);

  // -- small helpers ---------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const [name, ...classes] = tag.split(".");
    const el = document.createElement(name || "div");
    if (classes.length) el.className = classes.join(" ");
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = (el.className + " " + value).trim();
      else el.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child == null || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  async function api(path, options = {}) {
    const headers = {};
    if (token()) headers.Authorization = "Bearer " + token();
    let body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    let response;
    try {
      response = await fetch(path, { method: options.method || "GET", headers, body, cache: "no-store" });
    } catch (err) {
      banner("Lost contact with the server; retrying…");
      throw err;
    }
    if (response.status === 401) {
      banner("This server needs its token: open the URL atk serve printed (it ends in ?token=…). A new tab, or a tab opened before, needs that URL again.");
    } else {
      banner(null);
    }
    const isJson = (response.headers.get("content-type") || "").includes("json");
    const data = isJson ? await response.json() : null;
    if (!response.ok) {
      const error = new Error((data && data.detail) || response.statusText || "request failed");
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function banner(text) {
    const el = document.getElementById("banner");
    el.hidden = !text;
    el.textContent = text || "";
  }

  function toast(text) {
    const el = h("div.toast", { role: "status" }, text);
    document.body.append(el);
    setTimeout(() => el.remove(), 2600);
  }

  function poll(fn, ms = POLL_MS) {
    let stopped = false;
    let timer = null;
    const tick = async () => {
      if (stopped) return;
      try { await fn(); } catch (err) { /* shown in the banner; try again */ }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }

  const enc = (s) => encodeURIComponent(s);
  const pct = (p) => (p == null ? "–" : Math.floor(p * 100 + 1e-9) + "%");

  function duration(seconds) {
    if (seconds == null || !isFinite(seconds)) return "–";
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + "s";
    const m = Math.floor(seconds / 60), s = seconds % 60;
    if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
    const hrs = Math.floor(m / 60);
    return `${hrs}h ${String(m % 60).padStart(2, "0")}m`;
  }

  function ago(unix) {
    if (!unix) return "";
    const s = Date.now() / 1000 - unix;
    if (s < 45) return "just now";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return new Date(unix * 1000).toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }

  function clock(unix) {
    if (!unix) return "–";
    const d = new Date(unix * 1000);
    const sameDay = d.toDateString() === new Date().toDateString();
    const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return sameDay ? time : d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + time;
  }

  function elapsed(run) {
    if (!run.started) return null;
    return (run.finished || Date.now() / 1000) - run.started;
  }

  function bytes(n) {
    if (n < 1024) return n + " B";
    const units = ["KB", "MB", "GB", "TB"];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return n.toFixed(n < 10 ? 1 : 0) + " " + units[i];
  }

  const ACTIVE = new Set(["queued", "running"]);

  function pill(status) {
    return h("span.pill." + status, { "data-status": status }, status);
  }

  function bar(big) {
    const fill = h("div.fill");
    const el = h("div.bar" + (big ? ".big" : ""), { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, fill);
    let first = true;
    el.set = (status, progress) => {
      el.className = "bar " + status + (big ? " big" : "");
      const value = progress == null ? 0 : Math.max(0, Math.min(1, progress));
      if (first) {  // show where it is at once; animate only what changes afterwards
        first = false;
        fill.style.transition = "none";
        requestAnimationFrame(() => requestAnimationFrame(() => { fill.style.transition = ""; }));
      }
      fill.style.width = (value * 100).toFixed(2) + "%";
      el.setAttribute("aria-valuenow", String(Math.round(value * 100)));
    };
    return el;
  }

  function fileUrl(runId, path) {
    return `/api/runs/${enc(runId)}/files/${path.split("/").map(enc).join("/")}`;
  }

  function downloadButton(runId, path, label = "Download") {
    const name = path.split("/").pop();
    if (!token()) {
      return h("a.btn.small", { href: fileUrl(runId, path), download: name, "data-file": path }, label);
    }
    // With a token the request must carry the header, so fetch it and hand the browser a blob.
    return h("button.btn.small", {
      type: "button", "data-file": path,
      onclick: async () => {
        const response = await fetch(fileUrl(runId, path), { headers: { Authorization: "Bearer " + token() } });
        if (!response.ok) { toast("Download failed: " + response.status); return; }
        const url = URL.createObjectURL(await response.blob());
        const a = h("a", { href: url, download: name });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      },
    }, label);
  }

  // -- views -----------------------------------------------------------------------------------
  const view = document.getElementById("view");
  let stopView = null;

  function show(...children) {
    view.replaceChildren(...children);
  }

  function setNav(name) {
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === name);
    }
  }

  function route() {
    if (stopView) stopView();
    stopView = null;
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, search] = hash.split("?");
    const params = new URLSearchParams(search || "");
    let m;
    window.scrollTo(0, 0);
    if ((m = path.match(/^\/runs\/([^/]+)$/))) {
      setNav("runs");
      stopView = runView(decodeURIComponent(m[1]));
    } else if ((m = path.match(/^\/new(?:\/([^/]+))?$/))) {
      setNav("new");
      stopView = newRunView(m[1] ? decodeURIComponent(m[1]) : null);
    } else {
      setNav("runs");
      stopView = dashboard(params.get("fresh"));
    }
  }

  // -- the dashboard: runs with live bars, and the installed pipelines ----------------------------
  function dashboard(fresh) {
    const summary = h("div.sub", {}, "Loading runs…");
    const list = h("ul.runs", { id: "runs" });
    const empty = h("div.empty", { hidden: true },
      h("strong", {}, "No runs yet"),
      "Pick a pipeline on the right and start one; its progress shows up here.");
    const count = h("span.count");
    const pipelines = h("ul.pipelines", { id: "pipelines" });

    show(
      h("div.page-head", {},
        h("div", {}, h("h1", {}, "Runs"), summary),
        h("div.actions", {}, h("a.btn.primary", { href: "#/new" }, "+ New run"))),
      h("div.grid-dash", {},
        h("section.card", {},
          h("div.card-head", {}, h("h2", {}, "All runs"), count,
            h("span.right", {}, h("span.live", {}, "live"))),
          list, empty),
        h("section.card", {},
          h("div.card-head", {}, h("h2", {}, "Pipelines")),
          pipelines)));

    api("/api/pipelines").then((items) => {
      pipelines.replaceChildren(...(items.length ? items.map((p) =>
        h("li.pipeline-item", { "data-pipeline": p.name },
          h("div.top", {},
            h("span.name", {}, p.name),
            h("a.btn.small.go", { href: "#/new/" + enc(p.name) }, "New run")),
          p.description ? h("div.desc", {}, p.description) : null,
          p.distribution ? h("div.dist", {}, p.distribution + (p.version ? " " + p.version : "")) : null))
        : [h("li.empty", {}, h("strong", {}, "No pipelines installed"), "pip install a pipeline, then restart atk serve.")]));
    }).catch(() => {});

    const rows = new Map();
    function row(run) {
      let entry = rows.get(run.id);
      if (!entry) {
        const status = h("div");
        const progress = bar(false);
        const percent = h("span.pct");
        const message = h("div.msg");
        const time = h("div.run-time");
        const el = h("a.run-row", { href: "#/runs/" + enc(run.id), "data-run": run.id },
          status,
          h("div.run-name", {}, h("div.pipeline", {}, run.pipeline), h("div.rid", {}, run.id)),
          h("div.run-progress", {}, h("div.line", {}, progress, percent), message),
          time);
        if (run.id === fresh) el.classList.add("fresh");
        entry = { el, status, progress, percent, message, time, last: "" };
        rows.set(run.id, entry);
      }
      const key = run.status;
      if (entry.last !== key) {
        entry.status.replaceChildren(pill(run.status));
        entry.el.dataset.status = run.status;
        entry.last = key;
      }
      entry.progress.set(run.status, run.progress);
      entry.percent.textContent = pct(run.progress);
      const text = run.status === "failed" && run.error ? run.error : (run.message || "");
      entry.message.textContent = text || "\u00a0";
      entry.message.title = text;
      entry.message.classList.toggle("err", run.status === "failed");
      entry.time.replaceChildren(duration(elapsed(run)), h("div.when", {}, ago(run.created)));
      return entry.el;
    }

    return poll(async () => {
      const runs = await api("/api/runs");
      list.replaceChildren(...runs.map(row));
      empty.hidden = runs.length > 0;
      count.textContent = runs.length ? String(runs.length) : "";
      const by = {};
      for (const r of runs) by[r.status] = (by[r.status] || 0) + 1;
      const parts = ["running", "queued", "done", "failed", "interrupted", "cancelled"]
        .filter((s) => by[s]).map((s) => `${by[s]} ${s}`);
      summary.textContent = parts.length ? parts.join(" · ") : "Nothing has run yet";
    });
  }

  // -- a new run: pick a pipeline, edit its template, start it --------------------------------------
  function newRunView(chosen) {
    const select = h("select", { id: "pipeline-select", "aria-label": "Pipeline" });
    const gutter = h("pre.gutter", { "aria-hidden": "true" });
    const editor = h("textarea", { id: "config-editor", spellcheck: "false", autocomplete: "off",
      autocapitalize: "off", "aria-label": "Run config (YAML)" });
    const checkBox = h("div.check", { id: "config-check" });
    const start = h("button.btn.primary", { id: "start-run", type: "button" }, "Start run");
    const checkButton = h("button.btn", { type: "button" }, "Check config");
    const reset = h("button.btn.ghost", { type: "button" }, "Reset to template");
    const where = h("code");
    const runsDir = h("code");
    let badLine = null;
    let template = "";
    let checkSeq = 0;
    let loadSeq = 0;
    let requested = null;
    let timer = null;

    show(
      h("div.page-head", {},
        h("div", {}, h("h1", {}, "New run"),
          h("div.sub", {}, "Pick a pipeline, edit its config, start it. The config is checked as ",
            h("code", {}, "atk run"), " would."))),
      h("div.new-grid", {},
        h("section.card", {},
          h("div.card-body", {},
            h("div.field", {}, h("label", { for: "pipeline-select" }, "Pipeline"), select),
            h("div.field", {}, h("label", { for: "config-editor" }, "Config"),
              h("div.editor", {}, gutter, editor)),
            checkBox,
            h("div.form-actions", {}, start, checkButton, reset,
              h("span.hint", {}, "Ctrl+Enter starts the run")))),
        h("aside.card.aside", {},
          h("div.card-body", {},
            h("h3", {}, "Where things go"),
            h("p", {}, "Each run gets its own folder in ", runsDir,
              ": the config as you wrote it, the log, and ", h("code", {}, "output/"),
              ", which replaces the config's output_dir. Outputs are downloaded from the run's page."),
            h("h3", {}, "Relative paths"),
            h("p", {}, "input_dir and other paths start from the folder atk serve runs in: ", where, "."),
            h("h3", {}, "Secrets"),
            h("p", {}, "Write keys as ", h("code", {}, "${OPENAI_API_KEY}"),
              "; they come from the server's environment and are shown redacted."),
            h("h3", {}, "Resume"),
            h("p", {}, "A cancelled, failed or interrupted run can be resumed: answers already in its store are not asked again.")))));

    api("/api/info").then((info) => { where.textContent = info.cwd; runsDir.textContent = info.runs_dir; }).catch(() => {});

    function lines() {
      const n = editor.value.split("\n").length;
      const out = [];
      for (let i = 1; i <= n; i++) {
        out.push(i === badLine ? h("span.bad", {}, String(i)) : String(i));
        out.push("\n");
      }
      gutter.replaceChildren(...out);
      gutter.scrollTop = editor.scrollTop;
    }

    function setCheck(state, text) {
      checkBox.className = "check " + (state || "");
      checkBox.replaceChildren(
        h("span.icon", {}, state === "ok" ? "✓" : state === "error" || state === "ok warn" ? "!" : "…"),
        h("span.text", { id: "config-error" }, text));
      const m = state === "error" ? /line (\d+)/.exec(text) : null;
      badLine = m ? Number(m[1]) : null;
      lines();
    }

    async function check() {
      const seq = ++checkSeq;
      try {
        const result = await api("/api/validate", { method: "POST", json: { config: editor.value } });
        if (seq !== checkSeq) return null;
        if (result.ok && result.warnings.length) setCheck("ok warn", result.warnings.join(" "));
        else if (result.ok) setCheck("ok", `Looks good: runs ${result.pipeline}.`);
        else setCheck("error", result.error);
        return result;
      } catch (err) {
        if (seq === checkSeq) setCheck("error", err.message);
        return null;
      }
    }

    // The template arrives asynchronously: only the latest request counts, and text typed while
    // it was on its way is kept (the template is then one "Reset to template" away).
    async function load(name) {
      if (!name) return;
      const seq = ++loadSeq;
      const before = editor.value;
      requested = name;
      try {
        const t = await api(`/api/pipelines/${enc(name)}/template`);
        if (seq !== loadSeq) return;
        template = t.template;
        if (editor.value !== before) return;
        editor.value = template;
        editor.scrollTop = 0;
        lines();
        check();
      } catch (err) {
        if (seq !== loadSeq) return;
        requested = null;  // choosing it again tries again
        setCheck("error", err.message);
      }
    }

    async function submit() {
      start.disabled = true;
      clearTimeout(timer);
      checkSeq++;
      setCheck("", "Checking and starting…");
      try {
        const run = await api("/api/runs", { method: "POST", json: { config: editor.value } });
        toast(`Started ${run.pipeline}`);
        location.hash = "#/?fresh=" + enc(run.id);
      } catch (err) {
        setCheck("error", err.message);
        start.disabled = false;
      }
    }

    editor.addEventListener("input", () => {
      lines();
      clearTimeout(timer);
      timer = setTimeout(check, 600);
    });
    editor.addEventListener("scroll", () => { gutter.scrollTop = editor.scrollTop; });
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submit();
      } else if (event.key === "Tab" && !event.shiftKey) {
        event.preventDefault();
        editor.setRangeText("  ", editor.selectionStart, editor.selectionEnd, "end");
        editor.dispatchEvent(new Event("input"));
      }
    });
    select.addEventListener("change", () => {
      if (select.value === requested) return;
      if (editor.value !== template && !confirm("Replace your edits with this pipeline's template?")) return;
      history.replaceState(null, "", "#/new/" + enc(select.value));
      load(select.value);
    });
    start.addEventListener("click", submit);
    checkButton.addEventListener("click", check);
    reset.addEventListener("click", () => { editor.value = template; lines(); check(); });

    setCheck("", "Choose a pipeline to start from its template.");
    api("/api/pipelines").then((items) => {
      select.replaceChildren(...items.map((p) => h("option", { value: p.name }, p.name)));
      if (!items.length) {
        setCheck("error", "No pipelines are installed.");
        start.disabled = true;
        return;
      }
      const name = items.some((p) => p.name === chosen) ? chosen : items[0].name;
      select.value = name;
      load(name);
    }).catch(() => {});

    return () => clearTimeout(timer);
  }

  // -- one run: its bar, counts, files, log and config --------------------------------------------------
  function runView(runId) {
    const title = h("h1", {}, "Run");
    const status = h("span");
    const actions = h("div.actions");
    const progress = bar(true);
    const percent = h("span.pct");
    const message = h("div.msg");
    const errorBox = h("div.error-box", { hidden: true });
    const facts = h("div.facts");
    const steps = h("div", { id: "steps" });
    const models = h("section.card", { hidden: true });
    const files = h("ul.files", { id: "files" });
    const filesCount = h("span.count");
    const funnel = h("div", { id: "funnel" });
    const evals = h("div.evals", { id: "evals", hidden: true });
    const reader = dataReader(runId);
    const log = h("pre.log", { id: "log" });
    const logMeta = h("span.right");
    const config = h("pre", { id: "config" });
    let lastStatus = null;
    let logDone = false;

    show(
      h("a.crumb", { href: "#/" }, "← All runs"),
      h("section.card.hero", {},
        h("div.run-head", {}, title, status, h("span.rid", {}, runId), actions),
        h("div.line", {}, progress, percent),
        message, errorBox, facts),
      h("div.grid-2", {},
        h("div.stack", {},
          h("section.card", {}, h("div.card-head", {}, h("h2", {}, "Steps"),
            h("span.right", {}, "from manifest.json")), h("div.card-body", {}, steps)),
          models),
        h("div.stack", {},
          h("section.card", {}, h("div.card-head", {}, h("h2", {}, "Output files"), filesCount), files))),
      evals,
      h("section.card.funnel-card", {}, h("div.card-head", {}, h("h2", {}, "Funnel"),
        h("span.right", {}, "samples into and out of each step")), h("div.card-body", {}, funnel)),
      reader.card,
      h("section.card", { style: null, class: "log-card" },
        h("div.card-head", {}, h("h2", {}, "Log"), logMeta), log),
      h("details.card.config", {}, h("summary", {}, "Config ", h("span.count", {}, "(secrets redacted)")), config));
    for (const el of view.querySelectorAll(".log-card, details.config, .funnel-card, .data-card")) {
      el.style.marginTop = "20px";
    }
    view.querySelector(".grid-2").style.marginTop = "0";

    function fact(k, v, mono) {
      return h("div.fact", {}, h("div.k", {}, k), h("div.v" + (mono ? ".mono" : ""), {}, v));
    }

    function renderActions(run) {
      const buttons = [];
      if (run.can_cancel) {
        buttons.push(h("button.btn.danger", { id: "cancel-run", type: "button", onclick: async (e) => {
          e.currentTarget.disabled = true;
          try { await api(`/api/runs/${enc(runId)}/cancel`, { method: "POST" }); toast("Cancelling…"); }
          catch (err) { toast(err.message); }
        } }, "Cancel run"));
      }
      if (run.can_resume) {
        buttons.push(h("button.btn.primary", { id: "resume-run", type: "button", onclick: async (e) => {
          e.currentTarget.disabled = true;
          try {
            await api(`/api/runs/${enc(runId)}/resume`, { method: "POST" });
            toast("Resumed"); logDone = false; last = null;  // look again at once
          } catch (err) { toast(err.message); e.currentTarget.disabled = false; }
        } }, "Resume"));
      }
      actions.replaceChildren(...buttons);
    }

    function renderSteps(manifest) {
      if (!manifest || !manifest.steps.length) {
        steps.replaceChildren(h("div.empty", {}, "Counts appear when the pipeline writes its manifest."));
        return;
      }
      const widest = Math.max(1, ...manifest.steps.map((s) => s.inputs));
      steps.replaceChildren(h("table.counts", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Step"), h("th.n", {}, "In"), h("th.n", {}, "Out"), h("th.n", {}, "Dropped"))),
        h("tbody", {}, manifest.steps.map((s) => {
          const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
          const said = [...Object.entries(s.dropped), ...Object.entries(s.notes || {})];
          const keep = h("span.keep");
          keep.style.width = Math.max(2, Math.round(48 * s.outputs / widest)) + "px";
          return h("tr", { "data-step": s.name },
            h("td.step", {}, s.name,
              said.length ? h("div.reasons", {}, said.map(([why, n]) =>
                h("span.reason", { title: why }, `${n} × ${why}`))) : null),
            h("td.n", {}, s.inputs),
            h("td.n", {}, keep, s.outputs),
            h("td.n" + (dropped ? "" : ".zero"), {}, dropped));
        }))));
    }

    function renderModels(run) {
      // While a run goes, its latest progress event says what it has used so far, with the
      // projected cost of the whole run; once it has written its manifest, that says it all.
      const live = ACTIVE.has(run.status) && run.usage.length;
      const items = live ? run.usage : (run.manifest ? run.manifest.models : []);
      models.hidden = !items.length;
      if (!items.length) return;
      models.replaceChildren(
        h("div.card-head", {}, h("h2", {}, live ? "Models, so far" : "Models")),
        h("div.card-body.models", {}, items.map((m) => h("div.model", { "data-role": m.role },
          h("span.role", {}, m.role),
          h("span.what", {}, [m.backend, m.model].filter(Boolean).join(" · ")),
          h("span.nums", {}, `${m.requests_sent} sent · ${m.answers_from_store} from store · `
            + `${(m.prompt_tokens + m.completion_tokens).toLocaleString()} tokens`
            + (m.cost != null ? ` · $${m.cost.toFixed(4)}` : "")
            + (live && m.projected_cost != null ? ` · ~$${m.projected_cost.toFixed(4)} projected in all` : ""))))));
    }

    function renderFiles(run) {
      const primary = run.manifest && run.manifest.primary_output;
      filesCount.textContent = run.files.length ? String(run.files.length) : "";
      if (!run.files.length) {
        files.replaceChildren(h("li.empty", {}, ACTIVE.has(run.status)
          ? "Files appear here as the run writes them." : "This run wrote no files."));
        return;
      }
      files.replaceChildren(...run.files.map((f) => {
        const suffix = f.path.includes(".") ? f.path.split(".").pop().toLowerCase() : "";
        const ext = ({ sqlite: "DB", sqlite3: "DB", db: "DB", yaml: "YAML", yml: "YAML" })[suffix]
          || suffix.slice(0, 5).toUpperCase() || "FILE";
        const records = run.manifest && run.manifest.outputs[f.path];
        const kind = run.manifest && run.manifest.kinds && run.manifest.kinds[f.path];
        return h("li.file", { "data-path": f.path },
          h("span.icon", {}, ext),
          h("div.grow", {},
            h("div.fname", { title: f.path }, f.path, f.path === primary ? h("span.star", {}, "main output") : null),
            h("div.fmeta", {}, bytes(f.size) + (records != null ? ` · ${records.toLocaleString()} records` : "")
              + (kind ? ` · ${kind}` : ""))),
          downloadButton(runId, f.path));
      }));
    }

    async function refresh() {
      const run = await api(`/api/runs/${enc(runId)}`);
      title.textContent = run.pipeline;
      document.title = `${run.pipeline} · ${run.status} · atk serve`;
      if (run.status !== lastStatus) {
        status.replaceChildren(pill(run.status));
        lastStatus = run.status;
      }
      renderActions(run);
      progress.set(run.status, run.progress);
      percent.textContent = pct(run.progress);
      const repeated = run.error && run.message && run.error.includes(run.message);
      message.textContent = (!repeated && run.message) || "\u00a0";
      errorBox.hidden = !run.error;
      errorBox.textContent = run.error || "";
      facts.replaceChildren(
        fact("Started", clock(run.started)),
        fact(run.finished ? "Took" : "Running for", duration(elapsed(run))),
        fact("Attempts", run.attempts),
        fact("Exit status", run.exit_code == null ? "–" : run.exit_code),
        fact("Output folder", run.output_dir, true));
      renderSteps(run.manifest);
      renderFunnel(funnel, run.manifest);
      renderEvals(evals, run.evals);
      renderModels(run);
      renderFiles(run);
      reader.update(run);
      if (config.textContent !== run.config) config.textContent = run.config;
      return run;
    }

    async function refreshLog(active) {
      const tail = await api(`/api/runs/${enc(runId)}/log`);
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      const lines = tail.text.split("\n");
      log.replaceChildren(...lines.map((line, i) => {
        const text = line + (i < lines.length - 1 ? "\n" : "");
        if (line.startsWith("atk: error") || line.includes("Traceback")) return h("span.err", {}, text);
        if (line.startsWith("# ")) return h("span.note", {}, text);
        return text;
      }));
      if (!tail.text) log.textContent = "(nothing logged yet)";
      if (atBottom) log.scrollTop = log.scrollHeight;
      logMeta.replaceChildren(active ? h("span.live", {}, "live") : "",
        bytes(tail.size) + (tail.truncated ? " · showing the end" : ""));
    }

    let ticks = 0;
    let last = null;
    return poll(async () => {
      // A finished run changes only if it is resumed: look every few ticks, not every one
      // (each look walks its output folder and reads its manifest).
      if (last && !ACTIVE.has(last.status) && ticks++ % 6 !== 0) return;
      let run;
      try {
        run = last = await refresh();
      } catch (err) {
        if (err.status === 404) {
          show(h("a.crumb", { href: "#/" }, "← All runs"),
            h("div.card.empty", {}, h("strong", {}, "No such run"), runId));
        }
        throw err;
      }
      const active = ACTIVE.has(run.status);
      if (active || !logDone) {
        await refreshLog(active);
        if (!active) logDone = true;
      }
    });
  }

  // -- a run's data: its funnel as a chart, its records page by page -------------------------------
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
    for (const child of children.flat()) if (child != null) el.append(child);
    return el;
  }

  // One bar per step: its length is the samples that went in, the kept part in colour, the
  // dropped part hatched; the reasons are in the tooltip and under the chart.
  function renderFunnel(target, manifest) {
    const steps = (manifest && manifest.steps) || [];
    const key = JSON.stringify(steps);
    if (target.dataset.key === key) return;  // redraw only when the counts change
    target.dataset.key = key;
    if (!steps.length) {
      target.replaceChildren(h("div.empty", {}, "The funnel appears when the pipeline writes its manifest."));
      return;
    }
    const widest = Math.max(1, ...steps.map((s) => Math.max(s.inputs, s.outputs)));
    const label = 130, width = 560, row = 26, gap = 8;
    const chart = svg("svg", { viewBox: `0 0 ${label + width + 90} ${steps.length * (row + gap)}`,
      width: label + width + 90,
      role: "img", "aria-label": "Samples in and out of each step", class: "funnel" });
    steps.forEach((s, i) => {
      const y = i * (row + gap);
      const inner = Math.max(1, Math.round(width * s.inputs / widest));
      const kept = Math.round(width * Math.min(s.outputs, s.inputs || s.outputs) / widest);
      const dropped = Object.entries(s.dropped);
      const why = dropped.map(([k, n]) => `${n} ${k}`).join(", ");
      chart.append(svg("g", { class: "funnel-step", "data-step": s.name },
        svg("title", {}, `${s.name}: ${s.inputs} in, ${s.outputs} out` + (why ? `; dropped: ${why}` : "")),
        svg("text", { x: label - 8, y: y + row / 2 + 4, "text-anchor": "end", class: "funnel-label" }, s.name),
        svg("rect", { x: label, y, width: inner, height: row, rx: 4, class: "funnel-in" }),
        svg("rect", { x: label, y, width: Math.max(kept, s.outputs ? 2 : 0), height: row, rx: 4,
          class: "funnel-out", "data-out": s.outputs }),
        svg("text", { x: label + inner + 8, y: y + row / 2 + 4, class: "funnel-count" },
          `${s.inputs} → ${s.outputs}`)));
    });
    const reasons = steps.filter((s) => Object.keys(s.dropped).length).map((s) =>
      h("li", {}, h("strong", {}, s.name), " ",
        Object.entries(s.dropped).map(([k, n]) => `${n} × ${k}`).join(" · ")));
    target.replaceChildren(chart, ...(reasons.length ? [h("ul.funnel-reasons", {}, reasons)] : []));
  }

  // -- a run's evals: `atk eval` of its exam, a table and a chart per eval ----------------------------
  const share = (s) => (s == null || s.accuracy == null ? "-"
    : `${Math.round(100 * s.accuracy)}% (${s.correct}/${s.total})`);
  const interval = (s) => (s == null || s.accuracy == null || !s.interval ? "-"
    : `${Math.round(100 * s.interval[0])}–${Math.round(100 * s.interval[1])}%`);

  function renderEvals(target, evals) {
    evals = evals || [];
    const key = JSON.stringify(evals);
    if (target.dataset.key === key) return;  // redraw only when an eval changes
    target.dataset.key = key;
    target.hidden = !evals.length;
    target.replaceChildren(...evals.map((e) => h("section.card.eval-card", { "data-eval": e.name },
      h("div.card-head", {}, h("h2", {}, "Eval"), h("span.count.mono", {}, e.name ? e.name + "/" : "this run"),
        h("span.right", {}, `${e.questions} questions · ${e.seen} seen in training · ${e.held_out} held out`)),
      h("div.card-body.eval-grid", {}, evalTable(e), h("div.eval-chart", {}, evalChart(e))))));
  }

  function evalTable(e) {
    const judged = e.results.some((r) => r.judge);
    const cell = (col, s, more) => h("td.n", { "data-col": col }, h("span.value", {}, share(s)), more);
    return h("table.counts.eval-table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Model"), h("th", {}, "Book"),
        h("th.n", { title: "scored by the rule, with its 95% interval" }, "Correct"),
        h("th.n", { title: "facts the training data taught" }, "Seen"),
        h("th.n", { title: "facts held out of the training data" }, "Held out"),
        judged ? h("th.n", { title: "the judge model's verdicts, beside the rule's" }, "Judge says") : null)),
      h("tbody", {}, e.results.map((r) => h("tr", { "data-model": r.name, "data-book": r.book },
        h("td.model", { "data-col": "model" }, h("span.name", {}, r.name),
          r.model ? h("span.what", {}, r.model) : null),
        h("td", { "data-col": "book" }, r.book),
        cell("correct", r, h("span.ci", { title: "95% interval" }, interval(r))),
        cell("seen", r.seen),
        cell("held_out", r.held_out),
        judged ? h("td.n", { "data-col": "judge", title: r.judge && r.judge.agrees_with_rule != null
          ? `agrees with the rule on ${Math.round(100 * r.judge.agrees_with_rule)}% of answers` : null },
        h("span.value", {}, share(r.judge))) : null))));
  }

  // One bar per model and book, as tall as its accuracy, its 95% interval drawn as an error bar.
  function evalChart(e) {
    const names = [...new Set(e.results.map((r) => r.name))];
    const books = e.books;
    const left = 40, top = 18, plot = 180, bottom = books.length > 1 ? 44 : 30;
    const barWidth = 34, gap = 6;
    const group = books.length * barWidth + (books.length - 1) * gap;
    const slot = Math.max(group + 28, 100);  // a model's room: its bars, centred, and its name
    const width = Math.max(240, left + 8 + names.length * slot + 8);
    const y = (v) => top + plot * (1 - v);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${top + plot + bottom}`, width,
      role: "img", "aria-label": "Accuracy of each model, per book, with its 95% interval", class: "eval-bars" });
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      chart.append(svg("line", { x1: left, x2: width - 8, y1: y(v), y2: y(v), class: "eval-grid-line" }),
        svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "eval-axis" }, Math.round(v * 100) + "%"));
    }
    names.forEach((name, i) => {
      const x0 = left + 8 + i * slot + (slot - group) / 2;
      const most = Math.floor(slot / 7);
      chart.append(svg("text", { x: x0 + group / 2, y: top + plot + bottom - 8, "text-anchor": "middle",
        class: "eval-model" }, svg("title", {}, name), name.length > most ? name.slice(0, most - 1) + "…" : name));
      books.forEach((book, j) => {
        const r = e.results.find((x) => x.name === name && x.book === book);
        if (!r) return;
        const x = x0 + j * (barWidth + gap), mid = x + barWidth / 2;
        const known = r.accuracy != null;
        const value = known ? r.accuracy : 0;
        const g = svg("g", { class: "eval-item" },
          svg("title", {}, `${name}, ${book} book: ${share(r)}` + (known && r.interval ? `, 95% interval ${interval(r)}` : "")),
          svg("rect", { x, y: y(value), width: barWidth, height: plot * value, class: `eval-bar ${book === "open" ? "open" : "closed"}`,
            "data-model": name, "data-book": book, "data-accuracy": known ? value : "" }));
        let label = y(value) - 5;
        if (known && r.interval) {
          const [lo, hi] = r.interval;
          g.append(svg("g", { class: "eval-interval", "data-model": name, "data-book": book },
            svg("line", { x1: mid, x2: mid, y1: y(hi), y2: y(lo) }),
            svg("line", { x1: mid - 6, x2: mid + 6, y1: y(hi), y2: y(hi) }),
            svg("line", { x1: mid - 6, x2: mid + 6, y1: y(lo), y2: y(lo) })));
          label = Math.min(label, y(hi) - 5);
        }
        g.append(svg("text", { x: mid, y: label, "text-anchor": "middle", class: "eval-value" },
          known ? Math.round(100 * value) + "%" : "-"));
        if (books.length > 1) {
          g.append(svg("text", { x: mid, y: top + plot + 14, "text-anchor": "middle", class: "eval-book" }, book));
        }
        chart.append(g);
      });
    });
    return chart;
  }

  // The output files' records (and failures.jsonl, with reasons), a page at a time.
  function dataReader(runId) {
    const PAGE = 10;
    const select = h("select", { id: "data-file", "aria-label": "File to read" });
    const where = h("span.count", { id: "data-where" });
    const list = h("ol.records", { id: "records" });
    const prev = h("button.btn", { id: "data-prev", type: "button", disabled: true }, "← Previous");
    const next = h("button.btn", { id: "data-next", type: "button", disabled: true }, "Next →");
    let file = null, offset = 0, total = 0, known = "";

    async function load() {
      if (!file) return;
      const page = await api(`/api/runs/${enc(runId)}/records?file=${enc(file)}&offset=${offset}&limit=${PAGE}`);
      total = page.total;
      where.textContent = total ? `${offset + 1}–${offset + page.records.length} of ${total}` : "empty";
      prev.disabled = offset === 0;
      next.disabled = offset + PAGE >= total;
      list.start = offset + 1;
      list.replaceChildren(...(page.records.length ? page.records.map(renderRecord)
        : [h("li.empty", {}, `${file} holds no records.`)]));
    }
    prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load().catch(() => {}); });
    next.addEventListener("click", () => { offset += PAGE; load().catch(() => {}); });
    select.addEventListener("change", () => { file = select.value; offset = 0; load().catch(() => {}); });

    function update(run) {
      const names = run.files.map((f) => f.path).filter((p) => p.endsWith(".jsonl") && p !== "progress.jsonl");
      const kinds = (run.manifest && run.manifest.kinds) || {};
      const seen = names.map((n) => `${n} ${kinds[n] || ""}`).join("\n");
      if (seen === known) return;
      known = seen;
      const primary = run.manifest && run.manifest.primary_output;
      select.replaceChildren(...names.map((n) => h("option", { value: n }, kinds[n] ? `${n} (${kinds[n]})` : n)));
      card.hidden = !names.length;
      if (!names.includes(file)) file = names.includes(primary) ? primary : names[0] || null;
      if (file) select.value = file;
      offset = 0;
      load().catch(() => {});
    }

    const card = h("section.card.data-card", { hidden: true },
      h("div.card-head", {}, h("h2", {}, "Data"), select, where),
      h("div.card-body", {}, list, h("div.pager", {}, prev, next)));
    return { card, update };
  }

  function renderRecord(record) {
    let turns = null;
    if (record && Array.isArray(record.conversations)) turns = record.conversations.map((t) => [t.from, t.value]);
    else if (record && Array.isArray(record.messages)) turns = record.messages.map((t) => [t.role, t.content]);
    else if (record && ["prompt", "chosen", "rejected"].every((k) => Array.isArray(record[k]))) {
      turns = record.prompt.map((t) => [t.role, t.content])
        .concat(record.chosen.map((t) => ["chosen " + t.role, t.content]),
                record.rejected.map((t) => ["rejected " + t.role, t.content]));
    }
    if (turns) {
      return h("li.record", {}, turns.map(([who, text]) =>
        h("div.turn", { "data-role": who }, h("span.who", {}, who), h("span.text", {}, text))));
    }
    if (record && typeof record === "object" && "reason" in record && "step" in record) {
      return h("li.record.failure", {}, h("span.step", {}, record.step),
        record.kind ? h("span.kind", {}, record.kind) : null,
        h("span.text", {}, record.reason), h("span.sid", {}, record.sample_id));
    }
    if (record && typeof record === "object") {
      return h("li.record", {}, Object.entries(record).map(([k, v]) =>
        h("div.field", {}, h("span.who", {}, k),
          h("span.text", {}, typeof v === "string" ? v : JSON.stringify(v)))));
    }
    return h("li.record", {}, h("span.text", {}, String(record)));
  }

  // -- start -------------------------------------------------------------------------------------
  api("/api/info").then((info) => {
    document.getElementById("server-meta").replaceChildren(
      h("span", {}, "runs in"), h("span.mono", { title: info.runs_dir }, info.runs_dir),
      h("span", {}, "atk " + info.version));
  }).catch(() => {});
  window.addEventListener("hashchange", route);
  route();
})();
