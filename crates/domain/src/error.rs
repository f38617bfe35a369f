//! The domain's error type: a value that could not be parsed, or a rule that
//! a requested change would break.

/// Why a domain value or change was refused. `field` names the input at fault
/// so that the HTTP layer can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A value is not of the expected form.
    #[error("{field}: {reason}")]
    Invalid {
        /// The input field at fault (`email`, `contact.phone`, ...).
        field: &'static str,
        /// What is wrong with it, for a person.
        reason: String,
    },
    /// A value deep inside a request is not acceptable: `field` is its
    /// path (`actions[2].targets.users[0]`).
    #[error("{field}: {reason}")]
    InvalidAt {
        /// The path of the input at fault.
        field: String,
        /// What is wrong with it, for a person.
        reason: String,
    },
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`DomainError::InvalidAt`].
    pub fn invalid_at(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidAt {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
