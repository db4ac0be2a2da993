//! Signature templates are written by admins and users through D-Bus
//! (`SetSignature`) and rendered into every mail they send. The fuzz input
//! is split at the first NUL into the text and the HTML template.
//! Properties beyond "no panic":
//! - a rendered signature contains no field placeholder (`@Vorname@`, ...)
//!   the template had: the employee's values hold no `@`, so one in the
//!   output would be a placeholder left unreplaced;
//! - rendering is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfach::account::SettingValue;
use postfach::signature::{self as render, Chosen, Employee, Field, For, Signature, Source};

/// A 2x2 PNG: `@Bild@` and `@Bild(0,w,h)@` have a picture to show.
const PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 2, 0, 0, 0, 2, 8, 2,
    0, 0, 0, 253, 212, 154, 115, 0, 0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 68,
    12, 16, 10, 0, 31, 238, 3, 253, 139, 95, 20, 212, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

fn employee() -> Employee {
    let fields: Vec<(String, SettingValue)> = Field::ALL
        .iter()
        .filter(|f| **f != Field::Name)
        .map(|f| (f.as_str().to_string(), SettingValue::Str(format!("v-{}", f.as_str()))))
        .collect();
    Employee::new(&fields, vec![("image/png".to_string(), PNG.to_vec())]).expect("a valid employee")
}

fn markers() -> Vec<String> {
    Field::ALL.iter().map(|f| format!("@{}@", f.as_str())).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(all) = std::str::from_utf8(data) else {
        return;
    };
    let (text, html) = all.split_once('\0').unwrap_or((all, ""));
    let Ok(signature) = Signature::new(text, html) else {
        return;
    };
    let chosen = Chosen {
        signature,
        source: Source::User,
    };
    let who = For {
        tenant: "t",
        user: "u",
    };
    let employee = employee();
    let Ok(out) = render::preview(&chosen, Some(&employee), who) else {
        return;
    };
    for m in markers() {
        assert!(
            !out.text.contains(&m) && !out.html.contains(&m),
            "{m} left in the rendered signature"
        );
    }
    let again = render::preview(&chosen, Some(&employee), who).expect("renders twice");
    assert_eq!(out, again, "rendering is deterministic");
});
