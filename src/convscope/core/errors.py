"""The exceptions convscope raises, each naming the bad value and the valid choices."""

from __future__ import annotations

from collections.abc import Iterable


class ConvscopeError(ValueError):
    """Base class of every error convscope raises on bad input."""


class UnknownNameError(ConvscopeError, KeyError):
    """A model, layer, class or notebook name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class CheckpointError(ConvscopeError):
    """A weights file that cannot be read or does not fit the model."""


class WeightsNotFoundError(ConvscopeError, FileNotFoundError):
    """No weights file for a model, with instructions on where to put one."""


class SurgeryError(ConvscopeError):
    """A parameter transplant between layers whose shapes cannot be matched."""


class FileError(ConvscopeError):
    """A path that cannot be read or written as asked: missing, a folder, a FIFO, no
    permission, no space."""


class ImageError(ConvscopeError):
    """An image file that is missing or cannot be decoded."""


def unknown_name(kind: str, name: object, choices: Iterable[object]) -> UnknownNameError:
    """Build the error for an unknown `name` of some `kind`, listing the valid `choices`."""
    listed = ", ".join(str(choice) for choice in choices)
    return UnknownNameError(f"unknown {kind} {name!r}; choose one of: {listed}")
