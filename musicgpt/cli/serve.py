"""`musicgpt serve`: the local web app (musicgpt/app.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musicgpt.cli.options import HelpFormatter
from musicgpt.config import SHIPPED_CLASSIFIER, SHIPPED_MODEL, shipped
from musicgpt.errors import MusicGPTError


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (1 to 65535)")
    return value


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text} MB is not a file size limit (above 0, at most 1000)")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="a local web page: continue a theme, hear and see it; classify a score",
        description="Serve a web page (Gradio) at http://HOST:PORT: type a note string or upload a "
        "score, continue it, listen to it, see its piano roll and engraved score, download the "
        "MIDI; or upload a score and see its style and mode. The models are loaded once, at "
        "start. Needs the app extra: pip install -e '.[app]'.",
        formatter_class=HelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 opens the page to other machines (it has no login)")
    p.add_argument("--port", type=_port, default=7860, help="port to listen on")
    p.add_argument("--model", type=Path, default=shipped(SHIPPED_MODEL),
                   help="language-model checkpoint (default: the shipped model)")
    p.add_argument("--classifier", type=Path, default=shipped(SHIPPED_CLASSIFIER),
                   help="classifier checkpoint (default: the shipped classifier)")
    p.add_argument("--max-upload-mb", type=_megabytes, default=5.0, metavar="MB",
                   help="largest score file the page accepts")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from musicgpt.app import require_gradio, serve

    require_gradio()  # before seconds of loading models
    for path, flag in ((args.model, "--model"), (args.classifier, "--classifier")):
        if not path.is_file():
            raise MusicGPTError(f"no checkpoint at {path}; check the path, or leave out {flag} to "
                                "use the shipped one")
    def ready(url: str) -> None:
        print(f"musicgpt: serving {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)

    serve(args.model, args.classifier, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
          on_ready=ready)
    return 0
