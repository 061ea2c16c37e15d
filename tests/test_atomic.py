import os
import stat

import pytest

from musicgpt.atomic import WriteError, atomic_path, check_writable, write_text_atomic


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left


def test_written_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_folder_or_device_is_never_replaced(tmp_path):
    folder = tmp_path / "out.mid"
    folder.mkdir()
    with pytest.raises(WriteError, match="not a regular file"):
        write_text_atomic(folder, "x")
    assert folder.is_dir()
    with pytest.raises(WriteError, match="not a regular file"):
        check_writable([os.devnull])  # checked before anything is opened, so nothing is touched
    assert not stat.S_ISREG(os.stat(os.devnull).st_mode)


def test_write_errors_name_the_target_not_a_temporary_file(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(WriteError) as e:
        write_text_atomic(blocker / "out.json", "{}")
    assert "afile is a file" in str(e.value) and ".tmp" not in str(e.value)
    assert isinstance(e.value, OSError)  # callers that tolerate a failed write still catch it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def _run_with_file_size_limit(args: list[str], cwd, limit: int):
    """Run `python -m musicgpt ARGS` where no file may grow past `limit` bytes: writes beyond it
    fail as they would on a full disk (EFBIG instead of ENOSPC), through the real libraries."""
    import resource
    import signal
    import subprocess
    import sys

    def limit_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "musicgpt", *args], cwd=cwd, preexec_fn=limit_files,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})


@pytest.mark.slow
def test_a_midi_that_does_not_fit_on_the_disk_is_an_error_and_the_old_file_stays(tmp_path):
    good = tmp_path / "out.mid"
    good.write_bytes(b"MThd-the-user's-good-file")
    # 40 new bars in four voices come to about 6 KB of MIDI; the model's tokenizer file is 3 KB.
    # A note string, not a score file: music21 would write (and damage) its parse cache here.
    argv = ["continue", "C4 D4 E4 F4 G4:h", "--voices", "4", "--length", "40bars", "--seed", "2",
            "--no-progress", "--out", str(good)]
    done = _run_with_file_size_limit(argv, tmp_path, limit=3500)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [f"musicgpt: error: cannot write {good}: File too large"]
    assert "wrote" not in done.stdout
    assert good.read_bytes() == b"MThd-the-user's-good-file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mid"]  # no temporary file left


def test_write_bytes_atomic_checks_what_reached_the_disk(tmp_path):
    from musicgpt.atomic import write_bytes_atomic

    write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01" * 1000)
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01" * 1000


def test_temporary_files_a_killed_write_left_are_removed_by_the_next_write(tmp_path):
    import time

    from musicgpt.atomic import STALE_AFTER_S

    target = tmp_path / "model.pt"
    stale, live = tmp_path / ".model.pt.abc123.tmp", tmp_path / ".model.pt.def456.tmp"
    other = tmp_path / ".other.pt.abc123.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"x" * 100)
    old = time.time() - STALE_AFTER_S - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert not stale.exists()  # left by a killed write of this file: removed
    assert live.exists()  # young: another process may be writing it now
    assert other.exists()  # another file's
