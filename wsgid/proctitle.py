"""Process titles (``wsgid: master <app>``, ``wsgid: worker``) for ps and top."""

try:
    from setproctitle import setproctitle
except ImportError:  # optional: titles are a convenience
    setproctitle = None


def set(title):
    if setproctitle is not None:
        setproctitle("wsgid: %s" % title)
