"""Named resources: what tests declare they hold, and their limits.

A test holds a resource when it is marked ``@pytest.mark.resource(name)``,
or uses (directly or through other fixtures) a fixture decorated with
:func:`resource`. Holding is exclusive unless the declaration says
``mode="shared"``, or the resource has a limit, in which case up to that
many tests hold it at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .scheduling import Access

__all__ = [
    "RESOURCE_MARKER",
    "ResourceNeed",
    "collect_limits",
    "declared_resources",
    "merge_needs",
    "parse_limits",
    "parse_resource_arguments",
    "resource",
]

RESOURCE_MARKER = "resource"

# Where resource() keeps its declarations on a fixture function.
_DECLARED = "__pytest_concurrently_resources__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ResourceNeed:
    """One declared hold of a resource.

    :param name: the resource.
    :param access: how it is held; None when the declaration did not say,
        which means exclusive, or shared for a resource with a limit.
    :param limit: the resource's limit, when the declaration gives one.
    """

    name: str
    access: Access | None = None
    limit: int | None = None


def parse_resource_arguments(
    args: Iterable[object], kwargs: Mapping[str, object]
) -> list[ResourceNeed]:
    """The needs written as ``resource(*args, **kwargs)``.

    :raises ValueError: with the problem and its fix in words for the user.
    """
    names = list(args)
    unknown = sorted(set(kwargs) - {"mode", "limit"})
    if unknown:
        raise ValueError(
            f"unknown argument {', '.join(unknown)}; resource takes names, mode= and limit="
        )
    if not names:
        raise ValueError("names no resource; give at least one name, as in resource('db')")
    for name in names:
        if not isinstance(name, str) or not name or name != name.strip() or ":" in name:
            raise ValueError(
                f"resource names are non-empty strings without spaces or ':', got {name!r}"
            )
    mode = kwargs.get("mode")
    access: Access | None = None
    if mode is not None:
        if isinstance(mode, Access):
            access = mode
        elif mode in ("exclusive", "shared"):
            access = Access(mode)
        else:
            raise ValueError(f"mode must be 'exclusive' or 'shared', got {mode!r}")
    limit = kwargs.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")
    return [ResourceNeed(str(name), access, limit) for name in names]


def resource(*names: str, mode: str | None = None, limit: int | None = None) -> Callable[[F], F]:
    """Declare that every test using the decorated fixture holds ``names``.

    Put it above (or below) ``@pytest.fixture``::

        @pytest_concurrently.resource("db")
        @pytest.fixture
        async def orders_table(): ...

    A function-scoped fixture makes each test that uses it a holder, as
    ``@pytest.mark.resource`` would. A wider-scoped fixture's instance
    holds the resource itself, from its setup to its teardown; the tests
    that use the instance share it, and other tests that need the resource
    wait until the instance is torn down.

    :param mode: ``"exclusive"`` (the default) or ``"shared"``.
    :param limit: the most holders at once.
    """
    try:
        needs = parse_resource_arguments(names, {"mode": mode, "limit": limit})
    except ValueError as exc:
        raise ValueError(
            f"pytest_concurrently.resource{_call(names, mode, limit)}: {exc}"
        ) from None

    def declare(fixture_function: F) -> F:
        for target in _wrapped_chain(fixture_function):
            declared = list(getattr(target, _DECLARED, ()))
            setattr(target, _DECLARED, (*declared, *needs))
        return fixture_function

    return declare


def _wrapped_chain(function: object) -> list[object]:
    """``function`` and the functions it wraps: pytest's fixture wrapper
    keeps the function it wraps in its definition (pytest 8.4 and later
    through ``_get_wrapped_function``, earlier through ``__wrapped__``), and
    the declaration must be found there whichever side of
    ``@pytest.fixture`` it is written on."""
    chain: list[object] = []
    current: object = function
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        unwrap = getattr(current, "_get_wrapped_function", None)
        current = unwrap() if callable(unwrap) else getattr(current, "__wrapped__", None)
    return chain


def declared_resources(function: object) -> tuple[ResourceNeed, ...]:
    """The needs :func:`resource` declared on a fixture function."""
    found = getattr(function, _DECLARED, ())
    return found if isinstance(found, tuple) else ()


def merge_needs(needs: Iterable[ResourceNeed], limited: Callable[[str], bool]) -> dict[str, Access]:
    """How each resource is held, one hold per resource: a hold that does
    not say its mode is shared when the resource has a limit (``limited``),
    exclusive otherwise; and exclusive wins over shared."""
    merged: dict[str, Access] = {}
    for need in needs:
        access = need.access
        if access is None:
            access = Access.SHARED if limited(need.name) else Access.EXCLUSIVE
        if merged.get(need.name) is not Access.EXCLUSIVE:
            merged[need.name] = access
    return merged


def parse_limits(lines: Iterable[str]) -> dict[str, int]:
    """The ``concurrently_resources`` ini option: ``name:N`` entries.

    :raises ValueError: with the problem in words for the user.
    """
    limits: dict[str, int] = {}
    for line in lines:
        for entry in line.split():
            name, colon, number = entry.partition(":")
            if not colon or not name or not number.isdigit() or int(number) < 1:
                raise ValueError(
                    f"concurrently_resources entries are name:N with N at least 1, got {entry!r}"
                )
            if name in limits and limits[name] != int(number):
                raise ValueError(
                    f"concurrently_resources gives {name!r} two limits, "
                    f"{limits[name]} and {int(number)}"
                )
            limits[name] = int(number)
    return limits


def collect_limits(
    configured: Mapping[str, int], declarations: Iterable[tuple[str, ResourceNeed]]
) -> dict[str, int]:
    """Every resource's limit, from the ini option and from the declarations
    that give one, as (where it is declared, need) pairs.

    :raises ValueError: naming both places when one resource gets two
        different limits.
    """
    limits = dict(configured)
    sources = dict.fromkeys(configured, "the concurrently_resources ini option")
    for source, need in declarations:
        if need.limit is None:
            continue
        known = limits.get(need.name)
        if known is not None and known != need.limit:
            raise ValueError(
                f"resource {need.name!r} has two limits: {known} in {sources[need.name]} and "
                f"{need.limit} in {source}; give it one limit, in one place"
            )
        limits[need.name] = need.limit
        sources.setdefault(need.name, source)
    return limits


def _call(names: tuple[object, ...], mode: object, limit: object) -> str:
    parts = [repr(name) for name in names]
    if mode is not None:
        parts.append(f"mode={mode!r}")
    if limit is not None:
        parts.append(f"limit={limit!r}")
    return "(" + ", ".join(parts) + ")"
