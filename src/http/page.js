"use strict";
const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem("annuaire-key") || "";
let timer = null;
let settleTimer = null;
// Answers may come back out of order: only the latest search asked is shown.
let latest = 0;

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { Authorization: "Bearer " + key } });
  if (!response.ok) throw new Error(response.status + " " + (await response.text()));
  return response.status === 204 ? null : response.json();
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

function show(section) {
  for (const id of ["signin", "search", "record", "imports"]) $(id).classList.toggle("hidden", id !== section);
  $("nav-search").classList.toggle("active", section === "search" || section === "record");
  $("nav-imports").classList.toggle("active", section === "imports");
}

// "Source : RPPS (ANS), extrait du …": the published generation's extract date.
function showSource(runs) {
  const published = runs.find((r) => r.status === "published" && r.professionals !== null);
  const date = published && published.extract_ts
    ? new Date(published.extract_ts).toLocaleDateString("fr-FR", { timeZone: "Europe/Paris" })
    : "inconnue";
  $("source").textContent = "Source : RPPS (ANS), extrait du " + date;
}

async function signIn(event) {
  if (event) event.preventDefault();
  key = $("key").value.trim() || key;
  try {
    showSource(await api("/v1/imports?limit=50"));
    sessionStorage.setItem("annuaire-key", key);
    $("nav").classList.remove("hidden");
    show("search");
    search();
  } catch (e) {
    $("signin-error").textContent = "Clé refusée.";
  }
}

// A code with its label from the extract (`10 Médecin`); admins do not read codes.
function coded(code, label) {
  return label ? code + " " + label : code;
}

function query(facets) {
  const params = new URLSearchParams({ q: $("q").value, per_page: "25", facets: String(facets) });
  for (const f of ["profession", "departement", "savoir_faire", "removed"]) {
    const value = $("f-" + f).value.trim();
    if (value) params.set(f, value);
  }
  return params;
}

// While one types, results only (facet counts cost most on a broad query); the facets
// follow once the query settles, or at once when asked (`facets` true).
async function search(facets = true) {
  const asked = ++latest;
  const result = await api("/v1/professionals?" + query(facets));
  if (asked !== latest) return;
  $("total").textContent = result.total + " professionnel(s)";
  const list = $("results");
  list.replaceChildren();
  for (const hit of result.results) {
    const li = document.createElement("li");
    li.dataset.id = hit.national_id;
    const professions = hit.professions.map((code) => coded(code, hit.profession_labels[code])).join(", ");
    li.append(text("strong", hit.name || "(sans nom)"), " ", text("span", hit.national_id, "id"), " — " + professions + " — dép. " + hit.departements.join(", "));
    if (hit.removed) li.append(" ", text("span", "radié", "removed"));
    li.addEventListener("click", () => openRecord(hit.national_id));
    list.append(li);
  }
  const block = $("facets");
  block.classList.toggle("stale", !facets);
  if (!facets) return;
  block.replaceChildren();
  for (const [name, values] of Object.entries(result.facets)) {
    const facet = document.createElement("div");
    facet.className = "facet";
    facet.append(text("h3", name.replace("_", " ")));
    for (const v of values) {
      const a = document.createElement("a");
      a.href = "#";
      a.dataset.facet = name;
      a.dataset.value = v.value;
      a.append(text("span", coded(v.value, v.label)), text("span", String(v.count)));
      a.addEventListener("click", (e) => { e.preventDefault(); const input = $("f-" + name); if (input) { input.value = v.value; search(); } });
      facet.append(a);
    }
    block.append(facet);
  }
}

function schedule() {
  clearTimeout(timer);
  clearTimeout(settleTimer);
  timer = setTimeout(() => search(false).catch(console.error), 120);
  settleTimer = setTimeout(() => search(true).catch(console.error), 500);
}

// An activity's address on one line: "118 Avenue DU PRADO, 13006 MARSEILLE". The street
// type is written by its label (the extract's, from the record's labels; its code when the
// record has none), and the bureau cedex already starts with the postcode, which is
// written alone only without one.
function addressLine(a, streetTypeLabel) {
  const street = [a.numeroVoie, a.indiceRepetitionVoie, streetTypeLabel || a.codeTypeDeVoie, a.libelleVoie].filter(Boolean).join(" ");
  const bureau = a.bureauCedex || "";
  const town = !a.codePostal || bureau.startsWith(a.codePostal) ? bureau : [a.codePostal, bureau].filter(Boolean).join(" ");
  return [street, a.mentionDistribution, town].filter(Boolean).join(", ");
}

