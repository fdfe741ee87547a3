//! `TOLERANCES.md` and `glassbox_tests::tolerance` say the same thing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

#[test]
fn the_table_and_the_constants_agree() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../TOLERANCES.md");
    let text = std::fs::read_to_string(&path).unwrap();
    // Rows `| `NAME` | bound | …`.
    let table: BTreeMap<String, f64> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_string(), cells.get(2)?.parse().ok()?))
        })
        .collect();
    let constants: BTreeMap<String, f64> = glassbox_tests::tolerance::ALL.iter().map(|&(n, v)| (n.to_string(), v)).collect();
    assert_eq!(table, constants, "TOLERANCES.md vs tests/src/tolerance.rs");
}
