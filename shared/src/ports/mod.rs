//! Ports: the narrow traits the application needs from the outside world. Adapters in `crate::adapters`
//! implement them per backend; one contract suite (in `tests/`) runs against every adapter.

pub mod blob_store;
pub mod clock;
pub mod event_log;
pub mod key_store;
pub mod projection;
pub mod secret_box;
pub mod views;

pub use blob_store::{
    BlobError, BlobRead, BlobStore, ByteRange, ByteStream, StoredBlob, UploadId, UploadState, MAX_LIST_PAGE,
};
pub use clock::{Clock, SystemClock};
pub use event_log::{EventLog, LogError, StreamAppend, Version};
pub use key_store::{KeyStore, KeyStoreError, MemoryKeyStore};
pub use projection::{Checkpoints, EventSink, ProjectionError};
pub use secret_box::{NoSecretBox, SecretBox, SecretError};
pub use views::{ViewError, Views};
