"""The documentation builds with warnings as errors, every example runs, key pages exist.

This is ``make -C doc html-fast`` (Sphinx with ``-W``, the gallery examples in their quick
mode), into a temporary folder. It needs the ``docs`` extra; without it the test fails
(it does not skip) and says what to install.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sktilt

ROOT = Path(__file__).parents[1]
DOC = ROOT / "doc"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
DOCS_PACKAGES = ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme", "matplotlib")


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    missing = [name for name in DOCS_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"building the documentation needs {', '.join(missing)}: install the "
                    "docs extra, e.g. .venv/bin/pip install -e '.[docs]'", pytrace=False)
    tmp = tmp_path_factory.mktemp("docs")
    out = tmp / "html"
    env = {**os.environ, "SKTILT_DOCS_FAST": "1", "SKTILT_DOCS_RERUN": "1",
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
           "-d", str(tmp / "doctrees"), str(DOC), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)
    log = proc.stdout + proc.stderr
    problems = [line for line in log.splitlines()
                if "WARNING" in line or "ERROR" in line or "Error" in line]
    assert proc.returncode == 0, ("the docs build failed (make -C doc html-fast):\n"
                                  + "\n".join(problems[-60:]) + "\n...\n" + log[-4000:])
    return out


def test_key_pages_exist(html):
    for page in ["index.html", "install.html", "api.html", "cli.html",
                 "user_guide/index.html", "user_guide/boltzmann.html",
                 "user_guide/avo.html", "user_guide/avo_parallel.html",
                 "auto_examples/index.html"]:
        assert (html / page).is_file(), page


def test_every_public_name_has_an_api_page(html):
    api = (html / "api.html").read_text()
    for name in sktilt.__all__:
        page = html / "generated" / f"sktilt.{name}.html"
        assert page.is_file(), f"no API page for sktilt.{name}"
        assert f"generated/sktilt.{name}.html" in api, f"api.html does not link sktilt.{name}"


def test_every_example_ran_and_has_a_page(html):
    assert EXAMPLES
    for path in EXAMPLES:
        page = html / "auto_examples" / f"{path.stem}.html"
        assert page.is_file(), f"no gallery page for {path.name}"
        text = page.read_text()
        # a figure rendered by running the example, and its printed output
        assert f"sphx_glr_{path.stem}_001.png" in text, f"{path.name} produced no figure"
        assert "sphx-glr-script-out" in text, f"{path.name} printed nothing"


def test_cli_page_is_the_real_help(html):
    text = (html / "cli.html").read_text()
    for option in ["--quantile", "--data", "--label", "--budgets", "--n-jobs", "--seed"]:
        assert option in text, option
