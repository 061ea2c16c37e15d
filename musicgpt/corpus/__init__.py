"""Named corpora built from music21's bundled scores (and user folders): the package's API.

recipes (what to read, how to label) -> readers + labels (one source file, in a worker) ->
grouping (leak-free split) -> builder (cache, workers, manifest) -> manifest (rows on disk).
"""

from musicgpt.corpus.builder import build, build_from
from musicgpt.corpus.manifest import corpora_root, get_recipe, info, load_manifest, midi_path, names
from musicgpt.corpus.recipes import ALL, CORPORA, Recipe, work_of

__all__ = [
    "ALL", "CORPORA", "Recipe", "build", "build_from", "corpora_root", "get_recipe", "info",
    "load_manifest", "midi_path", "names", "work_of",
]
