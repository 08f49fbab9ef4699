// Every standard operator new / delete form: each symbol must resolve to
// liboxmalloc (dladdr), every block must be oxmalloc's, aligned forms must
// align, and a failing operator new must call the new_handler (which may
// throw through the library) while the nothrow forms return null.
#include <dlfcn.h>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <sys/resource.h>
#include <vector>
#include "check.h"
#include "oxmalloc.h"

static const char *const symbols[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

static bool owned(void *p) { return MallocExtension_GetOwnership(p) == MallocExtension_kOwned; }
static bool aligned(void *p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

static int handler_calls;
static void throwing_handler() {
    handler_calls++;
    throw std::bad_alloc();
}
static void giving_up_handler() {
    handler_calls++;
    std::set_new_handler(nullptr);  // the next failure has no handler: abort
}

struct alignas(128) Wide {
    char bytes[300];
};

int main(int argc, char **argv) {
    // Each symbol the program sees is the library's.
    for (const char *name : symbols) {
        void *sym = dlsym(RTLD_DEFAULT, name);
        CHECK(sym != nullptr);
        Dl_info info;
        CHECK(dladdr(sym, &info) != 0 && info.dli_fname != nullptr);
        if (!strstr(info.dli_fname, "liboxmalloc")) fprintf(stderr, "%s is from %s\n", name, info.dli_fname);
        CHECK(strstr(info.dli_fname, "liboxmalloc") != nullptr);
    }

    const std::nothrow_t &nt = std::nothrow;
    for (size_t n : {size_t(0), size_t(1), size_t(24), size_t(1000), size_t(70000), size_t(1) << 20}) {
        for (size_t a : {size_t(16), size_t(64), size_t(4096), size_t(1) << 16}) {
            std::align_val_t al{a};
            void *p[8] = {
                operator new(n), operator new[](n), operator new(n, nt), operator new[](n, nt),
                operator new(n, al), operator new[](n, al), operator new(n, al, nt), operator new[](n, al, nt),
            };
            for (int i = 0; i < 8; i++) {
                CHECK(p[i] != nullptr && owned(p[i]));
                memset(p[i], i, n);
            }
            for (int i = 4; i < 8; i++) CHECK(aligned(p[i], a));
            operator delete(p[0], n);
            operator delete[](p[1], n);
            operator delete(p[2], nt);
            operator delete[](p[3], nt);
            operator delete(p[4], n, al);
            operator delete[](p[5], n, al);
            operator delete(p[6], al, nt);
            operator delete[](p[7], al, nt);
            void *q[4] = {operator new(n), operator new[](n), operator new(n, al), operator new[](n, al)};
            operator delete(q[0]);
            operator delete[](q[1]);
            operator delete(q[2], al);
            operator delete[](q[3], al);
        }
    }
    // new-expressions, over-aligned types included.
    Wide *w = new Wide;
    Wide *wa = new Wide[7];
    int *ints = new int[1000]();
    CHECK(owned(w) && owned(wa) && owned(ints) && aligned(w, 128) && aligned(wa, 128));
    CHECK(ints[999] == 0);
    delete w;
    delete[] wa;
    delete[] ints;

    // Failure: nothrow forms return null, without calling the handler.
    size_t huge = SIZE_MAX / 2;
    std::set_new_handler(throwing_handler);
    CHECK(operator new(huge, nt) == nullptr);
    CHECK(operator new[](huge, std::align_val_t(64), nt) == nullptr);
    CHECK(handler_calls == 0);
    // The throwing forms call the handler, whose exception reaches us.
    bool caught = false;
    try {
        void *p = operator new(huge);
        operator delete(p);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    CHECK(caught && handler_calls == 1);
    caught = false;
    try {
        void *p = operator new[](huge, std::align_val_t(256));
        operator delete[](p);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    CHECK(caught && handler_calls == 2);

    // A handler that returns is called again; once it removes itself, the
    // failure throws std::bad_alloc as the standard says.
    handler_calls = 0;
    std::set_new_handler(giving_up_handler);
    caught = false;
    try {
        void *p = operator new(huge);
        printf("not reached %p\n", p);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    CHECK(caught && handler_calls == 1);
    caught = false;
    try {
        void *p = operator new(huge, std::align_val_t(4096));
        printf("not reached %p\n", p);
    } catch (const std::bad_alloc &) {
        caught = true;
    }
    CHECK(caught);

    if (argc > 1 && strcmp(argv[1], "rlimit") == 0) {
        // Under a 256 MiB address-space limit, new and std::vector throw
        // std::bad_alloc, the program catches it and goes on.
        struct rlimit rl = {256u << 20, 256u << 20};
        CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
        caught = false;
        try {
            char *big = new char[512u << 20];
            printf("not reached %p\n", (void *)big);
        } catch (const std::bad_alloc &) {
            caught = true;
        }
        CHECK(caught);
        caught = false;
        std::vector<char> v;
        try {
            for (;;) v.resize(v.size() + (1u << 20));
        } catch (const std::bad_alloc &) {
            caught = true;
        }
        CHECK(caught && v.size() > (1u << 20));
        std::vector<char>().swap(v);
        char *after = new char[1u << 20];
        after[0] = 1;
        delete[] after;
    }
    done();
    return 0;
}
