//! The region table is bounded: once full, injection says so.

mod common;

use common::{map_aligned, PAGE};
use oxmalloc::{inject, InjectError, RegionOptions};

#[test]
fn too_many_regions() {
    // Fill the table with tiny exclusive regions; the last ones are refused.
    let p = map_aligned(300 * PAGE);
    let mut refused = None;
    for i in 0..300 {
        // SAFETY: disjoint pages of our mapping, handed over for good.
        match unsafe { inject(p.add(i * PAGE), PAGE, RegionOptions::new().exclusive(true)) } {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(refused, Some(InjectError::TooManyRegions));
}
