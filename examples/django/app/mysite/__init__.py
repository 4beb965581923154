"""The example Django project served by wsgid (see examples/django/README.rst)."""
