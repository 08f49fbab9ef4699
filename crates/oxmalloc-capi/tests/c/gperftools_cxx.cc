// A gperftools C++ program, written against gperftools 2.10's
// <gperftools/malloc_extension.h> and linked with -loxmalloc: every virtual
// method of MallocExtension::instance(), a subclass registered in its place,
// a SysAllocator installed, the type information, and the C++ tc_*
// functions of <gperftools/tcmalloc.h> (new mode included).
#include <gperftools/malloc_extension.h>
#include <gperftools/tcmalloc.h>
#include <cerrno>
#include <cstdint>
#include <new>
#include <cstring>
#include <string>
#include <typeinfo>
#include <vector>
#include "check.h"

static const char *const properties[] = {
    "generic.current_allocated_bytes", "generic.heap_size", "generic.total_physical_bytes",
    "tcmalloc.slack_bytes", "tcmalloc.central_cache_free_bytes",
    "tcmalloc.transfer_cache_free_bytes", "tcmalloc.thread_cache_free_bytes",
    "tcmalloc.pageheap_free_bytes", "tcmalloc.pageheap_unmapped_bytes",
    "tcmalloc.pageheap_committed_bytes", "tcmalloc.pageheap_scavenge_count",
    "tcmalloc.pageheap_commit_count", "tcmalloc.pageheap_total_commit_bytes",
    "tcmalloc.pageheap_decommit_count", "tcmalloc.pageheap_total_decommit_bytes",
    "tcmalloc.pageheap_reserve_count", "tcmalloc.pageheap_total_reserve_bytes",
    "tcmalloc.max_total_thread_cache_bytes", "tcmalloc.current_total_thread_cache_bytes",
    "tcmalloc.aggressive_memory_decommit", "tcmalloc.heap_limit_mb",
};

static size_t prop(const char *name) {
    size_t v = 0;
    CHECK(MallocExtension::instance()->GetNumericProperty(name, &v));
    return v;
}

struct RangeWalk {
    uintptr_t last_end = 0;
    size_t in_use = 0, spans = 0;
    const void *block = nullptr;
    bool block_seen = false;
    std::vector<int> grown; // the callback allocates: no lock may be held
};

static void on_range(void *arg, const base::MallocRange *r) {
    RangeWalk *w = static_cast<RangeWalk *>(arg);
    CHECK(r->address >= w->last_end && r->length > 0);
    CHECK(r->type == base::MallocRange::INUSE || r->type == base::MallocRange::FREE ||
          r->type == base::MallocRange::UNMAPPED);
    CHECK(r->fraction >= 0.0 && r->fraction <= 1.0);
    w->last_end = r->address + r->length;
    w->spans++;
    if (r->type == base::MallocRange::INUSE) w->in_use += r->length;
    if (r->address == reinterpret_cast<uintptr_t>(w->block)) {
        CHECK(r->type == base::MallocRange::INUSE && r->fraction == 1.0 && r->length >= (1 << 20));
        w->block_seen = true;
    }
    w->grown.push_back(1);
}

// Counts the calls, and takes memory from the allocator it replaced.
struct CountingAllocator : SysAllocator {
    SysAllocator *fallback;
    long calls = 0;
    explicit CountingAllocator(SysAllocator *f) : fallback(f) {}
    void *Alloc(size_t size, size_t *actual, size_t align) override {
        calls++;
        return fallback->Alloc(size, actual, align);
    }
};

// Overrides one method and inherits the rest (oxmalloc's).
struct Mine : MallocExtension {
    bool GetNumericProperty(const char *name, size_t *value) override {
        if (strcmp(name, "mine.answer") == 0) {
            *value = 42;
            return true;
        }
        return MallocExtension::GetNumericProperty(name, value);
    }
};

static int handler_calls;
// Frees memory as a new handler should: here by lifting the heap limit.
static void lifting_handler() {
    handler_calls++;
    MallocExtension::instance()->SetNumericProperty("tcmalloc.heap_limit_mb", 0);
}

