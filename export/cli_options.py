"""Command-line options generated from pydantic models, so that each option is written once.

A field becomes ``--field-name`` (``dest`` = the field name) with its description as help text and
its default as default; ``" (default: X)"`` is appended to the help when the default is a value
(not ``None``, not a flag, not empty). Types map to argparse as follows: ``Literal[...]`` gives
``choices``; ``bool`` gives a flag (``store_true`` when the default is False, ``store_false`` under
the name :class:`Flag` gives when it is True); ``tuple[str, ...]`` a repeatable option (one option
with several values under ``Flag(several=True)``); ``int``, ``float`` and ``Path`` convert the
value. A field whose type is itself a model (e.g. the graph-variant request) contributes its own
fields after the others. ``${name}`` in a description is replaced by the model class's attribute
``name`` (e.g. a family's default window cap)."""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Flag:
    """How a field shows on the command line where ``--field-name`` is not it (``Annotated``)."""

    name: str | None = None  # e.g. "--per-tensor" for ``per_channel: bool = True``
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # one value, converted (e.g. "1,513" -> (1, 513))
    render: Callable[[Any], str] = str  # the inverse of ``parse``, for :func:`to_argv`
    show_default: bool = True  # append " (default: X)" to the help
    several: bool = False  # a tuple given as one option with several values (``--members A B``)


def _flag(field: FieldInfo) -> Flag:
    return next((m for m in field.metadata if isinstance(m, Flag)), Flag())


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _nested_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def help_context(model: type[BaseModel]) -> dict[str, str]:
    """The class attributes a description may name as ``${name}``."""
    names = {n for cls in model.__mro__ for n in getattr(cls, "__class_vars__", ())}
    return {n: str(getattr(model, n)) for n in names if hasattr(model, n)}


def _add_field(
    parser: argparse.ArgumentParser, name: str, field: FieldInfo, context: Mapping[str, str]
) -> None:
    flag = _flag(field)
    option = flag.name or "--" + name.replace("_", "-")
    text = Template(field.description or "").safe_substitute(context)
    kind = _unwrap_optional(field.annotation)
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    if kind is bool:
        action = "store_false" if default else "store_true"
        parser.add_argument(option, dest=name, action=action, help=text)
        return
    if flag.show_default and default not in (None, (), []):
        text += f" (default: {_shown(default)})"
    kwargs: dict[str, Any] = {"dest": name, "help": text}
    if field.is_required():
        kwargs["required"] = True
    else:
        kwargs["default"] = default
    if flag.metavar is not None:
        kwargs["metavar"] = flag.metavar
    if get_origin(kind) is Literal:
        kwargs["choices"] = list(get_args(kind))
    elif flag.parse is not None:
        kwargs["type"] = flag.parse
    elif get_origin(kind) is tuple:
        if flag.several:
            kwargs["nargs"] = "+"
        else:
            kwargs["action"] = "append"
        kwargs["default"] = list(default or ())
        item = get_args(kind)[0]
        if item is not str:
            kwargs["type"] = item
    elif kind in (int, float, Path):
        kwargs["type"] = kind
    parser.add_argument(option, **kwargs)


def add_options(
    parser: argparse.ArgumentParser,
    model: type[BaseModel],
    context: Mapping[str, str] | None = None,
) -> None:
    """Add every field of ``model`` (nested models' fields last) to ``parser``."""
    context = {**help_context(model), **(context or {})}
    nested = []
    for name, field in model.model_fields.items():
        sub = _nested_model(field)
        if sub is not None:
            nested.append(sub)
        else:
            _add_field(parser, name, field, context)
    for sub in nested:
        add_options(parser, sub, context)


def _values(model: type[BaseModel], args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        sub = _nested_model(field)
        values[name] = _values(sub, args) if sub is not None else vars(args)[name]
    return values


def options_from(model: type[T], args: argparse.Namespace) -> T:
    """The typed options the parser built by :func:`add_options` parsed."""
    return model.model_validate(_values(model, args))


def to_argv(options: BaseModel) -> list[str]:
    """The command-line options that parse back to ``options`` (fields left at their default are
    left out): for a subprocess running ``python -m export``."""
    argv: list[str] = []
    nested = []
    fields = type(options).model_fields
    for name, field in fields.items():
        value = getattr(options, name)
        if _nested_model(field) is not None:
            nested.append(value)
            continue
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        if not field.is_required() and value == default:
            continue
        flag = _flag(field)
        option = flag.name or "--" + name.replace("_", "-")
        kind = _unwrap_optional(field.annotation)
        if kind is bool:
            argv.append(option)
        elif get_origin(kind) is tuple and flag.parse is None and flag.several:
            argv += [option, *(str(item) for item in value)]
        elif get_origin(kind) is tuple and flag.parse is None:
            argv += [a for item in value for a in (option, str(item))]
        else:
            argv += [option, flag.render(value)]
    for value in nested:
        argv += to_argv(value)
    return argv
