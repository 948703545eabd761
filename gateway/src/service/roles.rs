//! Roles in a space and the authorisation rule built on them.
//!
//! Invariant: a caller who is not a member of a space gets [`Error::NotFound`] — exactly what a
//! space that does not exist gives — so space ids cannot be probed for existence. A member whose
//! role is too low gets [`Error::Forbidden`].

use coffre_crypto::keys::SpaceId;

use super::Caller;
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::SpaceRecord;

/// Role code of a reader (FORMAT.md section 9.1).
pub const READER: u8 = 1;
/// Role code of a writer.
pub const WRITER: u8 = 2;
/// Role code of an admin.
pub const ADMIN: u8 = 3;
/// Role code of an owner.
pub const OWNER: u8 = 4;

/// The role's name in the API.
pub fn role_name(role: u8) -> &'static str {
    match role {
        READER => "reader",
        WRITER => "writer",
        ADMIN => "admin",
        OWNER => "owner",
        _ => "unknown",
    }
}

/// Checks `role` against `minimum`, given the member's role (`None`: not a member).
pub fn authorise(role: Option<u8>, minimum: u8) -> Result<u8> {
    match role {
        None => Err(Error::NotFound),
        Some(role) if role >= minimum => Ok(role),
        Some(_) => Err(Error::Forbidden(
            "your role in this space does not allow this",
        )),
    }
}

/// Loads a space and checks that the caller is a member with at least `minimum` role.
pub async fn require(
    app: &App,
    caller: &Caller,
    space: SpaceId,
    minimum: u8,
) -> Result<(SpaceRecord, u8)> {
    let record = app
        .meta(move |meta| meta.space(&space))
        .await?
        .ok_or(Error::NotFound)?;
    let role = record
        .members
        .iter()
        .find(|member| member.handle == caller.handle)
        .map(|member| member.role);
    let role = authorise(role, minimum)?;
    Ok((record, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_members_are_not_found_and_low_roles_forbidden() {
        assert!(matches!(authorise(None, READER), Err(Error::NotFound)));
        assert!(matches!(
            authorise(Some(READER), WRITER),
            Err(Error::Forbidden(_))
        ));
        assert_eq!(
            authorise(Some(WRITER), WRITER).expect("writer writes"),
            WRITER
        );
        assert_eq!(
            authorise(Some(OWNER), ADMIN).expect("owner administers"),
            OWNER
        );
        assert!(matches!(
            authorise(Some(ADMIN), OWNER),
            Err(Error::Forbidden(_))
        ));
        assert_eq!(role_name(OWNER), "owner");
    }
}
