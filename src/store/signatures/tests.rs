use redb::{Database, ReadableTable, TableHandle};

use super::*;
use crate::account::SettingValue;
use crate::store::schema::{get_u64, put_u64, KEY_VERSION, SCHEMA_VERSION};
use crate::store::{write_txn, DB_FILE};

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([9, 8, 7, 255]));
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    buf.into_inner()
}

fn employee(first: &str, pictures: &[(u32, u32)]) -> Employee {
    Employee::new(
        &[("Vorname".into(), SettingValue::Str(first.into()))],
        pictures
            .iter()
            .map(|&(w, h)| ("image/png".to_string(), png(w, h)))
            .collect(),
    )
    .unwrap()
}

#[test]
fn the_users_own_signature_wins_over_the_general_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.signature_for("t1", "mm").unwrap(), (None, None));

    let general = Signature::new("general", "<i>general</i>").unwrap();
    let own = Signature::new("own @Vorname@", "<b>own</b>").unwrap();
    store.set_signature("t1", "", &general).unwrap();
    let (chosen, _) = store.signature_for("t1", "mm").unwrap();
    assert_eq!(chosen.unwrap().source, Source::General);

    store.set_signature("t1", "mm", &own).unwrap();
    let (chosen, _) = store.signature_for("t1", "mm").unwrap();
    let chosen = chosen.unwrap();
    assert_eq!(
        (chosen.signature, chosen.source),
        (own.clone(), Source::User)
    );
    // Another user and another tenant are not touched.
    let (other, _) = store.signature_for("t1", "xy").unwrap();
    assert_eq!(other.unwrap().source, Source::General);
    assert_eq!(store.signature_for("t2", "mm").unwrap().0, None);

    assert_eq!(store.signature("t1", "").unwrap(), Some(general));
    store.remove_signature("t1", "mm").unwrap();
    assert_eq!(store.signature("t1", "mm").unwrap(), None);
    let e = store.remove_signature("t1", "mm").unwrap_err();
    assert_eq!(
        e,
        Error::NotFound("CRM user \"mm\" has no signature of its own in tenant \"t1\"".into())
    );
}

#[test]
fn an_employee_is_replaced_whole_and_removed_with_its_pictures() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .set_employee("t1", "mm", &employee("Max", &[(3, 3), (4, 4), (5, 5)]))
            .unwrap();
        store
            .set_employee("t1", "ab", &employee("Anna", &[(6, 6)]))
            .unwrap();
        store
            .set_employee("t1", "mm", &employee("Moritz", &[(7, 7)]))
            .unwrap();
    }
    // Durable across a reopen.
    let store = Store::open(dir.path()).unwrap();
    let mm = store.employee("t1", "mm").unwrap().unwrap();
    assert_eq!(mm, employee("Moritz", &[(7, 7)]));
    let pictures = |store: &Store| {
        let tx = store.read().unwrap();
        let t = tx.open_table(EMPLOYEE_IMAGES).unwrap();
        t.iter().unwrap().count()
    };
    assert_eq!(
        pictures(&store),
        2,
        "the old pictures 1 and 2 of mm are gone"
    );

    store.remove_employee("t1", "mm").unwrap();
    assert_eq!(store.employee("t1", "mm").unwrap(), None);
    assert_eq!(pictures(&store), 1);
    assert!(matches!(
        store.remove_employee("t1", "mm"),
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        store.employee("t1", "ab").unwrap(),
        Some(employee("Anna", &[(6, 6)]))
    );
}

#[test]
fn keys_are_checked_at_the_store_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let e = store
        .set_employee("t1", "", &employee("x", &[]))
        .unwrap_err();
    assert!(e.to_string().starts_with("user: empty"), "{e}");
    let e = store
        .set_signature("", "mm", &Signature::default())
        .unwrap_err();
    assert!(e.to_string().starts_with("tenant: empty"), "{e}");
}

#[test]
fn schema_4_store_gets_the_signature_tables() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        // What a schema 4 postfachd left: no signature tables.
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let tx = write_txn(&db).unwrap();
        assert!(tx.delete_table(SIGNATURES).unwrap());
        assert!(tx.delete_table(EMPLOYEES).unwrap());
        assert!(tx.delete_table(EMPLOYEE_IMAGES).unwrap());
        put_u64(&tx, KEY_VERSION, 4).unwrap();
        tx.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.signature_for("t1", "mm").unwrap(), (None, None));
    store
        .set_signature("t1", "", &Signature::new("a", "b").unwrap())
        .unwrap();
    drop(store);
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let tx = write_txn(&db).unwrap();
    assert_eq!(get_u64(&tx, KEY_VERSION).unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 20);
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|h| h.name().to_string())
        .collect();
    for t in [SIGNATURES.name(), EMPLOYEES.name(), EMPLOYEE_IMAGES.name()] {
        assert!(names.iter().any(|n| n == t), "{t} missing");
    }
}