async function openRecord(id) {
  const record = await api("/v1/professionals/" + encodeURIComponent(id));
  const claims = record.claims;
  $("record-name").textContent = (claims.given_name + " " + claims.family_name).trim() + " — " + record.national_id;
  $("record-dates").textContent = "vu depuis " + record.first_seen_at.slice(0, 10) + ", modifié le " + record.last_changed_at.slice(0, 10)
    + (record.removed_at ? ", radié le " + record.removed_at.slice(0, 10) : "");
  const body = $("record-body");
  body.replaceChildren();
  // The record's own labels (those of its lines in the extract).
  const labels = record.details.labels || {};
  const label = (system, code) => coded(code, (labels[system] || {})[code]);
  for (const ex of claims.SubjectRefPro.exercices) {
    body.append(text("h3", "Profession " + label("profession", ex.codeProfession) + " (" + label("categorie", ex.codeCategorieProfessionnelle) + ")" + (ex.codeSavoirFaire ? " — " + ex.codeTypeSavoirFaire + " " + label("savoir_faire", ex.codeSavoirFaire) : "")));
    const table = document.createElement("table");
    table.append(Object.assign(document.createElement("tr"), { innerHTML: "<th>Structure</th><th>Id</th><th>Adresse</th><th>Mode / secteur</th>" }));
    for (const a of ex.activities) {
      const tr = document.createElement("tr");
      tr.append(text("td", a.raisonSocialeSite), text("td", a.identifiantTechniqueDeLaStructure), text("td", addressLine(a, (labels.type_voie || {})[a.codeTypeDeVoie])), text("td", label("mode", a.codeModeExercice) + " / " + label("secteur", a.codeSecteurDactivite)));
      table.append(tr);
    }
    body.append(table);
  }
  const sf = record.details.savoir_faire.map((s) => s.code_type + " " + s.code + " " + s.libelle).join(" ; ");
  body.append(text("p", "Savoir-faire : " + (sf || "—")), text("p", "MSSanté : " + (record.mailboxes.join(", ") || "—")));
  $("claims").textContent = JSON.stringify(claims, null, 2);
  show("record");
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes, title) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, String(value));
  if (title) {
    const t = document.createElementNS(SVG, "title");
    t.textContent = title;
    el.append(t);
  }
  return el;
}

// The runs, oldest first, drawn by the page itself: added / changed / removed per run on a
// log scale (a first import adds millions, a day a few thousand), and the phase times.
function drawRuns(runs) {
  const shown = runs.filter((r) => r.added !== null).slice(0, 30).reverse();
  const chart = $("runs-chart");
  chart.replaceChildren();
  if (!shown.length) return;
  const width = 720, height = 150, left = 40, bar = Math.min(22, (width - left) / shown.length - 4);
  const counts = svg("svg", { viewBox: `0 0 ${width} ${height * 2 + 40}`, role: "img", "aria-label": "Runs" });
  const log = (n) => (n > 0 ? Math.log10(n + 1) : 0);
  const top = Math.max(1, ...shown.map((r) => log(Math.max(r.added, r.changed, r.removed))));
  const kinds = [["added", "#2e7d32"], ["changed", "#0b5cad"], ["removed", "#a33d00"]];
  const phases = [["read_stage", "#7b8da0"], ["diff", "#c7a23a"], ["build", "#0b5cad"], ["publish", "#2e7d32"]];
  const slowest = Math.max(1, ...shown.map((r) => phases.reduce((t, [p]) => t + (r.phases[p] || 0), 0)));
  counts.append(svg("text", { x: 0, y: 12, class: "axis" }, null), svg("text", { x: 0, y: height + 32, class: "axis" }, null));
  counts.children[0].textContent = "+ ~ − (log)";
  counts.children[1].textContent = "phases (" + (slowest / 1000).toFixed(1) + " s max)";
  shown.forEach((run, i) => {
    const x = left + i * (bar + 4);
    const group = svg("g", { "data-run": run.id });
    kinds.forEach(([kind, colour], k) => {
      const h = (log(run[kind]) / top) * (height - 20);
      group.append(svg("rect", { x: x + (k * bar) / 3, y: height - h, width: bar / 3, height: h, fill: colour, class: kind }, "run " + run.id + " " + kind + " " + run[kind]));
    });
    let y = height * 2 + 30;
    for (const [phase, colour] of phases) {
      const h = ((run.phases[phase] || 0) / slowest) * (height - 20);
      y -= h;
      group.append(svg("rect", { x, y, width: bar, height: h, fill: colour, class: phase }, "run " + run.id + " " + phase + " " + (run.phases[phase] || 0) + " ms"));
    }
    const label = svg("text", { x: x + bar / 2, y: height * 2 + 40, "text-anchor": "middle", class: "axis" });
    label.textContent = String(run.id);
    group.append(label);
    counts.append(group);
  });
  chart.append(counts);
}

