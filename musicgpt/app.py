"""The local web app behind `musicgpt serve`: continue a theme and classify a score in a browser.

Two parts. `Studio` holds the models (loaded once) and does what the page's buttons ask, with the
package's own functions; it knows nothing of the web and raises MusicGPTError for a user's
mistake. `build_blocks` lays out the page with Gradio (an optional dependency, imported only
here and only when serving) and turns every error into a line on the page, never a traceback.

Everything the app writes (uploads, the MIDI, WAV, PNG and MusicXML it makes, Gradio's own
copies of them) goes under one temporary folder, removed when the server stops.
"""

from __future__ import annotations

import html
import importlib.util
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from musicgpt.errors import MusicGPTError

log = logging.getLogger(__name__)

INSTALL = "pip install -e '.[app]'"
MAX_PAGE_BARS = 32  # what one press of Continue adds: a page waits for its answer
MAX_SHOWN_PAGES = 4  # engraved pages shown inline; the MIDI has everything
KEEP_RESULTS = 16  # per-request folders kept (Gradio has its own copy once a reply is sent)
ANY, OWN = "any", "the header's"  # the dropdowns' "no control" choices


def require_gradio() -> None:
    """A MusicGPTError that says how to install gradio, unless it is installed. Gradio itself is
    not imported here: it reads where to keep its files when first imported (serve sets that)."""
    if importlib.util.find_spec("gradio") is None:
        raise MusicGPTError(f"the web app needs gradio, which is not installed: {INSTALL}")


def upload_bytes(megabytes: float) -> int:
    return int(megabytes * 2**20)  # Gradio's "mb" is 2**20 bytes: one limit, one figure in messages


def check_size(path: Path, max_mb: float) -> Path:
    """`path`, unless it is larger than `max_mb` (Gradio refuses such uploads first; this holds
    for any client of the page's API too)."""
    size = path.stat().st_size
    if size > upload_bytes(max_mb):
        raise MusicGPTError(f"{path.name} is {size / 2**20:.1f} MB; this server takes files up to "
                            f"{max_mb:g} MB (musicgpt serve --max-upload-mb)")
    return path


@dataclass
class Made:
    """What one press of Continue made: the files, the engraving and a line that describes it."""

    summary: str
    midi: Path
    wav: Path
    roll: Path
    score_html: str


