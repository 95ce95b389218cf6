//! Policies indexed by the actions and principals their scopes name, so a
//! decision evaluates only the policies that can apply to it (Cedar itself
//! evaluates every policy in a set).

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, Authorizer, Decision, Entities, EntityUid, PartialResponse, PolicySet,
    PrincipalConstraint, Request,
};

use crate::schema::{CALL_TOOL_ACTION, MCP_ACTION};
use crate::source::PolicyDefinition;

#[derive(Debug, Default)]
struct Bucket {
    any_principal: PolicySet,
    by_principal: HashMap<EntityUid, PolicySet>,
}

impl Bucket {
    fn add(&mut self, definition: &PolicyDefinition) {
        let set = match definition.policy.principal_constraint() {
            PrincipalConstraint::Eq(uid) => self.by_principal.entry(uid).or_default(),
            _ => &mut self.any_principal,
        };
        // Ids are unique within an engine, so adding cannot conflict.
        let _ = set.add(definition.policy.clone());
    }

    fn sets<'a>(&'a self, principal: &EntityUid, out: &mut Vec<&'a PolicySet>) {
        if !self.any_principal.is_empty() {
            out.push(&self.any_principal);
        }
        if let Some(set) = self.by_principal.get(principal) {
            out.push(set);
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

    fn sets<'a>(&'a self, action: &str, principal: &EntityUid) -> Vec<&'a PolicySet> {
        let mut sets = Vec::with_capacity(4);
        self.global.sets(principal, &mut sets);
        if let Some(bucket) = self.by_action.get(action) {
            bucket.sets(principal, &mut sets);
        }
        sets
    }

    /// Evaluates the policies that can apply to `request`.
    pub fn evaluate(
        &self,
        authorizer: &Authorizer,
        action: &str,
        principal: &EntityUid,
        request: &Request,
        entities: &Entities,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        for set in self.sets(action, principal) {
            let response = authorizer.is_authorized(request, set, entities);
            let reasons = response.diagnostics().reason().map(ToString::to_string);
            match response.decision() {
                Decision::Allow => outcome.permits.extend(reasons),
                Decision::Deny => outcome.forbids.extend(reasons),
            }
            outcome
                .errors
                .extend(response.diagnostics().errors().map(ToString::to_string));
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
        for set in self.sets(action, principal) {
            let response: PartialResponse =
                authorizer.is_authorized_partial(request, set, entities);
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
