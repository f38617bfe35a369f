//! What the writer thread keeps of each account besides its routing state
//! (`routing_state`): the notification preferences and e-mail cap that
//! every notification reads, the people a notification may tell (every
//! new unassigned ticket reads them all), and the enabled workflows that
//! every change reads. The writer is the only connection that writes, so
//! a copy is exact as long as every write of what it mirrors drops it (the
//! `notifications`, `directory` and `workflows` modules do) and a
//! rolled-back write drops them all ([`forget_all`], called by the writer).
//!
//! A leaf: it reads and writes nothing in the database.

use std::{cell::RefCell, collections::HashMap, rc::Rc};

use switchboard_domain::{
    AccountId,
    notifications::{Person, Preferences},
    workflows::Workflow,
};

/// An account's notification preferences (defaults and every user's own)
/// and its e-mail cap (`None` without e-mail settings).
pub type NotifySettings = (Preferences, Option<u32>);

thread_local! {
    static NOTIFY: RefCell<HashMap<AccountId, Rc<NotifySettings>>> = RefCell::new(HashMap::new());
    static PEOPLE: RefCell<HashMap<AccountId, Rc<Vec<Person>>>> = RefCell::new(HashMap::new());
    static WORKFLOWS: RefCell<HashMap<AccountId, Rc<Vec<Workflow>>>> = RefCell::new(HashMap::new());
}

/// The kept notification settings of `account`, if any.
pub fn notify(account: AccountId) -> Option<Rc<NotifySettings>> {
    NOTIFY.with(|k| k.borrow().get(&account).cloned())
}

/// Keeps `settings` for `account`.
pub fn keep_notify(account: AccountId, settings: Rc<NotifySettings>) {
    NOTIFY.with(|k| k.borrow_mut().insert(account, settings));
}

/// Drops the account's notification settings (they are being written).
pub fn forget_notify(account: AccountId) {
    NOTIFY.with(|k| k.borrow_mut().remove(&account));
}

/// The kept people of `account` (every user, by id), if any.
pub fn people(account: AccountId) -> Option<Rc<Vec<Person>>> {
    PEOPLE.with(|k| k.borrow().get(&account).cloned())
}

/// Keeps `list` as the account's people.
pub fn keep_people(account: AccountId, list: Rc<Vec<Person>>) {
    PEOPLE.with(|k| k.borrow_mut().insert(account, list));
}

/// Drops the account's people (a user or a team is being written).
pub fn forget_people(account: AccountId) {
    PEOPLE.with(|k| k.borrow_mut().remove(&account));
}

/// The kept enabled workflows of `account`, if any.
pub fn workflows(account: AccountId) -> Option<Rc<Vec<Workflow>>> {
    WORKFLOWS.with(|k| k.borrow().get(&account).cloned())
}

/// Keeps `list` as the account's enabled workflows.
pub fn keep_workflows(account: AccountId, list: Rc<Vec<Workflow>>) {
    WORKFLOWS.with(|k| k.borrow_mut().insert(account, list));
}

/// Drops the account's workflows (one is being written).
pub fn forget_workflows(account: AccountId) {
    WORKFLOWS.with(|k| k.borrow_mut().remove(&account));
}

/// Drops every copy: a write rolled back, and a copy may hold what it did.
pub fn forget_all() {
    NOTIFY.with(|k| k.borrow_mut().clear());
    PEOPLE.with(|k| k.borrow_mut().clear());
    WORKFLOWS.with(|k| k.borrow_mut().clear());
}
