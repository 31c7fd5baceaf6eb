//! The users library against the emulator's DynamoDB: real conditional writes, and one
//! round trip per operation (counted by the SDK interceptor the functions use).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use shared::identity::Caller;
use shared::metrics::DynamoDbRequestCounter;
use users::domain::UserChanges;
use users::{DynamoUserStore, NewUser, UsersError};

async fn store() -> (DynamoUserStore, DynamoDbRequestCounter) {
    let table = std::env::var("USERS_TABLE")
        .expect("USERS_TABLE is not set: run through `make test` (local/stack.py exec)");
    let sdk = shared::aws::sdk_config().await.unwrap();
    let counter = DynamoDbRequestCounter::default();
    let client = shared::aws::dynamodb_with_counter(&sdk, counter.clone());
    (DynamoUserStore::new(client, table), counter)
}

fn caller(id: &str) -> Caller {
    Caller {
        user_id: id.parse().unwrap(),
        is_admin: false,
    }
}

fn new_user() -> NewUser {
    NewUser {
        email: "linus@example.com".to_owned().try_into().unwrap(),
        name: "Linus".to_owned().try_into().unwrap(),
        country: "FI".to_owned().try_into().unwrap(),
    }
}

#[tokio::test]
async fn each_operation_is_one_conditional_round_trip() {
    let (store, counter) = store().await;
    let id = format!("it-{}", ulid::Ulid::new().to_string().to_lowercase());
    let me = caller(&id);
    let now = shared::time::now();

    let before = counter.get();
    let (user, _) = users::register(&store, &me, new_user(), now).await.unwrap();
    assert_eq!(counter.get() - before, 1, "register is one PutItem");

    let before = counter.get();
    let again = users::register(&store, &me, new_user(), now).await;
    assert!(
        matches!(again, Err(UsersError::AlreadyExists(_))),
        "{again:?}"
    );
    assert_eq!(
        counter.get() - before,
        1,
        "the duplicate is caught by the condition, no read first"
    );

    let before = counter.get();
    assert_eq!(users::get(&store, &me, &id).await.unwrap(), user);
    assert_eq!(counter.get() - before, 1);

    let changes = UserChanges {
        country: Some("SE".to_owned().try_into().unwrap()),
        ..Default::default()
    };
    let later = shared::time::now();
    let before = counter.get();
    let changed = users::update(&store, &me, &id, &changes, later)
        .await
        .unwrap();
    assert_eq!(
        counter.get() - before,
        1,
        "update returns the new item in the same request"
    );
    assert_eq!(String::from(changed.country), "SE");
    assert_eq!(changed.email, user.email);
    assert_eq!(changed.created_at, user.created_at);
    assert_eq!(changed.updated_at, later);

    let before = counter.get();
    users::delete(&store, &me, &id, later).await.unwrap();
    assert_eq!(counter.get() - before, 1);
    assert!(matches!(
        users::delete(&store, &me, &id, later).await,
        Err(UsersError::NotFound(_))
    ));
    assert!(matches!(
        users::update(&store, &me, &id, &changes, later).await,
        Err(UsersError::NotFound(_))
    ));
    assert!(matches!(
        users::get(&store, &me, &id).await,
        Err(UsersError::NotFound(_))
    ));
}
