//! The users service: customer profiles, one Lambda per route of `/users`.
//!
//! [`domain`] holds the values and the profile, [`UserStore`] is the port the
//! operations need, [`store::DynamoUserStore`] its DynamoDB adapter, and [`api`] the
//! HTTP handlers the binaries in `src/bin/` hand their requests to.

pub mod api;
pub mod domain;
pub mod profiles;
pub mod store;

use domain::{User, UserChanges, UserDeleted, UserId, UserRegistered};
use shared::ApiError;
use shared::dynamo::StoreError;
use shared::identity::Caller;
use shared::time::Timestamp;
use std::future::Future;

pub use store::DynamoUserStore;

/// Where profiles live. One DynamoDB request per method: creation and erasure are
/// conditional, so "exists already" and "not found" cost no extra read.
pub trait UserStore: Send + Sync {
    /// Inserts a new profile; `Ok(false)` when one with that id exists already.
    fn insert(&self, user: &User) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Reads a profile (strongly consistent: a client reads its own writes).
    fn get(&self, id: &UserId) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    /// Applies changes atomically; `Ok(None)` when there is no such profile.
    fn update(
        &self,
        id: &UserId,
        changes: &UserChanges,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    /// Erases a profile; `Ok(false)` when there was none.
    fn delete(&self, id: &UserId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What the operations refuse, before it becomes a problem document.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The caller already has a profile.
    #[error("a profile for user {0} exists already")]
    AlreadyExists(UserId),
    /// No profile with that id.
    #[error("no user {0}")]
    NotFound(String),
    /// The caller is neither that user nor an admin.
    #[error("user {caller} may not act for user {target}")]
    Forbidden {
        /// Who asked.
        caller: String,
        /// Whose profile.
        target: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<UsersError> for ApiError {
    fn from(err: UsersError) -> Self {
        match err {
            UsersError::AlreadyExists(_) => {
                ApiError::Conflict("A profile for this user exists already".into())
            }
            UsersError::NotFound(id) => ApiError::NotFound(format!("No user {id}")),
            UsersError::Forbidden { .. } => {
                ApiError::Forbidden("You may only access your own profile".into())
            }
            UsersError::Store(e) => ApiError::internal(e),
        }
    }
}

/// A validated registration.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Contact address.
    pub email: domain::Email,
    /// Display name.
    pub name: domain::UserName,
    /// Country of residence.
    pub country: domain::CountryCode,
}

/// Registers the caller's own profile (the id is always the caller's `sub`).
pub async fn register(
    store: &impl UserStore,
    caller: &Caller,
    new: NewUser,
    now: Timestamp,
) -> Result<(User, UserRegistered), UsersError> {
    let user_id = caller.user_id.clone();
    let user = User {
        user_id: user_id.clone(),
        email: new.email,
        name: new.name,
        country: new.country,
        created_at: now,
        updated_at: now,
    };
    if !store.insert(&user).await? {
        return Err(UsersError::AlreadyExists(user_id));
    }
    let event = UserRegistered {
        user_id,
        country: user.country,
        registered_at: now,
    };
    Ok((user, event))
}

/// Checks that `caller` may act on `target` (403 before 404, so a stranger learns
/// nothing about which ids exist) and that `target` can be an id at all.
fn authorize(caller: &Caller, target: &str) -> Result<UserId, UsersError> {
    if !caller.may_act_for(target) {
        return Err(UsersError::Forbidden {
            caller: caller.user_id.to_string(),
            target: target.to_owned(),
        });
    }
    UserId::try_from(target.to_owned()).map_err(|_| UsersError::NotFound(target.to_owned()))
}

/// Reads a profile: its owner or an admin.
pub async fn get(
    store: &impl UserStore,
    caller: &Caller,
    target: &str,
) -> Result<User, UsersError> {
    let id = authorize(caller, target)?;
    store
        .get(&id)
        .await?
        .ok_or_else(|| UsersError::NotFound(target.to_owned()))
}

/// Changes a profile: its owner or an admin.
pub async fn update(
    store: &impl UserStore,
    caller: &Caller,
    target: &str,
    changes: &UserChanges,
    now: Timestamp,
) -> Result<User, UsersError> {
    let id = authorize(caller, target)?;
    store
        .update(&id, changes, now)
        .await?
        .ok_or_else(|| UsersError::NotFound(target.to_owned()))
}

/// Erases a profile: its owner or an admin. Orders stay, keyed by the bare user id.
pub async fn delete(
    store: &impl UserStore,
    caller: &Caller,
    target: &str,
    now: Timestamp,
) -> Result<UserDeleted, UsersError> {
    let id = authorize(caller, target)?;
    if !store.delete(&id).await? {
        return Err(UsersError::NotFound(target.to_owned()));
    }
    Ok(UserDeleted {
        user_id: id,
        deleted_at: now,
    })
}

#[cfg(test)]
pub(crate) mod memory {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// The port in memory, for the operations' logic.
    #[derive(Default)]
    pub(crate) struct MemoryStore(Mutex<HashMap<UserId, User>>);

    impl UserStore for MemoryStore {
        async fn insert(&self, user: &User) -> Result<bool, StoreError> {
            let mut m = self.0.lock().unwrap();
            if m.contains_key(&user.user_id) {
                return Ok(false);
            }
            m.insert(user.user_id.clone(), user.clone());
            Ok(true)
        }
        async fn get(&self, id: &UserId) -> Result<Option<User>, StoreError> {
            Ok(self.0.lock().unwrap().get(id).cloned())
        }
        async fn update(
            &self,
            id: &UserId,
            c: &UserChanges,
            now: Timestamp,
        ) -> Result<Option<User>, StoreError> {
            let mut m = self.0.lock().unwrap();
            let Some(u) = m.get(id).cloned() else {
                return Ok(None);
            };
            let u = c.apply(u, now);
            m.insert(id.clone(), u.clone());
            Ok(Some(u))
        }
        async fn delete(&self, id: &UserId) -> Result<bool, StoreError> {
            Ok(self.0.lock().unwrap().remove(id).is_some())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    fn caller(id: &str, admin: bool) -> Caller {
        Caller {
            user_id: id.parse().unwrap(),
            is_admin: admin,
        }
    }

    fn new_user() -> NewUser {
        NewUser {
            email: "ada@example.com".to_owned().try_into().unwrap(),
            name: "Ada".to_owned().try_into().unwrap(),
            country: "GB".to_owned().try_into().unwrap(),
        }
    }

    #[tokio::test]
    async fn registering_twice_is_a_conflict() {
        let store = MemoryStore::default();
        let now = shared::time::now();
        let (user, event) = register(&store, &caller("u1", false), new_user(), now)
            .await
            .unwrap();
        assert_eq!(user.user_id.as_str(), "u1");
        assert_eq!(event.user_id, user.user_id);
        let again = register(&store, &caller("u1", false), new_user(), now).await;
        assert!(matches!(again, Err(UsersError::AlreadyExists(_))));
    }

    #[tokio::test]
    async fn strangers_are_forbidden_before_existence_is_checked() {
        let store = MemoryStore::default();
        let got = get(&store, &caller("u2", false), "no-such-user").await;
        assert!(matches!(got, Err(UsersError::Forbidden { .. })));
        let got = get(&store, &caller("admin", true), "no-such-user").await;
        assert!(matches!(got, Err(UsersError::NotFound(_))));
    }

    #[tokio::test]
    async fn admins_change_and_erase_any_profile() {
        let store = MemoryStore::default();
        let now = shared::time::now();
        register(&store, &caller("u3", false), new_user(), now)
            .await
            .unwrap();
        let changes = UserChanges {
            name: Some("Grace".to_owned().try_into().unwrap()),
            ..Default::default()
        };
        let user = update(&store, &caller("boss", true), "u3", &changes, now)
            .await
            .unwrap();
        assert_eq!(String::from(user.name), "Grace");
        assert_eq!(String::from(user.email), "ada@example.com");
        let event = delete(&store, &caller("boss", true), "u3", now)
            .await
            .unwrap();
        assert_eq!(event.user_id.as_str(), "u3");
        assert!(matches!(
            get(&store, &caller("u3", false), "u3").await,
            Err(UsersError::NotFound(_))
        ));
        assert!(matches!(
            delete(&store, &caller("u3", false), "u3", now).await,
            Err(UsersError::NotFound(_))
        ));
    }
}
