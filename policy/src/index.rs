//! Policies indexed by the actions and principals their scopes name, so a
//! decision evaluates only the policies that can apply to it (Cedar itself
//! evaluates every policy in a set).
//!
//! A decision evaluates each candidate policy's condition with Cedar's own
//! evaluator, the condition built once when the index is. Cedar's
//! `Authorizer::is_authorized` rebuilds every policy's condition expression
//! per request and wraps the result in a partial response and diagnostics;
//! that was about half of a decision at 100 scoped policies. The decision
//! rule is the authorizer's (a satisfied forbid denies, else a satisfied
//! permit allows, else deny; a policy that errors is skipped), and a test
//! checks the two agree.

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, Authorizer, Entities, EntityUid, PartialResponse, PolicySet,
    PrincipalConstraint, Request,
};
use cedar_policy_core::ast;
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

use crate::schema::{CALL_TOOL_ACTION, MCP_ACTION};
use crate::source::PolicyDefinition;

/// One policy ready to evaluate.
#[derive(Debug)]
struct Compiled {
    id: String,
    effect: ast::Effect,
    /// The policy's scope and `when`/`unless` clauses as one expression.
    condition: ast::Expr,
    /// Slot values of a template-linked policy.
    slots: ast::SlotEnv,
}

/// The policies of one scope partition: compiled for decisions, and as a
/// Cedar set for partial evaluation ([`PolicyIndex::may_permit`]).
#[derive(Debug, Default)]
struct Partition {
    policies: Vec<Compiled>,
    set: PolicySet,
}

impl Partition {
    fn add(&mut self, policy: &cedar_policy::Policy) {
        let core: &ast::Policy = policy.as_ref();
        self.policies.push(Compiled {
            id: policy.id().to_string(),
            effect: core.effect(),
            condition: core.condition(),
            slots: core.env().clone(),
        });
        // Ids are unique within an engine, so adding cannot conflict.
        let _ = self.set.add(policy.clone());
    }

    /// Evaluates every policy against `evaluator`'s request into `outcome`.
    fn evaluate(&self, evaluator: &Evaluator<'_>, outcome: &mut Outcome) {
        for policy in &self.policies {
            let satisfied = match evaluator.interpret(&policy.condition, &policy.slots) {
                Ok(value) => match value.value_kind() {
                    ast::ValueKind::Lit(ast::Literal::Bool(satisfied)) => Ok(*satisfied),
                    // A condition is a chain of `&&`, which yields a boolean
                    // or an error; anything else is skipped as an error.
                    other => Err(format!("the condition is not a boolean: {other:?}")),
                },
                Err(error) => Err(error.to_string()),
            };
            match satisfied {
                Ok(true) => match policy.effect {
                    ast::Effect::Permit => outcome.permits.push(policy.id.clone()),
                    ast::Effect::Forbid => outcome.forbids.push(policy.id.clone()),
                },
                Ok(false) => {}
                // Worded as `cedar_policy`'s `PolicyEvaluationError`.
                Err(why) => outcome.errors.push(format!(
                    "error while evaluating policy `{}`: {why}",
                    policy.id
                )),
            }
        }
    }
}

#[derive(Debug, Default)]
struct Bucket {
    any_principal: Partition,
    by_principal: HashMap<EntityUid, Partition>,
}

impl Bucket {
    fn add(&mut self, definition: &PolicyDefinition) {
        let partition = match definition.policy.principal_constraint() {
            PrincipalConstraint::Eq(uid) => self.by_principal.entry(uid).or_default(),
            _ => &mut self.any_principal,
        };
        partition.add(&definition.policy);
    }

    fn partitions<'a>(&'a self, principal: &EntityUid, out: &mut Vec<&'a Partition>) {
        if !self.any_principal.policies.is_empty() {
            out.push(&self.any_principal);
        }
        if let Some(partition) = self.by_principal.get(principal) {
            out.push(partition);
        }
    }
}

/// Policies partitioned by scope.
#[derive(Debug, Default)]
pub struct PolicyIndex {
    global: Bucket,
    by_action: HashMap<String, Bucket>,
    len: usize,
}

/// What the policies of an index said about one request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Satisfied `forbid` policies.
    pub forbids: Vec<String>,
    /// Satisfied `permit` policies.
    pub permits: Vec<String>,
    /// Evaluation errors (the erroring policies are skipped).
    pub errors: Vec<String>,
}

