"""``@dataclass`` without ``exec``: for classes that write their ``__init__`` out.

The decorator compiles each method it writes from source (``exec``, ~1M instructions each on
CPython 3.11: three for a dataclass, six for a frozen one), paid at the import of every program
using couchcore (``couchcore load`` included: benchmarks/results/bulk-r27.md).
:func:`written_dataclass` makes the same dataclass from a class whose ``__init__`` is written
out as the decorator would write it, and makes ``__repr__``, ``__eq__`` (and, frozen,
``__hash__``, ``__setattr__``, ``__delattr__``) from the field names.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass
from operator import attrgetter
from reprlib import recursive_repr
from typing import TYPE_CHECKING, Any, Callable

__all__ = ["written_dataclass", "FACTORY"]


class _Factory:
    """The default of a field made by a factory, shown as a dataclass shows it (``<factory>``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


#: the default a written-out ``__init__`` gives a field that has a ``default_factory`` (as the
#: decorator's does: ``self.x = list() if x is FACTORY else x``); its repr is ``<factory>``
FACTORY: Any = _Factory()


if TYPE_CHECKING:  # what type checkers see: the dataclass, made by the plain decorator
    from dataclasses import dataclass as written_dataclass
else:
    def written_dataclass(*, frozen: bool = False, init: bool, repr: bool, eq: bool) -> Callable[[type], type]:
        """``@dataclass`` (``frozen=True``: ``@dataclass(frozen=True)``) for a class that writes
        its ``__init__`` out as the decorator would (``init=False, repr=False, eq=False``: the
        decorator's own arguments, for type checkers, which then see the plain decorator).

        The same dataclass (``dataclasses.fields``/``replace``/``asdict``, ``__match_args__``,
        the ``__dataclass_params__`` the plain decorator sets, subclasses made by the
        decorator; frozen: ``FrozenInstanceError``, hashing; else ``__hash__`` is ``None``),
        with ``__repr__`` (recursion cut as the decorator's), ``__eq__`` (``NotImplemented``
        for another class) and, frozen, ``__hash__``, ``__setattr__`` and ``__delattr__``
        made here from the field names. The class has two fields or more."""
        assert not (init or repr or eq)

        def make(cls: type) -> type:
            made = dataclass(init=False, repr=False, eq=False)(cls)
            names = tuple(made.__dataclass_fields__)
            key = attrgetter(*names)  # (two fields or more: a tuple)

            @recursive_repr()
            def __repr__(self: Any) -> str:
                return f"{self.__class__.__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"

            def __eq__(self: Any, other: Any) -> Any:
                if other.__class__ is self.__class__:
                    return key(self) == key(other)
                return NotImplemented

            def __hash__(self: Any) -> int:
                return hash(key(self))

            def __setattr__(self: Any, name: str, value: Any) -> None:
                if type(self) is made or name in names:
                    raise FrozenInstanceError(f"cannot assign to field {name!r}")
                super(made, self).__setattr__(name, value)

            def __delattr__(self: Any, name: str) -> None:
                if type(self) is made or name in names:
                    raise FrozenInstanceError(f"cannot delete field {name!r}")
                super(made, self).__delattr__(name)

            methods: tuple[Callable[..., Any], ...] = (__repr__, __eq__)
            if frozen:
                methods += (__hash__, __setattr__, __delattr__)
            for method in methods:
                method.__qualname__ = f"{made.__qualname__}.{method.__name__}"
                setattr(made, method.__name__, method)
            if not frozen:
                made.__hash__ = None  # type: ignore[assignment]  # (eq without frozen: unhashable, as the decorator)
            made.__init__.__annotations__["return"] = None  # (the decorator's __init__ says None, not 'None')
            params = made.__dataclass_params__
            params.init = params.repr = params.eq = True  # as @dataclass(...) says
            params.frozen = frozen
            return made

        return make
