"""Failing generated suites, shrunk by hand to the few lines that still differ.

Each :class:`Reproduction` is a suite in the generator's format (same
recorder, same root conftest hooks), so :func:`..compare.compare_suite` checks
it like any seed. ``python -m tests.differential.soak --reproductions`` runs
them all; ``--dump NAME DIRECTORY`` writes one out.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Final

from .generator import (
    MODULE_HEADER,
    RECORDER_MODULE,
    RECORDER_SOURCE,
    ROOT_CONFTEST_HEADER,
    GeneratedSuite,
)

__all__ = ["REPRODUCTIONS", "Reproduction"]


@dataclass(frozen=True)
class Reproduction:
    """A minimal suite that shows one kind of difference.

    :param name: how the command line names it.
    :param seed: the smallest seed it was shrunk from.
    :param shows: the kinds of difference it showed when it was shrunk.
    :param shape: what the suite does, in a sentence or two.
    :param fixtures: fixture definitions for the root ``conftest.py``.
    :param modules: test module name -> its code (after the common imports).
    """

    name: str
    seed: int
    shows: tuple[str, ...]
    shape: str
    fixtures: str
    modules: dict[str, str]

    def suite(self) -> GeneratedSuite:
        """The files of the reproduction, ready for :func:`..compare.compare_suite`."""
        files = {
            f"{RECORDER_MODULE}.py": RECORDER_SOURCE,
            "conftest.py": ROOT_CONFTEST_HEADER + "\n\n" + textwrap.dedent(self.fixtures),
        }
        for name, code in self.modules.items():
            files[name] = MODULE_HEADER + "\n\n" + textwrap.dedent(code)
        return GeneratedSuite(self.seed, files, "[pytest]\n", test_count=-1)


_SESSION_DB: Final = """
    @pytest.fixture(scope="session")
    def db(request):
        value = recorder.setup(request, "db@root", [])
        yield value
        recorder.teardown(value)
    """

REPRODUCTIONS: Final = (
    Reproduction(
        name="plain-and-indirect-users-overlap",
        seed=4,
        shows=("teardown-under-running-test",),
        shape=(
            "A session fixture used plainly by one async test and parametrized "
            "indirectly by another: the indirect user replaces the plain value while "
            "the plain user is running."
        ),
        fixtures=_SESSION_DB,
        modules={
            "test_a.py": """
                async def test_plain(request, db):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)


                @pytest.mark.parametrize("db", ["i0"], indirect=True)
                async def test_indirect(request, db):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="plain-user-gets-a-replaced-value",
        seed=4,
        shows=("stale-instance", "teardown-under-running-test"),
        shape=(
            "Two plain users and one indirect user of a slow async session fixture; "
            "the second plain user reaches the fixture after the indirect user has "
            "replaced it, and starts with the torn-down value."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            async def s(request):
                await asyncio.sleep(0.01)
                value = recorder.setup(request, "s@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture
            async def f(request):
                await asyncio.sleep(0.005)
                value = recorder.setup(request, "f@root", [])
                yield value
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                async def test_plain_one(request, s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)


                async def test_plain_two(request, f, s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)


                @pytest.mark.parametrize("s", ["i0"], indirect=True)
                async def test_indirect(request, s):
                    received = recorder.start(request)
                    recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="plain-value-set-up-again",
        seed=0,
        shows=("fixture-set-up-more-often", "fixture-set-up-less-often"),
        shape=(
            "A parametrized session fixture p and a session fixture q that one test "
            "parametrizes indirectly and another uses plainly: q's plain value is set "
            "up twice (pytest: once) and p's values change at other places."
        ),
        fixtures="""
            @pytest.fixture(scope="session", params=["a", "b"])
            def p(request):
                value = recorder.setup(request, "p@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture(scope="session")
            def q(request):
                value = recorder.setup(request, "q@root", [])
                yield value
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                @pytest.mark.parametrize("q", ["i0", "i1"], indirect=True)
                async def test_indirect(request, p, q):
                    received = recorder.start(request)
                    recorder.end(request, received)


                async def test_plain(request, p, q):
                    received = recorder.start(request)
                    recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="indirect-value-of-an-overriding-fixture",
        seed=0,
        shows=("fixture-set-up-less-often",),
        shape=(
            "A class overrides a module fixture with a class fixture that requests it, "
            "and a test of the class parametrizes the name indirectly. pytest passes "
            "the value to both definitions and, since one FixtureDef caches one value, "
            "tears the module instance down and sets it up again afterwards; the plugin "
            "keeps the module instance beside the class one and sets it up once."
        ),
        fixtures="",
        modules={
            "test_a.py": """
                @pytest.fixture(scope="module")
                def fx(request):
                    value = recorder.setup(request, "fx@test_a.py", [])
                    yield value
                    recorder.teardown(value)


                async def test_before(request, fx):
                    received = recorder.start(request)
                    recorder.end(request, received)


                class TestC:
                    @pytest.fixture(scope="class")
                    def fx(self, request, fx):
                        value = recorder.setup(request, "fx@TestC", [fx])
                        yield value
                        recorder.teardown(value)

                    @pytest.mark.parametrize("fx", ["i0"], indirect=True)
                    async def test_indirect(self, request, fx):
                        received = recorder.start(request)
                        recorder.end(request, received)

                    async def test_after(self, request, fx):
                        received = recorder.start(request)
                        recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="session-torn-down-under-a-dependent-teardown",
        seed=25,
        shows=("dependency-torn-down-first",),
        shape=(
            "test_a's function fixture f(s) has a slow async teardown; test_b, which "
            "uses the session fixture s, ends meanwhile and tears s down while f is "
            "still tearing down."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            def s(request):
                value = recorder.setup(request, "s@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture
            async def f(request, s):
                value = recorder.setup(request, "f@root", [s])
                yield value
                await asyncio.sleep(0.05)
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                async def test_a(request, f):
                    received = recorder.start(request)
                    recorder.end(request, received)


                async def test_b(request, s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.02)
                    recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="session-teardown-cascades-into-another-module",
        seed=25,
        shows=("teardown-in-foreign-test", "dependency-torn-down-first"),
        shape=(
            "As above with a module fixture m(s) between s and f: tearing s down in "
            "test_b (module B) also finalizes module A's m, in test_b's teardown and "
            "before f, which depends on it."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            def s(request):
                value = recorder.setup(request, "s@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture(scope="module")
            def m(request, s):
                value = recorder.setup(request, "m@root", [s])
                yield value
                recorder.teardown(value)


            @pytest.fixture
            async def f(request, m):
                value = recorder.setup(request, "f@root", [m])
                yield value
                await asyncio.sleep(0.05)
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                async def test_a(request, f):
                    received = recorder.start(request)
                    recorder.end(request, received)
                """,
            "test_b.py": """
                async def test_b(request, s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.02)
                    recorder.end(request, received)
                """,
        },
    ),
    Reproduction(
        name="class-kept-across-a-parameter-change",
        seed=28,
        shows=(
            "teardown-in-foreign-test",
            "teardown-error-wrong-test",
            "outcome-setup",
            "outcome-call",
        ),
        shape=(
            "A class fixture c(p), whose teardown fails, over a parametrized session "
            "fixture p. pytest's order splits the class (test_other[a], "
            "TestC::test_it[a], test_other[b], ...); the plugin keeps c until p changes, "
            "so c is torn down in the setup of test_other[b], which errors instead of "
            "TestC::test_it[a]'s teardown."
        ),
        fixtures="""
            @pytest.fixture(scope="session", params=["a", "b"])
            def p(request):
                value = recorder.setup(request, "p@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture(scope="class")
            def c(request, p):
                value = recorder.setup(request, "c@root", [p])
                yield value
                recorder.teardown(value, fail="raise")
            """,
        modules={
            "test_a.py": """
                async def test_other(request, p):
                    received = recorder.start(request)
                    recorder.end(request, received)


                class TestC:
                    async def test_it(self, request, c):
                        received = recorder.start(request)
                        recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="replaced-by-a-later-test",
        seed=1873,
        shows=(
            "fixture-set-up-more-often",
            "outcome-call",
            "outcome-setup",
            "replaced-instance-teardown-error",
            "teardown-error-wrong-test",
        ),
        shape=(
            "A session fixture s whose indirect value's teardown fails. pytest replaces "
            "that value in the setup of test_dynamic, whose module fixture asks for s "
            "with request.getfixturevalue after a slow fixture; test_static, later in "
            "collection order, reached s first and replaced it, taking the error."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            def s(request):
                value = recorder.setup(request, "s@root", [])
                yield value
                recorder.teardown(value, fail=recorder.on_param(request, "i0", "raise"))


            @pytest.fixture(scope="module")
            async def slow(request):
                await asyncio.sleep(0.05)
                value = recorder.setup(request, "slow@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture(scope="module")
            def dynamic(request, slow):
                value = recorder.setup(request, "dynamic@root", [request.getfixturevalue("s")])
                yield value
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                @pytest.mark.parametrize("s", ["i0"], indirect=True)
                async def test_indirect(request, s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)


                async def test_dynamic(request, dynamic):
                    received = recorder.start(request)
                    recorder.end(request, received)


                async def test_static(request, s):
                    received = recorder.start(request)
                    recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="new-life-made-by-a-later-user",
        seed=1659,
        shows=(),
        shape=(
            "Two tests need the same new value of a session fixture p, whose old "
            "value's teardown fails. The earlier one first sets up a slow session "
            "fixture q; the later one reached p first, replaced it and took the "
            "error pytest reports on the earlier one."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            def p(request):
                value = recorder.setup(request, "p@root", [])
                yield value
                recorder.teardown(value, fail=recorder.on_param(request, "a", "raise"))


            @pytest.fixture(scope="session")
            async def q(request):
                await asyncio.sleep(0.05)
                value = recorder.setup(request, "q@root", [])
                yield value
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                @pytest.mark.parametrize("p", ["a"], indirect=True)
                async def test_zero(request, p):
                    received = recorder.start(request)
                    recorder.end(request, received)
                """,
            "test_b.py": """
                @pytest.mark.parametrize("p", ["b"], indirect=True)
                async def test_one(request, q, p):
                    received = recorder.start(request)
                    recorder.end(request, received)


                @pytest.mark.parametrize("p", ["b"], indirect=True)
                async def test_two(request, p):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)
                """,
        },
    ),
    Reproduction(
        name="narrow-request-ends-a-wider-value",
        seed=2516,
        shows=("stale-instance", "fixture-set-up-less-often"),
        shape=(
            "A session fixture s asked for once with a module-scoped indirect parameter: "
            "pytest registers its finish on the module, so the module's end tears down "
            "whatever value s then holds, a plain one included. A test of the next module "
            "that uses s plainly overlapped the module's last test and received the value "
            "torn down under it."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            def s(request):
                value = recorder.setup(request, "s@root", [])
                yield value
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                @pytest.fixture(scope="module")
                def s(request, s):
                    value = recorder.setup(request, "s@test_a", [s])
                    yield value
                    recorder.teardown(value)


                @pytest.mark.parametrize("s", ["i0"], indirect=True)
                async def test_param(request, s):
                    received = recorder.start(request)
                    recorder.end(request, received)


                async def test_plain(request, s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.05)
                    recorder.end(request, received)
                """,
            "test_b.py": """
                async def test_later(request, s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)
                """,
        },
    ),
    Reproduction(
        name="dynamic-request-replaces-a-value-being-built-on",
        seed=27210,
        shows=("stale-instance", "fixture-set-up-less-often", "received-different-instances"),
        shape=(
            "An earlier test asks for a session fixture with request.getfixturevalue "
            "once its own slow setup is done; meanwhile a later test, parametrizing "
            "the fixture indirectly, has made its value and is still setting up an "
            "async fixture built on it. The earlier test must wait for the later one "
            "to be done with that value before replacing it."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            def s(request):
                value = recorder.setup(request, "s@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture(scope="module")
            async def slow(request):
                await asyncio.sleep(0.005)
                value = recorder.setup(request, "slow@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture(scope="module")
            async def built_on_s(request, s):
                await asyncio.sleep(0.02)
                value = recorder.setup(request, "built_on_s@root", [s])
                yield value
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                @pytest.fixture
                def asks_for_s(request, slow):
                    value = recorder.setup(
                        request, "asks_for_s@test_a", [slow, request.getfixturevalue("s")]
                    )
                    yield value
                    recorder.teardown(value)


                def test_dynamic(request, asks_for_s):
                    received = recorder.start(request)
                    recorder.end(request, received)


                @pytest.mark.parametrize("s", ["i1", "i0"], indirect=True)
                async def test_indirect(request, s, built_on_s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="fixture-asks-by-name-for-a-replaced-value",
        seed=27785,
        shows=("fixture-set-up-less-often", "fixture-setup-error-count"),
        shape=(
            "A module fixture asks for a session fixture with "
            "request.getfixturevalue('s'); the next test parametrizes that fixture "
            "indirectly and the one after uses it plainly. In pytest's order the "
            "session value is made three times; the plan has to count the first "
            "test among its users from the literal name, or the first and the last "
            "test share one value."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            def s(request):
                value = recorder.setup(request, "s@root", [])
                yield value
                recorder.teardown(value)


            @pytest.fixture(scope="module")
            def asks_for_s(request):
                value = recorder.setup(request, "asks_for_s@root", [request.getfixturevalue("s")])
                yield value
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                async def test_dynamic(request, asks_for_s):
                    received = recorder.start(request)
                    await asyncio.sleep(0.01)
                    recorder.end(request, received)


                @pytest.mark.parametrize("s", ["i0"], indirect=True)
                async def test_indirect(request, s):
                    received = recorder.start(request)
                    recorder.end(request, received)


                async def test_static(request, s):
                    received = recorder.start(request)
                    recorder.end(request, received)
                """
        },
    ),
    Reproduction(
        name="new-life-made-while-its-first-user-waits",
        seed=28119,
        shows=("warning-on-another-test",),
        shape=(
            "The first user of a module fixture m is waiting for the owner of a slow "
            "session fixture when the second user reaches m. pytest makes m, and "
            "records the warning its setup gives, in the first user's setup; the "
            "second user made it instead, since a test waiting for a fixture was "
            "not waited for."
        ),
        fixtures="""
            @pytest.fixture(scope="session")
            async def slow(request):
                await asyncio.sleep(0.05)
                value = recorder.setup(request, "slow@root", [])
                yield value
                recorder.teardown(value)
            """,
        modules={
            "test_a.py": """
                @pytest.fixture(scope="module")
                def m(request):
                    warnings.warn(UserWarning("m is made"))
                    value = recorder.setup(request, "m@test_a.py", [])
                    yield value
                    recorder.teardown(value)


                async def test_maker(request, slow):
                    received = recorder.start(request)
                    recorder.end(request, received)


                async def test_first(request, slow, m):
                    received = recorder.start(request)
                    recorder.end(request, received)


                async def test_second(request, m):
                    received = recorder.start(request)
                    recorder.end(request, received)
                """
        },
    ),
)
