"""The call site is the first frame that is the application's own."""

from __future__ import annotations

import os
import sys
import threading

import sqlalchemy

from deskprof.probe.callsite import call_site, is_skipped


def _run_as(filename: str, source: str, namespace: dict) -> None:
    exec(compile(source, filename, "exec"), namespace)


def test_frames_in_sqlalchemy_and_deskprof_are_skipped_up_to_the_application():
    library = os.path.join(os.path.dirname(sqlalchemy.__file__), "orm", "fake_loader.py")
    namespace = {"call_site": call_site, "sys": sys}
    _run_as(library, "def load():\n    return call_site(sys._getframe())\n", namespace)

    def application_code():
        return namespace["load"]()

    site, function = application_code()
    assert site == f"{__file__}:{application_code.__code__.co_firstlineno + 1}"
    assert function.endswith("application_code")


def test_classification():
    assert is_skipped(os.__file__)  # the standard library
    assert is_skipped("<string>") and is_skipped("<frozen importlib._bootstrap>")
    assert is_skipped(sqlalchemy.__file__)
    assert not is_skipped(__file__)
    # a virtualenv's site-packages is not the standard library, even when it sits inside it
    stdlib = os.path.dirname(os.__file__)
    assert not is_skipped(os.path.join(stdlib, "site-packages", "someapp", "views.py"))


def test_no_application_frame_gives_empty_strings():
    """A thread started by library code on library code: nothing is the application's."""
    library = os.path.join(os.path.dirname(sqlalchemy.__file__), "pool", "fake_reaper.py")
    found: list = []
    namespace = {"call_site": call_site, "sys": sys, "found": found}
    _run_as(library, "def reap():\n    found.append(call_site(sys._getframe()))\n", namespace)
    thread = threading.Thread(target=namespace["reap"])
    thread.start()
    thread.join()
    assert found == [("", "")]


def test_default_frame_is_the_caller():
    site, function = call_site()
    assert site.startswith(f"{__file__}:") and function == "test_default_frame_is_the_caller"


LAZY = """
class Ticket:
    def __init__(self, sites):
        self.sites = sites

    @property
    def creator(self):
        self.sites.append(call_site(sys._getframe()))
        return "someone"
"""


def test_a_lazy_load_in_a_jinja2_template_points_at_the_template_line(tmp_path):
    import jinja2

    (tmp_path / "list.html").write_text(
        "<ul>\n{% for t in tickets %}\n  <li>{{ t.creator }}</li>\n{% endfor %}\n</ul>\n"
    )
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(tmp_path))
    # the attribute's loader is the ORM's code (sqlalchemy/orm/attributes.py in real life)
    library = os.path.join(os.path.dirname(sqlalchemy.__file__), "orm", "fake_lazy.py")
    namespace = {"call_site": call_site, "sys": sys}
    _run_as(library, LAZY, namespace)
    sites: list = []
    tickets = [namespace["Ticket"](sites), namespace["Ticket"](sites)]
    environment.get_template("list.html").render(tickets=tickets)
    assert sites == [(f"{tmp_path / 'list.html'}:3", "template list.html")] * 2


def test_async_sqlalchemy_points_at_the_awaiting_coroutine():
    """The statement runs in a greenlet whose own frames are all SQLAlchemy's: the call
    site is the coroutine that awaited it, in the parent greenlet."""
    import asyncio

    from sqlalchemy import event, text
    from sqlalchemy.ext.asyncio import create_async_engine

    sites: list = []

    async def handler(engine) -> int:
        async with engine.connect() as conn:
            result = await conn.execute(text("SELECT 1"))
        return result.scalar()

    async def main() -> None:
        engine = create_async_engine("sqlite+aiosqlite:///:memory:")
        library = os.path.join(os.path.dirname(sqlalchemy.__file__), "engine", "fake_hook.py")
        namespace = {"call_site": call_site, "sys": sys, "sites": sites}
        source = "def before(*args):\n    sites.append(call_site(sys._getframe()))\n"
        _run_as(library, source, namespace)
        event.listen(engine.sync_engine, "before_cursor_execute", namespace["before"])
        await handler(engine)
        await engine.dispose()

    asyncio.run(main())
    line = handler.__code__.co_firstlineno + 2
    assert sites == [(f"{__file__}:{line}", handler.__qualname__)]
