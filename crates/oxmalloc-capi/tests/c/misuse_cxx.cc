// The C++ part of the misuse suite (docs/MISUSE.md; see misuse.c for the
// protocol): `wrong-size-sized-delete` frees a 64-byte block through the
// sized `operator delete` with another size; `clean` uses the sized and
// aligned operators correctly.
#include <cstdio>
#include <cstring>
#include <new>
#include <unistd.h>

static void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: misuse_cxx SCENARIO\n");
        return 2;
    }
    const char *s = argv[1];
    void *warm = ::operator new(1);
    ::operator delete(warm, 1);
    if (std::strcmp(s, "clean") == 0) {
        for (std::size_t n = 1; n < 5000; n += 97) {
            void *p = ::operator new(n);
            std::memset(p, 1, n);
            ::operator delete(p, n);
        }
        void *a = ::operator new(640, std::align_val_t(128));
        ::operator delete(a, 640, std::align_val_t(128));
        int *arr = new int[1000]();
        delete[] arr;
    } else if (std::strcmp(s, "wrong-size-sized-delete") == 0) {
        void *p = ::operator new(64);
        std::printf("addr=%p\n", p);
        std::fflush(stdout);
        ::operator delete(opaque(p), 4096); // a 64-byte block deleted as 4096 bytes
        for (int i = 0; i < 4; i++) {
            std::memset(::operator new(64), 0x5a, 64);
            std::memset(::operator new(4096), 0x5a, 4096);
        }
    } else {
        std::fprintf(stderr, "unknown scenario %s\n", s);
        return 2;
    }
    std::printf("survived %s\n", s);
    std::fflush(stdout);
    _exit(0);
}
