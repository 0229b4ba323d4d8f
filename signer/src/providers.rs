//! Opening the key providers a configuration names.
//!
//! Guards: software keys and the mock HSM are opened only when the config says
//! `allow_soft_keys = true` (checked again here, not only at parse time).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::backend::{BackendError, KeyProvider};
use crate::config::{BackendConfig, Config};

/// Opens one provider.
pub fn open(
    name: &str,
    backend: &BackendConfig,
    allow_soft_keys: bool,
) -> Result<Arc<dyn KeyProvider>, BackendError> {
    let soft_refused = || {
        BackendError::Failed(format!(
            "backend {name:?} is for development and tests only; set allow_soft_keys = true to use it"
        ))
    };
    Ok(match backend {
        #[cfg(feature = "pkcs11")]
        BackendConfig::Pkcs11(c) => Arc::new(crate::backend::pkcs11::Pkcs11Provider::open(c)?),
        #[cfg(feature = "yubihsm")]
        BackendConfig::Yubihsm(c) => {
            #[cfg(feature = "yubihsm-mock")]
            if matches!(
                c.connector,
                crate::backend::yubihsm::ConnectorConfig::Mock { .. }
            ) && !allow_soft_keys
            {
                return Err(soft_refused());
            }
            Arc::new(crate::backend::yubihsm::YubiHsmProvider::connect(c)?)
        }
        BackendConfig::Soft(c) => {
            if !allow_soft_keys {
                return Err(soft_refused());
            }
            Arc::new(crate::backend::soft_file::SoftDirProvider::new(c.clone())?)
        }
    })
}

/// Opens every provider in the config, by name.
pub fn open_all(config: &Config) -> Result<BTreeMap<String, Arc<dyn KeyProvider>>, String> {
    config
        .backends
        .iter()
        .map(|(name, b)| {
            open(name, b, config.allow_soft_keys)
                .map(|p| (name.clone(), p))
                .map_err(|e| format!("backend {name:?}: {e}"))
        })
        .collect()
}