static void cxx_tc_functions() {
    MallocExtension *e = MallocExtension::instance();
    void *p = tc_new(100);
    CHECK(e->GetOwnership(p) == MallocExtension::kOwned);
    tc_delete_sized(p, 100);
    p = tc_newarray(1000);
    tc_deletearray(p);
    p = tc_new_nothrow(10, std::nothrow);
    tc_delete_nothrow(p, std::nothrow);
    CHECK(tc_newarray_nothrow(size_t(1) << 62, std::nothrow) == nullptr);
    p = tc_new_aligned(100, std::align_val_t(256));
    CHECK((reinterpret_cast<uintptr_t>(p) & 255) == 0);
    tc_delete_sized_aligned(p, 100, std::align_val_t(256));
    p = tc_newarray_aligned_nothrow(100, std::align_val_t(4096), std::nothrow);
    CHECK(p && (reinterpret_cast<uintptr_t>(p) & 4095) == 0);
    tc_deletearray_aligned_nothrow(p, std::align_val_t(4096), std::nothrow);

    // New mode: malloc calls the new handler on failure and tries again;
    // without it, malloc fails with ENOMEM and calls nothing. A heap limit
    // makes the failure.
    size_t heap_mb = 0;
    CHECK(e->GetNumericProperty("generic.heap_size", &heap_mb));
    heap_mb >>= 20;
    std::set_new_handler(lifting_handler);
    CHECK(e->SetNumericProperty("tcmalloc.heap_limit_mb", heap_mb + 16));
    errno = 0;
    CHECK(malloc(64 << 20) == nullptr && errno == ENOMEM && handler_calls == 0);
    CHECK(tc_set_new_mode(1) == 0);
    CHECK(tc_malloc_skip_new_handler(64 << 20) == nullptr && handler_calls == 0);
    void *big = malloc(64 << 20);
    CHECK(big && handler_calls == 1);
    free(big);
    CHECK(e->SetNumericProperty("tcmalloc.heap_limit_mb", heap_mb + 16));
    big = calloc(1 << 20, 128); // more than the 64 MiB now free
    CHECK(big && handler_calls == 2);
    free(big);
    std::set_new_handler(nullptr);
    CHECK(malloc(size_t(1) << 62) == nullptr && errno == ENOMEM && handler_calls == 2);
    CHECK(tc_set_new_mode(0) == 1);
}

