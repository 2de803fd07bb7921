//! The configuration capability: a revision's configuration (its function's `config` table, templates
//! resolved at deploy, DESIGN §8), served as `wasi:config/store@0.2.0-rc.1` (by the `wasmtime-wasi-config`
//! crate), `wasi:config/store@0.2.0-draft-2024-09-27` (the copy Spin ships) and Spin's
//! `fermyon:spin/variables@2.0.0`. No grant: a function reads only its own configuration.

use std::collections::HashMap;
use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "package wisp:config; world config {
            import wasi:config/store@0.2.0-draft-2024-09-27;
            import fermyon:spin/variables@2.0.0;
        }",
        path: ["../../wit/config-0.2.0-draft-2024-09-27", "../../wit/spin-2.0.0"],
        imports: { default: trappable },
    });
}

use bindings::fermyon::spin::variables;
use bindings::wasi::config::store as draft;

/// The interfaces served, with version.
pub const INTERFACES: &[&str] =
    &["wasi:config/store@0.2.0-rc.1", "wasi:config/store@0.2.0-draft-2024-09-27", "fermyon:spin/variables@2.0.0"];

/// A revision's configuration (values are not shown in debug output).
#[derive(Default)]
pub struct ConfigVariables {
    rc1: wasmtime_wasi_config::WasiConfigVariables,
    map: HashMap<String, String>,
}

impl<'a> FromIterator<(&'a str, &'a str)> for ConfigVariables {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        let map: HashMap<String, String> = iter.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ConfigVariables { rc1: map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(), map }
    }
}

impl std::fmt::Debug for ConfigVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigVariables({} keys)", self.map.len())
    }
}

/// What the generated host traits are implemented on.
pub(crate) struct ConfigView<'a>(pub(crate) &'a ConfigVariables);

struct HasConfig;

impl HasData for HasConfig {
    type Data<'a> = ConfigView<'a>;
}

impl<'a> ConfigView<'a> {
    /// The view `wasmtime-wasi-config` serves `@0.2.0-rc.1` from.
    pub(crate) fn rc1(&self) -> wasmtime_wasi_config::WasiConfig<'a> {
        wasmtime_wasi_config::WasiConfig::new(&self.0.rc1)
    }
}

/// Links the three interfaces; `view` projects an instance's state onto the revision's configuration, `rc1`
/// onto the crate's view of it (both fn pointers, as the linker wants).
pub(crate) fn link<T: 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> ConfigView<'_>,
    rc1: fn(&mut T) -> wasmtime_wasi_config::WasiConfig<'_>,
) -> anyhow::Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, rc1)?;
    draft::add_to_linker::<T, HasConfig>(linker, view)?;
    variables::add_to_linker::<T, HasConfig>(linker, view)?;
    Ok(())
}

impl draft::Host for ConfigView<'_> {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, draft::Error>> {
        Ok(Ok(self.0.map.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, draft::Error>> {
        Ok(Ok(self.0.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }
}

impl variables::Host for ConfigView<'_> {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        // Spin's rule for variable names: lowercase ASCII letters, digits and '_', starting with a letter.
        let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Ok(Err(variables::Error::InvalidName(format!(
                "{name:?}: variable names are lowercase letters, digits and '_', starting with a letter"
            ))));
        }
        Ok(self.0.map.get(&name).cloned().ok_or_else(|| {
            variables::Error::Undefined(format!("no variable {name:?}: add it to the component's variables"))
        }))
    }
}
