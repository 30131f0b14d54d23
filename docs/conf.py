"""Sphinx configuration of the course site (tools/build_site.py passes the executed notebooks as the sources)."""
import configparser, importlib.util
from pathlib import Path

_cfg = configparser.ConfigParser(delimiters=["="])
_cfg.read(Path(__file__).resolve().parents[1] / "settings.ini", encoding="utf-8")
_cfg = _cfg["DEFAULT"]

project = "ld4lg-edu: latent diffusion for language generation"
author = _cfg["author"]
copyright = _cfg["copyright"]
release = _cfg["version"]

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["**.ipynb_checkpoints"]

nb_execution_mode = "off"  # the notebooks arrive executed (the notebook test ran them)
nb_output_stderr = "show"
nb_merge_streams = True
nb_ipywidgets_js = {}  # widget outputs are dropped before rendering; no widget manager from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

html_theme = "sphinx_book_theme"
html_title = "ld4lg-edu"
html_theme_options = {
    "repository_url": _cfg["git_url"],
    "use_repository_button": False,
    "use_download_button": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
# MathJax 3 served from the site itself (the PyPI package sphinx-mathjax-offline carries its files): pages work offline
_mathjax = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax is None:
    raise ImportError("the site needs MathJax's files: pip install -e '.[site]' (sphinx-mathjax-offline)")
html_static_path = [str(Path(_mathjax.submodule_search_locations[0]) / "static")]
mathjax_path = "mathjax/tex-chtml.js"
html_context = {"default_mode": "light"}  # a fixed mode: no console complaint about an unset one
html_last_updated_fmt = None
html_show_sourcelink = False