int main() {
    cxx_tc_functions();
    MallocExtension::Initialize();
    MallocExtension *e = MallocExtension::instance();
    CHECK(e != nullptr && e == MallocExtension::instance());

    for (const char *name : properties) printf("%s = %zu\n", name, prop(name));
    size_t v;
    CHECK(!e->GetNumericProperty("tcmalloc.no_such_thing", &v));
    size_t budget = prop("tcmalloc.max_total_thread_cache_bytes");
    CHECK(e->SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", 48 << 20));
    CHECK(prop("tcmalloc.max_total_thread_cache_bytes") == 48 << 20);
    CHECK(e->SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", budget));
    CHECK(!e->SetNumericProperty("generic.heap_size", 1));

    char stats[8192];
    e->GetStats(stats, sizeof stats);
    CHECK(strstr(stats, "MALLOC:") != nullptr);

    char *p = new char[1000];
    int local = 0;
    CHECK(e->GetOwnership(p) == MallocExtension::kOwned);
    CHECK(e->GetOwnership(&local) == MallocExtension::kNotOwned);
    CHECK(e->GetAllocatedSize(p) >= 1000 && e->GetAllocatedSize(p) == e->GetEstimatedAllocatedSize(1000));
    CHECK(e->VerifyAllMemory() && e->VerifyNewMemory(p) && e->VerifyArrayNewMemory(p) &&
          e->VerifyMallocMemory(p) && !e->VerifyMallocMemory(&local));

    int blocks = 0, histogram[kMallocHistogramSize];
    size_t total = 0;
    CHECK(e->MallocMemoryStats(&blocks, &total, histogram));
    CHECK(blocks > 0 && total >= 1000);

    // Ranges: every span, in address order, with the callback free to
    // allocate.
    RangeWalk w;
    void *block = malloc(1 << 20);
    w.block = block;
    e->Ranges(&w, on_range);
    CHECK(w.block_seen && w.in_use >= (1 << 20) && w.spans == w.grown.size());
    printf("Ranges: %zu spans, %zu bytes in use\n", w.spans, w.in_use);
    free(block);

    // Free lists: gperftools' kinds; the thread caches' total is the
    // property's.
    std::vector<MallocExtension::FreeListInfo> lists;
    e->GetFreeListSizes(&lists);
    e->GetFreeListSizes(&lists); // again, reusing the storage
    size_t thread = 0, kinds = 0;
    for (const auto &l : lists) {
        CHECK(l.min_object_size <= l.max_object_size && l.type != nullptr);
        if (strcmp(l.type, "tcmalloc.thread") == 0) thread += l.total_bytes_free;
        if (strcmp(l.type, "tcmalloc.large") == 0) kinds |= 1;
        if (strcmp(l.type, "tcmalloc.page") == 0) kinds |= 2;
        if (strcmp(l.type, "tcmalloc.central") == 0) kinds |= 4;
    }
    CHECK(lists.size() > 100 && kinds == 7);
    CHECK(thread == prop("tcmalloc.thread_cache_free_bytes"));

    // Release rate, thread caches, release.
    e->SetMemoryReleaseRate(2.5);
    CHECK(e->GetMemoryReleaseRate() == 2.5);
    e->SetMemoryReleaseRate(1.0);
    std::vector<void *> objs;
    for (int i = 0; i < 1000; i++) objs.push_back(malloc(48));
    for (void *o : objs) free(o);
    CHECK(e->GetThreadCacheSize() >= 48);
    e->MarkThreadTemporarilyIdle();
    CHECK(e->GetThreadCacheSize() == 0);
    e->MarkThreadBusy();
    e->MarkThreadIdle();
    CHECK(e->GetThreadCacheSize() == 0);
    free(malloc(16 << 20));
    size_t unmapped = prop("tcmalloc.pageheap_unmapped_bytes");
    e->ReleaseToSystem(1 << 20);
    CHECK(prop("tcmalloc.pageheap_unmapped_bytes") >= unmapped + (1 << 20));
    e->ReleaseFreeMemory();
    CHECK(prop("tcmalloc.pageheap_free_bytes") == 0);

    // No sampling.
    std::string sample;
    e->GetHeapSample(&sample);
    CHECK(sample.find("does not sample") != std::string::npos);
    std::string growth;
    e->GetHeapGrowthStacks(&growth);
    CHECK(!growth.empty());
    int period = -1;
    CHECK(e->ReadStackTraces(&period) == nullptr && e->ReadHeapGrowthStackTraces() == nullptr);

    // System allocators: the default one works, and one installed is used.
    SysAllocator *sys = e->GetSystemAllocator();
    CHECK(sys != nullptr);
    size_t actual = 0;
    char *chunk = static_cast<char *>(sys->Alloc(1 << 20, &actual, 1 << 13));
    CHECK(chunk && actual >= (1 << 20) && (reinterpret_cast<uintptr_t>(chunk) & 8191) == 0);
    chunk[0] = chunk[actual - 1] = 1;
    static CountingAllocator counting(sys);
    e->SetSystemAllocator(&counting);
    CHECK(e->GetSystemAllocator() == &counting);
    void *huge = malloc(256 << 20);
    CHECK(huge && counting.calls > 0);
    free(huge);
    printf("CountingAllocator: %ld calls\n", counting.calls);

    // Type information, and a subclass in oxmalloc's place.
    CHECK(typeid(*e) == typeid(MallocExtension));
    CHECK(strcmp(typeid(*e).name(), "15MallocExtension") == 0);
    CHECK(dynamic_cast<Mine *>(e) == nullptr);
    static Mine mine;
    MallocExtension::Register(&mine);
    MallocExtension *now = MallocExtension::instance();
    CHECK(now == &mine && dynamic_cast<Mine *>(now) == &mine);
    CHECK(now->GetNumericProperty("mine.answer", &v) && v == 42);
    CHECK(now->GetNumericProperty("generic.heap_size", &v) && v == prop("generic.heap_size"));
    CHECK(now->GetOwnership(p) == MallocExtension::kOwned);
    MallocExtension::Register(e);
    CHECK(MallocExtension::instance() == e);

    // A plain MallocExtension made with new is deleted through the library's
    // deleting destructor.
    MallocExtension *plain = new MallocExtension;
    CHECK(plain->GetOwnership(plain) == MallocExtension::kOwned);
    delete plain;

    delete[] p;
    done();
    return 0;
}
