// f5vi playground: plain JS over the public API (no build step, no external files).
//
// Progress: the SSE route is read with fetch() and a stream reader, not EventSource, because
// EventSource cannot send the Authorization header the API key needs; if that fails the page polls.
// Streaming: WS /tts/stream (framed s16le PCM, key as the "bearer.<key>" subprotocol) played through
// Web Audio as frames arrive. An <audio> element cannot play a streamed POST with a header, and
// Media Source Extensions take neither WAV nor raw PCM, so Web Audio is what plays progressively.

import { clearReadAlong, showReadAlong } from "./readalong.js";

const $ = (id) => document.getElementById(id);
const apiBase = new URL("..", window.location.href); // the page lives at <base>/ui/
const apiUrl = (path) => new URL(path.replace(/^\//, ""), apiBase).href;
const SAMPLE_RATE = 24000;
const FRAME_HEADER_BYTES = 16;

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function apiKey() {
  return $("api-key").value.trim();
}

function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(apiUrl(path), { ...options, headers: authHeaders(options.headers) });
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) {
    const error = body && body.error ? body.error : {};
    throw new ApiError(response.status, error.code, error.message || response.statusText);
  }
  return body;
}

function describeError(error) {
  if (error instanceof ApiError) {
    const hint = error.status === 401 ? " (enter the server's API key above)" : "";
    return `${error.message}${hint} [${error.code || error.status}]`;
  }
  return String(error && error.message ? error.message : error);
}

function setStage(text, isError = false) {
  const stage = $("stage");
  stage.textContent = text;
  stage.classList.toggle("error", isError);
}

