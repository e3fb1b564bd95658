"""Every command's --help: a description, and no doubled percent signs."""

from __future__ import annotations

import argparse

from fracbench.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str = "fracbench"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _parsers(child, f"{name} {sub}")


def test_every_command_has_a_description_and_its_help_prints_clean():
    found = list(_parsers(build_parser()))
    assert len(found) > 20
    undescribed = [name for name, p in found if not p.description]
    assert not undescribed, f"commands without a description: {undescribed}"
    doubled = [name for name, p in found if "%%" in p.format_help()]
    assert not doubled, f"'%%' printed in the help of {doubled}"
