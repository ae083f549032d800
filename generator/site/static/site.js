// The coverage site's search (btfhub site). No framework: a form, a filter
// over an array, and `settings.limit` list items at a time built with the DOM.
//
// The host rules are data (catalog/hosts/os-release.yaml, in data.js); the
// functions under "host rules" interpret them as generator/consumer/
// hostmap.py and hubindex.py do, and tests/test_site_browser.py checks that
// both give the same answers on the same cases.
(function () {
  "use strict";

  var SITE = window.BTFHUB_SITE;

  // --- host rules: ports of osrelease.parse_os_release, hostmap.locate, hubindex.find_kernel

  function HostError(kind, message, distributionKnown) {
    this.kind = kind; // "input" (bad input, exit 2) or "not-mapped" (exit 1)
    this.message = message;
    this.distributionKnown = distributionKnown !== false;
  }

  // Python's repr() of a string, as the Python messages quote values.
  function repr(s) {
    var quote = s.indexOf("'") >= 0 && s.indexOf('"') < 0 ? '"' : "'";
    var body = s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\t/g, "\\t");
    if (quote === "'") body = body.replace(/'/g, "\\'");
    return quote + body + quote;
  }

  // One os-release value as a POSIX shell reads it (shlex.split): its words.
  function shellWords(raw) {
    var words = [], word = null, i = 0, c;
    while (i < raw.length) {
      c = raw[i];
      if (/\s/.test(c)) {
        if (word !== null) { words.push(word); word = null; }
        i++;
      } else if (c === "'") {
        var end = raw.indexOf("'", i + 1);
        if (end < 0) throw new Error("No closing quotation");
        word = (word || "") + raw.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        word = word || "";
        i++;
        for (;;) {
          if (i >= raw.length) throw new Error("No closing quotation");
          c = raw[i];
          if (c === '"') { i++; break; }
          if (c === "\\" && i + 1 < raw.length && '"\\$`'.indexOf(raw[i + 1]) >= 0) {
            word += raw[i + 1];
            i += 2;
          } else {
            word += c;
            i++;
          }
        }
      } else if (c === "\\") {
        if (i + 1 >= raw.length) throw new Error("No escaped character");
        word = (word || "") + raw[i + 1];
        i += 2;
      } else {
        word = (word || "") + c;
        i++;
      }
    }
    if (word !== null) words.push(word);
    return words;
  }

  function parseOsRelease(text) {
    var fields = {};
    var lines = text.split(/\r\n|\r|\n/);
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    lines.forEach(function (line, n) {
      var stripped = line.trim();
      if (!stripped || stripped[0] === "#") return;
      var at = stripped.indexOf("=");
      var key = at < 0 ? "" : stripped.slice(0, at);
      if (at < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
        throw new HostError("input", "os-release:" + (n + 1) + ": not a KEY=value line: " + repr(line));
      }
      var words;
      try {
        words = shellWords(stripped.slice(at + 1));
      } catch (e) {
        throw new HostError("input", "os-release:" + (n + 1) + ": " + e.message + ": " + repr(line));
      }
      if (words.length > 1) {
        throw new HostError("input", "os-release:" + (n + 1) + ": value must be quoted: " + repr(line));
      }
      fields[key] = words.length ? words[0] : "";
    });
    var id = (fields.ID || "").trim();
    if (!id) throw new HostError("input", "os-release: no ID= line (is it an os-release file?)");
    return {
      id: id,
      version_id: fields.VERSION_ID || null,
      version_codename: fields.VERSION_CODENAME || null,
      name: fields.NAME || null
    };
  }

  function clean(value) {
    return value.trim().replace(/^["']+|["']+$/g, "").trim().toLowerCase();
  }

  function ruleFor(rules, ident) {
    var all = rules.distributions, i;
    for (i = 0; i < all.length; i++) if (all[i].id === ident) return [all[i], "exact"];
    for (i = 0; i < all.length; i++) if (all[i].aliases.indexOf(ident) >= 0) return [all[i], "alias"];
    return null;
  }

  function sortedKeys(obj) {
    return Object.keys(obj).sort();
  }

  function releaseDir(rule, os) {
    var version = os.version_id ? clean(os.version_id) : "";
    var codenames = rule.codenames;
    if (!version || !/^[0-9]/.test(version)) {
      var codename = version || clean(os.version_codename || "");
      if (!codename) {
        throw new HostError("not-mapped", rule.id + ": os-release gives no VERSION_ID or VERSION_CODENAME");
      }
      if (!Object.prototype.hasOwnProperty.call(codenames, codename)) {
        var known = sortedKeys(codenames).join(", ") || "none";
        throw new HostError("not-mapped", rule.id + ": unknown codename " + repr(codename) + " (known: " + known + ")");
      }
      version = codenames[codename];
    }
    switch (rule.version) {
      case "full":
        return version;
      case "major":
        return version.split(".")[0];
      case "numeric":
        if (!/^[0-9]+$/.test(version)) {
          throw new HostError("input", rule.id + ": VERSION_ID " + repr(version) +
            " is not a whole number (its releases are numbered 9, 10, 31 ...)");
        }
        return version;
      default: // listed
        if (!Object.prototype.hasOwnProperty.call(rule.versions, version)) {
          throw new HostError("not-mapped", rule.id + " " + version + " is not covered (the hub has: " +
            sortedKeys(rule.versions).join(", ") + ")");
        }
        return rule.versions[version];
    }
  }

  function archivePath(dir, release, arch, uname) {
    return SITE.layout.archive + "/" + dir + "/" + release + "/" + arch + "/" + uname + SITE.layout.suffix;
  }

  // Where a machine's file lives: {distro, distro_dir, release_dir, arch, uname, match, path}.
  function locate(rules, os, kernel, machine) {
    kernel = kernel.trim();
    if (!kernel || kernel.indexOf("/") >= 0 || kernel === "." || kernel === ".." || /\s/.test(kernel)) {
      throw new HostError("input", repr(kernel) + " is not a kernel release (uname -r)");
    }
    var arch = rules.architectures[clean(machine)];
    if (arch === undefined) {
      throw new HostError("not-mapped", "architecture " + repr(machine) + " is not in the hub (it has: " +
        sortedKeys(rules.architectures).join(", ") + ")");
    }
    var ident = clean(os.id);
    var found = ruleFor(rules, ident);
    if (found === null) {
      throw new HostError("not-mapped", "distribution " + repr(ident) + " is not in the hub's catalog", false);
    }
    var rule = found[0], match = found[1], dir = rule.archive_dir;
    var name = (os.name || "").trim();
    for (var i = 0; i < rule.variants.length; i++) {
      if (name.indexOf(rule.variants[i].name_prefix) === 0) {
        dir = rule.variants[i].archive_dir;
        match = "alias";
        break;
      }
    }
    var release = releaseDir(rule, os);
    return {
      distro: rule.id, distro_dir: dir, release_dir: release, arch: arch, uname: kernel,
      match: match, path: archivePath(dir, release, arch, kernel)
    };
  }

  // --- the data: slots (a release on an architecture) and kernel rows

  // Kernel rows: [slot, uname, state, size, sha256, reason, built from, provenance?, modules?]
  var K_SLOT = 0, K_UNAME = 1, K_STATE = 2, K_SIZE = 3, K_SHA = 4, K_REASON = 5, K_PACKAGE = 6,
    K_PROVENANCE = 7, K_MODULES = 8;
  // Their provenance and modules (generator/site/extras.py); "(shared)" ones index SITE.shared.
  var P_KIND = 0, P_OTHER_FILE = 1, P_URL_BASE = 2, P_URL_REST = 3, P_SIZE = 4, P_SHA = 5,
    P_FORMAT = 6, P_VOUCHED = 7, P_BUILT = 8, P_LEGACY = 0;
  var M_PATH = 0, M_SIZE = 1, M_SHA = 2, M_NAMES = 3, M_ABSENT = 4, M_FAILED = 5;
  var slots = SITE.slots.map(function (s) {
    var distro = s[0] >= 0 ? SITE.distros[s[0]] : null;
    return {
      distro: distro, release: distro ? distro.releases[s[1]] : null,
      arch: s[2], dir: s[3], releaseDir: s[4], kernels: []
    };
  });
  SITE.kernels.forEach(function (k, i) { slots[k[K_SLOT]].kernels.push(i); });
  var lowerNames = SITE.kernels.map(function (k) { return k[K_UNAME].toLowerCase(); });

  function kernelPath(i) {
    var k = SITE.kernels[i], s = slots[k[K_SLOT]];
    return archivePath(s.dir, s.releaseDir, s.arch, k[K_UNAME]);
  }

  var ORDER = ["archived", "failed", "ships-btf", "missing"];

  // hubindex.find_kernel: the index's answer for one machine's location.
  function findKernel(where) {
    var i, s;
    for (i = 0; i < slots.length; i++) {
      s = slots[i];
      if (s.distro) continue;
      for (var j = 0; j < s.kernels.length; j++) {
        if (kernelPath(s.kernels[j]) === where.path) {
          return { availability: "found", reason: "archived (in no catalog release)", kernel: s.kernels[j] };
        }
      }
    }
    // In the index's order (distribution id, release id, architecture), as Python walks it.
    var inDir = slots.filter(function (s) { return s.distro && s.dir === where.distro_dir; });
    inDir.sort(function (a, b) {
      return cmp(a.distro.id, b.distro.id) || cmp(a.release.id, b.release.id) || cmp(a.arch, b.arch);
    });
    if (!inDir.length) {
      return { availability: "distribution-not-in-catalog",
               reason: "distribution " + repr(where.distro_dir) + " is not in the hub's catalog" };
    }
    var inRelease = inDir.filter(function (s) { return s.releaseDir === where.release_dir; });
    if (!inRelease.length) {
      var covered = unique(inDir.map(function (s) { return s.releaseDir; }));
      return { availability: "release-not-covered",
               reason: where.distro_dir + " " + where.release_dir + " is not covered by the hub (it covers: " +
                 covered.join(", ") + ")" };
    }
    var inArch = inRelease.filter(function (s) { return s.arch === where.arch; });
    var listed = [];
    inArch.forEach(function (s) {
      s.kernels.forEach(function (k) { if (SITE.kernels[k][K_UNAME] === where.uname) listed.push([s, k]); });
    });
    listed.sort(function (a, b) {
      return ORDER.indexOf(SITE.kernels[a[1]][K_STATE]) - ORDER.indexOf(SITE.kernels[b[1]][K_STATE]);
    });
    if (listed.length) {
      var slot = listed[0][0], k = listed[0][1], state = SITE.kernels[k][K_STATE];
      var answer = { kernel: k, distro: slot.distro.id, release: slot.release.id };
      if (state === "archived") {
        answer.availability = "found"; answer.reason = "archived";
      } else if (state === "failed") {
        answer.availability = "failed"; answer.reason = failedReason(SITE.kernels[k]);
      } else if (state === "ships-btf") {
        answer.availability = "ships-btf"; answer.reason = SITE.reasons["ships-btf"];
      } else {
        answer.availability = "not-archived"; answer.reason = SITE.reasons.missing;
      }
      return answer;
    }
    var names = unique(inRelease.map(function (s) { return s.release.name; })).join(", ");
    var shipsBtf = inRelease.every(function (s) { return s.release.btf === true && s.release.hub !== true; });
    if (shipsBtf) {
      return { availability: "ships-btf",
               reason: where.distro_dir + " " + where.release_dir + " (" + names +
                 ") kernels ship their own BTF: the hub is not needed" };
    }
    if (!inArch.length) {
      return { availability: "release-not-covered",
               reason: where.distro_dir + " " + where.release_dir + " is not covered on " + where.arch };
    }
    return { availability: "not-archived",
             reason: "kernel " + where.uname + " is not archived for " + where.distro_dir + "/" +
               where.release_dir + "/" + where.arch + " (" + names + "): not among the kernels the hub knows" };
  }

  function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }

  function unique(values) {
    return Array.from(new Set(values)).sort();
  }

  function failedReason(k) {
    return SITE.reasons.failed.replace("{reason}", k[K_REASON] || SITE.reasons.no_reason);
  }

  // What lookup answers for a machine; the tests call this to compare with `btfhub lookup`.
  function lookup(osText, kernel, machine) {
    try {
      var where = locate(SITE.rules, parseOsRelease(osText), kernel, machine);
    } catch (e) {
      if (!(e instanceof HostError)) throw e;
      return { error: e.kind, reason: e.message,
               availability: e.kind === "input" ? null :
                 e.distributionKnown ? "release-not-covered" : "distribution-not-in-catalog" };
    }
    var answer = findKernel(where);
    answer.path = where.path;
    answer.match = where.match;
    return answer;
  }

  window.btfhubSite = {
    parseOsRelease: parseOsRelease, locate: function (os, kernel, machine) {
      try { return locate(SITE.rules, os, kernel, machine); }
      catch (e) { if (e instanceof HostError) return { error: e.kind, reason: e.message, known: e.distributionKnown }; throw e; }
    },
    lookup: lookup
  };

  // --- the page

  var form = document.getElementById("search-form");
  var fields = {
    kernel: document.getElementById("kernel"),
    distro: document.getElementById("distro"),
    release: document.getElementById("release"),
    arch: document.getElementById("arch"),
    osrelease: document.getElementById("osrelease")
  };
  var status = document.getElementById("status");
  var answerBox = document.getElementById("answer");
  var results = document.getElementById("results");
  var distrosById = {};
  SITE.distros.forEach(function (d, i) { distrosById[d.id] = i; });
  var arches = unique(slots.map(function (s) { return s.arch; }));

  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    select.appendChild(o);
  }

  arches.forEach(function (a) { option(fields.arch, a, a); });

  function fillReleases() {
    var keep = fields.release.value;
    fields.release.length = 1;
    var d = distrosById[fields.distro.value];
    if (d === undefined) return;
    SITE.distros[d].releases.forEach(function (r) { option(fields.release, r.id, r.name); });
    fields.release.value = keep;
    if (fields.release.value !== keep) fields.release.value = "";
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function size(bytes) {
    if (bytes === null || bytes === undefined) return "";
    if (bytes < 1024) return plural(bytes, "byte", "bytes");
    var units = ["KiB", "MiB", "GiB"], v = bytes / 1024, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return v.toFixed(1) + " " + units[u] + " (" + bytes.toLocaleString("en") + " bytes)";
  }

  function shellQuote(s) {
    return /^[A-Za-z0-9_.,:=+\/@%-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
  }

  function fetchCommand(i) {
    var k = SITE.kernels[i], s = slots[k[K_SLOT]];
    var words = ["btfhub", "fetch", "--index", shellQuote(SITE.links.index)];
    if (SITE.links.base_url) words.push("--base-url", shellQuote(SITE.links.base_url));
    words.push("--select", shellQuote("distro=" + s.dir + ",release=" + s.releaseDir + ",arch=" + s.arch +
      ",kernel=" + k[K_UNAME]), "--output", "btf");
    return words.join(" ");
  }

  function element(tag, text, className) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (className) e.className = className;
    return e;
  }

  function entry(dl, term, value) {
    dl.appendChild(element("dt", term));
    var dd = element("dd");
    if (typeof value === "string") dd.textContent = value; else dd.appendChild(value);
    dl.appendChild(dd);
  }

  function where(s) {
    if (!s.distro) return s.dir + " " + s.releaseDir + ", " + s.arch + " (in no catalog release)";
    return s.distro.title + " " + s.release.name + ", " + s.arch;
  }

  function link(text, href) {
    var a = element("a", text);
    a.href = href;
    return a;
  }

  // What index.json's optional maps say of the kernel (generator/site/extras.py words
  // them; values many kernels share are in SITE.shared).
  function describeExtras(dl, k) {
    var p = k[K_PROVENANCE], m = k[K_MODULES];
    if (p && p[P_OTHER_FILE]) {
      entry(dl, "Provenance", "recorded for other bytes (SHA-256 " + p[P_OTHER_FILE] + "), not this file");
    } else if (p && p[P_KIND] === P_LEGACY) {
      entry(dl, "Provenance", "not recorded: built before the hub recorded provenance");
    } else if (p) {
      var url = SITE.shared[p[P_URL_BASE]] + p[P_URL_REST];
      var name = (k[K_PACKAGE] || p[P_URL_REST]) + (p[P_FORMAT] ? " (" + p[P_FORMAT] + ")" : "");
      entry(dl, "Source package", url ? link(name, url) : name);
      if (p[P_SIZE] !== null && p[P_SIZE] !== undefined) entry(dl, "Package size", size(p[P_SIZE]));
      if (p[P_SHA]) entry(dl, "Package SHA-256", p[P_SHA]);
      entry(dl, "Vouched for by", SITE.shared[p[P_VOUCHED]]);
      entry(dl, "Built with", SITE.shared[p[P_BUILT]]);
    }
    if (m) {
      var names = SITE.shared[m[M_NAMES]], absent = SITE.shared[m[M_ABSENT]], path = m[M_PATH];
      if (path && SITE.links.download) {
        entry(dl, "Module BTF", link(path.split("/").pop(), SITE.links.download + path));
      } else if (path) {
        entry(dl, "Module BTF", path);
      }
      if (m[M_SIZE] !== null && m[M_SIZE] !== undefined) entry(dl, "Its size", size(m[M_SIZE]));
      if (m[M_SHA]) entry(dl, "Its SHA-256", m[M_SHA]);
      if (path) entry(dl, plural(names.length, "module", "modules"), names.join(", ") || "none");
      if (absent.length) entry(dl, "Not in the package", absent.join(", "));
      if (m[M_FAILED]) entry(dl, "Module build failed", m[M_FAILED]);
    }
  }

  function kernelItem(i) {
    var k = SITE.kernels[i], s = slots[k[K_SLOT]], state = k[K_STATE];
    var li = element("li", null, "kernel " + state);
    li.appendChild(element("h3", k[K_UNAME]));
    var line = element("p", null, "where");
    line.appendChild(element("span", SITE.words[state], "state"));
    line.appendChild(document.createTextNode(" " + where(s)));
    li.appendChild(line);
    var dl = element("dl");
    var path = kernelPath(i);
    if (state === "archived") {
      entry(dl, "Archive path", path);
      if (SITE.links.download) {
        entry(dl, "Download", link("download " + k[K_UNAME] + SITE.layout.suffix, SITE.links.download + path));
      }
      entry(dl, "Size", size(k[K_SIZE]));
      entry(dl, "SHA-256", k[K_SHA]);
    } else if (state === "failed") {
      entry(dl, "Why", failedReason(k));
    } else if (state === "ships-btf") {
      entry(dl, "Hub needed?", SITE.reasons["ships-btf"]);
    } else {
      entry(dl, "When", SITE.reasons.missing);
    }
    // Provenance names the same package, with its link: said once.
    if (k[K_PACKAGE] && !(k[K_PROVENANCE] && k[K_PROVENANCE][P_KIND] !== P_LEGACY)) {
      entry(dl, "Built from", k[K_PACKAGE]);
    }
    describeExtras(dl, k);
    li.appendChild(dl);
    if (state === "archived") {
      li.appendChild(element("p", "Fetch it (the raw BTF lands in btf/" + s.dir + "/" + s.releaseDir + "/" +
        s.arch + "/" + k[K_UNAME] + ".btf):"));
      var pre = element("pre");
      pre.appendChild(element("code", fetchCommand(i), "command"));
      li.appendChild(pre);
    }
    return li;
  }

  // The query: which slots, and which unames in them.
  function chosenSlots(query, located) {
    return slots.filter(function (s) {
      if (query.arch && s.arch !== query.arch) return false;
      if (located) return s.dir === located.distro_dir && s.releaseDir === located.release_dir;
      if (query.distro && (!s.distro || s.distro.id !== query.distro)) return false;
      return !query.release || (s.release && s.release.id === query.release);
    });
  }

  function matching(query, located) {
    var exact = [], partial = [], kernel = query.kernel.trim(), lower = kernel.toLowerCase();
    chosenSlots(query, located).forEach(function (s) {
      s.kernels.forEach(function (i) {
        var uname = SITE.kernels[i][K_UNAME];
        if (!kernel || uname === kernel) exact.push(i);
        else if (lowerNames[i].indexOf(lower) >= 0) partial.push(i);
      });
    });
    return exact.length || !kernel ? { kernels: exact, exact: true } : { kernels: partial, exact: false };
  }

  function say(box, text, className) {
    var p = element("p", text, className);
    box.appendChild(p);
  }

  function lookupAnswers(query, os) {
    var machines = query.arch ? [query.arch] : arches;
    machines.forEach(function (machine) {
      var where, answer;
      try {
        where = locate(SITE.rules, os, query.kernel, machine);
      } catch (e) {
        if (!(e instanceof HostError)) throw e;
        say(answerBox, machine + ": " + e.message, "answer not-found");
        return;
      }
      answer = findKernel(where);
      say(answerBox, where.uname + " on " + where.arch + " (" + where.distro_dir + "/" + where.release_dir +
        ", " + where.match + " match): " + answer.reason + ".",
        "answer " + (answer.availability === "found" ? "found" : "not-found"));
    });
  }

  function search() {
    var query = {
      kernel: fields.kernel.value, distro: fields.distro.value, release: fields.release.value,
      arch: fields.arch.value, osrelease: fields.osrelease.value
    };
    answerBox.textContent = "";
    var located = null;
    if (query.osrelease.trim()) {
      var os;
      try {
        os = parseOsRelease(query.osrelease);
        // The machine's directory; any kernel name will do to find it.
        located = locate(SITE.rules, os, query.kernel.trim() || "any", query.arch || arches[0] || "x86_64");
      } catch (e) {
        if (!(e instanceof HostError)) throw e;
        say(answerBox, "The pasted os-release: " + e.message, "answer not-found");
        show([], "No kernels: the os-release could not be mapped.");
        return;
      }
      say(answerBox, "The pasted os-release is " + located.distro_dir + "/" + located.release_dir +
        " in the hub (" + located.match + " match).", "answer");
      if (query.kernel.trim()) lookupAnswers(query, os);
    }
    var found = matching(query, located);
    var words = [];
    if (query.kernel.trim()) words.push((found.exact ? "named " : "whose name contains ") + "“" + query.kernel.trim() + "”");
    if (located) words.push("in " + located.distro_dir + "/" + located.release_dir);
    else if (query.distro) {
      var d = SITE.distros[distrosById[query.distro]];
      var r = d.releases.filter(function (x) { return x.id === query.release; })[0];
      words.push("in " + d.title + (r ? " " + r.name : ""));
    }
    if (query.arch) words.push("on " + query.arch);
    var summary = plural(found.kernels.length, "kernel", "kernels") + (words.length ? " " + words.join(" ") : "");
    if (query.kernel.trim() && !found.exact && found.kernels.length) {
      summary = "No kernel is exactly “" + query.kernel.trim() + "”; " + summary;
    }
    show(found.kernels, summary + ".");
    var hash = ["kernel", "distro", "release", "arch"].filter(function (f) { return query[f]; })
      .map(function (f) { return f + "=" + encodeURIComponent(query[f].trim()); }).join("&");
    if (window.history && window.history.replaceState && ("#" + hash) !== (location.hash || "#")) {
      try { window.history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search); }
      catch (e) { /* some file:// contexts refuse it: the search still works */ }
    }
  }

  // The list grows by `limit` kernels per press of "Show more": a search that
  // matches thousands lays out a screenful, not thousands of entries.
  var listed = [], listedCount = 0, listedSummary = "";
  var more = document.getElementById("more");

  function showMore() {
    var limit = SITE.settings.limit;
    var next = listed.slice(listedCount, listedCount + limit);
    var list = document.createDocumentFragment();
    next.forEach(function (i) { list.appendChild(kernelItem(i)); });
    results.appendChild(list);
    listedCount += next.length;
    var left = listed.length - listedCount;
    more.hidden = left <= 0;
    more.textContent = "Show " + Math.min(limit, left) + " more (" + left + " not shown)";
    status.textContent = listedSummary + (left > 0 ? " Showing " + listedCount + "." : "");
  }

  function show(kernels, summary) {
    listed = kernels;
    listedCount = 0;
    listedSummary = summary;
    results.textContent = "";
    showMore();
  }

  more.addEventListener("click", function () {
    var first = listedCount;
    showMore();
    // Keyboard users continue at the first kernel just shown.
    var item = results.children[first];
    if (item) { item.tabIndex = -1; item.focus(); }
  });

  function fromHash() {
    var params = new URLSearchParams((location.hash || "").replace(/^#/, ""));
    if (!["kernel", "distro", "release", "arch"].some(function (f) { return params.has(f); })) return false;
    fields.kernel.value = params.get("kernel") || "";
    fields.distro.value = params.get("distro") || "";
    fillReleases();
    fields.release.value = params.get("release") || "";
    fields.arch.value = params.get("arch") || "";
    fields.osrelease.value = "";
    return true;
  }

  fields.distro.addEventListener("change", function () { fillReleases(); search(); });
  // Keystrokes faster than frames make one search per frame, not one each.
  var pending = 0;
  function searchSoon() {
    if (!pending) pending = window.requestAnimationFrame(function () { pending = 0; search(); });
  }
  ["kernel", "release", "arch", "osrelease"].forEach(function (f) {
    fields[f].addEventListener(f === "kernel" || f === "osrelease" ? "input" : "change", searchSoon);
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); search(); });
  form.addEventListener("reset", function () {
    setTimeout(function () { fillReleases(); search(); }, 0);
  });
  window.addEventListener("hashchange", function () {
    if (fromHash()) {
      search();
      document.getElementById("search-title").scrollIntoView();
      status.focus();
    }
  });
  status.tabIndex = -1;
  fromHash();
  search();
  // When the search answers (bench/site_bench.py reads it): ms since navigation began.
  window.btfhubSite.readyAt = performance.now();
  document.documentElement.setAttribute("data-ready", "true");
})();
