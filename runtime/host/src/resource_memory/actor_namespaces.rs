//! Which long-term namespaces of a memory resource belong to one actor.
//!
//! A namespace belongs to an actor when it is one of the resource's strategy
//! templates resolved for that actor (`{memoryStrategyId}` for the strategy,
//! `{actorId}` for the actor, `{sessionId}` for any one session id). Agents
//! may ask for a namespace at or below an actor root — a template cut right
//! after its `{actorId}` — and see only records whose namespace is exactly
//! one of their resolved templates. The record check is what makes this
//! sound: actor ids may contain `/`, so actor `alice/x`'s namespace lies
//! below actor `alice`'s root.
//!
//! A record of one of the resource's strategies counts only in that
//! strategy's templates. A record of no known strategy (the batch API's
//! `manual`) could sit in any template, so its namespace must also be
//! unambiguous: read against every template of the resource, it may spell
//! no other actor (and no template without one). With `/users/{actorId}`
//! and `/users/{actorId}/{sessionId}`, `/users/bob/s1` is actor `bob/s1`'s
//! or bob's session `s1`: neither of them sees such a record.

use corral_memory::control::MemoryStrategy;

use crate::memory::{MemoryScope, resolve_namespace};

const STRATEGY: &str = "{memoryStrategyId}";
const ACTOR: &str = "{actorId}";
const SESSION: &str = "{sessionId}";
/// Longest namespace AgentCore accepts.
const MAX_NAMESPACE_CHARS: usize = 1024;
/// Characters of a refused namespace quoted back in the error.
const EXCERPT_CHARS: usize = 128;
/// Actor roots listed in an error, at most.
const LISTED_ROOTS: usize = 4;

/// Why an agent may not read a namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceDenied {
    /// The namespace has a form no actor namespace has.
    #[error("namespace {namespace:?} is refused: {reason}")]
    Malformed {
        /// The namespace as requested (truncated).
        namespace: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A placeholder other than `{actorId}` and `{sessionId}` is left.
    #[error(
        "namespace {namespace:?} is refused: only {{actorId}} and {{sessionId}} are substituted"
    )]
    Unresolved {
        /// The namespace after substitution (truncated).
        namespace: String,
    },
    /// No strategy of the memory resource has a per-actor namespace.
    #[error("namespace {namespace:?} is refused: this memory has no per-actor namespaces")]
    NoActorNamespaces {
        /// The namespace after substitution (truncated).
        namespace: String,
    },
    /// The namespace is not at or below one of this actor's roots.
    #[error("namespace {namespace:?} does not belong to this actor; readable: {readable}")]
    Foreign {
        /// The namespace after substitution (truncated).
        namespace: String,
        /// The actor's roots, comma-separated.
        readable: String,
    },
}

/// Part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text (including the substituted strategy id and, once
    /// resolved for an actor, actor id).
    Text(String),
    /// Any actor id (non-empty, may contain `/`); only in a [`Shape`].
    Actor,
    /// One session id.
    Session,
}

/// A template with its strategy id substituted and `{actorId}` and
/// `{sessionId}` left open: every namespace it can spell.
type Shape = Vec<Piece>;

/// One strategy's template resolved for the actor.
#[derive(Debug, Clone)]
struct Template {
    strategy_id: String,
    /// The whole namespace.
    pattern: Vec<Piece>,
    /// The namespace up to and including the first `{actorId}`.
    root: Vec<Piece>,
}

/// The namespaces of one memory resource that belong to the scope's actor.
#[derive(Debug)]
pub struct ActorNamespaces<'a> {
    scope: &'a MemoryScope,
    templates: Vec<Template>,
    /// Every template of the resource, readable or not.
    shapes: Vec<Shape>,
    /// Every strategy of the resource, readable or not.
    strategy_ids: Vec<String>,
}

impl<'a> ActorNamespaces<'a> {
    /// The namespaces `strategies` give the actor of `scope`.
    pub fn new(strategies: &[MemoryStrategy], scope: &'a MemoryScope) -> Self {
        let mut templates = Vec::new();
        let mut shapes = Vec::new();
        for strategy in strategies {
            for template in &strategy.namespace_templates {
                let shape = shape(template, &strategy.strategy_id);
                templates.extend(resolve(&shape, &strategy.strategy_id, &scope.actor_id));
                shapes.push(shape);
            }
        }
        ActorNamespaces {
            scope,
            templates,
            shapes,
            strategy_ids: strategies.iter().map(|s| s.strategy_id.clone()).collect(),
        }
    }

