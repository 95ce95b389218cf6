//! Metadata filters of `ListEvents` and the record operations.

use std::collections::BTreeMap;

use crate::error::MemoryError;
use crate::ids;
use crate::types::{
    EventFilterOperator, EventMetadataFilter, LeftExpression, MetadataValue, RecordFilterOperator,
    RecordMetadataFilter, RecordMetadataValue, RecordRightExpression, RightExpression,
};

fn key_of(left: &LeftExpression) -> &str {
    match left {
        LeftExpression::MetadataKey(k) => k,
    }
}

/// Checks a filter list's shape: 1–5 entries, values where the operator needs them.
pub fn validate_event_filters(filters: &[EventMetadataFilter]) -> Result<(), MemoryError> {
    if filters.is_empty() || filters.len() > 5 {
        return Err(MemoryError::field(
            "filter.eventMetadata",
            "must hold 1 to 5 conditions",
        ));
    }
    for f in filters {
        ids::metadata(
            "filter.eventMetadata.left.metadataKey",
            key_of(&f.left),
            1,
            128,
        )?;
        if f.operator == EventFilterOperator::EqualsTo && f.right.is_none() {
            return Err(MemoryError::field(
                "filter.eventMetadata.right",
                "EQUALS_TO needs a value",
            ));
        }
    }
    Ok(())
}

/// Whether event metadata satisfies every filter.
pub fn event_matches(
    metadata: &BTreeMap<String, MetadataValue>,
    filters: &[EventMetadataFilter],
) -> bool {
    filters.iter().all(|f| {
        let value = metadata.get(key_of(&f.left));
        match f.operator {
            EventFilterOperator::Exists => value.is_some(),
            EventFilterOperator::NotExists => value.is_none(),
            EventFilterOperator::EqualsTo => match (&f.right, value) {
                (Some(RightExpression::MetadataValue(expected)), Some(actual)) => {
                    expected == actual
                }
                _ => false,
            },
        }
    })
}

/// Checks a record filter list's shape.
pub fn validate_record_filters(filters: &[RecordMetadataFilter]) -> Result<(), MemoryError> {
    if filters.is_empty() || filters.len() > 5 {
        return Err(MemoryError::field(
            "metadataFilters",
            "must hold 1 to 5 conditions",
        ));
    }
    for f in filters {
        ids::metadata("metadataFilters.left.metadataKey", key_of(&f.left), 1, 128)?;
        let needs_value = !matches!(
            f.operator,
            RecordFilterOperator::Exists | RecordFilterOperator::NotExists
        );
        if needs_value && f.right.is_none() {
            return Err(MemoryError::field(
                "metadataFilters.right",
                format!("{:?} needs a value", f.operator),
            ));
        }
    }
    Ok(())
}

/// Whether record metadata satisfies every filter.
pub fn record_matches(
    metadata: &BTreeMap<String, RecordMetadataValue>,
    filters: &[RecordMetadataFilter],
) -> bool {
    use RecordFilterOperator as Op;
    use RecordMetadataValue as V;
    filters.iter().all(|f| {
        let actual = metadata.get(key_of(&f.left));
        let expected = f
            .right
            .as_ref()
            .map(|RecordRightExpression::MetadataValue(v)| v);
        match (f.operator, actual, expected) {
            (Op::Exists, a, _) => a.is_some(),
            (Op::NotExists, a, _) => a.is_none(),
            (Op::EqualsTo, Some(a), Some(e)) => a == e,
            (Op::Contains, Some(V::StringValue(a)), Some(V::StringValue(e))) => {
                a.contains(e.as_str())
            }
            (Op::Contains, Some(V::StringListValue(a)), Some(V::StringValue(e))) => a.contains(e),
            (Op::Before, Some(V::DateTimeValue(a)), Some(V::DateTimeValue(e))) => a < e,
            (Op::After, Some(V::DateTimeValue(a)), Some(V::DateTimeValue(e))) => a > e,
            (Op::GreaterThan, Some(V::NumberValue(a)), Some(V::NumberValue(e))) => a > e,
            (Op::GreaterThanOrEquals, Some(V::NumberValue(a)), Some(V::NumberValue(e))) => a >= e,
            (Op::LessThan, Some(V::NumberValue(a)), Some(V::NumberValue(e))) => a < e,
            (Op::LessThanOrEquals, Some(V::NumberValue(a)), Some(V::NumberValue(e))) => a <= e,
            _ => false,
        }
    })
}

/// Validates record metadata values against AgentCore's constraints.
pub fn validate_record_metadata(
    field: &str,
    metadata: &BTreeMap<String, RecordMetadataValue>,
) -> Result<(), MemoryError> {
    for (k, v) in metadata {
        ids::metadata(&format!("{field}.key"), k, 1, 128)?;
        match v {
            RecordMetadataValue::StringValue(s) => {
                ids::metadata(&format!("{field}.{k}"), s, 1, 256)?
            }
            RecordMetadataValue::StringListValue(list) => {
                if list.is_empty() || list.len() > 5 {
                    return Err(MemoryError::field(format!("{field}.{k}"), "1 to 5 strings"));
                }
                for s in list {
                    ids::metadata(&format!("{field}.{k}"), s, 1, 64)?;
                }
            }
            RecordMetadataValue::NumberValue(n) if !n.is_finite() => {
                return Err(MemoryError::field(format!("{field}.{k}"), "must be finite"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_filters_compare_by_type() {
        let mut m = BTreeMap::new();
        m.insert(
            "priority".to_string(),
            RecordMetadataValue::NumberValue(3.0),
        );
        m.insert(
            "tags".to_string(),
            RecordMetadataValue::StringListValue(vec!["billing".into()]),
        );
        let f = |key: &str, operator, right: Option<RecordMetadataValue>| RecordMetadataFilter {
            left: LeftExpression::MetadataKey(key.into()),
            operator,
            right: right.map(RecordRightExpression::MetadataValue),
        };
        assert!(record_matches(
            &m,
            &[f(
                "priority",
                RecordFilterOperator::GreaterThan,
                Some(RecordMetadataValue::NumberValue(2.0))
            )]
        ));
        assert!(record_matches(
            &m,
            &[f(
                "tags",
                RecordFilterOperator::Contains,
                Some(RecordMetadataValue::StringValue("billing".into()))
            )]
        ));
        assert!(!record_matches(
            &m,
            &[f("missing", RecordFilterOperator::Exists, None)]
        ));
        assert!(!record_matches(
            &m,
            &[f(
                "priority",
                RecordFilterOperator::Before,
                Some(RecordMetadataValue::NumberValue(9.0))
            )]
        ));
    }
}