function fillList(list, items) {
  list.replaceChildren(
    ...items.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
}

// ------------------------------------------------------------------------------------- server, voices
async function showHealth() {
  let body;
  try {
    const response = await fetch(apiUrl("/health"));
    body = await response.json();
  } catch (error) {
    $("health").textContent = `Server unreachable: ${describeError(error)}`;
    return;
  }
  const model = body.model ? ` · model ${body.model.arch} on ${body.model.device}` : "";
  const demo = body.is_demo ? " · DEMO model" : "";
  $("health").textContent = `Server ${body.status}${model}${demo}`;
  $("demo-banner").hidden = !body.is_demo; // loud: a banner across the page, not a word in the header
  if (body.status === "loading") setTimeout(showHealth, 3000);
}

let voices = [];

async function loadVoices(selectId) {
  const select = $("voice");
  try {
    const body = await api("/voices");
    voices = body.voices;
  } catch (error) {
    $("voice-info").textContent = `Cannot list voices: ${describeError(error)}`;
    return;
  }
  const previous = selectId || select.value;
  select.replaceChildren(
    ...voices.map((voice) => {
      const option = document.createElement("option");
      option.value = voice.id;
      option.textContent = `${voice.id} (${voice.duration_seconds.toFixed(1)} s)`;
      return option;
    }),
  );
  if (voices.some((voice) => voice.id === previous)) select.value = previous;
  showVoice();
}

function showVoice() {
  const voice = voices.find((v) => v.id === $("voice").value);
  $("voice-info").textContent = !voice
    ? "No voice yet: upload one below."
    : voice.transcript
      ? `Says: “${voice.transcript}”`
      : "No transcript yet: it is transcribed on first use.";
}

async function uploadVoice(event) {
  event.preventDefault();
  const form = new FormData($("upload-form"));
  for (const field of ["voice_id", "transcript"]) {
    if (!String(form.get(field) || "").trim()) form.delete(field);
  }
  const status = $("upload-status");
  status.classList.remove("error");
  status.textContent = form.has("transcript")
    ? "Uploading…"
    : "Uploading and transcribing (this can take a while)…";
  try {
    const voice = await api("/voices", { method: "POST", body: form });
    await loadVoices(voice.id);
    status.textContent = `Uploaded “${voice.id}”: selected.`;
  } catch (error) {
    status.textContent = `Upload failed: ${describeError(error)}`;
    status.classList.add("error");
  }
}

// ------------------------------------------------------------------------------------- normalisation
// "TERM = READING" lines (the server's lexicon file format; "==" is case-sensitive), "#" comments.
function lexicon() {
  const entries = [];
  for (const raw of $("lexicon").value.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const exact = line.includes("==");
    const [term, ...rest] = line.split(exact ? "==" : "=");
    entries.push({ term: term.trim(), say: rest.join("=").trim(), case_sensitive: exact });
  }
  return entries;
}

function request() {
  // A blank Speed field means the server's default (F5VI_SPEED): the field is left out, not sent as 0.
  const speed = $("speed").value.trim();
  const body = { text: $("text").value, ref_name: $("voice").value };
  if (speed !== "") body.speed = Number(speed);
  body.text_type = $("text-type").value;
  const entries = lexicon();
  if (entries.length) body.lexicon = entries;
  return body;
}

// What the text front end did before normalising: SSML parts and the lexicon entries that fired.
function showFrontEnd(plan, text) {
  const parts = plan.ssml || plan.segments.length > 1 ? plan.segments : [];
  fillList(
    $("norm-parts"),
    parts.map(
      (s, i) =>
        `part ${i + 1} (${s.voice_id}, speed ${s.speed}` +
        (s.pause_before_seconds ? `, ${Math.round(s.pause_before_seconds * 1000)} ms silence before` : "") +
        `): ${s.normalized_text}`,
    ).concat(plan.trailing_pause_seconds ? [`then ${Math.round(plan.trailing_pause_seconds * 1000)} ms silence`] : []),
  );
  fillList(
    $("norm-lexicon"),
    plan.lexicon_hits.map(
      (h) =>
        `“${text.slice(h.char_start, h.char_end)}” (characters ${h.char_start}–${h.char_end}) → ` +
        `“${h.entry.say}” — ${h.entry.level} lexicon, ${h.entry.origin}`,
    ),
  );
}

let estimatedSeconds = null; // of the last preview: the streaming progress bar's total

async function preview() {
  const section = $("normalized");
  estimatedSeconds = null;
  try {
    const body = request();
    const plan = await api("/normalize", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    $("norm-summary").textContent =
      `${plan.chunk_count} chunk(s), about ${plan.estimated_duration_seconds.toFixed(1)} s ` +
      `with ${plan.voice_id} at speed ${plan.speed} (normaliser: ${plan.normalizer}).`;
    $("norm-chunks").replaceChildren(
      ...plan.chunks.map((chunk) => {
        const li = document.createElement("li");
        const meta = document.createElement("span");
        meta.className = "meta";
        meta.textContent = `≈ ${chunk.estimated_seconds.toFixed(1)} s · ${chunk.bytes} bytes`;
        li.append(chunk.text, meta);
        return li;
      }),
    );
    fillList($("norm-warnings"), plan.warnings);
    showFrontEnd(plan, body.text);
    estimatedSeconds = plan.estimated_duration_seconds;
  } catch (error) {
    $("norm-summary").textContent = `Cannot normalise: ${describeError(error)}`;
    $("norm-chunks").replaceChildren();
    fillList($("norm-warnings"), []);
    fillList($("norm-parts"), []);
    fillList($("norm-lexicon"), []);
  }
  section.hidden = false;
}

// ------------------------------------------------------------------------------------- jobs
let activeJob = null; // { id, abort }
let activeStream = null; // { socket, player }

function setBusy(busy) {
  $("synthesize").disabled = busy;
  $("stream").disabled = busy;
  $("stop").disabled = !busy;
}

function showResult(src, filename, warnings) {
  clearReadAlong();
  const audio = $("audio");
  audio.src = src;
  audio.load();
  const link = $("download");
  link.href = src;
  link.download = filename;
  link.textContent = `Download ${filename}`;
  link.hidden = false;
  fillList($("result-warnings"), warnings || []);
}

function showProgress(job) {
  $("progress").value = job.progress;
  if (activeJob && activeJob.cancelling) return; // "Cancelling…" stays until the job's last event
  // chunk_index counts the chunks whose audio is done (0 while the first is being synthesised)
  const chunks = job.chunk_count ? ` — ${job.chunk_index || 0} of ${job.chunk_count} chunk(s) done` : "";
  const eta = job.eta_seconds ? `, about ${Math.ceil(job.eta_seconds)} s left` : "";
  setStage(`${job.state}: ${job.stage || job.extra || ""}${chunks}${eta}`);
}

function finishJob(job, text) {
  showProgress(job);
  if (job.state === "succeeded" && job.result) {
    const r = job.result;
    showResult(r.wav_url, r.filename, r.warnings);
    showReadAlong(text, r);
    setStage(
      `Done: ${r.duration_seconds.toFixed(1)} s of audio in ${r.processing_time_seconds.toFixed(1)} s ` +
        `(seed ${r.seed}).`,
    );
  } else if (job.state === "cancelled") {
    $("progress").value = 0;
    setStage("Cancelled.");
  } else {
    setStage(`Failed: ${job.error ? job.error.message : job.state}`, true);
  }
}

// Server-Sent Events read from a fetch() body: returns the final job, or null if the stream broke.
async function followEvents(jobId, signal) {
  const response = await fetch(apiUrl(`/tts/progress/${encodeURIComponent(jobId)}/events`), {
    headers: authHeaders({ Accept: "text/event-stream" }),
    signal,
  });
  if (!response.ok || !response.body) return null;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue; // retry:, comments (keep-alive)
      const job = JSON.parse(data.join("\n"));
      if (event === "done") return job;
      showProgress(job);
    }
  }
}