async function loadImports() {
  const runs = await api("/v1/imports?limit=50");
  drawRuns(runs);
  showSource(runs);
  const tbody = $("runs");
  tbody.replaceChildren();
  for (const run of runs) {
    const tr = document.createElement("tr");
    tr.dataset.run = run.id;
    tr.append(text("td", String(run.id)), text("td", run.status), text("td", run.extract_ts ? run.extract_ts.slice(0, 16) : "—"),
      text("td", [run.added, run.changed, run.removed].map((n) => n ?? "–").join(" / ")), text("td", String(run.rejected)), text("td", run.message || ""));
    const cell = document.createElement("td");
    if (run.status === "held") {
      // Approving publishes to every IdP: the button first shows who the run would remove
      // and change, then a second, explicit step that names the counts confirms it.
      const button = text("button", "Examiner et approuver", "primary");
      button.id = "approve-" + run.id;
      button.addEventListener("click", () => openReview(run, tr, button).catch(console.error));
      cell.append(button);
    }
    tr.append(cell);
    tbody.append(tr);
  }
  show("imports");
}

const KINDS = { removed: "Radiés", changed: "Modifiés", added: "Ajoutés" };
const REVIEW_PAGE = 10;

function diffPage(runId, kind, page) {
  return api("/v1/imports/" + runId + "/diff?kind=" + kind + "&per_page=" + REVIEW_PAGE + "&page=" + page);
}

// One kind of a run's diff, a page at a time: who, and the claim fields that change.
async function showDiff(block, runId, kind, page) {
  const diff = await diffPage(runId, kind, page);
  block.replaceChildren(text("h4", KINDS[kind] + " : " + diff.total));
  const list = document.createElement("ul");
  for (const item of diff.items) {
    const li = document.createElement("li");
    li.dataset.id = item.national_id;
    li.append(text("span", item.national_id, "id"), " " + (item.family_name + " " + item.given_name).trim());
    if (kind === "changed" && !item.claims_changed) li.append(text("span", " (dossier seul : claims inchangés)", "muted"));
    if (item.changes.length) {
      const changes = document.createElement("ul");
      for (const c of item.changes) {
        changes.append(text("li", c.path + " : " + JSON.stringify(c.old) + " → " + JSON.stringify(c.new), "change"));
      }
      li.append(changes);
    }
    list.append(li);
  }
  block.append(list);
  const pages = Math.ceil(diff.total / diff.per_page);
  if (pages > 1) {
    const pager = text("p", "page " + page + " / " + pages + " ", "muted");
    for (const [label, to] of [["← précédente", page - 1], ["suivante →", page + 1]]) {
      if (to < 1 || to > pages) continue;
      const b = text("button", label);
      b.className = "diff-" + kind + (to > page ? "-next" : "-previous");
      b.addEventListener("click", () => showDiff(block, runId, kind, to).catch(console.error));
      pager.append(b, " ");
    }
    block.append(pager);
  }
}

async function openReview(run, row, button) {
  button.disabled = true;
  const counts = (await diffPage(run.id, "removed", 1)).counts;
  const review = document.createElement("tr");
  review.className = "review";
  review.id = "review-" + run.id;
  const cell = document.createElement("td");
  cell.colSpan = row.children.length + 1;
  const summary = counts.removed + " radié(s), " + counts.changed + " modifié(s), " + counts.added + " ajouté(s)";
  cell.append(text("p", "Le run " + run.id + " publierait : " + summary + "."));
  const blocks = {};
  for (const kind of Object.keys(KINDS)) {
    blocks[kind] = document.createElement("div");
    blocks[kind].id = "diff-" + kind + "-" + run.id;
    cell.append(blocks[kind]);
  }
  await Promise.all(Object.keys(KINDS).map((kind) => showDiff(blocks[kind], run.id, kind, 1)));
  const yes = text("button", "Publier le run " + run.id + " (" + summary + ")", "primary");
  yes.id = "confirm-" + run.id;
  const no = text("button", "Annuler");
  no.id = "cancel-" + run.id;
  const confirm = document.createElement("p");
  confirm.id = "confirm-box-" + run.id;
  confirm.append(text("span", "Publier ce run pour tous les IdP ? "), yes, " ", no);
  cell.append(confirm);
  review.append(cell);
  row.after(review);
  no.addEventListener("click", () => { review.remove(); button.disabled = false; });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    try { await api("/v1/imports/" + run.id + "/approve", { method: "POST" }); } catch (e) { console.error(e); }
    loadImports();
  });
}

$("signin-form").addEventListener("submit", signIn);
$("q").addEventListener("input", schedule);
for (const f of ["profession", "departement", "savoir_faire", "removed"]) $("f-" + f).addEventListener("input", schedule);
$("back").addEventListener("click", () => show("search"));
$("nav-search").addEventListener("click", () => show("search"));
$("nav-imports").addEventListener("click", () => loadImports().catch(console.error));
if (key) signIn();
