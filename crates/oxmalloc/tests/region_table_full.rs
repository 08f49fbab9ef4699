//! The region table is bounded ([`oxmalloc::MAX_REGIONS`]): once full,
//! injection and `set_system_allocator` say so, and allocation goes on (slot
//! 0 is kept for the default system allocator).

mod common;

use common::{map_aligned, PAGE};
use oxmalloc::{inject, InjectError, MmapSysAllocator, RegionOptions, MAX_REGIONS};

#[test]
fn too_many_regions() {
    let n = MAX_REGIONS + 10;
    let p = map_aligned(n * PAGE);
    let mut refused = None;
    let mut taken = 0;
    for i in 0..n {
        // SAFETY: disjoint pages of our mapping, handed over for good.
        match unsafe { inject(p.add(i * PAGE), PAGE, RegionOptions::new().exclusive(true)) } {
            Ok(id) => {
                assert_ne!(id.index(), 0, "slot 0 is the default system allocator's");
                taken += 1;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(refused, Some(InjectError::TooManyRegions));
    assert!(taken >= MAX_REGIONS - 8, "only {taken} regions fit");
    static OTHER: MmapSysAllocator = MmapSysAllocator;
    assert_eq!(
        oxmalloc::set_system_allocator(&OTHER).map(|_| ()),
        Err(InjectError::TooManyRegions)
    );
    // Allocation still works, from the system allocator in use.
    let v = vec![7u8; 64 << 20];
    assert_eq!(v[12345], 7);
}
