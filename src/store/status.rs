//! The ids and statuses the store records, as types: `RunId` names an import run (and the
//! generation it published), `RunStatus` and `JobRunStatus` are the values the CHECK
//! constraints `import_run_status_ck` and `job_run_status_ck` allow, stored as their text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An import run's id; a published run's id is also the generation readers see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for RunId {
    fn from(id: i64) -> Self {
        RunId(id)
    }
}

impl PartialEq<RunId> for i64 {
    fn eq(&self, other: &RunId) -> bool {
        *self == other.0
    }
}

/// A stored text value that is not one of the enum's (a constraint the code does not know).
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?} in the store")]
pub struct UnknownStatus {
    what: &'static str,
    value: String,
}

/// A closed set of text values: the enum, its text, and its mapping to a `text` column.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(text: &str) -> Result<Self, UnknownStatus> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownStatus { what: $what, value: text.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Ordered by text, as the column sorts.
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                Ok(text.parse()?)
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_enum!(
    /// Where an import run is (`import_run_status_ck`).
    #[derive(Copy)]
    RunStatus, "run status" {
        Running = "running",
        Published = "published",
        /// Complete, waiting for an operator's approval (safety gate, freshness guard).
        Held = "held",
        Failed = "failed",
        /// The extract is the published or a held one: nothing was done.
        Skipped = "skipped",
        /// Held, then overtaken by another publication: it can no longer be approved.
        Discarded = "discarded",
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// Where a job run is (`job_run_status_ck`).
    JobRunStatus, "job run status" {
        Running = "running",
        Published = "published",
        Held = "held",
        Skipped = "skipped",
        Failed = "failed",
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// What a run did to a professional (`professional_record.change`, or a removal).
    #[derive(Copy)]
    Change, "change" {
        Added = "added",
        Changed = "changed",
        Removed = "removed",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_their_text() {
        for status in [
            "running",
            "published",
            "held",
            "failed",
            "skipped",
            "discarded",
            "cancelled",
        ] {
            assert_eq!(status.parse::<RunStatus>().unwrap().as_str(), status);
        }
        assert!("paused".parse::<RunStatus>().is_err());
        assert!("discarded".parse::<JobRunStatus>().is_err());
        assert_eq!(serde_json::to_value(JobRunStatus::Held).unwrap(), "held");
        assert_eq!(serde_json::to_value(RunId(7)).unwrap(), 7);
    }
}
