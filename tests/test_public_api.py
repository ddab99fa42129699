"""Every module in minigpt's module map declares its own names in __all__.

``__all__`` is what ``from module import *`` brings in and what the API
reference (Sphinx autodoc) documents, so it must hold the functions, classes
and constants the module itself defines for readers, and nothing it merely
imports (checkpoint's safetensors ``save_model`` is not checkpoint's own).
"""

import ast
import importlib
import inspect
import re

import pytest

import minigpt
import minigpt.tasks


def mapped_modules() -> list[str]:
    """The modules named in the package's and the tasks' module maps."""
    maps = minigpt.__doc__ + minigpt.tasks.__doc__
    return sorted({"minigpt", *re.findall(r"``(minigpt(?:\.\w+)+)``", maps)})


MODULES = mapped_modules()


def assigned_names(module) -> set[str]:
    """Names bound by a top-level assignment in ``module``'s source."""
    names = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            names |= {
                n.id for n in ast.walk(target) if isinstance(n, ast.Name)
            }
    return names


def own_functions_and_classes(module) -> set[str]:
    """Public functions and classes whose ``__module__`` is ``module``."""
    return {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    }


def test_the_map_names_every_kind_of_module():
    # the maps are parsed: a change of their format must not empty the list
    assert {
        "minigpt",
        "minigpt.checkpoint",
        "minigpt.timing",
        "minigpt.__main__",
        "minigpt.tasks",
        "minigpt.tasks.numbers",
    } <= set(MODULES)
    assert len(MODULES) >= 25


@pytest.mark.parametrize("name", MODULES)
def test_all_names_only_what_the_module_defines(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), (
        f"{name} has no __all__: list the names it defines for readers"
    )
    assert len(set(module.__all__)) == len(module.__all__), (
        f"{name}.__all__ names something twice"
    )
    constants = assigned_names(module)
    for item in module.__all__:
        assert hasattr(module, item), (
            f"{name}.__all__ names {item!r}, which {name} does not have"
        )
        obj = getattr(module, item)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__module__ == name, (
                f"{name}.__all__ names {item!r}, which it imports from "
                f"{obj.__module__}: list only {name}'s own names"
            )
        else:
            assert item in constants, (
                f"{name}.__all__ names {item!r}, which {name} does not "
                "assign: list only its own constants"
            )


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_and_class_is_in_all(name):
    module = importlib.import_module(name)
    missing = sorted(own_functions_and_classes(module) - set(module.__all__))
    assert missing == [], (
        f"{name} defines {missing} but leaves them out of __all__: add "
        "them, or rename them with a leading _ if readers should not use "
        "them"
    )


def test_star_import_of_checkpoint_brings_only_its_own_names():
    namespace = {}
    exec("from minigpt.checkpoint import *", namespace)
    names = set(namespace) - {"__builtins__"}
    own = {"CheckpointError", "save", "load", "load_into", "read_config"}
    assert names == own
    assert not names & {"save_model", "load_model", "save_file", "load_file"}
