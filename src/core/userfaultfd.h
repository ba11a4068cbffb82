// Opening a userfaultfd, shared by the two users of one: copy-on-write snapshots of async saves
// (checkpoint/cow_snapshot.cc) and the pager of lazily restored arrays (kvstore/checked_pager.cc).
#pragma once

namespace cairn {

// A userfaultfd (O_CLOEXEC | O_NONBLOCK) that handles kernel-mode faults too, or -1: through /dev/userfaultfd
// (Linux 6.1) when it can be opened, else the userfaultfd(2) system call. UFFD_USER_MODE_ONLY is deliberately not
// asked for: a read(2) into, or a write(2) from, a registered range must be served, not fail with EFAULT.
int OpenUserfaultfd();

// True when built with ThreadSanitizer, which cannot see the ordering the kernel gives a faulting thread and the
// thread that serves its fault: the users of a userfaultfd fall back to their plain paths there.
constexpr bool UnderThreadSanitizer() {
#if defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return true;
#endif
#endif
  return false;
}

}  // namespace cairn
