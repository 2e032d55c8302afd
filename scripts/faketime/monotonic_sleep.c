/*
 * Preloaded before Debian's libfaketime 0.9.10 when the suite runs a year ahead
 * (scripts/test-any-date.sh), for one function it gets wrong.
 *
 * With FAKETIME_DONT_FAKE_MONOTONIC=1 (needed: Python's timed waits go to the kernel
 * through sem_clockwait on the monotonic clock, which libfaketime 0.9.10 does not
 * intercept, so a faked monotonic clock makes Event.wait(1) wait for a year), libfaketime
 * still shifts the deadline of clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ...), which
 * Python 3.11's time.sleep uses, into the past: the kernel answers EINVAL
 * (wolfcw/libfaketime#426, fixed upstream after 0.9.10). The monotonic clock is not faked
 * here, so such a sleep needs no translation: it goes straight to the kernel. Everything
 * else is left to libfaketime.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *request,
                    struct timespec *remain) {
    if (clock_id == CLOCK_MONOTONIC) {
        long failed = syscall(SYS_clock_nanosleep, clock_id, flags, request, remain);
        return failed ? errno : 0;
    }
    static int (*next)(clockid_t, int, const struct timespec *, struct timespec *);
    if (!next) {
        next = dlsym(RTLD_NEXT, "clock_nanosleep");
    }
    return next(clock_id, flags, request, remain);
}
