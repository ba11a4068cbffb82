#include "core/userfaultfd.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)  // /dev/userfaultfd, Linux 6.1
#endif

namespace cairn {

int OpenUserfaultfd() {
  const int flags = O_CLOEXEC | O_NONBLOCK;
  if (int dev = ::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC); dev >= 0) {
    const int fd = ::ioctl(dev, USERFAULTFD_IOC_NEW, flags);
    ::close(dev);
    if (fd >= 0) return fd;
  }
  return static_cast<int>(::syscall(SYS_userfaultfd, flags));
}

}  // namespace cairn
