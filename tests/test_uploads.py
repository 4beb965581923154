"""The upload path rules of wsgid.uploads.resolve, without a worker.

Without --mongrel2-chroot the path mongrel2 reports is read on this host as
it is: it must be absolute, its own real path, and not in /proc, /sys or
/dev. (The live checks, in both set-ups, are in test_fuzz_live.py.)
"""

import os

import pytest

from wsgid import uploads


def headers(path):
    return {uploads.START: path, uploads.DONE: path}


def refused(path, mongrel2_chroot=None):
    with pytest.raises(uploads.UploadRefused) as info:
        uploads.resolve(headers(path), mongrel2_chroot)
    assert info.value.status == "400 Bad Request"
    return str(info.value)


@pytest.mark.parametrize("path", ["tmp/upload.abc", "upload.abc", "./upload.abc", ""])
def test_relative_path_refused(path):
    assert "is not absolute" in refused(path)


@pytest.mark.parametrize("path,tree", [
    ("/proc/1/environ", "/proc"),
    ("/proc/self/fd/0", "/proc"),
    ("/proc", "/proc"),
    ("/sys/kernel/uevent_seqnum", "/sys"),
    ("/dev/zero", "/dev"),
    ("/dev/shm/upload.abc", "/dev"),
    ("/tmp/../dev/zero", "/dev"),
    ("//dev/zero", "/dev"),
])
def test_kernel_trees_refused(path, tree):
    assert refused(path).endswith("is in %s" % tree)


def test_path_resolving_into_dev_refused(tmp_path):
    link = tmp_path / "uploads"
    link.symlink_to("/dev")
    assert refused(str(link / "null")).endswith("is in /dev")


def test_prefix_of_a_kernel_tree_name_is_not_in_it():
    # "/devices" is not "/dev": opening the (missing) file is what refuses it.
    assert uploads.resolve(headers("/devices/upload.abc"), None) == "/devices/upload.abc"


@pytest.mark.parametrize("sub", ["uploads/../uploads/upload.abc", "uploads/./upload.abc",
                                 "uploads//upload.abc", "link/upload.abc"])
def test_path_not_its_own_real_path_refused(tmp_path, sub):
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "upload.abc").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "uploads")
    assert "is not a real path" in refused(str(tmp_path) + "/" + sub)


def test_real_absolute_path_used_as_it_is(tmp_path):
    upload = tmp_path / "upload.abc"
    upload.write_bytes(b"abc")
    real = os.path.realpath(upload)
    assert uploads.resolve(headers(real), None) == real
    assert uploads.resolve(headers(real), "") == real


def test_with_the_option_the_path_is_read_under_the_chroot(tmp_path):
    root = os.path.realpath(tmp_path)
    assert uploads.resolve(headers("/tmp/upload.abc"), root) == root + "/tmp/upload.abc"
    assert "outside the mongrel2 chroot" in refused("/tmp/../../upload.abc", root)


@pytest.mark.parametrize("chroot", [None, "/srv/mongrel2"])
def test_start_up_line_names_the_set_up(chroot):
    line = uploads.describe(chroot)
    assert line.startswith("Async uploads: ")
    assert ("/srv/mongrel2" in line) == bool(chroot)
    assert ("no --mongrel2-chroot" in line) == (not chroot)
