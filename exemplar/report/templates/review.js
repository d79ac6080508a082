// The review queue in the browser: filters, the reviewer's marks, and exports built here (Blob
// downloads, no server). Text from the data is only ever set with textContent, never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.qrow"));
  var byId = {};
  data.queue.forEach(function (r) { byId[r.id] = r; });
  var split = "train";
  var queue = "audit";  // which order is shown: "audit" or "atypical" (rows carry data-queues)
  var storeKey = "exemplar-decisions:" + data.dataset_hash;

  function marks() {
    var out = [];
    rows.forEach(function (tr) {
      var action = tr.querySelector("select.action").value;
      if (!action) return;
      out.push({id: tr.dataset.id, action: action,
                new_label: action === "relabel" ? tr.querySelector("select.new-label").value : "",
                note: tr.querySelector("input.note").value});
    });
    return out;
  }

  function csvCell(value) {
    var text = value === null || value === undefined ? "" : String(value);
    return /[",\r\n]/.test(text) || /^\s|\s$/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function csv(header, records) {
    var lines = [header.map(csvCell).join(",")];
    records.forEach(function (r) { lines.push(header.map(function (k) { return csvCell(r[k]); }).join(",")); });
    return lines.join("\r\n") + "\r\n";
  }

  function download(name, text, type) {
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], {type: type}));
    link.download = name;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }

  function whyText(r) {
    return r.why.map(function (w) { return w.text + " (" + w.signal + ")"; }).join("; ");
  }

  function shownQueue() {  // the rows of the order on screen, in that order (exports follow it)
    return queue === "atypical" ? data.atypical_queue : data.queue;
  }

  function sheetRecords() {
    var decided = {};
    marks().forEach(function (m) { decided[m.id] = m; });
    return shownQueue().map(function (r) {
      var m = decided[r.id] || {action: "", new_label: "", note: ""};
      return {rank: r.audit_rank, atypical_rank: r.atypical_rank === null ? "" : r.atypical_rank, id: r.id, split: r.split, given_label: r.label_name, predicted_label: r.pred_name,
              confidence: r.confidence === null ? "" : r.confidence.toFixed(3), audit_top_percent: (100 - r.audit_percentile).toFixed(2),
              why: whyText(r), action: m.action, new_label: m.new_label, note: m.note};
    });
  }

  function labelStudioTasks() {
    var control = data.modality === "image" ? "image" : "text";
    return shownQueue().map(function (r) {
      var tr = document.querySelector('tr.qrow[data-id="' + CSS.escape(r.id) + '"]');
      var img = tr ? tr.querySelector("img") : null;
      var features = Object.keys(r.features || {}).map(function (k) { return k + "=" + r.features[k]; }).join(", ");
      return {
        data: {image: img ? img.getAttribute("src") : "", text: features, exemplar_id: r.id, split: r.split,
               given_label: r.label_name, predicted_label: r.pred_name, audit_rank: r.audit_rank, atypical_rank: r.atypical_rank,
               audit_percentile: r.audit_percentile, why: whyText(r)},
        predictions: [{model_version: "exemplar-audit", score: r.audit_percentile / 100,
                       result: [{from_name: "label", to_name: control, type: "choices", value: {choices: [r.pred_name]}}]}]
      };
    });
  }

  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(marks())); } catch (e) { /* storage may be disabled */ }
  }

  function restore() {
    var saved = [];
    try { saved = JSON.parse(localStorage.getItem(storeKey) || "[]"); } catch (e) { saved = []; }
    saved.forEach(function (m) {
      var tr = document.querySelector('tr.qrow[data-id="' + CSS.escape(m.id) + '"]');
      if (!tr) return;
      tr.querySelector("select.action").value = m.action;
      if (m.new_label) tr.querySelector("select.new-label").value = m.new_label;
      tr.querySelector("input.note").value = m.note || "";
    });
  }

  function order() {  // put the table's rows in the shown queue's order (rows of the other queue last)
    var key = queue === "atypical" ? "atypicalRank" : "auditRank";
    var body = document.querySelector("#queue-table tbody");
    rows.slice().sort(function (a, b) {
      var ra = Number(a.dataset[key]) || Infinity, rb = Number(b.dataset[key]) || Infinity;
      return ra - rb || (a.dataset.split === "train" ? -1 : 1);
    }).forEach(function (tr) { body.appendChild(tr); });
  }

  function refresh() {
    var cls = document.getElementById("filter-class").value;
    var reason = document.getElementById("filter-reason").value;
    var shown = 0, counts = {train: 0, test: 0};
    rows.forEach(function (tr) {
      var inQueue = tr.dataset.queues.split(" ").indexOf(queue) >= 0;
      if (inQueue) counts[tr.dataset.split] = (counts[tr.dataset.split] || 0) + 1;
      var visible = inQueue && tr.dataset.split === split && (!cls || tr.dataset.label === cls) && (!reason || tr.dataset.reason === reason);
      tr.hidden = !visible;
      shown += visible ? 1 : 0;
      var action = tr.querySelector("select.action").value;
      tr.querySelector("select.new-label").hidden = action !== "relabel";
      tr.classList.toggle("decided", action !== "");
      tr.classList.toggle("removed", action === "remove");
    });
    document.getElementById("shown-count").textContent = shown;
    document.getElementById("decided-count").textContent = marks().length;
    Object.keys(counts).forEach(function (k) {
      var el = document.querySelector('[data-count="' + k + '"]');
      if (el) el.textContent = counts[k];
    });
  }

  function buttonGroup(selector, onSelect) {  // one selected button per group (split tabs, review orders)
    var buttons = document.querySelectorAll(selector);
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        buttons.forEach(function (b) {
          b.setAttribute("aria-selected", String(b === button));
          b.classList.toggle("alt", b !== button);
        });
        onSelect(button);
        refresh();
      });
    });
  }

  buttonGroup(".tabs button", function (button) { split = button.dataset.split; });
  buttonGroup(".orders button", function (button) { queue = button.dataset.queue; order(); });
  ["filter-class", "filter-reason"].forEach(function (id) { document.getElementById(id).addEventListener("change", refresh); });
  document.getElementById("queue-table").addEventListener("change", function () { save(); refresh(); });
  document.getElementById("queue-table").addEventListener("input", save);
  document.getElementById("export-decisions").addEventListener("click", function () {
    download("decisions.csv", csv(["id", "action", "new_label", "note"], marks()), "text/csv");
  });
  document.getElementById("export-sheet").addEventListener("click", function () {
    var header = ["rank", "atypical_rank", "id", "split", "given_label", "predicted_label", "confidence", "audit_top_percent", "why", "action", "new_label", "note"];
    download("review_queue.csv", csv(header, sheetRecords()), "text/csv");
  });
  document.getElementById("export-labelstudio").addEventListener("click", function () {
    download("label_studio_tasks.json", JSON.stringify(labelStudioTasks(), null, 1), "application/json");
  });
  restore();
  refresh();
})();
