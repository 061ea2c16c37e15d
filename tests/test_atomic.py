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