impl Outcome {
    /// Adds another partition's outcome.
    pub fn merge(&mut self, other: Outcome) {
        self.forbids.extend(other.forbids);
        self.permits.extend(other.permits);
        self.errors.extend(other.errors);
    }

    /// Cedar's rule: any forbid denies; else any permit allows; else deny.
    pub fn allowed(&self) -> bool {
        self.forbids.is_empty() && !self.permits.is_empty()
    }
}

impl PolicyIndex {
    /// Indexes `policies`.
    pub fn build<'a>(policies: impl IntoIterator<Item = &'a PolicyDefinition>) -> Self {
        let mut index = Self::default();
        for definition in policies {
            index.len += 1;
            match action_scope(&definition.policy.action_constraint()) {
                None => index.global.add(definition),
                Some(actions) => {
                    for action in actions {
                        index.by_action.entry(action).or_default().add(definition);
                    }
                }
            }
        }
        index
    }

    /// Whether no policies are indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn partitions<'a>(&'a self, action: &str, principal: &EntityUid) -> Vec<&'a Partition> {
        let mut partitions = Vec::with_capacity(4);
        self.global.partitions(principal, &mut partitions);
        if let Some(bucket) = self.by_action.get(action) {
            bucket.partitions(principal, &mut partitions);
        }
        partitions
    }

    /// Evaluates the policies that can apply to `request`.
    pub fn evaluate(
        &self,
        action: &str,
        principal: &EntityUid,
        request: &Request,
        entities: &Entities,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let partitions = self.partitions(action, principal);
        if partitions.is_empty() {
            return outcome;
        }
        let request: &ast::Request = request.as_ref();
        let evaluator = Evaluator::new(
            request.clone(),
            entities.as_ref(),
            Extensions::all_available(),
        );
        for partition in partitions {
            partition.evaluate(&evaluator, &mut outcome);
        }
        outcome
    }

    /// Whether some assignment of the unknowns in `request` could permit it:
    /// a permit is satisfied or undecided, and no forbid is surely satisfied.
    pub fn may_permit(
        &self,
        authorizer: &Authorizer,
        action: &str,
        principal: &EntityUid,
        request: &Request,
        entities: &Entities,
    ) -> bool {
        let mut possible_permit = false;
        for partition in self.partitions(action, principal) {
            let response: PartialResponse =
                authorizer.is_authorized_partial(request, &partition.set, entities);
            if response
                .definitely_satisfied()
                .any(|p| p.effect() == cedar_policy::Effect::Forbid)
            {
                return false;
            }
            possible_permit |= response
                .definitely_satisfied()
                .chain(response.nontrivial_residuals())
                .any(|p| p.effect() == cedar_policy::Effect::Permit);
        }
        possible_permit
    }
}

