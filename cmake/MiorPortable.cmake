# mior_linux_includes(<source> <out-var>): set <out-var> to the #include lines of <source> that
# name a header only Linux (or only a POSIX socket API) has, or to an empty list if there are none:
# netns.h, liburing.h, the tests' Linux fixtures (transport_common.h, syscall_count.h),
# <linux/...>, <netinet/...>, <arpa/...>, <net/...>, <netpacket/...>, numa*, <sched.h>, <poll.h>,
# <netdb.h>, <ifaddrs.h>, or <sys/{socket,mman,epoll,uio,ioctl,wait,resource,syscall,prctl,
# eventfd,un,random}.h>.
#
# test/CMakeLists.txt uses it to check that a test listed as portable does not include one (the
# Windows build would then fail to compile it); examples/CMakeLists.txt, through mior_linux_only,
# to leave a Linux-only example out of the Windows build.
function(mior_linux_includes src out)
  set(sys "socket|mman|epoll|uio|ioctl|wait|resource|syscall|prctl|eventfd|un|random")
  set(hdr "liburing\\.h|netns\\.h|transport_common\\.h|syscall_count\\.h|linux/|netinet/|arpa/|net/")
  set(hdr "${hdr}|netpacket/|numa|sched\\.h|poll\\.h|netdb\\.h|ifaddrs\\.h|sys/(${sys})\\.h")
  file(STRINGS ${src} hits REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](${hdr})")
  set(${out} "${hits}" PARENT_SCOPE)
endfunction()

# mior_linux_only(<source> <out-var>): set <out-var> to TRUE if <source> includes a Linux-only
# header (mior_linux_includes), else FALSE.
function(mior_linux_only src out)
  mior_linux_includes(${src} hits)
  if(hits)
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()
