"""Errors that users see. Each message says what is wrong and how to fix it."""


class PhotorealError(Exception):
    """Base class: anything the add-on reports to the user instead of crashing."""


class MissingPassError(PhotorealError):
    def __init__(self, message: str, missing: list[str] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])


class NonFiniteError(PhotorealError):
    """NaN or inf in a pass."""


class SizeMismatchError(PhotorealError):
    """Passes, tensors or a model disagree about sizes or channel counts."""


class ModelMetadataError(PhotorealError):
    """An ONNX file without our metadata, or with metadata that does not match this schema."""


class CorruptFileError(PhotorealError):
    """A file that exists but cannot be read (truncated EXR, broken ONNX, ...)."""
