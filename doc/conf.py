"""Sphinx configuration of the sktilt documentation.

Build (warnings are errors) from the repository root::

    make -C doc html        # full gallery
    make -C doc html-fast   # SKTILT_DOCS_FAST=1: the examples run in their quick mode

Nothing is downloaded at build time (no intersphinx); MathJax is loaded by the reader's
browser from its CDN.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The working tree's sktilt (also when it is not installed), and examples/ so that the
# gallery scripts can import their sibling helper ``_fast``.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


# Fast mode: the gallery still runs every example (a broken one fails the build), but
# each in its quick, smaller configuration (examples/_fast.py).
FAST = _flag("SKTILT_DOCS_FAST")
if FAST:
    os.environ["SKTILT_EXAMPLES_FAST"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

# sphinx-gallery reruns only the examples whose source changed. Rerun them all when the
# mode changed since the last successful build (a full build must not reuse fast-mode
# figures, and vice versa) or when SKTILT_DOCS_RERUN=1 (tests/test_docs.py sets it, so
# that a library change that breaks an unchanged example fails the build).
_MODE = "fast" if FAST else "full"
_MODE_STAMP = HERE / "auto_examples" / ".sktilt-examples-mode"
RERUN_EXAMPLES = (_flag("SKTILT_DOCS_RERUN") or not _MODE_STAMP.is_file()
                  or _MODE_STAMP.read_text().strip() != _MODE)

import sktilt  # noqa: E402


def _remove_stale_outputs() -> None:
    """Drop generated pages whose source is gone.

    autosummary and sphinx-gallery never delete what they generated, and a stale page
    (a name removed from api.rst, a deleted example) is "in no toctree", a warning that
    fails the build. The API stubs are cheap: regenerate them every build. Gallery pages
    are kept for the examples that still exist (sphinx-gallery reruns only changed ones).
    """
    for path in (HERE / "generated").glob("*.rst"):
        path.unlink()
    gallery = HERE / "auto_examples"
    if gallery.is_dir():
        keep = {p.stem for p in (ROOT / "examples").glob("plot_*.py")} | {"index"}
        for path in gallery.iterdir():
            if (path.is_file() and not path.name.startswith(".")
                    and path.name.split(".")[0] not in keep):
                path.unlink()


_remove_stale_outputs()

# -- Project -----------------------------------------------------------------------------
project = "sktilt"
author = "sktilt developers"
copyright = "sktilt developers"  # noqa: A001 - Sphinx's name
release = sktilt.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/sg_execution_times.rst"]
default_role = "literal"
pygments_style = "sphinx"

# autodoc / autosummary: one generated page per public name, under doc/generated/
# (git-ignored).
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc "Parameters" sections carry the types
# Document the methods sktilt itself documents; overrides of torch/skorch hooks
# (forward, on_epoch_end, ...) would otherwise show their parents' docstrings.
autodoc_inherit_docstrings = False

# numpydoc: members are listed by our autosummary templates, not by numpydoc.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# A small set of checks that every documented object passes, each a warning (hence an
# error with -W): GL08 every name in the API reference has a docstring; GL06/GL07 only
# known sections, in the standard order; PR02 no documented parameter that the signature
# lacks (stale docs); PR03 parameters documented in signature order; PR10 "name : type"
# spelled with a space before the colon.
numpydoc_validation_checks = {"GL06", "GL07", "GL08", "PR02", "PR03", "PR10"}
# Special methods are documented by their class.
numpydoc_validation_exclude = {r"\.__init__$", r"\.__call__$", r"\.__iter__$"}

# -- sphinx-gallery ----------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",  # git-ignored
    "filename_pattern": r"[\\/]plot_",  # run every plot_*.py (figures and output)
    "ignore_pattern": r"^_",  # file names: _fast.py is a helper, not an example
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": "True",  # a failing example fails the build, also in fast mode
    "abort_on_example_error": False,  # report every failing example, then fail
    "only_warn_on_example_error": False,
    "run_stale_examples": RERUN_EXAMPLES,
    "doc_module": ("sktilt",),
    "backreferences_dir": str(HERE / "generated" / "backreferences"),
    "reference_url": {"sktilt": None},  # link names in the examples to the API pages
    "write_computation_times": False,  # no sg_execution_times.rst in the source tree
    "download_all_examples": False,
    "show_signature": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
}

# -- HTML --------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sktilt {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"index": [], "install": [], "cli": []}
html_static_path = []
html_show_sourcelink = True
html_last_updated_fmt = None

# sphinx.ext.mathjax: MathJax is fetched by the browser from its CDN when a page is
# viewed; nothing is downloaded at build time.


# -- The command-line reference ----------------------------------------------------------
def _write_cli_help(app):
    """Write ``sktilt [COMMAND] --help`` to doc/generated/cli/ for cli.rst to include.

    Generated from the real parser at build time, so the page cannot drift from the code.
    """
    from sktilt.cli import build_parser

    out = HERE / "generated" / "cli"
    out.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal width
    try:
        parser = build_parser()
        texts = {"sktilt": parser.format_help()}
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        for name, p in sub.choices.items():
            texts[name] = p.format_help()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    for name, text in texts.items():
        path = out / f"{name}.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn's generated metadata-routing setters (set_fit_request, ...): their
    # docstrings point into scikit-learn's own documentation.
    if what == "class" and name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _stamp_examples_mode(app, exception):
    # Record the mode of a build that ran the examples (see RERUN_EXAMPLES).
    ran = app.config.sphinx_gallery_conf.get("plot_gallery") not in (False, "False", "0")
    if exception is None and ran and _MODE_STAMP.parent.is_dir():
        _MODE_STAMP.write_text(_MODE + "\n")


def setup(app):
    app.connect("builder-inited", _write_cli_help)
    app.connect("build-finished", _stamp_examples_mode)
    app.connect("autodoc-skip-member", _skip_member)