/// The tool actions a policy's action scope is limited to, or `None` when
/// it can apply to any tool (unscoped, or naming an action group).
pub(crate) fn action_scope(constraint: &ActionConstraint) -> Option<Vec<String>> {
    let is_group = |uid: &EntityUid| {
        let id: &str = uid.id().unescaped();
        id == CALL_TOOL_ACTION || id == MCP_ACTION
    };
    match constraint {
        ActionConstraint::Any => None,
        ActionConstraint::Eq(uid) if is_group(uid) => None,
        ActionConstraint::Eq(uid) => Some(vec![uid.id().unescaped().to_string()]),
        ActionConstraint::In(uids) if uids.iter().any(is_group) => None,
        ActionConstraint::In(uids) => Some(
            uids.iter()
                .map(|u| u.id().unescaped().to_string())
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use cedar_policy::{Context, Decision, Entity, EntityId, EntityTypeName, RestrictedExpression};

    use super::*;
    use crate::source::{PolicySource, PolicyStatus, ValidationMode};

    const POLICIES: &[(&str, &str)] = &[
        (
            "small-refunds",
            r#"permit(principal, action == Action::"refund", resource) when { context.amount < 100 };"#,
        ),
        (
            "alice-refunds",
            r#"permit(principal == User::"alice", action == Action::"refund", resource);"#,
        ),
        (
            "no-huge-refunds",
            r#"forbid(principal, action == Action::"refund", resource) when { context.amount > 1000 };"#,
        ),
        (
            "admins",
            r#"permit(principal in Group::"admins", action, resource);"#,
        ),
        (
            "lookup-by-note",
            r#"permit(principal, action in [Action::"lookup", Action::"refund"], resource) when { context.note like "ok*" };"#,
        ),
        (
            "bob-never",
            r#"forbid(principal == User::"bob", action, resource) unless { context has override && context.override };"#,
        ),
        (
            "errors-on-missing",
            r#"permit(principal, action == Action::"lookup", resource) when { context.missing == 1 };"#,
        ),
        (
            "type-error",
            r#"forbid(principal, action == Action::"lookup", resource) when { context.amount + "x" == 2 };"#,
        ),
    ];

    fn definitions() -> Vec<PolicyDefinition> {
        let source = Arc::new(PolicySource {
            file: "test.cedar".into(),
            text: Arc::from(""),
        });
        POLICIES
            .iter()
            .map(|(id, text)| PolicyDefinition {
                id: id.to_string(),
                policy: cedar_policy::Policy::parse(Some(cedar_policy::PolicyId::new(*id)), *text)
                    .unwrap(),
                status: PolicyStatus::default(),
                validation_mode: ValidationMode::default(),
                source: source.clone(),
            })
            .collect()
    }

    fn uid(ty: &str, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.parse::<EntityTypeName>().unwrap(), EntityId::new(id))
    }

    fn sorted(mut items: Vec<String>) -> Vec<String> {
        items.sort();
        items
    }

    #[test]
    fn decisions_match_cedars_authorizer() {
        let definitions = definitions();
        let index = PolicyIndex::build(&definitions);
        let mut all = PolicySet::new();
        for definition in &definitions {
            all.add(definition.policy.clone()).unwrap();
        }
        let admin = Entity::new_no_attrs(
            uid("User", "carol"),
            [uid("Group", "admins")].into_iter().collect(),
        );
        let entities = Entities::from_entities([admin], None).unwrap();
        let authorizer = Authorizer::new();
        let (mut compared, mut allowed, mut forbidden, mut erred) = (0, 0, 0, 0);
        for principal in ["alice", "bob", "carol", "dave"] {
            for action in ["refund", "lookup", "other"] {
                for (amount, note, extra) in [
                    (5, "ok fine", None),
                    (500, "nope", None),
                    (5000, "ok", Some(true)),
                    (50, "", Some(false)),
                ] {
                    let mut pairs = vec![
                        ("amount".to_string(), RestrictedExpression::new_long(amount)),
                        (
                            "note".to_string(),
                            RestrictedExpression::new_string(note.into()),
                        ),
                    ];
                    if let Some(flag) = extra {
                        pairs.push(("override".to_string(), RestrictedExpression::new_bool(flag)));
                    }
                    let principal = uid("User", principal);
                    let request = Request::new(
                        principal.clone(),
                        uid("Action", action),
                        uid("Gateway", "g"),
                        Context::from_pairs(pairs).unwrap(),
                        None,
                    )
                    .unwrap();
                    let ours = index.evaluate(action, &principal, &request, &entities);
                    let cedar = authorizer.is_authorized(&request, &all, &entities);
                    let case = format!("{principal} {action} {amount} {note:?} {extra:?}");
                    assert_eq!(
                        ours.allowed(),
                        cedar.decision() == Decision::Allow,
                        "{case}: {ours:?}"
                    );
                    let reasons = sorted(
                        cedar
                            .diagnostics()
                            .reason()
                            .map(|id| id.to_string())
                            .collect(),
                    );
                    let deciding = if ours.allowed() {
                        &ours.permits
                    } else {
                        &ours.forbids
                    };
                    assert_eq!(sorted(deciding.clone()), reasons, "{case}");
                    assert_eq!(
                        sorted(ours.errors.clone()),
                        sorted(
                            cedar
                                .diagnostics()
                                .errors()
                                .map(ToString::to_string)
                                .collect()
                        ),
                        "{case}"
                    );
                    compared += 1;
                    allowed += usize::from(ours.allowed());
                    forbidden += usize::from(!ours.forbids.is_empty());
                    erred += usize::from(!ours.errors.is_empty());
                }
            }
        }
        assert_eq!(compared, 48);
        // Every path was taken: allows, forbids, and skipped erroring policies.
        assert!(
            allowed > 0 && forbidden > 0 && erred > 0,
            "{allowed} {forbidden} {erred}"
        );
    }
}