    /// Resolves a namespace as the agent wrote it and checks that it lies at
    /// or below one of the actor's roots; returns the resolved namespace.
    pub fn resolve_request(&self, requested: &str) -> Result<String, NamespaceDenied> {
        if let Some(reason) = malformed(requested) {
            return Err(NamespaceDenied::Malformed {
                namespace: excerpt(requested),
                reason,
            });
        }
        let resolved = resolve_namespace(requested, self.scope);
        if resolved.contains(['{', '}']) {
            return Err(NamespaceDenied::Unresolved {
                namespace: excerpt(&resolved),
            });
        }
        if self.templates.is_empty() {
            return Err(NamespaceDenied::NoActorNamespaces {
                namespace: excerpt(&resolved),
            });
        }
        let within = |root: &[Piece]| {
            match_prefix(root, &resolved)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if self.templates.iter().any(|t| within(&t.root)) {
            return Ok(resolved);
        }
        Err(NamespaceDenied::Foreign {
            namespace: excerpt(&resolved),
            readable: self.listed_roots(),
        })
    }

    /// Whether a record belongs to the actor: it has namespaces and
    /// [`owns`](Self::owns) each of them.
    pub fn owns_record(&self, strategy_id: &str, namespaces: &[String]) -> bool {
        !namespaces.is_empty() && namespaces.iter().all(|n| self.owns(strategy_id, n))
    }

    /// Whether a record of `strategy_id` in `namespace` belongs to the actor.
    /// Of a strategy of this resource: when `namespace` is one of that
    /// strategy's templates resolved for the actor. Of any other (records
    /// written through the batch API): when it is one of the actor's resolved
    /// templates and no template of the resource reads it as another actor's
    /// or as no actor's.
    pub fn owns(&self, strategy_id: &str, namespace: &str) -> bool {
        let known = self.strategy_ids.iter().any(|s| s == strategy_id);
        let resolved = self.templates.iter().any(|t| {
            (!known || t.strategy_id == strategy_id)
                && match_prefix(&t.pattern, namespace) == Some("")
        });
        resolved
            && (known
                || !self.shapes.iter().any(|shape| {
                    spells_actor(shape, namespace, &mut |actor| {
                        actor != Some(self.scope.actor_id.as_str())
                    })
                }))
    }

    /// The actor's roots for an error message.
    fn listed_roots(&self) -> String {
        let mut roots: Vec<String> = self.templates.iter().map(|t| display(&t.root)).collect();
        roots.dedup();
        let more = roots.len().saturating_sub(LISTED_ROOTS);
        roots.truncate(LISTED_ROOTS);
        let mut listed = roots.join(", ");
        if more > 0 {
            listed.push_str(&format!(" and {more} more"));
        }
        listed
    }
}

/// Reads a template of strategy `strategy_id`: the strategy id substituted,
/// the actor and session ids left open.
fn shape(template: &str, strategy_id: &str) -> Shape {
    let mut shape = Vec::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix(STRATEGY) {
            push_text(&mut shape, strategy_id);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(ACTOR) {
            shape.push(Piece::Actor);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(SESSION) {
            shape.push(Piece::Session);
            rest = after;
        } else {
            push_text(&mut shape, &rest[..c.len_utf8()]);
            rest = &rest[c.len_utf8()..];
        }
    }
    shape
}

/// Resolves a template for one actor; `None` when the template belongs to
/// no actor (no `{actorId}`) or a session id in it would not be a whole
/// `/`-delimited segment (then ids could run into each other, and one
/// actor's namespace could spell another's).
fn resolve(shape: &[Piece], strategy_id: &str, actor_id: &str) -> Option<Template> {
    let mut pattern = Vec::new();
    let mut root = None;
    for (i, piece) in shape.iter().enumerate() {
        match piece {
            Piece::Text(text) => push_text(&mut pattern, text),
            Piece::Actor => {
                push_text(&mut pattern, actor_id);
                if root.is_none() {
                    root = Some(pattern.clone());
                }
            }
            Piece::Session => {
                let before = i.checked_sub(1).map(|b| &shape[b]);
                let after = shape.get(i + 1);
                let bounded = match before {
                    None => true,
                    Some(Piece::Text(text)) => text.ends_with('/'),
                    Some(_) => false,
                } && match after {
                    None => true,
                    Some(Piece::Text(text)) => text.starts_with('/'),
                    Some(_) => false,
                };
                if !bounded {
                    return None;
                }
                pattern.push(Piece::Session);
            }
        }
    }
    Some(Template {
        strategy_id: strategy_id.to_string(),
        pattern,
        root: root?,
    })
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    match pieces.last_mut() {
        Some(Piece::Text(last)) => last.push_str(text),
        _ => pieces.push(Piece::Text(text.to_string())),
    }
}

/// Matches a resolved template against the start of `namespace` and
/// returns the rest; every session slot must hold the same valid session id
/// (a whole segment: the resolved templates' are bounded by `/`).
fn match_prefix<'n>(pieces: &[Piece], mut namespace: &'n str) -> Option<&'n str> {
    let mut session: Option<&str> = None;
    for piece in pieces {
        match piece {
            Piece::Text(text) => namespace = namespace.strip_prefix(text.as_str())?,
            Piece::Actor => return None,
            Piece::Session => {
                let (id, rest) = namespace.split_at(namespace.find('/').unwrap_or(namespace.len()));
                if !is_session_id(id) || session.is_some_and(|s| s != id) {
                    return None;
                }
                session = Some(id);
                namespace = rest;
            }
        }
    }
    Some(namespace)
}

