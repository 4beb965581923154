"""wsgid.uploads without a worker: a file is taken only when mongrel2
spooled it (named from the template, directly in its folder, no link,
owned by the folder's owner, one link, the request's size); anything else
is refused and left as it was. The live checks: test_e2e_uploads.py,
test_fuzz_live.py."""

import logging
import os
import threading

import pytest

from wsgid import uploads

pytestmark = pytest.mark.one_mode  # see pyproject.toml

TEMPLATE = "/tmp/upload.XXXXXX"
NAME = "upload.AbC123"


@pytest.fixture
def spool(tmp_path):
    (tmp_path / "tmp").mkdir()
    return uploads.Spool(TEMPLATE, str(tmp_path))


def headers(path="/tmp/" + NAME, length="6", **extra):
    h = {uploads.START: path, uploads.DONE: path, **extra}
    if length is not None:
        h["content-length"] = length
    return h


def put(spool, name=NAME, data=b"abcdef"):
    path = os.path.join(spool.folder, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def refused(spool, h, body=b"", status="400 Bad Request"):
    with pytest.raises(uploads.UploadRefused) as info:
        uploads.Upload(spool, h, body)
    assert info.value.status == status
    return str(info.value)


@pytest.mark.parametrize("template", ["tmp/upload.XXXXXX", "/tmp/upload.XXXXX", "/tmp/",
                                      "/tmp/upload.XXXXXX/", "/tmp/upload\0.XXXXXX", ""])
def test_a_template_mongrel2_cannot_use_is_refused(template):
    with pytest.raises(ValueError, match="--mongrel2-upload-dir"):
        uploads.Spool(template)


def test_the_folder_is_read_under_mongrel2s_chroot():
    assert uploads.Spool(TEMPLATE, "/srv/m2").folder == "/srv/m2/tmp"
    assert uploads.Spool(TEMPLATE).folder == "/tmp"
    assert uploads.Spool("/XXXXXX", "/srv/m2").folder == "/srv/m2/"


@pytest.mark.parametrize("path", [
    "/tmp/upload.AbC12", "/tmp/upload.AbC1234", "/tmp/upload.Ab/123", "/tmp/upload.Ab\0123",
    "/tmp/upload.AbC12\u00e9", "/tmp/upload.Ab C12", "/tmp/upload..././", "/etc/passwd12345",
    "/tmp/../upload.AbC123", "/srv/m2/tmp/upload.AbC123", "tmp/upload.AbC1234",
])
def test_a_path_mongrel2_does_not_make_is_refused(spool, path):
    put(spool)
    assert "is not one mongrel2 makes" in refused(spool, headers(path))


def test_a_file_mongrel2_spooled_is_served_then_removed(spool):
    path = put(spool)
    upload = uploads.Upload(spool, headers(), b"")
    assert upload.file.read() == b"abcdef"
    upload.remove()
    assert not os.path.exists(path)
    with pytest.raises(OSError):
        os.fstat(upload.folder)  # closed too


def test_a_chunked_upload_has_any_size(spool):
    put(spool, data=b"x" * 10)
    upload = uploads.Upload(spool, headers(length=None, **{"transfer-encoding": "chunked"}), b"")
    assert len(upload.file.read()) == 10
    upload.remove()


def test_without_the_option_500_naming_it(spool):
    assert "--mongrel2-upload-dir is not set" in refused(None, headers(), status="500 Internal Server Error")


def test_a_missing_folder_is_500(tmp_path):
    spool = uploads.Spool(TEMPLATE, str(tmp_path / "gone"))
    assert "upload folder" in refused(spool, headers(), status="500 Internal Server Error")


@pytest.mark.parametrize("h,body", [
    pytest.param(headers(length="0"), b"", id="content-length-0"),
    pytest.param(headers(length="00"), b"", id="content-length-00"),
    pytest.param(headers(length=None), b"", id="no-length"),
    pytest.param(headers(length=None, **{"transfer-encoding": "xchunked"}), b"", id="xchunked"),
    pytest.param(headers(length=None, **{"transfer-encoding": "Chunked"}), b"", id="Chunked"),
    pytest.param(headers(length="5"), b"", id="size-smaller"),
    pytest.param(headers(length="7"), b"", id="size-bigger"),
    pytest.param(headers(), b"abcdef", id="with-a-body"),
    pytest.param({uploads.START: "/tmp/" + NAME, uploads.DONE: "/tmp/upload.AbC124",
                  "content-length": "6"}, b"", id="start-done-differ"),
    pytest.param({uploads.DONE: "/tmp/" + NAME, "content-length": "6"}, b"", id="no-start"),
    pytest.param({uploads.START: ["/tmp/" + NAME] * 2, uploads.DONE: ["/tmp/" + NAME] * 2,
                  "content-length": "6"}, b"", id="repeated"),
])
def test_a_request_mongrel2_did_not_spool_is_refused(spool, h, body):
    path = put(spool)
    refused(spool, h, body)
    assert open(path, "rb").read() == b"abcdef"


def _other_owner(spool):
    os.chown(put(spool), 65534, 65534)


def _hard_link(spool):
    os.link(put(spool, "mongrel2.db"), os.path.join(spool.folder, NAME))


def _symlink(spool):
    os.symlink(put(spool, "mongrel2.db"), os.path.join(spool.folder, NAME))


def _symlink_out(spool):
    os.symlink("/etc/hostname", os.path.join(spool.folder, NAME))


def _directory(spool):
    os.mkdir(os.path.join(spool.folder, NAME))


def _fifo(spool):
    os.mkfifo(os.path.join(spool.folder, NAME))


@pytest.mark.parametrize("plant", [_other_owner, _hard_link, _symlink, _symlink_out,
                                   _directory, _fifo])
def test_a_planted_file_is_refused_and_left_alone(spool, plant):
    if plant is _other_owner and os.geteuid() != 0:
        pytest.skip("chown needs root")
    plant(spool)
    before = {name: os.lstat(os.path.join(spool.folder, name)) for name in os.listdir(spool.folder)}
    done = threading.Event()
    threading.Thread(target=lambda: (refused(spool, headers(length="6")), done.set()),
                     daemon=True).start()
    assert done.wait(10), "the worker blocked"
    after = {name: os.lstat(os.path.join(spool.folder, name)) for name in os.listdir(spool.folder)}
    assert {n: (s.st_ino, s.st_nlink, s.st_size) for n, s in after.items()} == \
        {n: (s.st_ino, s.st_nlink, s.st_size) for n, s in before.items()}


def test_only_the_inode_opened_is_deleted(spool, caplog):
    path = put(spool)
    upload = uploads.Upload(spool, headers(), b"")
    os.unlink(path)
    put(spool, data=b"another")  # the name now another file's
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        upload.remove()
    assert open(path, "rb").read() == b"another"
    assert "was replaced during its request" in caplog.text


def test_start_up_lines(spool):
    assert uploads.OFF.startswith("Async uploads: off until --mongrel2-upload-dir")
    assert spool.describe() == ("Async uploads: files named upload.XXXXXX in %s, owned by "
                                "the folder's owner" % spool.folder)
