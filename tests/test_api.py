"""The public API: `import musicgpt` is light, names load on first use, and the README's Python
example runs as written from a folder that is not the repository."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import musicgpt

README = Path(__file__).resolve().parents[1] / "README.md"


def test_import_musicgpt_loads_no_torch():
    code = "import sys, musicgpt; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_public_name_resolves():
    for name in musicgpt.__all__:
        assert getattr(musicgpt, name) is not None, name
    with pytest.raises(AttributeError):
        musicgpt.no_such_name  # noqa: B018


def test_render_of_a_score_needs_a_stem():
    from musicgpt.notestring import parse_notes

    with pytest.raises(musicgpt.MusicGPTError, match="stem"):
        musicgpt.render(parse_notes("C4 D4"))


@pytest.mark.slow
def test_readme_python_example_runs_in_a_fresh_folder(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    out = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for name in ("theme.mid", "new.mid", "theme.wav", "theme.png", "theme.musicxml"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "style" in out.stdout
