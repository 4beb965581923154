"""Skip marks for what a test needs from the machine."""

import os
import shutil

import pytest

requires_mongrel2 = pytest.mark.skipif(
    shutil.which("mongrel2") is None or shutil.which("m2sh") is None,
    reason="mongrel2-core is not installed")

requires_bind_mount = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="the shared upload folder is bind-mounted into mongrel2's chroot "
           "(in a private mount namespace): that takes root and unshare(1)")

requires_cc = pytest.mark.skipif(
    shutil.which("cc") is None,
    reason="Debian's mongrel2 loads its sendfile plugin only with a preloaded shim, "
           "which the test builds with a C compiler (cc)")
