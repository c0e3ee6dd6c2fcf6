// slow_uring_exit: an LD_PRELOAD shim for fd_budget_test. Every io_uring_queue_exit (a
// segment writer's, the sequence journal's, ... teardown) sleeps 300 ms before the real
// one: a sluiced tearing its store down stays in that teardown long enough for any thread
// still running beside it (the Kafka fetch thread refreshes its topics every 100 ms) to
// read what has already gone. Test use only; built as a module, loaded by nothing else.
#include <dlfcn.h>
#include <liburing.h>
#include <unistd.h>

extern "C" void io_uring_queue_exit(struct io_uring* ring) {
    using fn = void (*)(struct io_uring*);
    static fn real = reinterpret_cast<fn>(dlsym(RTLD_NEXT, "io_uring_queue_exit"));
    usleep(300 * 1000);
    if (real) real(ring);
}
