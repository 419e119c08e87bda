"""Field encryption: key rings, data keys, COSE envelopes, blind indexes (imports no app code)."""

from avhopp.crypto.blindindex import blind_index, derive_index_key, truncation_bits
from avhopp.crypto.datakeys import DataKeyCache, new_data_key, unwrap_data_key, wrap_data_key
from avhopp.crypto.envelope import (
    FieldContext,
    FieldValue,
    RowContext,
    cipher,
    clear_cipher_cache,
    open_,
    read_kid,
    seal,
)
from avhopp.crypto.errors import (
    CryptoError,
    DecryptionError,
    KeyDestroyed,
    KeyFileError,
    KeyNotFound,
    KeyUnwrapError,
)
from avhopp.crypto.keyring import (
    KeyProvider,
    LocalKeyRing,
    add_kek,
    encode_env_value,
    generate_key_file,
    keyring_from_env_value,
    load_key_file,
    retire_kek,
    write_key_file,
)

__all__ = [
    "CryptoError",
    "DataKeyCache",
    "DecryptionError",
    "FieldContext",
    "FieldValue",
    "KeyDestroyed",
    "KeyFileError",
    "KeyNotFound",
    "KeyProvider",
    "KeyUnwrapError",
    "LocalKeyRing",
    "RowContext",
    "add_kek",
    "blind_index",
    "cipher",
    "clear_cipher_cache",
    "derive_index_key",
    "encode_env_value",
    "generate_key_file",
    "keyring_from_env_value",
    "load_key_file",
    "new_data_key",
    "open_",
    "read_kid",
    "retire_kek",
    "seal",
    "truncation_bits",
    "unwrap_data_key",
    "wrap_data_key",
    "write_key_file",
]
