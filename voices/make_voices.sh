#!/usr/bin/env bash
# Regenerate the SYNTHETIC placeholder reference voices from their transcripts (<id>.txt).
#
# Each voice is espeak-ng speech of exactly the text in <id>.txt, converted to the service's reference
# format: 24 kHz, mono, 16-bit PCM WAV. The output is byte-for-byte reproducible for a given espeak-ng and
# sox version (espeak-ng is deterministic; sox runs with -R (repeatable) and -D (no dither)); made with
# espeak-ng 1.51 and SoX 14.4.2 (Debian 12).
#
# Usage: voices/make_voices.sh            (from anywhere; needs espeak-ng and sox on PATH)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

command -v espeak-ng >/dev/null || { echo "espeak-ng not found (apt-get install -y espeak-ng)" >&2; exit 1; }
command -v sox >/dev/null || { echo "sox not found (apt-get install -y sox)" >&2; exit 1; }

# id                espeak-ng voice     words per minute
VOICES=(
  "vi_north_male    vi                  150"
  "vi_central_male  vi-vn-x-central     150"
  "vi_south_male    vi-vn-x-south       150"
)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for row in "${VOICES[@]}"; do
  read -r id voice wpm <<<"$row"
  [[ -f "$id.txt" ]] || { echo "missing transcript $id.txt" >&2; exit 1; }
  # espeak-ng writes 22.05 kHz mono 16-bit; -f reads the UTF-8 transcript as is (no digits in it:
  # espeak-ng would verbalise them its own way and the transcript would no longer be exact).
  espeak-ng -v "$voice" -s "$wpm" -f "$id.txt" -w "$tmp/$id.raw.wav"
  # -3 dB of headroom so the resampler cannot clip espeak-ng's near-full-scale peaks.
  sox -R -D "$tmp/$id.raw.wav" -b 16 -c 1 "$tmp/$id.wav" gain -3 rate -v 24000
  mv -f "$tmp/$id.wav" "$id.wav"
  # Metadata read by f5vi.voices (Voice.synthetic / Voice.description).
  cat >"$id.json" <<JSON
{
  "synthetic": true,
  "description": "SYNTHETIC placeholder: espeak-ng voice '$voice' at $wpm words per minute (robotic; for tests and demos, poor for cloning)",
  "source": "voices/make_voices.sh"
}
JSON
  printf '%-16s %-16s %6.2f s\n' "$id" "$voice" "$(soxi -D "$id.wav")"
done
