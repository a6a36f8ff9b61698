"""Compiled templates are kept between commands (components/core/render.py) and never served stale."""

import jinja2

from components.core import render


def environment(templates, cache) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates), bytecode_cache=render._Compiled(str(cache)), **render._OPTIONS
    )


def test_an_edited_template_is_compiled_afresh_and_an_unchanged_one_is_read_back(tmp_path):
    templates, cache = tmp_path / "templates", tmp_path / "cache"
    templates.mkdir()
    (templates / "a.j2").write_text("one {{ x }}\n")
    assert environment(templates, cache).get_template("a.j2").render(x=1) == "one 1\n"
    [compiled] = cache.iterdir()
    written = compiled.stat().st_mtime_ns
    assert environment(templates, cache).get_template("a.j2").render(x=2) == "one 2\n"
    assert compiled.stat().st_mtime_ns == written  # read back, not compiled again
    (templates / "a.j2").write_text("two {{ x }}\n")
    assert environment(templates, cache).get_template("a.j2").render(x=3) == "two 3\n"


def test_a_cache_dir_that_cannot_be_made_or_read_is_not_an_error(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "a.j2").write_text("{{ x }}\n")
    (tmp_path / "file").write_text("not a directory")
    assert environment(templates, tmp_path / "file" / "cache").get_template("a.j2").render(x=1) == "1\n"