async function pollJob(jobId, signal) {
  for (;;) {
    const job = await api(`/tts/progress/${encodeURIComponent(jobId)}`, { signal });
    if (["succeeded", "failed", "cancelled"].includes(job.state)) return job;
    showProgress(job);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function synthesize() {
  setBusy(true);
  $("progress").value = 0;
  setStage("Submitting…");
  preview();
  const abort = new AbortController();
  const submitted = request();
  try {
    const job = await api("/tts", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...submitted, format: $("format").value }),
    });
    activeJob = { id: job.job_id, abort };
    showProgress(job);
    let final = null;
    try {
      final = await followEvents(job.job_id, abort.signal);
    } catch (error) {
      if (abort.signal.aborted) throw error;
    }
    finishJob(final || (await pollJob(job.job_id, abort.signal)), submitted.text);
  } catch (error) {
    if (!abort.signal.aborted) setStage(`Failed: ${describeError(error)}`, true);
  } finally {
    activeJob = null;
    setBusy(false);
  }
}

// ------------------------------------------------------------------------------------- streaming
class PcmPlayer {
  constructor() {
    this.context = new AudioContext();
    this.nextStart = 0;
    this.pieces = [];
    this.sources = [];
    this.samples = 0;
    this.stopped = false;
  }

  play(pcm) {
    this.pieces.push(pcm);
    this.samples += pcm.length;
    const buffer = this.context.createBuffer(1, pcm.length, SAMPLE_RATE);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i += 1) channel[i] = pcm[i] / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const at = Math.max(this.nextStart, this.context.currentTime + 0.05);
    source.start(at);
    this.nextStart = at + buffer.duration;
    this.sources.push(source);
  }

  stop() {
    this.stopped = true;
    for (const source of this.sources) source.stop();
    this.context.close();
  }

  wavBlob() {
    const bytes = this.samples * 2;
    const view = new DataView(new ArrayBuffer(44));
    const ascii = (offset, text) => [...text].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
    ascii(0, "RIFF");
    view.setUint32(4, 36 + bytes, true);
    ascii(8, "WAVE");
    ascii(12, "fmt ");
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // mono
    view.setUint32(24, SAMPLE_RATE, true);
    view.setUint32(28, SAMPLE_RATE * 2, true);
    view.setUint16(32, 2, true);
    view.setUint16(34, 16, true);
    ascii(36, "data");
    view.setUint32(40, bytes, true);
    return new Blob([view, ...this.pieces], { type: "audio/wav" });
  }
}

