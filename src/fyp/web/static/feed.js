// fyp swipe feed: one card at a time, real events batched to POST /v1/events.
"use strict";
(function () {
  const SKIP_MS = 2000;        // leaving a card sooner than this is a skip
  const FLUSH_MS = 1500;       // events are sent at least this often
  const PREFETCH_LEFT = 4;     // fetch the next page when this few cards are left
  const PAGE = 10;
  const $ = (id) => document.getElementById(id);

  const state = {
    user: null, key: null, cards: [], idx: -1, cursor: null, loading: null,
    exhausted: false, pages: 0, queue: [], sending: false, sent: 0,
  };
  // Tests and curious people can look at the live state from the console.
  window.fyp = { state, flush: () => flush(), next: () => go(1) };

  function uid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "e" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  function hash(s) {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); }
    return h >>> 0;
  }
  function gradient(id) {
    const h = hash(id), a = h % 360, b = (a + 40 + (h >> 9) % 120) % 360, deg = (h >> 17) % 360;
    return `linear-gradient(${deg}deg, hsl(${a} 70% 42%), hsl(${b} 75% 30%))`;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function toast(msg) {
    const t = $("toast");
    t.textContent = msg; t.classList.add("on");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => t.classList.remove("on"), 1200);
  }

  async function api(path, opts) {
    const o = Object.assign({ headers: {} }, opts || {});
    o.headers = Object.assign({ "Authorization": "Bearer " + state.key }, o.headers);
    if (o.body && typeof o.body !== "string") {
      o.body = JSON.stringify(o.body);
      o.headers["Content-Type"] = "application/json";
    }
    const r = await fetch(path, o);
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new Error((body && body.error && body.error.message) || r.statusText);
    return body;
  }

  // ---------- events ----------
  function emit(card, type, more) {
    if (type !== "impression" && type !== "play" && type !== "skip") card.engaged = true;
    const ev = Object.assign({
      event_id: uid(), user_id: state.user, type: type, ts: new Date().toISOString(),
      video_id: card.video.id, request_id: card.requestId,
    }, more || {});
    state.queue.push(ev);
    if (state.queue.length >= 50) flush();
  }
  async function flush(keepalive) {
    if (state.sending || !state.queue.length || !state.key) return;
    const batch = state.queue.splice(0, 500);
    state.sending = true;
    try {
      await api("/v1/events", { method: "POST", body: { events: batch }, keepalive: !!keepalive });
      state.sent += batch.length;
    } catch (e) {
      state.queue.unshift(...batch);  // retried on the next flush; event ids make it idempotent
    } finally {
      state.sending = false;
    }
  }
  setInterval(flush, FLUSH_MS);
  window.addEventListener("pagehide", () => { leave(current()); flush(true); });
  document.addEventListener("visibilitychange", () => {
    const c = current();
    if (document.hidden) { leave(c); flush(true); } else if (c) { c.shownAt = performance.now(); }
  });

  // ---------- cards ----------
  function current() { return state.cards[state.idx] || null; }

  function buildCard(item, requestId, page) {
    const v = item.video;
    const card = { video: v, reasons: item.reasons || {}, requestId, page, shownAt: null,
                   impressed: false, liked: false, followed: false };
    const art = el("article", "vcard");
    art.dataset.videoId = v.id;
    art.dataset.hashtags = (v.hashtags || []).join(" ");
    art.dataset.page = String(page);
    art.dataset.requestId = requestId;
    art.style.top = state.cards.length * 100 + "dvh";
    const poster = el("div", "poster");
    poster.style.background = gradient(v.id);
    if (v.media_url) {
      const vid = el("video");
      vid.src = v.media_url; vid.muted = true; vid.loop = true; vid.playsInline = true;
      vid.preload = "metadata";
      if (v.thumbnail_url) vid.poster = v.thumbnail_url;
      poster.appendChild(vid);
      card.media = vid;
    } else {
      const word = v.hashtags && v.hashtags.length ? "#" + v.hashtags[0] : "@" + v.creator_id;
      const big = el("div", "big", word);
      big.style.setProperty("--len", String(Math.max(6, word.length)));
      poster.appendChild(big);
    }
    art.appendChild(poster);
    art.appendChild(el("div", "shade"));
    const meta = el("div", "meta");
    const who = el("div", "creator", "@" + v.creator_id);
    const follow = el("button", "follow", "Follow");
    follow.type = "button";
    follow.addEventListener("click", () => {
      card.followed = !card.followed;
      emit(card, card.followed ? "follow" : "unfollow", { creator_id: v.creator_id });
      follow.textContent = card.followed ? "Following" : "Follow";
      follow.classList.toggle("on", card.followed);
    });
    who.appendChild(follow);
    meta.appendChild(who);
    if (v.caption) meta.appendChild(el("div", "caption", v.caption));
    meta.appendChild(el("div", "hashtags", (v.hashtags || []).map((t) => "#" + t).join(" ")));
    meta.appendChild(el("div", "sound", "♫ " + (v.sound_id || "original sound")));
    art.appendChild(meta);
    const rail = el("div", "rail");
    const button = (icon, label, fn) => {
      const b = el("button"); b.type = "button"; b.setAttribute("aria-label", label);
      b.dataset.action = label.toLowerCase().replace(/ /g, "-");
      b.appendChild(el("span", "", icon)); b.appendChild(el("small", "", label));
      b.addEventListener("click", (e) => { e.stopPropagation(); fn(b); });
      rail.appendChild(b);
      return b;
    };
    button("♥", "Like", (b) => like(card, b));
    button("✎", "Comment", () => {
      const text = window.prompt("Comment");
      if (text) { emit(card, "comment", { extra: { text: text.slice(0, 500) } }); toast("Comment sent"); }
    });
    button("↗", "Share", () => {
      emit(card, "share");
      if (navigator.clipboard) navigator.clipboard.writeText(location.origin + "/?v=" + v.id).catch(() => {});
      toast("Shared");
    });
    button("⊘", "Not interested", () => { emit(card, "not_interested"); toast("Fewer like this"); go(1); });
    button("⚑", "Report", () => {
      if (window.confirm("Report this video?")) { emit(card, "report"); toast("Reported"); go(1); }
    });
    button("?", "Why", () => openWhy());
    art.appendChild(rail);
    art.addEventListener("dblclick", () => { if (!card.liked) like(card, art.querySelector('[data-action="like"]')); });
    card.el = art;
    return card;
  }

  function like(card, b) {
    card.liked = !card.liked;
    emit(card, card.liked ? "like" : "unlike");
    if (b) b.classList.toggle("on", card.liked);
    card.el.dataset.liked = card.liked ? "1" : "";
  }

  function enter(card) {
    if (!card) return;
    card.shownAt = performance.now();
    if (!card.impressed) { card.impressed = true; emit(card, "impression"); }
    if (card.media) card.media.play().catch(() => {});
  }
  function leave(card) {
    if (!card || card.shownAt === null) return;
    const dwell = Math.round(performance.now() - card.shownAt);
    card.shownAt = null;
    if (card.media) card.media.pause();
    emit(card, "play", { watch_ms: dwell });
    // A quick swipe away is a skip, unless the user engaged (liked, followed...) meanwhile.
    if (dwell < SKIP_MS && !card.engaged) emit(card, "skip");
  }

  async function loadMore() {
    if (state.loading) return state.loading;
    if (state.exhausted && state.cursor === null && state.pages > 0) return null;
    state.loading = (async () => {
      // Send what happened first, so the next page already reflects it.
      await flush();
      const q = new URLSearchParams({ count: String(PAGE) });
      if (state.cursor) q.set("cursor", state.cursor);
      try {
        const res = await api(`/v1/users/${encodeURIComponent(state.user)}/feed?${q}`);
        state.pages += 1;
        state.cursor = res.cursor;
        state.exhausted = !!res.exhausted;
        const track = $("track");
        for (const item of res.items) {
          const card = buildCard(item, res.request_id, state.pages);
          state.cards.push(card);
          track.appendChild(card.el);
        }
        if (!res.items.length && !state.cards.length) toast("Nothing to show yet");
      } catch (e) {
        toast("Could not load: " + e.message);
      }
    })();
    try { await state.loading; } finally { state.loading = null; }
    return null;
  }

  function go(step) {
    const to = state.idx + step;
    if (to < 0) return;
    if (to >= state.cards.length) { loadMore().then(() => { if (to < state.cards.length) go(step); }); return; }
    leave(current());
    state.idx = to;
    $("track").style.transform = `translateY(${-to * 100}dvh)`;
    document.body.dataset.index = String(to);
    enter(current());
    if ($("why").classList.contains("on")) renderWhy();
    if (state.cards.length - to <= PREFETCH_LEFT) loadMore();
  }

  // ---------- why am I seeing this? ----------
  function renderWhy() {
    const c = current(), body = $("why-body");
    body.textContent = "";
    if (!c) return;
    const r = c.reasons || {};
    const p = el("p");
    p.appendChild(el("b", "", "Source: "));
    p.appendChild(document.createTextNode((r.sources || [r.source]).filter(Boolean).join(", ") || "unknown"));
    if (r.exploration) p.appendChild(el("span", "pill", " exploration"));
    if (r.repeat) p.appendChild(el("span", "pill", " repeat"));
    body.appendChild(p);
    if (r.score !== undefined && r.score !== null) body.appendChild(el("p", "", "Score: " + Number(r.score).toFixed(3)));
    const sigs = r.signals || [];
    const max = Math.max(1e-9, ...sigs.map((s) => Math.abs(Number(s.value) || 0)));
    for (const s of sigs) {
      const row = el("div", "sig");
      row.appendChild(el("span", "", s.name));
      const tr = el("div", "track2"), fill = el("div", "fill");
      const v = Number(s.value) || 0, w = Math.abs(v) / max * 100;
      fill.style.width = w + "%";
      fill.style.background = v < 0 ? "var(--bad)" : "var(--accent2)";
      tr.appendChild(fill); row.appendChild(tr);
      row.appendChild(el("span", "num", v.toFixed(3)));
      body.appendChild(row);
    }
    if (!sigs.length) body.appendChild(el("p", "muted", "No score parts for this item."));
    body.appendChild(el("p", "muted", "Hashtags: " + (c.video.hashtags || []).map((t) => "#" + t).join(" ")));
  }
  function openWhy() { renderWhy(); $("why").classList.add("on"); }
  $("why-open").addEventListener("click", openWhy);
  $("why-close").addEventListener("click", () => $("why").classList.remove("on"));

  // ---------- input: keys, wheel, touch ----------
  document.addEventListener("keydown", (e) => {
    if (!state.user || e.target.closest("input, textarea, select")) return;
    if (e.key === "ArrowDown" || e.key === "j" || e.key === "PageDown") { e.preventDefault(); go(1); }
    else if (e.key === "ArrowUp" || e.key === "k" || e.key === "PageUp") { e.preventDefault(); go(-1); }
    else if (e.key === "l") { const c = current(); if (c) like(c, c.el.querySelector('[data-action="like"]')); }
    else if (e.key === "w") { $("why").classList.contains("on") ? $("why").classList.remove("on") : openWhy(); }
  });
  let wheelLock = 0, wheelSum = 0;
  $("stage").addEventListener("wheel", (e) => {
    e.preventDefault();
    const now = Date.now();
    if (now < wheelLock) return;
    wheelSum += e.deltaY;
    if (Math.abs(wheelSum) > 40) { go(wheelSum > 0 ? 1 : -1); wheelSum = 0; wheelLock = now + 450; }
  }, { passive: false });
  let touchY = null;
  $("stage").addEventListener("touchstart", (e) => { touchY = e.touches[0].clientY; }, { passive: true });
  $("stage").addEventListener("touchmove", (e) => { if (!e.target.closest(".why")) e.preventDefault(); }, { passive: false });
  $("stage").addEventListener("touchend", (e) => {
    if (touchY === null) return;
    const dy = touchY - e.changedTouches[0].clientY;
    touchY = null;
    if (Math.abs(dy) > 50) go(dy > 0 ? 1 : -1);
  });
  $("next").addEventListener("click", () => go(1));
  $("prev").addEventListener("click", () => go(-1));

  // ---------- start: pick or create a user ----------
  async function begin(payload) {
    $("start-error").textContent = "";
    const r = await fetch("/web/session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload),
    });
    const body = await r.json().catch(() => null);
    if (!r.ok) { $("start-error").textContent = (body && body.error && body.error.message) || "Could not start"; return; }
    state.user = body.user_id; state.key = body.key;
    localStorage.setItem("fyp.user", state.user);
    $("who").textContent = "@" + state.user;
    $("start").hidden = true;
    $("stage").classList.add("on");
    document.body.dataset.user = state.user;
    await loadMore();
    go(1);
  }
  const LANGUAGE_OF = { US: "en", GB: "en", IN: "en", DE: "de", BR: "pt", JP: "ja", FR: "fr", ES: "es", MX: "es", KR: "ko" };
  document.querySelector("select[name=region]").addEventListener("change", (e) => {
    const lang = LANGUAGE_OF[e.target.value];
    if (lang) document.querySelector("select[name=language]").value = lang;
  });
  for (const chip of document.querySelectorAll("#interests .chip")) {
    chip.addEventListener("click", () => chip.setAttribute("aria-pressed", chip.getAttribute("aria-pressed") === "true" ? "false" : "true"));
  }
  $("create").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const interests = [...document.querySelectorAll('#interests .chip[aria-pressed="true"]')].map((c) => c.dataset.tag);
    begin({ region: f.get("region"), language: f.get("language"), interests });
  });
  $("existing").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = new FormData(e.target).get("user_id").trim();
    if (id) begin({ user_id: id });
  });
  const saved = localStorage.getItem("fyp.user");
  if (saved) {
    $("resume").hidden = false;
    $("resume-id").textContent = "@" + saved;
    $("resume-go").addEventListener("click", () => begin({ user_id: saved }));
  }
  $("switch").addEventListener("click", () => { leave(current()); flush(true); location.reload(); });
})();