/// Whether `namespace` is spelled by `shape` with some actor id for which
/// `wanted` holds; `wanted` gets `None` when the shape has no `{actorId}`.
/// Every reading is tried: an actor id is any non-empty text (ids may
/// contain `/`), a session id any valid one, and repeated slots must repeat
/// the same id. Only the first actor slot (over the namespace's length) and
/// the first session slot (over at most 100 ids) branch, and literal text
/// after a slot prunes most branches at once; namespaces are at most 1,024
/// characters.
fn spells_actor(
    shape: &[Piece],
    namespace: &str,
    wanted: &mut dyn FnMut(Option<&str>) -> bool,
) -> bool {
    fn read<'n>(
        shape: &[Piece],
        rest: &'n str,
        actor: Option<&'n str>,
        session: Option<&'n str>,
        wanted: &mut dyn FnMut(Option<&str>) -> bool,
    ) -> bool {
        let Some((piece, shape)) = shape.split_first() else {
            return rest.is_empty() && wanted(actor);
        };
        let fixed = match (piece, actor, session) {
            (Piece::Text(text), ..) => Some(text.as_str()),
            (Piece::Actor, Some(id), _) | (Piece::Session, _, Some(id)) => Some(id),
            _ => None,
        };
        if let Some(text) = fixed {
            return rest
                .strip_prefix(text)
                .is_some_and(|rest| read(shape, rest, actor, session, wanted));
        }
        // An open slot: try each id it could hold.
        let mut ends = rest.char_indices().map(|(i, c)| i + c.len_utf8());
        if matches!(piece, Piece::Actor) {
            ends.any(|end| {
                let (id, rest) = rest.split_at(end);
                read(shape, rest, Some(id), session, wanted)
            })
        } else {
            ends.take_while(|&end| is_session_id(&rest[..end]))
                .any(|end| {
                    let (id, rest) = rest.split_at(end);
                    read(shape, rest, actor, Some(id), wanted)
                })
        }
    }
    read(shape, namespace, None, None, wanted)
}

/// AgentCore's session id form: `[a-zA-Z0-9][a-zA-Z0-9-_]*`, 1 to 100 characters.
fn is_session_id(id: &str) -> bool {
    id.len() <= 100
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What is wrong with a namespace as the agent wrote it, if anything. Only
/// the agent's text is checked: the ids substituted into it come from the
/// host, and a legitimate actor id may contain `//`.
fn malformed(namespace: &str) -> Option<&'static str> {
    if namespace.is_empty() {
        Some("it is empty")
    } else if namespace.chars().count() > MAX_NAMESPACE_CHARS {
        Some("it is longer than 1024 characters")
    } else if namespace.contains("..") {
        Some("it contains '..'")
    } else if namespace.contains("//") {
        Some("it contains '//'")
    } else if namespace.contains('%') {
        Some("it contains '%' (namespaces are not percent-encoded)")
    } else if namespace.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    }
}

fn excerpt(namespace: &str) -> String {
    namespace.chars().take(EXCERPT_CHARS).collect()
}