function stream() {
  const protocols = ["f5vi.tts.v1"];
  if (apiKey()) protocols.push(`bearer.${apiKey()}`);
  let socket;
  try {
    socket = new WebSocket(apiUrl("/tts/stream").replace(/^http/, "ws"), protocols);
  } catch (error) {
    setStage(`Cannot connect: ${describeError(error)} (the key must be plain ASCII)`, true);
    return;
  }
  setBusy(true);
  preview();
  $("progress").value = 0; // against the preview's estimate: the stream itself tells no total
  setStage("Connecting…");
  const player = new PcmPlayer(); // created in the click: browsers allow sound after a gesture
  const started = performance.now();
  const timings = { firstAudioMs: "", frames: 0, doneMs: "" };
  let finished = false;
  activeStream = { socket, player };
  socket.binaryType = "arraybuffer";

  socket.onmessage = (event) => {
    if (typeof event.data !== "string") {
      if (player.stopped) return;
      const header = new DataView(event.data, 0, FRAME_HEADER_BYTES);
      const samples = header.getUint32(12, true);
      if (!player.samples) timings.firstAudioMs = Math.round(performance.now() - started);
      // s16le: Int16Array reads the platform's byte order, little-endian on every browser platform
      player.play(new Int16Array(event.data, FRAME_HEADER_BYTES, samples));
      timings.frames += 1;
      const received = player.samples / SAMPLE_RATE;
      if (estimatedSeconds) $("progress").value = Math.min(99, (100 * received) / estimatedSeconds);
      // Only what is known: audio has arrived; whether more is coming, the done frame tells.
      setStage(`Playing: ${received.toFixed(1)} s of audio received so far…`);
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      socket.send(JSON.stringify(speakMessage(request())));
    } else if (message.type === "start") {
      setStage("Synthesising the first chunk…");
    } else if (message.type === "done" || message.type === "error") {
      finished = true;
      socket.close(1000);
      timings.doneMs = Math.round(performance.now() - started);
      Object.assign($("result").dataset, timings); // for people and tests: when the audio came
      if (message.type === "done") {
        $("progress").value = 100;
        const first = message.first_chunk_seconds;
        const whole = first >= 0.9 * message.elapsed_seconds;
        setStage(
          `Streamed ${message.duration_seconds.toFixed(1)} s of audio in ${message.chunks} frame(s); ` +
            `first audio after ${first.toFixed(2)} s, synthesis finished after ` +
            `${message.elapsed_seconds.toFixed(1)} s` +
            (whole ? " (the audio came only at the end)." : ", so it played while the rest was made."),
        );
        showResult(URL.createObjectURL(player.wavBlob()), "stream.wav", []);
      } else if (message.code === "cancelled") {
        $("progress").value = 0;
        setStage("Cancelled.");
      } else {
        $("progress").value = 0;
        setStage(`Stream failed: ${message.message} [${message.code}]`, true);
      }
    }
  };
  socket.onclose = () => {
    if (!finished) {
      $("progress").value = 0;
      setStage("The stream closed early (wrong API key, or the server went away).", true);
    }
    activeStream = null;
    setBusy(false);
  };
}

function speakMessage({ text, ref_name: voice, speed, text_type, lexicon: entries }) {
  return { type: "speak", id: "playground", text, voice, speed, text_type, lexicon: entries };
}

async function stop() {
  if (activeStream) {
    activeStream.socket.send(JSON.stringify({ type: "cancel" }));
    activeStream.player.stop();
    return;
  }
  const job = activeJob;
  if (job) {
    // Said before the request: the job's own last event ("Cancelled.") may arrive before the
    // answer to the kill, and must not be overwritten by it.
    job.cancelling = true;
    setStage("Cancelling…");
    try {
      const answer = await api(`/tts/kill/${encodeURIComponent(job.id)}`, { method: "POST" });
      $("result").dataset.cancel = answer.status; // for people and tests: what the kill said
    } catch (error) {
      job.cancelling = false;
      if (activeJob === job) setStage(`Cannot cancel: ${describeError(error)}`, true);
    }
  }
}

// ------------------------------------------------------------------------------------- wiring
$("voice").addEventListener("change", showVoice);
$("reload-voices").addEventListener("click", () => loadVoices());
$("upload-form").addEventListener("submit", uploadVoice);
$("preview").addEventListener("click", preview);
$("synthesize").addEventListener("click", synthesize);
$("stream").addEventListener("click", stream);
$("stop").addEventListener("click", stop);
$("api-key").addEventListener("change", () => loadVoices());
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadVoices();
});
showHealth();
loadVoices();