class Studio:
    """The loaded models and what the page does with them; every file goes under `root`."""

    def __init__(self, model_path: Path, classifier_path: Path, root: Path, max_upload_mb: float = 5.0):
        import torch

        from musicgpt.classifier.classify import load_classifier
        from musicgpt.lm import load_model
        from musicgpt.steering import MAX_VOICES

        torch.set_num_threads(1)  # batch-1 sampling: one thread is several times faster (cli.lm)
        self.model, self.tok, _ = load_model(model_path)
        self.clf = load_classifier(classifier_path)
        self.root = Path(root)
        self.max_upload_mb = max_upload_mb
        self.max_voices = MAX_VOICES
        self._kept: deque[Path] = deque()

    # -- what the page offers, from what the loaded model knows (as `musicgpt info` shows)
    @property
    def styles(self) -> list[str]:
        return list(self.tok.styles)

    @property
    def modes(self) -> list[str]:
        from musicgpt.config import MODES

        return [m for m in self.tok.modes if m in MODES[:7]]  # "other" is no mode to ask for

    def workdir(self) -> Path:
        """A fresh folder for one request; the oldest beyond KEEP_RESULTS are removed."""
        d = Path(tempfile.mkdtemp(prefix="request-", dir=self.root))
        self._kept.append(d)
        while len(self._kept) > KEEP_RESULTS:
            shutil.rmtree(self._kept.popleft(), ignore_errors=True)
        return d

    def read_upload(self, path: str | Path, bars: int | None = None):
        """The uploaded score, size-checked; errors name the file, not where the server keeps it."""
        from musicgpt.scores import first_bars, load_score, normalize

        path = check_size(Path(path), self.max_upload_mb)
        try:
            score = normalize(load_score(path))
        except MusicGPTError as exc:
            raise MusicGPTError(str(exc).replace(str(path), path.name)) from None
        return first_bars(score, bars) if bars else score

    def continue_(self, text: str, upload: str | Path | None, *, bars: int = 4, header_bars: int = 0,
                  temperature: float = 1.0, style: str | None = None, mode: str | None = None,
                  voices: int | None = None, seed: int | None = None) -> Made:
        """Continue the uploaded file, or else the note string, by `bars` new bars."""
        import torch

        from musicgpt.cli.lm import parse_length
        from musicgpt.config import SampleConfig
        from musicgpt.continuation import continue_score
        from musicgpt.notestring import parse_notes
        from musicgpt.rendering.outputs import render
        from musicgpt.scores import first_bars, normalize, unreadable_notes, write_midi

        if not 1 <= bars <= MAX_PAGE_BARS:
            raise MusicGPTError(f"the length must be 1 to {MAX_PAGE_BARS} bars, not {bars}")
        if upload:
            prompt, name = self.read_upload(upload, header_bars), _safe_stem(Path(upload).stem)
        else:
            # parsed as notes only: a path typed here is never read from the server's disk
            prompt, name = normalize(parse_notes(text or "")), "theme"
            prompt = first_bars(prompt, header_bars) if header_bars else prompt
        outside, total = unreadable_notes(prompt)
        if outside == total:
            raise MusicGPTError("every note lies outside A0-C8 (MIDI 21-108), the range the model "
                                "reads; transpose it into that range")
        seed = secrets.randbelow(2**31) if seed is None else seed
        _, max_tokens = parse_length(f"{bars}bars")  # the same runaway cap as `continue`
        cfg = SampleConfig(temperature=temperature, max_new_tokens=max_tokens, seed=seed)
        result = continue_score(self.model, self.tok, prompt, sample_cfg=cfg, bars=bars, style=style,
                                mode=mode, voices=voices, generator=torch.Generator().manual_seed(seed))
        out = self.workdir()
        stem = out / f"{name}-continued"
        midi = stem.with_suffix(".mid")
        write_midi(result.score, midi)
        starts = [n.time for t in result.continuation.tracks for n in t.notes]
        begin = min(starts) if starts else None
        wav, roll = render(result.score, stem, ("wav", "roll"), marks=() if begin is None else (begin,),
                           header_end=begin)
        try:  # a score too long to notate still gets its audio and roll
            score_html = engraving(render(result.score, stem, ("score",))[0])
        except MusicGPTError as exc:
            score_html = f"<p>No score: {html.escape(str(exc))}</p>"
        made = "" if result.new_bars is None else f"{result.new_bars} new bars, "
        summary = (f"{made}{result.continuation.note_num()} new notes after the header's "
                   f"{prompt.note_num()}; seed {seed}")
        if result.key:
            how = "held to its scale" if result.key_kept else "told to the model, not held"
            summary += f"; key {result.key_name} ({result.key_source}; {how})"
        if outside:
            summary += f"; {outside} of the header's {total} notes lie outside A0-C8 and were not read"
        return Made(summary, midi, wav, roll, score_html)

    def classify(self, upload: str | Path | None, bars: int | None = None) -> dict:
        """The classifier's answer for an uploaded file: describe()'s dict, every label."""
        if not upload:
            raise MusicGPTError("upload a score first (.mid .midi .xml .mxl .musicxml .krn .abc)")
        return self.clf.classify_score(self.read_upload(upload), bars, top=1000)


def engraving(musicxml: Path) -> str:
    """The engraved pages as inline HTML, or a line saying why there are none."""
    from musicgpt.rendering.engrave import svg_pages

    try:
        pages = svg_pages(musicxml)
    except MusicGPTError as exc:  # verovio missing or unable: the rest of the result still stands
        return f"<p>No engraved score: {html.escape(str(exc).replace(str(musicxml), musicxml.name))}</p>"
    more = (f"<p>The first {MAX_SHOWN_PAGES} of {len(pages)} pages; the MIDI has all of it.</p>"
            if len(pages) > MAX_SHOWN_PAGES else "")
    return "".join(f'<div class="page">{_fit(p)}</div>' for p in pages[:MAX_SHOWN_PAGES]) + more


