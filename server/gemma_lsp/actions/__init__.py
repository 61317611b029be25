"""Code actions' domain logic: which actions to offer, and a model's answer turned into minimal
edits of the selection it was asked about.

``kinds`` (the catalogue of actions as data), ``shaping`` (the code out of a Markdown answer,
indented where the selection sits), ``diff`` (minimal changes between two texts), ``edits``
(those changes as document offsets, refused outside the selection). No LSP types: ``lsp/``
turns these into code actions and workspace edits.
"""

from .diff import TextChange, apply, minimal_edits
from .edits import OutsideSelection, inside, selection_edits
from .kinds import ACTIONS, ActionSpec, actions_for
from .service import ActionService, NoChange
from .shaping import code_of, shape_code

__all__ = [
    "ACTIONS",
    "ActionService",
    "ActionSpec",
    "NoChange",
    "OutsideSelection",
    "TextChange",
    "actions_for",
    "apply",
    "code_of",
    "inside",
    "minimal_edits",
    "selection_edits",
    "shape_code",
]
