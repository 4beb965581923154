import os
import re

from setuptools import find_packages, setup

# The data path, compiled by Cython when it is there (pyproject.toml asks
# for it): the same modules, about a third faster per request. With
# WSGID_PURE_PYTHON=1, or without Cython, they install as plain Python.
COMPILED = ["wsgid/message.py", "wsgid/environ.py", "wsgid/response.py",
            "wsgid/sources.py", "wsgid/outbox.py", "wsgid/worker.py",
            "wsgid/request_handler.py", "wsgid/filters.py", "wsgid/broker.py",
            "wsgid/replies.py", "wsgid/brokerproto.py", "wsgid/scheduler.py",
            "wsgid/direct_source.py", "wsgid/wsframes.py", "wsgid/wsevents.py",
            "wsgid/wsshared.py"]
# Compiled only, each with a plain Python fallback that serves without it:
# wsgid/_zmqcalls.pyx calls libzmq from C for wsgid/zmqcalls.py.
HELPERS = ["wsgid/_zmqcalls.pyx"]


def extensions():
    if os.environ.get("WSGID_PURE_PYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    modules = cythonize(COMPILED + HELPERS, compiler_directives={"language_level": 3}, quiet=True,
                        nthreads=os.cpu_count() or 1)
    for module in modules:
        module.optional = True  # no C compiler: the plain Python modules serve
    return modules


with open("wsgid/__init__.py") as f:
    version = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

with open("README.rst") as f:
    long_description = f.read()

setup(
    name="m2wsgid",
    version=version,
    description="A pre-fork WSGI gateway for the mongrel2 web server",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="BSD",
    packages=find_packages(include=["wsgid", "wsgid.*"]),
    ext_modules=extensions(),
    python_requires=">=3.10",
    install_requires=["pyzmq>=22", "python-daemon>=2.3", "tnetstring3>=0.4", "setproctitle>=1.2"],
    extras_require={
        "django": ["Django>=4.2"],
        "pyroutes": ["pyroutes>=0.5"],
        "metrics": ["prometheus_client>=0.17"],
        "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6", "Django>=4.2", "pyroutes>=0.5",
                 "sphinx>=7", "gunicorn>=22", "prometheus_client>=0.17", "websockets>=12",
                 "selenium>=4.11"],
        "docs": ["sphinx>=7"],
    },
    entry_points={"console_scripts": ["wsgid = wsgid.cli:main"]},
    # The C files compile side by side, one per core (Cython's own step is
    # parallel by cythonize's nthreads above).
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Server",
    ],
)
