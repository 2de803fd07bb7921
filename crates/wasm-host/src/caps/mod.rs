//! The capability seam (DESIGN §2a, Spin's "factors"). A capability is a host service a guest reaches
//! through WIT interfaces: it names the interfaces it implements, is linked into the engine's linker once,
//! validates its per-function grant at deploy (the grant is part of the revision and its id), and builds
//! the state each instance gets. Adding one is a file here, a field in [`crate::state`]'s instance state,
//! and an entry in [`CAPABILITIES`].
//!
//! Capabilities today: outbound HTTP ([`outbound`]), outbound databases and brokers ([`outbound_db`], over
//! the same address check, [`net`]), key-value ([`keyvalue`]), SQL ([`sqlite`]), blobs ([`blobstore`]),
//! messaging to the node's topics ([`messaging`]) and configuration ([`config`]). The WASI base (clocks,
//! random, io, cli streams and env, sockets — every address denied —, filesystem — the function's files
//! read-only, or one empty root where every open is denied ([`filesystem`])) is linked for every instance.

pub mod blobstore;
pub mod config;
pub(crate) mod filesystem;
pub mod keyvalue;
pub mod messaging;
pub(crate) mod net;
pub mod outbound;
pub mod outbound_db;
pub mod sqlite;

use wisp_core::FunctionSpec;

/// What a function's instances may open of a labelled service (key-value stores, SQL databases): label →
/// storage scope (built once per revision). A label outside it is refused.
#[derive(Debug, Default, Clone)]
pub struct Grant {
    scopes: Vec<(String, String)>,
}

impl Grant {
    /// The grant of `labels` for a function of `namespace`/`app`/`function`, each scoped by
    /// [`wisp_core::kv::scope`].
    pub fn new(namespace: &str, app: Option<&str>, function: &str, labels: &[String]) -> Grant {
        Grant {
            scopes: labels.iter().map(|l| (l.clone(), wisp_core::kv::scope(namespace, app, function, l))).collect(),
        }
    }

    /// The scope of `label`, if granted.
    pub(crate) fn scope(&self, label: &str) -> Option<&str> {
        self.scopes.iter().find(|(l, _)| l == label).map(|(_, p)| p.as_str())
    }

    /// The labels granted, in grant order.
    pub(crate) fn labels(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(|(l, _)| l.as_str())
    }
}

/// What deploy-time validation knows about a capability.
pub struct CapabilityInfo {
    /// Its name in `wisp.toml` and the function spec (the grant's key).
    pub grant_key: &'static str,
    /// The WIT interfaces (with version) whose import needs the grant.
    pub interfaces: &'static [&'static str],
    /// Whether importing one of its interfaces needs a grant at deploy. False for outbound HTTP: every
    /// `wasi:http/proxy` component imports `outgoing-handler` whether it uses it or not, so an ungranted
    /// import is allowed and each request is denied (and recorded) at run time instead.
    pub import_needs_grant: bool,
    /// Whether `spec` grants it.
    pub granted: fn(&FunctionSpec) -> bool,
    /// An example grant for the error message.
    pub example: &'static str,
}

/// Every capability of this node, in link order.
pub const CAPABILITIES: &[CapabilityInfo] = &[
    CapabilityInfo {
        grant_key: "allowed_outbound_hosts",
        interfaces: &[outbound::INTERFACE],
        import_needs_grant: false,
        granted: |spec| !spec.allowed_outbound_hosts.is_empty(),
        example: "[\"https://api.example.com\"]",
    },
    CapabilityInfo {
        grant_key: "allowed_outbound_hosts",
        interfaces: outbound_db::INTERFACES,
        // Spin SDKs import these whether the app uses them or not: an ungranted `open` is refused at run time.
        import_needs_grant: false,
        granted: |spec| !spec.allowed_outbound_hosts.is_empty(),
        example: "[\"postgres://db.internal:5432\"]",
    },
    CapabilityInfo {
        grant_key: "key_value_stores",
        interfaces: keyvalue::INTERFACES,
        import_needs_grant: true,
        granted: |spec| !spec.key_value_stores.is_empty(),
        example: "[\"default\"]",
    },
    CapabilityInfo {
        grant_key: "blob_containers",
        interfaces: blobstore::INTERFACES,
        import_needs_grant: true,
        granted: |spec| !spec.blob_containers.is_empty(),
        example: "[\"default\"]",
    },
    CapabilityInfo {
        grant_key: "publish_topics",
        interfaces: messaging::INTERFACES,
        // A messaging handler imports the producer too (to reply, to fan out) whether its deployment
        // publishes or not: a send outside the grant is refused at run time instead.
        import_needs_grant: false,
        granted: |spec| !spec.publish_topics.is_empty(),
        example: "[\"orders\"]",
    },
];

/// Checks a component's imports against what `spec` grants: an import of a capability that needs a grant
/// and has none is an error naming the grant to add.
pub fn check_grants(imports: &[String], spec: &FunctionSpec, caps: &[CapabilityInfo]) -> Result<(), String> {
    for import in imports {
        for cap in caps {
            if cap.import_needs_grant && cap.interfaces.contains(&import.as_str()) && !(cap.granted)(spec) {
                return Err(format!(
                    "the component imports `{import}`; add `{} = {}` to the function to grant it",
                    cap.grant_key, cap.example
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ungranted_import_names_the_grant_to_add() {
        let caps = [CapabilityInfo {
            grant_key: "key_value",
            interfaces: &["wasi:keyvalue/store@0.2.0-draft"],
            import_needs_grant: true,
            granted: |spec| spec.env.contains_key("KV"),
            example: "[\"default\"]",
        }];
        let mut spec: FunctionSpec = serde_json::from_str(&format!(r#"{{"artifact": "{}"}}"#, "0".repeat(64))).unwrap();
        let imports = vec!["wasi:keyvalue/store@0.2.0-draft".to_string(), "wasi:cli/stdout@0.2.12".to_string()];
        assert_eq!(
            check_grants(&imports, &spec, &caps).unwrap_err(),
            "the component imports `wasi:keyvalue/store@0.2.0-draft`; add `key_value = [\"default\"]` to the function to grant it"
        );
        spec.env.insert("KV".into(), "1".into());
        assert!(check_grants(&imports, &spec, &caps).is_ok());
        // Outbound HTTP is imported by every proxy-world component: allowed without a grant.
        assert!(check_grants(&["wasi:http/outgoing-handler@0.2.12".into()], &spec, CAPABILITIES).is_ok());
    }
}
