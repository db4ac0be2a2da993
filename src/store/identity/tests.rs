use super::*;
use crate::account::SettingValue;
use crate::store::tests::pop3;

fn deleting_account(store: &Store) -> String {
    let a = store.create_account(|id| pop3(id, Some("pw"))).unwrap();
    let on = [("delete_on_server".to_string(), SettingValue::Bool(true))];
    store.update_account(&a.id, |c| c.updated(&on)).unwrap().id
}

fn machine_file(dir: &Path, id: &str) -> PathBuf {
    let f = dir.join(format!("machine-id-{id}"));
    std::fs::write(&f, format!("{id}\n")).unwrap();
    f
}

const M1: &str = "0123456789abcdef0123456789abcdef";
const M2: &str = "fedcba9876543210fedcba9876543210";

fn delete_on(store: &Store, id: &str) -> (bool, bool) {
    let a = store.account(id).unwrap().unwrap();
    (a.delete_on_server, a.restore_reset)
}

#[test]
fn first_check_records_and_the_same_place_resets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let id = deleting_account(&store);
    let here = Identity::here(&machine_file(dir.path(), M1), store.path());
    assert!(store.check_copied_at(&here).unwrap().is_empty());
    assert!(store.check_copied_at(&here).unwrap().is_empty());
    assert_eq!(delete_on(&store, &id), (true, false));
}

#[test]
fn another_machine_id_resets_once_and_records_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let id = deleting_account(&store);
    let m1 = Identity::here(&machine_file(dir.path(), M1), store.path());
    let m2 = Identity::here(&machine_file(dir.path(), M2), store.path());
    assert_eq!(m1.path, m2.path);
    store.check_copied_at(&m1).unwrap();
    assert_eq!(store.check_copied_at(&m2).unwrap(), vec![id.clone()]);
    assert_eq!(delete_on(&store, &id), (false, true));
    // Re-enabled by the admin on the new machine: stays on from now on.
    let on = [("delete_on_server".to_string(), SettingValue::Bool(true))];
    store.update_account(&id, |c| c.updated(&on)).unwrap();
    assert!(store.check_copied_at(&m2).unwrap().is_empty());
    assert_eq!(delete_on(&store, &id), (true, false));
}

#[test]
fn a_machine_id_that_became_unreadable_counts_as_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let id = deleting_account(&store);
    let m1 = Identity::here(&machine_file(dir.path(), M1), store.path());
    let none = Identity::here(&dir.path().join("absent"), store.path());
    assert_eq!(none.machine_id, None);
    store.check_copied_at(&m1).unwrap();
    assert_eq!(store.check_copied_at(&none).unwrap(), vec![id]);
}

#[test]
fn another_path_resets() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let id = deleting_account(&store);
    let mut here = Identity::here(&machine_file(dir.path(), M1), store.path());
    store.check_copied_at(&here).unwrap();
    here.path = "/srv/copy/postfach.redb".into();
    assert_eq!(store.check_copied_at(&here).unwrap(), vec![id.clone()]);
    assert_eq!(delete_on(&store, &id), (false, true));
}

#[test]
fn the_recorded_identity_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = machine_file(dir.path(), M1);
    let id = {
        let store = Store::open(&state).unwrap();
        let id = deleting_account(&store);
        store
            .check_copied_at(&Identity::here(&file, store.path()))
            .unwrap();
        id
    };
    let store = Store::open(&state).unwrap();
    let here = Identity::here(&file, store.path());
    assert!(store.check_copied_at(&here).unwrap().is_empty());
    assert_eq!(delete_on(&store, &id), (true, false));
}

#[test]
fn machine_id_file_must_look_like_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m");
    for bad in ["", "short\n", "zz23456789abcdef0123456789abcdef\n"] {
        std::fs::write(&f, bad).unwrap();
        assert_eq!(read_machine_id(&f), None, "{bad:?}");
    }
    std::fs::write(&f, vec![b'a'; 100_000]).unwrap();
    assert_eq!(read_machine_id(&f), None);
    std::fs::write(&f, format!("{}\n", M1.to_uppercase())).unwrap();
    assert_eq!(read_machine_id(&f).as_deref(), Some(M1));
}
