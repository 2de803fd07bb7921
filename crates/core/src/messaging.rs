//! Messaging: which internal topics a function may publish to (`publish_topics`), for guests that send
//! messages through `wasi:messaging` — each message becomes an event on that topic of the function's
//! namespace, delivered to every function the topic triggers. Default: none.
//!
//! An entry is a topic name ([`crate::trigger::check_topic`]) or `*` (any topic of the namespace).

/// `*`: any topic of the function's namespace.
pub const ANY_TOPIC: &str = "*";

/// Checks a `publish_topics` grant; the message names the entry and what to write.
pub fn check_grant(topics: &[String]) -> Result<(), String> {
    for t in topics {
        if t != ANY_TOPIC {
            crate::trigger::check_topic(t)
                .map_err(|e| format!("publish_topics: {e} (or write \"*\" for any topic)"))?;
        }
    }
    Ok(())
}

/// Whether `grant` lets a function publish to `topic`.
pub fn allows(grant: &[String], topic: &str) -> bool {
    grant.iter().any(|t| t == ANY_TOPIC || t == topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants() {
        let g = vec!["orders".to_string(), "audit/log".to_string()];
        assert!(check_grant(&g).is_ok());
        assert!(allows(&g, "orders") && allows(&g, "audit/log"));
        assert!(!allows(&g, "order") && !allows(&g, "orders2") && !allows(&[], "orders"));
        assert!(allows(&["*".to_string()], "anything"));
        let e = check_grant(&["a b".to_string()]).unwrap_err();
        assert!(
            e.starts_with("publish_topics: topic \"a b\" is invalid") && e.ends_with("(or write \"*\" for any topic)"),
            "{e}"
        );
    }
}
