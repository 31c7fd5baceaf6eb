"""The moto the patches were written against: the version guard (the pin in
local/requirements.txt) and the machinery that checks MOTO_SOURCES against the installed
moto (local/test_emulator.py)."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import sys
from pathlib import Path


# ---------------------------------------------------------------------------------------
# The moto these patches were written against.
# ---------------------------------------------------------------------------------------
#: Where the moto pin lives (`moto[...]==X.Y.Z`), the one `make install` installs (local/, above
#: this package).
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


class MotoVersionError(RuntimeError):
    """The installed moto is not the version local/requirements.txt pins."""


def pinned_moto_version(requirements: Path = REQUIREMENTS) -> str:
    """The version local/requirements.txt pins moto to: its one `moto==X` or `moto[extras]==X` line."""
    try:
        text = requirements.read_text(encoding="utf-8")
    except OSError as err:
        raise MotoVersionError(f"cannot read the moto pin from {requirements}: {err}") from None
    pin = re.compile(r"^\s*moto\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#,]+)\s*(?:[;#].*)?$", re.IGNORECASE | re.MULTILINE)
    pins = pin.findall(text)
    if len(pins) != 1:
        raise MotoVersionError(
            f"{requirements} must pin moto exactly once (a line `moto[...]==X.Y.Z`), found {len(pins)} such lines: "
            "the emulator's patches are written against one moto version"
        )
    return pins[0]


def require_pinned_moto(installed: str | None = None, requirements: Path = REQUIREMENTS) -> str:
    """Refuses (MotoVersionError) any moto but the pinned one: the patches in local/emulation/ replace moto
    internals, and on another version they may silently do nothing or break what they meant to
    correct. `installed` defaults to moto.__version__. Returns the version."""
    if installed is None:
        import moto

        installed = moto.__version__
    pinned = pinned_moto_version(requirements)
    if installed != pinned:
        raise MotoVersionError(
            f"moto {installed} is installed, but {requirements} pins moto {pinned}, the version the emulator's "
            f"patches were written against. Install the pinned version ({sys.executable} -m pip install -r "
            f"{requirements}). To move to moto {installed} instead: change the pin, then run local/test_emulator.py; "
            "its MotoSourcesTest lists each patched moto function whose source changed, and each patch that relies "
            "on one needs a look before its hash in MOTO_SOURCES (local/emulation/, the patch's module) is updated."
        )
    return installed


def resolve_moto(path: str) -> object:
    """The object a dotted path names: the longest importable module prefix, then attributes
    (a class's inherited attribute is found as getattr finds it). LookupError when it is gone."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and module_name != err.name and not module_name.startswith(err.name + "."):
                raise  # a module that does exist failed to import: not this path's absence
            continue
        break
    else:
        raise LookupError(f"no module of {path} can be imported")
    for at in range(cut, len(parts)):
        try:
            obj = getattr(obj, parts[at])
        except AttributeError:
            raise LookupError(f"{'.'.join(parts[:at])} has no attribute {parts[at]!r}") from None
    return obj


def moto_source_sha256(path: str) -> str:
    """sha256 of inspect.getsource of what `path` names (a property: its getter)."""
    obj = resolve_moto(path)
    if isinstance(obj, property):
        obj = obj.fget
    return hashlib.sha256(inspect.getsource(obj).encode("utf-8")).hexdigest()


def changed_moto_sources(recorded: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """The recorded moto sources (MOTO_SOURCES) that the installed moto no longer has, one
    {"patch", "path", "problem", "sha256"} each: problem "changed" (sha256 is the installed
    source's) or why the path no longer resolves (sha256 None). Only meaningful in a process
    whose moto is not patched yet: after apply_patches a path names the replacement."""
    from . import MOTO_SOURCES  # every module's part, merged by the package

    recorded = MOTO_SOURCES if recorded is None else recorded
    found: dict[str, tuple[str | None, str]] = {}
    changed = []
    for patch, sources in recorded.items():
        for path, expected in sources.items():
            if path not in found:
                try:
                    found[path] = (moto_source_sha256(path), "changed")
                except (LookupError, ImportError, OSError, TypeError) as err:
                    found[path] = (None, f"cannot be resolved or read ({type(err).__name__}: {err})")
            actual, problem = found[path]
            if actual != expected:
                changed.append({"patch": patch, "path": path, "problem": problem, "sha256": actual})
    return changed
