// Read-along: the submitted text lights up word by word as the <audio> plays, from the job
// result's timestamps (each spoken word points at the characters of the text it was read from, so
// "2024" lights up while "hai nghìn không trăm hai mươi tư" is said). The WebVTT subtitles ride on
// the same <audio> as a <track>; the current cue is shown under the text.

const $ = (id) => document.getElementById(id);
let frame = null;

// Tokens of the submitted text with their times: the spoken words of one token merged.
function timedTokens(words) {
  const tokens = [];
  for (const w of words) {
    const last = tokens[tokens.length - 1];
    if (last && last.charStart === w.char_start && last.charEnd === w.char_end) {
      last.end = Math.max(last.end, w.end);
    } else {
      tokens.push({ charStart: w.char_start, charEnd: w.char_end, start: w.start, end: w.end });
    }
  }
  return tokens;
}

export function clearReadAlong() {
  if (frame !== null) cancelAnimationFrame(frame);
  frame = null;
  $("readalong").replaceChildren();
  $("readalong").hidden = true;
  $("subtitles").hidden = true;
  $("caption").textContent = "";
  for (const track of $("audio").querySelectorAll("track")) track.remove();
}

export function showReadAlong(text, result) {
  clearReadAlong();
  const stamps = result.timestamps;
  if (!stamps || !stamps.words.length) return;
  const box = $("readalong");
  const tokens = timedTokens(stamps.words);
  const spans = [];
  let position = 0;
  for (const token of tokens) {
    if (token.charStart > position) box.append(text.slice(position, token.charStart));
    const span = document.createElement("span");
    span.textContent = text.slice(token.charStart, token.charEnd);
    span.dataset.start = token.start;
    span.dataset.end = token.end;
    box.append(span);
    spans.push(span);
    position = Math.max(position, token.charEnd);
  }
  box.append(text.slice(position));
  box.dataset.method = stamps.method;
  box.title = `word times: ${stamps.method}`;
  box.hidden = false;

  const urls = result.subtitle_urls;
  if (urls) {
    for (const [id, format] of [["download-srt", "srt"], ["download-vtt", "vtt"]]) {
      const link = $(id);
      link.href = urls[format];
      link.download = `${result.filename.replace(/\.[^.]+$/, "")}.${format}`;
    }
    $("subtitles").hidden = false;
    const track = document.createElement("track");
    Object.assign(track, { kind: "subtitles", srclang: "vi", label: "Tiếng Việt", src: urls.vtt });
    const audio = $("audio");
    audio.append(track);
    track.track.mode = "hidden"; // loaded and timed; shown by us under the text
    track.track.addEventListener("cuechange", () => {
      const cues = Array.from(track.track.activeCues || []);
      $("caption").textContent = cues.map((cue) => cue.text).join("\n");
    });
  }

  const audio = $("audio");
  let current = -1;
  const paint = () => {
    const t = audio.currentTime;
    let index = -1;
    for (let i = 0; i < tokens.length && tokens[i].start <= t; i++) index = i;
    if (index !== current) {
      spans.forEach((span, i) => {
        span.classList.toggle("said", i < index);
        span.classList.toggle("now", i === index && t < tokens[i].end + 0.25);
      });
      current = index;
    }
    frame = audio.paused ? null : requestAnimationFrame(paint);
  };
  audio.onplay = () => {
    if (frame === null) frame = requestAnimationFrame(paint);
  };
  audio.onseeked = paint;
  audio.onpause = paint;
}
