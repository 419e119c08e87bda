"""Exceptions raised by the field-encryption library."""

from __future__ import annotations


class CryptoError(Exception):
    """Base class for every error raised by avhopp.crypto."""


class DecryptionError(CryptoError):
    """A field could not be decrypted; names the field, never the data or the key."""

    def __init__(self, table: str, column: str, row_id: str) -> None:
        super().__init__(f"cannot decrypt {table}.{column} of row {row_id}")
        self.table = table
        self.column = column
        self.row_id = row_id


class KeyNotFound(CryptoError):
    """A key id is not known to the key ring or key store."""


class KeyDestroyed(CryptoError):
    """A key existed but has been destroyed (erasure or a retired KEK epoch)."""


class KeyUnwrapError(CryptoError):
    """A wrapped key failed authentication: wrong KEK, wrong AAD or a damaged blob."""


class KeyFileError(CryptoError):
    """The key file is missing, malformed, or has unsafe permissions."""
