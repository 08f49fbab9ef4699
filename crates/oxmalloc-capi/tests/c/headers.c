/* Both headers in one file: gperftools' first (or, with OXMALLOC_FIRST,
 * oxmalloc.h first). Compiled as C with gcc and as C++ with g++ by
 * tests/gperftools.rs; it runs too. */
#ifdef OXMALLOC_FIRST
#include "oxmalloc.h"
#include <gperftools/malloc_extension_c.h>
#else
#include <gperftools/malloc_extension_c.h>
#include "oxmalloc.h"
#endif
#include <gperftools/tcmalloc.h>
#ifdef __cplusplus
#include <gperftools/malloc_extension.h>
#endif
#include "check.h"

int main(void) {
    oxmalloc_region_info info; /* the typedef, in C and C++ */
    struct oxmalloc_region_info *same = &info;
    void *p = tc_malloc(100);
    unsigned id;
    CHECK(oxmalloc_region_of(p, &id) == 0);
    CHECK(oxmalloc_get_region_info(id, same) == 0 && info.in_use_bytes > 0);
    MallocExtension_Ownership o = MallocExtension_GetOwnership(p);
    CHECK(o == MallocExtension_kOwned);
    CHECK(kMallocExtensionHistogramSize == 64);
#ifdef __cplusplus
    CHECK(MallocExtension::instance()->GetOwnership(p) == MallocExtension::kOwned);
#endif
    tc_free(p);
    done();
    return 0;
}
