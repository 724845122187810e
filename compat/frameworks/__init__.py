"""The legacy frameworks, one package each, and the registry the rest of the project iterates.

Everything the project knows about reading one framework's files sits in that framework's package:

| key | package | files | layouts | reader of the file format | oracle (reference/) |
| --- | --- | --- | --- | --- | --- |
| ``tf`` | ``compat.frameworks.tf`` | checkpoints (prefix, ``.index``, ``.data-*``, V1 file, directory) | ``tf`` (+ cuDNN buffers) | ``compat.formats.tf`` | ``tf_lstm.py``, ``onnx_lstm.py`` (cuDNN) |
| ``keras`` | ``compat.frameworks.keras`` | ``.h5``, ``.hdf5``, ``.keras`` | ``keras``, ``keras_cudnn`` | ``compat.formats.keras`` | ``keras_lstm.py`` |
| ``onnx`` | ``compat.frameworks.onnx`` | ``.onnx`` | ``onnx`` | ``compat.formats.onnx``, ``compat.formats.onnx_fold`` | ``onnx_lstm.py`` |
| ``theano`` | ``compat.frameworks.theano`` | ``.npz`` | ``theano`` | ``compat.formats.npz`` | ``theano_lstm.py`` |
| ``caffe`` | ``compat.frameworks.caffe`` | ``.caffemodel`` | ``caffe``, ``junhyukoh`` | ``compat.formats.caffemodel``, ``prototxt`` | ``caffe_lstm.py`` |

Each package holds ``layout.py`` (its gate layouts, registered into :data:`compat.layouts.LAYOUTS`),
``discover.py`` (the converter's reader: every recurrent layer of a file as a
:class:`compat.convert.spec.LSTMSpec`, every other tensor or layer accounted for, and, where the package
reads whole models, the model as a :class:`compat.convert.graph.GraphSpec`), ``oracle.py`` (the
converter's verification against the framework's numpy reference) and, in its ``__init__``, its
:class:`Framework` record: its key, suffixes, how a path is recognised, the command-line options its
files need, the module classes its conversions load as, and the module whose ``LAYERS`` table rebuilds its
whole models' layers (Keras: ``compat.frameworks.keras.layers``). The TF package also holds ``names.py``, the
one table of TF variable names across TF generations that the converter, ``compat.tf1`` and the TF ports
read. The file-format readers stay in :mod:`compat.formats` (shared with the ports).

The converter (:mod:`compat.convert`), the layouts and the verification iterate :data:`FRAMEWORKS`;
none of them names a framework. Importing this package imports every framework package, each of which
registers itself.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Tuple

from compat.errors import InputError


class UnknownFrameworkError(InputError, ValueError):
    """A framework key that no package registered."""


@dataclass(frozen=True)
class Option:
    """A command-line option of ``python -m compat.convert`` that one framework's files need.

    ``dest`` is also the keyword of :func:`compat.convert.convert` / ``discover``; ``default`` is what
    "not given" looks like (the converter refuses an option given for another framework's file).
    """

    flag: str
    dest: str
    help: str
    type: Optional[Callable] = None
    default: object = None
    action: Optional[str] = None
    metavar: Optional[str] = None
    choices: Optional[Tuple[str, ...]] = None
    positive: bool = False


@dataclass(frozen=True)
class Framework:
    """One legacy framework as the converter sees it (see the module docstring)."""

    key: str
    title: str
    package: str
    suffixes: Tuple[str, ...]
    layouts: Tuple[str, ...]
    options: Tuple[Option, ...] = ()
    aliases: Tuple[str, ...] = ()
    # oracle name -> reference file, for the report; the functions are oracle.ORACLES in the package
    references: Mapping[str, str] = field(default_factory=dict)
    # module kind (the name written into a conversion) -> "package.module:Class"
    modules: Mapping[str, str] = field(default_factory=dict)
    # (path) -> True when the path is this framework's file though its suffix says nothing
    claims: Optional[Callable[[Path], bool]] = None
    # (path) -> a sentence saying what the file is and what to convert instead, for files it recognises
    # but does not read (None: not one of those)
    explain: Optional[Callable[[Path], Optional[str]]] = None
    # "package.module" whose LAYERS table (kind -> compat.convert.graph.LayerKind) rebuilds the whole models
    # this framework's reader describes (None: its conversions hold recurrent layers only)
    layers: Optional[str] = None

    def discover(self, path, **options):
        """The package's ``discover.discover(path, **options)``: a :class:`compat.convert.spec.Found`."""
        return importlib.import_module(f"{self.package}.discover").discover(path, **options)

    def oracle(self, name: str) -> Callable:
        return importlib.import_module(f"{self.package}.oracle").ORACLES[name]


FRAMEWORKS: Dict[str, Framework] = {}


def register(framework: Framework) -> Framework:
    if framework.key in FRAMEWORKS:
        raise ValueError(f"framework {framework.key!r} registered twice")
    FRAMEWORKS[framework.key] = framework
    return framework


def get(key: str) -> Framework:
    """The framework of ``key`` or of one of its older spellings (``"tf1"`` is ``"tf"``)."""
    if key in FRAMEWORKS:
        return FRAMEWORKS[key]
    for fw in FRAMEWORKS.values():
        if key in fw.aliases:
            return fw
    raise UnknownFrameworkError(f"unknown format {key!r}; known: {list(FRAMEWORKS)}")


def by_suffix(path) -> Optional[Framework]:
    suffix = Path(path).suffix.lower()
    for fw in FRAMEWORKS.values():
        if suffix in fw.suffixes:
            return fw
    return None


def oracle(name: str) -> Callable:
    """The verification function of oracle ``name``, whichever framework registered it."""
    for fw in FRAMEWORKS.values():
        if name in fw.references:
            return fw.oracle(name)
    raise KeyError(name)


def reference_file(name: str) -> str:
    for fw in FRAMEWORKS.values():
        if name in fw.references:
            return fw.references[name]
    return name


def module_class(kind: str):
    """The class a conversion's module kind names (None for kinds no framework registered)."""
    for fw in FRAMEWORKS.values():
        if kind in fw.modules:
            module, _, cls = fw.modules[kind].partition(":")
            return getattr(importlib.import_module(module), cls)
    return None


def layer_kinds(key: str) -> Mapping[str, object]:
    """The layer kinds (:class:`compat.convert.graph.LayerKind` by kind) that framework ``key`` registered for
    whole models; empty for a framework that converts recurrent layers only."""
    fw = get(key)
    if fw.layers is None:
        return {}
    return importlib.import_module(fw.layers).LAYERS


def options() -> Dict[str, Tuple[Framework, Option]]:
    """Every framework's command-line options by ``dest``."""
    out: Dict[str, Tuple[Framework, Option]] = {}
    for fw in FRAMEWORKS.values():
        for opt in fw.options:
            if opt.dest in out:
                first, seen = out[opt.dest]
                # one flag may serve several frameworks (--weights: Keras's JSON, Caffe's .prototxt): one option,
                # its help joined; which framework takes it is the source's (discover checks it)
                if (opt.flag, opt.type, opt.action, opt.default) != (seen.flag, seen.type, seen.action, seen.default):
                    raise ValueError(f"option {opt.dest!r} registered by {first.key} and {fw.key}")
                opt = replace(seen, help=f"{seen.help}; {opt.help}")
                fw = first
            out[opt.dest] = (fw, opt)
    return out


def takes(fw: Framework, dest: str) -> bool:
    """Whether framework ``fw`` reads the option ``dest``."""
    return any(opt.dest == dest for opt in fw.options)


# Importing each package registers it (and its layouts) here; the order is the order of --format's choices.
for _name in ("tf", "keras", "onnx", "theano", "caffe"):
    importlib.import_module(f"{__name__}.{_name}")
del _name
