import re

from setuptools import find_packages, setup

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
    python_requires=">=3.10",
    install_requires=["pyzmq>=22", "python-daemon>=2.3", "tnetstring3>=0.4", "setproctitle>=1.2"],
    extras_require={
        "django": ["Django>=4.2"],
        "pyroutes": ["pyroutes>=0.5"],
        "test": ["pytest>=7", "hypothesis>=6", "Django>=4.2", "pyroutes>=0.5", "sphinx>=7"],
        "docs": ["sphinx>=7"],
    },
    entry_points={"console_scripts": ["wsgid = wsgid.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Server",
    ],
)