fn display(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(text) => text.as_str(),
            Piece::Actor => ACTOR,
            Piece::Session => SESSION,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(id: &str, template: &str) -> MemoryStrategy {
        MemoryStrategy {
            strategy_id: id.into(),
            name: id.into(),
            description: None,
            strategy_type: corral_memory::control::StrategyType::Semantic,
            base_type: None,
            namespaces: vec![template.into()],
            namespace_templates: vec![template.into()],
            append_to_prompt: None,
            model_id: None,
            status: "ACTIVE".into(),
        }
    }

    fn scope(actor: &str) -> MemoryScope {
        MemoryScope {
            agent: "agent".into(),
            session_id: "sess1".into(),
            actor_id: actor.into(),
            memory_id: None,
        }
    }

    /// A semantic strategy `s1`, a summary strategy `s2` and one without actors.
    fn strategies() -> Vec<MemoryStrategy> {
        vec![
            strategy("s1", "/strategies/{memoryStrategyId}/actors/{actorId}"),
            strategy(
                "s2",
                "/strategies/{memoryStrategyId}/actors/{actorId}/sessions/{sessionId}",
            ),
            strategy("shared", "/shared/{memoryStrategyId}"),
        ]
    }

    fn request(actor: &str, namespace: &str) -> Result<String, NamespaceDenied> {
        let scope = scope(actor);
        ActorNamespaces::new(&strategies(), &scope).resolve_request(namespace)
    }

    fn owns(actor: &str, strategy: &str, namespace: &str) -> bool {
        let scope = scope(actor);
        ActorNamespaces::new(&strategies(), &scope).owns_record(strategy, &[namespace.into()])
    }

    #[test]
    fn own_roots_and_below_are_readable() {
        for ns in [
            "/strategies/s1/actors/alice",
            "/strategies/s1/actors/alice/",
            "/strategies/s1/actors/{actorId}",
            "/strategies/s2/actors/alice",
            "/strategies/s2/actors/{actorId}/sessions/{sessionId}",
            "/strategies/s2/actors/alice/sessions/other-session",
            "/strategies/s1/actors/alice/anything/below",
        ] {
            assert!(request("alice", ns).is_ok(), "{ns}");
        }
        assert_eq!(
            request(
                "alice",
                "/strategies/s2/actors/{actorId}/sessions/{sessionId}"
            )
            .unwrap(),
            "/strategies/s2/actors/alice/sessions/sess1"
        );
    }

    #[test]
    fn other_namespaces_are_denied() {
        for ns in [
            "/",
            "/strategies",
            "/strategies/",
            "/strategies/s1",
            "/strategies/s1/actors",
            "/strategies/s1/actors/",
            "/strategies/s1/actors/ali",
            "/strategies/s1/actors/alicex",
            "/strategies/s1/actors/victim",
            "/strategies/s3/actors/alice",
            "/strategies/*/actors/alice",
            "/shared/shared",
            "strategies/s1/actors/alice",
            "/strategies/{memoryStrategyId}/actors/{actorId}",
        ] {
            assert!(request("alice", ns).is_err(), "{ns}");
        }
    }

    #[test]
    fn traversal_and_encodings_are_malformed() {
        for ns in [
            "",
            "/strategies/s1/actors/alice/../victim",
            "/strategies/s1/actors/alice/..",
            "/strategies/s1/actors/alice//x",
            "//strategies/s1/actors/alice",
            "/strategies/s1/actors/%61lice",
            "/strategies%2Fs1%2Factors%2Fvictim",
            "/strategies/s1/actors/alice\n",
            "/strategies/s1/actors/alice\0",
        ] {
            let denied = request("alice", ns).unwrap_err();
            assert!(
                matches!(denied, NamespaceDenied::Malformed { .. }),
                "{ns:?}: {denied}"
            );
        }
        let long = format!("/strategies/s1/actors/alice/{}", "x".repeat(2000));
        assert!(request("alice", &long).is_err());
    }

    #[test]
    fn denial_names_the_namespace_and_the_readable_roots() {
        let message = request("alice", "/strategies").unwrap_err().to_string();
        assert!(message.contains("\"/strategies\""), "{message}");
        assert!(message.contains("/strategies/s1/actors/alice"), "{message}");
        assert!(!message.contains("shared"), "{message}");
    }

    #[test]
    fn records_must_sit_exactly_in_an_actor_namespace() {
        assert!(owns("alice", "s1", "/strategies/s1/actors/alice"));
        assert!(owns(
            "alice",
            "s2",
            "/strategies/s2/actors/alice/sessions/abc-1"
        ));
        // Neighbouring actors share a prefix, not a namespace.
        assert!(!owns("alice", "s1", "/strategies/s1/actors/alicex"));
        assert!(!owns("alice", "s1", "/strategies/s1/actors/alice/x"));
        assert!(owns("alice/x", "s1", "/strategies/s1/actors/alice/x"));
        assert!(!owns("alice/x", "s1", "/strategies/s1/actors/alice"));
        // Actor `alice/sessions/a` is not one of alice's sessions.
        assert!(!owns(
            "alice",
            "s2",
            "/strategies/s2/actors/alice/sessions/a/sessions/b"
        ));
        assert!(!owns(
            "alice",
            "s2",
            "/strategies/s2/actors/alice/sessions/"
        ));
        assert!(!owns("alice", "s1", "/strategies/s1/actors/victim"));
        assert!(!owns("alice", "shared", "/shared/shared"));
        // A known strategy's record counts only in that strategy's namespace;
        // records without one (batch API) in any of the actor's.
        assert!(!owns("alice", "s2", "/strategies/s1/actors/alice"));
        assert!(owns("alice", "manual", "/strategies/s1/actors/alice"));
        let scope = scope("alice");
        let owned = ActorNamespaces::new(&strategies(), &scope);
        assert!(!owned.owns_record("s1", &[]));
        assert!(!owned.owns_record(
            "manual",
            &[
                "/strategies/s1/actors/alice".into(),
                "/strategies/s1/actors/victim".into()
            ]
        ));
    }

    #[test]
    fn shared_templates_cannot_mix_actor_and_session_namespaces() {
        // Without strategy ids in the templates, actor `bob/s1`'s facts sit
        // where bob's session `s1` summaries would; strategies keep them apart.
        let strategies = vec![
            strategy("facts", "/users/{actorId}"),
            strategy("summaries", "/users/{actorId}/{sessionId}"),
        ];
        let scope = scope("bob");
        let owned = ActorNamespaces::new(&strategies, &scope);
        assert!(owned.owns_record("summaries", &["/users/bob/s1".into()]));
        assert!(!owned.owns_record("facts", &["/users/bob/s1".into()]));
    }

    #[test]
    fn records_without_a_strategy_need_an_unambiguous_namespace() {
        // `/users/bob/s1` is actor `bob/s1`'s or bob's session `s1`.
        let strategies = vec![
            strategy("facts", "/users/{actorId}"),
            strategy("summaries", "/users/{actorId}/{sessionId}"),
        ];
        let owns = |actor: &str, strategy: &str, namespace: &str| {
            let scope = scope(actor);
            ActorNamespaces::new(&strategies, &scope).owns_record(strategy, &[namespace.into()])
        };
        assert!(!owns("bob", "manual", "/users/bob/s1"));
        assert!(!owns("bob/s1", "manual", "/users/bob/s1"));
        // One more segment: actor `bob/s1/s2`'s, or bob/s1's session `s2`.
        assert!(!owns("bob/s1", "manual", "/users/bob/s1/s2"));
        assert!(!owns("bob", "manual", "/users/bob/s1/s2"));
        // No other reading: the actor's own.
        assert!(owns("bob", "manual", "/users/bob"));
        assert!(!owns("alice", "manual", "/users/bob"));
        // A session id cannot hold `/` or `:`, so only actors can.
        assert!(owns("bob/s1:x", "manual", "/users/bob/s1:x"));
        // Records of a known strategy are read by that strategy's template.
        assert!(owns("bob", "summaries", "/users/bob/s1"));
        assert!(owns("bob/s1", "facts", "/users/bob/s1"));
        assert!(!owns("bob", "facts", "/users/bob/s1"));
        assert!(!owns("bob/s1", "summaries", "/users/bob/s1"));
    }

    #[test]
    fn every_template_can_make_a_namespace_ambiguous() {
        let hidden = |templates: &[(&str, &str)], actor: &str, namespace: &str| {
            let strategies: Vec<_> = templates.iter().map(|(i, t)| strategy(i, t)).collect();
            let scope = scope(actor);
            !ActorNamespaces::new(&strategies, &scope).owns_record("manual", &[namespace.into()])
        };
        // Literal text after the actor: `alice/notes` or alice's notes.
        let notes = [("a", "/t/{actorId}"), ("b", "/t/{actorId}/notes")];
        assert!(hidden(&notes, "alice", "/t/alice/notes"));
        assert!(hidden(&notes, "alice/notes", "/t/alice/notes"));
        assert!(!hidden(&notes, "alice", "/t/alice"));
        // A template without actors: shared, or actor `admin`'s.
        let shared = [("a", "/users/{actorId}"), ("shared", "/users/admin")];
        assert!(hidden(&shared, "admin", "/users/admin"));
        assert!(!hidden(&shared, "bob", "/users/bob"));
        // Templates no actor may read still make a namespace ambiguous.
        let unbounded = [("a", "/a/{actorId}"), ("b", "/a/{actorId}-{sessionId}")];
        assert!(hidden(&unbounded, "bob-s1", "/a/bob-s1"));
        assert!(!hidden(&unbounded, "bob", "/a/bob"));
        // Repeated slots hold one id: `/x/p/y/q` is no reading of actor `p`.
        let twice = [
            ("a", "/x/{actorId}"),
            ("b", "/x/{actorId}/y/{actorId}"),
            ("c", "/x/{actorId}/{sessionId}/z/{sessionId}"),
        ];
        assert!(!hidden(&twice, "p/y/q", "/x/p/y/q"));
        assert!(hidden(&twice, "p/y/p", "/x/p/y/p"));
        assert!(!hidden(&twice, "p/s/z/t", "/x/p/s/z/t"));
        assert!(hidden(&twice, "p/s/z/s", "/x/p/s/z/s"));
        // With strategy ids in the templates (AgentCore's defaults), nothing
        // is ambiguous: sub-actors read their own manual records.
        let defaults = strategies();
        let scope = scope("alice/x");
        let owned = ActorNamespaces::new(&defaults, &scope);
        assert!(owned.owns_record("manual", &["/strategies/s1/actors/alice/x".into()]));
        assert!(owned.owns_record(
            "manual",
            &["/strategies/s2/actors/alice/x/sessions/a".into()]
        ));
    }

    #[test]
    fn reading_a_long_namespace_against_open_slots_is_quick() {
        let strategies = vec![
            strategy("a", "/{sessionId}/{actorId}/{sessionId}/{actorId}"),
            strategy("b", "/{actorId}/{sessionId}"),
            strategy("c", "/{actorId}"),
        ];
        let actor = format!("{}a", "a/".repeat(254));
        let namespace = format!("/{actor}");
        let scope = scope(&actor);
        let owned = ActorNamespaces::new(&strategies, &scope);
        let started = std::time::Instant::now();
        for _ in 0..10 {
            assert!(!owned.owns("manual", &namespace));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn ambiguous_session_templates_are_not_readable() {
        // `alice-x` + `y` and `alice` + `x-y` spell the same namespace.
        for template in [
            "/a/{actorId}-{sessionId}",
            "/a/{actorId}/s-{sessionId}",
            "/a/{sessionId}{actorId}",
            "/a/{actorId}/{sessionId}x",
        ] {
            let strategies = vec![strategy("s", template)];
            let scope = scope("alice");
            let owned = ActorNamespaces::new(&strategies, &scope);
            assert!(owned.resolve_request("/a/alice").is_err(), "{template}");
            assert!(
                !owned.owns_record("s", &["/a/alice-x".into()]),
                "{template}"
            );
        }
    }

    #[test]
    fn session_before_actor_matches_any_session_segment() {
        let strategies = vec![strategy("s", "/sessions/{sessionId}/actors/{actorId}")];
        let scope = scope("alice");
        let owned = ActorNamespaces::new(&strategies, &scope);
        assert!(
            owned
                .resolve_request("/sessions/{sessionId}/actors/alice")
                .is_ok()
        );
        assert!(
            owned
                .resolve_request("/sessions/other/actors/alice")
                .is_ok()
        );
        assert!(owned.resolve_request("/sessions/other/actors/bob").is_err());
        assert!(owned.resolve_request("/sessions/a/b/actors/alice").is_err());
        assert!(owned.owns_record("s", &["/sessions/x1/actors/alice".into()]));
        assert!(!owned.owns_record("s", &["/sessions/x1/actors/alice/x".into()]));
        assert!(!owned.owns_record("s", &["/sessions/x1/y/actors/alice".into()]));
    }

    #[test]
    fn memory_without_actor_templates_denies_everything() {
        let strategies = vec![strategy("shared", "/shared")];
        let scope = scope("alice");
        let owned = ActorNamespaces::new(&strategies, &scope);
        assert!(matches!(
            owned.resolve_request("/shared"),
            Err(NamespaceDenied::NoActorNamespaces { .. })
        ));
        let none = ActorNamespaces::new(&[], &scope);
        assert!(none.resolve_request("/").is_err());
        assert!(!none.owns_record("manual", &["/".into()]));
    }
}
