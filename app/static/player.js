// The study player (app/study/player.py builds its HTML and data). Gradio re-renders its HTML components
// whenever their value changes, so everything here is delegated from `document` and keeps its state
// in `Z`, never in the elements themselves.
(() => {
  if (window.zimuPlayer) return;
  const Z = window.zimuPlayer = {
    data: null, dataText: null, current: -1, loop: -1, pauseAfter: false, hide: new Set(), level: 0,
    saved: new Map(), pinned: false, stopped: -1, hideTimer: null, raf: 0, lastTime: 0,
  };
  const $ = (sel, root = document) => root.querySelector(sel);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const player = () => $(".zimu-player");
  const media = () => $(".zimu-player .zimu-media");

  // A new transcription brings new data: read it once, reset the line state and the saved words.
  function load() {
    const holder = $(".zimu-player .zimu-data");
    if (!holder) return null;
    const text = holder.dataset.study;
    if (text !== Z.dataText) {
      Z.dataText = text;
      Z.data = JSON.parse(text);
      Z.current = -1; Z.loop = -1; Z.saved.clear();
      syncSaved();
    }
    return Z.data;
  }

  function rubyHtml(w) {
    if (!w.s.length) return esc(w.h);
    const chars = Array.from(w.h);
    const ruby = chars.map((c, k) => `<ruby style="--c:${Z.data.colours[w.t[k]]}">${esc(c)}<rt>${esc(w.s[k] || "")}</rt></ruby>`).join("");
    const card = Z.data.cards[w.h] || {};
    return `<span class="word" data-word="${esc(w.h)}" data-hsk="${card.hsk || 0}">${ruby}</span>`;
  }

  function cueAt(t) {
    const cues = Z.data.cues;
    for (let i = 0; i < cues.length; i++) if (t >= cues[i].start && t < cues[i].end) return i;
    return -1;
  }

  function showCaption(i) {
    const box = $(".zimu-player .zimu-captions");
    if (!box) return;
    const cue = Z.data.cues[i];
    box.innerHTML = cue ? `<div class="cap-hanzi">${cue.words.map(rubyHtml).join("")}</div>` +
      (cue.english ? `<div class="cap-english">${esc(cue.english).replace(/\n/g, "<br>")}</div>` : "") : "";
    box.dataset.cue = i;
    markLevel();
  }

  function highlight(i) {
    document.querySelectorAll("#transcript .cue.current").forEach((el) => el.classList.remove("current"));
    const el = $(`#transcript .cue[data-i="${i}"]`);
    if (!el) return;
    el.classList.add("current");
    // Scroll the transcript box only, not the page (scrollIntoView would move the video away).
    const box = el.closest(".zimu-transcript");
    if (!box) return;
    const b = box.getBoundingClientRect(), c = el.getBoundingClientRect();
    if (c.top < b.top || c.bottom > b.bottom) box.scrollTop += c.top - b.top - Math.max(0, (b.height - c.height) / 3);
  }

  // Called every animation frame while playing (timeupdate comes only 4 times a second, too late
  // to stop at a line's end).
  function tick() {
    const m = media();
    if (!m || !load()) return;
    const t = m.currentTime, cues = Z.data.cues;
    if (Z.loop >= 0 && cues[Z.loop] && (t >= cues[Z.loop].end || t < cues[Z.loop].start - 0.5)) {
      m.currentTime = cues[Z.loop].start;
      return;
    }
    // Pause once per line: after the pause, play goes on into the next line.
    if (Z.pauseAfter && Z.current >= 0 && cues[Z.current] && Z.stopped !== Z.current &&
        Z.lastTime < cues[Z.current].end && t >= cues[Z.current].end && !m.paused) {
      Z.stopped = Z.current; Z.ownSeek = true;
      m.pause();
      m.currentTime = cues[Z.current].end - 0.01;
    }
    Z.lastTime = t;
    const i = cueAt(m.currentTime);
    if (i !== Z.current || String(i) !== ($(".zimu-player .zimu-captions") || {dataset: {}}).dataset.cue) {
      if (i >= 0 && i !== Z.stopped) Z.stopped = -1;
      if (i >= 0 || !Z.pauseAfter) Z.current = i;
      showCaption(i);
      if (i >= 0) highlight(i);
    }
  }

  function loop() {
    tick();
    const m = media();
    Z.raf = m && !m.paused ? requestAnimationFrame(loop) : 0;
  }

  // Media events do not bubble, but they do pass `document` in the capture phase.
  for (const type of ["play", "seeked", "timeupdate", "loadedmetadata"]) {
    document.addEventListener(type, (e) => {
      if (!e.target.classList || !e.target.classList.contains("zimu-media")) return;
      // A seek by the learner (not the pause's own step back) lets the line pause at its end again.
      if (type === "seeked") { if (Z.ownSeek) Z.ownSeek = false; else Z.stopped = -1; }
      tick();
      if (type === "play" && !Z.raf) Z.raf = requestAnimationFrame(loop);
      if (type === "loadedmetadata") { e.target.playbackRate = Z.rate || 1; drawControls(); }
    }, true);
  }

  function seekTo(i) {
    const m = media(), cue = Z.data && Z.data.cues[i];
    if (!m || !cue) return;
    m.currentTime = cue.start + 0.001;
    Z.current = i; Z.lastTime = cue.start; Z.stopped = -1;
    if (Z.loop >= 0) Z.loop = i;
    showCaption(i); highlight(i);
    m.play().catch(() => {});
  }

  function drawControls() {
    const box = $(".zimu-player .zimu-controls");
    if (!box || box.dataset.drawn === Z.dataText) return;
    box.dataset.drawn = Z.dataText;
    const rates = [0.5, 0.75, 1, 1.25].map((r) => `<option value="${r}" ${r === (Z.rate || 1) ? "selected" : ""}>${r}×</option>`).join("");
    const levels = ['<option value="0">off</option>'].concat([1, 2, 3, 4, 5, 6, 7].map((n) =>
      `<option value="${n}" ${n === Z.level ? "selected" : ""}>HSK ${n === 7 ? "7–9" : n}+</option>`)).join("");
    const toggle = (kind, label) => `<label><input type="checkbox" data-show="${kind}" ${Z.hide.has(kind) ? "" : "checked"}> ${label}</label>`;
    box.innerHTML = `<span class="group">Show ${toggle("hanzi", "Hanzi")}${toggle("pinyin", "Pinyin")}${toggle("english", "English")}</span>` +
      `<span class="group"><label><input type="checkbox" data-action="loop" ${Z.loop >= 0 ? "checked" : ""}> Loop this line</label>` +
      `<label><input type="checkbox" data-action="pause-after" ${Z.pauseAfter ? "checked" : ""}> Pause after each line</label></span>` +
      `<span class="group"><label>Speed <select data-action="rate">${rates}</select></label>` +
      `<label>Underline <select data-action="level">${levels}</select></label>` +
      `<button type="button" data-action="add-level">Save every word at or above this level</button>` +
      `<button type="button" data-action="fullscreen">Full screen</button></span>`;
    applyHide();
    renderSaved();
  }

  function applyHide() {
    const p = player();
    if (!p) return;
    for (const kind of ["hanzi", "pinyin", "english"]) p.classList.toggle(`hide-${kind}`, Z.hide.has(kind));
  }

  function markLevel() {
    document.querySelectorAll(".zimu-player .word, #transcript .word").forEach((el) => {
      const level = Number(el.dataset.hsk) || 10;  // on no HSK list: rarer than any level
      el.classList.toggle("above-level", Z.level > 0 && level >= Z.level);
    });
  }

  document.addEventListener("change", (e) => {
    const el = e.target;
    if (!el.closest || !el.closest(".zimu-player .zimu-controls")) return;
    const m = media();
    if (el.dataset.show) { el.checked ? Z.hide.delete(el.dataset.show) : Z.hide.add(el.dataset.show); applyHide(); }
    if (el.dataset.action === "loop") Z.loop = el.checked ? Math.max(Z.current, m ? cueAt(m.currentTime) : -1, 0) : -1;
    if (el.dataset.action === "pause-after") Z.pauseAfter = el.checked;
    if (el.dataset.action === "rate") { Z.rate = Number(el.value); if (m) m.playbackRate = Z.rate; }
    if (el.dataset.action === "level") { Z.level = Number(el.value); markLevel(); }
  });

  // ---- word cards and saved words --------------------------------------------------------------

  function cueOf(el, word) {
    const cue = el.closest("[data-i]") || el.closest(".zimu-captions");
    const i = cue ? Number(cue.dataset.i !== undefined ? cue.dataset.i : cue.dataset.cue) : NaN;
    return Number.isInteger(i) && i >= 0 ? i : Z.data.cards[word].first;
  }

  function showCard(el) {
    if (!load()) return;
    const word = el.dataset.word, card = Z.data.cards[word], box = $(".zimu-player .zimu-card");
    if (!card || !box) return;
    const pinyin = card.syllables.map((s, k) => `<span style="color:${Z.data.colours[card.tones[k]]}">${esc(s)}</span>`).join("");
    const level = card.hsk ? `HSK ${card.hsk === 7 ? "7–9" : card.hsk}` : "not in HSK 3.0";
    const senses = card.senses.length ? card.senses.map((s) => `<li>${esc(s)}</li>`).join("") : "<li>(not in CC-CEDICT)</li>";
    const saved = Z.saved.has(word);
    box.innerHTML = `<div class="card-head"><span class="card-hanzi">${esc(word)}</span> <span class="card-pinyin">${pinyin}</span></div>` +
      `<div class="card-meta"><span class="card-hsk">${level}</span> · <span class="card-count">${card.count}× in this video</span></div>` +
      `<ol class="card-senses">${senses}</ol>` +
      `<button type="button" class="card-listen" data-word="${esc(word)}" title="hear the word in a native voice (synthesised)">▶ Listen</button> ` +
      `<button type="button" class="card-save" data-word="${esc(word)}" data-cue="${cueOf(el, word)}">${saved ? "Saved ✓ (remove)" : "Save word"}</button>` +
      `<div class="card-listen-status" aria-live="polite"></div>`;
    box.hidden = false;
    if (el.closest(".zimu-card")) return;  // re-drawn after Save: stays where it is
    const r = el.getBoundingClientRect(), h = box.offsetHeight;
    box.style.left = `${Math.max(8, Math.min(r.left, window.innerWidth - 340))}px`;
    // Above a caption (below it lies the English line and the video's controls), else below the word
    // when there is room.
    const above = el.closest(".zimu-captions") || r.bottom + 6 + h > window.innerHeight;
    box.style.top = `${above ? Math.max(8, r.top - h - 6) : r.bottom + 6}px`;
  }

  function hideCardSoon() {
    clearTimeout(Z.hideTimer);
    Z.hideTimer = setTimeout(() => { const b = $(".zimu-player .zimu-card"); if (b && !Z.pinned) b.hidden = true; }, 400);
  }

  document.addEventListener("mouseover", (e) => {
    const word = e.target.closest && e.target.closest(".zimu-player .word, #transcript .word");
    if (word) { clearTimeout(Z.hideTimer); if (!Z.pinned) showCard(word); return; }
    if (e.target.closest && e.target.closest(".zimu-card")) { clearTimeout(Z.hideTimer); return; }
    if (!Z.pinned) hideCardSoon();
  });

  function syncSaved() {
    // The hidden Gradio textbox carries the saved words to the server's export handler.
    const box = $("#saved-words textarea, #saved-words input");
    if (box) {
      box.value = JSON.stringify(Array.from(Z.saved.values()));
      box.dispatchEvent(new Event("input", {bubbles: true}));
    }
    renderSaved();
  }

  function renderSaved() {
    const list = $(".zimu-player .zimu-saved");
    if (!list || !Z.data) return;
    const items = Array.from(Z.saved.values()).map((s) =>
      `<li><span class="word" data-word="${esc(s.word)}" data-hsk="${Z.data.cards[s.word].hsk || 0}">${esc(s.word)}</span> ` +
      `${esc(Z.data.cards[s.word].pinyin)} <button type="button" class="saved-remove" data-word="${esc(s.word)}" title="remove">×</button></li>`);
    list.innerHTML = `<b>Saved words (${items.length})</b>` + (items.length ? `<ul>${items.join("")}</ul>` :
      " — hover a word and press “Save word”; export them below as an Anki deck.");
  }

  // ---- ▶ on a word card: the server speaks the card's reading (gr.api "speak_word", cached there) ---

  async function speakWord(button) {
    const word = button.dataset.word, card = Z.data.cards[word];
    const status = button.parentElement.querySelector(".card-listen-status");
    const say = (text) => { if (status) status.textContent = text; };
    say("…");
    try {
      const post = await fetch("/gradio_api/call/speak_word", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({data: [word, card.syllables.join(" "), card.tones.join(" ")]})});
      const {event_id} = await post.json();
      const events = await (await fetch(`/gradio_api/call/speak_word/${event_id}`)).text();
      const complete = events.match(/event: complete\ndata: (.*)/);
      if (!complete) {
        const error = events.match(/event: error\ndata: (.*)/);
        say(error && error[1] !== "null" ? JSON.parse(error[1]) : "No native voice here.");
        return;
      }
      const url = JSON.parse(complete[1])[0];
      Z.wordAudio = Z.wordAudio || new Audio();
      Z.wordAudio.src = url;
      await Z.wordAudio.play();
      say("");
    } catch (err) {
      say("The word could not be played.");
    }
  }

  function toggleSaved(word, cue) {
    Z.saved.has(word) ? Z.saved.delete(word) : Z.saved.set(word, {word, cue});
    syncSaved();
  }

  document.addEventListener("click", (e) => {
    const t = e.target;
    if (!t.closest || !load()) return;
    const listen = t.closest(".card-listen");
    if (listen) { speakWord(listen); return; }
    const save = t.closest(".card-save");
    if (save) { toggleSaved(save.dataset.word, Number(save.dataset.cue)); showCard(save); Z.pinned = false; return; }
    const remove = t.closest(".saved-remove");
    if (remove) { toggleSaved(remove.dataset.word); return; }
    const action = t.closest("button[data-action]");
    if (action && action.dataset.action === "add-level") {
      if (!Z.level) { const l = $(".zimu-player .zimu-saved"); if (l) l.insertAdjacentHTML("beforeend", " <i>Choose a level to underline first.</i>"); return; }
      const level = Z.level;
      for (const [word, card] of Object.entries(Z.data.cards)) {
        if ((card.hsk || 10) >= level && !Z.saved.has(word)) Z.saved.set(word, {word, cue: card.first});
      }
      syncSaved();
      return;
    }
    if (action && action.dataset.action === "fullscreen") { const s = $(".zimu-player .zimu-stage"); if (s) s.requestFullscreen().catch(() => {}); return; }
    const word = t.closest(".zimu-player .word, #transcript .word");
    if (word) { Z.pinned = true; showCard(word); e.stopPropagation(); return; }
    if (!t.closest(".zimu-card")) { Z.pinned = false; const b = $(".zimu-player .zimu-card"); if (b) b.hidden = true; }
    const cue = t.closest("#transcript .cue");
    if (cue) seekTo(Number(cue.dataset.i));
  }, true);

  // The player's HTML arrives after the page loads (and again with each result): draw its controls.
  new MutationObserver(() => { if (player() && load()) { drawControls(); markLevel(); } })
    .observe(document.documentElement, {childList: true, subtree: true});
})();