def _fit(svg: str) -> str:
    """verovio gives its page a fixed size in pixels; a viewBox lets it shrink to the column."""
    m = re.match(r'\s*<svg width="(\d+)px" height="(\d+)px"', svg)
    if not m:
        return svg
    w, h = m.groups()
    return f'<svg viewBox="0 0 {w} {h}" width="100%"' + svg[m.end():]


def _safe_stem(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:60].strip("._") or "upload"


def _say(exc: Exception) -> str:
    """An error as one Markdown line for the page."""
    if isinstance(exc, MusicGPTError):
        text = str(exc)
    else:  # a bug: the details go to the server's log, not to the page
        log.error("request failed", exc_info=exc)
        text = f"something went wrong on the server ({type(exc).__name__}); its log has the details"
    return "**Error:** " + re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", text)


def _seed(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) >= 2**63:
        raise MusicGPTError(f"the seed {text!r} is not a whole number from 0 to 2**63 - 1")
    return int(text)


def _optional(choice: str | None, none: str) -> str | None:
    return None if choice in (None, "", none) else choice


CSS = """
#score .page { background: white; margin-bottom: 8px; }
#score svg { height: auto; display: block; }
"""


def build_blocks(studio: Studio):
    """The page: a Continue tab and a Classify tab."""
    import gradio as gr

    from musicgpt.config import SampleConfig
    from musicgpt.scores import SCORE_SUFFIXES

    suffixes = list(SCORE_SUFFIXES)
    with gr.Blocks(title="musicgpt", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown("# musicgpt\nContinue a theme, hear and see it; or ask what style and mode a "
                    "score is in. Everything runs on this machine.")
        with gr.Tab("Continue a theme", id="continue"):
            with gr.Row():
                with gr.Column(scale=1):
                    theme = gr.Textbox(label="Theme as a note string", value="C4 D4 E4 F4 | G4:h",
                                       elem_id="theme", info="letter, #/b, octave, :duration "
                                       "(w h q e s, dots); C4+E4 a chord, R a rest, | a bar line")
                    upload = gr.File(label=f"... or a score file (up to {studio.max_upload_mb:g} MB; "
                                     "used instead of the note string)", file_types=suffixes,
                                     elem_id="theme-file")
                    bars = gr.Slider(1, MAX_PAGE_BARS, value=4, step=1, label="New bars", elem_id="bars")
                    header_bars = gr.Number(0, precision=0, minimum=0, label="Header: the first N "
                                            "bars of the theme (0: all of it)")
                    temperature = gr.Slider(0.0, 2.0, value=SampleConfig().temperature, step=0.05,
                                            label="Temperature (0: the likeliest notes)")
                    style = gr.Dropdown([ANY, *studio.styles], value=ANY, label="Style", elem_id="style")
                    mode = gr.Dropdown([ANY, *studio.modes], value=ANY, elem_id="mode", label="Mode (on the "
                                       "header's tonic; new notes are held to its scale)")
                    voices = gr.Dropdown([OWN, *map(str, range(1, studio.max_voices + 1))], value=OWN,
                                         label="Voices", elem_id="voices")
                    seed = gr.Textbox("", label="Seed (blank: a new one; the same seed repeats a "
                                      "result)", elem_id="seed")
                    go = gr.Button("Continue", variant="primary", elem_id="continue-button")
                with gr.Column(scale=2):
                    status = gr.Markdown(elem_id="continue-status")
                    audio = gr.Audio(label="Listen", type="filepath", interactive=False, elem_id="audio",
                                     buttons=["download"])
                    midi = gr.File(label="MIDI", interactive=False, elem_id="midi")
                    roll = gr.Image(label="Piano roll (the model's notes in full colour)",
                                    type="filepath", interactive=False, elem_id="roll",
                                    buttons=["download", "fullscreen"])
                    score = gr.HTML(elem_id="score")

        def on_continue(text, file, n_bars, n_header, temp, sty, mod, voi, sd):
            try:
                made = studio.continue_(
                    text, file, bars=int(n_bars), header_bars=int(n_header or 0),
                    temperature=float(temp), style=_optional(sty, ANY), mode=_optional(mod, ANY),
                    voices=None if _optional(voi, OWN) is None else int(voi),
                    seed=_seed(sd))
            except Exception as exc:  # every error becomes a line on the page
                return _say(exc), None, None, None, ""
            return made.summary, str(made.wav), str(made.midi), str(made.roll), made.score_html

        go.click(on_continue, [theme, upload, bars, header_bars, temperature, style, mode, voices, seed],
                 [status, audio, midi, roll, score])

        with gr.Tab("Classify a score", id="classify"):
            with gr.Row():
                with gr.Column(scale=1):
                    to_classify = gr.File(label=f"A score file (up to {studio.max_upload_mb:g} MB)",
                                          file_types=suffixes, elem_id="classify-file")
                    clf_bars = gr.Number(0, precision=0, minimum=0,
                                         label="Look only at the first N bars (0: all)")
                    ask = gr.Button("Classify", variant="primary", elem_id="classify-button")
                with gr.Column(scale=2):
                    answer = gr.Markdown(elem_id="classify-status")
                    with gr.Row():
                        style_p = gr.Label(label="Style", num_top_classes=5, elem_id="style-label")
                        mode_p = gr.Label(label="Mode", num_top_classes=7, elem_id="mode-label")
                        key_p = gr.Label(label="Tonic + mode", num_top_classes=5, elem_id="key-label")

        def on_classify(file, n_bars):
            try:
                r = studio.classify(file, int(n_bars or 0) or None)
            except Exception as exc:  # as above
                return _say(exc), None, None, None
            a = r["answer"]
            line = (f"**{a['style']}**, **{a['key']}** (\"unsure\" when the best probability is under "
                    f"{r['unsure_below']:g})")
            return (line, *({lab: p for lab, p in r[q]} for q in ("style", "mode", "key")))

        ask.click(on_classify, [to_classify, clf_bars], [answer, style_p, mode_p, key_p])
    return demo


def check_port(host: str, port: int) -> None:
    """A MusicGPTError unless a server could listen on HOST:PORT now."""
    try:
        socket.getaddrinfo(host, port)
    except OSError:
        raise MusicGPTError(f"cannot listen on {host}: not an address; check `host`") from None
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise MusicGPTError(f"cannot listen on {host}:{port} ({why}); choose another `port` (or "
                            "`host`)") from None


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the server as Ctrl-C does, so the folder is removed


def serve(model_path: Path, classifier_path: Path, host: str = "127.0.0.1", port: int = 7860,
          max_upload_mb: float = 5.0, on_ready: Callable[[str], None] | None = None) -> None:
    """Load the models, then serve the page at http://HOST:PORT until interrupted; `on_ready`
    is given the page's address once it answers."""
    require_gradio()
    check_port(host, port)  # before seconds of loading models
    root = Path(tempfile.mkdtemp(prefix="musicgpt-serve-"))
    # read when gradio is first imported: its uploads and its copies of our files go here too
    os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        import gradio as gr

        demo = build_blocks(Studio(model_path, classifier_path, root, max_upload_mb))
        demo.queue(default_concurrency_limit=1)  # one sampling at a time; the others wait in line
        _, url, _ = demo.launch(server_name=host, server_port=port, max_file_size=upload_bytes(max_upload_mb),
                                allowed_paths=[str(root)], ssr_mode=False, show_error=False, share=False,
                                quiet=True, prevent_thread_lock=True, theme=gr.themes.Default(),
                                css=CSS, footer_links=["gradio"])
        if on_ready:
            on_ready(url)
        demo.block_thread()  # until Ctrl-C or SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(root, ignore_errors=True)
