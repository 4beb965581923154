"""A Sentry-style error reporter set up in each worker by ``post_fork``:
put this file in the app folder's ``plugins/``.

Such SDKs start a background thread that sends the events. A thread
started in the master would not exist in the forked workers, so the SDK is
initialised in each worker, just after the fork and before the application
loads (as gunicorn's ``post_fork`` is used for it). ``SENTRY_DSN`` comes
from wsgid's own environment (``Environment=`` in its systemd unit):
``envs`` of ``wsgid.json`` are set later, as the application loads. Without
it nothing is done.
"""

import os


def post_fork(worker):
    dsn = os.environ.get("SENTRY_DSN")
    if not dsn:
        return
    import sentry_sdk
    sentry_sdk.init(dsn=dsn, server_name="%s worker %d" % (os.uname().nodename, worker.pid),
                    release=os.environ.get("APP_RELEASE"))
