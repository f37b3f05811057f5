"""Package discovery for the `fovea` import package, which lives in services/ (pyproject.toml: package-dir).

setuptools' `packages.find` cannot map a folder to another package name, so the list is found here: `fovea`
and every package under services/. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(packages=["fovea", *(f"fovea.{name}" for name in find_packages("services"))])
