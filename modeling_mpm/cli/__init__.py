"""The ``mpm`` command line: a thin dispatcher over the library.

Each sub-command module (``modeling_mpm/cli/<command>.py``) exposes ``main(argv) -> int`` (or ``<command>_main``)
and is imported lazily. The console script (``modeling_mpm_cli``) runs this file without the package ``__init__``
(which imports torch and transformers), so this file uses the standard library only and no relative imports.
:func:`cli_style` gives every parser one flag style: ``--kebab-case`` shown, ``--snake_case`` accepted, no
reStructuredText markup.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from typing import Callable, List, Optional

# name -> (module, help text)
SUBCOMMANDS = {
    "demo": ("modeling_mpm.cli.demo", "run the whole pipeline on the embedded real-motion demo data"),
    "lift": ("modeling_mpm.cli.inference", "lift 2D keypoints (npy/npz/COCO JSON) to 3D"),
    "complete": ("modeling_mpm.cli.inference", "complete 3D poses with missing joints"),
    "render": ("modeling_mpm.cli.inference", "render a 2D+3D side-by-side animation"),
    "lift-video": ("modeling_mpm.cli.lift_video", "video -> detector -> ViTPose -> tracks -> 3D per person"),
    "export-onnx": ("modeling_mpm.cli.export_onnx", "export a lifting model to ONNX"),
    "convert": ("modeling_mpm.cli.convert", "convert an official MPM checkpoint"),
    "eval": ("modeling_mpm.cli.eval", "evaluate a lifting model on a prepared data set"),
    "prepare": ("modeling_mpm.cli.prepare", "prepare Human3.6M / MPI-INF-3DHP / AMASS / BVH data sets"),
    "train": ("modeling_mpm.cli.train", "pre-train or fine-tune (mpm train pretrain|finetune --config NAME)"),
}


def version() -> str:
    """``__version__`` of ``modeling_mpm/__init__.py`` read as text (no import), else the installed distribution's."""
    init = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "__init__.py")
    try:
        with open(init, encoding="utf-8") as f:
            m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', f.read(), re.M)
        if m:
            return m.group(1)
    except OSError:
        pass
    try:
        from importlib.metadata import version as dist_version

        return dist_version("modeling-mpm")
    except Exception:  # pragma: no cover - neither source nor metadata
        return "unknown"


def _usage() -> str:
    commands = [f"  {name:<12} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(["usage: mpm <command> [options]", "       mpm --version", "", "commands:", *commands, "",
                      "Run 'mpm <command> --help' for the options of one command. Options are spelled",
                      "--kebab-case; the --snake_case spellings are accepted too."])


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"mpm (modeling-mpm) {version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"mpm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        return int(entry_point(name)(rest) or 0)
    except (ValueError, TypeError, OSError, ImportError) as err:
        if not is_input_error(err):
            raise  # a bug: its traceback is what a report needs
        print(f"mpm {name}: error: {error_sentence(err)}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- errors -> sentences
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_input_error(err: BaseException) -> bool:
    """True when ``err`` reports bad user input (a sentence, exit code 2) rather than a bug (traceback): an
    ``MPMInputError``, a ``ValueError`` / ``TypeError`` / ``ImportError`` raised by a ``raise`` in this package, a
    missing optional package, a file-system error on a named path."""
    if any(c.__name__ == "MPMInputError" for c in type(err).__mro__):
        return True
    if isinstance(err, ModuleNotFoundError):
        return not (err.name or "modeling_mpm").startswith("modeling_mpm")
    if isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return bool(getattr(err, "filename", None)) or _raised_here(err)
    if isinstance(err, (ValueError, TypeError, ImportError)) and str(err):
        return _raised_here(err)
    return False


def _raised_here(err: BaseException) -> bool:
    """The innermost frame of ``err``'s traceback is a ``raise`` statement in this package."""
    import linecache

    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    if not filename.startswith(_PACKAGE_DIR + os.sep):
        return False
    return linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise")


def error_sentence(err: BaseException) -> str:
    """The one-line text ``mpm`` prints for an input error."""
    if isinstance(err, ModuleNotFoundError) and not str(err).endswith("pip install") and err.name:
        return f"{err} (an optional dependency): pip install {err.name.split('.')[0]}"
    if isinstance(err, OSError) and getattr(err, "filename", None) and err.strerror:
        return f"{err.filename}: {err.strerror}"
    text = str(err).strip()
    return text if text else type(err).__name__


def fail(message: object) -> int:
    """Print ``error: <message>`` to stderr and return the exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def entry_point(name: str) -> Callable[[Optional[List[str]]], int]:
    """The function that runs ``mpm <name>``: ``<name>_main`` of its module in :data:`SUBCOMMANDS`, else ``main``."""
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return getattr(module, f"{name.replace('-', '_')}_main", None) or getattr(module, "main")


# --------------------------------------------------------------------------- one flag style
_RST_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc|ref|doc):`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``([^`]+)``")
_SNAKE_FLAG = re.compile(r"(?<![\w-])--[a-z0-9]+(?:_[a-z0-9]+)+")


def plain_text(text: Optional[str]) -> Optional[str]:
    """Help text in the CLI's style: options named in ``--kebab-case``, no reStructuredText markup (roles -> the
    name, double-backtick literals -> single quotes, ``::`` at a line end -> ``:``)."""
    if not text:
        return text
    text = _SNAKE_FLAG.sub(lambda m: m.group(0).replace("_", "-"), text)  # flags named in the text
    text = _RST_ROLE.sub(lambda m: m.group(1).split(".")[-1] if m.group(1).startswith("~") else m.group(1), text)
    text = _RST_LITERAL.sub(lambda m: f"'{m.group(1)}'" if " " not in m.group(1) else m.group(1), text)
    return re.sub(r"::$", ":", text, flags=re.M)


class _KebabHelp:
    """Help formatter mix-in that lists an option under its ``--kebab-case`` spelling only."""

    def _format_action_invocation(self, action):
        opts = action.option_strings
        action.option_strings = [o for o in opts
                                 if not (o.startswith("--") and "_" in o and o.replace("_", "-") in opts)]
        try:
            return super()._format_action_invocation(action)
        finally:
            action.option_strings = opts


def cli_style(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` (and its sub-parsers) the ``mpm`` flag style in place: ``--foo-bar`` shown, ``--foo_bar``
    accepted, help texts without reStructuredText markup. Returns ``parser``."""
    if not getattr(parser, "_mpm_styled", False):
        base = parser.formatter_class
        if not issubclass(base, _KebabHelp):
            parser.formatter_class = type(f"Kebab{base.__name__}", (_KebabHelp, base), {})
        parser.description = plain_text(parser.description)
        parser.epilog = plain_text(parser.epilog)
        for action in parser._actions:
            action.help = plain_text(action.help) if isinstance(action.help, str) else action.help
            extra = []
            for opt in action.option_strings:
                if not opt.startswith("--"):
                    continue
                for other in (opt.replace("_", "-"), opt.replace("-", "_").replace("__", "--", 1)):
                    if other != opt and other not in parser._option_string_actions and other not in extra:
                        extra.append(other)
            if extra:
                kebab = [o for o in extra if "_" not in o]
                action.option_strings = kebab + list(action.option_strings) + [o for o in extra if o not in kebab]
                for opt in extra:
                    parser._option_string_actions[opt] = action
        parser._mpm_styled = True
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                cli_style(sub)
    return parser
